// rr and wrr attached in worker threads over the same SharedArrayBuffer behave as ONE director:
// interleaved decisions of the control-plane instance and a worker reproduce the single-instance
// sequence (also across an update), and two workers deciding at full speed at the same time split
// the connections exactly by weight (no lost or doubled cursor step).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { getSchedulerFactory } from '../../src/sched';
import type { Scheduler } from '../../src/sched/scheduler';
import type { FixtureData, FixtureRequest } from './worker-fixture';
import { Lab, packetKey } from './helpers';

const workers: Worker[] = [];
after(async () => {
  await Promise.all(workers.map((w) => w.terminate()));
});

function startWorker(lab: Lab, sched: Scheduler): Worker {
  const data: FixtureData = { name: sched.name, flags: 0, capacity: lab.dests.capacity, destBuffer: lab.dests.buffer, shared: sched.shared };
  const worker = new Worker(join(__dirname, 'worker-fixture.js'), { workerData: data });
  workers.push(worker);
  return worker;
}

async function ask<T>(worker: Worker, req: FixtureRequest): Promise<T> {
  worker.postMessage(req);
  const [reply] = (await Promise.race([
    once(worker, 'message'),
    new Promise((_, reject) => setTimeout(() => reject(new Error('worker did not answer within 10 s')), 10_000).unref()),
  ])) as [T];
  return reply;
}

function twinLabs(servers: { name: string; weight: number }[]) {
  const lab = new Lab();
  const ref = new Lab();
  lab.add(...servers);
  ref.add(...servers);
  return { lab, ref };
}

for (const name of ['rr', 'wrr']) {
  test(`${name}: control plane and a worker interleaved = one director's sequence, across an update`, async () => {
    const servers = [{ name: 'A', weight: 4 }, { name: 'B', weight: 3 }, { name: 'C', weight: 2 }, { name: 'D', weight: 1 }];
    const { lab, ref } = twinLabs(servers);
    const factory = getSchedulerFactory(name);
    const cp = factory.create(lab.dests, 0, 8);
    const single = factory.create(ref.dests, 0, 8);
    cp.update(lab.list('A', 'B', 'C', 'D'));
    single.update(ref.list('A', 'B', 'C', 'D'));
    const worker = startWorker(lab, cp);
    const key = packetKey();
    const combined: string[] = [];
    const expected: string[] = [];
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 15; i++) {
        if (i % 3 === 2) combined.push(lab.name(cp.schedule(key, 0)));
        else combined.push(...(await ask<number[]>(worker, { cmd: 'step', count: 1 })).map((s) => lab.name(s)));
        expected.push(ref.name(single.schedule(key, 0)));
      }
      // Mid-stream: C changes weight and B leaves, on both directors.
      for (const l of [lab, ref]) l.set('C', { weight: 5 });
      cp.update(lab.list('A', 'C', 'D'));
      single.update(ref.list('A', 'C', 'D'));
    }
    assert.deepEqual(combined, expected);
  });

  test(`${name}: two workers at full speed split connections exactly by weight`, async () => {
    const { lab } = twinLabs([{ name: 'A', weight: 3 }, { name: 'B', weight: 2 }, { name: 'C', weight: 1 }]);
    const sched = getSchedulerFactory(name).create(lab.dests, 0, 8);
    sched.update(lab.list('A', 'B', 'C'));
    const w1 = startWorker(lab, sched);
    const w2 = startWorker(lab, sched);
    await ask<number[]>(w1, { cmd: 'step', count: 0 });
    await ask<number[]>(w2, { cmd: 'step', count: 0 });
    const gate = new SharedArrayBuffer(4);
    const per = 60_000;
    const replies = Promise.all([ask<[number, number][]>(w1, { cmd: 'burst', count: per, gate }), ask<[number, number][]>(w2, { cmd: 'burst', count: per, gate })]);
    Atomics.store(new Int32Array(gate), 0, 1);
    Atomics.notify(new Int32Array(gate), 0);
    const totals = new Map<string, number>();
    for (const reply of await replies) for (const [slot, n] of reply) totals.set(lab.name(slot), (totals.get(lab.name(slot)) ?? 0) + n);
    const want = name === 'rr' ? { A: 40_000, B: 40_000, C: 40_000 } : { A: 60_000, B: 40_000, C: 20_000 };
    assert.deepEqual(Object.fromEntries([...totals.entries()].sort()), want);
  });
}

for (const name of ['sh', 'mh', 'dh', 'lblc', 'wlc']) {
  test(`${name}: a worker attached over the same buffer follows the control plane's updates`, async () => {
    const lab = new Lab();
    lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 2 }, { name: 'C', weight: 3 });
    const cp = getSchedulerFactory(name).create(lab.dests, 0, 8);
    cp.update(lab.list('A', 'B', 'C'));
    const worker = startWorker(lab, cp);
    // The fixture's key: saddr 10.0.0.1, daddr 10.0.0.2.
    const key = { protocol: 6, saddr: 0x0a000001, sport: 40000, daddr: 0x0a000002, dport: 80 };
    const [first] = await ask<number[]>(worker, { cmd: 'step', count: 1 });
    assert.equal(first, cp.schedule(key, 0));
    assert.notEqual(first, -1);
    // The chosen server leaves; the worker must see the new table/list at once.
    const gone = lab.name(first);
    cp.update(lab.list(...['A', 'B', 'C'].filter((n) => n !== gone)));
    const [second] = await ask<number[]>(worker, { cmd: 'step', count: 1 });
    assert.notEqual(lab.name(second!), gone);
    assert.equal(second, cp.schedule(key, 0));
  });
}
