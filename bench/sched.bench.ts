// Per-decision cost of every IPVS scheduler at 10, 100 and 1000 real servers.
// Targets (issue 2): the kernel's O(1) schedulers — rr, wrr, sh, dh, mh and an lblc cache hit —
// at most 100 ns per decision at 1000 servers; the list-scanning ones are reported only.
import { DestField, DestTable } from '../src/tables/dest-table';
import { SCHEDULER_NAMES, getSchedulerFactory } from '../src/sched';
import type { PacketKey, Scheduler } from '../src/sched/scheduler';
import { runCases, type BenchCase, type BenchOptions, type BenchRow } from './lib';

const SIZES = [10, 100, 1000];
const BATCH = 1000;
const O1 = new Set(['rr', 'wrr', 'sh', 'dh', 'mh', 'lblc']);

function service(name: string, size: number): { sched: Scheduler; dests: DestTable } {
  const dests = new DestTable(size);
  const slots: number[] = [];
  for (let i = 0; i < size; i++) {
    const slot = dests.allocate();
    dests.set(slot, DestField.ADDR, (0x0a000000 + i + 1) | 0);
    dests.set(slot, DestField.PORT, 80);
    // Weights 1..8 and some connections, so weighted schedulers do real work.
    dests.set(slot, DestField.WEIGHT, 1 + (i % 8));
    dests.add(slot, DestField.ACTIVE, i % 5);
    dests.add(slot, DestField.INACTIVE, i % 3);
    slots.push(slot);
  }
  const sched = getSchedulerFactory(name).create(dests, 0, size);
  sched.update(slots);
  return { sched, dests };
}

export async function collect(opts: BenchOptions): Promise<BenchRow[]> {
  const cases: BenchCase[] = [];
  for (const name of SCHEDULER_NAMES) {
    for (const size of SIZES) {
      const { sched } = service(name, size);
      const key: PacketKey = { protocol: 6, saddr: 0xc0a80001, sport: 40000, daddr: 0x0a640001, dport: 80 };
      let counter = 0;
      // lblc/lblcr: 256 destination sites, all cached before timing (the "hit" path).
      const sites = 256;
      for (let i = 0; i < sites; i++) {
        key.daddr = 0x0a640000 + i;
        sched.schedule(key, 0);
      }
      let sink = 0;
      const fn = () => {
        for (let i = 0; i < BATCH; i++) {
          counter = (counter + 1) | 0;
          key.saddr = Math.imul(counter, 2654435761) | 0;
          key.daddr = 0x0a640000 + (counter & (sites - 1));
          sink ^= sched.schedule(key, 0);
        }
        if (sink === 0x7fffffff) console.log('unreachable');
      };
      const caseName = name === 'lblc' || name === 'lblcr' ? `${name} (cache hit) @${size}` : `${name} @${size}`;
      const c: BenchCase = { group: 'sched', name: caseName, opsPerCall: BATCH, fn };
      if (O1.has(name) && size === 1000) c.targetNs = 100;
      cases.push(c);
    }
  }
  return runCases('sched', cases, opts);
}
