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
};

/** The estimator's period (ip_vs_est.c: IPVS_EST_TICK is 2 seconds). */
export const ESTIMATOR_PERIOD_MS = 2000;

/** Arithmetic shift right by `n` for integers beyond 32 bits (the kernel works on s64/u64). */
function shr(v: number, n: number): number {
  return Math.floor(v / 2 ** n);
}

/** One entity's estimator state (struct ip_vs_estimator). */
export class Estimator {
  private lastConns = 0;
  private lastInpkts = 0;
  private lastOutpkts = 0;
  private lastInbytes = 0;
  private lastOutbytes = 0;
  private cps = 0;
  private inpps = 0;
  private outpps = 0;
  private inbps = 0;
  private outbps = 0;

  /** Starts from the current totals so the first interval does not count history as a burst. */
  reset(now: Counters): void {
    this.lastConns = now.conns;
    this.lastInpkts = now.inpkts;
    this.lastOutpkts = now.outpkts;
    this.lastInbytes = now.inbytes;
    this.lastOutbytes = now.outbytes;
    this.cps = this.inpps = this.outpps = this.inbps = this.outbps = 0;
  }

  /** One 2-second tick (ip_vs_estimation_timer / ip_vs_chain_estimation). */
  tick(now: Counters): void {
    let rate = (now.conns - this.lastConns) * 512;
    this.lastConns = now.conns;
    this.cps += shr(rate - this.cps, 2);
    rate = (now.inpkts - this.lastInpkts) * 512;
    this.lastInpkts = now.inpkts;
    this.inpps += shr(rate - this.inpps, 2);
    rate = (now.outpkts - this.lastOutpkts) * 512;
    this.lastOutpkts = now.outpkts;
    this.outpps += shr(rate - this.outpps, 2);
    // Bytes: scaled by 2^5 only, then halved for the 2-second period: << 4.
    rate = (now.inbytes - this.lastInbytes) * 16;
    this.lastInbytes = now.inbytes;
    this.inbps += shr(rate - this.inbps, 2);
    rate = (now.outbytes - this.lastOutbytes) * 16;
    this.lastOutbytes = now.outbytes;
    this.outbps += shr(rate - this.outbps, 2);
  }

  /** ip_vs_read_estimator: unscale with rounding. */
  read(out: Rates): Rates {
    out.cps = shr(this.cps + 0x1ff, 10);
    out.inpps = shr(this.inpps + 0x1ff, 10);
    out.outpps = shr(this.outpps + 0x1ff, 10);
    out.inbps = shr(this.inbps + 0xf, 5);
    out.outbps = shr(this.outbps + 0xf, 5);
    return out;
  }
}

interface Tracked {
  est: Estimator;
  /** Totals at the last `-Z` (displayed = source total - base). */
  base: Counters;
  seen: boolean;
}

/** Per-service and per-real-server statistics over a CounterSource: the estimators, the `-Z`
 *  baselines, and what `--stats` / `--rate` print. */
export class StatsBook {
  private source: CounterSource;
  private readonly services = new Map<number, Tracked>();
  private readonly dests = new Map<number, Tracked>();
  private readonly scratch = zeroCounters();
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
    for (const [id, t] of this.services) this.restart(t, () => this.source.readService(id, this.scratch));
    for (const [slot, t] of this.dests) this.restart(t, () => this.source.readDest(slot, this.scratch));
  }

  private restart(t: Tracked, read: () => void): void {
    read();
    t.est.reset(this.scratch);
    t.base = { ...this.scratch };
  }

  /** Keeps exactly these ids tracked: new ones start at the current totals, gone ones are dropped
   *  (a re-added service or real server starts from zero, as a new kernel object would). */
  track(serviceIds: Iterable<number>, destSlots: Iterable<number>): void {
    sync(this.services, serviceIds, (id, out) => this.source.readService(id, out), this.scratch);
    sync(this.dests, destSlots, (slot, out) => this.source.readDest(slot, out), this.scratch);
  }

  /** The incremental form of track(): ids that stopped existing, then ids that (may) have
   *  started; ids already tracked stay as they are. O(changed), for one command on a big table. */
  trackChanges(gone: { services: Iterable<number>; slots: Iterable<number> }, present: { services: Iterable<number>; slots: Iterable<number> }): void {
    for (const id of gone.services) this.services.delete(id);
    for (const slot of gone.slots) this.dests.delete(slot);
    const c = this.scratch;
    for (const id of present.services) {
      if (this.services.has(id)) continue;
      this.source.readService(id, c);
      this.services.set(id, startTracking(c));
    }
    for (const slot of present.slots) {
      if (this.dests.has(slot)) continue;
      this.source.readDest(slot, c);
      this.dests.set(slot, startTracking(c));
    }
  }

  /** One estimator period. */
  tick(): void {
    for (const [id, t] of this.services) {
      this.source.readService(id, this.scratch);
      t.est.tick(this.scratch);
    }
    for (const [slot, t] of this.dests) {
      this.source.readDest(slot, this.scratch);
      t.est.tick(this.scratch);
    }
  }

  /** ipvsadm -Z: counters and rates of these services and their real servers restart from zero
   *  (ip_vs_zero_stats). */
  zero(serviceIds: readonly number[], destSlots: readonly number[]): void {
    for (const id of serviceIds) {
      const t = this.services.get(id);
      if (t) this.restart(t, () => this.source.readService(id, this.scratch));
    }
    for (const slot of destSlots) {
      const t = this.dests.get(slot);
      if (t) this.restart(t, () => this.source.readDest(slot, this.scratch));
    }
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
    return this.report(this.services.get(id), (out) => this.source.readService(id, out));
  }

  destStats(slot: number): { counters: Counters; rates: Rates } {
    return this.report(this.dests.get(slot), (out) => this.source.readDest(slot, out));
  }

  private report(t: Tracked | undefined, read: (out: Counters) => void): { counters: Counters; rates: Rates } {
    const now = zeroCounters();
    read(now);
    const rates: Rates = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
    if (!t) return { counters: now, rates };
    t.est.read(rates);
    return {
      counters: {
        conns: now.conns - t.base.conns,
        inpkts: now.inpkts - t.base.inpkts,
        outpkts: now.outpkts - t.base.outpkts,
        inbytes: now.inbytes - t.base.inbytes,
        outbytes: now.outbytes - t.base.outbytes,
      },
      rates,
    };
  }
}

/** Tracking that starts from the totals `now` (a copy is kept as the -Z baseline). */
function startTracking(now: Counters): Tracked {
  const est = new Estimator();
  est.reset(now);
  return { est, base: { conns: now.conns, inpkts: now.inpkts, outpkts: now.outpkts, inbytes: now.inbytes, outbytes: now.outbytes }, seen: true };
}

function sync(
  map: Map<number, Tracked>,
  ids: Iterable<number>,
  read: (id: number, out: Counters) => void,
  scratch: Counters,
): void {
  for (const t of map.values()) t.seen = false;
  for (const id of ids) {
    const t = map.get(id);
    if (t) {
      t.seen = true;
      continue;
    }
    read(id, scratch);
    const est = new Estimator();
    est.reset(scratch);
    map.set(id, { est, base: { ...scratch }, seen: true });
  }
  for (const [id, t] of map) if (!t.seen) map.delete(id);
}
