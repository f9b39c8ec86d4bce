// Fills the metrics layer's snapshot (src/metrics/snapshot.ts) from the live daemon, once per
// scrape or textfile write: the table and its statistics, the data-plane workers and connection
// table, VRRP's instances and the checkers' view. Everything here is read on demand; nothing is
// counted for the metrics' sake.

import { DROP_REASON_COUNT, dropReasonName } from '../packet/drop';
import type { MetricsSnapshot, CheckSnapshot, LinkWatchSnapshot, WorkerSnapshot } from '../metrics/snapshot';
import type { ServiceModel } from '../service/model';
import type { StatsBook } from '../service/stats';
import type { WorkerReport } from '../dataplane/dataplane';
import type { VrrpInstanceReport } from './vrrp';

export interface MetricsSources {
  model: ServiceModel;
  stats: StatsBook;
  workers(): WorkerReport[];
  /** The interface watch's counters (null: no data plane, or it does not watch). */
  linkWatch?(): LinkWatchSnapshot | null;
  conns(): { entries: number; capacity: number; refused: number } | null;
  vrrp(): Promise<VrrpInstanceReport[]>;
  checks(): CheckSnapshot[];
}

export async function collectSnapshot(src: MetricsSources): Promise<MetricsSnapshot> {
  const vrrp = await src.vrrp();
  const workers: WorkerSnapshot[] = src.workers().map((w) => {
    const drops: Record<string, number> = {};
    for (let r = 1; r < DROP_REASON_COUNT; r++) drops[dropReasonName(r)] = w.drops[dropReasonName(r)] ?? 0;
    return { id: w.id, alive: w.alive, restarts: w.restarts, stats: w.stats, drops };
  });
  return {
    totals: src.stats.totals(),
    services: src.model.list(),
    vrrp: vrrp.map((r) => ({
      name: r.config.name,
      state: r.state,
      vrid: r.config.vrid,
      interface: r.config.interface,
      basePriority: r.config.priority,
      effectivePriority: r.effectivePriority,
      transitions: r.transitions,
      stats: r.stats ? { ...r.stats } : null,
    })),
    checks: src.checks(),
    workers,
    linkWatch: src.linkWatch?.() ?? null,
    conns: src.conns(),
  };
}
