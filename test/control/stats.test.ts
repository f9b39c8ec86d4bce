// IPVS's rate estimator (ip_vs_est.c), checked against the kernel's integer arithmetic by hand.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Estimator, StatsBook } from '../../src/service/stats';
import type { CounterSource, Counters, Rates } from '../../src/service/stats';

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
