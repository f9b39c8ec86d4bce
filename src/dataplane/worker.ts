// A data-plane worker thread: one AF_PACKET ring per capture interface (all workers in one fanout
// group per interface), driven by its event loop. Every capture socket has an FdWatcher (libuv
// uv_poll, level-triggered epoll); when one is readable the worker drains it — rx batch → pipeline
// → sendmmsg → release — for at most TURN_BATCHES batches and returns to the loop, so the main
// thread's messages (snapshots, filters, stop) and the timers (expiry sweep, ring statistics) run
// between turns however fast frames come. Frames left in the ring keep the socket readable and
// are drained next turn; past the ring's capacity the kernel drops them (ring_drops). With no
// traffic the thread sleeps in epoll_wait until a frame, a message or a timer is due.
//
// The ring is TPACKET_V2 by default (native/README.md): each frame is the worker's as soon as the
// kernel wrote it, where a V3 block waited up to its 1 ms retire timeout.
//
// Everything the loop touches per packet was allocated when the worker started or when a snapshot
// arrived: descriptor arrays, TX offset/length arrays per egress interface, the pipeline's headers.

import { performance } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import {
  FRAME_CAPLEN, FRAME_IFINDEX, FRAME_OFFSET, FRAME_PKTTYPE, FRAME_STATUS, FRAME_STRIDE, FRAME_VLAN_TCI, FRAME_WIRELEN, VNET_HDR_LEN, loadNative, ringFrameSize,
  type BpfInsn, type FanoutMode, type FdWatcher, type PacketSocket, type RingOptions, type XdpSocket,
} from '../native/addon';
import { DestTable } from '../tables/dest-table';
import { ServiceSnapshot } from '../service/snapshot';
import { ConnTable, connNowMs } from '../conn/table';
import { ConnServiceSet } from './conn-services';
import { NextHopTable } from '../tables/next-hop';
import { WorkerCounters, WorkerStat, type CounterLayout } from './counters';
import { Pipeline, NO_TX, QUEUED, LOOKUP_BATCH } from './pipeline';
import { ClientHopTable } from '../tables/client-hops';
import { DropReason } from '../packet/drop';
import { ringFrameDrop } from './ring-frame';
import { SpinWindow } from './spin-window';
import { warmUpPipeline, type WarmupResult } from './warmup';
import { FAST_EVENT_CELLS, FastFlows } from './fast-path';

export interface WorkerIface {
  name: string;
  index: number;
  /** The interface's MTU (NAT replies larger than it are fragmented or refused). */
  mtu?: number;
  /** --io xdp: the XSKMAP of the interface's XDP program (xdp.ts), where this worker's AF_XDP
   *  socket puts itself at its queue's key. */
  xsksFd?: number;
}

/** --io xdp (xdp.ts): each worker also reads the frames the XDP programs redirect, from one
 *  AF_XDP socket per interface, all on one UMEM of the worker's own. */
export interface WorkerXdp {
  /** The RX queue this worker's sockets bind to (its id: one worker per queue). */
  queue: number;
  chunkCount: number;
  chunkSize: number;
  headroom: number;
  /** Descriptors in each AF_XDP socket's RX ring. */
  rxRing: number;
}

export interface WorkerInit {
  workerId: number;
  ifaces: WorkerIface[];
  fanoutGroupBase: number;
  /** PACKET_FANOUT mode of the capture sockets (default 'hash'). */
  fanoutMode?: FanoutMode;
  /** Ring options; V2 slots are sized from the largest capture MTU unless frameSize is given. */
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
  /** The ICMP error rate limit's state, one budget for all workers (forward/icmp.ts IcmpRateLimit). */
  icmpLimit?: SharedArrayBuffer;
  /**
   * CPUs this worker pins its thread to (placement.ts workerCpus: with fanout 'cpu', the CPUs whose
   * received frames its sockets take); absent or empty: the thread floats over uvsd's CPUs.
   */
  cpus?: number[];
  /** µs a worker keeps polling its rings after a turn that saw frames (0, the default: off); dataplane.ts DEFAULT_BUSY_POLL_US. */
  busyPollUs?: number;
  /** The longest adaptive busy-poll window, µs (0 or ≤ busyPollUs: a fixed window); dataplane.ts DEFAULT_BUSY_POLL_MAX_US. */
  busyPollMaxUs?: number;
  /** --io xdp: the AF_XDP sockets beside the rings (absent: rings only). */
  xdp?: WorkerXdp;
  /** The in-kernel fast path's flow map (fast-path.ts; absent: off): the worker offers DR flows. */
  fastFd?: number;
  /** --fast-path-early: TCP connections offered at their SYN, their FINs kept in the kernel. */
  fastEarly?: boolean;
  /** --fast-path-sched: the program schedules new connections of rr/wrr services; the workers
   *  read its events ring (any of them, in turns) and create the entries. */
  fastSched?: { ctlFd: number; eventsFd: number };
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
  /** warmup: the JIT warm-up's figures (warmup.ts), absent when UVS_WORKER_WARMUP=0. */
  | { type: 'ready'; workerId: number; warmup?: WarmupResult }
  | { type: 'applied'; workerId: number; generation: number }
  | { type: 'error'; workerId: number; message: string };

/** Frames read per rx() call, and the size of each egress TX batch. */
const BATCH = 256;
/**
 * rx() batches per readable callback and socket: a turn of at most 1024 frames (a few ms at full
 * load), after which messages and timers get their turn. libuv's poll is level-triggered: a socket
 * with frames left calls back on the next loop iteration.
 */
const TURN_BATCHES = 4;
/**
 * The expiry sweep runs on a timer, not per batch; the ring statistics (PACKET_STATISTICS drops)
 * are read every STATS_EVERY sweeps. Two wake-ups a second is what an idle worker costs.
 */
const SWEEP_INTERVAL_MS = 500;
const STATS_EVERY = 2;
/** The longest single busy-poll call (µs): a longer window is polled in slices of this. */
const SPIN_SLICE_US = 250;

/**
 * Connection-table slots one sweep looks at: the whole table in about 2 s (4 sweeps), at least
 * 1024 and at most 65536 per sweep (a sweep step is a few loads, so a sweep holds frames back for
 * well under a millisecond; a larger table takes longer to go round: 10 s for 1.3 M slots).
 */
function sweepBudget(capacity: number): number {
  return Math.min(65536, Math.max(1024, Math.ceil(capacity / 4)));
}

/**
 * UVS_LATENCY_TRACE=PATH (diagnostic, native/README.md "Where a pass's time goes"): per rx()
 * batch, the first frame's kernel stamp (tpacket_rcv's tp_sec/tp_nsec, CLOCK_REALTIME), the
 * readable callback's entry, the end of rx(), of the pipeline and of the sends; at stop each
 * worker writes the medians and p90s of the steps to PATH.w<id>.json.
 */
class LatencyTrace {
  private static readonly MAX = 200_000;
  private readonly rows = new Float64Array(LatencyTrace.MAX * 6);
  private count = 0;
  private wokeAt = 0;
  constructor(private readonly clock: () => number, private readonly lastPoll: () => number, private readonly frameSize: number[], private readonly ringBytes: number[]) {}

  private polledAt = 0;
  /** The worker's own counts of how its turns began and of the busy-poll guards' trips
   *  (WorkerStat EPOLL_WAKEUPS .. BUSY_POLL_STARVED), set at stop for the summary. */
  wakes: Record<string, number> = {};

  /** A readable callback (fromPoll: libuv's, whose entry the addon stamped) or a busy-poll hit. */
  woken(fromPoll: boolean): void {
    this.wokeAt = this.clock();
    this.polledAt = fromPoll ? this.lastPoll() : this.wokeAt;
  }

  received(si: number, view: DataView, off: number): void {
    if (this.count >= LatencyTrace.MAX || off >= this.ringBytes[si]!) return;
    const base = off - (off % this.frameSize[si]!);
    const at = this.count * 6;
    // tpacket2_hdr: tp_sec at 16, tp_nsec at 20 (native byte order: little-endian on x86/arm).
    this.rows[at] = view.getUint32(base + 16, true) * 1e6 + view.getUint32(base + 20, true) / 1e3;
    const now = this.clock();
    // A batch after the first of a turn was not woken for: its "wake" is the rx() call.
    this.rows[at + 1] = this.wokeAt !== 0 ? this.wokeAt : now;
    this.rows[at + 2] = now;
    this.rows[at + 5] = this.wokeAt !== 0 ? this.polledAt : now;
    this.wokeAt = 0;
  }

  processed(): void {
    if (this.count < LatencyTrace.MAX) this.rows[this.count * 6 + 3] = this.clock();
  }

  sent(): void {
    if (this.count < LatencyTrace.MAX) this.rows[this.count++ * 6 + 4] = this.clock();
  }

  summary(): Record<string, number | { p50: number; p90: number }> {
    const step = (a: number, b: number): { p50: number; p90: number } => {
      const v: number[] = [];
      for (let i = 0; i < this.count; i++) v.push(this.rows[i * 6 + b]! - this.rows[i * 6 + a]!);
      v.sort((x, y) => x - y);
      const q = (p: number): number => (v.length ? Math.round(v[Math.min(v.length - 1, Math.floor(p * v.length))]! * 10) / 10 : NaN);
      return { p50: q(0.5), p90: q(0.9) };
    };
    return {
      batches: this.count, ...this.wakes,
      'ring→epoll return': step(0, 5), 'epoll return→JS callback': step(5, 1), 'callback→rx done': step(1, 2), 'pipeline': step(2, 3), 'send': step(3, 4), 'ring→sent': step(0, 4),
    };
  }
}

/**
 * UVS_BATCH_MIN_ENTRIES=N (diagnostic, tests): batch the connection lookups from N live entries
 * on instead of LOOKUP_BATCH_MIN_ENTRIES (0: always), so a small lab runs the batched path.
 */
function batchMinEntriesFromEnv(): number | undefined {
  const v = process.env['UVS_BATCH_MIN_ENTRIES'];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`UVS_BATCH_MIN_ENTRIES must be a whole number of entries (0 or more), got "${v}"`);
  return n;
}

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('dataplane/worker.ts runs as a worker thread');
  const init = workerData as WorkerInit;
  const native = loadNative();
  // Pinned to the CPUs whose frames this worker takes, before any socket opens: the kernel wakes it
  // on the CPU where its frames arrive, which is awake already (native/README.md "Placement").
  if (init.cpus !== undefined && init.cpus.length > 0) native.pinThread(init.cpus);
  const dests = new DestTable(init.destCapacity, init.dests);
  // Batched lookups through the addon: software prefetch overlaps a batch's DRAM misses.
  const conns = new ConnTable(init.connCapacity, dests, { workerId: init.workerId, buffer: init.conns, batchLookup: native.connLookupBatch });
  const nextHops = new NextHopTable(init.destCapacity, init.nextHops);
  const counters = new WorkerCounters(init.counterLayout, init.counters);
  const clientHops = new ClientHopTable(init.clientHopCapacity, init.clientHops);
  // The fast path: this worker offers DR and NAT flows to it, and its sweep asks it before expiring them.
  // NAT replies may leave in the kernel by an interface whose MTU is the largest captured one (a
  // frame the program redirects is at most that long).
  const largestMtu = init.ifaces.reduce((m, i) => Math.max(m, i.mtu ?? 0), 0);
  const replyEgress = init.ifaces.map((i) => (largestMtu > 0 && (i.mtu ?? 0) >= largestMtu ? i.index : 0));
  const fast = init.fastFd !== undefined ? new FastFlows(native, init.fastFd, counters, replyEgress, init.fastEarly ?? false) : null;
  conns.offloadHook = fast;
  const sched = fast !== null && init.fastSched !== undefined ? init.fastSched : null;
  if (sched !== null) fast!.attachSched(native.fastEvents(sched.eventsFd), new BigUint64Array(native.fastCtl(sched.ctlFd)));
  /** Kernel scheduling's records, read per turn. */
  const schedRecords = new Int32Array(sched !== null ? 256 * FAST_EVENT_CELLS : 0);
  const ifaceOf = (ifindex: number): number => init.ifaces.findIndex((i) => i.index === ifindex);
  const pipeline = new Pipeline({
    dests, conns, nextHops, counters, clientHops, vnetHdr: init.vnetHdr, egressCount: Math.max(1, init.ifaces.length),
    egressMtu: init.ifaces.map((i) => i.mtu ?? 0), icmpLimit: init.icmpLimit, batchMinEntries: batchMinEntriesFromEnv(), fast,
  });
  const tx = pipeline.tx;
  const connServices = new ConnServiceSet(dests);
  // Synthetic traffic through a private pipeline before any socket opens (warmup.ts), so that the
  // first real frames run optimised code. UVS_WORKER_WARMUP=0 (diagnostic) skips it.
  const warmup = process.env['UVS_WORKER_WARMUP'] === '0' ? undefined : warmUpPipeline(init.vnetHdr === true, undefined, native.connLookupBatch);

  // V2 slots hold the largest frame of any capture interface; larger ones (GSO super-frames) come
  // whole through the socket's receive queue (PACKET_COPY_THRESH, native/README.md).
  const maxMtu = init.ifaces.reduce((m, i) => Math.max(m, i.mtu ?? 1500), 1500);
  const ring: RingOptions = (init.ring.version ?? 2) === 2 && init.ring.frameSize === undefined
    ? { ...init.ring, frameSize: ringFrameSize(maxMtu) }
    : init.ring;
  const fanoutMode = init.fanoutMode ?? 'hash';
  const sockets: PacketSocket[] = init.ifaces.map((iface, i) =>
    new native.PacketSocket({
      ifindex: iface.index,
      ring,
      fanout: { group: (init.fanoutGroupBase + i) & 0xffff, mode: fanoutMode, defrag: true },
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
  // --io xdp: one AF_XDP socket per interface on the worker's own UMEM (xdp.ts), for the frames
  // the interface's XDP program redirects; what it passes (larger frames, fragments, VLAN, ARP)
  // still reaches the ring above. An interface with fewer RX queues than this worker's queue gets
  // no socket here: its frames come to the worker of their queue, or through the ring.
  const xdp = init.xdp ?? null;
  const umem = xdp !== null ? new native.XdpUmem({ chunkCount: xdp.chunkCount, chunkSize: xdp.chunkSize, headroom: xdp.headroom }) : null;
  const xsks: (XdpSocket | null)[] = init.ifaces.map((iface) => {
    if (umem === null || xdp === null || iface.xsksFd === undefined) return null;
    if (xdp.queue >= native.ifQueueCount(iface.name).rx) return null;
    return new native.XdpSocket({ umem, ifindex: iface.index, queue: xdp.queue, xskMapFd: iface.xsksFd, rxSize: xdp.rxRing });
  });
  const nIf = sockets.length;
  const umemBytes = umem !== null ? new Uint8Array(umem.buffer) : new Uint8Array(0);
  const umemView = umem !== null ? new DataView(umem.buffer) : new DataView(new ArrayBuffer(0));
  /** Every receive source, by source index: the rings (0 .. nIf − 1), then the AF_XDP sockets of
   *  the interfaces that have one (nIf + k: interface xsksOf[k]). */
  const xsksOf: number[] = [];
  xsks.forEach((x, i) => x !== null && xsksOf.push(i));
  const sources: Array<PacketSocket | XdpSocket> = [...sockets, ...xsksOf.map((i) => xsks[i]!)];
  const rings = sockets.map((s) => new Uint8Array(s.ring!));
  const views = sockets.map((s) => new DataView(s.ring!));
  const desc = new Int32Array(FRAME_STRIDE * BATCH);
  const txOffsets = sockets.map(() => new Int32Array(BATCH));
  const txLengths = sockets.map(() => new Int32Array(BATCH));
  const txCount = new Int32Array(sockets.length);
  /** Each socket's txShed total when last looked at (flush, short). */
  const captureShed = new Float64Array(sockets.length);
  const plainShed = new Float64Array(sockets.length);
  const xdpShed = new Float64Array(sockets.length);
  /** The source drain() reads now is an AF_XDP socket: its frames go out through the egress
   *  interface's AF_XDP socket, from the UMEM (flush). */
  let fromXdp = false;
  /** Per egress: whether the queued frames carry their virtio_net_hdr (one kind per batch, see drain). */
  const txVnet = new Uint8Array(sockets.length);
  const vnet = init.vnetHdr ? VNET_HDR_LEN : 0;
  let running = true;
  const trace = process.env['UVS_LATENCY_TRACE'] ? new LatencyTrace(() => native.clockRealtimeUs(), () => native.lastPollUs(), sockets.map((s) => s.frameSize), sockets.map((s) => s.frameSize * s.frameCount)) : null;
  const expireBudget = sweepBudget(init.connCapacity);

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
        stop();
      }
    } catch (err) {
      port.postMessage({ type: 'error', workerId: init.workerId, message: (err as Error).message } satisfies FromWorker);
    }
  });

  /** Kernel scheduling: entries for the connections the program scheduled since the last read
   *  (at most 4 × 256 per call), before any frame of theirs is processed here. */
  function adoptScheduled(nowMs: number): void {
    for (let round = 0; round < 4; round++) {
      const n = fast!.readEvents(schedRecords);
      if (n === 0) return;
      pipeline.adoptScheduled(schedRecords, n, nowMs, ifaceOf);
      if (n < 256) return;
    }
  }

  /** The events ring's wake-up (at most every 4 ms under load): the new entries, then the
   *  read-backs that are due. With kernel scheduling no frame wakes this thread, so without this
   *  the read-backs would wait for the sweep and come 500 ms at a time (thousands in one call,
   *  milliseconds of this thread's CPU, a p99 of 18 ms in the close bench). */
  function onEvents(): void {
    const now = connNowMs();
    adoptScheduled(now);
    fast!.poll(conns, now);
  }

  /**
   * Drains socket `si` for at most maxBatches rx() batches: every frame through the pipeline, out
   * in per-egress batches. Returns the frames read.
   */
  function drain(src: number, nowMs: number, maxBatches: number): number {
    if (sched !== null) adoptScheduled(nowMs);
    fromXdp = src >= nIf;
    // The interface the frames came in on: the ring's, or the AF_XDP socket's.
    const si = fromXdp ? xsksOf[src - nIf]! : src;
    const sock = sources[src]!;
    const buf = fromXdp ? umemBytes : rings[si]!;
    const view = fromXdp ? umemView : views[si]!;
    const ifindex = init.ifaces[si]!.index;
    let total = 0;
    for (let b = 0; b < maxBatches; b++) {
      const n = sock.rx(desc, BATCH);
      if (n === 0) break;
      if (trace !== null && !fromXdp) trace.received(si, view, desc[FRAME_OFFSET]!);
      total += n;
      counters.add(WorkerStat.RX_BATCHES, 1);
      const t0 = performance.now();
      for (let f = 0; f < n; f++) {
        // Every LOOKUP_BATCH frames: the connection lookups of the next LOOKUP_BATCH at once.
        const slot = f & (LOOKUP_BATCH - 1);
        if (slot === 0) lookAhead(buf, view, f, Math.min(n, f + LOOKUP_BATCH));
        const at = f * FRAME_STRIDE;
        const off = desc[at + FRAME_OFFSET]!;
        const caplen = desc[at + FRAME_CAPLEN]!;
        if (caplen !== desc[at + FRAME_WIRELEN]!) {
          // Cut short by the ring: forwarding it would send a damaged packet.
          counters.drop(DropReason.TRUNCATED_IP);
          continue;
        }
        // Not this device's frame (another VLAN's, another host's): ring-frame.ts.
        const foreign = ringFrameDrop(desc[at + FRAME_STATUS]!, desc[at + FRAME_VLAN_TCI]!, desc[at + FRAME_PKTTYPE]!, desc[at + FRAME_IFINDEX]!, ifindex);
        if (foreign !== 0) {
          counters.drop(foreign);
          continue;
        }
        // virtio_net_hdr.gso_type (byte 1 of the header in front of the frame): a GSO super-frame.
        if (vnet !== 0 && buf[off - vnet + 1] !== 0) counters.add(WorkerStat.GSO_FRAMES, 1);
        const egress = pipeline.process(buf, view, off, caplen, nowMs, si, slot);
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
        // (An AF_XDP frame has zeros there: XdpSocket.rx clears them.)
        const withHdr = vnet !== 0 && ((buf[off - vnet]! & 1) !== 0 || buf[off - vnet + 1] !== 0) ? 1 : 0;
        // One kind per batch: switching flushes what is queued first, so frames toward one egress
        // leave in the order they came (a flow's super-frames and small frames stay in order).
        if (txCount[egress]! > 0 && txVnet[egress] !== withHdr) flush(egress, buf);
        txVnet[egress] = withHdr;
        const k = txCount[egress]!;
        txOffsets[egress]![k] = withHdr !== 0 ? off - vnet : off;
        // pipeline.txLength: the IP packet without bytes after it (Ethernet padding kept).
        txLengths[egress]![k] = withHdr !== 0 ? pipeline.txLength + vnet : pipeline.txLength;
        txCount[egress] = k + 1;
        if (k + 1 === BATCH) flush(egress, buf);
      }
      counters.add(WorkerStat.PROCESS_NS, (performance.now() - t0) * 1e6);
      if (trace !== null) trace.processed();
      for (let e = 0; e < sockets.length; e++) if (txCount[e]! > 0) flush(e, buf);
      if (tx.pending > 0) flushTx();
      if (trace !== null) trace.sent();
      // Nothing refers to this batch's frames any more (sent, or copied into the pipeline's TX
      // buffer): hand the blocks read to the end back now. Releasing only when the ring ran dry
      // let a busy worker hold every block, and the kernel then dropped what came in meanwhile
      // (tpacket_rcv finds no free block and freezes the queue: prb_freeze_queue).
      sock.release();
      // A short batch emptied the ring: no rx() that would only find nothing (an N-API call and
      // the next slot's cache line, cold after a wake-up). A frame that came meanwhile keeps the
      // socket readable (or the busy poll finds it).
      if (n < BATCH) break;
    }
    if (total > 0) {
      counters.add(WorkerStat.RX_FRAMES, total);
      if (fromXdp) counters.add(WorkerStat.XDP_FRAMES, total);
    }
    // Tracked fast-path flows that are due are read back (fast-path.ts, "Whole connections in the kernel"):
    // a few loads when none is due.
    if (fast !== null && fast.track) fast.poll(conns, nowMs);
    return total;
  }

  /**
   * The first pass over frames [from, to) of an rx() batch (pipeline.ts, "Batches"): each whole
   * frame's key, then all their connection lookups together, so that their cache misses overlap;
   * drain's second pass then processes the frames one by one with their lookup results.
   */
  function lookAhead(buf: Uint8Array, view: DataView, from: number, to: number): void {
    if (!pipeline.beginBatch()) return; // a small table: one lookup per frame (pipeline.ts)
    for (let f = from; f < to; f++) {
      const at = f * FRAME_STRIDE;
      const caplen = desc[at + FRAME_CAPLEN]!;
      if (caplen === desc[at + FRAME_WIRELEN]!) pipeline.prepare(f - from, buf, view, desc[at + FRAME_OFFSET]!, caplen);
    }
    pipeline.lookupBatch();
  }

  function flush(egress: number, buf: Uint8Array): void {
    const count = txCount[egress]!;
    const t0 = performance.now();
    const plain = txVnet[egress] === 0;
    // AF_XDP frames leave from the UMEM through the egress's AF_XDP socket (zero copy between the
    // worker's sockets); ring frames through a packet socket. An egress where this worker has no
    // AF_XDP socket (a device with fewer RX queues than the worker's id) takes AF_XDP frames
    // through its plain packet socket, which copies them out of the UMEM (they carry no
    // virtio_net_hdr, so `plain` holds for them).
    const xsk = fromXdp ? xsks[egress] ?? null : null;
    const sock = xsk ?? (plain ? plainSockets[egress]! : sockets[egress]!);
    const sent = sock.send(buf, txOffsets[egress]!, txLengths[egress]!, count);
    counters.add(WorkerStat.SEND_NS, (performance.now() - t0) * 1e6);
    counters.add(WorkerStat.TX_FRAMES, sent);
    if (sent < count) short(sock, xsk !== null ? xdpShed : plain ? plainShed : captureShed, egress, count - sent);
    txCount[egress] = 0;
  }

  /** A send that took fewer frames than asked: all are TX_DROPPED, those the socket shed for
   *  want of memory or queue room (its txShed total grew) also TX_SHED. */
  function short(sock: PacketSocket | XdpSocket, seen: Float64Array, i: number, missing: number): void {
    counters.add(WorkerStat.TX_DROPPED, missing);
    const shed = sock.txShed;
    if (shed > seen[i]!) counters.add(WorkerStat.TX_SHED, shed - seen[i]!);
    seen[i] = shed;
  }

  /** Sends the frames the pipeline built in its own buffer (TUN, ICMP errors), then resets it. */
  function flushTx(): void {
    const t0 = performance.now();
    for (let e = 0; e < sockets.length; e++) {
      const count = tx.counts[e]!;
      if (count === 0) continue;
      const sent = sockets[e]!.send(tx.buffer, tx.offsets[e]!, tx.lengths[e]!, count);
      counters.add(WorkerStat.TX_FRAMES, sent);
      if (sent < count) short(sockets[e]!, captureShed, e, count - sent);
    }
    counters.add(WorkerStat.SEND_NS, (performance.now() - t0) * 1e6);
    tx.reset();
  }

  /** A capture socket is readable: one bounded turn on it. */
  function onReadable(si: number, status: number): void {
    if (!running) return;
    if (trace !== null) trace.woken(true);
    if (status < 0) {
      // POLLERR (libuv stopped the watcher): a pending socket error, ENETDOWN when the interface
      // went down (packet_notifier). Take it and watch again: the ring receives once it is up.
      const err = sources[si]!.takeError();
      const name = init.ifaces[si < nIf ? si : xsksOf[si - nIf]!]!.name;
      port!.postMessage({ type: 'error', workerId: init.workerId, message: `${name}: ${si < nIf ? 'capture' : 'AF_XDP'} socket error ${err ?? `status ${status}`}; watching again` } satisfies FromWorker);
      // Without a pending error (cleared meanwhile?) wait a little rather than spin on POLLERR.
      if (err !== null) watchers[si]!.start(1);
      else setTimeout(() => running && watchers[si]!.start(1), 100);
      return;
    }
    counters.add(WorkerStat.EPOLL_WAKEUPS, 1);
    spin.began(performance.now());
    const got = drain(si, connNowMs(), TURN_BATCHES);
    // The budget ran out with frames possibly left: the socket stays readable and the loop calls
    // back after messages and timers had their turn.
    if (got >= TURN_BATCHES * BATCH) counters.add(WorkerStat.YIELDS, 1);
    if (got > 0) spin.turn(performance.now());
    // Frames were taken: the busy-poll window starts (or starts again, when this callback came
    // between two slices of one).
    if (got > 0 && got < TURN_BATCHES * BATCH && poller !== null) {
      if (spinning) spinUntil = performance.now() + spin.window / 1000;
      else startSpin();
    }
  }

  // Busy polling: a spin between turns, each in its own setImmediate so that the loop's poll phase
  // (messages from the main thread, the other sockets) and its timers run between two spins.
  const busyPollUs = init.busyPollUs ?? 0;
  // Spins run under SCHED_IDLE (native RingPoller) while the traffic is sparse and at the thread's
  // own policy while it is sustained (SpinWindow.sustained). Diagnostics, for comparing:
  // UVS_SPIN_OWN_POLICY=1 keeps every spin at the thread's own policy, UVS_SPIN_ALWAYS_POLITE=1
  // every spin under SCHED_IDLE.
  const poller = busyPollUs > 0 ? new native.RingPoller(sources, process.env['UVS_SPIN_OWN_POLICY'] !== '1') : null;
  const alwaysPolite = process.env['UVS_SPIN_ALWAYS_POLITE'] === '1';
  let spinning = false;
  // The window is sized from the gaps between recent turns (spin-window.ts, --busy-poll-max).
  const spin = new SpinWindow(busyPollUs, init.busyPollMaxUs ?? 0);
  /** When the current window ends (performance.now() ms); a spin turn polls at most SPIN_SLICE_US
   *  of it, so messages and timers wait no longer than that behind a long window. */
  let spinUntil = 0;
  function startSpin(): void {
    spinUntil = performance.now() + spin.window / 1000;
    spinning = true;
    setImmediate(spinTurn);
  }
  // One spin turn polls and drains for at most SPIN_SLICE_US before the event loop runs again
  // (messages, timers, the poll phase). Going back to the loop after every batch cost an
  // epoll_wait(0) system call and a setImmediate per batch, which on this VM (a PVM guest, where
  // every system call passes through the hypervisor) is a large share of a small batch's cost.
  function spinTurn(): void {
    spinning = false;
    if (!running || poller === null) return;
    const sliceEnd = performance.now() + SPIN_SLICE_US / 1000;
    for (;;) {
      const now = performance.now();
      const left = Math.ceil((spinUntil - now) * 1000);
      if (left <= 0) return; // a whole window without a frame: back to sleep in epoll_wait
      const slice = Math.ceil((sliceEnd - now) * 1000);
      if (slice <= 0) break; // the slice is used up: the loop's turn, then the window goes on
      const polite = alwaysPolite || !spin.sustained;
      if (!polite) counters.add(WorkerStat.BUSY_POLL_SUSTAINED, 1);
      const si = poller.spin(Math.min(left, slice), polite);
      // -2: the CPUs are contended (native RingPoller): no spinning for now, sleep in epoll_wait.
      if (si === -2) return;
      if (si < 0) continue; // the slice (or the window) passed without a frame
      if (trace !== null) trace.woken(false);
      counters.add(WorkerStat.BUSY_POLL_HITS, 1);
      spin.began(performance.now());
      const got = drain(si, connNowMs(), TURN_BATCHES);
      if (got >= TURN_BATCHES * BATCH) {
        // A full turn: frames are likely left; let messages and timers run before more.
        counters.add(WorkerStat.YIELDS, 1);
        spin.turn(performance.now());
        startSpin();
        return;
      }
      if (got > 0) {
        const at = performance.now();
        spin.turn(at);
        spinUntil = at + spin.window / 1000;
      }
    }
    spinning = true;
    setImmediate(spinTurn);
  }

  const watchers: FdWatcher[] = sources.map((s, si) => {
    const w = new native.FdWatcher(s.fd, (status) => onReadable(si, status));
    w.start(1);
    return w;
  });
  let sweeps = 0;
  const xdpDropsSeen = new Float64Array(xsks.length);
  const xdpCsumSeen = new Float64Array(xsks.length);
  /** The AF_XDP sockets' totals since open, as differences into the counters. */
  function copyXdpStats(): void {
    xsks.forEach((x, i) => {
      if (x === null) return;
      // What the kernel could not give the socket counts as the ring's drops: rx_dropped (no
      // fill chunk, too long) and rx_ring_full (the RX ring had no room). (fill_ring_empty counts
      // the same misses as rx_dropped, from the fill ring's side.)
      const st = x.stats();
      const dropped = st.rxDropped + st.rxRingFull;
      counters.add(WorkerStat.RING_DROPS, dropped - xdpDropsSeen[i]!);
      xdpDropsSeen[i] = dropped;
      counters.add(WorkerStat.XDP_CSUM_COMPLETED, st.csumCompleted - xdpCsumSeen[i]!);
      xdpCsumSeen[i] = st.csumCompleted;
    });
  }
  // The program wakes this thread at most every 4 ms, or when many records wait (native/src/
  // fast-path.h kEventsWakeNs, kEventsWakeBytes); otherwise they are read on the next turn or sweep.
  const schedWatcher = sched !== null ? new native.FdWatcher(sched.eventsFd, onEvents) : null;
  schedWatcher?.start(1);
  const sweepTimer = setInterval(() => {
    if (sched !== null) adoptScheduled(connNowMs());
    counters.add(WorkerStat.EXPIRED, conns.expire(connNowMs(), expireBudget));
    if (fast !== null && fast.track) fast.poll(conns, connNowMs());
    if (++sweeps % STATS_EVERY === 0) {
      for (const s of sockets) counters.add(WorkerStat.RING_DROPS, s.stats().drops);
      copyXdpStats();
    }
    copyGuards();
  }, SWEEP_INTERVAL_MS);
  /** The poller's guard counts when last copied: the counters get the difference, so a restarted
   *  worker (a new poller from 0) adds to the totals its predecessor left in the shared cells. */
  let seenContended = 0;
  let seenStarved = 0;
  let seenRescued = 0;
  function copyGuards(): void {
    if (poller === null) return;
    const contended = poller.contended;
    const starved = poller.starved;
    const rescued = poller.rescued;
    counters.add(WorkerStat.BUSY_POLL_CONTENDED, contended - seenContended);
    counters.add(WorkerStat.BUSY_POLL_STARVED, starved - seenStarved);
    counters.add(WorkerStat.BUSY_POLL_RESCUED, rescued - seenRescued);
    seenContended = contended;
    seenStarved = starved;
    seenRescued = rescued;
  }

  function stop(): void {
    if (!running) return;
    running = false;
    clearInterval(sweepTimer);
    copyGuards();
    copyXdpStats();
    // Watchers first: an fd must not be closed under an active uv_poll.
    for (const w of watchers) w.close();
    schedWatcher?.close();
    for (const s of sockets) s.close();
    for (const s of plainSockets) s.close();
    for (const x of xsks) x?.close();
    umem?.close();
    // The counters are this worker id's totals (a restarted worker's included), copied above.
    if (trace !== null) {
      trace.wakes = {
        pollWakes: counters.get(WorkerStat.EPOLL_WAKEUPS), spinWakes: counters.get(WorkerStat.BUSY_POLL_HITS),
        contended: counters.get(WorkerStat.BUSY_POLL_CONTENDED), starved: counters.get(WorkerStat.BUSY_POLL_STARVED),
      };
    }
    if (trace !== null) writeFileSync(`${process.env['UVS_LATENCY_TRACE']}.w${init.workerId}.json`, JSON.stringify(trace.summary()));
    port!.close();
  }

  port.postMessage({ type: 'ready', workerId: init.workerId, ...(warmup !== undefined ? { warmup } : {}) } satisfies FromWorker);
}

main();
