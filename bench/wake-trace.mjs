// Where a latency pass's time goes between threads: the scheduler's view of one request/response
// path on the bench lab (bench/e2e/lab.ts), placed like the bench's latency rows (the probe pinned
// to CPU 0 at nice -20, uvsd on CPUs 0-1 at nice -20 with one worker, the real servers unpinned at
// nice 0, rs-server.mjs answering UDP). Needs root, perf, and a build (npm run build). Not part of
// `npm run bench`; run it by hand, on a quiet machine:
//
//   node bench/wake-trace.mjs MODE [--count 2500] [--seconds 1] [--uvsd-cpus 0-1] [--alternate 0]
//     MODE: direct (client -> real server 1 over its reply link), kernel (the director's kernel
//     forwarding, replies back through it), dr, nat, tun (uvsd; tun starts uvs-tun-decap in the
//     real servers). Extra uvsd options: UVS_WAKE_TRACE_UVSD_ARGS.
//
// The probe sends UDP requests to the path only (no alternation with the direct path: the trace
// must show one path), 1 ms after each answer. --alternate 1: the direct path and MODE request by
// request in turn, as the bench's latency rows ask them, and the added p50 is printed (with
// --seconds 0, no trace). --uvsd-cpus: uvsd's CPUs (taskset list). After 1.5 s, `perf sched record -a` runs for
// --seconds; its sched_waking/sched_switch events are then matched per thread of interest:
//   - wake-up latency (sched_waking -> sched_switch onto its CPU), split by where it was placed: the
//     waker's CPU or another, and whether that CPU was idle (running the idle task) at the waking;
//   - the thread's time on the CPU after each wake-up (switch in -> switch out: its run);
//   - for wake-ups onto an idle CPU, how long that CPU had been idle at the waking.
// On a guest without a cpuidle driver an idle vCPU halts (HLT, a VM exit) at once, so "idle" here is
// "halted": native/README.md "Where DR's and TUN's extra time goes" reads these figures.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { BenchLab, ADDR, RS_SERVER, TUN_DECAP, RTT, sleep } = require(join(root, 'dist/bench/e2e/lab.js'));
const { startUvsd, uvsadm, pinned } = require(join(root, 'dist/bench/e2e/pps.js'));
const { spawnIn } = require(join(root, 'dist/test/netns/native-lab.js'));
const { percentile } = require(join(root, 'dist/bench/e2e/latency.js'));

const MODES = ['direct', 'kernel', 'dr', 'nat', 'tun'];

function args() {
  const argv = process.argv.slice(2);
  const mode = argv.shift();
  if (!MODES.includes(mode)) throw new Error(`wake-trace: MODE is one of ${MODES.join(', ')}`);
  const opt = { count: 2500, seconds: 1, 'uvsd-cpus': '0-1', alternate: 0 };
  while (argv.length > 0) {
    const k = argv.shift();
    const raw = argv.shift() ?? '';
    if (k === '--uvsd-cpus') {
      if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(raw)) throw new Error(`wake-trace: --uvsd-cpus takes a CPU list (0-1, 1), got "${raw}"`);
      opt['uvsd-cpus'] = raw;
      continue;
    }
    const v = Number(raw);
    if (!['--count', '--seconds', '--alternate'].includes(k) || !Number.isInteger(v) || v < 0) throw new Error(`wake-trace: bad option ${k} ${raw}`);
    opt[k.slice(2)] = v;
  }
  if (opt.count === 0) throw new Error('wake-trace: --count must be at least 1');
  if (opt.count > 100_000 || opt.seconds > 10) throw new Error('wake-trace: at most --count 100000, --seconds 10');
  return { mode, ...opt };
}

const median = (a) => (a.length ? percentile(a, 50) : NaN);
const us = (v) => (Number.isFinite(v) ? v.toFixed(0) : '-');

/** Parses `perf script -F cpu,time,event,trace` lines of sched_waking and sched_switch. */
function* events(text) {
  const re = /^\s*\[(\d+)\]\s+([\d.]+):\s+sched:(sched_waking|sched_switch):\s+(.*)$/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const cpu = Number(m[1]);
    const t = Number(m[2]) * 1e6;
    if (m[3] === 'sched_waking') {
      yield { kind: 'waking', cpu, t, pid: Number(/ pid=(\d+)/.exec(m[4])[1]), target: Number(/target_cpu=(\d+)/.exec(m[4])[1]) };
    } else {
      yield { kind: 'switch', cpu, t, prev: Number(/prev_pid=(\d+)/.exec(m[4])[1]), next: Number(/next_pid=(\d+)/.exec(m[4])[1]) };
    }
  }
}

/** Per thread of interest: wake-ups by placement class, runs after them, idle time before them. */
function analyse(text, threads) {
  const cur = new Map();
  const idleSince = new Map();
  const pending = new Map();
  const running = new Map();
  const out = new Map([...threads.keys()].map((tid) => [tid, new Map()]));
  const idleBins = new Map([...threads.keys()].map((tid) => [tid, []]));
  for (const e of events(text)) {
    if (e.kind === 'waking') {
      if (!threads.has(e.pid)) continue;
      const idle = (cur.get(e.target) ?? -1) === 0;
      const cls = `${e.target === e.cpu ? "waker's CPU" : 'other CPU'}, ${idle ? 'idle' : 'busy'}`;
      pending.set(e.pid, { t: e.t, cls, idleFor: idle && idleSince.has(e.target) ? e.t - idleSince.get(e.target) : null, waker: cur.get(e.cpu) });
      continue;
    }
    const r = running.get(e.prev);
    if (r) {
      r.cls.runs.push(e.t - r.t);
      running.delete(e.prev);
    }
    const p = pending.get(e.next);
    if (p) {
      pending.delete(e.next);
      const byCls = out.get(e.next);
      if (!byCls.has(p.cls)) byCls.set(p.cls, { waits: [], runs: [], wakers: new Map() });
      const c = byCls.get(p.cls);
      c.waits.push(e.t - p.t);
      c.wakers.set(p.waker, (c.wakers.get(p.waker) ?? 0) + 1);
      running.set(e.next, { t: e.t, cls: c });
      if (p.idleFor !== null) idleBins.get(e.next).push([p.idleFor, e.t - p.t]);
    }
    cur.set(e.cpu, e.next);
    if (e.next === 0) idleSince.set(e.cpu, e.t);
  }
  const name = (tid) => (tid === 0 ? 'idle' : threads.get(tid) ?? `tid ${tid}`);
  for (const [tid, byCls] of out) {
    const n = [...byCls.values()].reduce((s, c) => s + c.waits.length, 0);
    if (n < 20) continue; // a thread that hardly woke is not on the path
    console.log(`${threads.get(tid)} (tid ${tid}): ${n} wake-ups`);
    for (const [cls, c] of [...byCls].sort((a, b) => b[1].waits.length - a[1].waits.length)) {
      const wakers = [...c.wakers].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([w, k]) => `${name(w)} ${k}`).join(', ');
      console.log(`  onto ${cls.padEnd(19)} n ${String(c.waits.length).padStart(5)}  wake-up p50 ${us(median(c.waits)).padStart(4)} µs  run after it p50 ${us(median(c.runs)).padStart(4)} µs  (woken by ${wakers})`);
    }
    const bins = [[0, 5], [5, 10], [10, 20], [20, 40], [40, 80], [80, 1e9]];
    const rows = bins.map(([a, b]) => idleBins.get(tid).filter(([i]) => i >= a && i < b).map(([, w]) => w))
      .map((l, i) => (l.length >= 5 ? `${bins[i][0]}-${bins[i][1] > 1e8 ? '' : bins[i][1]} µs: ${us(median(l))} (n ${l.length})` : null)).filter(Boolean);
    if (rows.length) console.log(`  onto an idle CPU, wake-up p50 by how long it had been idle: ${rows.join('; ')}`);
  }
}

function tids(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

async function main() {
  const o = args();
  const lab = new BenchLab();
  let uvsd = null;
  const decaps = [];
  try {
    lab.replyPath(o.mode === 'nat' || o.mode === 'kernel' ? 'director' : 'direct');
    const rs = [0, 1].map((i) => lab.start(lab.ns.r[i], [process.execPath, RS_SERVER, `rs${i + 1}`, '--port', '80', '--udp-port', '53']));
    if (o.mode === 'tun') {
      const dev = lab.lab.dev('t');
      for (let i = 0; i < 2; i++) {
        const ns = lab.ns.r[i];
        lab.exec(ns, ['sysctl', '-qw', 'net.ipv4.conf.default.rp_filter=0']);
        decaps.push(lab.start(ns, [process.execPath, TUN_DECAP, '--dev', dev, '--local', ADDR.rs[i], '--mtu', '1500', '-l']));
        for (let k = 0; ; k++) {
          try {
            lab.exec(ns, ['ip', 'link', 'show', dev]);
            break;
          } catch {
            if (k > 100) throw new Error(`uvs-tun-decap in ${ns} did not create ${dev}`);
            await sleep(100);
          }
        }
        lab.exec(ns, ['sysctl', '-qw', `net.ipv4.conf.${dev}.rp_filter=0`]);
      }
    }
    await sleep(500);
    let target = { host: ADDR.replyRs[0], port: 53 };
    if (o.mode === 'kernel') target = { host: ADDR.rs[0], port: 53 };
    if (['dr', 'nat', 'tun'].includes(o.mode)) {
      const extra = (process.env['UVS_WAKE_TRACE_UVSD_ARGS'] ?? '').split(/\s+/).filter(Boolean);
      uvsd = await startUvsd(lab, ['--io', 'ring', '--workers', '1', ...extra], o['uvsd-cpus']);
      const flag = { dr: '-g', nat: '-m', tun: '-i' }[o.mode];
      uvsadm(lab, ['-A', '-u', `${ADDR.vip}:53`, '-s', 'rr']);
      for (const r of ADDR.rs) uvsadm(lab, ['-a', '-u', `${ADDR.vip}:53`, '-r', `${r}:53`, flag]);
      target = { host: ADDR.vip, port: 53 };
    }
    await sleep(500);
    const direct = { host: ADDR.replyRs[0], port: 53 };
    const targets = o.alternate && o.mode !== 'direct' ? [direct, target] : [target];
    const job = { proto: 'udp', targets, count: o.count, intervalMs: 1, timeoutMs: 500 };
    const probe = spawnIn(lab.ns.c, pinned('0', [process.execPath, RTT, JSON.stringify(job)]), 600_000);
    if (o.seconds === 0) {
      const res = await probe.result;
      res.forEach((r, i) => console.log(`${i === res.length - 1 ? o.mode : 'direct'}: ${r.samplesUs.length} round trips, p50 ${percentile(r.samplesUs, 50).toFixed(1)} µs, p90 ${percentile(r.samplesUs, 90).toFixed(1)} µs, lost ${r.lost}`));
      if (res.length === 2) console.log(`added p50 (round trip): ${(percentile(res[1].samplesUs, 50) - percentile(res[0].samplesUs, 50)).toFixed(1)} µs`);
      return;
    }
    await sleep(1500);
    const data = `/tmp/uvs-wake-trace-${process.pid}.data`;
    // Threads of interest, named by role (all are "node" to the kernel).
    const threads = new Map();
    for (const pid of execFileSync('ip', ['netns', 'pids', lab.ns.c]).toString().split(/\s+/).filter(Boolean)) threads.set(Number(pid), 'client (rtt.js)');
    rs.forEach((p, i) => threads.set(p.pid, `real server ${i + 1} (rs-server.mjs)`));
    decaps.forEach((p, i) => threads.set(p.pid, `uvs-tun-decap ${i + 1}`));
    if (uvsd) for (const tid of tids(uvsd.pid)) if (tid !== uvsd.pid) threads.set(tid, `uvsd thread ${tid}`);
    execFileSync('perf', ['sched', 'record', '-a', '-o', data, '--', 'sleep', String(o.seconds)], { stdio: 'ignore' });
    const r = (await probe.result).at(-1);
    console.log(`${o.mode}: ${r.samplesUs.length} round trips, p50 ${percentile(r.samplesUs, 50).toFixed(1)} µs, p90 ${percentile(r.samplesUs, 90).toFixed(1)} µs, lost ${r.lost} (traced for ${o.seconds} s of them)`);
    const text = execFileSync('perf', ['script', '-i', data, '-F', 'cpu,time,event,trace'], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    execFileSync('rm', ['-f', data]);
    analyse(text, threads);
  } finally {
    if (uvsd) await uvsd.stop();
    lab.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
