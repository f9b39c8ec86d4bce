// Data-plane wake-up probes on the bench lab (bench/e2e/lab.ts), for comparing builds of uvsd
// (issue 12: per-pass latency, idle cost, worker count, fanout mode). Needs root. Not part of
// `npm run bench`; run it by hand:
//
//   node dist/bench/ring-probe.js latency [--n 2000] [--workers 2] [--uvsd dist/src/cli/uvsd.js,/other/dist/src/cli/uvsd.js]
//        [--gap-ms 1] [--variants '--busy-poll 0;--busy-poll 200'] [--trace 1]
//   node dist/bench/ring-probe.js idle [--seconds 60] [--workers 2] [--uvsd ...]
//   node dist/bench/ring-probe.js pps [--seconds 5] [--workers 1,2] [--fanout hash,cpu] [--uvsd ...]
//   (every mode: --nice N, default -20, for every process of the probe)
//
// latency: a sequential UDP echo (32-byte datagrams, one outstanding) from the client, N round
//   trips after 200 of warm-up: direct to real server 1 over its reply link, through the
//   director's kernel forwarding (to real server 1's own address), and through each uvsd (DR,
//   `-A -u VIP:7007 -s rr`, both real servers `-g`; replies over the reply links). Prints p50, p90,
//   p99 in µs and p50 minus direct: the time one pass through the director adds. --gap-ms: the
//   client waits that long after each answer (default 0: the next request at once; the bench's
//   latency rows use 1). --variants: uvsd options, `;` between variants, each measured per build.
//   --trace 1: uvsd runs with UVS_LATENCY_TRACE (worker.ts) and the per-step medians are printed.
// idle: each uvsd with three virtual services (UDP 7007, TCP 80, TCP 443, two real servers each),
//   no traffic, no checkers, no VRRP: CPU from /proc/PID/stat (utime + stime) over the window, as
//   a share of one core, and voluntary context switches per second per thread (how often each wakes).
// pps: 64-byte UDP frames from 1024 flows (bench/e2e/pktgen.ts on CPU 0, as fast as it can) through
//   uvsd DR; forwarded packets/s at the sinks, for each worker count × fanout mode. uvsd runs
//   unpinned, as a user would start it (uvsd --fanout MODE), with uvsd's CPU time per forwarded
//   packet (/proc/PID/stat) beside the rate: on a shared machine the generator may be the limit.
import { readFileSync } from 'node:fs';
import { spawnIn } from '../test/netns/native-lab';
import { request } from '../src/control/client';
import { ADDR, BenchLab, PKTGEN, UVSADM, UVSD, sleep, threadCpu } from './e2e/lab';
import type { GenResult, PktgenJob } from './e2e/pktgen';

const PORT = 7007;
/**
 * Every process of the probe (echo servers, client, uvsd, generator) runs at this nice, as the
 * bench does (bench/e2e/pps.ts): the machine is shared, and a wake-up behind other users' processes
 * would measure them. --nice 0 to see the default.
 */
let NICE = ['nice', '-n', '-20'];

function args(): { mode: string; opt: Map<string, string> } {
  const argv = process.argv.slice(2);
  const mode = argv.shift() ?? '';
  const opt = new Map<string, string>();
  while (argv.length > 0) {
    const k = argv.shift()!;
    if (!k.startsWith('--') || argv.length === 0) throw new Error(`ring-probe: expected --option value, got ${k}`);
    opt.set(k.slice(2), argv.shift()!);
  }
  if (!['latency', 'idle', 'pps'].includes(mode)) throw new Error('ring-probe: mode is latency, idle or pps');
  return { mode, opt };
}

const ECHO_SERVER = `
const d = require('dgram');
for (const a of process.argv.slice(1)) {
  const s = d.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(${PORT}, a);
}
setTimeout(() => process.exit(0), 600000);
console.log('READY');`;

const ECHO_CLIENT = `
const d = require('dgram');
const [host, n, warm] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const s = d.createSocket('udp4');
const buf = Buffer.alloc(32);
const gap = Number(process.argv[4] || 0);
let i = 0, t0 = 0n, timer = null, lost = 0;
const rtt = [];
function next() {
  if (i === n + warm) {
    rtt.sort((a, b) => a - b);
    const q = (p) => rtt[Math.min(rtt.length - 1, Math.floor(p * rtt.length))];
    console.log(JSON.stringify({ n: rtt.length, lost, p50: q(0.5), p90: q(0.9), p99: q(0.99) }));
    process.exit(0);
  }
  i++;
  t0 = process.hrtime.bigint();
  s.send(buf, ${PORT}, host);
  timer = setTimeout(() => { lost++; next(); }, 500);
}
s.on('message', () => {
  clearTimeout(timer);
  if (i > warm) rtt.push(Number(process.hrtime.bigint() - t0) / 1000);
  if (gap > 0) setTimeout(next, gap); else next();
});
s.bind(() => { console.log('READY'); next(); });`;

interface Echo {
  n: number;
  lost: number;
  p50: number;
  p90: number;
  p99: number;
}

interface Running {
  pid: number;
  sock: string;
  stop(): Promise<void>;
}

async function startUvsd(lab: BenchLab, uvsd: string, workers: number, env: Record<string, string>, extra: string[] = []): Promise<Running> {
  const sock = `/tmp/uvs-probe-${lab.lab.suffix}.sock`;
  const log = { text: '' };
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  // --conn-state none: each variant starts from an empty table, not from the previous one's
  // connections (the default state file is per namespace, and every variant runs in the same one).
  const state = extra.includes('--conn-state') ? [] : ['--conn-state', 'none'];
  const p = lab.start(lab.ns.d, [...NICE, 'env', ...envArgs, process.execPath, uvsd, '-n', '-l', '--socket', sock, '--workers', String(workers), ...state, ...extra], log);
  const deadline = Date.now() + 20_000;
  while (!/data plane: (\d+ worker|libpcap)/.test(log.text)) {
    if (p.exitCode !== null) throw new Error(`uvsd exited: ${log.text.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`uvsd did not start: ${log.text.slice(-2000)}`);
    await sleep(100);
  }
  return { pid: p.pid!, sock, stop: () => lab.stop(p) };
}

function adm(lab: BenchLab, u: Running, a: string[]): void {
  lab.exec(lab.ns.d, ['env', `UVS_SOCKET=${u.sock}`, process.execPath, UVSADM, ...a], 20_000);
}

function addService(lab: BenchLab, u: Running, proto: '-u' | '-t', port: number, dests: readonly string[]): void {
  adm(lab, u, ['-A', proto, `${ADDR.vip}:${port}`, '-s', 'rr']);
  for (const d of dests) adm(lab, u, ['-a', proto, `${ADDR.vip}:${port}`, '-r', d, '-g']);
}

/** `ip netns exec` plus `node` itself is the pid lab.start sees when env is in front; find node's. */
function nodePid(pid: number): number {
  for (let i = 0; i < 50; i++) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (comm === 'node' || comm === 'MainThread') return pid;
    } catch {
      /* not yet */
    }
    try {
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      if (kids.length > 0) pid = Number(kids[0]);
    } catch {
      break;
    }
  }
  return pid;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function switches(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name] of threadCpu(pid)) {
    const tid = name.slice(name.lastIndexOf('#') + 1);
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      out.set(name, Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0));
    } catch {
      /* gone */
    }
  }
  return out;
}

let GAP_MS = 0;

async function echo(lab: BenchLab, host: string, n: number): Promise<Echo> {
  return spawnIn<Echo>(lab.ns.c, [...NICE, process.execPath, '-e', ECHO_CLIENT, host, String(n), '200', String(GAP_MS)], 120_000 + n * GAP_MS * 2).result;
}

async function main(): Promise<void> {
  const { mode, opt } = args();
  const builds = (opt.get('uvsd') ?? UVSD).split(',');
  NICE = ['nice', '-n', opt.get('nice') ?? '-20'];
  const lab = new BenchLab();
  try {
    lab.replyPath('direct');
    if (mode === 'latency' || mode === 'idle') {
      for (let i = 0; i < 2; i++) {
        lab.start(lab.ns.r[i]!, [...NICE, process.execPath, '-e', ECHO_SERVER, ADDR.vip, ADDR.rs[i]!, ADDR.replyRs[i]!]);
      }
      await sleep(500);
    }
    if (mode === 'latency') {
      const n = Number(opt.get('n') ?? 2000);
      const workers = Number(opt.get('workers') ?? 2);
      GAP_MS = Number(opt.get('gap-ms') ?? 0);
      const variants = (opt.get('variants') ?? '').split(';').map((v) => v.trim().split(/\s+/).filter(Boolean));
      // A variant's words of the form NAME=VALUE are environment variables for uvsd, not options.
      const tracing = opt.get('trace') === '1';
      const rows: Array<[string, Echo]> = [];
      rows.push(['direct (client → real server 1 over its reply link)', await echo(lab, ADDR.replyRs[0], n)]);
      rows.push(["director's kernel forwarding (to real server 1's address)", await echo(lab, ADDR.rs[0], n)]);
      for (const b of builds) for (const extra of variants) {
        const tracePath = `/tmp/uvs-probe-trace-${process.pid}-${rows.length}`;
        const env = Object.fromEntries(extra.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
        const u = await startUvsd(lab, b, workers, { ...env, ...(tracing ? { UVS_LATENCY_TRACE: tracePath } : {}) }, extra.filter((w) => !/^[A-Z_]+=/.test(w)));
        try {
          addService(lab, u, '-u', PORT, ADDR.rs);
          await sleep(300);
          rows.push([`uvsd DR ${workers} worker(s) ${extra.join(' ')}: ${b}`, await echo(lab, ADDR.vip, n)]);
          const res = await request(u.sock, { type: 'workers' }, 5000);
          if (res.ok && res.result.kind === 'workers') {
            const t = (k: string): number => res.result.kind === 'workers' ? res.result.workers.reduce((a, w) => a + (w.stats[k] ?? 0), 0) : 0;
            const fr = Math.max(1, t('rx_frames'));
            console.log(`  ${b}: ${t('rx_frames')} frames in ${t('rx_batches')} batches; process ${(t('process_ns') / fr / 1000).toFixed(1)} µs/frame, ` +
              `send ${(t('send_ns') / fr / 1000).toFixed(1)} µs/frame`);
          }
        } finally {
          await u.stop();
        }
        if (tracing) {
          for (let w = 0; w < workers; w++) {
            try {
              console.log(`  trace worker ${w} ${extra.join(' ')}: ${readFileSync(`${tracePath}.w${w}.json`, 'utf8')}`);
            } catch {
              console.log(`  trace worker ${w}: none written`);
            }
          }
        }
      }
      rows.push(['direct again', await echo(lab, ADDR.replyRs[0], n)]);
      const direct = Math.min(rows[0]![1].p50, rows[rows.length - 1]![1].p50);
      console.log(`sequential UDP echo, ${n} round trips each (µs):`);
      for (const [name, e] of rows) {
        console.log(`  p50 ${e.p50.toFixed(1).padStart(7)}  p90 ${e.p90.toFixed(1).padStart(7)}  p99 ${e.p99.toFixed(1).padStart(7)}  ` +
          `+${(e.p50 - direct).toFixed(1).padStart(6)} vs direct  lost ${e.lost}  ${name}`);
      }
    } else if (mode === 'idle') {
      const seconds = Number(opt.get('seconds') ?? 60);
      const workers = Number(opt.get('workers') ?? 2);
      for (const b of builds) {
        const u = await startUvsd(lab, b, workers, {});
        try {
          addService(lab, u, '-u', PORT, ADDR.rs);
          addService(lab, u, '-t', 80, ADDR.rs);
          addService(lab, u, '-t', 443, ADDR.rs);
          await sleep(2000);
          const pid = nodePid(u.pid);
          const t0 = cpuTicks(pid);
          const s0 = switches(pid);
          const c0 = threadCpu(pid);
          await sleep(seconds * 1000);
          const t1 = cpuTicks(pid);
          const s1 = switches(pid);
          const c1 = threadCpu(pid);
          const perThread = [...c1].map(([k, v]) => `${k} ${(((v - (c0.get(k) ?? v)) / seconds) * 100).toFixed(2)}%`).join(', ');
          const wakes = [...s1].map(([k, v]) => [k, (v - (s0.get(k) ?? v)) / seconds] as const).filter(([, r]) => r >= 0.5)
            .sort((a, b2) => b2[1] - a[1]).map(([k, r]) => `${k} ${r.toFixed(1)}/s`);
          console.log(`idle, ${workers} worker(s), 3 services, ${seconds} s: ${((t1 - t0) / seconds).toFixed(2)}% of one core ` +
            `(${t1 - t0} ticks); per thread: ${perThread}; wake-ups: ${wakes.join(', ')}  [${b}]`);
        } finally {
          await u.stop();
        }
      }
    } else {
      const seconds = Number(opt.get('seconds') ?? 5);
      const counts = (opt.get('workers') ?? '1,2').split(',').map(Number);
      const modes = (opt.get('fanout') ?? 'hash').split(',');
      const runs = Number(opt.get('runs') ?? 3);
      for (const b of builds) {
        for (const workers of counts) {
          for (const fanout of modes) {
            const u = await startUvsd(lab, b, workers, {}, ['--fanout', fanout]);
            try {
              addService(lab, u, '-u', 9, ADDR.sink);
              await sleep(300);
              const job: PktgenJob = {
                iface: lab.dev.c0, dstMac: lab.mac.d0, srcMac: lab.mac.c0, srcIp: ADDR.client, dstIp: ADDR.vip, dport: 9,
                sport: 10000, flows: 1024, frameSize: 64, batch: 64, durationMs: seconds * 1000,
              };
              await spawnIn<GenResult>(lab.ns.c, [...NICE, 'taskset', '-c', '0', process.execPath, PKTGEN, JSON.stringify({ ...job, durationMs: 500 })], 30_000).result;
              const rates: number[] = [];
              const cpuNs: number[] = [];
              let offered = 0;
              const pid = nodePid(u.pid);
              for (let r = 0; r < runs; r++) {
                await sleep(200);
                const before = lab.sinkPackets();
                const t0 = cpuTicks(pid);
                const g = await spawnIn<GenResult>(lab.ns.c, [...NICE, 'taskset', '-c', '0', process.execPath, PKTGEN, JSON.stringify(job)], 60_000).result;
                await sleep(100);
                const fwd = lab.sinkPackets() - before;
                rates.push(fwd / g.elapsed);
                cpuNs.push(((cpuTicks(pid) - t0) * 1e7) / Math.max(1, fwd));
                offered = g.pps;
              }
              rates.sort((a, c) => a - c);
              console.log(`pps 64B DR, ${workers} worker(s), fanout ${fanout}: median ${Math.round(rates[rates.length >> 1]!)} ` +
                `(${rates.map((x) => Math.round(x)).join(' ')}), offered ~${Math.round(offered)}, uvsd CPU ${cpuNs.map((x) => Math.round(x)).join(' ')} ns/packet  [${b}]`);
            } finally {
              await u.stop();
            }
          }
        }
      }
    }
  } finally {
    lab.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`ring-probe: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
