// The adapter between uvsd and the keepalived.conf parser (src/config/keepalived/, built in
// parallel): `-f FILE` and `-t` come through here. The parser is pure (text in, typed model and
// diagnostics out); this adapter turns its virtual_server blocks into the service model's
// configuration, which the daemon applies by diff.
//
// Until that parser exists, loading says so plainly and fails: uvsd never pretends a file was
// checked.

import { ForwardMethod } from '../service/dest-table';
import { IPPROTO_TCP, IPPROTO_UDP, TunnelType } from '../service/model';
import type { DestConfig, ModelConfig, ModelServiceConfig } from '../service/model';
import { DEFAULT_TIMEOUTS } from '../service/model';
import { inetAton } from '../config/ipvsadm-addr';

export class ConfigSupportMissingError extends Error {
  constructor(detail: string) {
    super(`keepalived.conf support is not built yet in this uvs (${detail}); cannot read or test a configuration file`);
    this.name = 'ConfigSupportMissingError';
  }
}

export class ConfigInvalidError extends Error {
  constructor(readonly file: string, readonly messages: string[], readonly exitCode: number) {
    super(`${file}: configuration has errors:\n${messages.join('\n')}`);
    this.name = 'ConfigInvalidError';
  }
}

/** What this adapter expects of src/config/keepalived (its index module). */
interface KeepalivedDiagnostic {
  severity: 'error' | 'warning';
}
interface KeepalivedModule {
  parseKeepalivedConfig(file: string): unknown;
  formatDiagnostic?(d: KeepalivedDiagnostic): string;
  configTestExitCode?(d: readonly KeepalivedDiagnostic[]): number;
}

export interface LoadedConfig {
  file: string;
  model: ModelConfig;
  warnings: string[];
  /** The parser's whole result, for the parts uvsd's other subsystems read (VRRP, checkers). */
  raw: unknown;
}

function loadParser(): KeepalivedModule {
  let mod: Partial<KeepalivedModule>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('../config/keepalived/index') as Partial<KeepalivedModule>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND') throw new ConfigSupportMissingError('src/config/keepalived/index is missing');
    throw err;
  }
  if (typeof mod.parseKeepalivedConfig !== 'function') {
    throw new ConfigSupportMissingError('src/config/keepalived/index has no parseKeepalivedConfig()');
  }
  return mod as KeepalivedModule;
}

/** Reads and checks `file`; throws ConfigSupportMissingError, ConfigInvalidError, or returns. */
export function loadKeepalivedConfig(file: string): LoadedConfig {
  const parser = loadParser();
  const raw = parser.parseKeepalivedConfig(file);
  const result = asRecord(raw, 'parseKeepalivedConfig() result');
  const diagnostics = (Array.isArray(result['diagnostics']) ? result['diagnostics'] : []) as KeepalivedDiagnostic[];
  const format = (d: KeepalivedDiagnostic): string => (parser.formatDiagnostic ? parser.formatDiagnostic(d) : JSON.stringify(d));
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    const exitCode = parser.configTestExitCode ? parser.configTestExitCode(diagnostics) : 1;
    throw new ConfigInvalidError(file, errors.map(format), exitCode || 1);
  }
  const config = result['config'] ?? result['model'] ?? result;
  return {
    file,
    model: toModelConfig(config),
    warnings: diagnostics.filter((d) => d.severity === 'warning').map(format),
    raw,
  };
}

// ---- keepalived virtual_server → model -----------------------------------------------------------

function asRecord(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) throw new Error(`keepalived adapter: ${what} is not an object`);
  return v as Record<string, unknown>;
}

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

function str(v: unknown, fallback: string): string {
  return typeof v === 'string' ? v : fallback;
}

function addr(v: unknown, what: string): number {
  const a = typeof v === 'string' ? inetAton(v) : typeof v === 'number' ? v >>> 0 : null;
  if (a === null) throw new Error(`keepalived adapter: ${what} "${String(v)}" is not an IPv4 address`);
  return a;
}

function lbKind(v: unknown): ForwardMethod {
  switch (str(v, 'NAT').toUpperCase()) {
    case 'DR': return ForwardMethod.DROUTE;
    case 'TUN': return ForwardMethod.TUNNEL;
    default: return ForwardMethod.MASQ;
  }
}

/** keepalived's virtual_server fields (lb_algo, lb_kind, persistence_timeout, ...), read from the
 *  parser's model in either camelCase or keepalived's own snake_case spelling. */
export function toModelConfig(config: unknown): ModelConfig {
  const c = asRecord(config, 'configuration');
  const list = (c['virtualServers'] ?? c['virtual_servers'] ?? c['virtualServer'] ?? []) as unknown[];
  if (!Array.isArray(list)) throw new Error('keepalived adapter: virtualServers is not a list');
  const services: ModelServiceConfig[] = [];
  for (const item of list) {
    const vs = asRecord(item, 'virtual_server');
    const fwmark = num(vs['fwmark'], 0);
    const protocol = str(vs['protocol'], 'TCP').toUpperCase() === 'UDP' ? IPPROTO_UDP : IPPROTO_TCP;
    const kind = lbKind(vs['lbKind'] ?? vs['lb_kind']);
    const timeout = num(vs['persistenceTimeout'] ?? vs['persistence_timeout'], 0);
    const granularity = vs['persistenceGranularity'] ?? vs['persistence_granularity'];
    const port = fwmark ? 0 : num(vs['port'], 0);
    const dests: DestConfig[] = [];
    for (const rsItem of (vs['realServers'] ?? vs['real_servers'] ?? []) as unknown[]) {
      const rs = asRecord(rsItem, 'real_server');
      const fwd = rs['lbKind'] !== undefined || rs['lb_kind'] !== undefined ? lbKind(rs['lbKind'] ?? rs['lb_kind']) : kind;
      dests.push({
        af: 4,
        addr: addr(rs['address'] ?? rs['ip'], 'real_server address'),
        port: fwd === ForwardMethod.MASQ || fwmark ? num(rs['port'], port) : port,
        fwd,
        weight: num(rs['weight'], 1),
        uThreshold: num(rs['uthreshold'] ?? rs['uThreshold'], 0),
        lThreshold: num(rs['lthreshold'] ?? rs['lThreshold'], 0),
        tunType: TunnelType.IPIP,
        tunPort: 0,
        tunFlags: 0,
      });
    }
    services.push({
      fwmark,
      af: 4,
      protocol,
      addr: fwmark ? 0 : addr(vs['address'] ?? vs['ip'], 'virtual_server address'),
      port,
      scheduler: str(vs['lbAlgo'] ?? vs['lb_algo'], 'wlc'),
      flags: timeout > 0 ? 1 : 0,
      timeout,
      netmask: granularity !== undefined ? addr(granularity, 'persistence_granularity') : 0xffffffff,
      peName: str(vs['persistenceEngine'] ?? vs['persistence_engine'], ''),
      dests,
    });
  }
  return { services, timeouts: { ...DEFAULT_TIMEOUTS } };
}
