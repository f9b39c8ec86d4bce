// End-to-end benchmarks in one namespace lab (bench/e2e/lab.ts): packet rates through the kernel
// and uvs, with stepped paced load, CPU per packet and 1M flows (bench/e2e/pps.ts), then the
// added-latency rows and HTTP and TCP throughput through uvs and its peers (bench/e2e/tcp.ts,
// bench/e2e/latency.ts), then uvsd's idle cost (bench/e2e/idle.ts) and its loss when traffic
// meets it right after a start (bench/e2e/start.ts), then VRRP failover in a lab of
// its own (bench/e2e/vrrp.ts), then a download across a failover with and without connection sync
// (bench/e2e/ha.ts, lab.sh's ha lab). Needs root; without it there are no rows. run.ts calls plan() first
// so its progress line knows the whole run, and setup() for the report's placement lines.
//
// Parts of it alone (checking one row on a busy machine):
//   UVS_BENCH_E2E=pps,tcp,latency,idle,start,vrrp,ha the parts to run (default: all but "latency", which
//                                             is inside "tcp"; "latency" alone skips wrk and iperf3)
//   UVS_BENCH_CASES=REGEX                     only the packet-rate cases and peers whose name matches
import type { BenchOptions, BenchRow } from './lib';
import { BenchLab, canPin } from './e2e/lab';
import { IDLE_GROUP, idleSeconds, runIdle } from './e2e/idle';
import { runStart, startPlan } from './e2e/start';
import { CPU_RATE, NICE, ppsPlan, runPps, type PpsOptions } from './e2e/pps';
import { Progress, type Step } from './e2e/progress';
import { DIRECTOR_CPUS, runTcp, tcpPlan, type TcpOptions } from './e2e/tcp';
import { failoverPlan, runFailover, type FailoverOptions } from './e2e/vrrp';
import { haPlan, runHaFailover } from './e2e/ha';

export { FAILOVER_GROUP } from './e2e/vrrp';

const PARTS = ['pps', 'tcp', 'latency', 'idle', 'start', 'vrrp', 'ha'] as const;
type Part = (typeof PARTS)[number];

function parts(): Set<Part> {
  const env = process.env['UVS_BENCH_E2E'];
  if (!env) return new Set(['pps', 'tcp', 'idle', 'start', 'vrrp', 'ha']);
  const out = new Set<Part>();
  for (const p of env.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(PARTS as readonly string[]).includes(p)) throw new Error(`UVS_BENCH_E2E: unknown part "${p}" (${PARTS.join(', ')})`);
    out.add(p as Part);
  }
  return out;
}

function casesFilter(): RegExp | undefined {
  const env = process.env['UVS_BENCH_CASES'];
  return env ? new RegExp(env) : undefined;
}

function ppsOptions(opts: BenchOptions): PpsOptions {
  const o: PpsOptions = {
    quick: opts.quick, runs: opts.quick ? 2 : 3, durationMs: opts.quick ? 1000 : 5000,
    stepMs: opts.quick ? 400 : 2000,
    search: opts.quick ? { ramp: 4, bisect: 1 } : { ramp: 10, bisect: 3 },
    flowsSeconds: opts.quick ? 1 : 5,
    flowsMaxSeconds: opts.quick ? 1.5 : 20,
  };
  const cases = casesFilter();
  if (cases) o.cases = cases;
  return o;
}

function tcpOptions(opts: BenchOptions): TcpOptions {
  const o: TcpOptions = { quick: opts.quick, runs: opts.quick ? 2 : 3, seconds: opts.quick ? 1 : 5, latency: { runs: opts.quick ? 1 : 3, count: opts.quick ? 100 : 1000 } };
  const peers = casesFilter();
  if (peers) o.peers = peers;
  const p = parts();
  if (p.has('latency') && !p.has('tcp')) o.latencyOnly = true;
  return o;
}

function failoverOptions(_opts: BenchOptions): FailoverOptions {
  return { runs: 2 }; // 2 × 4 rows ≈ 50 s: failover times vary by ms, not by the noise the other cases see
}

export function plan(opts: BenchOptions): Step[] {
  if (process.getuid?.() !== 0) return [];
  const p = parts();
  const steps: Step[] = [{ label: 'e2e: building the lab', seconds: 2 }];
  if (p.has('pps')) steps.push(...ppsPlan(ppsOptions(opts)));
  if (p.has('tcp') || p.has('latency')) steps.push(...tcpPlan(tcpOptions(opts)));
  if (p.has('idle')) steps.push({ label: 'idle: uvsd with 3 services, no traffic', seconds: idleSeconds(opts.quick) + 5 });
  if (p.has('start')) steps.push(...startPlan(opts.quick, casesFilter()));
  if (p.has('vrrp')) steps.push(...failoverPlan(failoverOptions(opts)));
  if (p.has('ha')) steps.push(...haPlan());
  return steps;
}

/** The report's lines on how every system was placed (the same for all of them). */
export function setup(_opts: BenchOptions): string[] {
  if (process.getuid?.() !== 0) return [];
  const pin = canPin();
  return [
    `Same nice and CPUs for every system measured: the generator, the latency probes and every user-space forwarder or proxy in the director (uvsd, HAProxy, nginx) run at nice ${NICE}; the kernel's forwarding and nftables DNAT run in softirq where the packets arrive, as the others' receive work does; wrk, iperf3 and the real servers run at nice 0, unpinned.`,
    pin
      ? `Packet rates: the generator is pinned to CPU 0; each case (kernel included) is tried in the same candidate placements (the director's receive RPS on CPU 1 or inline on CPU 0; uvsd on CPU 1 or 0) and keeps its fastest (each row's note says which); the stepped load runs at that placement, the 1M-flow case chooses its own the same way, and CPU per packet runs with the director's receive RPS on CPU 1 for every case (uvsd where its case runs best). HTTP, TCP and latency: uvsd, HAProxy and nginx on CPUs ${DIRECTOR_CPUS}, the probes on CPU 0.`
      : 'taskset is unavailable here: nothing is pinned.',
    `CPU per packet: /proc/stat busy time of all cores (softirq included) over a step paced at ${CPU_RATE / 1000} kpps, minus the generator's user time and the machine's background measured before the case (once it has settled), per frame counted at the sinks.`,
  ];
}

export async function collect(opts: BenchOptions, progress = new Progress(plan(opts))): Promise<BenchRow[]> {
  if (process.getuid?.() !== 0) {
    console.log('e2e.bench: skipped: needs root (network namespaces, AF_PACKET)');
    return [];
  }
  const p = parts();
  progress.begin('e2e: building the lab');
  const lab = new BenchLab();
  try {
    const rows: BenchRow[] = [];
    if (p.has('pps')) rows.push(...(await runPps(lab, ppsOptions(opts), progress)));
    if (p.has('tcp') || p.has('latency')) rows.push(...(await runTcp(lab, tcpOptions(opts), progress)));
    if (p.has('idle')) {
      progress.begin('idle: uvsd with 3 services, no traffic');
      try {
        rows.push(await runIdle(lab, idleSeconds(opts.quick)));
      } catch (err) {
        progress.log(`bench: idle case failed: ${(err as Error).message.split('\n')[0]}`);
        rows.push({ group: IDLE_GROUP, name: 'uvsd, default data plane', value: NaN, unit: '% of a core', note: `failed: ${(err as Error).message.slice(0, 300)}` });
      }
    }
    if (p.has('start')) rows.push(...(await runStart(lab, opts.quick, progress, casesFilter())));
    lab.destroy(); // the failover case builds a lab of its own
    if (p.has('vrrp')) rows.push(...(await runFailover(failoverOptions(opts), progress)));
    if (p.has('ha')) rows.push(...(await runHaFailover(progress)));
    return rows;
  } finally {
    lab.destroy();
  }
}
