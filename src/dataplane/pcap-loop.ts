// The libpcap backend (`uvsd --io pcap`): the portable fallback and the benchmark baseline.
//
// The `pcap` package is a NAN addon and loads in one thread per process, so this backend is not a
// worker thread: it runs the same Pipeline as a ring worker, on the main thread, driven by the
// binding's uv_poll on each capture socket. To the DataPlane it looks like a worker — it takes the
// same init data and the same messages (filter, snapshot, stop) and answers the same way (ready,
// applied, error, exit) — so the DataPlane's snapshot/apply/restart logic is shared; it is
// "worker 0" for the counters and the connection table.
//
// Per interface: one pcap session in immediate mode (buffer_timeout 0: no block timeout, each
// frame is handed over as it arrives), a snap length of ~2 KiB (wire-sized frames: see
// pcap-offloads.ts for why super-frames are not expected), not promiscuous, and a libpcap filter
// equivalent to the ring's kernel filter (pcap.ts pcapFilter). libpcap cannot change a session's
// filter, so a new set of VIPs opens a new session before the old one is drained and closed.
// Frames are sent back out with pcap_inject, one call per frame.
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
// Fragments: the ring's fanout reassembles them in the kernel; libpcap has no such option, so a
// fragment for a virtual service is dropped and counted (IP_FRAGMENT) by the pipeline.
//
// Per packet nothing is allocated: the binding copies each frame into one Buffer, the header into
// another, and the Buffer handed to inject is a view of a Buffer cut at the frame's length, made
// once per length and kept. Frames the pipeline builds (TUN, ICMP errors) are copied into a second
// Buffer and injected the same way.

import { EventEmitter } from 'node:events';
import { loadNative } from './native';
import { loadPcap, pcapFilter, PCAP_HDR_BYTES, PCAP_HDR_CAPLEN, PCAP_HDR_LEN, type PcapBinding, type PcapBindingSession, type PcapHostSet } from './pcap';
import { PcapOffloads, defaultOffloadStatePath, type EthtoolOps } from './pcap-offloads';
import type { WorkerInit, ToWorker, FromWorker } from './worker';
import { attachConnServices } from './conn-services';
import { DestTable } from '../service/dest-table';
import { ServiceSnapshot } from '../service/snapshot';
import { ConnTable, connNowMs } from '../conn/table';
import { NextHopTable } from './next-hop';
import { WorkerCounters, WorkerStat } from './counters';
import { Pipeline, NO_TX, QUEUED } from './pipeline';
import { ClientHopTable } from './client-hops';
import { TX_MAX_OUTPUT_BYTES, type TxQueue } from './tx-queue';
import { DropReason } from '../packet/drop';
import { foldSum, onesComplementSum, pseudoHeaderSum } from '../packet/checksum';

/** Smallest snap length: an Ethernet frame of a 1500-byte MTU with a VLAN tag, and room. */
export const PCAP_MIN_SNAP_LENGTH = 2048;
/** Kernel buffer per session (libpcap's TPACKET_V3 ring). */
export const PCAP_BUFFER_BYTES = 4 << 20;
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
  log?: (level: 'info' | 'warn', message: string) => void;
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
  private readonly ifaces: { name: string; mac: string }[];
  private readonly snapLength: number;
  private readonly conns: ConnTable;
  private readonly dests: DestTable;
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
  private nowMs = 0;
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
    const log = deps.log ?? ((): void => undefined);
    this.offloads = new PcapOffloads(ethtool, deps.offloadStatePath ?? defaultOffloadStatePath(), log);
    let maxMtu = 0;
    this.ifaces = init.ifaces.map((i) => {
      const info = ifInfo(i.name);
      maxMtu = Math.max(maxMtu, info.mtu);
      return { name: i.name, mac: info.mac };
    });
    // Ethernet header, two VLAN tags (libpcap puts a stripped tag back into the frame), the MTU.
    this.snapLength = Math.max(PCAP_MIN_SNAP_LENGTH, maxMtu + 22);
    this.dests = new DestTable(init.destCapacity, init.dests);
    this.conns = new ConnTable(init.connCapacity, this.dests, { workerId: init.workerId, buffer: init.conns });
    const nextHops = new NextHopTable(init.destCapacity, init.nextHops);
    this.counters = new WorkerCounters(init.counterLayout, init.counters);
    const clientHops = new ClientHopTable(init.clientHopCapacity, init.clientHops);
    this.pipeline = new Pipeline({
      dests: this.dests, conns: this.conns, nextHops, counters: this.counters, clientHops,
      vnetHdr: false, egressCount: Math.max(1, this.ifaces.length),
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
        this.pipeline.setSnapshot(snapshot, attachConnServices(snapshot, msg.services, this.dests));
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
    } catch (err) {
      this.state = 'stopped';
      this.emit('error', err as Error);
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
    const caplen = this.header[PCAP_HDR_CAPLEN]!;
    const wirelen = this.header[PCAP_HDR_LEN]!;
    const frame = this.frame;
    if (caplen !== wirelen) {
      // Cut at the snap length: a super-frame (an offload still on somewhere), or a frame larger
      // than the MTU. Forwarding what we have would send a damaged packet.
      if (wirelen > this.snapLength) counters.add(WorkerStat.GSO_FRAMES, 1);
      counters.drop(DropReason.TRUNCATED_IP);
      return;
    }
    const partial = partialChecksumL3(frame, this.frameView, caplen);
    if (partial >= 0) completeL4Checksum(frame, this.frameView, partial);
    const egress = this.pipeline.process(frame, this.frameView, 0, caplen, this.nowMs, ingress);
    if (egress === NO_TX) return;
    if (egress === QUEUED) {
      this.sendQueued();
      return;
    }
    let view = this.injectViews[caplen];
    if (view === undefined) {
      view = frame.subarray(0, caplen);
      this.injectViews[caplen] = view;
    }
    this.inject(egress, view);
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
        this.txMemory.copy(this.txFrame, 0, offsets[k]!, offsets[k]! + length);
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
 * Closes a binding session for good: close() only sets libpcap's break flag, and the dispatch()
 * after it returns -2 and frees the handle and the poll. With `drain`, frames already queued are
 * processed first (a session being replaced by one with a new filter).
 */
function closeCapture(c: Capture, frame: Buffer, header: Buffer, drain: boolean): void {
  c.session.read_callback = undefined;
  if (drain) c.session.dispatch(frame, header);
  c.session.close();
  c.session.dispatch(frame, header);
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;

/**
 * The offset of the IPv4 header when `frame` (Ethernet, length `length`) is a TCP or UDP packet,
 * not a fragment, whose checksum field holds only the folded pseudo-header sum — the state a
 * CHECKSUM_PARTIAL skb is captured in; otherwise -1. Reads only within `length`.
 */
export function partialChecksumL3(frame: Uint8Array, view: DataView, length: number): number {
  let l3 = 14;
  if (length < l3 + 20) return -1;
  let type = view.getUint16(12);
  // At most two VLAN tags (802.1ad outer, 802.1Q inner).
  for (let tags = 0; tags < 2 && (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ); tags++) {
    if (length < l3 + 4 + 20) return -1;
    type = view.getUint16(l3 + 2);
    l3 += 4;
  }
  if (type !== ETHERTYPE_IPV4) return -1;
  const vihl = frame[l3]!;
  if (vihl >>> 4 !== 4) return -1;
  const ihl = (vihl & 0x0f) * 4;
  const totalLength = view.getUint16(l3 + 2);
  if (ihl < 20 || totalLength < ihl || l3 + totalLength > length) return -1;
  if ((view.getUint16(l3 + 6) & 0x3fff) !== 0) return -1; // MF or a fragment offset
  const protocol = frame[l3 + 9]!;
  const l4Length = totalLength - ihl;
  let field: number;
  if (protocol === 6) {
    if (l4Length < 20) return -1;
    field = l3 + ihl + 16;
  } else if (protocol === 17) {
    if (l4Length < 8) return -1;
    field = l3 + ihl + 6;
  } else {
    return -1;
  }
  const stored = view.getUint16(field);
  if (protocol === 17 && stored === 0) return -1; // UDP without a checksum (RFC 768)
  const pseudo = foldSum(pseudoHeaderSum(view.getUint32(l3 + 12), view.getUint32(l3 + 16), protocol, l4Length));
  return stored === pseudo ? l3 : -1;
}

/** Computes the TCP/UDP checksum of the IPv4 packet at `l3` from scratch (RFC 793 3.1, RFC 768). */
export function completeL4Checksum(frame: Uint8Array, view: DataView, l3: number): void {
  const ihl = (frame[l3]! & 0x0f) * 4;
  const totalLength = view.getUint16(l3 + 2);
  const protocol = frame[l3 + 9]!;
  const l4 = l3 + ihl;
  const l4Length = totalLength - ihl;
  const field = l4 + (protocol === 6 ? 16 : 6);
  view.setUint16(field, 0);
  const sum = onesComplementSum(frame, l4, l4Length, pseudoHeaderSum(view.getUint32(l3 + 12), view.getUint32(l3 + 16), protocol, l4Length));
  let checksum = ~foldSum(sum) & 0xffff;
  // UDP sends a computed zero as all ones: zero means "no checksum" (RFC 768).
  if (protocol === 17 && checksum === 0) checksum = 0xffff;
  view.setUint16(field, checksum);
}
