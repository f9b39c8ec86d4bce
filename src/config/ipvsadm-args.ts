// ipvsadm 1.31's command line, parsed the way ipvsadm.c parses it (with popt), into a command the
// daemon can apply. Pure: argv and a name resolver in, a command or an exit (status, stdout,
// stderr) out, so every message and exit status is testable without a daemon.
//
// What is matched, from ipvsadm.c:
// - the first option must be a command (-A -E -D -C -L/-l -Z -a -e -d -R -S --set --start-daemon
//   --stop-daemon -h -v), else "Try `prog -h' ..." and exit 255; a command later is an
//   "invalid option";
// - short options combine (-Ln, -lnc), take attached or separate arguments (-t10.0.0.1:80), long
//   options take `--opt=value` or `--opt value`; -p/--persistent has an optional argument (taken
//   only when the next word does not start with '-'; a bare -p means 360 seconds,
//   IPVS_SVC_PERSISTENT_TIMEOUT in libipvs.h, not the man page's 300);
// - popt errors print "<option>: unknown option" / "<option>: missing argument", exit 255;
// - ipvsadm's own checks call fail(): the message and exit 2; the table of legal command and
//   option combinations (commands_v_options), its order of checks and its message texts.

import { DEFAULT_PERSISTENT_TIMEOUT, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, SVC_F_SCHED_MASK, TUN_F_CSUM, TUN_F_REMCSUM, TunnelType } from '../service/model';
import type { DestConfig, ServiceConfig, ServiceKey, Timeouts } from '../service/model';
import { ForwardMethod } from '../tables/dest-table';
import { NameResolver, inetAton, isAllDigits, isIPv6Literal, stringToNumber } from './ipvsadm-addr';
import { UvsError } from '../runtime/errors';
import { IPPROTO_TCP, IPPROTO_UDP } from '../packet/ipv4';
import type { SyncDaemonOptions } from '../sync/daemon';

/** Printing format flags (ipvsadm.c FMT_*). */
export const FMT_NUMERIC = 0x0001;
export const FMT_RULE = 0x0002;
export const FMT_STATS = 0x0004;
export const FMT_RATE = 0x0008;
export const FMT_THRESHOLDS = 0x0010;
export const FMT_PERSISTENTCONN = 0x0020;
export const FMT_NOSORT = 0x0040;
export const FMT_EXACT = 0x0080;
export const FMT_TUN_INFO = 0x0100;

/** ipvsadm's MAX_TIMEOUT: 31 days. */
export const MAX_TIMEOUT = 86400 * 31;
const INT_MAX = 2147483647;
const UINT_MAX = 4294967295;

export const IPVSADM_VERSION_LINE = 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)';

/** A parsed command. Plain data: it travels to the daemon as JSON. */
export type IpvsadmCommand =
  | { cmd: 'add-service' | 'edit-service'; service: ServiceConfig }
  | { cmd: 'delete-service'; service: ServiceKey }
  | { cmd: 'flush' }
  | { cmd: 'add-dest' | 'edit-dest'; service: ServiceKey; dest: DestConfig }
  | { cmd: 'delete-dest'; service: ServiceKey; dest: DestConfig }
  | { cmd: 'zero'; service: ServiceKey | null }
  | { cmd: 'set-timeouts'; timeouts: Timeouts }
  | { cmd: 'list'; what: 'all' | 'service' | 'connections' | 'timeout' | 'daemon'; service: ServiceKey | null; format: number }
  | { cmd: 'save'; format: number }
  | { cmd: 'restore' }
  | { cmd: 'start-daemon'; state: 'master' | 'backup'; daemon: SyncDaemonOptions }
  | { cmd: 'stop-daemon'; state: 'master' | 'backup'; daemon: SyncDaemonOptions };


/** The process must end now: what to print and the status (ipvsadm's exit paths). */
export class IpvsadmExit extends UvsError {
  constructor(readonly status: number, readonly stderr: string, readonly stdout = '') {
    super('UVS_ERR_IPVSADM_EXIT', stderr || stdout);
  }
}

// ---- command and option tables (ipvsadm.c) ---------------------------------------------------

const enum Cmd {
  NONE = 0, ADD, EDIT, DEL, FLUSH, LIST, ADDDEST, DELDEST, EDITDEST, TIMEOUT, STARTDAEMON, STOPDAEMON,
  RESTORE, SAVE, ZERO,
}

const CMD_NAMES = [
  'add-service', 'edit-service', 'delete-service', 'flush', 'list', 'add-server', 'delete-server',
  'edit-server', 'set', 'start-daemon', 'stop-daemon', 'restore', 'save', 'zero',
];

const enum Optc {
  NUMERIC = 0, CONNECTION, SERVICE, SCHEDULER, PERSISTENT, NETMASK, SERVER, FORWARD, WEIGHT, UTHRESHOLD,
  LTHRESHOLD, MCAST, TIMEOUT, DAEMON, STATS, RATE, THRESHOLDS, PERSISTENTCONN, NOSORT, SYNCID, EXACT,
  ONEPACKET, PERSISTENCE_ENGINE, SCHED_FLAGS, MCAST_GROUP, MCAST_PORT, MCAST_TTL, SYNC_MAXLEN, TUN_INFO,
  TUN_TYPE, TUN_PORT, TUN_NOCSUM, TUN_CSUM, TUN_REMCSUM,
}

const OPT_NAMES = [
  'numeric', 'connection', 'service-address', 'scheduler', 'persistent', 'netmask', 'real-server',
  'forwarding-method', 'weight', 'u-threshold', 'l-threshold', 'mcast-interface', 'timeout', 'daemon',
  'stats', 'rate', 'thresholds', 'persistent-conn', 'nosort', 'syncid', 'exact', 'ops', 'pe',
  'sched-flags', 'mcast-group', 'mcast-port', 'mcast-ttl', 'sync-maxlen', 'tun-info', 'tun-type',
  'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum',
];

// Legal combinations: '+' compulsory, 'x' illegal, '1' exclusive, ' ' optional. One character per
// option in Optc order (the columns of ipvsadm.c's commands_v_options).
const COMMANDS_V_OPTIONS = [
  /* ADD     */ 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  /* EDIT    */ 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  /* DEL     */ 'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* FLUSH   */ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* LIST    */ ' 11xxxxxxxxx11       xxxxxxx xxxxx',
  /* ADDSRV  */ 'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  /* DELSRV  */ 'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* EDITSRV */ 'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  /* TIMEOUT */ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* STARTD  */ 'xxxxxxxxxxx xxxxxxx xxxx    xxxxxx',
  /* STOPD   */ 'xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx',
  /* RESTORE */ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* SAVE    */ ' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* ZERO    */ 'xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
];

const TUN_NAMES = ['ipip', 'gue', 'gre'];
const TUN_OPTS = [Optc.TUN_PORT, Optc.TUN_NOCSUM, Optc.TUN_CSUM, Optc.TUN_REMCSUM];
// tunnel_types_v_options: columns tun-port, nocsum, csum, remcsum.
const TUNNEL_TYPES_V_OPTIONS = ['xxxx', '+111', 'x11x'];

// ---- the option table (popt) ------------------------------------------------------------------

const enum ArgKind { NONE, REQUIRED, OPTIONAL }

interface OptionSpec {
  long: string;
  short: string;
  arg: ArgKind;
  /** The value parse_options switches on: the short letter, or a tag for long-only options. */
  tag: string;
}

const OPTIONS: OptionSpec[] = [
  ['add-service', 'A', ArgKind.NONE], ['edit-service', 'E', ArgKind.NONE], ['delete-service', 'D', ArgKind.NONE],
  ['clear', 'C', ArgKind.NONE], ['list', 'L', ArgKind.NONE], ['list', 'l', ArgKind.NONE],
  ['zero', 'Z', ArgKind.NONE], ['add-server', 'a', ArgKind.NONE], ['edit-server', 'e', ArgKind.NONE],
  ['delete-server', 'd', ArgKind.NONE], ['set', '', ArgKind.NONE], ['help', 'h', ArgKind.NONE],
  ['version', 'v', ArgKind.NONE], ['restore', 'R', ArgKind.NONE], ['save', 'S', ArgKind.NONE],
  ['start-daemon', '', ArgKind.REQUIRED], ['stop-daemon', '', ArgKind.REQUIRED],
  ['tcp-service', 't', ArgKind.REQUIRED], ['udp-service', 'u', ArgKind.REQUIRED],
  ['sctp-service', '', ArgKind.REQUIRED], ['fwmark-service', 'f', ArgKind.REQUIRED],
  ['scheduler', 's', ArgKind.REQUIRED], ['persistent', 'p', ArgKind.OPTIONAL], ['netmask', 'M', ArgKind.REQUIRED],
  ['real-server', 'r', ArgKind.REQUIRED], ['masquerading', 'm', ArgKind.NONE], ['ipip', 'i', ArgKind.NONE],
  ['gatewaying', 'g', ArgKind.NONE], ['weight', 'w', ArgKind.REQUIRED], ['u-threshold', 'x', ArgKind.REQUIRED],
  ['l-threshold', 'y', ArgKind.REQUIRED], ['numeric', 'n', ArgKind.NONE], ['connection', 'c', ArgKind.NONE],
  ['mcast-interface', '', ArgKind.REQUIRED], ['syncid', '', ArgKind.REQUIRED], ['timeout', '', ArgKind.NONE],
  ['daemon', '', ArgKind.NONE], ['stats', '', ArgKind.NONE], ['rate', '', ArgKind.NONE],
  ['thresholds', '', ArgKind.NONE], ['persistent-conn', '', ArgKind.NONE], ['nosort', '', ArgKind.NONE],
  ['sort', '', ArgKind.NONE], ['exact', 'X', ArgKind.NONE], ['ipv6', '6', ArgKind.NONE], ['ops', 'o', ArgKind.NONE],
  ['pe', '', ArgKind.REQUIRED], ['sched-flags', 'b', ArgKind.REQUIRED], ['mcast-group', '', ArgKind.REQUIRED],
  ['mcast-port', '', ArgKind.REQUIRED], ['mcast-ttl', '', ArgKind.REQUIRED], ['sync-maxlen', '', ArgKind.REQUIRED],
  ['tun-info', '', ArgKind.NONE], ['tun-type', '', ArgKind.REQUIRED], ['tun-port', '', ArgKind.REQUIRED],
  ['tun-nocsum', '', ArgKind.NONE], ['tun-csum', '', ArgKind.NONE], ['tun-remcsum', '', ArgKind.NONE],
].map(([long, short, arg]) => ({
  long: long as string,
  short: short as string,
  arg: arg as ArgKind,
  // --syncid's tag is 'I' in ipvsadm; long-only options are tagged by their long name.
  tag: long === 'syncid' ? 'I' : (short as string) || `--${long as string}`,
}));

// Lookups by name and by letter (popt's table search, without a scan per option).
const OPTIONS_BY_LONG = new Map<string, OptionSpec>();
const OPTIONS_BY_SHORT = new Map<string, OptionSpec>();
for (const o of OPTIONS) {
  if (!OPTIONS_BY_LONG.has(o.long)) OPTIONS_BY_LONG.set(o.long, o);
  if (o.short && !OPTIONS_BY_SHORT.has(o.short)) OPTIONS_BY_SHORT.set(o.short, o);
}

/** The value of option bit j in a plain number: 34 options fit below 2^53 (a bigint per line
 *  costs more than the rest of a -R line's parse). */
const OPT_BIT: readonly number[] = OPT_NAMES.map((_, j) => 2 ** j);

function hasBit(options: number, j: number): boolean {
  return Math.floor(options / OPT_BIT[j]!) % 2 === 1;
}

interface PoptResult {
  kind: 'opt';
  tag: string;
  arg: string | null;
  /** The argv word the option came from (poptBadOption). */
  word: string;
}
interface PoptError {
  kind: 'error';
  message: 'unknown option' | 'missing argument' | 'option does not take an argument';
  word: string;
}
interface PoptEnd {
  kind: 'end';
}

/** A small popt: options in order, non-option words collected as leftover arguments. */
class Popt {
  private index = 0;
  /** Remaining letters of a short-option cluster being read, and the word it came from. */
  private cluster = '';
  private clusterWord = '';
  private restAreArgs = false;
  readonly leftovers: string[] = [];

  constructor(private readonly argv: readonly string[]) {}

  next(): PoptResult | PoptError | PoptEnd {
    if (this.cluster) return this.shortOption();
    while (this.index < this.argv.length) {
      const word = this.argv[this.index++]!;
      if (this.restAreArgs || word === '-' || !word.startsWith('-')) {
        this.leftovers.push(word);
        continue;
      }
      if (word === '--') {
        this.restAreArgs = true;
        continue;
      }
      if (word.startsWith('--')) return this.longOption(word);
      this.cluster = word.slice(1);
      this.clusterWord = word;
      return this.shortOption();
    }
    return { kind: 'end' };
  }

  /** The next leftover argument (poptGetArg), or null. */
  getArg(): string | null {
    return this.leftovers.shift() ?? null;
  }

  private longOption(word: string): PoptResult | PoptError {
    const eq = word.indexOf('=');
    const name = eq >= 0 ? word.slice(2, eq) : word.slice(2);
    const spec = OPTIONS_BY_LONG.get(name);
    if (!spec) return { kind: 'error', message: 'unknown option', word };
    if (spec.arg === ArgKind.NONE) {
      // popt refuses a value given to an option that takes none (POPT_ERROR_UNWANTEDARG).
      if (eq >= 0) return { kind: 'error', message: 'option does not take an argument', word };
      return { kind: 'opt', tag: spec.tag, arg: null, word };
    }
    if (eq >= 0) return { kind: 'opt', tag: spec.tag, arg: word.slice(eq + 1), word };
    return this.separateArgument(spec, word);
  }

  private shortOption(): PoptResult | PoptError {
    const letter = this.cluster[0]!;
    this.cluster = this.cluster.slice(1);
    const word = this.clusterWord;
    const spec = OPTIONS_BY_SHORT.get(letter);
    if (!spec) {
      this.cluster = '';
      return { kind: 'error', message: 'unknown option', word };
    }
    if (spec.arg === ArgKind.NONE) return { kind: 'opt', tag: spec.tag, arg: null, word };
    if (this.cluster) {
      const arg = this.cluster;
      this.cluster = '';
      return { kind: 'opt', tag: spec.tag, arg, word };
    }
    return this.separateArgument(spec, word);
  }

  private separateArgument(spec: OptionSpec, word: string): PoptResult | PoptError {
    const next = this.argv[this.index];
    if (spec.arg === ArgKind.OPTIONAL) {
      if (next === undefined || next.startsWith('-')) return { kind: 'opt', tag: spec.tag, arg: null, word };
      this.index++;
      return { kind: 'opt', tag: spec.tag, arg: next, word };
    }
    if (next === undefined) return { kind: 'error', message: 'missing argument', word };
    this.index++;
    return { kind: 'opt', tag: spec.tag, arg: next, word };
  }
}

// ---- parsing ------------------------------------------------------------------------------------

export interface ParseContext {
  /** argv[0] as ipvsadm prints it in "Try `%s -h' ...". */
  program: string;
  resolver: NameResolver;
  /** True while reading -R input: a nested -R is refused (ipvsadm's restore_table). */
  readingStdin?: boolean;
}

/** What the caller does next: run a command, or print and exit. */
export type ParseOutcome = { kind: 'command'; command: IpvsadmCommand } | { kind: 'exit'; exit: IpvsadmExit };

function fail(message: string): never {
  throw new IpvsadmExit(2, `${message}\n`);
}

function tryhelpExit(program: string): never {
  throw new IpvsadmExit(255, `Try \`${program} -h' or '${program} --help' for more information.\n`);
}

interface Entry {
  cmd: Cmd;
  svc: ServiceConfig;
  svcSet: boolean;
  dest: DestConfig;
  timeouts: Timeouts;
  daemonState: 'master' | 'backup';
  daemon: SyncDaemonOptions;
}

const SERVICE_ADDR = 1;
const SERVICE_PORT = 2;

/** ipvsadm's parse_service: "host[:port]" or "[v6]:port". Returns SERVICE_* bits, 0 on failure.
 *  Writes into `target` only on success of each part, as the C code does. */
function parseService(text: string, target: { af: 4 | 6; addr: number; port: number; protocol: number }, resolver: NameResolver): number {
  if (isAllDigits(text)) return 0;
  let buf = text;
  let portText: string | null = null;
  if (buf.startsWith('[')) {
    const close = buf.indexOf(']');
    if (close < 0) return 0;
    const after = buf.slice(close + 1);
    if (!after.startsWith(':')) return 0;
    portText = after.slice(1);
    buf = buf.slice(1, close);
  }
  let result = 0;
  if (isIPv6Literal(buf)) {
    target.af = 6;
    target.addr = 0;
  } else {
    if (portText === null) {
      const colon = buf.lastIndexOf(':');
      if (colon >= 0) {
        portText = buf.slice(colon + 1);
        buf = buf.slice(0, colon);
      }
    }
    const addr = inetAton(buf) ?? resolver.hostToAddr(buf);
    if (addr === null) return 0;
    target.af = 4;
    target.addr = addr;
  }
  result |= SERVICE_ADDR;
  if (portText !== null) {
    result |= SERVICE_PORT;
    let port = stringToNumber(portText, 0, 65535);
    if (port === -1) {
      const proto = target.protocol === IPPROTO_TCP ? 'tcp' : target.protocol === IPPROTO_UDP ? 'udp' : '';
      port = proto ? resolver.serviceToPort(portText, proto) ?? -1 : -1;
    }
    if (port === -1) return 0;
    target.port = port;
  }
  return result;
}

function parseTimeout(text: string | null, min: number, max: number): number {
  if (text === null) return DEFAULT_PERSISTENT_TIMEOUT;
  const v = stringToNumber(text, min, max);
  if (v === -1) fail(`invalid timeout value \`${text}' specified`);
  return v;
}

function parseFwmark(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)$/.exec(text);
  const v = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(v) || v <= 0 || v > UINT_MAX) fail(`invalid fwmark value \`${text}' specified`);
  return v;
}

function parseSchedFlags(sched: string, arg: string): number {
  const scheduler = sched || 'wlc';
  let flags = 0;
  for (const flag of arg.split(',').filter((f) => f !== '')) {
    switch (flag) {
      case 'flag-1': flags |= SVC_F_SCHED1; break;
      case 'flag-2': flags |= SVC_F_SCHED2; break;
      case 'flag-3': flags |= SVC_F_SCHED3; break;
      case 'sh-fallback':
      case 'sh-port':
        flags |= flag === 'sh-fallback' ? SVC_F_SCHED1 : SVC_F_SCHED2;
        if (scheduler !== 'sh') fail(`incompatible scheduler flag \`${flag}'`);
        break;
      case 'mh-fallback':
      case 'mh-port':
        flags |= flag === 'mh-fallback' ? SVC_F_SCHED1 : SVC_F_SCHED2;
        if (scheduler !== 'mh') fail(`incompatible scheduler flag \`${flag}'`);
        break;
      default:
        fail(`invalid scheduler flag \`${flag}'`);
    }
  }
  return flags;
}

function parseIpv4Multicast(text: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return false;
  const bytes = m.slice(1).map(Number);
  return bytes.every((b) => b <= 255) && bytes[0]! >= 224 && bytes[0]! <= 239;
}

/** Parses one ipvsadm command line (without the program name). Throws IpvsadmExit for help,
 *  version and every error, exactly as ipvsadm would exit. */
export function parseIpvsadmArgs(argv: readonly string[], ctx: ParseContext): IpvsadmCommand {
  const program = ctx.program;
  const e: Entry = {
    cmd: Cmd.NONE,
    svc: {
      fwmark: 0, af: 4, protocol: 0, addr: 0, port: 0, scheduler: '', flags: 0, timeout: 0,
      netmask: 0xffffffff, peName: '',
    },
    svcSet: false,
    // ipvsadm's defaults: weight 1, direct routing, IPIP tunnels, no tunnel port, no checksum.
    dest: {
      af: 4, addr: 0, port: 0, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0,
      tunType: TunnelType.IPIP, tunPort: 0, tunFlags: 0,
    },
    timeouts: { tcp: 0, tcpFin: 0, udp: 0 },
    daemonState: 'master',
    daemon: { mcastInterface: '', syncId: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 },
  };
  let options = 0;
  let format = 0;
  let schedFlagsArg = '';

  const setOption = (optc: Optc): void => {
    if (hasBit(options, optc)) fail(`multiple '${OPT_NAMES[optc]}' options specified`);
    options += OPT_BIT[optc]!;
  };
  const has = (optc: Optc): boolean => hasBit(options, optc);
  const setCommand = (cmd: Cmd): void => {
    if (e.cmd !== Cmd.NONE) fail('multiple commands specified');
    e.cmd = cmd;
  };

  const popt = new Popt(argv);
  const first = popt.next();
  if (first.kind !== 'opt') tryhelpExit(program);
  switch (first.tag) {
    case 'A': setCommand(Cmd.ADD); break;
    case 'E': setCommand(Cmd.EDIT); break;
    case 'D': setCommand(Cmd.DEL); break;
    case 'a': setCommand(Cmd.ADDDEST); break;
    case 'e': setCommand(Cmd.EDITDEST); break;
    case 'd': setCommand(Cmd.DELDEST); break;
    case 'C': setCommand(Cmd.FLUSH); break;
    case 'L':
    case 'l': setCommand(Cmd.LIST); break;
    case 'Z': setCommand(Cmd.ZERO); break;
    case '--set': setCommand(Cmd.TIMEOUT); break;
    case 'R': setCommand(Cmd.RESTORE); break;
    case 'S': setCommand(Cmd.SAVE); break;
    case '--start-daemon':
    case '--stop-daemon': {
      const start = first.tag === '--start-daemon';
      setCommand(start ? Cmd.STARTDAEMON : Cmd.STOPDAEMON);
      if (first.arg === 'master' || first.arg === 'backup') e.daemonState = first.arg;
      // (sic: ipvsadm's two messages differ)
      else fail(start ? 'illegal start-daemon parameter specified' : 'illegal start_daemon specified');
      break;
    }
    case 'h':
      throw new IpvsadmExit(0, '', usage(program));
    case 'v':
      throw new IpvsadmExit(0, '', `${IPVSADM_VERSION_LINE}\n`);
    default:
      tryhelpExit(program);
  }

  for (;;) {
    const r = popt.next();
    if (r.kind === 'end') break;
    if (r.kind === 'error') {
      // ipvsadm: fprintf(stderr, "%s: %s\n", poptBadOption(...), poptStrerror(c)); return -1.
      throw new IpvsadmExit(255, `${r.word}: ${r.message}\n`);
    }
    const arg = r.arg ?? '';
    switch (r.tag) {
      case 't':
      case 'u':
      case '--sctp-service': {
        setOption(Optc.SERVICE);
        e.svcSet = true;
        if (r.tag === '--sctp-service') {
          // uvs has no SCTP: refused like an address that does not parse would not be honest;
          // say what is missing instead.
          fail('SCTP virtual services are not supported by uvs');
        }
        e.svc.protocol = r.tag === 't' ? IPPROTO_TCP : IPPROTO_UDP;
        const parsed = parseService(arg, e.svc, ctx.resolver);
        if (!(parsed & SERVICE_ADDR)) fail('illegal virtual server address[:port] specified');
        break;
      }
      case 'f':
        setOption(Optc.SERVICE);
        e.svcSet = true;
        e.svc.af = 4;
        e.svc.protocol = IPPROTO_TCP;
        e.svc.fwmark = parseFwmark(arg);
        break;
      case 's':
        setOption(Optc.SCHEDULER);
        // IP_VS_SCHEDNAME_MAXLEN is 16 with the NUL.
        e.svc.scheduler = arg.slice(0, 15);
        break;
      case 'p':
        setOption(Optc.PERSISTENT);
        e.svc.flags |= SVC_F_PERSISTENT;
        e.svc.timeout = parseTimeout(r.arg, 1, MAX_TIMEOUT);
        break;
      case 'M': {
        setOption(Optc.NETMASK);
        if (e.svc.af !== 6) {
          const mask = inetAton(arg) ?? ctx.resolver.hostToAddr(arg);
          if (mask === null) fail('illegal virtual server persistent mask specified');
          e.svc.netmask = mask;
        } else {
          const bits = Number.parseInt(arg, 10);
          if (!(bits >= 1 && bits <= 128)) fail('illegal ipv6 netmask specified');
          e.svc.netmask = bits;
        }
        break;
      }
      case 'r': {
        setOption(Optc.SERVER);
        const t = { af: e.svc.af, addr: e.svc.addr, port: e.svc.port, protocol: e.svc.protocol };
        const parsed = parseService(arg, t, ctx.resolver);
        e.dest.af = t.af;
        e.dest.addr = t.addr;
        e.dest.port = t.port;
        if (!(parsed & SERVICE_ADDR)) fail('illegal real server address[:port] specified');
        // copy vport to dport if not specified
        if (parsed === SERVICE_ADDR) e.dest.port = e.svc.port;
        break;
      }
      case 'i': setOption(Optc.FORWARD); e.dest.fwd = ForwardMethod.TUNNEL; break;
      case 'g': setOption(Optc.FORWARD); e.dest.fwd = ForwardMethod.DROUTE; break;
      case 'm': setOption(Optc.FORWARD); e.dest.fwd = ForwardMethod.MASQ; break;
      case 'w':
        setOption(Optc.WEIGHT);
        e.dest.weight = stringToNumber(arg, 0, 65535);
        if (e.dest.weight === -1) fail('illegal weight specified');
        break;
      case 'x':
        setOption(Optc.UTHRESHOLD);
        e.dest.uThreshold = stringToNumber(arg, 0, INT_MAX);
        if (e.dest.uThreshold === -1) fail('illegal u_threshold specified');
        break;
      case 'y':
        setOption(Optc.LTHRESHOLD);
        e.dest.lThreshold = stringToNumber(arg, 0, INT_MAX);
        if (e.dest.lThreshold === -1) fail('illegal l_threshold specified');
        break;
      case 'c': setOption(Optc.CONNECTION); break;
      case 'n': setOption(Optc.NUMERIC); format |= FMT_NUMERIC; break;
      case '--mcast-interface':
        setOption(Optc.MCAST);
        e.daemon.mcastInterface = arg.slice(0, 15);
        break;
      case 'I':
        setOption(Optc.SYNCID);
        e.daemon.syncId = stringToNumber(arg, 0, 255);
        if (e.daemon.syncId === -1) fail('illegal syncid specified');
        break;
      case '--timeout': setOption(Optc.TIMEOUT); break;
      case '--daemon': setOption(Optc.DAEMON); break;
      case '--stats': setOption(Optc.STATS); format |= FMT_STATS; break;
      case '--rate': setOption(Optc.RATE); format |= FMT_RATE; break;
      case '--thresholds': setOption(Optc.THRESHOLDS); format |= FMT_THRESHOLDS; break;
      case '--persistent-conn': setOption(Optc.PERSISTENTCONN); format |= FMT_PERSISTENTCONN; break;
      case '--nosort': setOption(Optc.NOSORT); format |= FMT_NOSORT; break;
      case '--sort': break; // the default; accepted for compatibility
      case 'X': setOption(Optc.EXACT); format |= FMT_EXACT; break;
      case '6':
        if (e.svc.fwmark) {
          e.svc.af = 6;
          e.svc.netmask = 128;
        } else {
          fail('-6 used before -f\n');
        }
        break;
      case 'o': setOption(Optc.ONEPACKET); e.svc.flags |= SVC_F_ONEPACKET; break;
      case '--pe': setOption(Optc.PERSISTENCE_ENGINE); e.svc.peName = arg.slice(0, 15); break;
      case 'b': setOption(Optc.SCHED_FLAGS); schedFlagsArg = arg.slice(0, 127); break;
      case '--mcast-group':
        setOption(Optc.MCAST_GROUP);
        if (arg.includes(':')) {
          if (!isIPv6Literal(arg) || !/^ff/i.test(arg)) fail(`invalid IPv6 mcast-group \`${arg}'`);
        } else if (!parseIpv4Multicast(arg)) {
          fail(`invalid IPv4 mcast-group \`${arg}'`);
        }
        e.daemon.mcastGroup = arg;
        break;
      case '--mcast-port':
        setOption(Optc.MCAST_PORT);
        e.daemon.mcastPort = stringToNumber(arg, 1, 65535);
        if (e.daemon.mcastPort === -1) fail('illegal mcast-port specified');
        break;
      case '--mcast-ttl':
        setOption(Optc.MCAST_TTL);
        e.daemon.mcastTtl = stringToNumber(arg, 1, 255);
        if (e.daemon.mcastTtl === -1) fail('illegal mcast-ttl specified');
        break;
      case '--sync-maxlen':
        setOption(Optc.SYNC_MAXLEN);
        e.daemon.syncMaxlen = stringToNumber(arg, 1, 65535 - 20 - 8);
        if (e.daemon.syncMaxlen === -1) fail('illegal sync-maxlen specified');
        break;
      case '--tun-info': setOption(Optc.TUN_INFO); format |= FMT_TUN_INFO; break;
      case '--tun-type': {
        setOption(Optc.TUN_TYPE);
        const t = TUN_NAMES.indexOf(arg);
        if (t < 0) fail('illegal tunnel type specified');
        e.dest.tunType = t;
        break;
      }
      case '--tun-port':
        setOption(Optc.TUN_PORT);
        e.dest.tunPort = stringToNumber(arg, 1, 65535);
        if (e.dest.tunPort === -1) fail('illegal tunnel port specified');
        break;
      case '--tun-nocsum': setOption(Optc.TUN_NOCSUM); break;
      case '--tun-csum': setOption(Optc.TUN_CSUM); e.dest.tunFlags |= TUN_F_CSUM; break;
      case '--tun-remcsum': setOption(Optc.TUN_REMCSUM); e.dest.tunFlags |= TUN_F_REMCSUM; break;
      default:
        // A second command, -h, -v, ... after the first command.
        fail(`invalid option \`${r.word}'`);
    }
  }

  if (e.cmd === Cmd.TIMEOUT) {
    const a = popt.getArg();
    const b = a !== null ? popt.getArg() : null;
    const c = b !== null ? popt.getArg() : null;
    if (a === null || b === null || c === null) fail('--set option requires 3 timeout values');
    e.timeouts = {
      tcp: parseTimeout(a, 0, MAX_TIMEOUT),
      tcpFin: parseTimeout(b, 0, MAX_TIMEOUT),
      udp: parseTimeout(c, 0, MAX_TIMEOUT),
    };
  }
  const unexpected = popt.getArg();
  if (unexpected !== null) fail(`unexpected argument ${unexpected}`);

  if (schedFlagsArg) {
    e.svc.flags &= ~SVC_F_SCHED_MASK;
    e.svc.flags |= parseSchedFlags(e.svc.scheduler, schedFlagsArg);
  }

  // ---- process_options ----
  genericOptCheck(e.cmd, options);

  if (e.cmd === Cmd.ADD || e.cmd === Cmd.EDIT) {
    if (!e.svc.fwmark && !e.svc.port && !(e.svc.flags & SVC_F_PERSISTENT)) {
      fail('Zero port specified for non-persistent service');
    }
    if (e.svc.flags & SVC_F_ONEPACKET && !e.svc.fwmark && e.svc.protocol !== IPPROTO_UDP) {
      fail('One-Packet Scheduling is only for UDP virtual services');
    }
    if (!e.svc.scheduler) e.svc.scheduler = 'wlc';
  }

  if (e.cmd === Cmd.ADDDEST || e.cmd === Cmd.EDITDEST) {
    // DR and TUN cannot change the port: the real server gets the service's port.
    if (!e.svc.fwmark && (e.dest.fwd === ForwardMethod.TUNNEL || e.dest.fwd === ForwardMethod.DROUTE)) {
      e.dest.port = e.svc.port;
    }
    if (e.dest.af !== e.svc.af && e.dest.fwd !== ForwardMethod.TUNNEL) {
      fail('Different address family is allowed only for tunneling servers');
    }
    if ((has(Optc.TUN_TYPE) || has(Optc.TUN_PORT) || has(Optc.TUN_NOCSUM) || has(Optc.TUN_CSUM) ||
      has(Optc.TUN_REMCSUM)) && e.dest.fwd !== ForwardMethod.TUNNEL) {
      fail('Tunnel options conflict with forward method');
    }
    tunnelOptCheck(e.dest.tunType, has);
  }

  const key: ServiceKey = { fwmark: e.svc.fwmark, af: e.svc.af, protocol: e.svc.protocol, addr: e.svc.addr, port: e.svc.port };
  switch (e.cmd) {
    case Cmd.LIST: {
      if (((has(Optc.CONNECTION) || has(Optc.TIMEOUT) || has(Optc.DAEMON)) &&
        (has(Optc.STATS) || has(Optc.RATE) || has(Optc.THRESHOLDS))) ||
        ((has(Optc.TIMEOUT) || has(Optc.DAEMON)) && has(Optc.PERSISTENTCONN))) {
        fail('options conflicts in the list command');
      }
      const what = has(Optc.CONNECTION) ? 'connections' : has(Optc.SERVICE) ? 'service'
        : has(Optc.TIMEOUT) ? 'timeout' : has(Optc.DAEMON) ? 'daemon' : 'all';
      return { cmd: 'list', what, service: what === 'service' ? key : null, format };
    }
    case Cmd.RESTORE:
      // restore_table: "avoid infinite loop".
      if (ctx.readingStdin) tryhelpExit(program);
      return { cmd: 'restore' };
    case Cmd.SAVE: return { cmd: 'save', format: format | FMT_RULE };
    case Cmd.FLUSH: return { cmd: 'flush' };
    case Cmd.ADD: return { cmd: 'add-service', service: e.svc };
    case Cmd.EDIT: return { cmd: 'edit-service', service: e.svc };
    case Cmd.DEL: return { cmd: 'delete-service', service: key };
    case Cmd.ZERO: return { cmd: 'zero', service: has(Optc.SERVICE) ? key : null };
    case Cmd.ADDDEST: return { cmd: 'add-dest', service: key, dest: e.dest };
    case Cmd.EDITDEST: return { cmd: 'edit-dest', service: key, dest: e.dest };
    case Cmd.DELDEST: return { cmd: 'delete-dest', service: key, dest: e.dest };
    case Cmd.TIMEOUT: return { cmd: 'set-timeouts', timeouts: e.timeouts };
    case Cmd.STARTDAEMON:
      return { cmd: 'start-daemon', state: e.daemonState, daemon: { ...e.daemon, mcastInterface: e.daemon.mcastInterface || 'eth0' } };
    case Cmd.STOPDAEMON: return { cmd: 'stop-daemon', state: e.daemonState, daemon: e.daemon };
    default:
      tryhelpExit(program);
  }
}

function genericOptCheck(cmd: Cmd, options: number): void {
  const row = COMMANDS_V_OPTIONS[cmd - 1]!;
  let last = 0;
  let count = 0;
  for (let j = 0; j < OPT_NAMES.length; j++) {
    const rule = row[j];
    if (!hasBit(options, j)) {
      if (rule === '+') fail(`You need to supply the '${OPT_NAMES[j]}' option for the '${CMD_NAMES[cmd - 1]}' command`);
    } else {
      if (rule === 'x') fail(`Illegal '${OPT_NAMES[j]}' option with the '${CMD_NAMES[cmd - 1]}' command`);
      if (rule === '1') {
        count++;
        if (count === 1) {
          last = j;
          continue;
        }
        fail(`The option '${OPT_NAMES[j]}' conflicts with the '${OPT_NAMES[last]}' option in the '${CMD_NAMES[cmd - 1]}' command`);
      }
    }
  }
}

function tunnelOptCheck(tunType: number, has: (o: Optc) => boolean): void {
  const row = TUNNEL_TYPES_V_OPTIONS[tunType]!;
  let last = 0;
  let count = 0;
  for (let j = 0; j < TUN_OPTS.length; j++) {
    const k = TUN_OPTS[j]!;
    const rule = row[j];
    if (!has(k)) {
      if (rule === '+') fail(`You need to supply the '${OPT_NAMES[k]}' option for the '${TUN_NAMES[tunType]}' tunnel type`);
    } else {
      if (rule === 'x') fail(`Illegal '${OPT_NAMES[k]}' option with the '${TUN_NAMES[tunType]}' tunnel type`);
      if (rule === '1') {
        count++;
        if (count === 1) {
          last = k;
          continue;
        }
        fail(`The option '${OPT_NAMES[k]}' conflicts with the '${OPT_NAMES[last]}' option in the '${TUN_NAMES[tunType]}' tunnel type`);
      }
    }
  }
}

/** -R input: one command per line, whitespace-separated words, the word "ipvsadm" skipped,
 *  '#' to the end of the line ignored (ipvsadm's config_stream_read). Blank lines yield nothing. */
export function splitRestoreLines(text: string): string[][] {
  const out: string[][] = [];
  forEachRestoreLine(text, (words) => {
    out.push(words);
    return true;
  });
  return out;
}

/** The words of each -R line in turn (as splitRestoreLines), with its line number (1-based);
 *  `visit` returns false to stop. One pass over the characters, no regex or array per line, and
 *  nothing kept: a restore of 110,000 lines parses each line as it is read. */
export function forEachRestoreLine(text: string, visit: (words: string[], lineNumber: number) => boolean): void {
  let words: string[] = [];
  let lineNo = 1;
  // A '#' anywhere in a word ends the line after that word (the word itself is kept unless it
  // starts with '#'), as config_stream_read's strtok/strchr do.
  let skipping = false;
  let start = -1;
  let hash = false;
  const n = text.length;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 10;
    if (c === 32 || c === 9 || c === 13 || c === 10) {
      if (start >= 0) {
        const w = text.slice(start, i);
        if (w !== 'ipvsadm') words.push(w);
        if (hash) skipping = true;
        start = -1;
      }
      if (c === 10) {
        if (words.length > 0) {
          if (!visit(words, lineNo)) return;
          words = [];
        }
        lineNo++;
        skipping = false;
      }
      continue;
    }
    if (skipping) continue;
    if (start < 0) {
      if (c === 35) {
        skipping = true;
        continue;
      }
      start = i;
      hash = false;
    } else if (c === 35) {
      hash = true;
    }
  }
}

export const SCHEDULERS_TEXT = 'rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh';
const PE_LIST = 'sip';

/** ipvsadm's usage text (usage_exit), for `-h`. */
export function usage(p: string): string {
  return `${IPVSADM_VERSION_LINE}\n` +
    'Usage:\n' +
    `  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n` +
    `  ${p} -D virtual-service\n` +
    `  ${p} -C\n` +
    `  ${p} -R\n` +
    `  ${p} -S [-n]\n` +
    `  ${p} -a|e virtual-service -r server-address [options]\n` +
    `  ${p} -d virtual-service -r server-address\n` +
    `  ${p} -L|l [virtual-service] [options]\n` +
    `  ${p} -Z [virtual-service]\n` +
    `  ${p} --set tcp tcpfin udp\n` +
    `  ${p} --start-daemon {master|backup} [daemon-options]\n` +
    `  ${p} --stop-daemon {master|backup}\n` +
    `  ${p} -h\n\n` +
    'Commands:\n' +
    'Either long or short options are allowed.\n' +
    '  --add-service     -A        add virtual service with options\n' +
    '  --edit-service    -E        edit virtual service with options\n' +
    '  --delete-service  -D        delete virtual service\n' +
    '  --clear           -C        clear the whole table\n' +
    '  --restore         -R        restore rules from stdin\n' +
    '  --save            -S        save rules to stdout\n' +
    '  --add-server      -a        add real server with options\n' +
    '  --edit-server     -e        edit real server with options\n' +
    '  --delete-server   -d        delete real server\n' +
    '  --list            -L|-l     list the table\n' +
    '  --zero            -Z        zero counters in a service or all services\n' +
    '  --set tcp tcpfin udp        set connection timeout values\n' +
    '  --start-daemon              start connection sync daemon\n' +
    '  --stop-daemon               stop connection sync daemon\n' +
    '  --help            -h        display this help message\n\n' +
    'virtual-service:\n' +
    '  --tcp-service|-t  service-address   service-address is host[:port]\n' +
    '  --udp-service|-u  service-address   service-address is host[:port]\n' +
    '  --sctp-service    service-address   service-address is host[:port]\n' +
    '  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n' +
    '\n' +
    'Options:\n' +
    '  --ipv6         -6                   fwmark entry uses IPv6\n' +
    `  --scheduler    -s scheduler         one of ${SCHEDULERS_TEXT},\n` +
    '                                      the default scheduler is wlc.\n' +
    `  --pe            engine              alternate persistence engine may be ${PE_LIST},\n` +
    '                                      not set by default.\n' +
    '  --persistent   -p [timeout]         persistent service\n' +
    '  --netmask      -M netmask           persistent granularity mask\n' +
    '  --real-server  -r server-address    server-address is host (and port)\n' +
    '  --gatewaying   -g                   gatewaying (direct routing) (default)\n' +
    '  --ipip         -i                   ipip encapsulation (tunneling)\n' +
    '  --masquerading -m                   masquerading (NAT)\n' +
    '  --tun-type      type                one of ipip|gue|gre,\n' +
    '                                      the default tunnel type is ipip.\n' +
    '  --tun-port      port                tunnel destination port\n' +
    '  --tun-nocsum                        tunnel encapsulation without checksum\n' +
    '  --tun-csum                          tunnel encapsulation with checksum\n' +
    '  --tun-remcsum                       tunnel encapsulation with remote checksum\n' +
    '  --weight       -w weight            capacity of real server\n' +
    '  --u-threshold  -x uthreshold        upper threshold of connections\n' +
    '  --l-threshold  -y lthreshold        lower threshold of connections\n' +
    '  --connection   -c                   output of current IPVS connections\n' +
    '  --timeout                           output of timeout (tcp tcpfin udp)\n' +
    '  --daemon                            output of daemon information\n' +
    '  --stats                             output of statistics information\n' +
    '  --rate                              output of rate information\n' +
    '  --exact                             expand numbers (display exact values)\n' +
    '  --thresholds                        output of thresholds information\n' +
    '  --persistent-conn                   output of persistent connection info\n' +
    '  --tun-info                          output of tunnel information\n' +
    '  --nosort                            disable sorting output of service/server entries\n' +
    '  --sort                              does nothing, for backwards compatibility\n' +
    '  --ops          -o                   one-packet scheduling\n' +
    '  --numeric      -n                   numeric output of addresses and ports\n' +
    '  --sched-flags  -b flags             scheduler flags (comma-separated)\n' +
    'Daemon Options:\n' +
    '  --syncid sid                        syncid for connection sync (default=255)\n' +
    '  --sync-maxlen length                Max sync message length (default=1472)\n' +
    '  --mcast-interface interface         multicast interface for connection sync\n' +
    '  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n' +
    '  --mcast-port port                   UDP port (default=8848)\n' +
    '  --mcast-ttl ttl                     Multicast TTL (default=1)\n';
}
