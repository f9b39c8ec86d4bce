// What one /metrics scrape costs the control plane's event loop (uvsd --metrics): the whole
// exposition and the node_ipvs_* text alone (the textfile) for a table of N services × 2 real
// servers, rendered from a snapshot as a scrape renders it (src/metrics/exposition.ts). Milliseconds
// per render, the median of several.
import type { BenchOptions, BenchRow } from './lib';
import { MetricsExposition, nodeIpvsText } from '../src/metrics/exposition';
import type { MetricsSnapshot } from '../src/metrics/snapshot';
import type { ServiceEntry } from '../src/service/model';
import { ForwardMethod } from '../src/tables/dest-table';

function table(n: number): ServiceEntry[] {
  const out: ServiceEntry[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      id: i, af: 4, protocol: 6, addr: (0x0a000000 + i) >>> 0, port: 80, fwmark: 0, scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '',
      dests: [0, 1].map((k) => ({
        af: 4 as const, addr: (0x0a010000 + 2 * i + k) >>> 0, port: 80, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0,
        tunType: 0, tunPort: 0, tunFlags: 0, slot: 2 * i + k, activeConns: k, inactConns: 3, persistConns: 0,
      })),
    });
  }
  return out;
}

async function medianMs(runs: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export async function collect(opts: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const runs = opts.quick ? 3 : 9;
  for (const n of opts.quick ? [1000] : [1000, 10_000]) {
    const snap: MetricsSnapshot = {
      totals: { conns: 1, inpkts: 2, outpkts: 0, inbytes: 3, outbytes: 0 }, services: table(n), vrrp: [], checks: [], workers: [], conns: null,
    };
    const e = new MetricsExposition();
    await e.render(snap); // warm-up
    rows.push({ group: 'metrics', name: `/metrics render, ${n} services x 2 real servers`, value: await medianMs(runs, () => e.render(snap)), unit: 'ms' });
    rows.push({ group: 'metrics', name: `node_ipvs_* text (textfile), ${n} services x 2 real servers`, value: await medianMs(runs, () => Promise.resolve(nodeIpvsText(snap))), unit: 'ms' });
  }
  return rows;
}
