// The one namespace lab every end-to-end case runs in (needs root):
//
//   uvsEc<S> client/generator ── c0 ─ d0 ── uvsEd<S> director ── d1 ─ r1 ── uvsE1<S> real server 1
//   10.201.0.10                     10.201.0.1 + VIP .100, .101   ── d2 ─ r2 ── uvsE2<S> real server 2
//                                                                 10.201.1.1 / 10.201.2.1   10.201.{1,2}.2
//
//   uvsEc<S> ── x1 ─ y1 ── uvsE1<S>   reply links: 10.201.11.0/24, 10.201.12.0/24
//            ── x2 ─ y2 ── uvsE2<S>
//
// Point-to-point veths and no bridge, so no case pays for switching. The real servers hold the VIP
// on lo with arp_ignore=1/arp_announce=2 (DR) and run rs-server.mjs (HTTP :80) and iperf3 -s
// (:5201). Their default route is the director; their route back to the client is chosen per case
// with replyPath(): 'director' (NAT, nftables DNAT: replies must be un-translated there) or 'direct'
// over the reply links (DR, TUN: the director's kernel would drop replies from the VIP, its own
// address, as martians, and DR's point is that replies bypass the director anyway).
//
// Packet-rate sinks: 10.201.1.99 and 10.201.2.99 are addresses nobody has, with permanent
// neighbour entries on the director pointing to MACs nobody has. Frames forwarded to them reach the
// real servers' veths (rx_packets counts them, exactly and for free) and are dropped there at once as
// PACKET_OTHERHOST, so no case pays for a UDP stack or ICMP errors at the sink — on veth that work
// would land on the forwarding CPU and blur the comparison.
//
// destroy() kills every process in the lab's namespaces (SIGTERM, then SIGKILL) and deletes them;
// it is also run on SIGINT/SIGTERM of the bench itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, runSuffix, sh } from '../../test/netns/native-lab';

export const repoRoot = join(__dirname, '..', '..', '..');
export const UVSD = join(repoRoot, 'dist', 'src', 'cli', 'uvsd.js');
export const UVSADM = join(repoRoot, 'dist', 'src', 'cli', 'uvsadm.js');
export const TUN_DECAP = join(repoRoot, 'dist', 'src', 'cli', 'uvs-tun-decap.js');
export const RS_SERVER = join(repoRoot, 'netns-scripts', 'rs-server.mjs');
export const PKTGEN = join(__dirname, 'pktgen.js');
export const RTT = join(__dirname, 'rtt.js');

export const ADDR = {
  client: '10.201.0.10',
  dirFront: '10.201.0.1',
  vip: '10.201.0.100',
  /** A second front address for the peers that need their own (nftables DNAT). */
  vip2: '10.201.0.101',
  dirRs: ['10.201.1.1', '10.201.2.1'],
  rs: ['10.201.1.2', '10.201.2.2'],
  sink: ['10.201.1.99', '10.201.2.99'],
  sinkMac: ['02:00:00:00:01:99', '02:00:00:00:02:99'],
  /** The client's and the real servers' ends of the reply links. */
  replyClient: ['10.201.11.10', '10.201.12.10'],
  replyRs: ['10.201.11.2', '10.201.12.2'],
  /** Destination of the kernel-forwarding packet-rate case, routed to sink 1. */
  fwdDst: '10.201.9.1',
} as const;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function canPin(): boolean {
  try {
    sh('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
}

export class BenchLab {
  readonly lab: Lab;
  readonly ns: { c: string; d: string; r: [string, string] };
  readonly dev: { c0: string; d0: string; d1: string; d2: string; r1: string; r2: string; x: [string, string]; y: [string, string] };
  readonly mac: { c0: string; d0: string };
  private readonly procs: ChildProcess[] = [];
  private destroyed = false;
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`\nbench: ${sig}: removing the lab\n`);
    try {
      this.destroy();
    } finally {
      process.exit(130);
    }
  };

  constructor() {
    this.lab = new Lab(runSuffix());
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
    const L = this.lab;
    try {
      this.ns = { c: L.ns('Ec'), d: L.ns('Ed'), r: [L.ns('E1'), L.ns('E2')] };
      this.dev = {
        c0: L.dev('c0'), d0: L.dev('d0'), d1: L.dev('d1'), d2: L.dev('d2'), r1: L.dev('r1'), r2: L.dev('r2'),
        x: [L.dev('x1'), L.dev('x2')], y: [L.dev('y1'), L.dev('y2')],
      };
      const { c, d, r } = this.ns;
      const v = this.dev;
      L.veth(c, v.c0, d, v.d0);
      L.veth(d, v.d1, r[0], v.r1);
      L.veth(d, v.d2, r[1], v.r2);
      L.addr(c, v.c0, `${ADDR.client}/24`);
      L.exec(c, ['ip', 'route', 'add', 'default', 'via', ADDR.dirFront]);
      L.addr(d, v.d0, `${ADDR.dirFront}/24`);
      L.addr(d, v.d0, `${ADDR.vip}/32`);
      L.addr(d, v.d0, `${ADDR.vip2}/32`);
      L.exec(d, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0']);
      const rsDevs = [v.r1, v.r2];
      const dirDevs = [v.d1, v.d2];
      for (let i = 0; i < 2; i++) {
        L.addr(d, dirDevs[i]!, `${ADDR.dirRs[i]}/24`);
        L.addr(r[i]!, rsDevs[i]!, `${ADDR.rs[i]}/24`);
        L.exec(r[i]!, ['ip', 'route', 'add', 'default', 'via', ADDR.dirRs[i]!]);
        L.exec(r[i]!, ['ip', 'addr', 'add', `${ADDR.vip}/32`, 'dev', 'lo']);
        L.exec(r[i]!, ['sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2',
          'net.ipv4.conf.all.rp_filter=0', `net.ipv4.conf.${rsDevs[i]}.rp_filter=0`]);
        L.neigh(d, dirDevs[i]!, ADDR.sink[i]!, ADDR.sinkMac[i]!);
        // Static neighbours both ways: no ARP inside a measurement.
        L.neigh(d, dirDevs[i]!, ADDR.rs[i]!, L.mac(r[i]!, rsDevs[i]!));
        L.neigh(r[i]!, rsDevs[i]!, ADDR.dirRs[i]!, L.mac(d, dirDevs[i]!));
        L.veth(c, v.x[i]!, r[i]!, v.y[i]!);
        L.addr(c, v.x[i]!, `${ADDR.replyClient[i]}/24`);
        L.addr(r[i]!, v.y[i]!, `${ADDR.replyRs[i]}/24`);
      }
      // The client takes replies on the reply links although it sends to the director.
      L.exec(c, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0',
        ...[v.c0, ...v.x].map((dev) => `net.ipv4.conf.${dev}.rp_filter=0`)]);
      // wrk with `Connection: close` opens thousands of connections a second: without reuse of
      // TIME_WAIT ports and a wide port range, connect() spends its time searching for a free
      // port after the first few seconds (measured: 7 k/s falling to 0.8 k/s, no retransmits).
      L.exec(c, ['sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65000']);
      L.exec(d, ['ip', 'route', 'add', `${ADDR.fwdDst.replace(/\.\d+$/, '.0')}/24`, 'via', ADDR.sink[0], 'dev', v.d1]);
      this.mac = { c0: L.mac(c, v.c0), d0: L.mac(d, v.d0) };
      L.neigh(c, v.c0, ADDR.dirFront, this.mac.d0);
      L.neigh(d, v.d0, ADDR.client, this.mac.c0);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  exec(ns: string, args: string[], timeoutMs = 10_000): string {
    return this.lab.exec(ns, args, timeoutMs);
  }

  /** Starts a long-running process in ns; it is killed by destroy() at the latest. */
  start(ns: string, argv: string[], logTo?: { text: string }): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    const add = (d: Buffer): void => {
      if (logTo && logTo.text.length < 200_000) logTo.text += d.toString();
    };
    p.stdout.on('data', add);
    p.stderr.on('data', add);
    p.on('error', () => undefined);
    this.procs.push(p);
    return p;
  }

  async stop(p: ChildProcess, graceMs = 5000): Promise<void> {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** How the real servers reach the client: back through the director, or over the reply links. */
  replyPath(via: 'director' | 'direct'): void {
    for (let i = 0; i < 2; i++) {
      const route = via === 'direct'
        ? ['via', ADDR.replyClient[i]!, 'dev', this.dev.y[i]!]
        : ['via', ADDR.dirRs[i]!, 'dev', i === 0 ? this.dev.r1 : this.dev.r2];
      this.exec(this.ns.r[i]!, ['ip', 'route', 'replace', `${ADDR.client}/32`, ...route]);
    }
  }

  rxPackets(ns: string, dev: string): number {
    return this.lab.rxPackets(ns, dev);
  }

  /** Packets received by both real servers' veths (the packet-rate sink). */
  sinkPackets(): number {
    return this.rxPackets(this.ns.r[0], this.dev.r1) + this.rxPackets(this.ns.r[1], this.dev.r2);
  }

  setRps(ns: string, dev: string, cpuMask: string): void {
    this.exec(ns, ['sh', '-c', `echo ${cpuMask} > /sys/class/net/${dev}/queues/rx-0/rps_cpus`]);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL');
    // Whatever else runs in the lab's namespaces (daemons that forked, e.g. nginx workers).
    for (const ns of this.lab.namespaces) {
      let pids: string[] = [];
      try {
        pids = sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean);
      } catch {
        /* namespace already gone */
      }
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* exited meanwhile */
        }
      }
    }
    this.lab.destroy();
  }
}

/** CPU seconds (user + system) of each thread of a process, by thread name, from /proc. */
export function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  const hz = 100; // USER_HZ is 100 on every Linux ABI Node supports
  let tids: string[];
  try {
    tids = sh('ls', [`/proc/${pid}/task`]).split(/\s+/).filter(Boolean);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' ');
      const secs = (Number(f[11]) + Number(f[12])) / hz; // utime, stime: fields 14 and 15
      out.set(`${name}#${tid}`, secs);
    } catch {
      /* thread exited */
    }
  }
  return out;
}
