// End-to-end benchmarks in one namespace lab (bench/e2e/lab.ts): packet rates through the kernel
// and uvs (bench/e2e/pps.ts), then HTTP and TCP throughput through uvs and its peers
// (bench/e2e/tcp.ts), then VRRP failover in a lab of its own (bench/e2e/vrrp.ts). Needs root; without it there
// are no rows. run.ts calls plan() first so its progress line knows the whole run.
import type { BenchOptions, BenchRow } from './lib';
import { BenchLab } from './e2e/lab';
import { ppsPlan, runPps, type PpsOptions } from './e2e/pps';
import { Progress, type Step } from './e2e/progress';
import { runTcp, tcpPlan, type TcpOptions } from './e2e/tcp';
import { failoverPlan, runFailover, type FailoverOptions } from './e2e/vrrp';

export { FAILOVER_GROUP } from './e2e/vrrp';

function ppsOptions(opts: BenchOptions): PpsOptions {
  return { quick: opts.quick, runs: opts.quick ? 2 : 3, durationMs: opts.quick ? 1000 : 5000 };
}

function tcpOptions(opts: BenchOptions): TcpOptions {
  return { quick: opts.quick, runs: opts.quick ? 2 : 3, seconds: opts.quick ? 1 : 5 };
}

function failoverOptions(_opts: BenchOptions): FailoverOptions {
  return { runs: 2 }; // 2 × 4 rows ≈ 50 s: failover times vary by ms, not by the noise the other cases see
}

export function plan(opts: BenchOptions): Step[] {
  if (process.getuid?.() !== 0) return [];
  return [{ label: 'e2e: building the lab', seconds: 2 }, ...ppsPlan(ppsOptions(opts)), ...tcpPlan(tcpOptions(opts)), ...failoverPlan(failoverOptions(opts))];
}

export async function collect(opts: BenchOptions, progress = new Progress(plan(opts))): Promise<BenchRow[]> {
  if (process.getuid?.() !== 0) {
    console.log('e2e.bench: skipped: needs root (network namespaces, AF_PACKET)');
    return [];
  }
  progress.begin('e2e: building the lab');
  const lab = new BenchLab();
  try {
    const rows = await runPps(lab, ppsOptions(opts), progress);
    rows.push(...(await runTcp(lab, tcpOptions(opts), progress)));
    lab.destroy(); // the failover case builds a lab of its own
    rows.push(...(await runFailover(failoverOptions(opts), progress)));
    return rows;
  } finally {
    lab.destroy();
  }
}
