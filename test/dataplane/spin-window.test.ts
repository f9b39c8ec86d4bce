// The adaptive busy-poll window (src/dataplane/spin-window.ts) and the workers' CPU placement under
// fanout 'cpu' (src/dataplane/placement.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpinWindow } from '../../src/dataplane/spin-window';
import { workerCpus } from '../../src/dataplane/placement';

test('a request/response flow at 1 per ms keeps the window over its gap; a slow one gets the fixed window', () => {
  const w = new SpinWindow(200, 2000);
  assert.equal(w.window, 200, 'no turn yet: the fixed window');
  assert.equal(w.turn(1000), 200, 'the first turn has no gap');
  assert.equal(w.turn(1001.1), 1650, '1.1 ms gap → 1.5 × 1100 µs');
  // NAT: the reply comes 150 µs after the request, the next request about 1 ms later; the window
  // must still cover the long gap.
  assert.equal(w.turn(1001.25), 1650);
  assert.equal(w.turn(1002.3), 1650);
  // Frames 5 ms apart: no window could bridge them; once the short gaps age out, the fixed window.
  let t = 1002.3;
  for (let i = 0; i < 8; i++) w.turn((t += 5));
  assert.equal(w.window, 200);
});

test('the window stays within its bounds', () => {
  const w = new SpinWindow(200, 2000);
  w.turn(0);
  assert.equal(w.turn(0.01), 200, 'a 10 µs gap: the minimum');
  assert.equal(w.turn(1.33), 1980, '1320 µs × 1.5 fits under the maximum');
  assert.equal(w.turn(2.7), 1980, 'a 1370 µs gap counts as none (× 1.5 > max): the longest remembered stays');
  const fixed = new SpinWindow(200, 0);
  fixed.turn(0);
  assert.equal(fixed.turn(1), 200, 'max ≤ min: the fixed window');
});

test("fanout 'cpu': worker i pins to the allowed CPUs c with c mod N = i", () => {
  assert.deepEqual(workerCpus(0, 2, [0, 1]), [0]);
  assert.deepEqual(workerCpus(1, 2, [0, 1]), [1]);
  assert.deepEqual(workerCpus(1, 2, [0, 1, 2, 3]), [1, 3]);
  assert.deepEqual(workerCpus(0, 2, [1, 3]), [], 'no allowed CPU maps to worker 0: it floats');
  assert.deepEqual(workerCpus(0, 1, [0, 1]), [], 'one worker takes every CPU: not pinned');
});

test('traffic is sustained after 8 turns in a row, each begun within 100 µs of the previous one\'s end', () => {
  const w = new SpinWindow(200, 5000);
  let t = 0;
  // One turn: it begins, drains for `work` ms, ends.
  const turn = (waitMs: number, workMs: number): boolean => {
    w.began((t += waitMs));
    w.turn((t += workMs));
    return w.sustained;
  };
  turn(0, 0.01);
  for (let i = 0; i < 7; i++) assert.equal(turn(0.05, 0.01), false, `${i + 1} short waits: not yet`);
  assert.equal(turn(0.099, 0.01), true, 'the 8th wait of 99 µs: sustained');
  assert.equal(turn(0.101, 0.01), false, 'a wait over 100 µs ends it');
  // A saturated worker: turns of 2 ms each, the next frames already waiting. The gaps between turn
  // starts are long, the waits none: sustained.
  for (let i = 0; i < 8; i++) turn(0.002, 2);
  assert.equal(w.sustained, true);
  // Request/response at 1 per ms (NAT: the reply 60 µs after the request) is never sustained.
  const rr = new SpinWindow(200, 5000);
  let u = 0;
  for (let i = 0; i < 50; i++) {
    rr.began((u += 0.06));
    rr.turn((u += 0.02));
    assert.equal(rr.sustained, false);
    rr.began((u += 0.9));
    rr.turn((u += 0.02));
    assert.equal(rr.sustained, false);
  }
});
