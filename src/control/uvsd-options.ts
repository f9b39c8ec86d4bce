// uvsd's command line (DESIGN.md "What a user runs"): keepalived's -n -l -f -t, the data-plane
// options, and the control socket. Pure: argv in, options or a usage error out.

import { availableParallelism } from 'node:os';

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
  /** --iface IF, repeatable; empty = chosen from the configuration (DESIGN.md "Which interfaces"). */
  ifaces: string[];
  workers: number;
  /** --fanout: how the kernel spreads frames over the workers (PACKET_FANOUT mode). */
  fanout: FanoutChoice;
  connMax: number;
  /** --socket PATH; null = UVS_SOCKET or /run/uvs/<netns inode>.sock. */
  socket: string | null;
  help: boolean;
  version: boolean;
}

export const DEFAULT_CONN_MAX = 1 << 18;
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
/** Connection-table slots are int32-indexed. */
export const MAX_CONN_MAX = 2 ** 31 - 1;

export class UvsdUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UvsdUsageError';
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
      --conn-max N        connection table capacity (default ${DEFAULT_CONN_MAX})
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
  { long: 'socket', short: '', takesArg: true },
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
    workers: defaultWorkers(), fanout: 'hash', connMax: DEFAULT_CONN_MAX, socket: null,
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
  return o;
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
    case 'socket':
      if (v === '') throw new UvsdUsageError('--socket: empty path');
      o.socket = v;
      break;
    case 'help': o.help = true; break;
    case 'version': o.version = true; break;
  }
}
