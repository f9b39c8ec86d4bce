import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DestTable, DestField, DestFlag } from '../../src/tables/dest-table';

test('allocate hands out free slots and release returns them', () => {
  const t = new DestTable(2);
  const a = t.allocate();
  const b = t.allocate();
  assert.deepEqual([a, b], [0, 1]);
  assert.equal(t.allocate(), -1);
  t.set(a, DestField.ADDR, 0xc0a80164 | 0);
  assert.equal(t.addr(a), 0xc0a80164);
  assert.equal(t.get(a, DestField.FLAGS), DestFlag.IN_USE | DestFlag.AVAILABLE);
  t.release(a);
  assert.equal(t.inUse(a), false);
  assert.equal(t.allocate(), 0);
});

test('a second view over the same buffer sees counter changes', () => {
  const t = new DestTable(4);
  const slot = t.allocate();
  const view = new DestTable(4, t.buffer);
  view.add(slot, DestField.ACTIVE, 3);
  assert.equal(t.load(slot, DestField.ACTIVE), 3);
  assert.throws(() => new DestTable(5, t.buffer), /expected/);
});
