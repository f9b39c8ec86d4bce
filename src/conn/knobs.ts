// The IPVS knobs (net.ipv4.vs.*), one registry for every way to set them: `uvsadm --sysctl`,
// uvsd's --sysctl-file and uvsd's older flood options (--drop-entry …, kept as aliases).
//
// Names, types and kernel defaults follow the kernel's Documentation/networking/ipvs-sysctl.rst.
// Each knob says what uvs does with it. Knobs without a job in uvs (no IPVS conntrack, no SCTP, no
// estimator thread, ...) are accepted and listed with their kernel default, so that a sysctl.conf
// written for a kernel director loads unchanged; their `effect` says "accepted, no effect in uvs"
// and why. Values are kept as normalized text so a knob with more than one number (the sync
// daemon's sync_threshold "3 50") fits the same registry.
//
// To add a knob: append a KnobSpec to KNOBS (a `cell` when the data plane reads it from the
// connection table's shared header; otherwise the subsystem that needs it subscribes to changes
// with the control plane's Sysctls.onChange). The sync daemon's sync_* knobs are specified next to
// it (src/sync/knobs.ts: the sync layer sits above this one); src/control/sysctl.ts joins both
// lists into the registry uvsadm and uvsd use (IPVS_KNOBS).

import { defaultAmemthresh } from './defense';
import { HeaderCell } from './table';

export const SYSCTL_PREFIX = 'net.ipv4.vs.';

/** What a knob's default or range may depend on. */
export interface KnobContext {
  /** The connection table's capacity (uvsd --conn-max). */
  connMax: number;
}

export interface KnobSpec {
  /** The name after net.ipv4.vs. */
  name: string;
  /** The type ipvs-sysctl.rst gives it. */
  type: 'BOOLEAN' | 'INTEGER' | 'UNSIGNED INTEGER' | 'UNSIGNED LONG' | 'vector of 2 INTEGERs';
  /** The kernel's default. */
  kernelDefault: string;
  /** uvs's default, when it differs from the kernel's (with the reason in `effect`). */
  uvsDefault?: (ctx: KnobContext) => string;
  /** Checks a value and returns it normalized; throws a message (without the name) if bad.
   *  `current` is the value in force, for a knob of two numbers written with one (sync_threshold:
   *  the kernel's proc_dointvec then changes the first only). */
  parse: (text: string, ctx: KnobContext, current?: string) => string;
  /** Where the data plane reads it: a cell of the connection table's shared header. */
  cell?: HeaderCell;
  /** What uvs does with it (README "IPVS knobs", uvsadm(8)). */
  effect: string;
}

export const INT32_MIN = -0x80000000;
export const INT32_MAX = 0x7fffffff;

/** The kernel's proc_dointvec: one decimal integer (an optional sign), within int32. */
export function int(min: number, max: number, what = ''): (text: string) => string {
  return (text) => {
    const t = text.trim();
    if (!/^[-+]?[0-9]+$/.test(t)) throw new Error(`"${text}" is not an integer${what}`);
    const n = Number(t);
    if (n < min || n > max) throw new Error(`${t} is out of range ${min}..${max}${what}`);
    return String(n);
  };
}

/** A BOOLEAN of ipvs-sysctl.rst: the kernel stores any integer, and "not 0" is on. */
const bool = int(INT32_MIN, INT32_MAX, ' (0 off, not 0 on)');
/** The defence modes: proc_do_defense_mode refuses anything outside 0..3. */
const defenseMode = int(0, 3, ' (0 off, 1 and 2 auto, 3 always)');

export function noEffect(name: string, kernelDefault: string, why: string, type: KnobSpec['type'] = 'BOOLEAN',
  parse: (text: string) => string = bool): KnobSpec {
  return { name, type, kernelDefault, parse, effect: `accepted, no effect in uvs: ${why}` };
}

/** Every knob but the sync daemon's, in the kernel's (alphabetical) order of ipvs-sysctl.rst. */
export const KNOBS: readonly KnobSpec[] = [
  {
    name: 'am_droprate', type: 'INTEGER', kernelDefault: '10', parse: int(1, INT32_MAX), cell: HeaderCell.AM_DROPRATE,
    effect: 'drop_packet drops one new connection in N when drop_packet is 3 (src/conn/defense.ts)',
  },
  {
    name: 'amemthresh', type: 'INTEGER', kernelDefault: '1024', cell: HeaderCell.AMEMTHRESH,
    uvsDefault: (ctx) => String(defaultAmemthresh(ctx.connMax)),
    parse: (text, ctx) => int(0, ctx.connMax, ' free table slots (at most --conn-max)')(text),
    effect: 'the defences\' automatic modes start when fewer than N connection-table slots are free ' +
      '(the kernel counts free memory pages; uvs\'s table has a fixed size, so default --conn-max/8)',
  },
  noEffect('backup_only', '0', 'a uvs director in a sync backup role forwards as any other'),
  {
    name: 'conn_reuse_mode', type: 'INTEGER', kernelDefault: '1', parse: int(INT32_MIN, INT32_MAX, ' (a bitmap: 1, 2)'),
    cell: HeaderCell.CONN_REUSE_MODE,
    effect: 'a SYN that hits an old TCP entry (TIME_WAIT, CLOSE; with bit 2 a DR/TUN FIN_WAIT) is scheduled anew; 0 keeps the old real server',
  },
  noEffect('conntrack', '0', 'uvs forwards outside netfilter, there is no conntrack entry to keep'),
  noEffect('cache_bypass', '0', 'no cache cluster mode (the packet is dropped when no real server is available)'),
  {
    name: 'drop_entry', type: 'INTEGER', kernelDefault: '0', uvsDefault: () => '1', parse: defenseMode, cell: HeaderCell.DROP_ENTRY,
    effect: 'under pressure, cheap entries (unanswered SYNs, one-packet UDP, ESTABLISHED without data) are evicted; ' +
      'default 1 in uvs because its table has a fixed size and a full one refuses new connections (src/conn/defense.ts)',
  },
  {
    name: 'drop_packet', type: 'INTEGER', kernelDefault: '0', parse: defenseMode, cell: HeaderCell.DROP_PACKET,
    effect: 'under pressure (or always with 3), a share of new connections is dropped before scheduling',
  },
  noEffect('est_nice', '0', 'the rate estimator runs on the control plane\'s timer, not in kernel threads', 'INTEGER', int(-20, 19)),
  {
    name: 'expire_nodest_conn', type: 'BOOLEAN', kernelDefault: '0', parse: bool, cell: HeaderCell.EXPIRE_NODEST_CONN,
    effect: 'a packet of an entry whose real server is gone or quiesced expires the entry at once (it is dropped either way)',
  },
  {
    name: 'expire_quiescent_template', type: 'BOOLEAN', kernelDefault: '0', parse: bool, cell: HeaderCell.EXPIRE_QUIESCENT_TEMPLATE,
    effect: 'a persistence template of a quiesced (weight 0) real server is expired when a client uses it, so it is scheduled anew',
  },
  noEffect('ignore_tunneled', '0', 'uvs matches virtual services on the outer header only'),
  noEffect('nat_icmp_send', '0', 'uvs sends no ICMP error for a NAT packet without an entry'),
  noEffect('pmtu_disc', '1', 'uvs\'s own path-MTU handling is fixed (a too-big DF packet is answered with ICMP fragmentation needed, the rest fragmented: src/forward/fragment.ts)'),
  noEffect('run_estimation', '1', 'the rate estimator always runs (uvsadm --rate)'),
  noEffect('schedule_icmp', '0', 'ICMP errors are forwarded only for existing entries'),
  {
    name: 'secure_tcp', type: 'INTEGER', kernelDefault: '0', parse: defenseMode, cell: HeaderCell.SECURE_TCP,
    effect: 'under pressure (or always with 3), TCP follows the kernel\'s tcp_states_dos table',
  },
  noEffect('sloppy_sctp', '0', 'uvs has no SCTP services'),
  {
    name: 'sloppy_tcp', type: 'BOOLEAN', kernelDefault: '0', parse: bool, cell: HeaderCell.SLOPPY_TCP,
    effect: 'any TCP packet without RST (not only a SYN) may create an entry: a director picks up a flow it never saw the SYN of (ECMP, failover)',
  },
  noEffect('snat_reroute', '1', 'NAT replies go to the client\'s next hop kept in the entry, not through a route lookup'),
];

export function findKnob(name: string): KnobSpec | undefined {
  return KNOBS.find((k) => k.name === name);
}

/** A knob's short name from what a user wrote: net.ipv4.vs.X, net/ipv4/vs/X (sysctl accepts
 *  both) or X; null when it is none of those. */
export function knobName(text: string): string | null {
  const t = text.trim();
  const slashed = t.replace(/\//g, '.');
  const short = slashed.startsWith(SYSCTL_PREFIX) ? slashed.slice(SYSCTL_PREFIX.length) : slashed;
  return /^[a-z_][a-z0-9_]*$/.test(short) ? short : null;
}

/** The value a knob starts with in uvs. */
export function knobDefault(spec: KnobSpec, ctx: KnobContext): string {
  return spec.uvsDefault ? spec.uvsDefault(ctx) : spec.kernelDefault;
}

/** Checks `text` for knob `spec`; the error names the knob and the value. */
export function parseKnob(spec: KnobSpec, text: string, ctx: KnobContext, current?: string): string {
  try {
    return spec.parse(text, ctx, current);
  } catch (err) {
    throw new RangeError(`${SYSCTL_PREFIX}${spec.name}: ${(err as Error).message}`, { cause: err });
  }
}
