// A data-plane worker thread: one AF_PACKET ring per capture interface (all workers in one fanout
// group per interface), a tight loop of wait → rx batch → pipeline → sendmmsg → release, and a
// yield to the event loop every few rounds so the main thread's messages (new snapshots, filters,
// stop) get through between batches.
//
// Everything the loop touches per packet was allocated when the worker started or when a snapshot
// arrived: descriptor arrays, TX offset/length arrays per egress interface, the pipeline's headers.

import { parentPort, workerData } from 'node:worker_threads';
import {
  FRAME_CAPLEN, FRAME_OFFSET, FRAME_STRIDE, FRAME_WIRELEN, VNET_HDR_LEN, loadNative,
  type BpfInsn, type PacketSocket, type RingOptions,
} from '../native/addon';
import { DestTable } from '../tables/dest-table';
import { ServiceSnapshot } from '../service/snapshot';
import { ConnTable, connNowMs } from '../conn/table';
import { ConnServiceSet } from './conn-services';
import { NextHopTable } from '../tables/next-hop';
import { WorkerCounters, WorkerStat, type CounterLayout } from './counters';
import { Pipeline, NO_TX, QUEUED } from './pipeline';
import { ClientHopTable } from '../tables/client-hops';
import { DropReason } from '../packet/drop';

export interface WorkerIface {
  name: string;
  index: number;
  /** The interface's MTU (NAT replies larger than it are fragmented or refused). */
  mtu?: number;
}

export interface WorkerInit {
  workerId: number;
  ifaces: WorkerIface[];
  fanoutGroupBase: number;
  ring: RingOptions;
  vnetHdr: boolean;
  filter: BpfInsn[];
  destCapacity: number;
  dests: SharedArrayBuffer;
  connCapacity: number;
  conns: SharedArrayBuffer;
  nextHops: SharedArrayBuffer;
  /** NAT's next hops toward clients (client-hops.ts), shared by all workers. */
  clientHopCapacity: number;
  clientHops: SharedArrayBuffer;
  counterLayout: CounterLayout;
  counters: SharedArrayBuffer;
}

/** One service as a worker needs it to build its ConnService. */
export interface WorkerService {
  slot: number;
  protocol: number;
  addr: number;
  port: number;
  persistent: boolean;
  persistTimeoutMs: number;
  netmask: number;
  onePacket: boolean;
  scheduler: { name: string; flags: number; shared: SharedArrayBuffer };
}

export type ToWorker =
  /** `full` (the default): `services` are all of them; false: only those changed since
   *  generation `base`, and `removed` the slots emptied (conn-services.ts, ConnServiceSet). */
  | { type: 'snapshot'; snapshot: SharedArrayBuffer; services: WorkerService[]; full?: boolean; base?: number; removed?: number[] }
  /** `hosts`: what `filter` selects, for backends that compile their own filter (pcap). */
  | { type: 'filter'; filter: BpfInsn[]; hosts?: { destinations: number[]; sources: number[] } }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready'; workerId: number }
  | { type: 'applied'; workerId: number; generation: number }
  | { type: 'error'; workerId: number; message: string };

/** Frames read per rx() call, and the size of each egress TX batch. */
const BATCH = 256;
/** Busy rounds between yields to the event loop. */
const ROUNDS_PER_YIELD = 32;
/** Connection-table slots the expiry sweep looks at per round. */
const EXPIRE_BUDGET = 512;

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('dataplane/worker.ts runs as a worker thread');
  const init = workerData as WorkerInit;
  const native = loadNative();
  const dests = new DestTable(init.destCapacity, init.dests);
  const conns = new ConnTable(init.connCapacity, dests, { workerId: init.workerId, buffer: init.conns });
  const nextHops = new NextHopTable(init.destCapacity, init.nextHops);
  const counters = new WorkerCounters(init.counterLayout, init.counters);
  const clientHops = new ClientHopTable(init.clientHopCapacity, init.clientHops);
  const pipeline = new Pipeline({
    dests, conns, nextHops, counters, clientHops, vnetHdr: init.vnetHdr, egressCount: Math.max(1, init.ifaces.length),
    egressMtu: init.ifaces.map((i) => i.mtu ?? 0),
  });
  const tx = pipeline.tx;
  const connServices = new ConnServiceSet(dests);

  const sockets: PacketSocket[] = init.ifaces.map((iface, i) =>
    new native.PacketSocket({
      ifindex: iface.index,
      ring: init.ring,
      fanout: { group: (init.fanoutGroupBase + i) & 0xffff, mode: 'hash', defrag: true },
      ignoreOutgoing: true,
      vnetHdr: init.vnetHdr,
      filter: init.filter,
    }),
  );
  // Send-only sockets for ordinary frames: no virtio_net_hdr and PACKET_QDISC_BYPASS. With the
  // header every send pays virtio_net_hdr_to_skb and its flow dissection (packet_snd), and
  // dev_queue_xmit walks the egress taps (dev_queue_xmit_nit); packet_direct_xmit skips both. Bypass
  // is safe only for frames the device takes whole (native/README.md: a frame needing software
  // segmentation is dropped with ENOBUFS), so GSO super-frames and frames with a partial checksum
  // (NEEDS_CSUM) keep going out through the capture socket, whose header carries those offloads.
  // Protocol 0: bound for sending only, the socket is never hooked into receive (packet_do_bind).
  const plainSockets: PacketSocket[] = init.ifaces.map((iface) =>
    new native.PacketSocket({ ifindex: iface.index, protocol: 0, qdiscBypass: true, vnetHdr: false }),
  );
  const rings = sockets.map((s) => new Uint8Array(s.ring!));
  const views = sockets.map((s) => new DataView(s.ring!));
  const desc = new Int32Array(FRAME_STRIDE * BATCH);
  const txOffsets = sockets.map(() => new Int32Array(BATCH));
  const txLengths = sockets.map(() => new Int32Array(BATCH));
  const txCount = new Int32Array(sockets.length);
  /** Per egress: whether the queued frames carry their virtio_net_hdr (one kind per batch, see drain). */
  const txVnet = new Uint8Array(sockets.length);
  const vnet = init.vnetHdr ? VNET_HDR_LEN : 0;
  let running = true;
  let lastStats = 0;

  port.on('message', (msg: ToWorker) => {
    try {
      if (msg.type === 'snapshot') {
        const snapshot = ServiceSnapshot.attach(msg.snapshot);
        const services = connServices.apply(snapshot, msg);
        if (services === null) return; // a delta on a generation this worker never had: a full one follows
        pipeline.setSnapshot(snapshot, services);
        port.postMessage({ type: 'applied', workerId: init.workerId, generation: snapshot.generation } satisfies FromWorker);
      } else if (msg.type === 'filter') {
        for (const s of sockets) s.setFilter(msg.filter);
      } else if (msg.type === 'stop') {
        running = false;
      }
    } catch (err) {
      port.postMessage({ type: 'error', workerId: init.workerId, message: (err as Error).message } satisfies FromWorker);
    }
  });

  /** Drains socket `si`: every ready frame through the pipeline, out in per-egress batches. */
  function drain(si: number, nowMs: number): number {
    const sock = sockets[si]!;
    const buf = rings[si]!;
    const view = views[si]!;
    let total = 0;
    for (;;) {
      const n = sock.rx(desc, BATCH);
      if (n === 0) break;
      total += n;
      counters.add(WorkerStat.RX_BATCHES, 1);
      const t0 = performance.now();
      for (let f = 0; f < n; f++) {
        const at = f * FRAME_STRIDE;
        const off = desc[at + FRAME_OFFSET]!;
        const caplen = desc[at + FRAME_CAPLEN]!;
        if (caplen !== desc[at + FRAME_WIRELEN]!) {
          // Cut short by the ring: forwarding it would send a damaged packet.
          counters.drop(DropReason.TRUNCATED_IP);
          continue;
        }
        // virtio_net_hdr.gso_type (byte 1 of the header in front of the frame): a GSO super-frame.
        if (vnet !== 0 && buf[off - vnet + 1] !== 0) counters.add(WorkerStat.GSO_FRAMES, 1);
        const egress = pipeline.process(buf, view, off, caplen, nowMs, si);
        if (egress === NO_TX) continue;
        if (egress === QUEUED) {
          if (tx.needsFlush) flushTx();
          continue;
        }
        if (egress >= sockets.length) {
          counters.drop(DropReason.NO_NEXT_HOP);
          continue;
        }
        // virtio_net_hdr: flags (byte 0, VIRTIO_NET_HDR_F_NEEDS_CSUM = 1) or gso_type (byte 1)
        // set: the frame needs the header's offloads; otherwise it goes out plain, from `off`.
        const withHdr = vnet !== 0 && ((buf[off - vnet]! & 1) !== 0 || buf[off - vnet + 1] !== 0) ? 1 : 0;
        // One kind per batch: switching flushes what is queued first, so frames toward one egress
        // leave in the order they came (a flow's super-frames and small frames stay in order).
        if (txCount[egress]! > 0 && txVnet[egress] !== withHdr) flush(egress, buf);
        txVnet[egress] = withHdr;
        const k = txCount[egress]!;
        txOffsets[egress]![k] = withHdr !== 0 ? off - vnet : off;
        txLengths[egress]![k] = withHdr !== 0 ? caplen + vnet : caplen;
        txCount[egress] = k + 1;
        if (k + 1 === BATCH) flush(egress, buf);
      }
      counters.add(WorkerStat.PROCESS_NS, (performance.now() - t0) * 1e6);
      for (let e = 0; e < sockets.length; e++) if (txCount[e]! > 0) flush(e, buf);
      if (tx.pending > 0) flushTx();
      // Nothing refers to this batch's frames any more (sent, or copied into the pipeline's TX
      // buffer): hand the blocks read to the end back now. Releasing only when the ring ran dry
      // let a busy worker hold every block, and the kernel then dropped what came in meanwhile
      // (tpacket_rcv finds no free block and freezes the queue: prb_freeze_queue).
      sock.release();
    }
    if (total > 0) counters.add(WorkerStat.RX_FRAMES, total);
    return total;
  }

  function flush(egress: number, buf: Uint8Array): void {
    const count = txCount[egress]!;
    const t0 = performance.now();
    const sock = txVnet[egress] !== 0 ? sockets[egress]! : plainSockets[egress]!;
    const sent = sock.send(buf, txOffsets[egress]!, txLengths[egress]!, count);
    counters.add(WorkerStat.SEND_NS, (performance.now() - t0) * 1e6);
    counters.add(WorkerStat.TX_FRAMES, sent);
    if (sent < count) counters.add(WorkerStat.TX_DROPPED, count - sent);
    txCount[egress] = 0;
  }

  /** Sends the frames the pipeline built in its own buffer (TUN, ICMP errors), then resets it. */
  function flushTx(): void {
    const t0 = performance.now();
    for (let e = 0; e < sockets.length; e++) {
      const count = tx.counts[e]!;
      if (count === 0) continue;
      const sent = sockets[e]!.send(tx.buffer, tx.offsets[e]!, tx.lengths[e]!, count);
      counters.add(WorkerStat.TX_FRAMES, sent);
      if (sent < count) counters.add(WorkerStat.TX_DROPPED, count - sent);
    }
    counters.add(WorkerStat.SEND_NS, (performance.now() - t0) * 1e6);
    tx.reset();
  }

  function loop(): void {
    if (!running) {
      for (const s of sockets) s.close();
      for (const s of plainSockets) s.close();
      port!.close();
      return;
    }
    for (let round = 0; round < ROUNDS_PER_YIELD; round++) {
      const now = connNowMs();
      let got = 0;
      for (let si = 0; si < sockets.length; si++) got += drain(si, now);
      counters.add(WorkerStat.EXPIRED, conns.expire(now, EXPIRE_BUDGET));
      if (now - lastStats > 1000) {
        lastStats = now;
        for (const s of sockets) counters.add(WorkerStat.RING_DROPS, s.stats().drops);
      }
      // Idle: block up to 1 ms in poll, then give the event loop its turn.
      if (got === 0) {
        if (sockets.length > 0) sockets[0]!.wait(1);
        break;
      }
    }
    counters.add(WorkerStat.YIELDS, 1);
    // Without an interface there is nothing to poll: do not spin.
    if (sockets.length === 0) setTimeout(loop, 50);
    else setImmediate(loop);
  }

  port.postMessage({ type: 'ready', workerId: init.workerId } satisfies FromWorker);
  setImmediate(loop);
}

main();
