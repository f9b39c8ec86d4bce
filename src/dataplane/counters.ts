// Per-worker traffic counters in shared memory.
//
// Each worker owns one Float64Array over its own SharedArrayBuffer and is its only writer, so a
// counter update is a plain `+=` — no Atomics, no BigInt on the packet path (docs/architecture.md, "Counters"). Float64
// counts exactly up to 2^53, which at 10 Mpps lasts 28 years. The control plane sums the workers'
// arrays when `uvsadm --stats`, `--rate` or the worker listing asks; a torn read is impossible
// for an aligned 8-byte value on the machines Node supports, and a count one packet behind is fine.
//
// Layout, in cells:
//   [ services: maxServices × STAT_CELLS ][ dests: maxDests × STAT_CELLS ][ drops: DROP_CELLS ][ worker: WorkerStat ]

import type { CounterSource, Counters } from '../service/stats';

/** The five IPVS counters of a service or real server (struct ip_vs_kstats). */
export const enum Stat {
  CONNS = 0,
  INPKTS = 1,
  OUTPKTS = 2,
  INBYTES = 3,
  OUTBYTES = 4,
}
export const STAT_CELLS = 5;

/** Room for drop reasons: DropReason codes index it (codes are below 64). */
export const DROP_CELLS = 64;

/** Per-worker figures that explain a run (the worker listing). */
export const enum WorkerStat {
  RX_BATCHES = 0,
  RX_FRAMES = 1,
  TX_FRAMES = 2,
  /** Frames the kernel refused in sendmmsg. */
  TX_DROPPED = 3,
  /** Frames that were not for a virtual service or one of its flows (left to the kernel). */
  NOT_OURS = 4,
  /** Entries freed by this worker's expiry sweep. */
  EXPIRED = 5,
  /**
   * Event-loop yields: ring workers count the turns cut short by their drain budget (frames were
   * left for the next turn, an overloaded worker); the pcap loop counts each of its yields.
   */
  YIELDS = 6,
  /** Frames received with a vnet header announcing GSO (super-frames). */
  GSO_FRAMES = 7,
  /** Generation of the service snapshot this worker runs. */
  SNAPSHOT_GEN = 8,
  /** Time spent processing frames (parse → rewrite), ns, and in send(), ns. */
  PROCESS_NS = 9,
  SEND_NS = 10,
  /** Kernel ring drops (PACKET_STATISTICS tp_drops), summed. */
  RING_DROPS = 11,
  /** Entries the flood defence (drop_entry, src/conn/defense.ts) evicted from this worker's
   *  sweep, by EvictReason: handshakes never completed, UDP flows, TCP without client data, TCP
   *  with little traffic. Also counted in EXPIRED. */
  EVICT_SYN = 12,
  EVICT_UDP = 13,
  EVICT_NODATA = 14,
  EVICT_FEW = 15,
  /** Of TX_DROPPED, frames shed because a socket's send memory or the device queue was full
   *  (sendmmsg never blocks the worker: MSG_DONTWAIT, EAGAIN/ENOBUFS). */
  TX_SHED = 16,
  /** Turns that began with a wake-up from epoll (libuv's readable callback), and with a frame the
   *  busy poll found (native RingPoller spin): how often the busy poll spares a wake-up. */
  EPOLL_WAKEUPS = 17,
  BUSY_POLL_HITS = 18,
  /** The busy-poll guards' trips (native RingPoller `contended`, `starved`), running totals: each
   *  one paused spinning for a while (the CPUs were busy with other work, or a spin was kept off
   *  its CPU). Copied from the poller at each sweep, so up to SWEEP_INTERVAL_MS behind. */
  BUSY_POLL_CONTENDED = 19,
  BUSY_POLL_STARVED = 20,
  /** Spins the native watchdog (SpinWatchdog) put back to the thread's own policy because a busy
   *  poll under SCHED_IDLE was kept off its CPU for 2 ms (by a thread that never blocks on that
   *  CPU); each is followed by a STARVED trip. Copied like the two above. */
  BUSY_POLL_RESCUED = 21,
  /** Spins made at the thread's own policy, not under SCHED_IDLE, because the worker's traffic was
   *  sustained (SpinWindow.sustained: turns within 100 µs of each other). */
  BUSY_POLL_SUSTAINED = 22,
  /** --io xdp: of RX_FRAMES, those that came through an AF_XDP socket (the rest came through the
   *  ring), and of those, frames whose TCP/UDP checksum the sender had left to offload and the
   *  addon completed (native XdpSocket.rx: csumCompleted). */
  XDP_FRAMES = 23,
  XDP_CSUM_COMPLETED = 24,
  /** The in-kernel fast path (fast-path.ts): flows this worker offloaded, flows that left it (a
   *  SYN, FIN or RST, a super-frame, or freed while offloaded), offers the kernel refused (map
   *  full), and expiries put off because the kernel had forwarded packets meanwhile. */
  FAST_OFFLOADS = 25,
  FAST_LEFT = 26,
  FAST_REFUSED = 27,
  FAST_KEPT = 28,
  /** Kernel scheduling (uvsd --fast-path-sched): connections the program scheduled whose entry
   *  user space created, and those it could not take (table full, service gone, an entry of its
   *  own for the tuple), whose keys it took back. */
  FAST_SCHEDULED = 29,
  FAST_SCHED_DROPPED = 30,
}
export const WORKER_STAT_CELLS = 32;

export const WORKER_STAT_NAMES: readonly string[] = [
  'rx_batches', 'rx_frames', 'tx_frames', 'tx_dropped', 'not_ours', 'expired', 'yields', 'gso_frames',
  'snapshot_gen', 'process_ns', 'send_ns', 'ring_drops', 'evict_syn', 'evict_udp', 'evict_nodata', 'evict_few', 'tx_shed',
  'epoll_wakeups', 'busy_poll_hits', 'busy_poll_contended', 'busy_poll_starved', 'busy_poll_rescued',
  'busy_poll_sustained', 'xdp_frames', 'xdp_csum_completed', 'fast_offloads', 'fast_left', 'fast_refused', 'fast_kept',
  'fast_scheduled', 'fast_sched_dropped',
];

export interface CounterLayout {
  maxServices: number;
  maxDests: number;
}

export function counterCells(layout: CounterLayout): number {
  return (layout.maxServices + layout.maxDests) * STAT_CELLS + DROP_CELLS + WORKER_STAT_CELLS;
}

/** One worker's counters; the worker writes, everyone may read. */
export class WorkerCounters {
  readonly buffer: SharedArrayBuffer;
  readonly cells: Float64Array;
  /** First cell of the real-server region, of the drop region and of the worker region. */
  readonly destBase: number;
  readonly dropBase: number;
  readonly workerBase: number;

  constructor(readonly layout: CounterLayout, buffer?: SharedArrayBuffer) {
    const bytes = counterCells(layout) * 8;
    if (buffer && buffer.byteLength !== bytes) {
      throw new RangeError(`WorkerCounters: buffer is ${buffer.byteLength} bytes, expected ${bytes}`);
    }
    this.buffer = buffer ?? new SharedArrayBuffer(bytes);
    this.cells = new Float64Array(this.buffer);
    this.destBase = layout.maxServices * STAT_CELLS;
    this.dropBase = this.destBase + layout.maxDests * STAT_CELLS;
    this.workerBase = this.dropBase + DROP_CELLS;
  }

  /** A packet in the client → real server direction (hot path). */
  countIn(service: number, dest: number, bytes: number): void {
    const c = this.cells;
    const s = service * STAT_CELLS;
    const d = this.destBase + dest * STAT_CELLS;
    c[s + Stat.INPKTS]! += 1;
    c[s + Stat.INBYTES]! += bytes;
    c[d + Stat.INPKTS]! += 1;
    c[d + Stat.INBYTES]! += bytes;
  }

  /** A reply in the real server → client direction (NAT). */
  countOut(service: number, dest: number, bytes: number): void {
    const c = this.cells;
    const s = service * STAT_CELLS;
    const d = this.destBase + dest * STAT_CELLS;
    c[s + Stat.OUTPKTS]! += 1;
    c[s + Stat.OUTBYTES]! += bytes;
    c[d + Stat.OUTPKTS]! += 1;
    c[d + Stat.OUTBYTES]! += bytes;
  }

  /** A new connection scheduled to `dest`. */
  countConn(service: number, dest: number): void {
    this.cells[service * STAT_CELLS + Stat.CONNS]! += 1;
    this.cells[this.destBase + dest * STAT_CELLS + Stat.CONNS]! += 1;
  }

  drop(reason: number): void {
    this.cells[this.dropBase + reason]! += 1;
  }

  /** An entry evicted by the flood defence (EvictionSink of the ConnTable; EvictReason). */
  evicted(reason: number): void {
    this.cells[this.workerBase + WorkerStat.EVICT_SYN + reason]! += 1;
  }

  add(stat: WorkerStat, n: number): void {
    this.cells[this.workerBase + stat]! += n;
  }

  set(stat: WorkerStat, v: number): void {
    this.cells[this.workerBase + stat] = v;
  }

  get(stat: WorkerStat): number {
    return this.cells[this.workerBase + stat]!;
  }

  drops(reason: number): number {
    return this.cells[this.dropBase + reason]!;
  }

  /** Zeroes the service's and real servers' counters (a restarted worker starts from the last
   *  values instead, see WorkerSet). Control plane only. */
  clear(): void {
    this.cells.fill(0);
  }
}

/** The data plane's CounterSource: sums over every worker, including retired ones' final counts. */
export class CounterSum implements CounterSource {
  constructor(private readonly workers: () => readonly WorkerCounters[]) {}

  readService(serviceId: number, out: Counters): void {
    this.sum(serviceId * STAT_CELLS, out);
  }

  readDest(slot: number, out: Counters): void {
    const w = this.workers();
    this.sum((w[0]?.destBase ?? 0) + slot * STAT_CELLS, out);
  }

  /** Bulk readService for the estimator's tick: the workers' array is fetched once, and each
   *  worker's cells are added in the same order as sum() adds them, so the figures are the same. */
  readServices(ids: Int32Array, count: number, out: Float64Array): void {
    this.sumMany(this.workers(), 0, ids, count, out);
  }

  readDests(slots: Int32Array, count: number, out: Float64Array): void {
    const w = this.workers();
    this.sumMany(w, w[0]?.destBase ?? 0, slots, count, out);
  }

  /** The service region's cells over every slot, removed services' included: a removed
   *  service's counts stay in its cells (a re-added one starts from a StatsBook baseline), so the
   *  sum only grows, as the kernel's tot_stats. */
  readTotal(out: Counters): void {
    out.conns = out.inpkts = out.outpkts = out.inbytes = out.outbytes = 0;
    for (const w of this.workers()) {
      const c = w.cells;
      for (let base = 0; base < w.destBase; base += STAT_CELLS) {
        out.conns += c[base + Stat.CONNS]!;
        out.inpkts += c[base + Stat.INPKTS]!;
        out.outpkts += c[base + Stat.OUTPKTS]!;
        out.inbytes += c[base + Stat.INBYTES]!;
        out.outbytes += c[base + Stat.OUTBYTES]!;
      }
    }
  }

  drops(reason: number): number {
    let n = 0;
    for (const w of this.workers()) n += w.drops(reason);
    return n;
  }

  private sumMany(workers: readonly WorkerCounters[], base: number, ids: Int32Array, count: number, out: Float64Array): void {
    out.fill(0, 0, count * STAT_CELLS);
    for (const w of workers) {
      const c = w.cells;
      for (let i = 0, o = 0; i < count; i++, o += STAT_CELLS) {
        const at = base + ids[i]! * STAT_CELLS;
        out[o + Stat.CONNS]! += c[at + Stat.CONNS]!;
        out[o + Stat.INPKTS]! += c[at + Stat.INPKTS]!;
        out[o + Stat.OUTPKTS]! += c[at + Stat.OUTPKTS]!;
        out[o + Stat.INBYTES]! += c[at + Stat.INBYTES]!;
        out[o + Stat.OUTBYTES]! += c[at + Stat.OUTBYTES]!;
      }
    }
  }

  private sum(base: number, out: Counters): void {
    out.conns = out.inpkts = out.outpkts = out.inbytes = out.outbytes = 0;
    for (const w of this.workers()) {
      const c = w.cells;
      out.conns += c[base + Stat.CONNS]!;
      out.inpkts += c[base + Stat.INPKTS]!;
      out.outpkts += c[base + Stat.OUTPKTS]!;
      out.inbytes += c[base + Stat.INBYTES]!;
      out.outbytes += c[base + Stat.OUTBYTES]!;
    }
  }
}
