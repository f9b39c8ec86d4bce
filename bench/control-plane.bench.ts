// How long the control plane's periodic and per-request work holds uvsd's main thread with a big
// table (10,000 services × 10 real servers; 1,000 × 10 with --quick), built without a data plane
// (as `uvsd --io none` holds it) but with the data plane's counters (CounterSum over 2 workers'
// shared arrays, as `--workers 2` reads them):
//   - model.list(): what each /metrics scrape (src/control/metrics-source.ts), each listing and
//     the sync resolver read. The first call after a table change, then a call on an unchanged
//     table (the common case: a scrape every few seconds).
//   - `uvsadm -L` / `-S`: the answer with every real server's statistics, built in pieces;
//   - `uvsadm -Z`: every counter restarts;
//   - the estimator (every 2 s): reads every service's and real server's counters and steps its
//     rates; uvsd runs it in slices (StatsBook.tickSlice).
// Every figure is a synchronous call, in ms (each runs in one turn of the event loop, so the call
// is the block), garbage-collector pauses that fall inside it included: on a loaded 2-core
// machine a scavenge or a mark-compact of this ~100 MB heap takes 10-60 ms (node --trace-gc),
// so a "longest" figure over 20 ms is usually one of those, not the work itself. `node dist/bench/run.js control-plane` after `npm run build`.
import type { BenchOptions, BenchRow } from './lib';
import { ServiceModel } from '../src/service/model';
import { ESTIMATOR_PERIOD_MS, ESTIMATOR_SLICES, StatsBook } from '../src/service/stats';
import { LISTING_WARM_DESTS } from '../src/control/daemon';
import { ControlHandler } from '../src/control/handler';
import { LIST_PIECE_DESTS } from '../src/control/server';
import { CounterSum, WorkerCounters } from '../src/dataplane/counters';
import { ForwardMethod } from '../src/tables/dest-table';

const TARGET_MS = 20;

function buildModel(services: number, per: number): ServiceModel {
  const model = new ServiceModel({ maxServices: services, destCapacity: services * per });
  model.batch(() => {
    for (let i = 0; i < services; i++) {
      const svc = { fwmark: 0, af: 4 as const, protocol: 6, addr: (0x0a000000 + i) >>> 0, port: 80, scheduler: 'wlc', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' };
      model.apply({ kind: 'add-service', service: svc });
      for (let k = 0; k < per; k++) {
        model.apply({
          kind: 'add-dest', service: svc,
          dest: { af: 4, addr: (0x0b000000 + per * i + k) >>> 0, port: 8080, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 },
        });
      }
    }
  });
  return model;
}

function timeMs(fn: () => unknown): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** fn's answer; its time in ms to `took`. */
function timeMsOf<T>(fn: () => T, took: (ms: number) => void): T {
  const t = process.hrtime.bigint();
  const v = fn();
  took(Number(process.hrtime.bigint() - t) / 1e6);
  return v;
}

function longest(runs: number, fn: () => unknown): number {
  let worst = 0;
  for (let r = 0; r < runs; r++) worst = Math.max(worst, timeMs(fn));
  return worst;
}

function row(name: string, value: number): BenchRow {
  return { group: 'control-plane', name, value, unit: 'ms', target: `<= ${TARGET_MS} ms`, met: value <= TARGET_MS };
}

export async function collect(opts: BenchOptions): Promise<BenchRow[]> {
  const services = opts.quick ? 1000 : 10_000;
  const per = 10;
  const runs = opts.quick ? 3 : 7;
  const label = `${services} services x ${per} real servers`;
  const model = buildModel(services, per);
  const rows: BenchRow[] = [];

  // The estimator first, while its code is still cold (as in a uvsd that just started): uvsd runs
  // the period in ESTIMATOR_SLICES slices (StatsBook.tickSlice); the longest over two periods.
  const layout = { maxServices: model.maxServices, maxDests: model.destTable.capacity };
  const workers = [new WorkerCounters(layout), new WorkerCounters(layout)];
  const count = (): void => {
    for (const w of workers) for (let i = 0; i < w.dropBase; i += 7) w.cells[i]! += 3;
  };
  count();
  const stats = new StatsBook(new CounterSum(() => workers));
  const ids = model.ids();
  stats.track(ids.services, ids.slots);
  // The first period runs cold (interpreted until V8 compiles the loops: once per uvsd); the
  // next ones are what every period costs.
  const sliceLongest = (periods: number): number => {
    let worst = 0;
    for (let k = 0; k < periods * ESTIMATOR_SLICES; k++) {
      count();
      worst = Math.max(worst, timeMs(() => stats.tickSlice(k % ESTIMATOR_SLICES, ESTIMATOR_SLICES)));
    }
    return worst;
  };
  const what = `estimator, ${label}, 2 workers' counters: longest slice (uvsd runs 1/${ESTIMATOR_SLICES} of the period every ${ESTIMATOR_PERIOD_MS / ESTIMATOR_SLICES} ms)`;
  rows.push(row(`${what}, first period (cold)`, sliceLongest(1)));
  rows.push(row(`${what}, next ${runs} periods`, sliceLongest(runs)));
  let whole = 0;
  for (let r = 0; r < runs; r++) {
    count();
    whole = Math.max(whole, timeMs(() => stats.tick()));
  }
  rows.push({ ...row(`estimator, ${label}, 2 workers' counters: a whole period at once (StatsBook.tick)`, whole), target: undefined, met: undefined });

  // The listing: the first call after loading the table with nothing built ahead (what the first
  // scrape after a restore cost before uvsd built the entries in slices)...
  {
    // A model of its own, dropped after (uvsd holds one table, not two, for the collector to trace).
    const cold = buildModel(services, per);
    rows.push({ ...row(`model.list(), ${label}, first call after loading the table, nothing built ahead`, timeMs(() => cold.list())), target: undefined, met: undefined });
  }
  // ...and as uvsd runs it: the entries built ahead a slice a turn (daemon.ts warmListing), then
  // the first listing; then one after an `uvsadm -e` of one real server; then unchanged.
  let warm = 0;
  while (true) {
    let done = false;
    warm = Math.max(warm, timeMs(() => (done = model.warmListing(LISTING_WARM_DESTS))));
    if (done) break;
  }
  rows.push(row(`model.warmListing(${LISTING_WARM_DESTS}), ${label}: longest slice after loading the table`, warm));
  rows.push(row(`model.list(), ${label}, first call after loading the table, entries built ahead`, timeMs(() => model.list())));
  const svc0 = model.list()[0]!;
  const d0 = svc0.dests[0]!;
  model.editDest(svc0, { ...d0, weight: 2 });
  rows.push(row(`model.list(), ${label}, after one real server edited`, timeMs(() => model.list())));
  rows.push(row(`model.list(), ${label}, unchanged table (each /metrics scrape): longest of ${runs}`, longest(runs, () => model.list())));

  // `uvsadm -L` / `-S`: the answer with statistics, as uvsd builds it (ControlHandler.listedPieces,
  // LIST_PIECE_DESTS real servers a turn, JSON-encoded piece by piece); and at once, for scale.
  const handler = new ControlHandler(model, stats, { version: 'bench', connTableSize: 4096, pid: 0 });
  let piece = 0;
  let parts = 0;
  const it = handler.listedPieces(LIST_PIECE_DESTS);
  for (let more = true; more; parts++) more = timeMsOf(() => it.next().done !== true, (ms) => (piece = Math.max(piece, ms)));
  rows.push(row(`uvsadm -L answer, ${label}: longest piece of ${parts} (${LIST_PIECE_DESTS} real servers a turn, built and JSON-encoded)`, piece));
  rows.push({ ...row(`uvsadm -L answer, ${label}: built and JSON-encoded at once (before)`, timeMs(() => JSON.stringify(handler.execute({ cmd: 'list', what: 'all', service: null, format: 1 })))), target: undefined, met: undefined });
  // `uvsadm -Z`: every service's and real server's counters restart (read in bulk).
  rows.push(row(`uvsadm -Z, ${label}, 2 workers' counters: longest of ${runs}`, longest(runs, () => handler.execute({ cmd: 'zero', service: null }))));
  await Promise.resolve();
  return rows;
}
