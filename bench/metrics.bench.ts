// What one /metrics scrape costs the control plane's event loop (uvsd --metrics): the whole
// exposition and the node_ipvs_* text alone (the textfile) for a table of N services × 2 real
// servers, rendered from a snapshot as a scrape renders it (src/metrics/exposition.ts). Milliseconds
// per render, the median of several.
import type { BenchOptions, BenchRow } from './lib';
import { MetricsExposition, nodeIpvsText } from '../src/metrics/exposition';
import type { MetricsSnapshot } from '../src/metrics/snapshot';
import type { ServiceEntry } from '../src/service/model';
import { ForwardMethod } from '../src/tables/dest-table';

function table(n: number, per = 2): ServiceEntry[] {
  const out: ServiceEntry[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      id: i, af: 4, protocol: 6, addr: (0x0a000000 + i) >>> 0, port: 80, fwmark: 0, scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '',
      dests: Array.from({ length: per }, (_, k) => ({
        af: 4 as const, addr: (0x0a010000 + per * i + k) >>> 0, port: 80, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0,
        tunType: 0, tunPort: 0, tunFlags: 0, slot: per * i + k, activeConns: k, inactConns: 3, persistConns: 0,
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
  if (opts.quick) return rows;
  // The size of the issue: 10,000 services x 10 real servers (100,000 backend series). A scrape
  // must not hold the main thread: the longest time between two turns of the event loop during
  // a render (measured by a setImmediate chain running beside it), and the render's whole time.
  // The first render after a table change sorts the series again; later ones reuse the order.
  const big: MetricsSnapshot = {
    totals: { conns: 1, inpkts: 2, outpkts: 0, inbytes: 3, outbytes: 0 }, services: table(10_000, 10), vrrp: [], checks: [], workers: [], conns: null,
  };
  const e = new MetricsExposition();
  // renderParts: what a scrape's HTTP answer writes, piece by piece (server.ts sendParts).
  const first = await blocking(() => e.renderParts(big));
  const again = await blocking(() => e.renderParts(big));
  const label = '10000 services x 10 real servers';
  rows.push({ group: 'metrics', name: `/metrics render, ${label}, first scrape: total`, value: first.total, unit: 'ms' });
  rows.push({ group: 'metrics', name: `/metrics render, ${label}, first scrape: longest block of the event loop`, value: first.longest, unit: 'ms', target: '<= 50 ms', met: first.longest <= 50 });
  rows.push({ group: 'metrics', name: `/metrics render, ${label}, next scrape: total`, value: again.total, unit: 'ms' });
  rows.push({ group: 'metrics', name: `/metrics render, ${label}, next scrape: longest block of the event loop`, value: again.longest, unit: 'ms', target: '<= 50 ms', met: again.longest <= 50 });
  return rows;
}

/** Runs fn with a setImmediate chain beside it: the longest gap between two of its turns is the
 *  longest time the render held the event loop. */
async function blocking(fn: () => Promise<unknown>): Promise<{ total: number; longest: number }> {
  let running = true;
  let last = process.hrtime.bigint();
  let longest = 0n;
  const tick = (): void => {
    const now = process.hrtime.bigint();
    if (now - last > longest) longest = now - last;
    last = now;
    if (running) setImmediate(tick);
  };
  const t0 = process.hrtime.bigint();
  setImmediate(tick);
  await fn();
  const total = Number(process.hrtime.bigint() - t0) / 1e6;
  running = false;
  const now = process.hrtime.bigint();
  if (now - last > longest) longest = now - last;
  return { total, longest: Number(longest) / 1e6 };
}
