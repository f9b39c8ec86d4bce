// The sync daemon's IPVS knobs (net.ipv4.vs.sync_*), as the kernel has them: names, types and
// defaults of Documentation/networking/ipvs-sysctl.rst, the checks of ip_vs_ctl.c's sysctl table
// (proc_do_sync_threshold, proc_dointvec_minmax 0..3 for sync_retries, proc_do_sync_ports, ...).
// They join the other knobs (src/conn/knobs.ts) in src/control/sysctl.ts's registry, so
// `uvsadm --sysctl` and uvsd's --sysctl-file set them as any other.
//
// The values in force live in a SyncTunables object that the SyncManager owns and the daemons
// read: the master's scan at every tick (a change applies from the next scan on), the sockets'
// buffer size when a daemon starts (the kernel too reads sync_sock_size when it makes the socket).
// The defaults come from defaults.ts, their single source.

import { INT32_MAX, INT32_MIN, int, noEffect, type KnobSpec } from '../conn/knobs';
import { SYNC_DEFAULTS } from './defaults';

/** The sync knobs in force, as the daemons use them. */
export interface SyncTunables {
  /** sync_threshold's first number: in_pkts count at which a connection is first sent. */
  threshold: number;
  /** sync_threshold's second number (the kernel's sysctl_sync_period): then every N packets; 0 = once. */
  period: number;
  /** sync_refresh_period in ms (0 = off). */
  refreshMs: number;
  /** sync_retries: resends, sync_refresh_period/8 apart, within one refresh period. */
  retries: number;
  /** sync_persist_mode: not 0 = a connection controlled by a template is not sent, its template is. */
  persistMode: number;
  /** sync_qlen_max: full messages that may wait for a later scan tick. */
  qlenMax: number;
  /** sync_sock_size: SO_SNDBUF (master) / SO_RCVBUF (backup) when > 0. */
  sockSize: number;
}

export function defaultSyncTunables(): SyncTunables {
  return {
    threshold: SYNC_DEFAULTS.syncThreshold,
    period: SYNC_DEFAULTS.syncPeriod,
    refreshMs: SYNC_DEFAULTS.syncRefreshPeriod * 1000,
    retries: SYNC_DEFAULTS.syncRetries,
    persistMode: SYNC_DEFAULTS.syncPersistMode,
    qlenMax: SYNC_DEFAULTS.syncQlenMax,
    sockSize: SYNC_DEFAULTS.syncSockSize,
  };
}

/** The largest sync_refresh_period a kernel with HZ=1000 takes (proc_dointvec_jiffies refuses
 *  seconds above INT_MAX / HZ). */
export const SYNC_REFRESH_PERIOD_MAX = Math.floor(INT32_MAX / 1000);

/**
 * proc_do_sync_threshold: one or two integers "THRESHOLD [PERIOD]"; with one, the period in
 * force stays (proc_dointvec writes only the numbers given). Refused, changing nothing, when
 * either is negative or the threshold is not below a non-zero period.
 */
export function parseSyncThreshold(text: string, current = `${SYNC_DEFAULTS.syncThreshold} ${SYNC_DEFAULTS.syncPeriod}`): string {
  const parts = text.trim().split(/\s+/);
  if (parts.length > 2 || parts[0] === '') throw new Error(`"${text}" is not "THRESHOLD [PERIOD]" (two integers at most)`);
  const num = int(INT32_MIN, INT32_MAX);
  const threshold = Number(num(parts[0]!));
  const period = parts.length === 2 ? Number(num(parts[1]!)) : Number(current.trim().split(/\s+/)[1]);
  if (threshold < 0 || period < 0) throw new Error(`"${text.trim()}": the threshold and the period must not be negative`);
  if (period !== 0 && threshold >= period) {
    throw new Error(`"${text.trim()}": the threshold ${threshold} must be below the period ${period} (or the period 0: sync once)`);
  }
  return `${threshold} ${period}`;
}

/** proc_doulongvec_minmax without bounds: 0 .. 2^64-1, no sign. */
function ulong(text: string): string {
  const t = text.trim();
  if (!/^\+?[0-9]+$/.test(t)) throw new Error(`"${text}" is not an unsigned integer`);
  const n = BigInt(t);
  if (n > 0xffffffffffffffffn) throw new Error(`${t} is out of range 0..2^64-1`);
  return n.toString();
}

/** sync_version: the kernel takes 0 and 1; uvs speaks version 1 only, so 0 is refused rather
 *  than accepted and ignored (a backup that needs version 0 would get nothing it can read). */
function syncVersion(text: string): string {
  const v = int(0, 1, ' (0 the original protocol, 1 the current one)')(text);
  if (v === '0') throw new Error('0 (the original, pre-2.6.39 message format) is not spoken by uvs: it sends version 1 only, which kernels from 2.6.39 on read');
  return v;
}

/** proc_do_sync_ports: a power of two, at least 1. */
function syncPorts(text: string): string {
  const v = int(1, INT32_MAX, ' (a power of two)')(text);
  const n = Number(v);
  if ((n & (n - 1)) !== 0) throw new Error(`${v} is not a power of two`);
  return v;
}

/** The sync_* knobs, in ipvs-sysctl.rst's order. */
export const SYNC_KNOBS: readonly KnobSpec[] = [
  {
    name: 'sync_threshold', type: 'vector of 2 INTEGERs', kernelDefault: `${SYNC_DEFAULTS.syncThreshold} ${SYNC_DEFAULTS.syncPeriod}`,
    parse: (text, _ctx, current) => parseSyncThreshold(text, current),
    effect: 'the sync master sends an ESTABLISHED TCP or a UDP connection when its packet count reaches the threshold, then every period ' +
      'packets (period 0: once); one number changes the threshold only',
  },
  {
    name: 'sync_refresh_period', type: 'UNSIGNED INTEGER', kernelDefault: String(SYNC_DEFAULTS.syncRefreshPeriod),
    parse: int(0, SYNC_REFRESH_PERIOD_MAX, ' seconds'),
    effect: 'seconds: the sync master sends a connection again only when its expiry moved by this much (or half its timeout, if less) ' +
      'since the last send, state changes aside; with sync_threshold\'s period 0, any packet may trigger that resend',
  },
  {
    name: 'sync_retries', type: 'INTEGER', kernelDefault: String(SYNC_DEFAULTS.syncRetries), parse: int(0, 3),
    effect: 'with sync_refresh_period, up to N resends of a connection sync_refresh_period/8 apart, against lost messages',
  },
  {
    name: 'sync_qlen_max', type: 'UNSIGNED LONG', kernelDefault: '1/32 of the memory pages', uvsDefault: () => String(SYNC_DEFAULTS.syncQlenMax),
    parse: ulong,
    effect: 'full messages that may wait when a scan finds more than one tick sends; past it the oldest are dropped (counted). ' +
      `Default ${SYNC_DEFAULTS.syncQlenMax} in uvs: waiting entries are JavaScript objects, the kernel's memory-sized default would allow gigabytes`,
  },
  {
    name: 'sync_sock_size', type: 'INTEGER', kernelDefault: String(SYNC_DEFAULTS.syncSockSize), parse: int(INT32_MIN, INT32_MAX),
    effect: 'when above 0, the SO_SNDBUF of the master\'s socket or the SO_RCVBUF of the backup\'s, set when the daemon starts ' +
      '(0: the system\'s default for the master, 1 MiB for the backup)',
  },
  noEffect('sync_ports', String(SYNC_DEFAULTS.syncPorts),
    'uvs runs one master socket and one backup port; a kernel backup with more ports hears a uvs master on its first, but a kernel ' +
    'master with sync_ports N spreads connections over N ports, of which a uvs backup hears only the first', 'INTEGER', syncPorts),
  {
    name: 'sync_persist_mode', type: 'INTEGER', kernelDefault: String(SYNC_DEFAULTS.syncPersistMode), parse: int(INT32_MIN, INT32_MAX),
    effect: 'not 0: a connection of a persistent service is not sent, only its persistence template (when the connection would have been); ' +
      'the backup then needs sloppy_tcp to pick up the TCP connections',
  },
  {
    name: 'sync_version', type: 'INTEGER', kernelDefault: String(SYNC_DEFAULTS.syncVersion), parse: syncVersion,
    effect: 'uvs sends version 1 only: 1 is accepted, 0 (for backups older than 2.6.39) is refused; the backup reads version 1 whatever it says',
  },
];

/** Applies a knob's (checked, normalized) value to `t`; false when the knob is not a sync knob. */
export function applySyncKnob(t: SyncTunables, name: string, value: string): boolean {
  switch (name) {
    case 'sync_threshold': {
      const [threshold, period] = value.split(' ').map(Number);
      t.threshold = threshold!;
      t.period = period!;
      return true;
    }
    case 'sync_refresh_period': t.refreshMs = Number(value) * 1000; return true;
    case 'sync_retries': t.retries = Number(value); return true;
    case 'sync_persist_mode': t.persistMode = Number(value); return true;
    case 'sync_qlen_max': t.qlenMax = Number(value); return true;
    case 'sync_sock_size': t.sockSize = Number(value); return true;
    case 'sync_ports':
    case 'sync_version':
      return true;
    default:
      return false;
  }
}
