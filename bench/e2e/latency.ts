// Added latency per pass through the director: sequential request/response round trips at a low
// rate (bench/e2e/rtt.ts in the client namespace) through a peer, minus the same round trips over
// the direct path (the client's reply link to real server 1: no director at all), asked in turn
// request by request (both see the same machine load). "Per pass" divides by the times a round
// trip crosses the director: 1 for uvs DR and TUN (replies bypass it), 2 for everything that sees
// both directions (kernel forwarding with replies routed back through the director, uvs NAT,
// nftables DNAT, HAProxy, nginx).
// UDP: one datagram, answered by rs-server.mjs. TCP: a keep-alive HTTP GET (HAProxy and nginx proxy
// TCP only). The figure of a run is p50(via) − p50(direct), and the same for p99; a row is the
// median over the runs.
import type { BenchRow } from '../lib';
import { spawnIn } from '../../test/netns/native-lab';
import { ADDR, type BenchLab, RTT } from './lab';
import { median } from './progress';
import type { RttJob, RttResult } from './rtt';

export const LATENCY_GROUPS = {
  udp: 'Added round trip per pass through the director, UDP request/response (sequential, 1 per ms), µs',
  tcp: 'Added round trip per pass through the director, TCP request/response (keep-alive HTTP GET, sequential, 1 per ms), µs',
};

/** Issue 12's target for uvs rows: added p50 per pass. */
export const ADDED_P50_TARGET_US = 50;

export interface RrEndpoints {
  udp?: { host: string; port: number };
  tcp?: { host: string; port: number };
  /** Times one round trip crosses the director. */
  passes: number;
}

/** The direct path: real server 1's reply-link address, no director between. */
export const DIRECT_RR: RrEndpoints = {
  udp: { host: ADDR.replyRs[0], port: 53 },
  tcp: { host: ADDR.replyRs[0], port: 80 },
  passes: 0,
};

export interface RttStats {
  p50: number;
  p99: number;
  n: number;
  lost: number;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1]!;
}

export function rttStats(r: RttResult): RttStats {
  return { p50: percentile(r.samplesUs, 50), p99: percentile(r.samplesUs, 99), n: r.samplesUs.length, lost: r.lost };
}

export interface RttPair {
  direct: RttStats;
  via: RttStats;
}

function us(v: number): string {
  return Number.isFinite(v) ? v.toFixed(1) : '—';
}

/** One row from the runs of one peer: value = median added p50 per pass (µs). */
export function addedRow(group: string, name: string, passes: number, runs: readonly RttPair[], uvs: boolean): BenchRow {
  const added50 = runs.map((r) => (r.via.p50 - r.direct.p50) / passes);
  const added99 = runs.map((r) => (r.via.p99 - r.direct.p99) / passes);
  const lost = runs.reduce((s, r) => s + r.via.lost, 0);
  const n = runs.reduce((s, r) => s + r.via.n + r.via.lost, 0);
  const row: BenchRow = {
    group, name, unit: 'µs', value: median(added50), samples: added50, min: Math.min(...added50), max: Math.max(...added50),
    columns: {
      // The whole round trip's added p50 beside the per-pass figure: DR and TUN cross the
      // director once, NAT twice, but a co-located real server's wake-up on a halted vCPU comes
      // once per round trip in every mode (native/README.md "Where DR's and TUN's extra time
      // goes"), so per pass it counts whole for DR and half for NAT.
      'added p50/round trip µs': us(median(runs.map((r) => r.via.p50 - r.direct.p50))),
      'added p99/pass µs': us(median(added99)),
      passes: String(passes),
      'RTT p50 / p99 µs': `${us(median(runs.map((r) => r.via.p50)))} / ${us(median(runs.map((r) => r.via.p99)))}`,
      'direct p50 / p99 µs': `${us(median(runs.map((r) => r.direct.p50)))} / ${us(median(runs.map((r) => r.direct.p99)))}`,
    },
    note: `${runs.length} run(s) of ${runs[0] ? runs[0].via.n + runs[0].via.lost : 0} round trips${lost ? `; ${lost} of ${n} unanswered` : ''}`,
  };
  if (uvs) {
    row.target = `<= ${ADDED_P50_TARGET_US} µs per pass`;
    row.met = Number.isFinite(row.value) && row.value <= ADDED_P50_TARGET_US;
  }
  return row;
}

export interface LatencyOptions {
  runs: number;
  count: number;
}

export function latencySeconds(o: LatencyOptions, protos: number): number {
  return 0.5 + o.runs * protos * 2 * (o.count * 1.3e-3 + 0.3);
}

/** Runs rtt.js in the client namespace (pinned like the generator): the direct path and the peer, alternating. */
export async function probePair(lab: BenchLab, job: RttJob, pinned: (cpus: string, argv: string[]) => string[]): Promise<RttPair> {
  const argv = pinned('0', [process.execPath, RTT, JSON.stringify(job)]);
  const r = await spawnIn<RttResult[]>(lab.ns.c, argv, job.count * job.targets.length * (job.intervalMs + job.timeoutMs) + 30_000).result;
  if (!Array.isArray(r) || r.length !== 2) throw new Error('rtt.js printed no result per target');
  return { direct: rttStats(r[0]!), via: rttStats(r[1]!) };
}

/**
 * The latency rows of one peer: for each run and protocol it has, the direct path and the peer,
 * request by request in turn. Protocols the peer lacks give no row.
 */
export async function measurePeer(lab: BenchLab, name: string, rr: RrEndpoints, uvs: boolean, o: LatencyOptions, pinned: (cpus: string, argv: string[]) => string[]): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const proto of ['udp', 'tcp'] as const) {
    const at = rr[proto];
    const direct = DIRECT_RR[proto]!;
    if (!at) continue;
    const runs: RttPair[] = [];
    // TCP retransmits, so a late answer still comes: its timeout only bounds a broken path. A UDP
    // answer later than 500 ms counts as lost (and is ignored if it comes).
    const job: RttJob = { proto, targets: [direct, at], count: o.count, intervalMs: 1, timeoutMs: proto === 'tcp' ? 2000 : 500 };
    try {
      for (let r = 0; r < o.runs; r++) runs.push(await probePair(lab, job, pinned));
      rows.push(addedRow(LATENCY_GROUPS[proto], name, rr.passes, runs, uvs));
    } catch (err) {
      rows.push({ group: LATENCY_GROUPS[proto], name, value: NaN, unit: 'µs', note: `failed: ${(err as Error).message.slice(0, 300)}` });
    }
  }
  return rows;
}
