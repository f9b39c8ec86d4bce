// lc, wlc, sed, nq, fo, ovf: expected picks worked out by hand from ip_vs_lc.c, ip_vs_wlc.c,
// ip_vs_sed.c, ip_vs_nq.c, ip_vs_fo.c, ip_vs_ovf.c (torvalds/linux). Servers added A, B, C are
// walked C, B, A (list_add_rcu at the head), which decides ties. overhead = active*256 + inactive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lcFactory } from '../../src/sched/lc';
import { wlcFactory } from '../../src/sched/wlc';
import { sedFactory } from '../../src/sched/sed';
import { nqFactory } from '../../src/sched/nq';
import { foFactory } from '../../src/sched/fo';
import { ovfFactory } from '../../src/sched/ovf';
import type { SchedulerFactory } from '../../src/sched/scheduler';
import { Lab, seq, type ServerSpec } from './helpers';

interface Case {
  factory: SchedulerFactory;
  title: string;
  servers: ServerSpec[];
  /** Each pick gains one active connection before the next decision. */
  connect?: boolean;
  expected: string;
}

const S = (name: string, weight: number, active = 0, inactive = 0, overload = false): ServerSpec => ({ name, weight, active, inactive, overload });

const cases: Case[] = [
  // lc: C=10, B=10, A=256: the first of the smallest (C) wins the tie.
  { factory: lcFactory, title: 'tie keeps the earlier (newest) server', servers: [S('A', 1, 1), S('B', 1, 0, 10), S('C', 1, 0, 10)], expected: 'C' },
  { factory: lcFactory, title: 'OVERLOAD and weight 0 skipped', servers: [S('A', 1, 3), S('B', 0), S('C', 1, 0, 0, true)], expected: 'A' },
  { factory: lcFactory, title: 'weights ignored, connections alternate', servers: [S('A', 5), S('B', 1)], connect: true, expected: 'B A B A' },
  { factory: lcFactory, title: 'none available', servers: [S('A', 0), S('B', 1, 0, 0, true)], expected: '-' },
  // wlc: B w2, A w1 from zero: B | 256*1 > 0*2 A | 256 > 512? B | 512 > 512? B | 768 > 512 A | 768 > 1024? B
  { factory: wlcFactory, title: 'weights 2:1 from idle', servers: [S('A', 1), S('B', 2)], connect: true, expected: 'B A B B A B' },
  // C 512/2, B 1024/4, A 256/1: all 256 per weight unit, the first (C) stays.
  { factory: wlcFactory, title: 'equal load per weight keeps the first', servers: [S('A', 1, 1), S('B', 4, 4), S('C', 2, 2)], expected: 'C' },
  { factory: wlcFactory, title: 'lower load per weight wins', servers: [S('A', 1, 1), S('B', 4, 3), S('C', 2, 2)], expected: 'B' },
  // The first candidate must have weight > 0; later weight-0 servers never win (0 > x is false).
  { factory: wlcFactory, title: 'quiesced idle server is not chosen', servers: [S('A', 1, 5), S('B', 0), S('C', 0)], expected: 'A' },
  { factory: wlcFactory, title: 'inactive connections count 1/256', servers: [S('A', 1, 0, 300), S('B', 1, 1, 0)], expected: 'B' },
  // sed: (active+1)/weight: C 3/2, B 5/4, A 2/1 -> B
  { factory: sedFactory, title: 'shortest expected delay', servers: [S('A', 1, 1), S('B', 4, 4), S('C', 2, 2)], expected: 'B' },
  // sed ignores inactive connections: A (0+1)/1 vs B (0+1)/1 tie -> B (first in list)
  { factory: sedFactory, title: 'inactive ignored, tie keeps first', servers: [S('A', 1, 0, 99), S('B', 1, 0, 0)], expected: 'B' },
  // sed from idle, weights A1 B3: B 1/3 | A 1/1 vs B 2/3 -> B | B 3/3 vs A 1/1: 3*1 > 1*3? no B... 
  // walk: least=B(loh 1,w3), A: 1*1 > 1*3? no -> B; B(2): A: 2*1 > 1*3? no -> B; B(3): 3 > 3? no -> B; B(4): 4 > 3 -> A
  { factory: sedFactory, title: 'sed from idle sends the first jobs to the big server', servers: [S('A', 1), S('B', 3)], connect: true, expected: 'B B B A' },
  // nq: an idle server is taken at once even if slow; else sed.
  { factory: nqFactory, title: 'idle server first', servers: [S('A', 1, 0), S('B', 100, 5)], expected: 'A' },
  { factory: nqFactory, title: 'no idle server: sed choice', servers: [S('A', 1, 1), S('B', 4, 4), S('C', 2, 2)], expected: 'B' },
  { factory: nqFactory, title: 'idle but quiesced or overloaded is skipped', servers: [S('A', 1, 2), S('B', 0), S('C', 5, 0, 0, true)], expected: 'A' },
  // fo: highest weight, first among equals (C before A in list order).
  { factory: foFactory, title: 'highest weight', servers: [S('A', 3), S('B', 5), S('C', 1)], expected: 'B B' },
  { factory: foFactory, title: 'equal weights keep the first', servers: [S('A', 5), S('B', 1), S('C', 5)], expected: 'C' },
  { factory: foFactory, title: 'overloaded top fails over', servers: [S('A', 3), S('B', 5, 0, 0, true)], expected: 'A' },
  { factory: foFactory, title: 'weight 0 only: none', servers: [S('A', 0)], expected: '-' },
  // ovf: highest weight while active <= weight, then the next.
  { factory: ovfFactory, title: 'fills the heaviest then overflows', servers: [S('A', 2), S('B', 1)], connect: true, expected: 'A A A B B -' },
  { factory: ovfFactory, title: 'equal weights keep the first', servers: [S('A', 2), S('B', 2)], expected: 'B' },
];

for (const c of cases) {
  test(`${c.factory.name}: ${c.title}`, () => {
    const lab = new Lab();
    lab.add(...c.servers);
    const sched = c.factory.create(lab.dests, 0, 8);
    sched.update(c.servers.map((s) => lab.slot(s.name)));
    const expected = seq(c.expected);
    assert.deepEqual(lab.run(sched, expected.length, { connect: c.connect ?? false }), expected);
  });
}

for (const factory of [lcFactory, wlcFactory, sedFactory, nqFactory, foFactory, ovfFactory]) {
  test(`${factory.name}: empty service and weight changes through update`, () => {
    const lab = new Lab();
    const sched = factory.create(lab.dests, 0, 4);
    assert.deepEqual(lab.run(sched, 1), ['-']);
    lab.add(S('A', 1), S('B', 1));
    sched.update(lab.list('A', 'B'));
    assert.notEqual(lab.run(sched, 1)[0], '-');
    lab.set('A', { weight: 0 });
    lab.set('B', { weight: 0 });
    sched.update(lab.list('A', 'B'));
    assert.deepEqual(lab.run(sched, 1), ['-']);
    sched.update([]);
    assert.deepEqual(lab.run(sched, 1), ['-']);
  });
}
