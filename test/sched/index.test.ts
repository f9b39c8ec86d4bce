// The registry: every ipvsadm scheduler name resolves, unknown names fail with the list, and
// every scheduler honours the common contract (no destination -> -1, attach shares the state,
// schedule allocates nothing measurable).
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PerformanceObserver } from 'node:perf_hooks';
import assert from 'node:assert/strict';
import { DEFAULT_SCHEDULER, SCHEDULER_NAMES, UnknownSchedulerError, getSchedulerFactory } from '../../src/sched';
import { Lab, packetKey } from './helpers';

test('registry knows the 14 IPVS schedulers', () => {
  assert.deepEqual([...SCHEDULER_NAMES].sort(), ['dh', 'fo', 'lblc', 'lblcr', 'lc', 'mh', 'nq', 'ovf', 'rr', 'sed', 'sh', 'twos', 'wlc', 'wrr']);
  assert.equal(DEFAULT_SCHEDULER, 'wlc');
  for (const name of SCHEDULER_NAMES) assert.equal(getSchedulerFactory(name).name, name);
});

test('unknown scheduler: a clear error listing the known ones', () => {
  assert.throws(() => getSchedulerFactory('wrrr'), (err: unknown) => {
    assert.ok(err instanceof UnknownSchedulerError);
    assert.equal(err.code, 'UVS_ERR_UNKNOWN_SCHEDULER');
    assert.match(err.message, /unknown scheduler "wrrr"; known schedulers: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos/);
    return true;
  });
});

for (const name of SCHEDULER_NAMES) {
  test(`${name}: common contract`, () => {
    const lab = new Lab();
    lab.add({ name: 'A', weight: 2 }, { name: 'B', weight: 1 }, { name: 'Q', weight: 0 }, { name: 'O', weight: 9, overload: true });
    const sched = getSchedulerFactory(name).create(lab.dests, 0, 8);
    assert.equal(sched.name, name);
    const key = packetKey();
    assert.equal(sched.schedule(key, 0), -1, 'before any update');
    sched.update(lab.list('A', 'B', 'Q', 'O'));
    const worker = getSchedulerFactory(name).attach(lab.dests, 0, sched.shared);
    for (let i = 0; i < 200; i++) {
      key.saddr = 0x0a000000 + i * 977;
      key.daddr = 0x0b000000 + (i % 7);
      for (const s of [sched, worker]) {
        const pick = lab.name(s.schedule(key, i));
        // sh/dh/mh buckets can land on Q or O: no destination then (no fallback flag).
        assert.ok(pick === 'A' || pick === 'B' || (pick === '-' && ['sh', 'dh', 'mh'].includes(name)), `${name} picked ${pick}`);
      }
    }
    lab.set('A', { weight: 0 });
    lab.set('B', { overload: true });
    sched.update(lab.list('A', 'B', 'Q', 'O'));
    for (let i = 0; i < 20; i++) {
      const pick = lab.name(worker.schedule(key, 1000 + i));
      // ip_vs_lblc_schedule checks a cached server for AVAILABLE, weight > 0 and its own
      // "overloaded" rule, not the OVERLOAD flag: a cached B is still used by lblc.
      if (name === 'lblc' && pick === 'B') continue;
      assert.equal(pick, '-', 'quiesced and overloaded only');
    }
  });

  test(`${name}: schedule() allocates nothing (no garbage collection over 1M decisions)`, async () => {
    const lab = new Lab();
    lab.add({ name: 'A', weight: 3 }, { name: 'B', weight: 2 }, { name: 'C', weight: 1 });
    const sched = getSchedulerFactory(name).create(lab.dests, 0, 8);
    sched.update(lab.list('A', 'B', 'C'));
    const key = packetKey();
    const run = (n: number) => {
      for (let i = 0; i < n; i++) {
        key.saddr = i;
        key.daddr = 0x0a000000 + (i & 63); // lblc/lblcr: a few sites, hits after the first round
        sched.schedule(key, 0);
      }
    };
    run(100_000); // warm up and let the optimizer settle
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    let collections = 0;
    const observer = new PerformanceObserver((list) => {
      collections += list.getEntries().length;
    });
    observer.observe({ entryTypes: ['gc'] });
    // 1M decisions allocating even 16 bytes each would fill the young generation several times.
    run(1_000_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    observer.disconnect();
    assert.equal(collections, 0, 'garbage collections while scheduling');
  });
}
