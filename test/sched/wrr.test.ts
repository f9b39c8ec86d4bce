// wrr sequences worked out by hand from ip_vs_wrr_schedule / ip_vs_wrr_dest_changed (torvalds/linux
// net/netfilter/ipvs/ip_vs_wrr.c). Servers added A, B, C are walked C, B, A (list_add_rcu at the
// head). mw = max weight - (gcd - 1); cw steps down by the gcd after each walk to the end of the
// list and restarts at mw. dest_changed runs once per added server (the kernel never batches):
// it puts the mark at the head, sets cw to mw when cw is 0 or above mw, rounds it to k*gcd + 1
// when gcd > 1, else keeps it — so servers added one by one start the sequence at cw = 1.
// E.g. A4, B3, C2: +A di 4 mw 1 cw 0->1; +B di 1 mw 4 cw 1; +C cw 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wrrFactory } from '../../src/sched/wrr';
import { Lab, seq } from './helpers';

const cases: { title: string; servers: { name: string; weight: number; overload?: boolean }[]; expected: string }[] = [
  // list C2 B3 A4, cw 1: C B A | cw=4 A | cw=3 B A | cw=2 C B A | cw=1 C B A | cw=4 A
  { title: 'weights 4/3/2', servers: [{ name: 'A', weight: 4 }, { name: 'B', weight: 3 }, { name: 'C', weight: 2 }], expected: 'C B A A B A C B A C B A A' },
  // +A di 4 mw 1 cw 1; +B di 2 mw 3, cw (1/2)*2+1 = 1. list B2 A4: cw=1 B A | cw=3 A | cw=1 B A
  { title: 'gcd 2 (mw = 4 - 1)', servers: [{ name: 'A', weight: 4 }, { name: 'B', weight: 2 }], expected: 'B A A B A A' },
  // cw 1 after the adds; list C1 B0 A2: cw=1 C A | cw=2 A | cw=1 C A
  { title: 'weight 0 is never chosen', servers: [{ name: 'A', weight: 2 }, { name: 'B', weight: 0 }, { name: 'C', weight: 1 }], expected: 'C A A C A A' },
  // list C1 B3(overloaded) A1, cw 1: C A | cw=3 nothing, 2 nothing, cw=1 (last pass) C A
  { title: 'OVERLOAD skipped', servers: [{ name: 'A', weight: 1 }, { name: 'B', weight: 3, overload: true }, { name: 'C', weight: 1 }], expected: 'C A C A' },
  { title: 'all weights 0: none', servers: [{ name: 'A', weight: 0 }, { name: 'B', weight: 0 }], expected: '- -' },
  { title: 'all overloaded: none', servers: [{ name: 'A', weight: 2, overload: true }, { name: 'B', weight: 1, overload: true }], expected: '- - -' },
  { title: 'equal weights are plain round robin', servers: [{ name: 'A', weight: 5 }, { name: 'B', weight: 5 }, { name: 'C', weight: 5 }], expected: 'C B A C B A' },
];
for (const c of cases) {
  test(`wrr: ${c.title}`, () => {
    const lab = new Lab();
    lab.add(...c.servers);
    const wrr = wrrFactory.create(lab.dests, 0, 8);
    wrr.update(c.servers.map((s) => lab.slot(s.name)));
    const expected = seq(c.expected);
    assert.deepEqual(lab.run(wrr, expected.length), expected);
  });
}

test('wrr: a weight change resets the mark to the head and keeps cw (dest_changed)', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 4 }, { name: 'B', weight: 3 }, { name: 'C', weight: 2 });
  const wrr = wrrFactory.create(lab.dests, 0, 8);
  wrr.update(lab.list('A', 'B', 'C'));
  assert.deepEqual(lab.run(wrr, 6), seq('C B A A B A')); // mark on A, cw = 3
  lab.set('C', { weight: 4 });
  wrr.update(lab.list('A', 'B', 'C')); // list C4 B3 A4, mw 4, cw stays 3, mark at head
  // cw=3 C B A | cw=2 C B A | cw=1 C B A | cw=4 C A | cw=3 C
  assert.deepEqual(lab.run(wrr, 12), seq('C B A C B A C B A C A C'));
});

test('wrr: cw above the new mw restarts at mw; with gcd > 1 cw rounds to k*gcd + 1', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 6 }, { name: 'B', weight: 3 });
  const wrr = wrrFactory.create(lab.dests, 0, 8);
  wrr.update(lab.list('A', 'B')); // +A cw 1; +B gcd 3, mw 4, cw (1/3)*3+1 = 1. list B3 A6
  assert.deepEqual(lab.run(wrr, 3), seq('B A A')); // cw=1 B A | cw=4 A: mark on A, cw 4
  lab.set('A', { weight: 2 });
  lab.set('B', { weight: 1 });
  wrr.update(lab.list('A', 'B')); // list B1 A2, gcd 1, mw 2: cw 4 > mw -> 2, mark at head
  assert.deepEqual(lab.run(wrr, 4), seq('A B A A')); // cw=2 A | cw=1 B A | cw=2 A: cw 2
  lab.set('A', { weight: 8 });
  lab.set('B', { weight: 4 });
  wrr.update(lab.list('A', 'B')); // gcd 4, mw 5; cw 2 -> (2/4)*4+1 = 1, mark at head
  // cw=1 (last pass) B A | cw=5 A | cw=1 B A
  assert.deepEqual(lab.run(wrr, 5), seq('B A A B A'));
});

test('wrr: weights over 65535 are refused', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 70000 });
  const wrr = wrrFactory.create(lab.dests, 0, 8);
  assert.throws(() => wrr.update(lab.list('A')), /outside ipvsadm's 0\.\.65535/);
});

test('wrr: over a long run each server gets its weight share', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 7 }, { name: 'B', weight: 3 }, { name: 'C', weight: 1 }, { name: 'D', weight: 0 });
  const wrr = wrrFactory.create(lab.dests, 0, 8);
  wrr.update(lab.list('A', 'B', 'C', 'D'));
  const counts = new Map<string, number>();
  // The adds leave cw at 1: one pass C B A, then 100 cycles of A7 B3 C1.
  for (const n of lab.run(wrr, 1103)) counts.set(n, (counts.get(n) ?? 0) + 1);
  assert.deepEqual(Object.fromEntries(counts), { A: 701, B: 301, C: 101 });
});

test('wrr: servers added in one update start like ipvsadm adding them one by one', () => {
  // Kernel, A4 then B3 (two ipvsadm -a): +A di 4 mw 1 cw 1; +B di 1 mw 4 cw 1.
  // list B3 A4: cw=1 B A | cw=4 A | cw=3 B A | cw=2 B A | cw=1 B A
  const batch = new Lab();
  batch.add({ name: 'A', weight: 4 }, { name: 'B', weight: 3 });
  const one = wrrFactory.create(batch.dests, 0, 8);
  one.update(batch.list('A', 'B'));
  const step = new Lab();
  step.add({ name: 'A', weight: 4 }, { name: 'B', weight: 3 });
  const two = wrrFactory.create(step.dests, 0, 8);
  two.update(step.list('A'));
  two.update(step.list('A', 'B'));
  const expected = seq('B A A B A B A B A');
  assert.deepEqual(batch.run(one, expected.length), expected);
  assert.deepEqual(step.run(two, expected.length), expected);
});
