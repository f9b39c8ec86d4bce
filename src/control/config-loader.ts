// The adapter between uvsd and the keepalived.conf parser (src/config/keepalived/): `-f FILE` and
// `-t` come through here. The parser is pure (text in, typed model and diagnostics out); this
// adapter judges the diagnostics as `keepalived -t` would and turns the virtual_server blocks into
// the service model's configuration, which the daemon applies by diff.

import {
  configTestExitCode, formatDiagnostic, fsReader, linuxMachine, parseKeepalivedConfig, validateKeepalivedModel,
} from '../config/keepalived/index';
import type { ConfigReader, Diagnostic, KeepalivedConfig, Machine, RealServer, VirtualServer } from '../config/keepalived/index';
import { inetAton } from '../config/ipvsadm-addr';
import { ForwardMethod } from '../tables/dest-table';
import { DEFAULT_TIMEOUTS, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, TunnelType } from '../service/model';
import type { DestConfig, ModelConfig, ModelServiceConfig } from '../service/model';
import { UvsError } from '../runtime/errors';
import { IPPROTO_TCP, IPPROTO_UDP } from '../packet/ipv4';

export class ConfigInvalidError extends UvsError {
  constructor(readonly file: string, readonly messages: string[], readonly exitCode: number) {
    super('UVS_ERR_CONFIG_INVALID', `${file}: configuration has errors:\n${messages.join('\n')}`);
  }
}

export interface LoadedConfig {
  file: string;
  /** The virtual servers as the service model's configuration. */
  model: ModelConfig;
  /** Diagnostics that do not fail the file, and what uvs skips (IPv6, SCTP), one line each. */
  warnings: string[];
  /** The parser's whole model, for the parts other subsystems read (VRRP, checkers, notify). */
  keepalived: KeepalivedConfig;
  /** Where each of `model.services` came from, index for index (the health checkers map their
   *  decisions back onto the table with it). */
  origins: ServiceOrigin[];
}

/** A model service's source: the index of its virtual_server in `keepalived.virtualServers`, and
 *  for each of its dests, index for index, the real_server's index in that virtual_server. */
export interface ServiceOrigin {
  vs: number;
  rs: number[];
}

export interface LoadDeps {
  reader: ConfigReader;
  machine: Machine;
}

/** Reads and checks `file` as `keepalived -t` does; throws ConfigInvalidError (with keepalived's
 *  exit code) or returns the configuration. `run` (a start or reload, not -t): what keepalived
 *  reports but corrects and runs with (Diagnostic.fixedUp: "clearing", "Ignoring", an invalid
 *  setting left at its default) is a warning, as keepalived logs it and runs. */
export function loadKeepalivedConfig(
  file: string, deps: LoadDeps = { reader: fsReader, machine: linuxMachine() }, configId?: string, run = false,
): LoadedConfig {
  // configId: keepalived's -i, matched by @id lines (keepalived defaults it to the host name up to the first dot).
  const parsed = parseKeepalivedConfig(file, deps.reader, configId === undefined ? {} : { configId });
  const diagnostics: Diagnostic[] = [...parsed.diagnostics, ...validateKeepalivedModel(parsed.model, deps.machine)];
  const judged = run ? diagnostics.filter((d) => !d.fixedUp) : diagnostics;
  const exitCode = configTestExitCode(judged);
  if (exitCode !== 0) {
    throw new ConfigInvalidError(file, judged.filter((d) => d.failsConfigTest).map(formatDiagnostic), exitCode);
  }
  const warnings = diagnostics.filter((d) => !judged.includes(d) || !d.failsConfigTest).map(formatDiagnostic);
  const origins: ServiceOrigin[] = [];
  const model = toModelConfig(parsed.model, (line) => warnings.push(line), origins);
  return { file, model, warnings, keepalived: parsed.model, origins };
}

export function forwardMethod(kind: 'NAT' | 'DR' | 'TUN' | undefined): ForwardMethod {
  switch (kind) {
    case 'DR': return ForwardMethod.DROUTE;
    case 'TUN': return ForwardMethod.TUNNEL;
    default: return ForwardMethod.MASQ; // keepalived's default lb_kind
  }
}

const SCHED_FLAG_BITS: Record<string, number> = {
  'flag-1': SVC_F_SCHED1, 'flag-2': SVC_F_SCHED2, 'flag-3': SVC_F_SCHED3,
  'sh-fallback': SVC_F_SCHED1, 'sh-port': SVC_F_SCHED2, 'mh-fallback': SVC_F_SCHED1, 'mh-port': SVC_F_SCHED2,
};

/** One virtual_server key expanded: a VIP:port or a fwmark (a group gives several). */
type Endpoint = { fwmark: number; addr: number; port: number };

/** keepalived's virtual servers → the service model. IPv6 and SCTP are skipped with a warning
 *  (uvs serves IPv4 TCP/UDP only, for now). */
export function toModelConfig(
  config: KeepalivedConfig, warn: (line: string) => void = () => {}, origins: ServiceOrigin[] = [],
): ModelConfig {
  const services: ModelServiceConfig[] = [];
  const where = (vs: { loc: { file: string; line: number } }): string => `${vs.loc.file}:${vs.loc.line}`;
  for (const [vsIndex, vs] of config.virtualServers.entries()) {
    if (vs.protocol === 'SCTP') {
      warn(`${where(vs)}: warning: SCTP virtual servers are not supported by uvs; skipped`);
      continue;
    }
    for (const ep of endpoints(vs, config, (m) => warn(`${where(vs)}: warning: ${m}`))) {
      if (ep.fwmark !== 0) {
        // Kept in the table (as keepalived puts it in IPVS) and listed, but never matched: uvs's
        // AF_PACKET taps see frames before netfilter sets marks (docs/architecture.md).
        warn(`${where(vs)}: warning: virtual_server fwmark ${ep.fwmark}: firewall-mark services are kept and listed, but uvs does not forward them (it captures frames before netfilter sets marks)`);
      }
      const rsIndexes: number[] = [];
      services.push(service(vs, ep, (m) => warn(`${where(vs)}: warning: ${m}`), rsIndexes));
      origins.push({ vs: vsIndex, rs: rsIndexes });
    }
  }
  return { services, timeouts: { ...DEFAULT_TIMEOUTS } };
}

function endpoints(vs: VirtualServer, config: KeepalivedConfig, warn: (m: string) => void): Endpoint[] {
  const key = vs.key;
  if (key.kind === 'fwmark') return [{ fwmark: key.mark, addr: 0, port: 0 }];
  if (key.kind === 'ip') {
    const addr = key.address.family === 4 ? inetAton(key.address.text) : null;
    if (addr === null) {
      warn(`virtual_server ${key.address.text}: IPv6 is not supported by uvs yet; skipped`);
      return [];
    }
    return [{ fwmark: 0, addr, port: key.port }];
  }
  const group = config.virtualServerGroups.find((g) => g.name === key.name);
  if (!group) {
    warn(`virtual_server group ${key.name} is not defined; skipped`);
    return [];
  }
  const out: Endpoint[] = [];
  for (const e of group.entries) {
    if (e.kind === 'fwmark') {
      out.push({ fwmark: e.mark, addr: 0, port: 0 });
      continue;
    }
    const first = e.range.family === 4 ? inetAton(e.range.text.replace(/-\d+$/, '')) : null;
    if (first === null) {
      warn(`virtual_server_group ${key.name}: ${e.range.text}: IPv6 is not supported by uvs yet; skipped`);
      continue;
    }
    // A.B.C.D-E: the last octet runs from D to E.
    for (let last = e.range.rangeStart; last <= e.range.rangeEnd; last++) {
      out.push({ fwmark: 0, addr: ((first & 0xffffff00) | last) >>> 0, port: e.port ?? 0 });
    }
  }
  return out;
}

function service(vs: VirtualServer, ep: Endpoint, warn: (m: string) => void, rsIndexes: number[]): ModelServiceConfig {
  let flags = 0;
  if (vs.persistenceTimeout !== undefined) flags |= SVC_F_PERSISTENT;
  if (vs.ops) flags |= SVC_F_ONEPACKET;
  for (const f of vs.schedulerFlags) {
    const bit = SCHED_FLAG_BITS[f];
    if (bit === undefined) warn(`unknown scheduler flag "${f}" ignored`);
    else flags |= bit;
  }
  const netmask = vs.persistenceGranularity ? inetAton(vs.persistenceGranularity.text) : null;
  const kind = forwardMethod(vs.forwarding);
  const dests: DestConfig[] = [];
  for (const [rsIndex, rs] of vs.realServers.entries()) {
    const d = dest(rs, kind, ep);
    if (d) {
      dests.push(d);
      rsIndexes.push(rsIndex);
    } else warn(`real_server ${rs.address.text}: IPv6 is not supported by uvs yet; skipped`);
  }
  return {
    fwmark: ep.fwmark,
    af: 4,
    protocol: vs.protocol === 'UDP' ? IPPROTO_UDP : IPPROTO_TCP,
    addr: ep.addr,
    port: ep.port,
    scheduler: vs.scheduler ?? 'wlc',
    flags,
    timeout: vs.persistenceTimeout ?? 0,
    netmask: netmask ?? 0xffffffff,
    peName: '',
    dests,
  };
}

function dest(rs: RealServer, serviceKind: ForwardMethod, ep: Endpoint): DestConfig | null {
  const addr = rs.address.family === 4 ? inetAton(rs.address.text) : null;
  if (addr === null) return null;
  const fwd = rs.lvsMethod ? forwardMethod(rs.lvsMethod) : serviceKind;
  return {
    af: 4,
    addr,
    // DR and TUN cannot change the destination port (the packet keeps the VIP's).
    port: fwd === ForwardMethod.MASQ || ep.fwmark ? rs.port ?? ep.port : ep.port,
    fwd,
    weight: rs.weight ?? 1,
    uThreshold: rs.uthreshold ?? 0,
    lThreshold: rs.lthreshold ?? 0,
    tunType: TunnelType.IPIP,
    tunPort: 0,
    tunFlags: 0,
  };
}
