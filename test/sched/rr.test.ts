// rr sequences worked out by hand from ip_vs_rr_schedule / ip_vs_rr_del_dest (torvalds/linux
// net/netfilter/ipvs/ip_vs_rr.c): IPVS adds real servers at the head of its list, so servers added
// A, B, C are walked C, B, A; the cursor continues after the last pick, skipping OVERLOAD and
// weight 0, and a removed entry hands the cursor to its predecessor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rrFactory } from '../../src/sched/rr';
import { Lab, seq } from './helpers';

test('rr walks the list newest first and wraps', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 }, { name: 'C', weight: 1 });
  const rr = rrFactory.create(lab.dests, 0, 8);
  rr.update(lab.list('A', 'B', 'C'));
  assert.deepEqual(lab.run(rr, 7), seq('C B A C B A C'));
});

const cases: { title: string; servers: { name: string; weight: number; overload?: boolean }[]; expected: string }[] = [
  { title: 'weight 0 is quiesced', servers: [{ name: 'A', weight: 1 }, { name: 'B', weight: 0 }, { name: 'C', weight: 5 }], expected: 'C A C A' },
  { title: 'OVERLOAD is skipped', servers: [{ name: 'A', weight: 1, overload: true }, { name: 'B', weight: 1 }, { name: 'C', weight: 1 }], expected: 'C B C B' },
  { title: 'weights do not matter beyond > 0', servers: [{ name: 'A', weight: 100 }, { name: 'B', weight: 1 }], expected: 'B A B A' },
  { title: 'all quiesced: none', servers: [{ name: 'A', weight: 0 }, { name: 'B', weight: 0 }], expected: '- - -' },
];
for (const c of cases) {
  test(`rr: ${c.title}`, () => {
    const lab = new Lab();
    lab.add(...c.servers);
    const rr = rrFactory.create(lab.dests, 0, 8);
    rr.update(c.servers.map((s) => lab.slot(s.name)));
    const expected = seq(c.expected);
    assert.deepEqual(lab.run(rr, expected.length), expected);
  });
}

test('rr: empty service gives -1', () => {
  const lab = new Lab();
  const rr = rrFactory.create(lab.dests, 0, 4);
  assert.equal(rr.schedule({ protocol: 6, saddr: 1, sport: 1, daddr: 2, dport: 80 }, 0), -1);
  rr.update([]);
  assert.equal(rr.schedule({ protocol: 6, saddr: 1, sport: 1, daddr: 2, dport: 80 }, 0), -1);
});

test('rr: a failed decision leaves the cursor where it was', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 }, { name: 'C', weight: 1 });
  const rr = rrFactory.create(lab.dests, 0, 8);
  rr.update(lab.list('A', 'B', 'C'));
  assert.deepEqual(lab.run(rr, 1), ['C']);
  for (const n of ['A', 'B', 'C']) lab.set(n, { overload: true });
  assert.deepEqual(lab.run(rr, 2), ['-', '-']);
  for (const n of ['A', 'B', 'C']) lab.set(n, { overload: false });
  assert.deepEqual(lab.run(rr, 3), seq('B A C'));
});

test('rr: removing the current server continues with its successor (ip_vs_rr_del_dest)', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 }, { name: 'C', weight: 1 }, { name: 'D', weight: 1 });
  const rr = rrFactory.create(lab.dests, 0, 8);
  rr.update(lab.list('A', 'B', 'C', 'D')); // walked D C B A
  assert.deepEqual(lab.run(rr, 2), seq('D C')); // cursor on C
  rr.update(lab.list('A', 'B', 'D')); // C removed: cursor to its predecessor D, next is B
  assert.deepEqual(lab.run(rr, 4), seq('B A D B'));
  rr.update(lab.list('A', 'D')); // cursor was on B: predecessor D, next is A
  assert.deepEqual(lab.run(rr, 3), seq('A D A'));
});

test('rr: a server added mid-stream goes to the head and does not move the cursor', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 }, { name: 'C', weight: 1 });
  const rr = rrFactory.create(lab.dests, 0, 8);
  rr.update(lab.list('A', 'B'));
  assert.deepEqual(lab.run(rr, 1), ['B']); // cursor on B (list B A)
  rr.update(lab.list('A', 'B', 'C')); // list C B A
  assert.deepEqual(lab.run(rr, 4), seq('A C B A'));
});

test('rr: update() on an attached instance is refused, bad slots are refused', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 });
  const rr = rrFactory.create(lab.dests, 0, 2);
  const worker = rrFactory.attach(lab.dests, 0, rr.shared);
  assert.throws(() => worker.update([0]), /control-plane instance/);
  assert.throws(() => rr.update([0, 0]), /listed twice/);
  assert.throws(() => rr.update([63]), /holds no real server/);
  assert.throws(() => rr.update([0, 1, 2].map(() => 0).slice(0, 3)), /at most 2/);
});
