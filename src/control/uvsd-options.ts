// uvsd's command line (README.md, "What runs"): keepalived's -n -l -f -t, the data-plane
// options, and the control socket. Pure: argv in, options or a usage error out.

import { availableParallelism, totalmem } from 'node:os';
import { UvsError } from '../runtime/errors';
import { CONN_ENTRY_BYTES, MAX_CAPACITY, NO_DEST } from '../conn/table';
import type { ConnDefense } from '../conn/defense';

/** ring: AF_PACKET rings (default); pcap: libpcap; none: control plane only, no packet I/O. */
export type IoBackend = 'ring' | 'pcap' | 'none';

export interface UvsdOptions {
  /** -n/--dont-fork: accepted, changes nothing (uvsd always stays in the foreground). */
  dontFork: boolean;
  /** -l/--log-console: log to the console. */
  logConsole: boolean;
  /** -f/--use-file FILE: a keepalived.conf; null = start with an empty table. */
  configFile: string | null;
  /** -t/--config-test: check the configuration and exit (0 = good). */
  configTest: boolean;
  io: IoBackend;
  /** --iface IF, repeatable; empty = chosen from the configuration (docs/architecture.md, "Which interfaces"). */
  ifaces: string[];
  workers: number;
  /** --fanout: how the kernel spreads frames over the workers (PACKET_FANOUT mode). */
  fanout: FanoutChoice;
  connMax: number;
  /** --drop-entry, --drop-packet, --secure-tcp, --amemthresh, --am-droprate: the connection
   *  table's flood defence (src/conn/defense.ts); absent ones keep their defaults. */
  connDefense: Partial<ConnDefense>;
  /** --svc-max: virtual services the table holds (service ids 0..svcMax-1). */
  svcMax: number;
  /** --dest-max: real servers the table holds, over all services (DestTable slots). */
  destMax: number;
  /** --socket PATH; null = UVS_SOCKET or /run/uvs/<netns inode>.sock. */
  socket: string | null;
  help: boolean;
  version: boolean;
}

/**
 * The default --conn-max: what 1/64 of the machine's memory holds at CONN_ENTRY_BYTES (80) per
 * entry, indexes included — 4.9 M entries (377 MiB) with 24 GiB, 838 K with 4 GiB — at least
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
 * counters per worker. The defaults (16,384 services, 65,535 real servers) take about 8 MB with
 * two workers; memory for a service's scheduler and listing is allocated only when the service
 * exists. Real servers are capped at 65,535 whatever the option: a connection entry keeps its
 * real server's slot in 16 bits (src/conn/table.ts, NO_DEST).
 */
export const DEFAULT_SVC_MAX = 1 << 14;
export const DEFAULT_DEST_MAX = NO_DEST;
export const MAX_SVC_MAX = 1 << 22;
export const MAX_DEST_MAX = NO_DEST;
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
  -f, --use-file FILE     read this keepalived.conf (without it: an empty table, no file read)
  -t, --config-test       check the configuration and exit (0 = good)
  -n, --dont-fork         accepted for keepalived compatibility; uvsd stays in the foreground
  -l, --log-console       log to the console
      --io ring|pcap|none packet I/O backend (default ring; none: control plane only)
      --iface IF          capture on IF; repeatable (default: from the configuration)
      --workers N         data-plane worker threads (default: number of CPUs - 1, at least 1)
      --fanout MODE       how frames are spread over the workers: hash (default; a flow stays
                          on one worker), cpu (the worker of the receiving CPU; for multi-queue
                          NICs whose RSS already spreads flows), lb (round robin)
      --conn-max N        connection table capacity (default ${DEFAULT_CONN_MAX}: 1/64 of memory, ${CONN_ENTRY_BYTES} bytes each)
      --drop-entry 0-3    flood defence, as net.ipv4.vs.drop_entry: evict cheap entries under pressure
                          (0 off, 1/2 auto, 3 always; default 1)
      --drop-packet 0-3   as net.ipv4.vs.drop_packet: drop a share of new connections (default 0)
      --secure-tcp 0-3    as net.ipv4.vs.secure_tcp: the stricter TCP state table (default 0)
      --amemthresh N      pressure starts when fewer than N table slots are free (default conn-max/8)
      --am-droprate N     drop_packet's 1/N when it is 3 (default 10)
      --svc-max N         virtual services the table holds (default ${DEFAULT_SVC_MAX})
      --dest-max N        real servers the table holds, all services together (default ${DEFAULT_DEST_MAX})
      --socket PATH       control socket (default: $UVS_SOCKET, else /run/uvs/<netns inode>.sock)
  -h, --help              this text
  -v, --version           version
`;

interface Spec {
  long: string;
  short: string;
  takesArg: boolean;
}

const SPECS: Spec[] = [
  { long: 'dont-fork', short: 'n', takesArg: false },
  { long: 'log-console', short: 'l', takesArg: false },
  { long: 'use-file', short: 'f', takesArg: true },
  { long: 'config-test', short: 't', takesArg: false },
  { long: 'io', short: '', takesArg: true },
  { long: 'iface', short: '', takesArg: true },
  { long: 'workers', short: '', takesArg: true },
  { long: 'fanout', short: '', takesArg: true },
  { long: 'conn-max', short: '', takesArg: true },
  { long: 'svc-max', short: '', takesArg: true },
  { long: 'dest-max', short: '', takesArg: true },
  { long: 'socket', short: '', takesArg: true },
  { long: 'drop-entry', short: '', takesArg: true },
  { long: 'drop-packet', short: '', takesArg: true },
  { long: 'secure-tcp', short: '', takesArg: true },
  { long: 'amemthresh', short: '', takesArg: true },
  { long: 'am-droprate', short: '', takesArg: true },
  { long: 'help', short: 'h', takesArg: false },
  { long: 'version', short: 'v', takesArg: false },
];

function positiveInt(option: string, text: string, max: number): number {
  if (!/^[0-9]+$/.test(text)) throw new UvsdUsageError(`${option}: "${text}" is not a whole number`);
  const n = Number(text);
  if (n < 1 || n > max) throw new UvsdUsageError(`${option}: ${text} is out of range 1..${max}`);
  return n;
}

export function parseUvsdArgs(argv: readonly string[]): UvsdOptions {
  const o: UvsdOptions = {
    dontFork: false, logConsole: false, configFile: null, configTest: false, io: 'ring', ifaces: [],
    workers: defaultWorkers(), fanout: 'hash', connMax: DEFAULT_CONN_MAX, connDefense: {},
    svcMax: DEFAULT_SVC_MAX, destMax: DEFAULT_DEST_MAX, socket: null,
    help: false, version: false,
  };
  const words = [...argv];
  while (words.length > 0) {
    const word = words.shift()!;
    let spec: Spec | undefined;
    let value: string | null = null;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq >= 0 ? word.slice(2, eq) : word.slice(2);
      spec = SPECS.find((s) => s.long === name);
      if (eq >= 0) value = word.slice(eq + 1);
      if (spec && !spec.takesArg && value !== null) throw new UvsdUsageError(`option --${name} takes no value`);
    } else if (word.startsWith('-') && word.length > 1) {
      // Short options combine (-nl); one taking a value ends the group (-f/etc/x.conf or -f FILE).
      const letters = word.slice(1);
      for (let i = 0; i < letters.length; i++) {
        const s = SPECS.find((x) => x.short === letters[i]);
        if (!s) throw new UvsdUsageError(`unknown option -${letters[i]}`);
        if (s.takesArg) {
          const rest = letters.slice(i + 1);
          if (rest) value = rest;
          spec = s;
          break;
        }
        apply(o, s, null);
      }
      if (!spec) continue;
    } else {
      throw new UvsdUsageError(`unexpected argument "${word}"`);
    }
    if (!spec) throw new UvsdUsageError(`unknown option ${word}`);
    if (spec.takesArg && value === null) {
      const next = words.shift();
      if (next === undefined) throw new UvsdUsageError(`option --${spec.long} needs a value`);
      value = next;
    }
    apply(o, spec, value);
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

function apply(o: UvsdOptions, spec: Spec, value: string | null): void {
  const v = value ?? '';
  switch (spec.long) {
    case 'dont-fork': o.dontFork = true; break;
    case 'log-console': o.logConsole = true; break;
    case 'use-file':
      if (v === '') throw new UvsdUsageError('--use-file: empty file name');
      o.configFile = v;
      break;
    case 'config-test': o.configTest = true; break;
    case 'io':
      if (v !== 'ring' && v !== 'pcap' && v !== 'none') throw new UvsdUsageError(`--io: "${v}" is not one of ring, pcap, none`);
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
    case 'fanout':
      if (!FANOUT_CHOICES.includes(v as FanoutChoice)) throw new UvsdUsageError(`--fanout: "${v}" is not one of ${FANOUT_CHOICES.join(', ')}`);
      o.fanout = v as FanoutChoice;
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
    case 'svc-max': o.svcMax = positiveInt('--svc-max', v, MAX_SVC_MAX); break;
    case 'dest-max': o.destMax = positiveInt('--dest-max', v, MAX_DEST_MAX); break;
    case 'socket':
      if (v === '') throw new UvsdUsageError('--socket: empty path');
      o.socket = v;
      break;
    case 'help': o.help = true; break;
    case 'version': o.version = true; break;
  }
}
