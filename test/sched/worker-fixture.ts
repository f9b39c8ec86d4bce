// Runs in a worker thread for workers.test.ts: attaches a scheduler to the shared state made by the
// control plane (the `attach` path the data-plane workers use) and makes decisions on request.
import { parentPort, workerData } from 'node:worker_threads';
import { DestTable } from '../../src/tables/dest-table';
import { getSchedulerFactory } from '../../src/sched';
import type { PacketKey } from '../../src/sched/scheduler';

export interface FixtureData {
  name: string;
  flags: number;
  capacity: number;
  destBuffer: SharedArrayBuffer;
  shared: SharedArrayBuffer;
}

export type FixtureRequest =
  | { cmd: 'step'; count: number }
  /** Waits until gate[0] becomes 1, then makes `count` decisions as fast as it can. */
  | { cmd: 'burst'; count: number; gate: SharedArrayBuffer };

const data = workerData as FixtureData;
const dests = new DestTable(data.capacity, data.destBuffer);
const scheduler = getSchedulerFactory(data.name).attach(dests, data.flags, data.shared);
const key: PacketKey = { protocol: 6, saddr: 0x0a000001, sport: 40000, daddr: 0x0a000002, dport: 80 };

parentPort!.on('message', (req: FixtureRequest) => {
  if (req.cmd === 'step') {
    const picks: number[] = [];
    for (let i = 0; i < req.count; i++) picks.push(scheduler.schedule(key, 0));
    parentPort!.postMessage(picks);
    return;
  }
  const gate = new Int32Array(req.gate);
  Atomics.wait(gate, 0, 0, 5000);
  const counts = new Map<number, number>();
  for (let i = 0; i < req.count; i++) {
    const slot = scheduler.schedule(key, 0);
    counts.set(slot, (counts.get(slot) ?? 0) + 1);
  }
  parentPort!.postMessage([...counts.entries()]);
});
