// The libpcap backend (`uvsd --io pcap`): the portable fallback and the benchmark baseline.
//
// The `pcap` package is a NAN addon and loads in one thread per process, so this backend is not a
// worker thread: it runs the same Pipeline as a ring worker, on the main thread, driven by the
// binding's uv_poll on each capture socket. To the DataPlane it looks like a worker — it takes the
// same init data and the same messages (filter, snapshot, stop) and answers the same way (ready,
// applied, error, exit) — so the DataPlane's snapshot/apply logic is shared; it is "worker 0" for
// the counters and the connection table.
//
// Per interface: one pcap session in immediate mode (buffer_timeout 0: no block timeout, each
// frame is handed over as it arrives), not promiscuous, and a libpcap filter equivalent to the
// ring's kernel filter (pcap.ts pcapFilter). libpcap cannot change a session's filter, so a new
// set of VIPs opens a new session before the old one is drained and closed. Frames go back out
// with pcap_inject, one call per frame. Sharing the main thread with the control plane, one
// dispatch forwards at most DISPATCH_BUDGET frames and sheds the rest.
//
// Checksums: a frame from a local sender with checksum offload (veth's default, and any NIC's
// tx-checksumming) is captured before the checksum is done: the TCP/UDP checksum field holds only
// the pseudo-header sum (the kernel's CHECKSUM_PARTIAL, __tcp_v4_send_check/udp4_hwcsum). The ring
// learns this from the vnet header and lets the kernel finish on transmit; pcap gives no such flag
// and injects frames as they are, so the receiver would drop them. We recognise the pattern — the
// field equals the folded pseudo-header sum — and compute the real checksum before the pipeline
// sees the frame, so every mode works on a complete checksum (DR forwards it, NAT updates it
// incrementally, TUN copies it into the tunnel). A complete checksum that happens to equal that
// value is recomputed to itself, so good packets are never changed by this.
//
// Super-frames: the backend turns GRO off on its own interfaces (pcap-offloads.ts), but a
// neighbour's TCP stack on a veth or bridge hands over 64 KiB TSO frames as they are (a NAT real
// server's download, a client's upload). The ring gets their gso_size from the vnet header and
// lets the kernel segment on transmit; libpcap has neither, so the snap length covers a whole
// 64 KiB frame and a TCP super-frame is cut here, following tcp_gso_segment (seq advances by the
// payload, FIN and PSH only on the last segment, CWR only on the first, IP id + 1 per segment,
// full checksums); each segment then goes through the pipeline like a frame from the wire.
// Segments are the ingress MTU less 20 bytes, room for TUN's outer header: without gso_size we
// cannot follow the sender's MSS, and a sender that lowered it after TUN's "fragmentation needed"
// would otherwise get its segments cut back to the full MTU and refused again, forever. TCP
// takes any segment size up to the MSS, so DR and NAT only send 1.4% more packets. Other
// super-frames (UDP) are dropped and counted (GSO_UNSUPPORTED).
//
// Fragments: the ring's fanout reassembles them in the kernel; libpcap has no such option, so a
// fragment for a virtual service is dropped and counted (IP_FRAGMENT) by the pipeline.
//
// Per packet nothing is allocated: the binding copies each frame into one Buffer, the header into
// another, and the Buffer handed to inject is a view of a Buffer cut at the frame's length, made
// once per length and kept. Frames the pipeline builds (TUN, ICMP errors) and super-frame
// segments are written to other Buffers and injected the same way.

import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import { loadNative } from '../native/addon';
import { loadPcap, pcapFilter, PCAP_HDR_BYTES, PCAP_HDR_CAPLEN, PCAP_HDR_LEN, type PcapBinding, type PcapBindingSession, type PcapHostSet } from './pcap';
import { PcapOffloads, defaultOffloadStatePath, type EthtoolOps } from './pcap-offloads';
import type { WorkerInit, ToWorker, FromWorker } from './worker';
import { ConnServiceSet } from './conn-services';
import { DestTable } from '../tables/dest-table';
import { ServiceSnapshot } from '../service/snapshot';
import { ConnTable, connNowMs } from '../conn/table';
import { NextHopTable } from '../tables/next-hop';
import { WorkerCounters, WorkerStat } from './counters';
import { Pipeline, NO_TX, QUEUED } from './pipeline';
import { ClientHopTable } from '../tables/client-hops';
import { TX_MAX_OUTPUT_BYTES, type TxQueue } from '../tables/tx-queue';
import { IPIP_HEADER_BYTES } from '../forward/tun';
import { DropReason } from '../packet/drop';
import { completeL4Checksum, partialChecksumL3 } from '../packet/checksum';
import { ipv4HeaderOffset } from '../packet/ethernet';
import { tcpSuperFrameL3, writeTcpSegment } from '../packet/gso';
import { copyBytes } from '../packet/bytes';
import { nullLogger, type Logger } from '../runtime/log';

/** Snap length: a 64 KiB IPv4 super-frame behind an Ethernet header and two VLAN tags. */
export const PCAP_SNAP_LENGTH = 65535 + 14 + 8;
/** Buffer for one segment of a super-frame: at least this, or the largest MTU + headers. */
const SEGMENT_MIN_BYTES = 2048;
/**
 * Kernel buffer per session. In immediate mode libpcap uses a TPACKET_V2 ring of fixed-size
 * frames, each sized for a 64 KiB super-frame and alone in a 128 KiB block: 32 MiB holds 256
 * frames, of any size.
 */
export const PCAP_BUFFER_BYTES = 32 << 20;
/**
 * Frames forwarded per dispatch() at most. The binding's dispatch loops until the ring is empty
 * and cannot be interrupted, and this backend shares the main thread with the control plane:
 * under a sustained overload it would never return, and uvsadm, the health checkers, the
 * snapshot updates and SIGTERM would wait for the load to stop. Past the budget the rest of
 * the dispatch only empties the ring (drops, at a fraction of the cost of forwarding), so the
 * event loop gets a turn every few milliseconds whatever the load.
 */
export const DISPATCH_BUDGET = 2048;
/** Connection-table slots the expiry sweep looks at per tick, and the tick. */
const EXPIRE_BUDGET = 4096;
const EXPIRE_INTERVAL_MS = 10;
const STATS_INTERVAL_MS = 1000;

export interface PcapIfaceInfo {
  mac: string;
  mtu: number;
}

export interface PcapWorkerDeps {
  pcap?: PcapBinding;
  /** ethtool and interface facts (default: the native addon). */
  ethtool?: EthtoolOps;
  ifInfo?: (name: string) => PcapIfaceInfo;
  /** Where the original offload settings are recorded (default /run/uvs/pcap-offloads-<netns>.json). */
  offloadStatePath?: string;
  log?: Logger;
}

interface Capture {
  session: PcapBindingSession;
  filter: string;
  /** ps_drop already counted. */
  drops: number;
}

export class PcapWorker extends EventEmitter {
  readonly workerId: number;
  private readonly pcap: PcapBinding;
  private readonly offloads: PcapOffloads;
  private readonly ethtool: EthtoolOps;
  private readonly log: Logger;
  private readonly ifaces: { name: string; mac: string; mtu: number }[];
  private readonly snapLength: number;
  private readonly conns: ConnTable;
  private readonly dests: DestTable;
  private readonly connServices: ConnServiceSet;
  private readonly counters: WorkerCounters;
  private readonly pipeline: Pipeline;
  private readonly tx: TxQueue;
  /** The TxQueue's memory as a Buffer, for Buffer.copy into txFrame (no allocation). */
  private readonly txMemory: Buffer;
  private readonly txFrame: Buffer;
  private readonly txViews: (Buffer | undefined)[];
  private readonly captures: (Capture | null)[];
  /** Per interface: the function the binding calls for each frame, and on a readable fd. */
  private readonly onPacket: (() => void)[] = [];
  private readonly onReadable: (() => void)[] = [];
  private readonly frame: Buffer;
  private readonly frameView: DataView;
  private readonly header: Uint32Array;
  private readonly headerBuf: Buffer;
  /** injectViews[n]: the first n bytes of `frame` as a Buffer (pcap_inject sends a whole Buffer). */
  private readonly injectViews: (Buffer | undefined)[];
  /** One segment of a super-frame at a time, and its inject views per length. */
  private readonly segment: Buffer;
  private readonly segmentView: DataView;
  private readonly segmentViews: (Buffer | undefined)[];
  private nowMs = 0;
  /** Frames the current dispatch may still forward (DISPATCH_BUDGET). */
  private budget = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastStats = 0;
  private state: 'starting' | 'running' | 'stopped' = 'starting';

  constructor(init: WorkerInit, deps: PcapWorkerDeps = {}) {
    super();
    this.workerId = init.workerId;
    this.pcap = deps.pcap ?? loadPcap();
    const native = deps.ethtool && deps.ifInfo ? null : loadNative();
    const ethtool: EthtoolOps = deps.ethtool ?? native!;
    const ifInfo = deps.ifInfo ?? ((name: string): PcapIfaceInfo => native!.ifInfo(name));
    const log = deps.log ?? nullLogger;
    this.ethtool = ethtool;
    this.log = log;
    this.offloads = new PcapOffloads(ethtool, deps.offloadStatePath ?? defaultOffloadStatePath(), log);
    let maxMtu = 0;
    this.ifaces = init.ifaces.map((i) => {
      const info = ifInfo(i.name);
      maxMtu = Math.max(maxMtu, info.mtu);
      return { name: i.name, mac: info.mac, mtu: info.mtu };
    });
    this.snapLength = PCAP_SNAP_LENGTH;
    // A segment: Ethernet header, two VLAN tags (libpcap puts a stripped tag back), the MTU.
    const segmentBytes = Math.max(SEGMENT_MIN_BYTES, maxMtu + 22);
    this.segment = Buffer.alloc(segmentBytes);
    this.segmentView = new DataView(this.segment.buffer, this.segment.byteOffset, this.segment.byteLength);
    this.segmentViews = new Array<Buffer | undefined>(segmentBytes + 1);
    this.dests = new DestTable(init.destCapacity, init.dests);
    this.connServices = new ConnServiceSet(this.dests);
    this.conns = new ConnTable(init.connCapacity, this.dests, { workerId: init.workerId, buffer: init.conns });
    const nextHops = new NextHopTable(init.destCapacity, init.nextHops);
    this.counters = new WorkerCounters(init.counterLayout, init.counters);
    const clientHops = new ClientHopTable(init.clientHopCapacity, init.clientHops);
    this.pipeline = new Pipeline({
      dests: this.dests, conns: this.conns, nextHops, counters: this.counters, clientHops,
      vnetHdr: false, egressCount: Math.max(1, this.ifaces.length), icmpLimit: init.icmpLimit,
    });
    this.tx = this.pipeline.tx;
    this.txMemory = Buffer.from(this.tx.buffer.buffer, this.tx.buffer.byteOffset, this.tx.buffer.byteLength);
    this.txFrame = Buffer.alloc(TX_MAX_OUTPUT_BYTES);
    this.txViews = new Array<Buffer | undefined>(TX_MAX_OUTPUT_BYTES + 1);
    this.captures = this.ifaces.map(() => null);
    const frameMemory = new ArrayBuffer(this.snapLength);
    this.frame = Buffer.from(frameMemory);
    this.frameView = new DataView(frameMemory);
    const headerMemory = new ArrayBuffer(PCAP_HDR_BYTES);
    this.headerBuf = Buffer.from(headerMemory);
    this.header = new Uint32Array(headerMemory);
    this.injectViews = new Array<Buffer | undefined>(this.snapLength + 1);
    for (let i = 0; i < this.ifaces.length; i++) {
      this.onPacket.push(() => this.packet(i));
      this.onReadable.push(() => this.readable(i));
    }
    // Like a Worker: 'ready' (or 'error' + 'exit') comes after the caller attached its listeners.
    setImmediate(() => this.start());
  }

  /** The worker_threads-like entry: handled at once, answers come asynchronously. */
  postMessage(msg: ToWorker): void {
    if (this.state === 'stopped') return;
    try {
      if (msg.type === 'snapshot') {
        const snapshot = ServiceSnapshot.attach(msg.snapshot);
        const services = this.connServices.apply(snapshot, msg);
        if (services === null) return; // a delta on a generation never seen: a full one follows
        this.pipeline.setSnapshot(snapshot, services);
        this.reply({ type: 'applied', workerId: this.workerId, generation: snapshot.generation });
      } else if (msg.type === 'filter') {
        this.setHosts(msg.hosts ?? { destinations: [], sources: [] });
      } else if (msg.type === 'stop') {
        this.shutdown(0);
      }
    } catch (err) {
      this.reply({ type: 'error', workerId: this.workerId, message: (err as Error).message });
    }
  }

  terminate(): Promise<number> {
    this.shutdown(1);
    return Promise.resolve(1);
  }

  /** The libpcap filter each interface captures with now (null: no session). For tests and logs. */
  filters(): (string | null)[] {
    return this.captures.map((c) => c?.filter ?? null);
  }

  get snapLen(): number {
    return this.snapLength;
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  private start(): void {
    if (this.state !== 'starting') return;
    try {
      this.offloads.disable(this.ifaces.map((i) => i.name));
      for (const { name } of this.ifaces) {
        let segmenting = true;
        try {
          segmenting = this.ethtool.ethtoolGet(name, 'gso') || this.ethtool.ethtoolGet(name, 'tso');
        } catch {
          // unknown: libpcap will decide by itself
        }
        if (!segmenting) {
          this.log.warn(`pcap: GSO and TSO are off on ${name}, so libpcap cuts captured frames at the MTU: ` +
            `a neighbour's TSO super-frames will be dropped (TRUNCATED_IP); ethtool -K ${name} gso on lets uvs segment them`);
        }
      }
    } catch (err) {
      this.state = 'stopped';
      this.emit('error', err);
      this.emit('exit', 1);
      return;
    }
    this.state = 'running';
    this.timer = setInterval(() => this.tick(), EXPIRE_INTERVAL_MS);
    this.timer.unref();
    this.emit('message', { type: 'ready', workerId: this.workerId } satisfies FromWorker);
  }

  private shutdown(code: number): void {
    if (this.state === 'stopped') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (let i = 0; i < this.captures.length; i++) {
      const c = this.captures[i];
      this.captures[i] = null;
      if (c) closeCapture(c, this.frame, this.headerBuf, false);
    }
    if (wasRunning) this.offloads.restore();
    setImmediate(() => this.emit('exit', code));
  }

  private reply(msg: FromWorker): void {
    setImmediate(() => this.emit('message', msg));
  }

  /** Opens a session with the new filter where it changed; then drains and closes the old one. */
  private setHosts(hosts: PcapHostSet): void {
    const errors: string[] = [];
    for (let i = 0; i < this.ifaces.length; i++) {
      const iface = this.ifaces[i]!;
      const filter = pcapFilter(iface.mac, hosts);
      const old = this.captures[i] ?? null;
      if ((old?.filter ?? null) === filter) continue;
      let next: Capture | null = null;
      if (filter !== null) {
        try {
          next = this.open(i, filter);
        } catch (err) {
          errors.push(`${iface.name}: ${(err as Error).message}`);
          continue; // keep the old session: its filter is stale, but it still forwards
        }
      }
      this.captures[i] = next;
      if (old) closeCapture(old, this.frame, this.headerBuf, true);
    }
    if (errors.length > 0) throw new Error(`pcap: cannot open a capture: ${errors.join('; ')}`);
  }

  private open(i: number, filter: string): Capture {
    const iface = this.ifaces[i]!;
    const session = new this.pcap.PcapSession();
    const warnings: string[] = [];
    const linkType = session.open_live(
      iface.name, filter, PCAP_BUFFER_BYTES, this.snapLength, '', this.onPacket[i]!,
      false, 0 /* immediate mode */, (w: string) => warnings.push(w), false /* not promiscuous */,
    );
    if (linkType !== 'LINKTYPE_ETHERNET') {
      closeCapture({ session, filter, drops: 0 }, this.frame, this.headerBuf, false);
      throw new Error(`${iface.name} has link type ${linkType}; uvs forwards Ethernet frames only`);
    }
    session.read_callback = this.onReadable[i]!;
    session.start_polling();
    return { session, filter, drops: 0 };
  }

  // ---- the packet path --------------------------------------------------------------------------

  /** The capture socket of interface `i` is readable: take everything it holds. */
  private readable(i: number): void {
    const c = this.captures[i];
    if (!c) return;
    this.nowMs = connNowMs();
    this.budget = DISPATCH_BUDGET;
    const t0 = performance.now();
    c.session.dispatch(this.frame, this.headerBuf);
    this.counters.add(WorkerStat.RX_BATCHES, 1);
    this.counters.add(WorkerStat.PROCESS_NS, (performance.now() - t0) * 1e6);
    this.counters.add(WorkerStat.YIELDS, 1);
  }

  /** One frame from interface `ingress`, copied into this.frame by the binding. */
  private packet(ingress: number): void {
    const counters = this.counters;
    counters.add(WorkerStat.RX_FRAMES, 1);
    if (--this.budget < 0) {
      // Past the budget of this dispatch: shed (see DISPATCH_BUDGET), counted with the kernel's
      // ring drops — the frames an overflowing ring would have lost.
      counters.add(WorkerStat.RING_DROPS, 1);
      return;
    }
    const caplen = this.header[PCAP_HDR_CAPLEN]!;
    const wirelen = this.header[PCAP_HDR_LEN]!;
    const frame = this.frame;
    if (caplen !== wirelen) {
      // Cut at the snap length (larger than any IPv4 packet): forwarding what we have would
      // send a damaged packet.
      counters.drop(DropReason.TRUNCATED_IP);
      return;
    }
    const mtu = this.ifaces[ingress]!.mtu;
    if (caplen > mtu + 14 && frameL3Length(this.frameView, caplen) > mtu) {
      counters.add(WorkerStat.GSO_FRAMES, 1);
      this.segmentAndForward(ingress, mtu, caplen);
      return;
    }
    const partial = partialChecksumL3(frame, this.frameView, caplen);
    if (partial >= 0) completeL4Checksum(frame, this.frameView, partial);
    this.forward(frame, this.frameView, caplen, ingress, this.injectViews);
  }

  /** The pipeline, then out: in place (DR, NAT) or built in the TxQueue (TUN, ICMP errors). */
  private forward(buf: Buffer, view: DataView, length: number, ingress: number, views: (Buffer | undefined)[]): void {
    const egress = this.pipeline.process(buf, view, 0, length, this.nowMs, ingress);
    if (egress === NO_TX) return;
    if (egress === QUEUED) {
      this.sendQueued();
      return;
    }
    // The IP packet without bytes after it (Pipeline.txLength; Ethernet padding kept).
    const n = this.pipeline.txLength;
    let out = views[n];
    if (out === undefined) {
      out = buf.subarray(0, n);
      views[n] = out;
    }
    this.inject(egress, out);
  }

  /** Cuts the TCP super-frame in this.frame into segments of the ingress MTU and forwards each. */
  private segmentAndForward(ingress: number, mtu: number, length: number): void {
    const frame = this.frame;
    const l3 = tcpSuperFrameL3(frame, this.frameView, length);
    if (l3 < 0) {
      this.counters.drop(DropReason.GSO_UNSUPPORTED);
      return;
    }
    const view = this.frameView;
    const ihl = (frame[l3]! & 0x0f) * 4;
    const headerEnd = l3 + ihl + (frame[l3 + ihl + 12]! >>> 4) * 4;
    const end = l3 + view.getUint16(l3 + 2);
    const mss = mtu - IPIP_HEADER_BYTES - (headerEnd - l3);
    if (mss <= 0 || headerEnd - l3 + mss > this.segment.length - l3) {
      this.counters.drop(DropReason.GSO_UNSUPPORTED);
      return;
    }
    let index = 0;
    for (let at = headerEnd; at < end; at += mss, index++) {
      const payload = Math.min(mss, end - at);
      // The link-layer header (Ethernet and any VLAN tags) as is, then the segment behind it.
      copyBytes(frame, view, 0, this.segment, this.segmentView, 0, l3);
      const segLength = l3 + writeTcpSegment(frame, view, l3, at, payload, index, at + payload >= end, this.segment, this.segmentView, l3);
      this.forward(this.segment, this.segmentView, segLength, ingress, this.segmentViews);
    }
  }

  /** Sends what the pipeline built in its TxQueue (TUN, ICMP errors), then empties it. */
  private sendQueued(): void {
    const tx = this.tx;
    for (let e = 0; e < tx.counts.length; e++) {
      const n = tx.counts[e]!;
      const offsets = tx.offsets[e]!;
      const lengths = tx.lengths[e]!;
      for (let k = 0; k < n; k++) {
        const length = lengths[k]!;
        if (length > this.txFrame.length) {
          this.counters.add(WorkerStat.TX_DROPPED, 1);
          continue;
        }
        const start = offsets[k]!;
        this.txMemory.copy(this.txFrame, 0, start, start + length);
        let view = this.txViews[length];
        if (view === undefined) {
          view = this.txFrame.subarray(0, length);
          this.txViews[length] = view;
        }
        this.inject(e, view);
      }
    }
    tx.reset();
  }

  private inject(egress: number, frame: Buffer): void {
    const out = egress < this.captures.length ? this.captures[egress] : null;
    if (!out) {
      this.counters.drop(DropReason.NO_NEXT_HOP);
      return;
    }
    try {
      out.session.inject(frame);
      this.counters.add(WorkerStat.TX_FRAMES, 1);
    } catch {
      // pcap_inject failed (ENOBUFS, EMSGSIZE, the interface went down): the frame is lost, as
      // a refused sendmmsg loses it on the ring.
      this.counters.add(WorkerStat.TX_DROPPED, 1);
    }
  }

  /** Expiry sweep (idle links too) and the kernel's drop counts. */
  private tick(): void {
    const now = connNowMs();
    this.counters.add(WorkerStat.EXPIRED, this.conns.expire(now, EXPIRE_BUDGET));
    if (now - this.lastStats < STATS_INTERVAL_MS) return;
    this.lastStats = now;
    for (const c of this.captures) {
      if (!c) continue;
      try {
        const drops = c.session.stats().ps_drop;
        if (drops > c.drops) this.counters.add(WorkerStat.RING_DROPS, drops - c.drops);
        c.drops = drops;
      } catch {
        // closed under us: nothing to count
      }
    }
  }
}

/**
 * Sessions closed but not yet freed by the binding: kept reachable, because the binding's
 * ObjectWrap lets the garbage collector free a PcapSession whose uv_poll is still registered,
 * and the next readable event would then run on freed memory.
 */
const closingSessions = new Set<PcapBindingSession>();

/** Sessions closed whose handle the binding has not freed yet (see closeCapture). */
export function pcapSessionsClosing(): number {
  return closingSessions.size;
}

/**
 * Closes a binding session for good. close() only sets libpcap's break flag; the handle and the
 * poll are freed by the next dispatch() that returns -2. In non-blocking mode libpcap reports the
 * break only once a packet is there to read (pcap_read_linux_mmap_v3 checks the flag between
 * packets), so when it returns 0 instead, the session stays reachable with a read callback that
 * finishes the job on its next readable event — the break flag makes that dispatch return -2
 * before it hands over any packet. With `drain`, frames already queued are processed first (a
 * session being replaced by one with a new filter, which is already capturing).
 */
function closeCapture(c: Capture, frame: Buffer, header: Buffer, drain: boolean): void {
  const session = c.session;
  if (drain) session.dispatch(frame, header);
  session.close();
  if (session.dispatch(frame, header) === -2) {
    session.read_callback = undefined;
    return;
  }
  closingSessions.add(session);
  session.read_callback = (): void => {
    if (session.dispatch(frame, header) !== -2) return;
    session.read_callback = undefined;
    closingSessions.delete(session);
  };
}

/** The IPv4 total length of the frame (0 when it is not IPv4): what must fit the MTU. */
function frameL3Length(view: DataView, length: number): number {
  const l3 = ipv4HeaderOffset(view, length);
  return l3 < 0 ? 0 : view.getUint16(l3 + 2);
}
