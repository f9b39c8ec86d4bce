// uvsadm: ipvsadm's command line, talking to the uvsd of this network namespace.
// Parse (config/ipvsadm-args), send (client), print (format) — and exit as ipvsadm exits.

import { FMT_NUMERIC, forEachRestoreLine, IpvsadmExit, parseIpvsadmArgs } from '../config/ipvsadm-args';
import { BatchEncoder, PACKED_BATCH_FORMAT } from './batch-codec';
import type { IpvsadmCommand } from '../config/ipvsadm-args';
import type { NameResolver } from '../config/ipvsadm-addr';
import { ControlClientError, NoDaemonError, request, requestStream } from './client';
import { connectionRows, connectionsHeader, ipvsStrerror, listAll, listConnections, listDaemons, listService, listTimeout } from './format';
import { listDataplane } from './format-dataplane';
import { formatChecks, formatVrrpData, formatVrrpStats, vrrpJson } from './dumps';
import { uvsVersion } from '../runtime/version';
import { connRecordOfRow, type Response } from './protocol';
import { resolveSocketPath } from '../runtime/paths';
import { formatSysctl } from './sysctl';

export interface UvsadmIo {
  program: string;
  stdout(text: string): void;
  /** A promise when what stdout() was given is not written out yet (a slow pipe): a long
   *  listing waits for it before reading more (absent: output is never backed up). */
  stdoutBackedUp?(): Promise<void> | undefined;
  stderr(text: string): void;
  readStdin(): Promise<string>;
  env: NodeJS.ProcessEnv;
  resolver: NameResolver;
}

/** Runs one uvsadm invocation; resolves with the exit status. */
export async function runUvsadm(argv: readonly string[], io: UvsadmIo): Promise<number> {
  // A uvs extension outside ipvsadm's options: the data plane's per-worker figures.
  if (argv.length === 1 && argv[0] === '--dataplane') return dataplane(io);
  // The IPVS knobs, in sysctl's words: --sysctl [NAME[=VALUE]].
  if (argv[0] === '--sysctl' || argv[0]?.startsWith('--sysctl=')) return sysctl(argv, io);
  // uvs extensions: keepalived's state, as its SIGUSR1/SIGUSR2/SIGJSON dumps show it.
  const state = stateQuery(argv);
  if (state === 'usage') {
    io.stderr(`${io.program}: --vrrp and --checks take only --json\n`);
    return 2;
  }
  if (state) return showState(state.what, state.json, io);
  // uvs's own version; -v/--version stay ipvsadm's line, which scripts parse.
  if (argv.length === 1 && argv[0] === '--uvs-version') {
    io.stdout(`uvsadm ${uvsVersion()} (uvs; ipvsadm 1.31 options and output)\n`);
    return 0;
  }
  let command: IpvsadmCommand;
  // ipvsadm with no arguments lists the table.
  if (argv.length === 0) {
    command = { cmd: 'list', what: 'all', service: null, format: 0 };
  } else {
    try {
      command = parseIpvsadmArgs(argv, { program: io.program, resolver: io.resolver });
    } catch (err) {
      if (err instanceof IpvsadmExit) return printExit(err, io);
      throw err;
    }
  }

  let socketPath: string;
  try {
    socketPath = resolveSocketPath(undefined, io.env);
  } catch (err) {
    io.stderr(`${io.program}: ${(err as Error).message}\n`);
    return 2;
  }

  try {
    if (command.cmd === 'restore') return await restore(socketPath, io);
    if (command.cmd === 'list' && command.what === 'connections') return await listConnectionsStreamed(socketPath, command, io);
    const res = await request(socketPath, { type: 'command', command });
    return show(command, res, io);
  } catch (err) {
    return communicationFailure(err, io);
  }
}

/**
 * `-L -c`, streamed: the daemon sends the table in pieces and each is printed as it comes, so a
 * table of a million entries starts printing at once and is never held whole here (ipvsadm
 * prints /proc/net/ip_vs_conn line by line too). The output is the same bytes as one listing.
 */
async function listConnectionsStreamed(socketPath: string, command: IpvsadmCommand & { cmd: 'list' }, io: UvsadmIo): Promise<number> {
  const format = command.format;
  let headed = false;
  const print = (res: Response): Promise<void> | undefined => {
    if (!res.ok || res.result.kind !== 'connection-rows') return undefined;
    if (!headed) {
      io.stdout(connectionsHeader(format));
      headed = true;
    }
    if (res.result.rows.length > 0) io.stdout(connectionRows(res.result.rows.map(connRecordOfRow), format, io.resolver));
    return io.stdoutBackedUp?.();
  };
  const res = await requestStream(socketPath, { type: 'command', command, stream: true }, print);
  if (!res.ok || res.result.kind !== 'connection-rows') return show(command, res, io);
  await print(res);
  return 0;
}

async function dataplane(io: UvsadmIo): Promise<number> {
  try {
    const res = await request(resolveSocketPath(undefined, io.env), { type: 'workers' });
    if (!res.ok || res.result.kind !== 'workers') {
      io.stderr(`${io.program}: --dataplane: ${!res.ok && 'protocolError' in res ? res.protocolError : 'unexpected answer'}\n`);
      return 2;
    }
    io.stdout(listDataplane(res.result.workers, res.result.linkWatch ?? null, res.result.fastPath ?? null));
    return 0;
  } catch (err) {
    return communicationFailure(err, io);
  }
}

/** `--sysctl` lists every knob as `sysctl -a` does, `--sysctl NAME` shows one, `--sysctl
 *  NAME=VALUE` sets one and shows it (as `sysctl -w`). A bad name or value: uvsd's message, exit
 *  255 (sysctl(8)'s status for an unknown key), nothing changed. */
async function sysctl(argv: readonly string[], io: UvsadmIo): Promise<number> {
  const words = argv[0]!.startsWith('--sysctl=') ? [argv[0]!.slice('--sysctl='.length), ...argv.slice(1)] : argv.slice(1);
  if (words.length > 1 || words[0] === '') {
    io.stderr(`${io.program}: usage: ${io.program} --sysctl [net.ipv4.vs.NAME[=VALUE]]\n`);
    return 2;
  }
  const req: { type: 'sysctl'; name?: string; value?: string } = { type: 'sysctl' };
  if (words.length === 1) {
    const w = words[0]!;
    const eq = w.indexOf('=');
    if (eq >= 0) {
      req.name = w.slice(0, eq).trim();
      req.value = w.slice(eq + 1).trim();
    } else {
      req.name = w.trim();
    }
  }
  try {
    const res = await request(resolveSocketPath(undefined, io.env), req);
    if (!res.ok) {
      io.stderr(`${io.program}: ${'protocolError' in res ? res.protocolError : res.error.detail}\n`);
      return 255;
    }
    if (res.result.kind !== 'sysctl') {
      io.stderr(`${io.program}: --sysctl: unexpected answer\n`);
      return 2;
    }
    io.stdout(res.result.values.map((v) => `${formatSysctl(v)}\n`).join(''));
    return 0;
  } catch (err) {
    return communicationFailure(err, io);
  }
}

function stateQuery(argv: readonly string[]): { what: 'vrrp' | 'checks'; json: boolean } | 'usage' | null {
  const what = argv.includes('--vrrp') ? 'vrrp' : argv.includes('--checks') ? 'checks' : null;
  if (what === null) return null;
  const rest = argv.filter((a) => a !== `--${what}`);
  if (rest.length > 1 || (rest.length === 1 && rest[0] !== '--json')) return 'usage';
  return { what, json: rest.length === 1 };
}

/** uvsadm --vrrp: keepalived.data's topology and keepalived.stats's counters per instance;
 *  --checks: each virtual server's checkers. --json: keepalived.json's array, or the checkers'
 *  view as JSON. */
async function showState(what: 'vrrp' | 'checks', json: boolean, io: UvsadmIo): Promise<number> {
  try {
    const res = await request(resolveSocketPath(undefined, io.env), { type: what });
    if (res.ok && res.result.kind === 'vrrp') {
      const instances = res.result.instances;
      if (json) io.stdout(`${JSON.stringify(vrrpJson(instances), null, 2)}\n`);
      else if (instances.length === 0) io.stdout('no vrrp_instance runs in this uvsd\n');
      else io.stdout(formatVrrpData(instances) + formatVrrpStats(instances));
      return 0;
    }
    if (res.ok && res.result.kind === 'checks') {
      const checks = res.result.checks;
      if (json) io.stdout(`${JSON.stringify(checks, null, 2)}\n`);
      else if (checks.length === 0) io.stdout('no health checkers run in this uvsd\n');
      else io.stdout(formatChecks(checks));
      return 0;
    }
    io.stderr(`${io.program}: --${what}: ${!res.ok && 'protocolError' in res ? res.protocolError : 'unexpected answer'}\n`);
    return 2;
  } catch (err) {
    return communicationFailure(err, io);
  }
}

function printExit(e: IpvsadmExit, io: UvsadmIo): number {
  if (e.stdout) io.stdout(e.stdout);
  if (e.stderr) io.stderr(e.stderr);
  return e.status;
}

/** One line, exit 2 — ipvsadm's status when it cannot reach IPVS at all ("Can't initialize ipvs"). */
function communicationFailure(err: unknown, io: UvsadmIo): number {
  if (!(err instanceof NoDaemonError) && !(err instanceof ControlClientError)) throw err;
  io.stderr(`${io.program}: ${err.message}\n`);
  return 2;
}

/** -R: read every line first, parse them all (a bad line stops before anything is sent), then
 *  send them as one all-or-nothing batch. Each line is packed (batch-codec.ts) as soon as it is
 *  parsed, so a restore of 110,000 lines keeps bytes, not 110,000 command objects. A refused
 *  batch prints ipvsadm's message, then which line it was (nothing of the input is applied). */
async function restore(socketPath: string, io: UvsadmIo): Promise<number> {
  const text = await io.readStdin();
  const packed = new BatchEncoder();
  /** The input line of each packed command, for a refusal's message. */
  const lineOf: number[] = [];
  let status = -1;
  forEachRestoreLine(text, (words, lineNumber) => {
    let c: IpvsadmCommand;
    try {
      c = parseIpvsadmArgs(words, { program: io.program, resolver: io.resolver, readingStdin: true });
    } catch (err) {
      if (!(err instanceof IpvsadmExit)) throw err;
      status = printExit(err, io);
      if (status !== 0) restoreRefused(io, lineNumber, words);
      return false;
    }
    if (c.cmd === 'list' || c.cmd === 'save' || c.cmd === 'start-daemon' || c.cmd === 'stop-daemon') {
      io.stderr(`${io.program}: -R input line ${lineNumber}: "${words.join(' ')}" is not a table change; only -A -E -D -C -a -e -d -Z --set lines are restored\n`);
      status = 2;
      return false;
    }
    packed.add(c);
    lineOf.push(lineNumber);
    return true;
  });
  if (status >= 0) return status;
  if (packed.count === 0) return 0;
  // The wait for a hung daemon grows with the batch: a restore of 100,000 lines is applied as
  // one change, but checking and applying its lines still takes uvsd a few seconds.
  const res = await request(socketPath, { type: 'batch', packed: { format: PACKED_BATCH_FORMAT, count: packed.count, data: packed.base64() } }, 10_000 + packed.count);
  if (res.ok) return 0;
  if ('error' in res) {
    io.stderr(`${ipvsStrerror(res.error.op, res.error.errno)}\n`);
    const line = res.error.index === undefined ? undefined : lineOf[res.error.index];
    if (line !== undefined) {
      forEachRestoreLine(text, (words, n) => {
        if (n === line) restoreRefused(io, n, words);
        return n < line;
      });
    }
    return 255;
  }
  io.stderr(`${io.program}: ${res.protocolError}\n`);
  return 2;
}

/** The second line of a refused -R: where (ipvsadm itself says only what). */
function restoreRefused(io: UvsadmIo, lineNumber: number, words: readonly string[]): void {
  io.stderr(`${io.program}: -R: nothing restored: line ${lineNumber}: ${words.join(' ')}\n`);
}

// Firewall-mark services are accepted, listed and saved as ipvsadm does (scripts and save files
// keep working), but the data plane cannot match a mark: its AF_PACKET taps see frames before
// netfilter sets one. Adding or listing one says so on stderr; stdout stays ipvsadm's.
const FWMARK_WHY = 'forward them (it captures frames before netfilter sets marks)';

function warnFwmarks(services: readonly { fwmark: number }[], io: UvsadmIo): void {
  const marks = services.filter((s) => s.fwmark !== 0).map((s) => `FWM ${s.fwmark}`);
  if (marks.length > 0) io.stderr(`${io.program}: warning: ${marks.join(', ')}: firewall-mark services are listed, but uvs does not ${FWMARK_WHY}\n`);
}

function show(command: IpvsadmCommand, res: Response, io: UvsadmIo): number {
  if (!res.ok) {
    if ('error' in res) {
      io.stderr(`${ipvsStrerror(res.error.op, res.error.errno)}\n`);
      // list_service exits 1 when the service is missing; a refused change returns -1 (255).
      return res.error.op === 'get_service' ? 1 : 255;
    }
    io.stderr(`${io.program}: ${res.protocolError}\n`);
    return 2;
  }
  const r = res.result;
  const format = command.cmd === 'list' || command.cmd === 'save' ? command.format : FMT_NUMERIC;
  if ((command.cmd === 'add-service' || command.cmd === 'edit-service') && command.service.fwmark !== 0) {
    io.stderr(`${io.program}: warning: FWM ${command.service.fwmark}: firewall-mark services are kept and listed, but uvs does not ${FWMARK_WHY}\n`);
  }
  switch (r.kind) {
    case 'services':
      io.stdout(listAll(r.info, r.services, format, io.resolver));
      if (command.cmd === 'list') warnFwmarks(r.services, io);
      break;
    case 'service':
      io.stdout(listService(r.service, format, io.resolver));
      if (command.cmd === 'list') warnFwmarks([r.service], io);
      break;
    case 'timeouts': io.stdout(listTimeout(r.timeouts)); break;
    case 'connections': io.stdout(listConnections(r.connections, format, io.resolver)); break;
    case 'daemons': io.stdout(listDaemons(r.daemons)); break;
    case 'ok':
    case 'pong':
      break;
  }
  return 0;
}
