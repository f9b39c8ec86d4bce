// wrr sequences worked out by hand from ip_vs_wrr_schedule / ip_vs_wrr_dest_changed (torvalds/linux
// net/netfilter/ipvs/ip_vs_wrr.c). Servers added A, B, C are walked C, B, A (list_add_rcu at the
// head). mw = max weight - (gcd - 1), cw starts at mw and steps down by the gcd after each walk
// to the end of the list; dest_changed puts the mark at the head and keeps cw when it fits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wrrFactory } from '../../src/sched/wrr';
import { Lab, seq } from './helpers';

const cases: { title: string; servers: { name: string; weight: number; overload?: boolean }[]; expected: string }[] = [
  // list C2 B3 A4, gcd 1, mw 4: cw=4 A | cw=3 B A | cw=2 C B A | cw=1 C B A | cw=4 A ...
  { title: 'weights 4/3/2', servers: [{ name: 'A', weight: 4 }, { name: 'B', weight: 3 }, { name: 'C', weight: 2 }], expected: 'A B A C B A C B A A B A' },
  // list B2 A4, gcd 2, mw 3: cw=3 A | cw=1 (last pass) B A | cw=3 A ...
  { title: 'gcd 2 (mw = 4 - 1)', servers: [{ name: 'A', weight: 4 }, { name: 'B', weight: 2 }], expected: 'A B A A B A' },
  // list C1 B0 A2, gcd 1, mw 2: cw=2 A | cw=1 C A | ...
  { title: 'weight 0 is never chosen', servers: [{ name: 'A', weight: 2 }, { name: 'B', weight: 0 }, { name: 'C', weight: 1 }], expected: 'A C A A C A' },
  // list C1 B3(overloaded) A1: cw=3 nothing, cw=2 nothing, cw=1 C A | cw=3.. C A
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
  assert.deepEqual(lab.run(wrr, 4), seq('A B A C')); // mark on C, cw = 2
  lab.set('C', { weight: 4 });
  wrr.update(lab.list('A', 'B', 'C')); // list C4 B3 A4, mw 4, cw stays 2, mark at head
  // cw=2 C B A | cw=1 C B A | cw=4 C A | cw=3 C B A | cw=2 C
  assert.deepEqual(lab.run(wrr, 12), seq('C B A C B A C A C B A C'));
});

test('wrr: cw above the new mw restarts at mw; with gcd > 1 cw rounds to k*gcd + 1', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 6 }, { name: 'B', weight: 3 });
  const wrr = wrrFactory.create(lab.dests, 0, 8);
  wrr.update(lab.list('A', 'B')); // list B3 A6, gcd 3, mw 4; cw=4 A | cw=1 B A | cw=4 ...
  assert.deepEqual(lab.run(wrr, 3), seq('A B A')); // mark on A, cw 1
  lab.set('A', { weight: 2 });
  lab.set('B', { weight: 1 });
  wrr.update(lab.list('A', 'B')); // list B1 A2, gcd 1, mw 2, cw 1 kept, mark at head
  assert.deepEqual(lab.run(wrr, 4), seq('B A A B'));
  lab.set('A', { weight: 8 });
  lab.set('B', { weight: 4 });
  wrr.update(lab.list('A', 'B')); // gcd 4, mw 5; mark on B... reset to head; cw was 1 -> (1/4)*4+1 = 1
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
  for (const n of lab.run(wrr, 1100)) counts.set(n, (counts.get(n) ?? 0) + 1);
  assert.deepEqual(Object.fromEntries(counts), { A: 700, B: 300, C: 100 });
});
