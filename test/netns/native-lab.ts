// Lab pieces shared by the native addon's namespace tests and its bench: namespaces and veths named
// uvs<tag><suffix>, children running native-child.js inside a namespace, and a frame builder.
// Everything a Lab makes is removed by destroy(), which tests call from `after` hooks.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildJob } from './native-child';

export const CHILD_PATH = join(__dirname, 'native-child.js');

export function sh(cmd: string, args: string[], timeoutMs = 10_000): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** 5 characters: enough to keep parallel runs apart, short enough for 15-character device names. */
export function runSuffix(): string {
  return randomBytes(4).toString('hex').slice(0, 5);
}

export class Lab {
  readonly namespaces: string[] = [];

  constructor(readonly suffix: string) {}

  /** A namespace uvs<tag><suffix> with IPv6 off (no router solicitations or MLD in captures). */
  ns(tag: string): string {
    const name = `uvs${tag}${this.suffix}`;
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.exec(name, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    this.exec(name, ['sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
    this.exec(name, ['ip', 'link', 'set', 'lo', 'up']);
    return name;
  }

  dev(tag: string): string {
    const name = `uvs${tag}${this.suffix}`;
    if (name.length > 15) throw new Error(`device name ${name} is longer than 15 characters`);
    return name;
  }

  veth(nsA: string, devA: string, nsB: string, devB: string): void {
    sh('ip', ['link', 'add', devA, 'netns', nsA, 'type', 'veth', 'peer', 'name', devB, 'netns', nsB]);
    this.exec(nsA, ['ip', 'link', 'set', devA, 'up']);
    this.exec(nsB, ['ip', 'link', 'set', devB, 'up']);
  }

  exec(ns: string, args: string[], timeoutMs = 10_000): string {
    return sh('ip', ['netns', 'exec', ns, ...args], timeoutMs);
  }

  addr(ns: string, dev: string, cidr: string): void {
    this.exec(ns, ['ip', 'addr', 'add', cidr, 'dev', dev]);
  }

  mac(ns: string, dev: string): string {
    const info = JSON.parse(this.exec(ns, ['ip', '-j', 'link', 'show', 'dev', dev])) as Array<{ address: string }>;
    return info[0]!.address;
  }

  ifindex(ns: string, dev: string): number {
    const info = JSON.parse(this.exec(ns, ['ip', '-j', 'link', 'show', 'dev', dev])) as Array<{ ifindex: number }>;
    return info[0]!.ifindex;
  }

  /** Static neighbour entry, so the kernels send no ARP of their own during a capture. */
  neigh(ns: string, dev: string, ip: string, mac: string): void {
    this.exec(ns, ['ip', 'neigh', 'replace', ip, 'lladdr', mac, 'dev', dev, 'nud', 'permanent']);
  }

  rxPackets(ns: string, dev: string): number {
    return Number(this.exec(ns, ['cat', `/sys/class/net/${dev}/statistics/rx_packets`]).trim());
  }

  destroy(): void {
    const errors: string[] = [];
    for (const ns of this.namespaces.splice(0)) {
      try {
        sh('ip', ['netns', 'del', ns]); // takes its veths with it
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length) throw new Error(`Lab.destroy: ${errors.join('; ')}`);
  }
}

export interface Child<T> {
  /** Resolves when the child printed READY (its sockets are open). */
  ready: Promise<void>;
  /** The child's JSON result. */
  result: Promise<T>;
  kill(): void;
}

/** Runs a process in a namespace; READY on stdout marks readiness, the last line is the result. */
export function spawnIn<T>(ns: string, argv: string[], timeoutMs: number): Child<T> {
  const proc = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    readyResolve = resolve;
    readyReject = reject;
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    if (/^READY$/m.test(stdout)) readyResolve();
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const result = new Promise<T>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = stdout.trim().split('\n').filter((l) => l !== 'READY' && l !== '');
      if (code !== 0) {
        const err = new Error(`${argv.join(' ').slice(0, 120)} in ${ns} exited with ${code ?? signal}: ${stderr.trim().slice(-2000)}`);
        readyReject(err);
        reject(err);
        return;
      }
      readyResolve();
      try {
        resolve(JSON.parse(lines[lines.length - 1] ?? 'null') as T);
      } catch {
        reject(new Error(`child in ${ns} printed no JSON result: ${stdout.slice(-500)}`));
      }
    });
  });
  // Callers may await only one of the two; the other's rejection must not crash the run.
  ready.catch(() => undefined);
  result.catch(() => undefined);
  return { ready, result, kill: () => proc.kill('SIGKILL') };
}

let jobFiles = 0;
const jobPaths: string[] = [];

/** Runs native-child.js in ns; the job goes through a file (frames can exceed the argument limit). */
export function spawnChild<T>(ns: string, job: ChildJob, timeoutMs: number): Child<T> {
  return spawnIn<T>(ns, [process.execPath, CHILD_PATH, jobArg(job)], timeoutMs);
}

/** `@file` holding the job's JSON, removed when this process exits. */
export function jobArg(job: ChildJob): string {
  const path = join(tmpdir(), `uvs-native-job-${process.pid}-${jobFiles++}.json`);
  writeFileSync(path, JSON.stringify(job));
  if (jobPaths.length === 0) process.once('exit', () => jobPaths.forEach((p) => rmSync(p, { force: true })));
  jobPaths.push(path);
  return `@${path}`;
}

// ---- frames

export function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => Number.parseInt(h, 16));
}

export function ipBytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

export function ethFrame(dstMac: string, srcMac: string, etherType: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(macBytes(dstMac), 0);
  f.set(macBytes(srcMac), 6);
  f[12] = etherType >> 8;
  f[13] = etherType & 255;
  f.set(payload, 14);
  return f;
}

export function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface UdpFrameSpec {
  dstMac: string;
  srcMac: string;
  srcIp: string;
  dstIp: string;
  sport: number;
  dport: number;
  payload: Uint8Array;
  id?: number;
  ttl?: number;
}

/** Ethernet + IPv4 (checksummed) + UDP (checksum 0, allowed for IPv4 by RFC 768). */
export function udpFrame(s: UdpFrameSpec): Uint8Array {
  const ip = new Uint8Array(20 + 8 + s.payload.length);
  ip[0] = 0x45;
  const total = ip.length;
  ip[2] = total >> 8;
  ip[3] = total & 255;
  ip[4] = ((s.id ?? 0) >> 8) & 255;
  ip[5] = (s.id ?? 0) & 255;
  ip[8] = s.ttl ?? 64;
  ip[9] = 17;
  ip.set(ipBytes(s.srcIp), 12);
  ip.set(ipBytes(s.dstIp), 16);
  const c = checksum(ip.subarray(0, 20));
  ip[10] = c >> 8;
  ip[11] = c & 255;
  ip[20] = s.sport >> 8;
  ip[21] = s.sport & 255;
  ip[22] = s.dport >> 8;
  ip[23] = s.dport & 255;
  const ulen = 8 + s.payload.length;
  ip[24] = ulen >> 8;
  ip[25] = ulen & 255;
  ip.set(s.payload, 28);
  return ethFrame(s.dstMac, s.srcMac, 0x0800, ip);
}

/** Splits the IPv4 packet of an Ethernet frame into fragments of at most `mtu` bytes (RFC 791). */
export function fragmentFrame(frame: Uint8Array, mtu: number): Uint8Array[] {
  const eth = frame.subarray(0, 14);
  const ip = frame.subarray(14);
  const ihl = (ip[0]! & 0x0f) * 4;
  const data = ip.subarray(ihl);
  const step = Math.floor((mtu - ihl) / 8) * 8;
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += step) {
    const chunk = data.subarray(at, Math.min(data.length, at + step));
    const f = new Uint8Array(14 + ihl + chunk.length);
    f.set(eth, 0);
    f.set(ip.subarray(0, ihl), 14);
    const total = ihl + chunk.length;
    f[16] = total >> 8;
    f[17] = total & 255;
    const more = at + step < data.length ? 0x2000 : 0;
    const fo = more | (at / 8);
    f[20] = fo >> 8;
    f[21] = fo & 255;
    f[24] = 0;
    f[25] = 0;
    const c = checksum(f.subarray(14, 14 + ihl));
    f[24] = c >> 8;
    f[25] = c & 255;
    f.set(chunk, 14 + ihl);
    out.push(f);
  }
  return out;
}

/** An ARP request (RFC 826) for targetIp, broadcast. */
export function arpRequest(srcMac: string, srcIp: string, targetIp: string): Uint8Array {
  const a = new Uint8Array(28);
  a.set([0, 1, 8, 0, 6, 4, 0, 1], 0);
  a.set(macBytes(srcMac), 8);
  a.set(ipBytes(srcIp), 14);
  a.set(ipBytes(targetIp), 24);
  return ethFrame('ff:ff:ff:ff:ff:ff', srcMac, 0x0806, a);
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
