// IPVS's rate estimator (ip_vs_est.c), checked against the kernel's integer arithmetic by hand.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COUNTER_CELLS, ESTIMATOR_SLICES, Estimator, StatsBook, zeroCounters } from '../../src/service/stats';
import { CounterSum, WorkerCounters } from '../../src/dataplane/counters';
import type { CounterSource, Counters, Rates } from '../../src/service/stats';
import { ServiceModel } from '../../src/service/model';
import type { DestConfig, ServiceConfig } from '../../src/service/model';
import { ControlHandler } from '../../src/control/handler';
import type { ListedService } from '../../src/control/protocol';
import { ForwardMethod } from '../../src/tables/dest-table';

const rates = (): Rates => ({ cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });

test('one 2-second tick: a quarter of the new rate, rounded as ip_vs_read_estimator does', () => {
  const e = new Estimator();
  e.reset({ conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 });
  // 2000 conns in 2 s: rate = 2000 << 9 = 1024000; cps = 1024000 >> 2 = 256000; read (256000 + 511) >> 10 = 250.
  // 2e6 bytes: rate = 2e6 << 4 = 32e6; bps = 8e6; read (8e6 + 15) >> 5 = 250000.
  e.tick({ conns: 2000, inpkts: 4000, outpkts: 6, inbytes: 2_000_000, outbytes: 3 });
  const r = e.read(rates());
  assert.deepEqual(r, { cps: 250, inpps: 500, outpps: 1, inbps: 250000, outbps: 0 });
});

test('a steady rate converges to itself; silence decays to zero', () => {
  const e = new Estimator();
  const c: Counters = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
  e.reset(c);
  for (let i = 0; i < 200; i++) {
    c.conns += 2000; // 1000 per second
    c.inbytes += 10_000_000_000; // 5e9 B/s: beyond 32 bits, where int32 shifts would break
    e.tick(c);
  }
  const r = e.read(rates());
  assert.equal(r.cps, 1000);
  assert.equal(r.inbps, 5_000_000_000);
  for (let i = 0; i < 80; i++) e.tick(c);
  assert.deepEqual(e.read(rates()), rates());
});

test('the book tracks services and real servers, and -Z restarts their counters', () => {
  const totals = new Map<number, number>([[0, 100], [7, 40]]);
  const source: CounterSource = {
    readService: (id, out) => { out.conns = totals.get(id) ?? 0; out.inpkts = out.outpkts = out.inbytes = out.outbytes = 0; },
    readDest: (slot, out) => { out.conns = totals.get(slot) ?? 0; out.inpkts = out.outpkts = out.inbytes = out.outbytes = 0; },
  };
  const book = new StatsBook(source);
  book.track([0], [7]);
  totals.set(0, 300);
  book.tick();
  assert.equal(book.serviceStats(0).counters.conns, 200, 'counted from when the service appeared');
  assert.equal(book.serviceStats(0).rates.cps, 25); // (200 conns / 2 s) / 4
  book.zero([0], [7]);
  assert.equal(book.serviceStats(0).counters.conns, 0);
  assert.equal(book.serviceStats(0).rates.cps, 0);
  totals.set(0, 310);
  assert.equal(book.serviceStats(0).counters.conns, 10);
  assert.equal(book.destStats(7).counters.conns, 0);
});

/** Two workers' counter arrays with made-up totals for every service and real server. */
function twoWorkers(maxServices: number, maxDests: number): WorkerCounters[] {
  const layout = { maxServices, maxDests };
  const workers = [new WorkerCounters(layout), new WorkerCounters(layout)];
  workers.forEach((w, k) => {
    for (let i = 0; i < w.dropBase; i++) w.cells[i] = (i * 7919 + k * 104729) % 100_003 + i * 0.5;
  });
  return workers;
}

function grow(workers: readonly WorkerCounters[], step: number): void {
  workers.forEach((w, k) => {
    for (let i = 0; i < w.dropBase; i++) w.cells[i]! += (i % 13) * step + k * 1_000_000;
  });
}

test('CounterSum: the bulk reads give the figures the reads one by one give', () => {
  const workers = twoWorkers(5, 3000);
  const sum = new CounterSum(() => workers);
  const slots = Int32Array.from([2999, 0, 1500, 7, 7]);
  const out = new Float64Array(slots.length * COUNTER_CELLS).fill(-1);
  sum.readDests(slots, slots.length, out);
  const one = zeroCounters();
  slots.forEach((slot, i) => {
    sum.readDest(slot, one);
    assert.deepEqual(Array.from(out.subarray(i * COUNTER_CELLS, (i + 1) * COUNTER_CELLS)), [one.conns, one.inpkts, one.outpkts, one.inbytes, one.outbytes]);
  });
  const ids = Int32Array.from([4, 1]);
  sum.readServices(ids, 2, out);
  sum.readService(1, one);
  assert.deepEqual(Array.from(out.subarray(5, 10)), [one.conns, one.inpkts, one.outpkts, one.inbytes, one.outbytes]);
});

test('the estimator in slices gives the rates of the estimator at once, with or without bulk reads', () => {
  // Real servers over several blocks of a slice (1024 ids), some untracked, some tracked late.
  const workers = twoWorkers(40, 5000);
  const whole = new StatsBook(new CounterSum(() => workers));
  const sliced = new StatsBook(new CounterSum(() => workers));
  const sum = new CounterSum(() => workers);
  const oneByOne = new StatsBook({ readService: (id, out) => sum.readService(id, out), readDest: (slot, out) => sum.readDest(slot, out) });
  const services = [0, 3, 39];
  const slots = Array.from({ length: 4000 }, (_, i) => (i * 37) % 5000);
  for (const b of [whole, sliced, oneByOne]) b.track(services, slots);
  for (let period = 0; period < 4; period++) {
    grow(workers, period + 1);
    whole.tick();
    for (let s = 0; s < ESTIMATOR_SLICES; s++) sliced.tickSlice(s, ESTIMATOR_SLICES);
    for (let s = 0; s < 3; s++) oneByOne.tickSlice(s, 3);
    if (period === 1) for (const b of [whole, sliced, oneByOne]) b.track([...services, 20], [...slots, 4999]);
  }
  const untracked = Array.from({ length: 5000 }, (_, i) => i).find((i) => i !== 4999 && !slots.includes(i))!;
  for (const slot of [...slots, 4999, untracked]) {
    assert.deepEqual(sliced.destStats(slot), whole.destStats(slot), `real server ${slot}`);
    assert.deepEqual(oneByOne.destStats(slot), whole.destStats(slot), `real server ${slot}, one by one`);
  }
  for (const id of [...services, 20]) assert.deepEqual(sliced.serviceStats(id), whole.serviceStats(id), `service ${id}`);
  assert.notEqual(whole.destStats(slots[5]!).rates.inpps, 0, 'the rates are not all zero');
  assert.deepEqual(sliced.destStats(untracked).rates, { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 }, 'an untracked real server has no rates');
});

test('-Z and newly tracked ids read in bulk give what they give read one by one', () => {
  const workers = twoWorkers(8, 3000);
  const sum = new CounterSum(() => workers);
  const bulk = new StatsBook(sum);
  const single = new StatsBook({ readService: (id, out) => sum.readService(id, out), readDest: (slot, out) => sum.readDest(slot, out) });
  const slots = Array.from({ length: 2500 }, (_, i) => (i * 7) % 3000);
  for (const b of [bulk, single]) b.track([1, 2], slots);
  grow(workers, 1);
  for (const b of [bulk, single]) b.tick();
  grow(workers, 2);
  // -Z of some real servers (one untracked), then more real servers tracked (a restore).
  const zeroed = [...slots.slice(0, 1500), 1];
  for (const b of [bulk, single]) {
    b.zero([2], zeroed);
    b.trackChanges({ services: [], slots: [] }, { services: [5], slots: [1, 2, 4] });
  }
  grow(workers, 3);
  for (const b of [bulk, single]) b.tick();
  for (const slot of [...slots, 1, 2, 4]) assert.deepEqual(bulk.destStats(slot), single.destStats(slot), `real server ${slot}`);
  for (const id of [1, 2, 5]) assert.deepEqual(bulk.serviceStats(id), single.serviceStats(id), `service ${id}`);
  assert.notDeepEqual(bulk.destStats(slots[0]!).counters, bulk.destStats(slots[2000]!).counters, 'zeroed and not zeroed differ');
});

test('uvsadm -Z zeroes every counter and rate of every service and real server, summed over workers; -Z of one service only its own', () => {
  // 120 services x 10 real servers: over a block of the bulk restart (1024 ids), every counter
  // counted in both workers, one real server deleted and one re-added before the -Z.
  const m = new ServiceModel({ maxServices: 128, destCapacity: 1300 });
  const key = (i: number): ServiceConfig => ({ fwmark: 0, af: 4, protocol: 6, addr: 0x0a000000 + i, port: 80, scheduler: 'wlc', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' });
  const rs = (i: number, k: number): DestConfig => ({ af: 4, addr: 0x0b000000 + 16 * i + k, port: 8080, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 });
  for (let i = 0; i < 120; i++) {
    m.addService(key(i));
    for (let k = 0; k < 10; k++) m.addDest(key(i), rs(i, k));
  }
  const workers = twoWorkers(128, 1300);
  const stats = new StatsBook(new CounterSum(() => workers));
  const h = new ControlHandler(m, stats, { version: 'v', connTableSize: 4096, pid: 1 });
  m.deleteDest(key(7), rs(7, 3));
  m.addDest(key(7), rs(7, 12));
  const listed = (): ListedService[] => (h.execute({ cmd: 'list', what: 'all', service: null, format: 0 }) as { services: ListedService[] }).services;
  const everyone = (l: ListedService[]): Array<{ stats: Counters; rates: Rates }> => l.flatMap((s) => [s, ...s.dests]);
  const nothing = { counters: zeroCounters(), rates: rates() };
  grow(workers, 1);
  h.tick();
  grow(workers, 2);
  h.tick();
  assert.equal(everyone(listed()).length, 120 * 11);
  assert.ok(everyone(listed()).every((e) => Object.values(e.stats).every((v) => v > 0) && Object.values(e.rates).some((v) => v > 0)), 'counted and rated before');
  assert.ok(Object.values(stats.totals()).every((v) => v > 0));

  h.execute({ cmd: 'zero', service: null });
  for (const e of everyone(listed())) assert.deepEqual({ counters: e.stats, rates: e.rates }, nothing);
  assert.deepEqual(stats.totals(), zeroCounters(), 'the totals too (ip_vs_zero_all)');

  // Counting goes on from zero: exactly what both workers counted since.
  const before = workers.map((w) => Float64Array.from(w.cells));
  grow(workers, 3);
  const counted = workers.map((w, k) => {
    const d = new WorkerCounters(w.layout);
    d.cells.set(w.cells.map((v, i) => v - before[k]![i]!));
    return d;
  });
  const since = new CounterSum(() => counted);
  const one = zeroCounters();
  for (const s of listed()) {
    since.readService(s.id, one);
    assert.deepEqual(s.stats, one, `service ${s.id}`);
    for (const d of s.dests) {
      since.readDest(d.slot, one);
      assert.deepEqual(d.stats, one, `real server ${d.slot}`);
    }
  }

  // -Z of one service: its counters and its real servers', nobody else's.
  h.execute({ cmd: 'zero', service: key(7) });
  for (const s of listed()) {
    for (const e of [s, ...s.dests]) {
      if (s.id === listed()[7]!.id) assert.deepEqual({ counters: e.stats, rates: e.rates }, nothing);
      else assert.ok(e.stats.conns > 0, `service ${s.id} keeps its counters`);
    }
  }
});
