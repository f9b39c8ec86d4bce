// Stepped, paced offered load and CPU accounting for the packet-rate cases (bench/e2e/pps.ts).
//
// - SteppedGen drives one pktgen process (bench/e2e/pktgen.ts, stepped mode) step by step over its
//   stdin, so the sink counters are read between steps with nothing in flight.
// - findMaxRate ramps the offered rate up in steps (fractions of a ceiling: the rate the generator
//   reached unpaced), stops after two failing steps in a row, then bisects between the highest step
//   with loss ≤ MAX_LOSS and the step above it. The result is the highest rate really offered in a
//   step that lost at most 0.1% (RFC 2544's throughput asks for zero loss; 0.1% tolerates the odd frame the
//   shared machine drops anywhere).
// - CPU time per forwarded packet: /proc/stat's busy time summed over all cores (user, nice, system,
//   irq, softirq, steal: the kernel's forwarding runs in softirq and counts) over the step, minus the
//   generator's own user time (its pacing spin, identical for every system) and minus the machine's
//   background (busy time per second measured just before the case with nothing sending), divided
//   by the frames that reached the sinks. The generator's system time stays in: it holds the
//   sendmmsg cost (the same for every system at one rate) and, on this kernel (tick-based
//   accounting, no IRQ_TIME_ACCOUNTING), the director's receive work when it runs inline in the
//   sender's softirq, which belongs to the system measured.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { canPin, PKTGEN, sleep, type BenchLab } from './lab';
import type { GenResult, PktgenJob } from './pktgen';

/** Most loss a step may show and still count as forwarded without loss. */
export const MAX_LOSS = 0.001;
/** USER_HZ: /proc/stat counts in 1/100 s on every Linux ABI Node supports. */
const HZ = 100;

export interface CpuTimes {
  /** Seconds of busy time summed over all cores. */
  busy: number;
  /** Of which softirq. */
  softirq: number;
  /** Seconds of all time (busy + idle + iowait) summed over all cores. */
  total: number;
}

/** The aggregate "cpu" line of /proc/stat, in seconds. */
export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) throw new Error('/proc/stat has no aggregate "cpu" line');
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 7 || f.some((x) => !Number.isFinite(x))) throw new Error(`/proc/stat: cannot read "${line}"`);
  const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = f as [number, number, number, number, number, number, number, number?];
  // guest and guest_nice are already inside user and nice.
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / HZ, softirq: softirq / HZ, total: (busy + idle + iowait) / HZ };
}

export function cpuTimes(): CpuTimes {
  return parseProcStat(readFileSync('/proc/stat', 'utf8'));
}

export function cpuDelta(a: CpuTimes, b: CpuTimes): CpuTimes {
  return { busy: b.busy - a.busy, softirq: b.softirq - a.softirq, total: b.total - a.total };
}

/** Busy CPU seconds per second of the whole machine, over `ms` with nothing of ours running. */
export async function background(ms: number): Promise<number> {
  const a = cpuTimes();
  const t0 = Date.now();
  await sleep(ms);
  return cpuDelta(a, cpuTimes()).busy / ((Date.now() - t0) / 1000);
}

/** Background busy time once the machine has settled: what the previous case left running (a
 *  kernel map of a million offloaded flows being freed, a process exiting) took 86% of a core for
 *  a second or more after it (2026-12-07), and a CPU-per-packet row subtracted it. Measures `ms`
 *  at a time until a reading is below `quiet` (fraction of a core) or `maxMs` passed; the last
 *  reading is returned either way (the rows flag a busy one as unreliable). */
export async function settledBackground(ms: number, quiet = 0.25, maxMs = 15_000): Promise<number> {
  const t0 = Date.now();
  let bg = await background(ms);
  while (bg >= quiet && Date.now() - t0 < maxMs) bg = await background(ms);
  return bg;
}

/** utime + stime of the whole process (all threads, the exited ones included), in seconds. */
export function parsePidStat(text: string): number {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error(`/proc/PID/stat: cannot read "${text.slice(0, 100)}"`);
  const f = text.slice(close + 2).split(' ');
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`/proc/PID/stat: no utime/stime in "${text.slice(0, 100)}"`);
  return (utime + stime) / 100; // USER_HZ
}

/** Fraction of sent frames that did not arrive; 0 when more arrived (stray frames on the sink). */
export function lossOf(sent: number, received: number): number {
  if (!(sent > 0)) return NaN;
  return Math.max(0, (sent - received) / sent);
}

export interface LoadStep {
  /** The rate asked of the generator (0: unpaced). */
  asked: number;
  gen: GenResult;
  received: number;
  loss: number;
  /** Forwarded frames per second of generator time. */
  forwarded: number;
  /** Busy CPU of all cores over the step, seconds (background and generator user time not yet subtracted). */
  cpu: CpuTimes;
  wallSeconds: number;
  /** CPU seconds of the forwarding process (uvsd) over the step, when there is one. */
  procCpu?: number;
}

/** CPU seconds per forwarded packet of a step, in ns: busy − generator user − background. */
export function cpuPerPacketNs(s: LoadStep, backgroundPerSec: number): number {
  if (!(s.received > 0)) return NaN;
  const own = s.cpu.busy - (s.gen.userCpu ?? 0) - backgroundPerSec * s.wallSeconds;
  return (Math.max(0, own) / s.received) * 1e9;
}

/** The generator offered less than 97% of the rate asked. */
export function generatorShort(s: LoadStep): boolean {
  return s.asked > 0 && s.gen.pps < 0.97 * s.asked;
}

/**
 * A step passes when it lost at most MAX_LOSS of what the generator really offered. A step the
 * generator could not hold (generatorShort) is retried once by findMaxRate; if it is clean, its
 * offered rate, not the one asked, is what it proves.
 */
export function clean(s: LoadStep): boolean {
  return s.loss <= MAX_LOSS;
}

export interface SearchPlan {
  /** Ramp steps: ceiling × i / ramp for i = 1 … ramp. */
  ramp: number;
  /** Bisection steps after the ramp. */
  bisect: number;
}

/**
 * The next rate to try, or null when the search is over: the ramp upward until two steps in a row
 * fail (or the ceiling is reached), then bisection between the highest clean rate and the lowest
 * failing rate above it.
 */
export function nextRate(done: readonly LoadStep[], ceiling: number, plan: SearchPlan): number | null {
  const rampRate = (i: number): number => Math.round((ceiling * i) / plan.ramp);
  // The ramp steps are the first k; the ramp ends at plan.ramp steps or after two failures in a row.
  let k = 0;
  let rampOver = false;
  while (k < done.length && k < plan.ramp) {
    k++;
    if (k >= 2 && !clean(done[k - 1]!) && !clean(done[k - 2]!)) {
      rampOver = true;
      break;
    }
  }
  if (k === plan.ramp) rampOver = true;
  if (!rampOver) return k === done.length ? rampRate(k + 1) : null;
  if (done.length - k >= plan.bisect) return null;
  const best = highestClean(done);
  const lo = best ? best.asked : 0;
  const above = done.filter((s) => s.asked > lo && !clean(s)).map((s) => s.asked);
  if (above.length === 0) return null; // clean all the way to the ceiling
  const hi = Math.min(...above);
  if (hi - lo < ceiling / 200) return null; // within 0.5% of the ceiling: good enough
  return Math.round((lo + hi) / 2);
}

/** The clean step with the highest rate asked, or null (the search bisects on rates asked). */
export function highestClean(done: readonly LoadStep[]): LoadStep | null {
  let best: LoadStep | null = null;
  for (const s of done) if (s.asked > 0 && clean(s) && (!best || s.asked > best.asked)) best = s;
  return best;
}

/** The clean step with the highest rate really offered, or null: the row's figure. */
export function bestOffered(done: readonly LoadStep[]): LoadStep | null {
  let best: LoadStep | null = null;
  for (const s of done) if (s.asked > 0 && clean(s) && (!best || s.gen.pps > best.gen.pps)) best = s;
  return best;
}

/** One pktgen process in stepped mode, pinned like every generator of the bench. */
export class SteppedGen {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private stderr = '';
  private closed = false;

  private constructor(private readonly proc: ChildProcess, private readonly job: PktgenJob) {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      this.buffered += chunk;
      let i: number;
      while ((i = this.buffered.indexOf('\n')) >= 0) {
        this.push(this.buffered.slice(0, i));
        this.buffered = this.buffered.slice(i + 1);
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (c: string) => {
      if (this.stderr.length < 10_000) this.stderr += c;
    });
    proc.on('close', () => {
      this.closed = true;
      this.push(null);
    });
    proc.on('error', () => undefined);
    proc.stdin!.on('error', () => undefined);
  }

  private push(line: string | null): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(line);
    } else if (line !== null) this.lines.push(line);
  }

  private next(timeoutMs: number): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.closed) return Promise.reject(new Error(`pktgen exited: ${this.stderr.trim().slice(-1000)}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        this.proc.kill('SIGKILL');
        reject(new Error(`pktgen gave no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = (line) => {
        clearTimeout(timer);
        if (line === null) reject(new Error(`pktgen exited: ${this.stderr.trim().slice(-1000)}`));
        else resolve(line);
      };
    });
  }

  /** Starts the generator in the lab's client namespace and waits until its frames are built. */
  static async start(lab: BenchLab, job: PktgenJob, nice: number): Promise<SteppedGen> {
    if (job.steps === undefined) throw new Error('SteppedGen: the job needs steps');
    const argv = ['nice', '-n', String(nice), ...(canPin() ? ['taskset', '-c', '0'] : []), process.execPath, PKTGEN, JSON.stringify(job)];
    const proc = spawn('ip', ['netns', 'exec', lab.ns.c, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    const g = new SteppedGen(proc, job);
    // A million 64-byte frames take a few seconds to build on a busy machine.
    const ready = await g.next(60_000);
    if (ready !== 'READY') throw new Error(`pktgen: expected READY, got ${ready.slice(0, 200)}`);
    return g;
  }

  /** One step at `pps` (0: unpaced). */
  async step(pps: number): Promise<GenResult> {
    this.proc.stdin!.write(`go ${Math.round(pps)}\n`);
    const line = await this.next(this.job.durationMs + 30_000);
    try {
      return JSON.parse(line) as GenResult;
    } catch {
      throw new Error(`pktgen printed ${line.slice(0, 200)}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const exited = new Promise<void>((resolve) => this.proc.once('close', () => resolve()));
    this.proc.stdin!.end('stop\n');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Runs one step and reads the sinks and /proc/stat around it. */
export async function measureStep(gen: SteppedGen, pps: number, sinkPackets: () => number, procCpu?: () => number): Promise<LoadStep> {
  const before = sinkPackets();
  const p0 = procCpu?.();
  const c0 = cpuTimes();
  const t0 = Date.now();
  const g = await gen.step(pps);
  await sleep(100); // the last frames drain through the director
  const c1 = cpuTimes();
  const p1 = procCpu?.();
  const wallSeconds = (Date.now() - t0) / 1000;
  const received = sinkPackets() - before;
  const s: LoadStep = { asked: pps, gen: g, received, loss: lossOf(g.sent, received), forwarded: received / g.elapsed, cpu: cpuDelta(c0, c1), wallSeconds };
  if (p0 !== undefined && p1 !== undefined) s.procCpu = p1 - p0;
  return s;
}

/**
 * A second figure that other processes' user and system time do not disturb, in ns per forwarded
 * packet: softirq time of all cores (the kernel's receive and forwarding work) + the forwarding
 * process's CPU time + the generator's system time. It overcounts where softirq ran in a task's
 * context (tick accounting charges such a tick to both the task and softirq), the same way for
 * every system, and softirq being machine-wide, other network-heavy work still inflates it.
 */
export function inLabPerPacketNs(s: LoadStep): number {
  if (!(s.received > 0)) return NaN;
  return ((s.cpu.softirq + (s.gen.sysCpu ?? 0) + (s.procCpu ?? 0)) / s.received) * 1e9;
}

/** Steps until nextRate says stop (bounded by plan.ramp + plan.bisect steps). */
export async function findMaxRate(gen: SteppedGen, ceiling: number, plan: SearchPlan, sinkPackets: () => number, onStep?: (s: LoadStep) => void): Promise<{ steps: LoadStep[]; best: LoadStep | null }> {
  const steps: LoadStep[] = [];
  for (let i = 0; i < plan.ramp + plan.bisect; i++) {
    const rate = nextRate(steps, ceiling, plan);
    if (rate === null || rate <= 0) break;
    let s = await measureStep(gen, rate, sinkPackets);
    // The generator itself fell short (preempted on a shared machine): that says nothing about the
    // system under test, so the step is tried once more before it counts.
    if (generatorShort(s) && i + 1 < plan.ramp + plan.bisect) {
      i++;
      s = await measureStep(gen, rate, sinkPackets);
    }
    steps.push(s);
    onStep?.(s);
  }
  return { steps, best: bestOffered(steps) };
}
