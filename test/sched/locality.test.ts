// lblc / lblcr worked out by hand from ip_vs_lblc.c / ip_vs_lblcr.c (torvalds/linux): entries keyed
// on the packet's destination address, the wlc choice on a miss, the "overloaded" rule
// (activeconns > weight while some dest has activeconns * 2 < weight), the expiry timer (every
// 60 s; the 30th quiet run is a full check dropping entries unused for 24 h), lblcr's sets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lblcFactory, LocalityLeastConnectionScheduler } from '../../src/sched/lblc';
import { lblcrFactory, LocalityReplicationScheduler } from '../../src/sched/lblcr';
import { CHECK_EXPIRE_INTERVAL_MS, DEFAULT_EXPIRATION_MS } from '../../src/sched/locality';
import { Lab, packetKey } from './helpers';

const SITE1 = 0x0a010101;
const SITE2 = 0x0a020202;

test('lblc: a destination keeps its server until that server is overloaded', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 2 }, { name: 'B', weight: 2 }, { name: 'C', weight: 2 });
  const lblc = lblcFactory.create(lab.dests, 0, 8) as LocalityLeastConnectionScheduler;
  lblc.update(lab.list('A', 'B', 'C')); // list C B A
  const k1 = packetKey(1, SITE1);
  const k2 = packetKey(2, SITE2);
  // Miss: wlc picks C (all idle, first); later hits stay on C while wlc would move on.
  assert.deepEqual(lab.run(lblc, 3, { key: k1, connect: true }), ['C', 'C', 'C']);
  // SITE2 misses: wlc -> B (C has 2 active... 3 now)
  assert.deepEqual(lab.run(lblc, 1, { key: k2 }), ['B']);
  assert.equal(lblc.lookup(SITE1), lab.slot('C'));
  // C: active 3 > weight 2, and A has 0*2 < 2 -> overloaded: wlc choice (B or A) replaces C.
  lab.set('B', { active: 1 });
  assert.deepEqual(lab.run(lblc, 1, { key: k1 }), ['A']);
  assert.equal(lblc.lookup(SITE1), lab.slot('A'));
  // Overloaded but nobody below half its weight: stays.
  lab.set('A', { active: 5 });
  lab.set('B', { active: 1 });
  lab.set('C', { active: 1 });
  assert.deepEqual(lab.run(lblc, 1, { key: k1 }), ['A']);
});

test('lblc: quiesced or removed cached server is replaced; empty service gives -1', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 });
  const lblc = lblcFactory.create(lab.dests, 0, 8) as LocalityLeastConnectionScheduler;
  const key = packetKey(1, SITE1);
  assert.deepEqual(lab.run(lblc, 1, { key }), ['-']);
  lblc.update(lab.list('A', 'B'));
  assert.deepEqual(lab.run(lblc, 1, { key }), ['B']);
  lab.set('B', { weight: 0 });
  assert.deepEqual(lab.run(lblc, 1, { key }), ['A']);
  lab.set('B', { weight: 1 });
  assert.deepEqual(lab.run(lblc, 1, { key }), ['A'], 'the entry now points at A');
  lblc.update(lab.list('B'));
  assert.equal(lblc.lookup(SITE1), -1, 'entries of a removed server are dropped');
  assert.deepEqual(lab.run(lblc, 1, { key }), ['B']);
});

test('lblc: the 30th quiet expiry run drops entries unused for lblc_expiration (24 h)', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 });
  const lblc = lblcFactory.create(lab.dests, 0, 8) as LocalityLeastConnectionScheduler;
  lblc.update(lab.list('A'));
  let now = 1_000;
  lab.run(lblc, 1, { key: packetKey(1, SITE1), now }); // arms the timer, creates SITE1
  assert.equal(lblc.entryCount(), 1);
  // Runs 1..29 (counter 1 -> 30) only count; a full check happens at the 30th.
  for (let run = 1; run <= 29; run++) {
    now += CHECK_EXPIRE_INTERVAL_MS;
    lab.run(lblc, 1, { key: packetKey(1, SITE2), now });
  }
  assert.equal(lblc.entryCount(), 2);
  // 30th run, but SITE1 is only 30 minutes old: kept.
  now += CHECK_EXPIRE_INTERVAL_MS;
  lab.run(lblc, 1, { key: packetKey(1, SITE2), now });
  assert.equal(lblc.entryCount(), 2);
  // Jump a day ahead, keep SITE2 used, then 30 more runs: SITE1 goes, SITE2 stays.
  now += DEFAULT_EXPIRATION_MS;
  for (let run = 1; run <= 30; run++) {
    now += CHECK_EXPIRE_INTERVAL_MS;
    lab.run(lblc, 1, { key: packetKey(1, SITE2), now });
  }
  assert.equal(lblc.lookup(SITE1), -1);
  assert.equal(lblc.lookup(SITE2), lab.slot('A'));
  assert.equal(lblc.entryCount(), 1);
});

test('lblc: thousands of destinations, deletions keep every other entry reachable', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 });
  const lblc = lblcFactory.create(lab.dests, 0, 8) as LocalityLeastConnectionScheduler;
  lblc.update(lab.list('A', 'B'));
  const key = packetKey();
  for (let i = 0; i < 5000; i++) {
    key.daddr = 0x0b000000 + i;
    lblc.schedule(key, i < 2500 ? 0 : 500_000);
  }
  assert.equal(lblc.entryCount(), 5000);
  lblc.setExpiration(400_000);
  // Full check at t = 850 s: entries used at 0 are 850 s old (>= 400 s) and go; those used at
  // 500 s are 350 s old and stay.
  for (let run = 0; run < 30; run++) lblc.checkExpire(850_000);
  assert.equal(lblc.entryCount(), 2500);
  for (let i = 0; i < 5000; i++) assert.equal(lblc.lookup(0x0b000000 + i) >= 0, i >= 2500, `entry ${i}`);
});

test('lblcr: sets grow when the least-loaded member is overloaded, newest first', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 2 }, { name: 'B', weight: 2 }, { name: 'C', weight: 2 });
  const lblcr = lblcrFactory.create(lab.dests, 0, 8) as LocalityReplicationScheduler;
  lblcr.update(lab.list('A', 'B', 'C')); // list C B A
  const key = packetKey(1, SITE1);
  assert.deepEqual(lab.run(lblcr, 3, { key, connect: true }), ['C', 'C', 'C']);
  assert.deepEqual(lblcr.members(SITE1), [lab.slot('C')]);
  // C has 3 > 2 active, B and A idle: overloaded -> wlc picks B, added to the set.
  assert.deepEqual(lab.run(lblcr, 1, { key, connect: true }), ['B']);
  assert.deepEqual(lblcr.members(SITE1), lab.list('B', 'C'));
  // Set min: B (256/2) beats C (768/2).
  assert.deepEqual(lab.run(lblcr, 1, { key, connect: true }), ['B']);
  // B 2 active, C 3: set min B (2 <= 2 not overloaded).
  assert.deepEqual(lab.run(lblcr, 1, { key }), ['B']);
});

test('lblcr: after lblcr_expiration without change the most loaded member leaves the set', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 });
  const lblcr = lblcrFactory.create(lab.dests, 0, 8) as LocalityReplicationScheduler;
  lblcr.update(lab.list('A', 'B')); // list B A
  const key = packetKey(1, SITE1);
  lab.run(lblcr, 1, { key, now: 0 }); // {B}
  lab.set('B', { active: 2 }); // 2 > 1 and A idle: overloaded
  assert.deepEqual(lab.run(lblcr, 1, { key, now: 10 }), ['A']);
  assert.deepEqual(lblcr.members(SITE1), lab.list('A', 'B'));
  lab.set('B', { active: 0 });
  lab.set('A', { active: 1 });
  // Not yet expired: both stay; set min is B (0 < 256).
  assert.deepEqual(lab.run(lblcr, 1, { key, now: 20 }), ['B']);
  assert.equal(lblcr.members(SITE1).length, 2);
  // A day after the last modification: set_max (A, 256) is erased; B still chosen.
  assert.deepEqual(lab.run(lblcr, 1, { key, now: 10 + DEFAULT_EXPIRATION_MS + 1 }), ['B']);
  assert.deepEqual(lblcr.members(SITE1), lab.list('B'));
  lblcr.update(lab.list('A'));
  assert.deepEqual(lblcr.members(SITE1), [], 'removed servers leave the sets');
  assert.deepEqual(lab.run(lblcr, 1, { key, now: 10 + DEFAULT_EXPIRATION_MS + 2 }), ['A']);
});

test('lblc/lblcr: the table is shared with attached instances', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 });
  for (const factory of [lblcFactory, lblcrFactory]) {
    const cp = factory.create(lab.dests, 0, 8);
    cp.update(lab.list('A', 'B'));
    const worker = factory.attach(lab.dests, 0, cp.shared);
    const key = packetKey(1, SITE1);
    const first = worker.schedule(key, 0);
    lab.set('A', { active: 0 });
    assert.equal(cp.schedule(key, 0), first, `${factory.name}: the control-plane instance sees the worker's entry`);
    assert.throws(() => factory.attach(lab.dests, 0, new SharedArrayBuffer(64)), /not made by the/);
  }
});
