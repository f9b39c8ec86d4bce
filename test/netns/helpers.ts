// Helpers for tests that run in network namespaces: root check, per-run lab suffixes, commands in
// a namespace, bounded waits. Every lab a test makes is torn down in `after`, even on failure.
import { execFileSync, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const repoRoot = join(__dirname, '..', '..', '..');
export const labScript = join(repoRoot, 'netns-scripts', 'lab.sh');

/** Why namespace tests cannot run here, or null when they can. */
export function cannotRunNetns(): string | null {
  if (process.getuid && process.getuid() !== 0) return 'network-namespace tests need root (CI runs them as root)';
  const r = spawnSync('ip', ['netns', 'list']);
  if (r.status !== 0) return `"ip netns list" failed: ${r.stderr?.toString().trim()}`;
  return null;
}

/** A lab suffix unique to this run: 1-6 lowercase letters/digits. */
export function labSuffix(tag: string): string {
  return (tag + (process.pid % 10000).toString(36) + Math.floor(Math.random() * 36).toString(36)).slice(0, 6);
}

export function lab(suffix: string, ...args: string[]): string {
  return labWith(suffix, {}, ...args);
}

/** lab() with more environment for lab.sh (UVS_LAB_DIR_QUEUES, ...). */
export function labWith(suffix: string, env: Record<string, string>, ...args: string[]): string {
  return execFileSync('bash', [labScript, ...args], {
    env: { ...process.env, ...env, UVS_LAB: suffix },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

/** Runs a command inside a namespace; returns status and output (never throws on exit status). */
export function inNs(ns: string, cmd: string, args: string[], timeoutMs = 30_000): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export interface IpipPacket {
  /** The outer destination (the real server); the kernel picks the outer source by its route. */
  outerDst: string;
  /** The inner packet: a UDP datagram innerSrc:40000 -> innerDst:dport carrying `payload`. */
  innerSrc: string;
  innerDst: string;
  dport: number;
  payload: string;
  /** IP_PMTUDISC_DONT: a packet longer than the path's MTU leaves in outer fragments. */
  fragmentable?: boolean;
}

/**
 * Sends one IPIP packet from `ns` through a raw socket for protocol 4: the kernel writes the outer
 * header, the test writes the inner IPv4 header (with its checksum) and UDP header (checksum 0).
 */
export function sendIpip(ns: string, p: IpipPacket): void {
  const py = [
    'import socket, struct',
    'def csum(b):',
    '    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))',
    '    s = (s >> 16) + (s & 0xffff); s += s >> 16',
    '    return ~s & 0xffff',
    `data = ${JSON.stringify(p.payload)}.encode()`,
    `body = struct.pack("!HHHH", 40000, ${p.dport}, 8 + len(data), 0) + data`,
    `hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0, 64, 17, 0, socket.inet_aton(${JSON.stringify(p.innerSrc)}), socket.inet_aton(${JSON.stringify(p.innerDst)}))`,
    'hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]',
    's = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)',
    ...(p.fragmentable ? ['s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT'] : []),
    `s.sendto(hdr + body, (${JSON.stringify(p.outerDst)}, 0))`,
  ].join('\n');
  const r = inNs(ns, 'python3', ['-c', py], 10_000);
  if (r.status !== 0) throw new Error(`sendIpip in ${ns}: ${r.stderr}`);
}

export function namespacesWithPrefix(prefix: string): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
}

/** One HTTP request from namespace `client` with real curl. */
export function curlFrom(client: string, url: string, timeoutSec = 3): { status: number; body: string } {
  const r = inNs(client, 'curl', ['-s', '-m', String(timeoutSec), url], (timeoutSec + 2) * 1000);
  return { status: r.status, body: r.stdout };
}

/** `n` new connections to `url` from `client`: how many each real server answered (by its name).
 *  Every request must succeed; `context()` is added to the failure message (a daemon's log). */
export function splitFrom(client: string, url: string, n: number, context: () => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const { status, body } = curlFrom(client, url);
    if (status !== 0) throw new Error(`request ${i} to ${url} failed (curl exit ${status})\n${context()}`);
    counts[body.trim()] = (counts[body.trim()] ?? 0) + 1;
  }
  return counts;
}

/** A kernel SNMP counter of namespace `ns` (nstat), e.g. TcpOutRsts, IpForwDatagrams. */
export function nstatIn(ns: string, name: string): number {
  const r = inNs(ns, 'nstat', ['-a', '-z', '-j', name]);
  return (JSON.parse(r.stdout) as { kernel: Record<string, number> }).kernel[name]!;
}

/** A child process's stdout line by line: nextLine() waits up to timeoutMs for the next line and
 *  fails with the child's stderr so far; stderr() is all of it, for assertion messages. */
export function childLines(proc: ChildProcessWithoutNullStreams, timeoutMs = 20_000): { nextLine: () => Promise<string>; stderr: () => string } {
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: proc.stdout });
  const nextLine = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the child; stderr:\n${stderr}`)), timeoutMs);
      lines.once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
  return { nextLine, stderr: () => stderr };
}

/** Worker `id`'s row of `uvsadm --dataplane` output `text`, by column name. */
export function dataplaneWorkerRow(text: string, id = 0): Map<string, number> {
  const lines = text.split('\n');
  const names = lines[0]!.trim().split(/\s{2,}/);
  const cells = lines[1 + id]!.trim().split(/\s+/);
  return new Map(names.map((n, i) => [n, Number(cells[i])]));
}

/** The "Fast path:" line of `uvsadm --dataplane` output `text`, as numbers. */
export interface FastPathLine { offloaded: number; inKernel: number; takenBack: number; kept: number; packets: number }

export function fastPathLine(text: string): FastPathLine {
  const m = /^Fast path: (\d+) flows offloaded, (\d+) in the kernel now \(at most \d+\), (\d+) taken back, \d+ refused \(full\), (\d+) expiries put off; (\d+) packets forwarded in the kernel$/m.exec(text);
  if (m === null) throw new Error(`no "Fast path:" line in:\n${text}`);
  return { offloaded: Number(m[1]), inKernel: Number(m[2]), takenBack: Number(m[3]), kept: Number(m[4]), packets: Number(m[5]) };
}

export interface SchedLine {
  services: number;
  scheduled: number;
  entered: number;
  takenBack: number;
  refused: number;
  lost: number;
}

/** `uvsadm --dataplane`'s "Kernel scheduling:" line (uvsd --fast-path-sched on). */
export function schedLine(text: string): SchedLine {
  const m = /^Kernel scheduling: (\d+) services, (\d+) connections scheduled in the kernel, (\d+) entered in the table, (\d+) taken back, (\d+) refused \(key exists or map full\), (\d+) lost \(events ring full\)$/m.exec(text);
  if (m === null) throw new Error(`no "Kernel scheduling:" line in:\n${text}`);
  return { services: Number(m[1]), scheduled: Number(m[2]), entered: Number(m[3]), takenBack: Number(m[4]), refused: Number(m[5]), lost: Number(m[6]) };
}

/**
 * From one socket in namespace `ns` (source port `sport`), `count` datagrams to `host`:`port`, one
 * after the other `gapMs` apart, each waiting for its answer (a real server's name); returns the
 * answers ('timeout' for none within 1 s). With `checkSource`, an answer from another source than
 * `host`:`port` (which the unconnected socket takes too) reads 'NAME from ADDR:PORT'. `bytes` > 0:
 * datagrams of that many bytes instead of "who" (the real servers answer any).
 */
export function udpExchange(ns: string, host: string, port: number, sport: number, count: number, gapMs = 0, checkSource = false, bytes = 0): string[] {
  const script = `
    const s = require('dgram').createSocket('udp4');
    const out = [];
    let t = null;
    const next = () => {
      if (out.length === ${count}) { console.log(JSON.stringify(out)); s.close(); return; }
      t = setTimeout(() => { out.push('timeout'); setTimeout(next, ${gapMs}); }, 1000);
      s.send(${bytes} > 0 ? Buffer.alloc(${bytes}, 'w') : 'who', ${port}, ${JSON.stringify(host)});
    };
    s.on('message', (m, r) => {
      clearTimeout(t);
      const from = !${checkSource} || (r.address === ${JSON.stringify(host)} && r.port === ${port}) ? '' : ' from ' + r.address + ':' + r.port;
      out.push(m.toString().trim() + from);
      setTimeout(next, ${gapMs});
    });
    s.bind(${sport}, next);`;
  const r = inNs(ns, process.execPath, ['-e', script], 20_000 + count * (gapMs + 1100));
  if (r.status !== 0) throw new Error(`udpExchange in ${ns}: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

/** Checksum offload off on every uvs device of namespace `ns` (ethtool -K DEV tx off): its
 *  senders then put whole checksums in their packets. */
export function txChecksumOff(ns: string): void {
  const links = inNs(ns, 'ip', ['-o', 'link', 'show']).stdout;
  for (const m of links.matchAll(/^\d+: (uvs[^:@]+)/gm)) {
    const r = inNs(ns, 'ethtool', ['-K', m[1]!, 'tx', 'off']);
    if (r.status !== 0) throw new Error(`ethtool -K ${m[1]} tx off in ${ns}: ${r.stderr}`);
  }
}

/** `count` GETs of http://HOST/ from namespace `ns` over one keep-alive connection: their status codes. */
export function keepAlive(ns: string, host: string, count: number): string[] {
  // -o applies to one URL: one per URL.
  const urls = Array.from({ length: count }, () => ['-o', '/dev/null', `http://${host}/`]).flat();
  const r = inNs(ns, 'curl', ['-s', '-m', '20', '-w', '%{http_code}\\n', ...urls], 25_000);
  return r.stdout.trim().split('\n');
}
