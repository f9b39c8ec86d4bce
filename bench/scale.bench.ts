// Changes at scale (bench/e2e/scale.ts): `uvsadm -R` of N services × 10 real servers and one more
// `uvsadm -a`, in the DR lab, while a live service is probed. Needs root; without it there are no
// rows. N: 10,000 in the full run (× 10 real servers), 1,000 with --quick;
// UVS_BENCH_SCALE_SERVICES overrides it
// (UVS_BENCH_SCALE_DESTS the real servers per service, UVS_BENCH_SCALE_IO the --io).
import type { BenchOptions, BenchRow } from './lib';
import { BenchLab } from './e2e/lab';
import { Progress, type Step } from './e2e/progress';
import { runScale, scalePlan, type ScaleOptions } from './e2e/scale';

function scaleOptions(opts: BenchOptions): ScaleOptions {
  const env = process.env;
  const services = Number(env['UVS_BENCH_SCALE_SERVICES'] ?? (opts.quick ? 1000 : 10_000));
  // 10 real servers each (a connection entry keeps a 24-bit real-server slot: 100,000 fit).
  return {
    services,
    dests: Number(env['UVS_BENCH_SCALE_DESTS'] ?? 10),
    io: env['UVS_BENCH_SCALE_IO'] === 'none' ? 'none' : 'ring',
  };
}

export function plan(opts: BenchOptions): Step[] {
  if (process.getuid?.() !== 0) return [];
  return [{ label: 'scale: building the lab', seconds: 2 }, ...scalePlan(scaleOptions(opts))];
}

export async function collect(opts: BenchOptions, progress = new Progress(plan(opts))): Promise<BenchRow[]> {
  if (process.getuid?.() !== 0) {
    console.log('scale.bench: skipped: needs root (network namespaces, AF_PACKET)');
    return [];
  }
  progress.begin('scale: building the lab');
  const lab = new BenchLab();
  try {
    return await runScale(lab, scaleOptions(opts), progress);
  } finally {
    lab.destroy();
  }
}
