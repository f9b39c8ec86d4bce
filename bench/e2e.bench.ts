// End-to-end benchmarks in one namespace lab (bench/e2e/lab.ts): packet rates through the kernel
// and uvs (bench/e2e/pps.ts), then HTTP and TCP throughput through uvs and its peers
// (bench/e2e/tcp.ts), then VRRP failover (a slot until VRRP lands). Needs root; without it there
// are no rows. run.ts calls plan() first so its progress line knows the whole run.
import type { BenchOptions, BenchRow } from './lib';
import { BenchLab } from './e2e/lab';
import { ppsPlan, runPps, type PpsOptions } from './e2e/pps';
import { Progress, type Step } from './e2e/progress';
import { runTcp, tcpPlan, type TcpOptions } from './e2e/tcp';

export const FAILOVER_GROUP = 'VRRP failover, ms until the VIP answers again';

function ppsOptions(opts: BenchOptions): PpsOptions {
  return { quick: opts.quick, runs: opts.quick ? 2 : 3, durationMs: opts.quick ? 1000 : 5000 };
}

function tcpOptions(opts: BenchOptions): TcpOptions {
  return { quick: opts.quick, runs: opts.quick ? 2 : 3, seconds: opts.quick ? 1 : 5 };
}

export function plan(opts: BenchOptions): Step[] {
  if (process.getuid?.() !== 0) return [];
  return [{ label: 'e2e: building the lab', seconds: 2 }, ...ppsPlan(ppsOptions(opts)), ...tcpPlan(tcpOptions(opts))];
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
    // VRRP failover (uvs against uvs, keepalived against keepalived, clean stop and kill) comes
    // with the VRRP data path: one row per pair and way of failing, ms from the stop until the VIP
    // answers from the backup. Listed so the report shows the slot.
    for (const name of ['uvs ↔ uvs, clean stop', 'uvs ↔ uvs, kill -9', 'keepalived ↔ keepalived, clean stop', 'keepalived ↔ keepalived, kill -9']) {
      rows.push({ group: FAILOVER_GROUP, name, value: NaN, unit: 'ms', note: 'not measured yet (VRRP case pending)' });
    }
    return rows;
  } finally {
    lab.destroy();
  }
}
