// What one scrape reads: a plain snapshot the control plane fills from the live daemon (the
// service table, the statistics, the data-plane workers, the connection table, VRRP and the
// checkers) when /metrics is asked for, and nothing in between. The metrics layer knows only
// this shape, not the daemon, so the exposition is a pure function of it and testable as text.

import type { Counters } from '../service/stats';
import type { ServiceEntry } from '../service/model';

/** keepalived's VRRP states with the numbers of its SNMP MIB (vrrpInstanceState) and JSON dump:
 *  0 init, 1 backup, 2 master, 3 fault. */
export const VRRP_STATE_NUMBER: Readonly<Record<string, number>> = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3 };

export interface VrrpInstanceSnapshot {
  name: string;
  /** INIT, BACKUP, MASTER, FAULT. */
  state: string;
  vrid: number;
  interface: string;
  /** Configured (base) and effective priority (after tracking). */
  basePriority: number;
  effectivePriority: number;
  /** Transitions into each state seen by the control plane since start. */
  transitions: Readonly<Record<string, number>>;
  /** The VRRP thread's counters (keepalived's vrrp_stats); null when it did not answer. */
  stats: Readonly<Record<string, number>> | null;
}

export interface CheckSnapshot {
  /** keepalived's FMT_VS / FMT_RS texts: "[10.0.0.1]:80". */
  virtualServer: string;
  quorumUp: boolean;
  sorryActive: boolean;
  servers: Array<{
    realServer: string;
    alive: boolean;
    weight: number;
    checkers: Array<{ kind: string; up: boolean }>;
  }>;
}

export interface WorkerSnapshot {
  id: number;
  alive: boolean;
  restarts: number;
  /** WORKER_STAT_NAMES → value (src/dataplane/counters.ts). */
  stats: Readonly<Record<string, number>>;
  /** Every drop reason name → count, zeros included (stable series). */
  drops: Readonly<Record<string, number>>;
}

export interface ConnTableSnapshot {
  entries: number;
  capacity: number;
  /** New connections refused because the table was full. */
  refused: number;
}

/** The data plane's interface watch (src/dataplane/link-watch.ts LinkWatchStats). */
export interface LinkWatchSnapshot {
  /** Link and IPv4 address notifications seen. */
  events: number;
  /** Re-evaluations of the interfaces they caused (a burst makes one). */
  relinks: number;
  /** Lines of the monitor not understood (ignored). */
  bad: number;
  /** Times the monitor child was restarted. */
  restarts: number;
}

export interface MetricsSnapshot {
  /** /proc/net/ip_vs_stats: totals over every service since start or the last `-Z` of all. */
  totals: Counters;
  /** /proc/net/ip_vs: the live table (weights and connection counts of its real servers). */
  services: readonly ServiceEntry[];
  vrrp: readonly VrrpInstanceSnapshot[];
  checks: readonly CheckSnapshot[];
  /** Empty without a data plane (--io none). */
  workers: readonly WorkerSnapshot[];
  /** Null without a data plane or an interface watch (optional: older sources give none). */
  linkWatch?: LinkWatchSnapshot | null;
  conns: ConnTableSnapshot | null;
}
