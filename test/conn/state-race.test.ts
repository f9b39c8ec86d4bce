// Two worker threads move the same NAT connections through TCP states at once, one with the
// client's packets and one with the real server's replies. The entry lock must keep each
// connection's INACTIVE flag and its real server's ACTIVE/INACTIVE counters in step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DestField, DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { ConnTable, EntryCell, StateFlag } from '../../src/conn/table';
import { TcpState } from '../../src/conn/tcp-state';
import { addDest, ip } from './helpers';

function runWorker(data: Record<string, unknown>): Promise<{ transitions: number; misses: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(join(__dirname, 'state-worker.js'), { workerData: data });
    const timer = setTimeout(() => {
      void w.terminate();
      reject(new Error('state worker did not finish within 90 s'));
    }, 90_000);
    w.once('message', (m: { transitions: number; misses: number }) => {
      clearTimeout(timer);
      resolve(m);
    });
    w.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

test('concurrent state transitions from both directions keep ACTIVE/INACTIVE exact', async () => {
  const dests = new DestTable(2);
  const slot = addDest(dests, '10.0.1.1', 8080, ForwardMethod.MASQ);
  const table = new ConnTable(1024, dests, { workerId: 0 });
  const entries = 4;
  const client = ip('192.168.50.1') | 0;
  const vip = ip('10.0.0.100') | 0;
  const daddr = ip('10.0.1.1') | 0;
  for (let i = 0; i < entries; i++) {
    assert.ok(table.insert(6, client, 10000 + i, vip, 80, daddr, 8080, slot, ForwardMethod.MASQ, 0, StateFlag.INACTIVE, 1e9, 0, -1) >= 0);
  }
  const common = { buffer: table.buffer, destBuffer: dests.buffer, capacity: 1024, destCapacity: 2, entries, rounds: 250_000, syncBuffer: new SharedArrayBuffer(4), client, vip, daddr, dport: 8080 };
  const [a, b] = await Promise.all([
    runWorker({ ...common, workerId: 1, output: false, seed: 12345 }),
    runWorker({ ...common, workerId: 2, output: true, seed: 67890 }),
  ]);
  assert.equal(a.misses + b.misses, 0);
  assert.ok(a.transitions >= 1_000_000 && b.transitions >= 1_000_000);
  let active = 0;
  let established = 0;
  for (const row of table.list(0)) {
    const cell = table.field(row.index, EntryCell.STATE);
    const isActive = (cell & StateFlag.INACTIVE) === 0;
    assert.equal(isActive, (cell & StateFlag.STATE_MASK) === TcpState.ESTABLISHED, `entry ${row.index}: active iff ESTABLISHED`);
    if (isActive) active++;
    if ((cell & StateFlag.STATE_MASK) === TcpState.ESTABLISHED) established++;
  }
  assert.equal(dests.load(slot, DestField.ACTIVE), active);
  assert.equal(dests.load(slot, DestField.INACTIVE), entries - active);
  assert.equal(active, established);
});
