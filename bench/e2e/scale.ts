// Changes at scale (issue 12, deliverable 7): how long `uvsadm -R` of N virtual services × 10 real
// servers (ipvsadm -R syntax, DR) takes until every line is live in the data plane, and what one
// further `uvsadm -a` costs on top of that table — while a UDP probe keeps sending to a live
// service, so the row also says whether traffic kept flowing during the restore.
//
// The lab is bench/e2e/lab.ts's DR lab. The probed service is the lab's VIP:53 (UDP) with the two
// real servers that exist (rs-server.mjs answers "rsN"); the N generated services use VIPs
// 10.220.x.y:80 and real servers 10.201.{1,2}.{10..14}: permanent neighbour entries on the director
// point those at the real servers' MACs, so no ARP is needed and nothing depends on timing.
//
// Run alone: `npm run build && node dist/bench/run.js scale [--quick]` (root), or with a profile:
// UVS_BENCH_UVSD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { ADDR, BenchLab, RS_SERVER, sleep, UVSADM, UVSD } from './lab';
import type { BenchRow } from '../lib';
import type { Progress, Step } from './progress';

export const SCALE_GROUP = 'changes at scale';

export interface ScaleOptions {
  /** Virtual services in the restore file. */
  services: number;
  /** Real servers per service (at most 10 distinct addresses here). */
  dests: number;
  /** uvsd --io (ring: the real data plane; none: the control plane alone, for comparison). */
  io: 'ring' | 'none';
}

const PROBE_PORT = 53;

export function scalePlan(o: ScaleOptions): Step[] {
  return [{ label: `scale: restore ${o.services} × ${o.dests} (--io ${o.io})`, seconds: 10 + o.services / 1000 }];
}

/** The ipvsadm -R text: `-A` per service, then its real servers. */
export function restoreText(services: number, dests: number): string {
  if (dests > 10) throw new RangeError(`scale bench: at most 10 real servers per service here, got ${dests}`);
  const lines: string[] = [];
  for (let i = 0; i < services; i++) {
    const vip = `10.220.${(i >> 8) & 255}.${i & 255}`;
    const vipHigh = i >> 16;
    const v = vipHigh === 0 ? vip : `10.${221 + vipHigh}.${(i >> 8) & 255}.${i & 255}`;
    lines.push(`-A -t ${v}:80 -s rr`);
    for (let d = 0; d < dests; d++) lines.push(`-a -t ${v}:80 -r ${rsAddr(d)}:80 -g -w 1`);
  }
  return lines.join('\n') + '\n';
}

function rsAddr(d: number): string {
  return `10.201.${(d % 2) + 1}.${10 + (d >> 1)}`;
}

interface Run {
  status: number;
  ms: number;
  stdout: string;
  stderr: string;
}

function runIn(ns: string, argv: string[], input: string, env: Record<string, string>, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn('ip', ['netns', 'exec', ns, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, ms: performance.now() - t0, stdout, stderr });
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(input);
  });
}

/** A UDP probe from the client: one datagram to VIP:53 every 10 ms until stopped; counts answers. */
const PROBE_SCRIPT = `
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
let sent = 0, got = 0;
s.on('message', () => got++);
const t = setInterval(() => { sent++; s.send('x', ${PROBE_PORT}, process.argv[1]); }, 10);
process.on('SIGTERM', () => { clearInterval(t); setTimeout(() => { console.log(JSON.stringify({ sent, got })); process.exit(0); }, 1000); });
setTimeout(() => process.kill(process.pid, 'SIGTERM'), 120000);
`;

export async function runScale(lab: BenchLab, o: ScaleOptions, progress?: Progress): Promise<BenchRow[]> {
  progress?.begin(`scale: restore ${o.services} × ${o.dests} (--io ${o.io})`);
  const { d } = lab.ns;
  // Stand-in real servers: permanent neighbours to the two real servers' MACs.
  for (let k = 0; k < Math.min(o.dests, 10); k++) {
    const side = k % 2;
    lab.lab.neigh(d, side === 0 ? lab.dev.d1 : lab.dev.d2, rsAddr(k), lab.lab.mac(lab.ns.r[side]!, side === 0 ? lab.dev.r1 : lab.dev.r2));
  }
  lab.replyPath('direct');
  for (let i = 0; i < 2; i++) lab.start(lab.ns.r[i]!, [process.execPath, RS_SERVER, `rs${i + 1}`, '--port', '8080', '--udp-port', String(PROBE_PORT)]);

  const socket = `/tmp/uvs-bench-scale-${lab.lab.suffix}.sock`;
  const env = { UVS_SOCKET: socket };
  const log = { text: '' };
  const nodeArgs = (process.env['UVS_BENCH_UVSD_NODE_ARGS'] ?? '').split(/\s+/).filter(Boolean);
  // Caps raised to fit the restore (uvsd's defaults are sized for smaller tables).
  const caps = ['--svc-max', String(Math.max(o.services + 16, 1024)), '--dest-max', String(Math.max(o.services * o.dests + 64, 4096))];
  // --conn-state none: no state file left in /tmp, no guard handed over (pps.ts uvsdArgs).
  const uvsd = lab.start(d, [process.execPath, ...nodeArgs, UVSD, '-n', '-l', '--socket', socket, '--conn-state', 'none', '--io', o.io, '--workers', '1', ...caps], log);
  const uvsadm = (args: string[], input = '', timeoutMs = 120_000): Promise<Run> =>
    runIn(d, [process.execPath, UVSADM, ...args], input, env, timeoutMs);
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (uvsd.exitCode !== null) throw new Error(`uvsd exited (${uvsd.exitCode}):\n${log.text.slice(-3000)}`);
      if (/uvsd \d+: control socket/.test(log.text) && (await uvsadm(['-L', '-n'])).status === 0) break;
      if (Date.now() > deadline) throw new Error(`uvsd did not come up within 20 s:\n${log.text.slice(-3000)}`);
      await sleep(100);
    }
    // The probed service first, so traffic flows before the restore starts.
    for (const line of [['-A', '-u', `${ADDR.vip}:${PROBE_PORT}`, '-s', 'rr'], ...ADDR.rs.map((rs) => ['-a', '-u', `${ADDR.vip}:${PROBE_PORT}`, '-r', rs, '-g'])]) {
      const r = await uvsadm(line);
      if (r.status !== 0) throw new Error(`uvsadm ${line.join(' ')}: ${r.stderr}`);
    }
    const probe = spawn('ip', ['netns', 'exec', lab.ns.c, process.execPath, '-e', PROBE_SCRIPT, ADDR.vip], { stdio: ['ignore', 'pipe', 'pipe'] });
    let probeOut = '';
    probe.stdout.on('data', (b: Buffer) => (probeOut += b.toString()));
    await sleep(500);

    const cpu0 = processCpu(uvsd.pid!);
    const restore = await uvsadm(['-R'], restoreText(o.services, o.dests), 600_000);
    const restoreCpu = processCpu(uvsd.pid!) - cpu0;
    if (restore.status !== 0) throw new Error(`uvsadm -R failed (${restore.status}): ${restore.stderr.slice(0, 500)}\n${log.text.slice(-2000)}`);
    if (process.env['UVS_BENCH_SCALE_LOG']) writeFileSync(process.env['UVS_BENCH_SCALE_LOG'], log.text);
    const list = await uvsadm(['-L', '-n']);
    const listed = list.stdout.split('\n').filter((l) => /^(TCP|UDP)\s/.test(l)).length;
    if (listed !== o.services + 1) throw new Error(`after -R, ${listed} services are listed, expected ${o.services + 1} (uvsadm -L: ${list.status} ${list.stderr.slice(0, 300)}; -R took ${restore.ms.toFixed(0)} ms)`);
    const cpu1 = processCpu(uvsd.pid!);
    const add = await uvsadm(['-a', '-t', '10.220.0.0:80', '-r', '10.201.1.99:80', '-g']);
    const addCpu = processCpu(uvsd.pid!) - cpu1;
    if (add.status !== 0) throw new Error(`uvsadm -a failed: ${add.stderr}`);
    if (process.env['UVS_BENCH_SCALE_LOG']) writeFileSync(process.env['UVS_BENCH_SCALE_LOG'], log.text);
    probe.kill('SIGTERM');
    await new Promise<void>((resolve) => probe.once('close', () => resolve()));
    const p = JSON.parse(probeOut.trim() || '{"sent":0,"got":0}') as { sent: number; got: number };
    const probeNote = `UDP probe to a live service every 10 ms during it all: ${p.got}/${p.sent} answered`;
    const lines = o.services * (1 + o.dests);
    const full = o.io === 'ring' && o.services >= 10_000;
    return [
      {
        // Wall clock from uvsadm's start to its exit: parsing, the packed batch, uvsd's check and
        // apply, and the data plane running it (uvsadm returns once the workers have it).
        group: SCALE_GROUP, name: `uvsadm -R, ${o.services} services × ${o.dests} real servers (--io ${o.io}), wall clock`, value: restore.ms / 1000, unit: 's',
        target: full ? '<= 3 s' : undefined,
        met: full ? restore.ms <= 3000 : undefined,
        note: `${lines} lines; ${probeNote}`,
      },
      {
        group: SCALE_GROUP, name: `uvsd CPU for that -R (--io ${o.io})`, value: restoreCpu, unit: 's',
        note: 'user + system of the uvsd process (main thread, workers, collector), from /proc/PID/stat; uvsadm\'s own parse is not in it',
      },
      {
        group: SCALE_GROUP, name: `one more uvsadm -a on ${o.services} services (--io ${o.io})`, value: add.ms, unit: 'ms',
        note: `uvsd CPU ${(addCpu * 1000).toFixed(0)} ms (uvsadm's own start-up included in the time)`,
      },
    ];
  } finally {
    await lab.stop(uvsd);
  }
}

/** CPU seconds (user + system) of a process, from /proc/PID/stat. */
function processCpu(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}
