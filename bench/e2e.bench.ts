// End-to-end benchmarks in one namespace lab (bench/e2e/lab.ts): packet rates through the kernel
// and uvs (bench/e2e/pps.ts), then HTTP and TCP throughput through uvs and its peers
// (bench/e2e/tcp.ts). Needs root; without it there are no rows.
import type { BenchOptions, BenchRow } from './lib';
import { BenchLab } from './e2e/lab';
import { ppsPlan, runPps, type PpsOptions } from './e2e/pps';
import { Progress, type Step } from './e2e/progress';

export function plan(opts: BenchOptions): Step[] {
  return ppsPlan(ppsOptions(opts));
}

function ppsOptions(opts: BenchOptions): PpsOptions {
  return { quick: opts.quick, runs: 2, durationMs: opts.quick ? 1000 : 5000 };
}

export async function collect(opts: BenchOptions, progress = new Progress(plan(opts))): Promise<BenchRow[]> {
  if (process.getuid?.() !== 0) {
    console.log('e2e.bench: skipped: needs root (network namespaces, AF_PACKET)');
    return [];
  }
  const lab = new BenchLab();
  try {
    return await runPps(lab, ppsOptions(opts), progress);
  } finally {
    lab.destroy();
  }
}
