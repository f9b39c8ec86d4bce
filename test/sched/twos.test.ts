// twos: worked out by hand from ip_vs_twos_schedule (torvalds/linux net/netfilter/ipvs/ip_vs_twos.c)
// with a scripted random source. Servers A3, B2, C1 are walked C, B, A; total = 6, so the two
// draws are taken mod 7.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeTwosFactory } from '../../src/sched/twos';
import { Lab } from './helpers';

function scripted(values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error('scripted random source exhausted');
    return values[i++]!;
  };
}

test('twos: the less loaded (per weight) of two weighted draws', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 3 }, { name: 'B', weight: 2 }, { name: 'C', weight: 1, active: 1 });
  // r1 = 0: C at once (0 - 1 <= 0). r2 = 5: C 4, B 2, A -1 -> A. 3 * 256 (C) > 1 * 0 (A) -> A.
  // r1 = 7 % 7 = 0 -> C, r2 = 2: C 1, B -1 -> B; 2 * 256 > 1 * 0 -> B.
  // r1 = 6: C 5, B 3, A 0 -> A; r2 = 1: C 0 -> C; w2*oh1 = 1*0 > 3*256? no -> A.
  const twos = makeTwosFactory(scripted([0, 5, 7, 2, 6, 1])).create(lab.dests, 0, 8);
  twos.update(lab.list('A', 'B', 'C'));
  assert.deepEqual(lab.run(twos, 3), ['A', 'B', 'A']);
});

test('twos: equal draws, overloaded and quiesced skipped, none available', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 3 }, { name: 'B', weight: 0 }, { name: 'C', weight: 4, overload: true });
  const twos = makeTwosFactory(scripted([1, 3, 0, 0])).create(lab.dests, 0, 8);
  twos.update(lab.list('A', 'B', 'C'));
  assert.deepEqual(lab.run(twos, 2), ['A', 'A']);
  lab.set('A', { weight: 0 });
  assert.deepEqual(lab.run(twos, 1), ['-']);
});

test('twos: with the default random source the picks follow the weights', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 3 });
  const twos = makeTwosFactory().create(lab.dests, 0, 8);
  twos.update(lab.list('A', 'B'));
  const picks = lab.run(twos, 4000);
  const b = picks.filter((p) => p === 'B').length;
  // Without connections both draws tie on overhead 0, so choice1 wins. The draw is u32 % (4 + 1)
  // walked B(3) then A(1): values 0..3 pick B, only 4 picks A — the kernel's "+1" gives B 4/5.
  assert.ok(b > 3050 && b < 3350, `B picked ${b} of 4000`);
});
