import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CounterSum, WorkerCounters } from '../../src/dataplane/counters';
import { StatsBook } from '../../src/service/stats';

test('node_ipvs_*_total follow the kernel\'s tot_stats: every service summed over workers, removed ones kept, -Z of all zeroes', () => {
  const layout = { maxServices: 4, maxDests: 4 };
  const w0 = new WorkerCounters(layout);
  const w1 = new WorkerCounters(layout);
  const book = new StatsBook();
  book.setSource(new CounterSum(() => [w0, w1]));
  w0.countConn(0, 0);
  w0.countIn(0, 0, 100);
  w1.countIn(3, 2, 60);
  w1.countOut(3, 2, 1500);
  assert.deepEqual(book.totals(), { conns: 1, inpkts: 2, outpkts: 1, inbytes: 160, outbytes: 1500 });
  // Service 3 removed from the table: its cells stay, so the totals never go down.
  book.trackChanges({ services: [3], slots: [2] }, { services: [], slots: [] });
  assert.equal(book.totals().inbytes, 160);
  book.zeroTotals();
  assert.deepEqual(book.totals(), { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 });
  w0.countIn(1, 1, 40);
  assert.deepEqual(book.totals(), { conns: 0, inpkts: 1, outpkts: 0, inbytes: 40, outbytes: 0 });
});
