// ipvsadm's output, byte for byte, from the daemon's structured answers. Every width and word
// follows ipvsadm.c's printf formats (print_title, print_service_entry, print_largenum,
// list_conn/print_conn, list_timeout, list_all) and libipvs's sort order (ipvs_cmp_services,
// ipvs_cmp_dests) and error messages (ipvs_strerror).

import type { SyncDaemonInfo } from '../sync/daemon';
import {
  FMT_EXACT, FMT_NOSORT, FMT_NUMERIC, FMT_PERSISTENTCONN, FMT_RATE, FMT_RULE, FMT_STATS, FMT_THRESHOLDS,
  FMT_TUN_INFO,
} from '../config/ipvsadm-args';
import type { NameResolver } from '../config/ipvsadm-addr';
import { ForwardMethod } from '../tables/dest-table';
import type { ConnRecord } from '../service/conn-list';
import { SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, SVC_F_SCHED_MASK, TunnelType } from '../service/model';
import type { Errno, IpvsOp, Timeouts } from '../service/model';
import type { DaemonInfo, ListedDest, ListedService } from './protocol';
import { intToIpv4 } from '../packet/addr';
import { IPPROTO_TCP, IPPROTO_UDP } from '../packet/ipv4';

const padEnd = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const padStart = (s: string, n: number): string => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** print_largenum: 9 columns; K/M/G/T suffixes when the number would not fit; --exact widens. */
export function largeNum(i: number, format: number): string {
  const digits = String(i);
  if (format & FMT_EXACT) return padStart(digits, digits.length <= 8 ? 9 : digits.length + 1);
  if (i < 100000000) return padStart(digits, 9);
  if (i < 1000000000) return padStart(String(Math.floor(i / 1000)), 8) + 'K';
  if (i < 100000000000) return padStart(String(Math.floor(i / 1000000)), 8) + 'M';
  if (i < 100000000000000) return padStart(String(Math.floor(i / 1000000000)), 8) + 'G';
  return padStart(String(Math.floor(i / 1000000000000)), 8) + 'T';
}

function protocolName(protocol: number): string {
  return protocol === IPPROTO_TCP ? 'TCP' : protocol === IPPROTO_UDP ? 'UDP' : '?';
}

function protocolOption(protocol: number): string {
  return protocol === IPPROTO_TCP ? '-t' : protocol === IPPROTO_UDP ? '-u' : '--xxx-service';
}

function serviceName(protocol: number): string {
  return protocol === IPPROTO_TCP ? 'tcp' : protocol === IPPROTO_UDP ? 'udp' : '';
}

/** addrport_to_anyname: numeric "a.b.c.d:port", or host and service names where known. */
export function addrPort(addr: number, port: number, protocol: number, format: number, names: NameResolver): string {
  if (format & FMT_NUMERIC) return `${intToIpv4(addr >>> 0)}:${port}`;
  const host = names.addrToHost(addr >>> 0) ?? intToIpv4(addr >>> 0);
  const proto = serviceName(protocol);
  const service = proto ? names.portToService(port, proto) : null;
  return `${host}:${service ?? String(port)}`;
}

function fwdName(fwd: ForwardMethod): string {
  switch (fwd) {
    case ForwardMethod.MASQ: return 'Masq';
    case ForwardMethod.LOCAL: return 'Local';
    case ForwardMethod.TUNNEL: return 'Tunnel';
    case ForwardMethod.DROUTE: return 'Route';
  }
  return '';
}

function fwdSwitch(fwd: ForwardMethod): string {
  switch (fwd) {
    case ForwardMethod.MASQ: return '-m';
    case ForwardMethod.TUNNEL: return '-i';
    default: return '-g';
  }
}

const TUN_NAMES = ['ipip', 'gue', 'gre'];
const TUN_FLAG_NAMES = ['-c', '+c', 'r+c'];
const TUN_FLAG_OPTS = ['--tun-nocsum', '--tun-csum', '--tun-remcsum'];

function tunInfo(d: ListedDest): string | null {
  if (d.fwd !== ForwardMethod.TUNNEL) return null;
  switch (d.tunType) {
    case TunnelType.IPIP: return TUN_NAMES[0]!;
    case TunnelType.GUE: return `gue:${d.tunPort}:${TUN_FLAG_NAMES[d.tunFlags] ?? ''}`.slice(0, 15);
    case TunnelType.GRE: return `gre:${TUN_FLAG_NAMES[d.tunFlags] ?? ''}`.slice(0, 15);
  }
  return null;
}

function schedFlags(s: ListedService): string {
  const flags: string[] = [];
  if (s.scheduler === 'sh') {
    if (s.flags & SVC_F_SCHED1) flags.push('sh-fallback');
    if (s.flags & SVC_F_SCHED2) flags.push('sh-port');
  } else if (s.scheduler === 'mh') {
    if (s.flags & SVC_F_SCHED1) flags.push('mh-fallback');
    if (s.flags & SVC_F_SCHED2) flags.push('mh-port');
  } else {
    if (s.flags & SVC_F_SCHED1) flags.push('flag-1');
    if (s.flags & SVC_F_SCHED2) flags.push('flag-2');
    if (s.flags & SVC_F_SCHED3) flags.push('flag-3');
  }
  return flags.join(',');
}

/** print_title. */
export function title(format: number): string {
  const head = padEnd('Prot LocalAddress:Port', 33);
  if (format & FMT_STATS) {
    return `${head} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((t) => padStart(t, 8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (format & FMT_RATE) {
    return `${head} ${['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((t) => padStart(t, 8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (format & FMT_THRESHOLDS) {
    return `${head} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((t) => padEnd(t, 10)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (format & FMT_PERSISTENTCONN) {
    return `${head} ${padEnd('Weight', 9)} ${padEnd('PersistConn', 11)} ${padEnd('ActiveConn', 10)} ${padEnd('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
  }
  if (format & FMT_TUN_INFO) {
    return 'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
  }
  if (!(format & FMT_RULE)) {
    return 'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
  }
  return '';
}

/** int conversion of an unsigned 32-bit difference, as libipvs's comparators compute it. */
function cmpU32(a: number, b: number): number {
  return ((a >>> 0) - (b >>> 0)) | 0;
}

/** ipvs_cmp_services: fwmark, family, protocol, address, port. The kernel reports protocol 0 for
 *  fwmark services. */
export function compareServices(a: ListedService, b: ListedService): number {
  return cmpU32(a.fwmark, b.fwmark) || a.af - b.af || listedProtocol(a) - listedProtocol(b) ||
    cmpU32(a.addr, b.addr) || a.port - b.port;
}

/** ipvs_cmp_dests: address, port. */
export function compareDests(a: ListedDest, b: ListedDest): number {
  return cmpU32(a.addr, b.addr) || a.port - b.port;
}

function listedProtocol(s: ListedService): number {
  return s.fwmark ? 0 : s.protocol;
}

/** print_service_entry. */
export function serviceEntry(s: ListedService, format: number, names: NameResolver): string {
  let out = '';
  let svcName: string;
  const protocol = listedProtocol(s);
  if (s.fwmark) {
    svcName = format & FMT_RULE ? `-f ${s.fwmark}` : `FWM  ${s.fwmark}`;
  } else {
    const vname = addrPort(s.addr, s.port, protocol, format, names);
    svcName = format & FMT_RULE ? `${protocolOption(protocol)} ${vname}` : `${padEnd(protocolName(protocol), 4)} ${vname}`.slice(0, 33);
  }
  const persistent = (s.flags & SVC_F_PERSISTENT) !== 0;
  const mask = s.netmask >>> 0 !== 0xffffffff ? intToIpv4(s.netmask >>> 0) : null;
  if (format & FMT_RULE) {
    out += `-A ${svcName} -s ${s.scheduler}`;
    if (persistent) {
      out += ` -p ${s.timeout}`;
      if (mask) out += ` -M ${mask}`;
    }
    if (s.peName) out += ` --pe ${s.peName}`;
    if (s.flags & SVC_F_ONEPACKET) out += ' -o';
    if (s.flags & SVC_F_SCHED_MASK) out += ` -b ${schedFlags(s)}`;
  } else if (format & FMT_STATS) {
    out += padEnd(svcName, 33);
    const c = s.stats;
    for (const v of [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes]) out += largeNum(v, format);
  } else if (format & FMT_RATE) {
    out += padEnd(svcName, 33);
    const r = s.rates;
    for (const v of [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]) out += largeNum(v, format);
  } else {
    out += `${svcName} ${s.scheduler}`;
    if (s.flags & SVC_F_SCHED_MASK) out += ` (${schedFlags(s)})`;
    if (persistent) {
      out += ` persistent ${s.timeout}`;
      if (mask) out += ` mask ${mask}`;
      if (s.peName) out += ` pe ${s.peName}`;
    }
    if (s.flags & SVC_F_ONEPACKET) out += ' ops';
  }
  out += '\n';

  const dests = format & FMT_NOSORT ? s.dests : [...s.dests].sort(compareDests);
  for (const d of dests) {
    let dname = addrPort(d.addr, d.port, protocol, format, names);
    if (!(format & FMT_RULE)) dname = dname.slice(0, 28);
    if (format & FMT_RULE) {
      out += `-a ${svcName} -r ${dname} ${fwdSwitch(d.fwd)} -w ${d.weight}`;
      if (d.fwd === ForwardMethod.TUNNEL) {
        // print_tunnel_rule
        if (d.tunType === TunnelType.GRE) out += ` --tun-type gre ${TUN_FLAG_OPTS[d.tunFlags] ?? ''}`;
        else if (d.tunType === TunnelType.GUE) out += ` --tun-type gue --tun-port ${d.tunPort} ${TUN_FLAG_OPTS[d.tunFlags] ?? ''}`;
        else out += ' --tun-type ipip';
      }
      out += '\n';
    } else if (format & FMT_STATS) {
      out += `  -> ${padEnd(dname, 28)}`;
      const c = d.stats;
      for (const v of [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes]) out += largeNum(v, format);
      out += '\n';
    } else if (format & FMT_RATE) {
      const r = d.rates;
      out += `  -> ${padEnd(dname, 28)} ${padStart(String(r.cps), 8)} ${padStart(String(r.inpps), 8)} ${padStart(String(r.outpps), 8)}`;
      out += largeNum(r.inbps, format) + largeNum(r.outbps, format) + '\n';
    } else if (format & FMT_THRESHOLDS) {
      out += `  -> ${padEnd(dname, 28)} ${[d.uThreshold, d.lThreshold, d.activeConns, d.inactConns].map((v) => padEnd(String(v), 10)).join(' ')}\n`;
    } else if (format & FMT_PERSISTENTCONN) {
      out += `  -> ${padEnd(dname, 28)} ${padEnd(String(d.weight), 9)} ${padEnd(String(d.persistConns), 11)} ${padEnd(String(d.activeConns), 10)} ${padEnd(String(d.inactConns), 10)}\n`;
    } else if (format & FMT_TUN_INFO) {
      out += `  -> ${padEnd(dname, 28)} ${padEnd(fwdName(d.fwd), 7)} ${padEnd(tunInfo(d) ?? 'n/a', 13)} ${padEnd(String(d.weight), 6)} ${padEnd(String(d.activeConns), 10)} ${padEnd(String(d.inactConns), 10)}\n`;
    } else {
      out += `  -> ${padEnd(dname, 28)} ${padEnd(fwdName(d.fwd), 7)} ${padEnd(String(d.weight), 6)} ${padEnd(String(d.activeConns), 10)} ${padEnd(String(d.inactConns), 10)}\n`;
    }
  }
  return out;
}

/** list_all: `-L`, `-S`. */
export function listAll(info: DaemonInfo, services: readonly ListedService[], format: number, names: NameResolver): string {
  let out = '';
  if (!(format & FMT_RULE)) out += `IP Virtual Server version ${info.version} (size=${info.connTableSize})\n`;
  const sorted = format & FMT_NOSORT ? services : [...services].sort(compareServices);
  out += title(format);
  for (const s of sorted) out += serviceEntry(s, format, names);
  return out;
}

/** list_service: `-L -t VIP:port`. */
export function listService(service: ListedService, format: number, names: NameResolver): string {
  return title(format) + serviceEntry(service, format, names);
}

/** list_timeout. */
export function listTimeout(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpFin} ${t.udp}\n`;
}

/** list_conn / print_conn: `-L -c`. */
export function listConnections(conns: readonly ConnRecord[], format: number, names: NameResolver): string {
  return connectionsHeader(format) + connectionRows(conns, format, names);
}

/** The two heading lines of `-L -c` (printed once, before the first piece of a streamed listing). */
export function connectionsHeader(format: number): string {
  let out = 'IPVS connection entries\n';
  if (format & FMT_PERSISTENTCONN) {
    out += `pro expire ${padEnd('state', 11)} ${padEnd('source', 18)} ${padEnd('virtual', 18)} ${padEnd('destination', 18)} ${padEnd('pe name', 16)} pe_data\n`;
  } else {
    out += `pro expire ${padEnd('state', 11)} ${padEnd('source', 18)} ${padEnd('virtual', 18)} destination\n`;
  }
  return out;
}

/** The lines of `-L -c` for `conns`, one each (print_conn). */
export function connectionRows(conns: readonly ConnRecord[], format: number, names: NameResolver): string {
  let out = '';
  for (const c of conns) {
    const proto = c.protocol === 'TCP' ? IPPROTO_TCP : c.protocol === 'UDP' ? IPPROTO_UDP : 0;
    const cname = addrPort(c.caddr, c.cport, proto, format, names);
    const vname = addrPort(c.vaddr, c.vport, proto, format, names);
    const dname = addrPort(c.daddr, c.dport, proto, format, names);
    // The kernel shows whole seconds left; ipvsadm prints them as mm:ss.
    const expires = Math.max(0, Math.floor(c.expiresMs / 1000));
    const expire = `${String(Math.floor(expires / 60)).padStart(2, '0')}:${String(expires % 60).padStart(2, '0')}`;
    const head = `${padEnd(c.protocol, 3)} ${padEnd(expire, 6)} ${padEnd(c.state, 11)} ${padEnd(cname, 18)} ${padEnd(vname, 18)}`;
    if (format & FMT_PERSISTENTCONN && c.peName !== undefined) {
      out += `${head} ${padEnd(dname, 16)} ${padEnd(c.peName, 18)} ${c.peData ?? ''}\n`;
    } else {
      out += `${head} ${dname}\n`;
    }
  }
  return out;
}

/** libipvs's ipvs_strerror: the message for an errno returned by a given call. */
export function ipvsStrerror(op: IpvsOp, errno: Errno): string {
  const specific: Partial<Record<IpvsOp, Partial<Record<Errno, string>>>> = {
    add_service: { EEXIST: 'Service already exists', ENOENT: 'Scheduler or persistence engine not found' },
    update_service: { ESRCH: 'No such service', ENOENT: 'Scheduler or persistence engine not found' },
    del_service: { ESRCH: 'No such service' },
    zero_service: { ESRCH: 'No such service' },
    add_dest: { ESRCH: 'Service not defined', EEXIST: 'Destination already exists' },
    update_dest: { ESRCH: 'Service not defined', ENOENT: 'No such destination' },
    del_dest: { ESRCH: 'Service not defined', ENOENT: 'No such destination' },
    start_daemon: { EEXIST: 'Daemon has already run' },
    stop_daemon: { ESRCH: 'No daemon is running' },
    get_service: { ESRCH: 'No such service' },
  };
  const message = specific[op]?.[errno];
  if (message) return message;
  switch (errno) {
    case 'EINVAL': return 'Invalid operation.  Possibly wrong module version, address not unicast, ...';
    case 'ENOMEM': return 'Memory allocation problem';
    case 'EOPNOTSUPP': return 'Operation not supported with IPv6';
    case 'EAFNOSUPPORT': return 'Operation not supported with specified address family';
    // strerror(3) for the rest.
    case 'ERANGE': return 'Numerical result out of range';
    case 'ESRCH': return 'No such process';
    case 'ENOENT': return 'No such file or directory';
    case 'EEXIST': return 'File exists';
    case 'ENODEV': return 'No such device';
  }
  return errno;
}

/** `ipvsadm -L --daemon` (ipvsadm 1.31 list_daemon): the master, then the backup, each with the
 *  values the kernel filled in (maxlen, group, port and ttl are printed when set, and the kernel
 *  sets them all when it starts a daemon). */
export function listDaemons(daemons: readonly SyncDaemonInfo[]): string {
  let out = '';
  for (const state of ['master', 'backup'] as const) {
    const d = daemons.find((x) => x.state === state);
    if (!d) continue;
    out += `${state} sync daemon (mcast=${d.mcastInterface}, syncid=${d.syncId}`;
    if (d.syncMaxlen) out += `, maxlen=${d.syncMaxlen}`;
    if (d.mcastGroup) out += `, group=${d.mcastGroup}`;
    if (d.mcastPort) out += `, port=${d.mcastPort}`;
    if (d.mcastTtl) out += `, ttl=${d.mcastTtl}`;
    out += ')\n';
  }
  return out;
}
