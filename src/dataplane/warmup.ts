// A data-plane worker's warm-up: synthetic traffic through a private Pipeline before the worker
// opens its sockets, so that its first real frames run optimised code.
//
// Why: V8 runs a function in its interpreter until it has been called often enough, and
// optimises it on a background thread after that. A fresh worker therefore forwards its first
// few thousand frames several times slower than later ones, and traffic that arrives at full
// rate when the worker starts overflows its ring: in the DR lab of netns-scripts/lab.sh, 100,000
// frames/s of 1024 UDP flows sent the moment uvsd's services were in lost 188–3,531 frames in
// the first 2 s (ring and xdp alike), then none, also for new flows (native/README.md, "A
// worker's first frames"). That is the moment it matters most: a VRRP backup taking over under
// load, a worker restarted after a crash.
//
// How: the same Pipeline class (its methods' type feedback and optimised code are shared by every
// instance in this thread) over its own tables — a DestTable, ConnTable, NextHopTable,
// ClientHopTable, counters and ICMP budget of its own, none of them shared with the other
// workers or the control plane — with one TCP and one UDP service per forwarding method (DR,
// NAT, TUN). Each round sends new flows' first frames (scheduling, connection creation), then
// established flows' frames both ways (NAT replies included), through both the per-frame and the
// batched lookups, with or without a virtio_net_hdr in front like the worker's rings. Nothing is
// sent anywhere: the worker's sockets do not exist yet, and the frames the pipeline built (TUN)
// are discarded. Its counters and connections are garbage once it returns.
import { PacketBuilder } from '../packet/builder';
import { TCP_ACK, TCP_SYN } from '../packet/tcp';
import { ipv4ToInt } from '../packet/addr';
import { DestTable, DestField, ForwardMethod } from '../tables/dest-table';
import { NextHopTable } from '../tables/next-hop';
import { ClientHopTable } from '../tables/client-hops';
import { ServiceSnapshot, type CompiledService } from '../service/snapshot';
import { ConnTable, type ConnBatchLookup } from '../conn/table';
import type { ConnService } from '../conn/schedule';
import { getSchedulerFactory } from '../sched/index';
import { WorkerCounters } from './counters';
import { Pipeline, NO_TX, LOOKUP_BATCH } from './pipeline';

/** Rounds of the default warm-up, half per pipeline: 6 client frames each, and 2 NAT replies
 *  once the round's flow is established (about 20,000 frames in all). */
export const WARMUP_ROUNDS = 3000;
/** Distinct client ports: the first this many rounds open new connections, later ones reuse them. */
const FLOWS = 1024;
const TCP = 6;
const UDP = 17;
const VIP_TEXT = '10.255.0.100';
const VIP = ipv4ToInt(VIP_TEXT) | 0;
const CLIENT = '10.255.1.10';
const CLIENT_MAC = '02:00:00:00:00:0a';
const DIRECTOR_MAC = '02:00:00:00:00:02';
const RS_MAC = '02:00:00:00:01:15';
const DIP = ipv4ToInt('10.255.2.1') | 0;
const METHODS = [ForwardMethod.DROUTE, ForwardMethod.MASQ, ForwardMethod.TUNNEL] as const;
/** Frame slots of the warm-up's "ring": a frame, a virtio_net_hdr and room to spare. */
const STRIDE = 256;
const HDR = 10;

export interface WarmupResult {
  /** Frames processed. */
  frames: number;
  /** Of them, forwarded (sent to an egress or queued, as TUN's are): all of them when the
   *  pipeline took the paths real traffic takes. */
  forwarded: number;
  ms: number;
}

interface Template {
  frame: Uint8Array;
  /** Byte offset of the client port in the frame (source port, or destination for a reply). */
  portAt: number;
  ingress: number;
}

/** One service per (protocol, method): its real server's address is 10.255.2.(20 + i). */
function services(dests: DestTable, nextHops: NextHopTable): { snapshot: ServiceSnapshot; conn: (ConnService | null)[] } {
  const compiled: CompiledService[] = [];
  const conn: (ConnService | null)[] = [null];
  let slot = 0;
  for (const protocol of [TCP, UDP]) {
    for (const fwd of METHODS) {
      slot++;
      const d = dests.allocate();
      dests.set(d, DestField.ADDR, ipv4ToInt(`10.255.2.${20 + slot}`) | 0);
      dests.set(d, DestField.PORT, 8000 + slot);
      dests.set(d, DestField.WEIGHT, 1);
      dests.set(d, DestField.FWD, fwd);
      dests.set(d, DestField.SERVICE, slot);
      nextHops.set(d, { dstMac: RS_MAC, srcMac: DIRECTOR_MAC, egress: 1, mtu: 1500, srcAddr: DIP, viaGateway: false });
      const scheduler = getSchedulerFactory('rr').create(dests, 0, 8);
      scheduler.update([d]);
      compiled.push({
        slot, protocol, addr: VIP, port: 1000 + slot, fwmark: 0, persistTimeout: 0, netmask: 0xffffffff,
        schedIndex: 0, schedFlags: 0, destCount: 1, onePacket: false, active: true,
      });
      conn.push({ protocol, addr: VIP, port: 1000 + slot, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler });
    }
  }
  return { snapshot: ServiceSnapshot.build(1, 8, compiled), conn };
}

/** The frames of one round: per service a client frame, and for NAT the real server's reply. */
function templates(first: boolean): Template[] {
  const out: Template[] = [];
  let slot = 0;
  for (const protocol of [TCP, UDP]) {
    for (const fwd of METHODS) {
      slot++;
      const b = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: CLIENT, dst: VIP_TEXT, ttl: 64, df: true });
      const frame = (protocol === TCP ? b.tcp({ srcPort: 1, dstPort: 1000 + slot, flags: first ? TCP_SYN : TCP_ACK }) : b.udp({ srcPort: 1, dstPort: 1000 + slot })).payload(new Uint8Array(first ? 0 : 32)).build();
      out.push({ frame, portAt: 34, ingress: 0 });
      if (fwd === ForwardMethod.MASQ && !first) {
        const r = new PacketBuilder().eth({ src: RS_MAC, dst: DIRECTOR_MAC }).ipv4({ src: `10.255.2.${20 + slot}`, dst: CLIENT, ttl: 64, df: true });
        const reply = (protocol === TCP ? r.tcp({ srcPort: 8000 + slot, dstPort: 1, flags: TCP_ACK }) : r.udp({ srcPort: 8000 + slot, dstPort: 1 })).payload(new Uint8Array(32)).build();
        out.push({ frame: reply, portAt: 36, ingress: 1 });
      }
    }
  }
  return out;
}

/**
 * Runs `rounds` rounds of synthetic traffic through fresh pipelines (one with batched lookups,
 * one without, half the rounds each), with frames behind a virtio_net_hdr when `vnetHdr`.
 */
export function warmUpPipeline(vnetHdr: boolean, rounds = WARMUP_ROUNDS, batchLookup: ConnBatchLookup | null = null): WarmupResult {
  const t0 = performance.now();
  const opening = templates(true);
  const ongoing = templates(false);
  const ring = new Uint8Array(STRIDE * LOOKUP_BATCH);
  const view = new DataView(ring.buffer);
  const offs = new Int32Array(LOOKUP_BATCH);
  const lens = new Int32Array(LOOKUP_BATCH);
  const ingress = new Int32Array(LOOKUP_BATCH);
  let frames = 0;
  let forwarded = 0;
  for (const batched of [true, false]) {
    const dests = new DestTable(8);
    const nextHops = new NextHopTable(8);
    // The worker's batched-lookup path (the addon's, when it passes one), so that path is warm too.
    const conns = new ConnTable(4 * FLOWS * METHODS.length, dests, { workerId: 0, batchLookup: batched ? batchLookup : null });
    const counters = new WorkerCounters({ maxServices: 8, maxDests: 8 });
    const pipeline = new Pipeline({
      dests, conns, nextHops, counters, clientHops: new ClientHopTable(16), vnetHdr, egressCount: 2,
      egressMtu: [1500, 1500], batchMinEntries: batched ? 0 : Number.MAX_SAFE_INTEGER,
    });
    const svc = services(dests, nextHops);
    pipeline.setSnapshot(svc.snapshot, svc.conn);
    let nowMs = 1_000_000;
    let n = 0;
    const run = (): void => {
      if (pipeline.beginBatch()) {
        for (let i = 0; i < n; i++) pipeline.prepare(i, ring, view, offs[i]!, lens[i]!);
        pipeline.lookupBatch();
      }
      for (let i = 0; i < n; i++) {
        if (pipeline.process(ring, view, offs[i]!, lens[i]!, nowMs, ingress[i], i) !== NO_TX) forwarded++;
      }
      frames += n;
      pipeline.tx.reset();
      n = 0;
    };
    for (let r = 0; r < rounds / 2; r++) {
      const port = 1024 + (r % FLOWS);
      for (const t of r < FLOWS ? opening : ongoing) {
        if (n === LOOKUP_BATCH) run();
        const off = n * STRIDE + HDR;
        ring.fill(0, off - HDR, off); // an all-zero virtio_net_hdr: nothing offloaded
        ring.set(t.frame, off);
        view.setUint16(off + t.portAt, port);
        offs[n] = off;
        lens[n] = t.frame.length;
        ingress[n] = t.ingress;
        n++;
      }
      nowMs += 0.01;
    }
    run();
  }
  return { frames, forwarded, ms: performance.now() - t0 };
}
