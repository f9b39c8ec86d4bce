// keepalived's state dumps, for the scripts and habits built on them (README.md, "State dumps"):
//
//   SIGUSR1  (--signum=DATA)   /tmp/keepalived.data   VRRP topology (vrrp_print.c vrrp_print) and
//                                                     the checkers' view of each virtual server
//   SIGUSR2  (--signum=STATS)  /tmp/keepalived.stats  VRRP counters (vrrp_print_stats), same lines
//   SIGJSON  (--signum=JSON)   /tmp/keepalived.json   VRRP instances as keepalived's vrrp_json.c
//                                                     (version 1: an array of {data, stats})
//
// The directory is $TMPDIR when it is an absolute path, else /tmp. The same figures answer
// `uvsadm --vrrp` and `uvsadm --checks` (text, or --json) over the control socket.
//
// keepalived's SIGJSON is SIGRTMIN+2 and its STATS_CLEAR SIGRTMAX-1; Node.js cannot catch
// real-time signals, whose default action would end uvsd, so uvsd takes JSON on SIGURG (23:
// ignored by default, and raised only for sockets that asked for it with F_SETOWN, which uvsd
// never does) and `uvsd --signum=JSON` prints that number; STATS_CLEAR is refused.

import { writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { CheckSnapshot } from '../metrics/snapshot';
import type { VirtualAddress } from '../vrrp/types';
import type { VrrpInstanceReport } from './vrrp';

export type DumpKind = 'DATA' | 'STATS' | 'JSON';

/** keepalived's get_signum() for the functions uvsd handles; JSON differs (see above). */
export const DUMP_SIGNALS: Readonly<Record<DumpKind, NodeJS.Signals>> = { DATA: 'SIGUSR1', STATS: 'SIGUSR2', JSON: 'SIGURG' };

export const DUMP_FILES: Readonly<Record<DumpKind, string>> = { DATA: 'keepalived.data', STATS: 'keepalived.stats', JSON: 'keepalived.json' };

/** keepalived's tmp_dir: $TMPDIR when absolute, else /tmp. */
export function dumpDir(env: NodeJS.ProcessEnv = process.env): string {
  const t = env['TMPDIR'];
  return t && isAbsolute(t) ? t : '/tmp';
}

/** keepalived's state numbers (VRRP_STATE_INIT .. VRRP_STATE_FAULT), used in its JSON. */
const STATE_NUMBER: Readonly<Record<string, number>> = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3 };

/** address_print(): "192.168.200.16/32 dev eth0 scope global". */
function addressText(a: VirtualAddress): string {
  return `${a.address}/${a.prefixLength}${a.broadcast ? ` brd ${a.broadcast}` : ''} dev ${a.dev} scope ${a.scope ?? 'global'}${a.label ? ` label ${a.label}` : ''}`;
}

/** ctime() without its newline: "Sun Dec  6 14:32:30 2026" (local time). */
function ctime(ms: number): string {
  const d = new Date(ms);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()]!;
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()]!;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${day} ${mon} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`;
}

/** The "VRRP Topology" section of keepalived.data (vrrp_print), one block per instance. */
export function formatVrrpData(instances: readonly VrrpInstanceReport[]): string {
  let out = '------< VRRP Topology >------\n';
  for (const r of instances) {
    const c = r.config;
    out += ` VRRP Instance = ${c.name}\n`;
    out += ` VRRP Version = ${c.version}\n`;
    out += `   State = ${r.state}\n`;
    if (r.lastTransition !== null) out += `   Last transition = ${Math.floor(r.lastTransition / 1000)} (${ctime(r.lastTransition)})\n`;
    out += `   Listening device = ${c.interface}\n`;
    if (c.dontTrackPrimary) out += '   VRRP interface tracking disabled\n';
    if (c.skipCheckAdvAddr) out += '   Skip checking advert IP addresses\n';
    out += `   Using src_ip = ${c.unicastSource ?? c.primaryAddress}\n`;
    if (c.unicastPeers.length > 0) out += `   Unicast peers = ${c.unicastPeers.join(' ')}\n`;
    out += `   Gratuitous ARP delay = ${c.garpMasterDelayMs / 1000}\n`;
    out += `   Gratuitous ARP repeat = ${c.garpMasterRepeat}\n`;
    out += `   Gratuitous ARP refresh = ${c.garpMasterRefreshMs / 1000}\n`;
    out += `   Gratuitous ARP refresh repeat = ${c.garpMasterRefreshRepeat}\n`;
    out += `   Virtual Router ID = ${c.vrid}\n`;
    out += `   Priority = ${c.priority}\n`;
    out += `   Effective priority = ${r.effectivePriority}\n`;
    out += c.version === 2 ? `   Advert interval = ${c.advertIntMs / 1000} sec\n` : `   Advert interval = ${c.advertIntMs} milli-sec\n`;
    out += `   Preempt = ${c.preempt ? 'enabled' : 'disabled'}\n`;
    if (c.preemptDelayMs > 0) out += `   Preempt delay = ${c.preemptDelayMs / 1000} secs\n`;
    if (c.authType === 1) out += `   Authentication type = SIMPLE_PASSWORD\n   Password = ${c.authPass}\n`;
    else out += '   Authentication type = none\n';
    if (c.trackInterfaces.length > 0) out += `   Tracked interfaces = ${c.trackInterfaces.length}\n${c.trackInterfaces.map((t) => `     ${t.name} weight ${t.weight}\n`).join('')}`;
    if (c.trackScripts.length > 0) out += `   Tracked scripts = ${c.trackScripts.length}\n${c.trackScripts.map((t) => `     ${t.name} weight ${t.weight}\n`).join('')}`;
    if (c.virtualAddresses.length > 0) out += `   Virtual IP = ${c.virtualAddresses.length}\n${c.virtualAddresses.map((a) => `     ${addressText(a)}\n`).join('')}`;
    if (c.excludedAddresses.length > 0) out += `   Virtual IP Excluded = ${c.excludedAddresses.length}\n${c.excludedAddresses.map((a) => `     ${addressText(a)}\n`).join('')}`;
    const n = c.notify;
    if (n.backup) out += `   Backup state transition script = ${n.backup}\n`;
    if (n.master) out += `   Master state transition script = ${n.master}\n`;
    if (n.fault) out += `   Fault state transition script = ${n.fault}\n`;
    if (n.stop) out += `   Stop state transition script = ${n.stop}\n`;
    if (n.generic) out += `   Generic state transition script = '${n.generic}'\n`;
  }
  return out;
}

/** The checkers' view (uvsadm --checks, and the second part of keepalived.data). */
export function formatChecks(checks: readonly CheckSnapshot[]): string {
  let out = '------< Health checkers >------\n';
  for (const vs of checks) {
    out += ` Virtual server = ${vs.virtualServer}\n`;
    out += `   Quorum = ${vs.quorumUp ? 'up' : 'down'}${vs.sorryActive ? ', sorry server in use' : ''}\n`;
    for (const rs of vs.servers) {
      out += `   Real server = ${rs.realServer}\n`;
      out += `     State = ${rs.alive ? 'UP' : 'DOWN'}\n`;
      out += `     Weight = ${rs.weight}\n`;
      for (const c of rs.checkers) out += `     ${c.kind} = ${c.up ? 'UP' : 'DOWN'}\n`;
    }
  }
  return out;
}

const ZERO_STATS: Readonly<Record<string, number>> = {};

/** keepalived.stats: vrrp_print_stats's lines for every instance. */
export function formatVrrpStats(instances: readonly VrrpInstanceReport[]): string {
  let out = '';
  for (const r of instances) {
    const s: Readonly<Record<string, number>> = (r.stats as unknown as Record<string, number> | null) ?? ZERO_STATS;
    const v = (k: string): number => s[k] ?? 0;
    out += `VRRP Instance: ${r.config.name}\n`;
    out += `  Advertisements:\n    Received: ${v('advertsReceived')}\n    Sent: ${v('advertsSent')}\n`;
    out += `  Became master: ${v('becameMaster')}\n  Released master: ${v('releasedMaster')}\n`;
    out += `  Packet Errors:\n    Length: ${v('lengthError')}\n    TTL: ${v('ttlError')}\n    Invalid Type: ${v('typeError')}\n`;
    out += `    Advertisement Interval: ${v('intervalMismatch')}\n    Address List: ${v('addressListError')}\n`;
    out += `  Authentication Errors:\n    Invalid Type: ${v('invalidAuthType')}\n    Type Mismatch: ${v('authTypeMismatch')}\n    Failure: ${v('authFailure')}\n`;
    out += `  Priority Zero:\n    Received: ${v('priorityZeroReceived')}\n    Sent: ${v('priorityZeroSent')}\n`;
  }
  return out;
}

/** keepalived.json (vrrp_json.c, json_version 1): [{ "data": {...}, "stats": {...} }, ...]. */
export function vrrpJson(instances: readonly VrrpInstanceReport[]): unknown[] {
  return instances.map((r) => {
    const c = r.config;
    const s: Readonly<Record<string, number>> = (r.stats as unknown as Record<string, number> | null) ?? ZERO_STATS;
    const v = (k: string): number => s[k] ?? 0;
    const data: Record<string, unknown> = {
      iname: c.name,
      dont_track_primary: c.dontTrackPrimary ? 1 : 0,
      skip_check_adv_addr: c.skipCheckAdvAddr ? 1 : 0,
      strict_mode: 0,
      ifp_ifname: c.interface,
      last_transition: r.lastTransition === null ? 0 : r.lastTransition / 1000,
      garp_delay: c.garpMasterDelayMs / 1000,
      garp_refresh: Math.floor(c.garpMasterRefreshMs / 1000),
      garp_rep: c.garpMasterRepeat,
      garp_refresh_rep: c.garpMasterRefreshRepeat,
      vrid: c.vrid,
      base_priority: c.priority,
      effective_priority: r.effectivePriority,
      vipset: r.state === 'MASTER',
      adver_int: c.advertIntMs / 1000,
      nopreempt: !c.preempt,
      preempt_delay: Math.floor(c.preemptDelayMs / 1000),
      state: STATE_NUMBER[r.state] ?? 0,
      version: c.version,
    };
    const scripts: [string, string | undefined][] = [
      ['script_backup', c.notify.backup], ['script_master', c.notify.master], ['script_fault', c.notify.fault],
      ['script_stop', c.notify.stop], ['script', c.notify.generic],
    ];
    for (const [key, command] of scripts) if (command) data[key] = command;
    if (c.virtualAddresses.length > 0) data['vips'] = c.virtualAddresses.map(addressText);
    if (c.excludedAddresses.length > 0) data['evips'] = c.excludedAddresses.map(addressText);
    if (c.trackInterfaces.length > 0) data['track_ifp'] = c.trackInterfaces.map((t) => t.name);
    if (c.trackScripts.length > 0) data['track_script'] = c.trackScripts.map((t) => t.name);
    data['auth_type'] = c.authType;
    if (c.authType !== 0) data['auth_data'] = c.authPass;
    return {
      data,
      stats: {
        advert_rcvd: v('advertsReceived'), advert_sent: v('advertsSent'), become_master: v('becameMaster'), release_master: v('releasedMaster'),
        packet_len_err: v('lengthError'), advert_interval_err: v('intervalMismatch'), ip_ttl_err: v('ttlError'), invalid_type_rcvd: v('typeError'),
        addr_list_err: v('addressListError'), invalid_authtype: v('invalidAuthType'), authtype_mismatch: v('authTypeMismatch'), auth_failure: v('authFailure'),
        pri_zero_rcvd: v('priorityZeroReceived'), pri_zero_sent: v('priorityZeroSent'),
      },
    };
  });
}

/** The file content of one dump. */
export function dumpText(kind: DumpKind, instances: readonly VrrpInstanceReport[], checks: readonly CheckSnapshot[]): string {
  switch (kind) {
    case 'DATA': return formatVrrpData(instances) + formatChecks(checks);
    case 'STATS': return formatVrrpStats(instances);
    case 'JSON': return JSON.stringify(vrrpJson(instances));
  }
}

/** Writes one dump file (as keepalived: truncated and rewritten in place); returns its path. */
export function writeDump(kind: DumpKind, instances: readonly VrrpInstanceReport[], checks: readonly CheckSnapshot[], env: NodeJS.ProcessEnv = process.env): string {
  const path = join(dumpDir(env), DUMP_FILES[kind]);
  writeFileSync(path, dumpText(kind, instances, checks), { mode: 0o644 });
  return path;
}
