// Traffic counters and IPVS's rate estimator.
//
// The data plane counts per service and per real server (conns, packets and bytes each way) in
// per-worker, single-writer cells; it implements CounterSource by summing them over its workers.
// The control plane reads those sums here: `--stats` shows them (minus what `-Z` zeroed), and the
// estimator turns them into `--rate` figures exactly as the kernel's ip_vs_est.c does:
//
//   every 2 seconds, for each counter:
//     conns, packets:  rate = (now - last) << 9        (per second, scaled by 2^10)
//     bytes:           rate = (now - last) << 4        (per second, scaled by 2^5)
//     avg += (rate - avg) >> 2                          (EWMA with weight 1/4)
//   read out:  cps/pps = (avg + 0x1FF) >> 10,  bps = (avg + 0xF) >> 5
//
// Until the data plane is attached, ZERO_COUNTERS answers zeros: there is no traffic, so every
// figure is truthfully zero.

export interface Counters {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

export interface Rates {
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

/** What the data plane implements: totals since start, summed over workers, into `out`. */
export interface CounterSource {
  /** Service with stable id `serviceId` (ServiceEntry.id). */
  readService(serviceId: number, out: Counters): void;
  /** Real server in DestTable slot `slot`. */
  readDest(slot: number, out: Counters): void;
  /** Every service's traffic since start, removed services included (the kernel's tot_stats,
   *  /proc/net/ip_vs_stats); absent = zeros. */
  readTotal?(out: Counters): void;
  /** The bulk forms the estimator's tick uses when present: the totals of `ids[0..count)` into
   *  `out`, COUNTER_CELLS cells each (conns, inpkts, outpkts, inbytes, outbytes), exactly
   *  the figures readService / readDest give one by one. A tick of 100,000 real servers then
   *  makes one call instead of 100,000. */
  readServices?(ids: Int32Array, count: number, out: Float64Array): void;
  readDests?(slots: Int32Array, count: number, out: Float64Array): void;
}

export function zeroCounters(): Counters {
  return { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
}

/** The source used while no data plane is running: no packets, so no counts. */
export const ZERO_COUNTERS: CounterSource = {
  readService(_serviceId: number, out: Counters): void {
    out.conns = out.inpkts = out.outpkts = out.inbytes = out.outbytes = 0;
  },
  readDest(_slot: number, out: Counters): void {
    out.conns = out.inpkts = out.outpkts = out.inbytes = out.outbytes = 0;
  },
  readServices(_ids: Int32Array, count: number, out: Float64Array): void {
    out.fill(0, 0, count * COUNTER_CELLS);
  },
  readDests(_slots: Int32Array, count: number, out: Float64Array): void {
    out.fill(0, 0, count * COUNTER_CELLS);
  },
};

/** Cells per entity in the bulk reads (CounterSource.readServices / readDests). */
export const COUNTER_CELLS = 5;

/** The estimator's period (ip_vs_est.c: IPVS_EST_TICK is 2 seconds). */
export const ESTIMATOR_PERIOD_MS = 2000;

/** uvsd runs the period in this many slices (StatsBook.tickSlice), one every 200 ms. */
export const ESTIMATOR_SLICES = 10;

/** Ids per block of a slice (tickAll): consecutive ids stay together, for the cache. */
const TICK_BLOCK = 1024;

/** Arithmetic shift right by `n` for integers beyond 32 bits (the kernel works on s64/u64). */
function shr(v: number, n: number): number {
  return Math.floor(v / 2 ** n);
}

// One entity's estimator state and -Z baseline, as doubles at `at` in a Float64Array: the last
// totals, the scaled averages (struct ip_vs_estimator), the baseline. A table of 100,000 real
// servers keeps them in one array rather than 300,000 objects for the collector to trace.
const LAST = 0;
const AVG = 5;
const BASE = 10;
const FLAG = 15;
const CELLS = 16;
const C_CONNS = 0;
const C_INPKTS = 1;
const C_OUTPKTS = 2;
const C_INBYTES = 3;
const C_OUTBYTES = 4;

function estReset(a: Float64Array, at: number, now: Counters): void {
  a[at + LAST + C_CONNS] = now.conns;
  a[at + LAST + C_INPKTS] = now.inpkts;
  a[at + LAST + C_OUTPKTS] = now.outpkts;
  a[at + LAST + C_INBYTES] = now.inbytes;
  a[at + LAST + C_OUTBYTES] = now.outbytes;
  for (let i = 0; i < 5; i++) a[at + AVG + i] = 0;
}

/** avg += ((now - last) << scale - avg) >> 2, for one counter (ip_vs_chain_estimation). */
function estStep(a: Float64Array, at: number, k: number, now: number, scale: number): void {
  const rate = (now - a[at + LAST + k]!) * scale;
  a[at + LAST + k] = now;
  const avg = a[at + AVG + k]!;
  a[at + AVG + k] = avg + shr(rate - avg, 2);
}

function estTick(a: Float64Array, at: number, now: Counters): void {
  estTick5(a, at, now.conns, now.inpkts, now.outpkts, now.inbytes, now.outbytes);
}

function estTick5(a: Float64Array, at: number, conns: number, inpkts: number, outpkts: number, inbytes: number, outbytes: number): void {
  estStep(a, at, C_CONNS, conns, 512);
  estStep(a, at, C_INPKTS, inpkts, 512);
  estStep(a, at, C_OUTPKTS, outpkts, 512);
  // Bytes: scaled by 2^5 only, then halved for the 2-second period: << 4.
  estStep(a, at, C_INBYTES, inbytes, 16);
  estStep(a, at, C_OUTBYTES, outbytes, 16);
}

/** ip_vs_read_estimator: unscale with rounding. */
function estRead(a: Float64Array, at: number, out: Rates): Rates {
  out.cps = shr(a[at + AVG + C_CONNS]! + 0x1ff, 10);
  out.inpps = shr(a[at + AVG + C_INPKTS]! + 0x1ff, 10);
  out.outpps = shr(a[at + AVG + C_OUTPKTS]! + 0x1ff, 10);
  out.inbps = shr(a[at + AVG + C_INBYTES]! + 0xf, 5);
  out.outbps = shr(a[at + AVG + C_OUTBYTES]! + 0xf, 5);
  return out;
}

/** One entity's estimator state (struct ip_vs_estimator). */
export class Estimator {
  private readonly a = new Float64Array(CELLS);

  /** Starts from the current totals so the first interval does not count history as a burst. */
  reset(now: Counters): void {
    estReset(this.a, 0, now);
  }

  /** One 2-second tick (ip_vs_estimation_timer / ip_vs_chain_estimation). */
  tick(now: Counters): void {
    estTick(this.a, 0, now);
  }

  /** ip_vs_read_estimator: unscale with rounding. */
  read(out: Rates): Rates {
    return estRead(this.a, 0, out);
  }
}

/** Tracked entities (service ids or real-server slots, small integers) and their estimator
 *  state, in one growable Float64Array indexed by id. */
class TrackTable {
  private a = new Float64Array(64 * CELLS);
  /** tickBlock()'s tracked ids and their totals: room for one block. */
  private readonly tickIds = new Int32Array(TICK_BLOCK);
  private readonly tickTotals = new Float64Array(TICK_BLOCK * COUNTER_CELLS);

  /** `readMany`: the source's bulk read; false when it has none (then `read`, one by one). */
  constructor(
    private readonly read: (id: number, out: Counters) => void,
    private readonly scratch: Counters,
    private readonly readMany: (ids: Int32Array, count: number, out: Float64Array) => boolean,
  ) {}

  has(id: number): boolean {
    const at = id * CELLS;
    return at < this.a.length && this.a[at + FLAG] !== 0;
  }

  /** Room for ids up to `maxId`, in one step: growing a large array in many doublings costs a
   *  collection each (V8 counts the external memory), which a restore of 100,000 real servers
   *  would pay a dozen times. */
  reserve(maxId: number): void {
    const need = (maxId + 1) * CELLS;
    if (need <= this.a.length) return;
    const grown = new Float64Array(Math.max(this.a.length * 2, need + (need >> 2)));
    grown.set(this.a);
    this.a = grown;
  }

  /** Starts tracking `id` from its current totals (a re-added entity starts from zero). */
  start(id: number): void {
    this.reserve(id);
    this.restart(id);
    this.a[id * CELLS + FLAG] = 1;
  }

  /** start() for every id not tracked yet. */
  startAll(ids: Iterable<number>): void {
    const list = Array.isArray(ids) ? (ids as readonly number[]) : Array.from(ids);
    let max = -1;
    for (const id of list) if (id > max) max = id;
    if (max >= 0) this.reserve(max);
    const fresh: number[] = [];
    for (const id of list) {
      if (this.has(id)) continue;
      this.a[id * CELLS + FLAG] = 1;
      fresh.push(id);
    }
    this.restartAll(fresh);
  }

  /** restart() for each of `ids` that is tracked, the totals read a block at a time (a `-Z` or
   *  a restore of 100,000 real servers makes a hundred bulk reads, not 100,000 single ones). */
  restartAll(ids: readonly number[]): void {
    for (let from = 0; from < ids.length; from += TICK_BLOCK) this.restartListed(ids, from, Math.min(ids.length, from + TICK_BLOCK));
  }

  /** restart() for every tracked id (`-Z` of everything), a block of ids at a time. */
  restartTracked(): void {
    const end = this.a.length / CELLS;
    for (let from = 0; from < end; from += TICK_BLOCK) this.restartRange(from, Math.min(end, from + TICK_BLOCK));
  }

  // One call per block (at most TICK_BLOCK ids), as tickBlock: the first `-Z` after uvsd starts
  // runs this code cold, and V8 compiles a function called a hundred times sooner than one long
  // loop.

  /** The tracked ones of ids[from..to). */
  private restartListed(ids: readonly number[], from: number, to: number): void {
    const a = this.a;
    const block = this.tickIds;
    let n = 0;
    for (let i = from; i < to; i++) {
      const id = ids[i]!;
      const flag = id * CELLS + FLAG;
      if (flag < a.length && a[flag] !== 0) block[n++] = id;
    }
    this.restartBlock(n);
  }

  /** The tracked ids in [from, to). */
  private restartRange(from: number, to: number): void {
    this.restartBlock(this.collect(from, to));
  }

  /** The tracked ids in [from, to) (at most TICK_BLOCK) into tickIds; their number. */
  private collect(from: number, to: number): number {
    const a = this.a;
    const ids = this.tickIds;
    let n = 0;
    for (let id = from, at = from * CELLS + FLAG; id < to; id++, at += CELLS) if (a[at] !== 0) ids[n++] = id;
    return n;
  }

  /** restart() for tickIds[0..n): the totals go from one bulk read straight into the table. */
  private restartBlock(n: number): void {
    if (n === 0) return;
    const a = this.a;
    const block = this.tickIds;
    const totals = this.tickTotals;
    if (!this.readMany(block, n, totals)) {
      for (let i = 0; i < n; i++) this.restart(block[i]!);
      return;
    }
    for (let i = 0, t = 0; i < n; i++, t += COUNTER_CELLS) {
      const at = block[i]! * CELLS;
      for (let k = 0; k < COUNTER_CELLS; k++) {
        const v = totals[t + k]!;
        a[at + LAST + k] = v;
        a[at + AVG + k] = 0;
        a[at + BASE + k] = v;
      }
    }
  }

  /** -Z, or a new source: estimator and baseline restart from the current totals. */
  restart(id: number): void {
    const now = this.scratch;
    this.read(id, now);
    this.restartAt(id, now);
  }

  private restartAt(id: number, now: Counters): void {
    const at = id * CELLS;
    estReset(this.a, at, now);
    this.a[at + BASE + C_CONNS] = now.conns;
    this.a[at + BASE + C_INPKTS] = now.inpkts;
    this.a[at + BASE + C_OUTPKTS] = now.outpkts;
    this.a[at + BASE + C_INBYTES] = now.inbytes;
    this.a[at + BASE + C_OUTBYTES] = now.outbytes;
  }

  delete(id: number): void {
    const at = id * CELLS;
    if (at < this.a.length) this.a[at + FLAG] = 0;
  }

  /** Every tracked id, in id order. */
  forEach(visit: (id: number) => void): void {
    for (let at = FLAG, id = 0; at < this.a.length; at += CELLS, id++) if (this.a[at] !== 0) visit(id);
  }

  /** Keeps exactly `ids` tracked: new ones start, the others are dropped. */
  sync(ids: Iterable<number>): void {
    const list = Array.isArray(ids) ? (ids as readonly number[]) : Array.from(ids);
    let max = -1;
    for (const id of list) if (id > max) max = id;
    if (max >= 0) this.reserve(max);
    const a = this.a;
    // 2: tracked but not (yet) seen in `ids`.
    for (let at = FLAG; at < a.length; at += CELLS) if (a[at] !== 0) a[at] = 2;
    for (const id of list) {
      if (this.has(id)) this.a[id * CELLS + FLAG] = 1;
      else this.start(id);
    }
    for (let at = FLAG; at < this.a.length; at += CELLS) if (this.a[at] === 2) this.a[at] = 0;
  }

  tick(id: number): void {
    this.read(id, this.scratch);
    estTick(this.a, id * CELLS, this.scratch);
  }

  /**
   * One estimator period for the tracked ids of slice `slice` of `slices`: ids come in blocks of
   * TICK_BLOCK, block b belonging to slice b % slices, so an id stays in its slice whatever the
   * table's size. With a bulk read, one call reads all the slice's totals and no object is made
   * per id.
   */
  tickAll(slice = 0, slices = 1): void {
    const end = this.a.length / CELLS;
    for (let block = slice * TICK_BLOCK; block < end; block += slices * TICK_BLOCK) this.tickBlock(block, Math.min(end, block + TICK_BLOCK));
  }

  /** The tracked ids in [from, to). One call per block rather than one loop over the slice: V8
   *  compiles a function called often long before a single long loop, which matters for the
   *  first periods after uvsd starts (100,000 ids interpreted take ~100 ms). */
  private tickBlock(from: number, to: number): void {
    const n = this.collect(from, to);
    if (n === 0) return;
    const a = this.a;
    const ids = this.tickIds;
    const totals = this.tickTotals;
    if (!this.readMany(ids, n, totals)) {
      for (let i = 0; i < n; i++) this.tick(ids[i]!);
      return;
    }
    for (let i = 0, t = 0; i < n; i++, t += COUNTER_CELLS) {
      estTick5(a, ids[i]! * CELLS, totals[t]!, totals[t + 1]!, totals[t + 2]!, totals[t + 3]!, totals[t + 4]!);
    }
  }

  /** Counters since the last -Z and the rates of `id`; zeros and no rates when not tracked. */
  report(id: number): { counters: Counters; rates: Rates } {
    const now = zeroCounters();
    this.read(id, now);
    const rates: Rates = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
    if (!this.has(id)) return { counters: now, rates };
    const at = id * CELLS;
    const a = this.a;
    estRead(a, at, rates);
    return {
      counters: {
        conns: now.conns - a[at + BASE + C_CONNS]!,
        inpkts: now.inpkts - a[at + BASE + C_INPKTS]!,
        outpkts: now.outpkts - a[at + BASE + C_OUTPKTS]!,
        inbytes: now.inbytes - a[at + BASE + C_INBYTES]!,
        outbytes: now.outbytes - a[at + BASE + C_OUTBYTES]!,
      },
      rates,
    };
  }
}

/** Per-service and per-real-server statistics over a CounterSource: the estimators, the `-Z`
 *  baselines, and what `--stats` / `--rate` print. */
export class StatsBook {
  private source: CounterSource;
  private readonly scratch = zeroCounters();
  private readonly services = new TrackTable((id, out) => this.source.readService(id, out), this.scratch, (ids, count, out) => {
    if (!this.source.readServices) return false;
    this.source.readServices(ids, count, out);
    return true;
  });
  private readonly dests = new TrackTable((slot, out) => this.source.readDest(slot, out), this.scratch, (slots, count, out) => {
    if (!this.source.readDests) return false;
    this.source.readDests(slots, count, out);
    return true;
  });
  /** Totals at the last `-Z` of the whole table. */
  private totalBase = zeroCounters();

  constructor(source: CounterSource = ZERO_COUNTERS) {
    this.source = source;
  }

  /** The data plane attaches its counters here when it starts. */
  setSource(source: CounterSource): void {
    this.source = source;
    this.totalBase = zeroCounters();
    this.source.readTotal?.(this.totalBase);
    this.services.forEach((id) => this.services.restart(id));
    this.dests.forEach((slot) => this.dests.restart(slot));
  }

  /** Keeps exactly these ids tracked: new ones start at the current totals, gone ones are dropped
   *  (a re-added service or real server starts from zero, as a new kernel object would). */
  track(serviceIds: Iterable<number>, destSlots: Iterable<number>): void {
    this.services.sync(serviceIds);
    this.dests.sync(destSlots);
  }

  /** The incremental form of track(): ids that stopped existing, then ids that (may) have
   *  started; ids already tracked stay as they are. O(changed), for one command on a big table. */
  trackChanges(gone: { services: Iterable<number>; slots: Iterable<number> }, present: { services: Iterable<number>; slots: Iterable<number> }): void {
    for (const id of gone.services) this.services.delete(id);
    for (const slot of gone.slots) this.dests.delete(slot);
    this.services.startAll(present.services);
    this.dests.startAll(present.slots);
  }

  /** One estimator period. */
  tick(): void {
    this.tickSlice(0, 1);
  }

  /**
   * The estimator's period in `slices` parts: a caller that runs slice k at k/slices of every
   * period (uvsd: ESTIMATOR_SLICES, one every ESTIMATOR_PERIOD_MS / ESTIMATOR_SLICES) ticks
   * every service and real server once per period, each always at the same point of it, so its
   * rates are those of whole periods, while the main thread never does all 100,000 at once.
   * Linux does the same since 6.2: ip_vs_est.c spreads the estimators over IPVS_EST_NTICKS rows,
   * one row per tick of the 2-second period.
   */
  tickSlice(slice: number, slices: number): void {
    this.services.tickAll(slice, slices);
    this.dests.tickAll(slice, slices);
  }

  /** ipvsadm -Z: counters and rates of these services and their real servers restart from zero
   *  (ip_vs_zero_stats). */
  zero(serviceIds: readonly number[], destSlots: readonly number[]): void {
    this.services.restartAll(serviceIds);
    this.dests.restartAll(destSlots);
  }

  /** ipvsadm -Z without a service (ip_vs_zero_all): every tracked service's and real server's
   *  counters and rates restart from zero, and the totals. The tracked ones are the table's: the
   *  control plane keeps them so on every change (ControlHandler's retrack; inside a -R batch,
   *  at its end, and zero() skips the untracked too), so this is zero(every service id in the
   *  table, every slot in it) without listing 110,000 ids first: at 10,000 services x 10 real
   *  servers ~4 ms rather than ~9 (bench control-plane). */
  zeroAll(): void {
    this.services.restartTracked();
    this.dests.restartTracked();
    this.zeroTotals();
  }

/** /proc/net/ip_vs_stats's totals: every connection, packet and byte counted since start or
   *  since the last `-Z` of the whole table (ip_vs_zero_all zeroes tot_stats too). */
  totals(): Counters {
    const now = zeroCounters();
    this.source.readTotal?.(now);
    const b = this.totalBase;
    return { conns: now.conns - b.conns, inpkts: now.inpkts - b.inpkts, outpkts: now.outpkts - b.outpkts, inbytes: now.inbytes - b.inbytes, outbytes: now.outbytes - b.outbytes };
  }

  /** `ipvsadm -Z` without a service: the totals restart from zero too. */
  zeroTotals(): void {
    this.totalBase = zeroCounters();
    this.source.readTotal?.(this.totalBase);
  }

  serviceStats(id: number): { counters: Counters; rates: Rates } {
    return this.services.report(id);
  }

  destStats(slot: number): { counters: Counters; rates: Rates } {
    return this.dests.report(slot);
  }
}
