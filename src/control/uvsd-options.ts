// uvsd's command line (README.md, "Options"): keepalived 2.2's options, each either given its
// keepalived meaning or accepted with a one-line note where uvsd has no such job (kept in
// `notes`, logged at start), then uvsd's own data-plane and control-socket options. Pure: argv
// in, options or a usage error that names the option out.

import { availableParallelism, totalmem } from 'node:os';
import { UvsError } from '../runtime/errors';
import { CONN_ENTRY_BYTES, MAX_CAPACITY, NO_DEST } from '../conn/table';
import type { ConnDefense } from '../conn/defense';
import { DEFAULT_BUSY_POLL_MAX_US, DEFAULT_BUSY_POLL_US, MAX_BUSY_POLL_US } from '../dataplane/dataplane';
import { parseListenAddress, type ListenAddress } from '../metrics/listen';

/** ring: AF_PACKET rings (default); pcap: libpcap; none: control plane only, no packet I/O. */
export type IoBackend = 'ring' | 'xdp' | 'pcap' | 'none';

export interface UvsdOptions {
  /** -n/--dont-fork: accepted, changes nothing (uvsd always stays in the foreground). */
  dontFork: boolean;
  /** -l/--log-console: log to the console. */
  logConsole: boolean;
  /** -f/--use-file FILE: a keepalived.conf (default DEFAULT_CONFIG_FILE, as keepalived); null
   *  with --no-config: an empty table, no file read. */
  configFile: string | null;
  /** No -f given: the file is keepalived's default path, and a missing one is not an error. */
  configDefault: boolean;
  /** -t/--config-test[=FILE]: check the configuration and exit (0 = good). */
  configTest: boolean;
  /** --config-test=FILE: where -t writes its diagnostics (keepalived's option); null = stderr. */
  configTestLog: string | null;
  /** -D/--log-detail: debug-level lines too. */
  logDetail: boolean;
  /** -S/--log-facility: the syslog facility number (LOG_DAEMON = 3 by default). */
  logFacility: number;
  /** -G/--no-syslog. */
  noSyslog: boolean;
  /** --log-journal: stderr lines with <N> level prefixes for journald (chosen by itself under
   *  systemd: JOURNAL_STREAM set and stderr not a terminal). */
  logJournal: boolean;
  /** -P/--vrrp: VRRP only, no virtual servers and no checkers. -C/--check: checkers and the
   *  table only, no VRRP. Both: everything (keepalived runs both children then too). */
  vrrpOnly: boolean;
  checkOnly: boolean;
  /** -p/--pid, -r/--vrrp_pid, -c/--checkers_pid: pid files, each holding uvsd's pid (one
   *  process; its VRRP and checkers are threads and timers in it); null = none written. */
  pidFile: string | null;
  vrrpPidFile: string | null;
  checkersPidFile: string | null;
  /** -i/--config-id: the id @id lines match; null = the host name up to its first dot. */
  configId: string | null;
  /** -u/--umask. */
  umask: number | null;
  /** --signum=SIGFUNC: print the signal number for SIGFUNC and exit. */
  signum: string | null;
  /** -R/--dont-respawn: a VRRP thread that dies is not restarted (it still fails safe: its VIPs
   *  are removed). Data-plane workers are restarted in place either way. */
  dontRespawn: boolean;
  /** keepalived options uvsd accepts without a job for them: one line each, logged at start. */
  notes: string[];
  io: IoBackend;
  /** --xdp-mode: how --io xdp attaches its XDP programs (generic: after the kernel's skb and GRO,
   *  any device; native: in the driver, before GRO). */
  xdpMode: 'generic' | 'native';
  /** --fast-path on|off: established DR flows forwarded by an XDP program (src/dataplane/fast-path.ts). */
  fastPath: boolean;
  /** --fast-path-max N: flows the fast path holds at most (null: FAST_ENTRIES_DEFAULT, at most --conn-max). */
  fastPathMax: number | null;
  /** --fast-path-early on|off: TCP connections enter the fast path at their SYN and close in the
   *  kernel (src/dataplane/fast-path.ts, "Whole connections in the kernel"). */
  fastPathEarly: boolean;
  /** --fast-path-sched on|off: the XDP program schedules new TCP connections of rr and wrr services
   *  itself (src/dataplane/fast-path.ts, "New connections scheduled in the kernel"); needs
   *  --fast-path-early on. */
  fastPathSched: boolean;
  /** --iface IF, repeatable; empty = chosen from the configuration (docs/architecture.md, "Which interfaces"). */
  ifaces: string[];
  workers: number;
  /** --fanout: how the kernel spreads frames over the workers (PACKET_FANOUT mode). */
  fanout: FanoutChoice;
  /** --busy-poll USEC: a worker's busy-poll window after a turn with frames (0: off). */
  busyPollUs: number;
  /** --busy-poll-max USEC: the longest adaptive busy-poll window (0: the fixed --busy-poll window only). */
  busyPollMaxUs: number;
  connMax: number;
  /** --drop-entry, --drop-packet, --secure-tcp, --amemthresh, --am-droprate: the connection
   *  table's flood defence (src/conn/defense.ts); absent ones keep their defaults. */
  connDefense: Partial<ConnDefense>;
  /** --sysctl-file PATH: net.ipv4.vs.* knobs in sysctl.conf syntax, read at start and on SIGHUP
   *  (src/control/sysctl.ts); null = none. */
  sysctlFile: string | null;
  /** --svc-max: virtual services the table holds (service ids 0..svcMax-1). */
  svcMax: number;
  /** --dest-max: real servers the table holds, over all services (DestTable slots). */
  destMax: number;
  /** --socket PATH; null = UVS_SOCKET or /run/uvs/<netns inode>.sock. */
  socket: string | null;
  /** --metrics ADDR:PORT: serve Prometheus text at /metrics; null = no server. */
  metrics: ListenAddress | null;
  /** --metrics-textfile DIR: write DIR/uvs_ipvs.prom for node_exporter's textfile collector. */
  metricsTextfile: string | null;
  /** --conn-state PATH|none: where a graceful stop saves the connections for the next uvsd
   *  (restart without loss); null = beside the control socket (<socket>.conns), '' = none. */
  connState: string | null;
  help: boolean;
  version: boolean;
}

/**
 * The default --conn-max: what 1/64 of the machine's memory holds at CONN_ENTRY_BYTES (80.125) per
 * entry, indexes included — 4.9 M entries (377 MiB) with 24 GiB, 837 K with 4 GiB — at least
 * 65,536 and at most the table's limit. The buffer is allocated at start, but the kernel backs
 * its pages only as entries are first used.
 */
export function defaultConnMax(memBytes = totalmem()): number {
  return Math.min(MAX_CAPACITY, Math.max(65_536, Math.floor(memBytes / 64 / CONN_ENTRY_BYTES)));
}
export const DEFAULT_CONN_MAX = defaultConnMax();
/**
 * Table caps. IPVS has none (kmalloc per object); uvs sizes its shared tables up front. Cost per
 * service slot: 56 bytes of snapshot and index (twice while a new snapshot is built) plus 40 bytes
 * of counters per worker; per real-server slot: 48 bytes of DestTable, 32 of next hop, 40 of
 * counters per worker. The defaults (16,384 services, 131,072 real servers: 10,000 services of
 * 10 real servers fit) take about 22 MB with two workers, backed by the kernel only as slots are
 * first used; memory for a service's scheduler and listing is allocated only when the service
 * exists. Real servers are capped at 16,777,215 (NO_DEST) whatever the option: a connection
 * entry keeps its real server's slot in 24 bits (src/conn/table.ts, entryDestSlot).
 */
export const DEFAULT_SVC_MAX = 1 << 14;
export const DEFAULT_DEST_MAX = 1 << 17;
export const MAX_SVC_MAX = 1 << 22;
export const MAX_DEST_MAX = NO_DEST;
/** keepalived's default configuration file (keepalived(8), -f). */
export const DEFAULT_CONFIG_FILE = '/etc/keepalived/keepalived.conf';
/** syslog(3)'s LOG_DAEMON: keepalived's default facility. */
export const LOG_DAEMON = 3;

/** keepalived's --signum functions that uvsd handles, and their signals (keepalived(8), SIGNALS;
 *  lib/signals.c get_signum). JSON is SIGURG here, not keepalived's SIGRTMIN+2: Node.js cannot
 *  catch real-time signals (src/control/dumps.ts). */
export const SIGNUMS: Readonly<Record<string, number>> = { STOP: 15, RELOAD: 1, DATA: 10, STATS: 12, JSON: 23 };
/** keepalived's functions uvsd does not handle: --signum refuses them rather than give a number
 *  whose default action would end uvsd (real-time signals terminate a process that ignores them). */
const SIGNUMS_UNHANDLED: Readonly<Record<string, string>> = {
  STATS_CLEAR: 'the VRRP counters are not cleared (STATS writes them)',
  TDUMP: 'uvsd has no thread dump',
  TDATA: 'uvsd has no thread dump',
};
export const MAX_WORKERS = 64;

/** PACKET_FANOUT modes offered by --fanout (native.ts FanoutMode). */
export type FanoutChoice = 'hash' | 'cpu' | 'lb';
const FANOUT_CHOICES: readonly FanoutChoice[] = ['hash', 'cpu', 'lb'];

/**
 * Default worker threads: one fewer than the cores, at least one. The kernel's own receive work
 * (softirq: the driver, the packet sockets' rings) and the generators or services on the machine
 * need a core; on the 2-core test machine one worker forwarded more, at less CPU per packet, than
 * two (native/README.md, "Workers and fanout").
 */
export function defaultWorkers(cores = availableParallelism()): number {
  return Math.min(MAX_WORKERS, Math.max(1, cores - 1));
}
/** Entry numbers take 24 bits in the table's indexes. */
export const MAX_CONN_MAX = MAX_CAPACITY;

export class UvsdUsageError extends UvsError {
  constructor(message: string) {
    super('UVS_ERR_USAGE', message);
  }
}

export const UVSD_USAGE = `Usage: uvsd [options]
keepalived's options:
  -f, --use-file=FILE          read this keepalived.conf (default ${DEFAULT_CONFIG_FILE})
      --no-config              no file: start with an empty table (uvsadm-only use)
  -P, --vrrp                   only VRRP (no virtual servers, no checkers)
  -C, --check                  only the table and its checkers (no VRRP)
  -l, --log-console            log to the console (instead of syslog)
  -D, --log-detail             detailed log messages (debug level)
  -S, --log-facility=FACILITY  syslog facility: 0-7 (local0-7), local0-7, user, daemon (default)
  -G, --no-syslog              do not log via syslog (errors still go to stderr)
  -p, --pid=FILE               write uvsd's pid to FILE (default: no pid file)
  -r, --vrrp_pid=FILE          the same, for scripts reading keepalived's VRRP pid file
  -c, --checkers_pid=FILE      the same, for scripts reading keepalived's checkers pid file
  -i, --config-id=ID           the id @ID lines match (default: host name up to the first dot)
  -u, --umask=MASK             umask for created files (numeric)
  -n, --dont-fork              accepted: uvsd always stays in the foreground
  -t, --config-test[=FILE]     check the configuration and exit (0 = good); diagnostics to FILE
      --signum=SIGFUNC         print the signal number for STOP, RELOAD, DATA, STATS or JSON and exit
  -R, --dont-respawn           do not restart a VRRP thread that dies (it still fails safe)
  -B -X -V -I -a -d -e -x -m --all --no_bfd --flush-log-file --perf --debug --no-mem-check
  -g FILE -A FILE -b FILE -M[PATTERN]
                               accepted with a note: uvsd has no such job (see uvsd(8))
uvsd's options:
      --log-journal            log to stderr with <N> level prefixes (default under systemd)
      --io ring|xdp|pcap|none  packet I/O backend (default ring; xdp: AF_XDP beside the rings;
                               none: control plane only)
      --xdp-mode MODE          with --io xdp: generic (default; any device) or native (in the
                               driver, before GRO: needs driver support)
      --fast-path on|off       forward established DR flows in the kernel, with an XDP program
                               (default on with --io ring and xdp)
      --fast-path-max N        flows the fast path holds at most (default: 1048576, at most
                               --conn-max; 16 bytes of kernel memory per flow at start, about
                               100 more per flow offloaded)
      --fast-path-early on|off TCP connections enter the fast path at their SYN and close
                               in the kernel (default off)
      --fast-path-sched on|off the XDP program schedules new TCP connections of rr and wrr
                               services itself, user space enters them afterwards (default
                               off; needs --fast-path-early on)
      --iface IF               capture on IF; repeatable (default: from the configuration)
      --workers N              data-plane worker threads (default: number of CPUs - 1, at least 1)
      --fanout MODE            how frames are spread over the workers: hash (default; a flow stays
                               on one worker), cpu (the worker of the receiving CPU, pinned to it;
                               for multi-queue NICs whose RSS already spreads flows), lb (round robin)
      --busy-poll USEC         after forwarding, a worker keeps polling its rings this long before it
                               sleeps (default ${DEFAULT_BUSY_POLL_US}; 0 off): less latency, more CPU under light traffic
      --busy-poll-max USEC     longest adaptive window: traffic whose frames come up to 2/3 of this apart
                               keeps a worker polling from frame to frame (default ${DEFAULT_BUSY_POLL_MAX_US}; 0: fixed window)
      --conn-max N             connection table capacity (default ${DEFAULT_CONN_MAX}: 1/64 of memory, ${CONN_ENTRY_BYTES} bytes each)
      --drop-entry 0-3         flood defence, as net.ipv4.vs.drop_entry: evict cheap entries under pressure
                               (0 off, 1/2 auto, 3 always; default 1)
      --drop-packet 0-3        as net.ipv4.vs.drop_packet: drop a share of new connections (default 0)
      --secure-tcp 0-3         as net.ipv4.vs.secure_tcp: the stricter TCP state table (default 0)
      --amemthresh N           pressure starts when fewer than N table slots are free (default conn-max/8)
      --am-droprate N          drop_packet's 1/N when it is 3 (default 10)
                               (these five are aliases of the net.ipv4.vs knobs of the same name)
      --sysctl-file PATH       IPVS knobs (net.ipv4.vs.* = value, sysctl.conf syntax), read at
                               start and on SIGHUP (uvsadm(8) lists and sets them)
      --svc-max N              virtual services the table holds (default ${DEFAULT_SVC_MAX})
      --dest-max N             real servers the table holds, all services together (default ${DEFAULT_DEST_MAX})
      --socket PATH            control socket (default: $UVS_SOCKET, else /run/uvs/<netns inode>.sock)
      --metrics ADDR:PORT      serve Prometheus text at http://ADDR:PORT/metrics (node_exporter's
                               node_ipvs_* series and uvs_*); :PORT for every address
      --metrics-textfile DIR   write the node_ipvs_* series to DIR/uvs_ipvs.prom every 10 s, for
                               node_exporter's textfile collector
      --conn-state PATH|none   connections kept across a restart (default: the socket's path, .conns)
  -h, --help                   this text
  -v, --version                uvs's version
`;

/** none: a flag; required: FILE or =FILE; optional: only attached (-tFILE, --config-test=FILE), as getopt_long. */
type ArgMode = 'none' | 'required' | 'optional';

interface Spec {
  long: string;
  short: string;
  arg: ArgMode;
}

/** keepalived options with no job in uvsd: the note logged for each (keepalived(8) for their meaning). */
const NOTED: Readonly<Record<string, string>> = {
  all: 'uvsd runs VRRP and the checkers whenever the configuration has them',
  no_bfd: 'uvs has no BFD',
  'log-file': 'uvsd logs to syslog, the journal or the console, not to a file of its own',
  'flush-log-file': 'uvsd writes no log file',
  'release-vips': 'uvsd removes its VIPs on every stop already',
  'dont-release-vrrp': 'uvsd always removes its VIPs on stop (a restarted uvsd purges stale ones)',
  'dont-release-ipvs': 'the IPVS table of uvsd lives in the process and goes with it',
  'dump-conf': 'use uvsadm -Ln and uvsd -t to see what uvsd makes of the configuration',
  'address-monitoring': 'uvsd does not log address changes',
  'bfd_pid': 'uvs has no BFD process',
  'all-config': 'a missing include is reported by uvsd -t',
  snmp: 'uvs has no SNMP agent',
  'snmp-agent-socket': 'uvs has no SNMP agent',
  'core-dump': 'Node.js writes no core dump of its own; use ulimit -c and node --abort-on-uncaught-exception',
  'core-dump-pattern': 'uvsd does not change kernel.core_pattern',
  perf: 'uvsd records no perf data (use node --cpu-prof)',
  debug: 'uvsd has no keepalived debug options; -D gives detail',
  'no-mem-check': 'uvsd has no malloc checks',
};

const SPECS: Spec[] = [
  { long: 'use-file', short: 'f', arg: 'required' },
  { long: 'no-config', short: '', arg: 'none' },
  { long: 'vrrp', short: 'P', arg: 'none' },
  { long: 'check', short: 'C', arg: 'none' },
  { long: 'no_bfd', short: 'B', arg: 'none' },
  { long: 'all', short: '', arg: 'none' },
  { long: 'log-console', short: 'l', arg: 'none' },
  { long: 'log-detail', short: 'D', arg: 'none' },
  { long: 'log-facility', short: 'S', arg: 'required' },
  { long: 'log-file', short: 'g', arg: 'required' },
  { long: 'flush-log-file', short: '', arg: 'none' },
  { long: 'no-syslog', short: 'G', arg: 'none' },
  { long: 'log-journal', short: '', arg: 'none' },
  { long: 'release-vips', short: 'X', arg: 'none' },
  { long: 'dont-release-vrrp', short: 'V', arg: 'none' },
  { long: 'dont-release-ipvs', short: 'I', arg: 'none' },
  { long: 'dont-respawn', short: 'R', arg: 'none' },
  { long: 'dont-fork', short: 'n', arg: 'none' },
  { long: 'dump-conf', short: 'd', arg: 'none' },
  { long: 'pid', short: 'p', arg: 'required' },
  { long: 'vrrp_pid', short: 'r', arg: 'required' },
  { long: 'genhash', short: 'T', arg: 'none' },
  { long: 'checkers_pid', short: 'c', arg: 'required' },
  { long: 'address-monitoring', short: 'a', arg: 'none' },
  { long: 'bfd_pid', short: 'b', arg: 'required' },
  { long: 'namespace', short: 's', arg: 'required' },
  { long: 'all-config', short: 'e', arg: 'none' },
  { long: 'config-id', short: 'i', arg: 'required' },
  { long: 'snmp', short: 'x', arg: 'none' },
  { long: 'snmp-agent-socket', short: 'A', arg: 'required' },
  { long: 'umask', short: 'u', arg: 'required' },
  { long: 'core-dump', short: 'm', arg: 'none' },
  { long: 'core-dump-pattern', short: 'M', arg: 'optional' },
  { long: 'signum', short: '', arg: 'required' },
  { long: 'config-test', short: 't', arg: 'optional' },
  { long: 'perf', short: '', arg: 'optional' },
  { long: 'debug', short: '', arg: 'optional' },
  { long: 'no-mem-check', short: '', arg: 'none' },
  { long: 'io', short: '', arg: 'required' },
  { long: 'xdp-mode', short: '', arg: 'required' },
  { long: 'fast-path', short: '', arg: 'required' },
  { long: 'fast-path-max', short: '', arg: 'required' },
  { long: 'fast-path-early', short: '', arg: 'required' },
  { long: 'fast-path-sched', short: '', arg: 'required' },
  { long: 'iface', short: '', arg: 'required' },
  { long: 'workers', short: '', arg: 'required' },
  { long: 'conn-max', short: '', arg: 'required' },
  { long: 'fanout', short: '', arg: 'required' },
  { long: 'busy-poll', short: '', arg: 'required' },
  { long: 'busy-poll-max', short: '', arg: 'required' },
  { long: 'svc-max', short: '', arg: 'required' },
  { long: 'dest-max', short: '', arg: 'required' },
  { long: 'drop-entry', short: '', arg: 'required' },
  { long: 'drop-packet', short: '', arg: 'required' },
  { long: 'secure-tcp', short: '', arg: 'required' },
  { long: 'amemthresh', short: '', arg: 'required' },
  { long: 'am-droprate', short: '', arg: 'required' },
  { long: 'sysctl-file', short: '', arg: 'required' },
  { long: 'socket', short: '', arg: 'required' },
  { long: 'metrics', short: '', arg: 'required' },
  { long: 'metrics-textfile', short: '', arg: 'required' },
  { long: 'conn-state', short: '', arg: 'required' },
  { long: 'help', short: 'h', arg: 'none' },
  { long: 'version', short: 'v', arg: 'none' },
];

function positiveInt(option: string, text: string, max: number): number {
  if (!/^[0-9]+$/.test(text)) throw new UvsdUsageError(`${option}: "${text}" is not a whole number`);
  const n = Number(text);
  if (n < 1 || n > max) throw new UvsdUsageError(`${option}: ${text} is out of range 1..${max}`);
  return n;
}

/** The option as the user wrote it, for errors: "-S" or "--log-facility". */
function named(spec: Spec, word: string): string {
  return word.startsWith('--') || !spec.short ? `--${spec.long}` : `-${spec.short}`;
}

export function parseUvsdArgs(argv: readonly string[]): UvsdOptions {
  const o: UvsdOptions = {
    dontFork: false, logConsole: false, configFile: DEFAULT_CONFIG_FILE, configDefault: true, configTest: false,
    configTestLog: null, logDetail: false, logFacility: LOG_DAEMON, noSyslog: false, logJournal: false,
    vrrpOnly: false, checkOnly: false, pidFile: null, vrrpPidFile: null, checkersPidFile: null, configId: null,
    umask: null, signum: null, dontRespawn: false, notes: [],
    io: 'ring', xdpMode: 'generic', fastPath: true, fastPathMax: null, fastPathEarly: false, fastPathSched: false, ifaces: [],
    workers: defaultWorkers(), fanout: 'hash', busyPollUs: DEFAULT_BUSY_POLL_US, busyPollMaxUs: DEFAULT_BUSY_POLL_MAX_US, connMax: DEFAULT_CONN_MAX, connDefense: {}, sysctlFile: null,
    svcMax: DEFAULT_SVC_MAX, destMax: DEFAULT_DEST_MAX, socket: null, metrics: null, metricsTextfile: null, connState: null,
    help: false, version: false,
  };
  let useFile = false;
  let noConfig = false;
  const words = [...argv];
  while (words.length > 0) {
    const word = words.shift()!;
    let spec: Spec | undefined;
    let value: string | null = null;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq >= 0 ? word.slice(2, eq) : word.slice(2);
      spec = SPECS.find((s) => s.long === name);
      if (!spec) throw new UvsdUsageError(`unknown option --${name}`);
      if (eq >= 0) value = word.slice(eq + 1);
      if (spec.arg === 'none' && value !== null) throw new UvsdUsageError(`option --${name} takes no value`);
    } else if (word.startsWith('-') && word.length > 1) {
      // Short options combine (-nlD); one taking a value ends the group (-f/etc/x.conf or -f FILE).
      const letters = word.slice(1);
      for (let i = 0; i < letters.length; i++) {
        const s = SPECS.find((x) => x.short === letters[i]);
        if (!s) throw new UvsdUsageError(`unknown option -${letters[i]}`);
        if (s.arg !== 'none') {
          const rest = letters.slice(i + 1);
          if (rest) value = rest;
          spec = s;
          break;
        }
        apply(o, s, null, `-${s.short}`);
        if (s.long === 'use-file') useFile = true;
        if (s.long === 'no-config') noConfig = true;
      }
      if (!spec) continue;
    } else {
      throw new UvsdUsageError(`unexpected argument "${word}"`);
    }
    if (spec.arg === 'required' && value === null) {
      const next = words.shift();
      if (next === undefined) throw new UvsdUsageError(`option ${named(spec, word)} needs a value`);
      value = next;
    }
    if (spec.long === 'use-file') useFile = true;
    if (spec.long === 'no-config') noConfig = true;
    apply(o, spec, value, named(spec, word));
  }
  if (useFile && noConfig) throw new UvsdUsageError('--no-config and -f/--use-file exclude each other');
  if (o.fastPathSched && (!o.fastPathEarly || !o.fastPath)) {
    throw new UvsdUsageError('--fast-path-sched on needs --fast-path-early on (the kernel keeps the connections it schedules) and the fast path');
  }
  if (o.connDefense.amemthresh !== undefined && o.connDefense.amemthresh > o.connMax) {
    throw new UvsdUsageError(`--amemthresh: ${o.connDefense.amemthresh} free slots is more than --conn-max (${o.connMax})`);
  }
  return o;
}

function mode(option: string, text: string): number {
  if (!/^[0-3]$/.test(text)) throw new UvsdUsageError(`${option}: "${text}" is not one of 0 (off), 1, 2 (auto), 3 (always)`);
  return Number(text);
}

function apply(o: UvsdOptions, spec: Spec, value: string | null, name: string): void {
  const v = value ?? '';
  const note = NOTED[spec.long];
  if (note !== undefined) {
    o.notes.push(`option ${name} (keepalived's --${spec.long}) accepted: ${note}`);
    return;
  }
  switch (spec.long) {
    case 'dont-fork': o.dontFork = true; break;
    case 'log-console': o.logConsole = true; break;
    case 'use-file':
      if (v === '') throw new UvsdUsageError(`${name}: empty file name`);
      o.configFile = v;
      o.configDefault = false;
      break;
    case 'no-config':
      o.configFile = null;
      o.configDefault = false;
      break;
    case 'vrrp': o.vrrpOnly = true; break;
    case 'dont-respawn': o.dontRespawn = true; break;
    case 'check': o.checkOnly = true; break;
    case 'log-detail': o.logDetail = true; break;
    case 'log-facility': o.logFacility = parseFacility(name, v); break;
    case 'no-syslog': o.noSyslog = true; break;
    case 'log-journal': o.logJournal = true; break;
    case 'pid': o.pidFile = pathValue(name, v); break;
    case 'vrrp_pid': o.vrrpPidFile = pathValue(name, v); break;
    case 'checkers_pid': o.checkersPidFile = pathValue(name, v); break;
    case 'genhash':
      throw new UvsdUsageError(`${name}: genhash mode is not part of uvsd; compute digests with e.g. curl -s URL | md5sum`);
    case 'namespace':
      throw new UvsdUsageError(`${name}: uvsd runs in the network namespace it is started in; use ip netns exec ${v || 'NAME'} uvsd ...`);
    case 'config-id':
      if (v === '' || /\s/.test(v)) throw new UvsdUsageError(`${name}: "${v}" is not a configuration id`);
      o.configId = v;
      break;
    case 'umask': {
      // keepalived reads it with strtoul(.., 0): 022 is octal, 0x12 hex, 18 decimal.
      const n = /^0[xX][0-9a-fA-F]+$/.test(v) ? parseInt(v.slice(2), 16)
        : /^0[0-7]*$/.test(v) ? parseInt(v, 8)
          : /^[1-9][0-9]*$/.test(v) ? Number(v) : NaN;
      if (!(n >= 0 && n <= 0o777)) throw new UvsdUsageError(`${name}: "${v}" is not a umask (0 to 0777)`);
      o.umask = n;
      break;
    }
    case 'signum': {
      const f = v.toUpperCase();
      if (SIGNUMS[f] !== undefined) { o.signum = f; break; }
      const why = SIGNUMS_UNHANDLED[f];
      if (why !== undefined) throw new UvsdUsageError(`${name}: uvsd does not handle ${f}: ${why} (it handles ${Object.keys(SIGNUMS).join(', ')})`);
      throw new UvsdUsageError(`${name}: unknown signal function "${v}" (${Object.keys(SIGNUMS).join(', ')})`);
    }
    case 'config-test':
      o.configTest = true;
      if (value !== null) o.configTestLog = pathValue(name, v);
      break;
    case 'io':
      if (v !== 'ring' && v !== 'xdp' && v !== 'pcap' && v !== 'none') throw new UvsdUsageError(`--io: "${v}" is not one of ring, xdp, pcap, none`);
      o.io = v;
      break;
    case 'iface':
      // IFNAMSIZ is 16 with the NUL; the kernel refuses '/', ':' and whitespace in names.
      if (v === '' || v.length > 15 || /[\s/:]/.test(v) || v === '.' || v === '..') {
        throw new UvsdUsageError(`--iface: "${v}" is not a valid interface name`);
      }
      if (!o.ifaces.includes(v)) o.ifaces.push(v);
      break;
    case 'workers': o.workers = positiveInt('--workers', v, MAX_WORKERS); break;
    case 'xdp-mode':
      if (v !== 'generic' && v !== 'native') throw new UvsdUsageError(`--xdp-mode: "${v}" is not one of generic, native`);
      o.xdpMode = v;
      break;
    case 'fast-path':
      if (v !== 'on' && v !== 'off') throw new UvsdUsageError(`--fast-path: "${v}" is not one of on, off`);
      o.fastPath = v === 'on';
      break;
    case 'fast-path-max': o.fastPathMax = positiveInt('--fast-path-max', v, 1 << 24); break;
    case 'fast-path-early':
      if (v !== 'on' && v !== 'off') throw new UvsdUsageError(`--fast-path-early: "${v}" is not one of on, off`);
      o.fastPathEarly = v === 'on';
      break;
    case 'fast-path-sched':
      if (v !== 'on' && v !== 'off') throw new UvsdUsageError(`--fast-path-sched: "${v}" is not one of on, off`);
      o.fastPathSched = v === 'on';
      break;
    case 'fanout':
      if (!FANOUT_CHOICES.includes(v as FanoutChoice)) throw new UvsdUsageError(`--fanout: "${v}" is not one of ${FANOUT_CHOICES.join(', ')}`);
      o.fanout = v as FanoutChoice;
      break;
    case 'busy-poll':
      if (!/^[0-9]+$/.test(v) || Number(v) > MAX_BUSY_POLL_US) throw new UvsdUsageError(`--busy-poll: "${v}" is not a whole number of µs in 0..${MAX_BUSY_POLL_US}`);
      o.busyPollUs = Number(v);
      break;
    case 'busy-poll-max':
      if (!/^[0-9]+$/.test(v) || Number(v) > MAX_BUSY_POLL_US) throw new UvsdUsageError(`--busy-poll-max: "${v}" is not a whole number of µs in 0..${MAX_BUSY_POLL_US}`);
      o.busyPollMaxUs = Number(v);
      break;
    case 'conn-max': o.connMax = positiveInt('--conn-max', v, MAX_CONN_MAX); break;
    case 'drop-entry': o.connDefense.dropEntry = mode('--drop-entry', v); break;
    case 'drop-packet': o.connDefense.dropPacket = mode('--drop-packet', v); break;
    case 'secure-tcp': o.connDefense.secureTcp = mode('--secure-tcp', v); break;
    case 'amemthresh':
      if (!/^[0-9]+$/.test(v)) throw new UvsdUsageError(`--amemthresh: "${v}" is not a whole number`);
      o.connDefense.amemthresh = Number(v);
      break;
    case 'am-droprate': o.connDefense.amDroprate = positiveInt('--am-droprate', v, 0x7fffffff); break;
    case 'sysctl-file': o.sysctlFile = pathValue(name, v); break;
    case 'svc-max': o.svcMax = positiveInt('--svc-max', v, MAX_SVC_MAX); break;
    case 'dest-max': o.destMax = positiveInt('--dest-max', v, MAX_DEST_MAX); break;
    case 'conn-state':
      if (v === '') throw new UvsdUsageError('--conn-state: empty path (none turns it off)');
      o.connState = v === 'none' ? '' : v;
      break;
    case 'socket':
      if (v === '') throw new UvsdUsageError('--socket: empty path');
      o.socket = v;
      break;
    case 'metrics':
      try {
        o.metrics = parseListenAddress(v);
      } catch (err) {
        throw new UvsdUsageError(`--metrics: ${(err as Error).message}`);
      }
      break;
    case 'metrics-textfile':
      if (v === '') throw new UvsdUsageError('--metrics-textfile: empty directory name');
      o.metricsTextfile = v;
      break;
    case 'help': o.help = true; break;
    case 'version': o.version = true; break;
  }
}

function pathValue(name: string, v: string): string {
  if (v === '') throw new UvsdUsageError(`${name}: empty file name`);
  return v;
}

/** keepalived's -S: 0-7 for local0-local7, or local0-7, user, daemon (keepalived(8)). */
function parseFacility(name: string, v: string): number {
  if (/^[0-7]$/.test(v)) return 16 + Number(v);
  const m = /^local([0-7])$/.exec(v);
  if (m) return 16 + Number(m[1]);
  if (v === 'user') return 1;
  if (v === 'daemon') return LOG_DAEMON;
  throw new UvsdUsageError(`${name}: "${v}" is not a facility (0-7, local0-local7, user, daemon)`);
}
