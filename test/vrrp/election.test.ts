// Elections in both directions, step by step: queue an advert, move the fake clock, check the
// state, what went on the wire, the VIPs and the notify calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advert, config, harness, receipt } from './fakes';

// Priority 100, advert_int 1 s, VRRPv2: Skew_Time = 156/256 s = 609.375 ms (RFC 3768 §6.1),
// Master_Down_Interval = 3 s + skew = 3609.375 ms.
const DOWN_100 = 3609.375;

test('a backup with no master becomes master after Master_Down_Interval', () => {
  const h = harness([config({ notify: { backup: '/bin/nb', master: '/bin/nm', generic: '/bin/n' } })]);
  h.router.start();
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'BACKUP');
  assert.deepEqual(h.notifies, [
    { at: 0, script: '/bin/nb', args: [] },
    { at: 0, script: '/bin/n', args: ['INSTANCE', 'VI_1', 'BACKUP', '100'] },
  ]);
  h.clock.advance(DOWN_100 - 0.001);
  assert.equal(vi.state, 'BACKUP');
  assert.equal(h.sent.length, 0, 'a backup never sends');
  h.clock.advance(0.001);
  assert.equal(vi.state, 'MASTER');
  assert.equal(h.sent.length, 1);
  const first = h.sent[0];
  assert.ok(first);
  assert.equal(first.at, DOWN_100);
  assert.equal(first.priority, 100);
  assert.equal(first.advertIntCs, 100);
  assert.equal(first.version, 2);
  assert.equal(first.vrid, 51);
  assert.equal(first.ttl, 255);
  assert.equal(first.destination, '224.0.0.18');
  assert.equal(first.source, '10.0.0.2');
  assert.deepEqual(first.addresses, ['10.0.0.100']);
  assert.deepEqual(h.installed(), ['10.0.0.100']);
  assert.deepEqual(h.notifies.slice(2), [
    { at: DOWN_100, script: '/bin/nm', args: [] },
    { at: DOWN_100, script: '/bin/n', args: ['INSTANCE', 'VI_1', 'MASTER', '100'] },
  ]);
  // The advert goes out before the VIP is added (keepalived vrrp_state_master_tx order).
  assert.equal(h.vipEvents[0]!.op, 'add');
  // RFC 3768 §6.4.3: an advert every Advertisement_Interval while master.
  h.clock.advance(3000);
  assert.deepEqual(
    h.sent.map((s) => s.at),
    [DOWN_100, DOWN_100 + 1000, DOWN_100 + 2000, DOWN_100 + 3000],
  );
});

test('adverts from a higher-priority master keep a backup in BACKUP', () => {
  const h = harness();
  h.router.start();
  for (let t = 0; t < 10; t++) {
    h.router.receive(advert({ priority: 150 }), receipt());
    h.clock.advance(1000);
  }
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
  assert.equal(h.sent.length, 0);
  assert.equal(h.router.instance('VI_1').stats.advertsReceived, 10);
  // Then the master dies: takeover Master_Down_Interval after its last advert.
  h.clock.advance(DOWN_100 - 1000 - 0.001);
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
  h.clock.advance(0.001);
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
});

test('preempt (default): lower-priority adverts are discarded and the backup takes over', () => {
  const h = harness([config({ priority: 150 })]);
  h.router.start();
  // skew for 150: 106/256 s, in keepalived's whole microseconds 414.062 ms
  const down150 = 3414.062;
  h.clock.advance(500);
  h.router.receive(advert({ priority: 100 }), receipt());
  h.clock.advance(1000);
  h.router.receive(advert({ priority: 100 }), receipt());
  assert.ok(h.logs.some((l) => l.includes('received lower priority (100) advert from 10.0.0.3 - discarding')));
  h.clock.advanceTo(down150 - 0.001);
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
  h.clock.advanceTo(down150);
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
  assert.equal(h.sent[0]!.priority, 150);
});

test('nopreempt: a higher-priority backup never takes over from a live lower-priority master', () => {
  const h = harness([config({ priority: 150, preempt: false })]);
  h.router.start();
  for (let t = 0; t < 30; t++) {
    h.router.receive(advert({ priority: 100 }), receipt());
    h.clock.advance(1000);
  }
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
  assert.equal(h.sent.length, 0);
  // ... but it still takes over when that master goes silent.
  h.clock.advance(3000);
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
});

test('preempt_delay counts from startup (keepalived starts it when the daemon starts)', () => {
  const h = harness([config({ priority: 150, preemptDelayMs: 10000 })]);
  h.router.start();
  // The lower-priority master is first heard at t=2000; adverts before t=10000 are accepted.
  h.clock.advance(2000);
  for (let t = 0; t < 30 && h.router.instance('VI_1').state !== 'MASTER'; t++) {
    h.router.receive(advert({ priority: 100 }), receipt());
    h.clock.advance(1000);
  }
  assert.equal(h.sent[0]?.at, 9000 + 3414.062);
});

test('preempt_delay after a fall back to BACKUP: counted from the first lower-priority advert', () => {
  const h = harness([config({ priority: 150, preemptDelayMs: 5000 })]);
  h.router.start();
  h.clock.advance(20000);
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
  // Outranked: back to BACKUP, preempt_time cleared (keepalived vrrp_state_leave_master).
  h.router.receive(advert({ priority: 200 }), receipt());
  h.clock.advance(1000);
  // The 200 router drops to 100 (say a track script failed): the delay starts now, at t=21000.
  const sentBefore = h.sent.length;
  for (let t = 0; t < 30 && h.router.instance('VI_1').state !== 'MASTER'; t++) {
    h.router.receive(advert({ priority: 100 }), receipt());
    h.clock.advance(1000);
  }
  assert.ok(h.logs.some((l) => l.includes('start preempt delay (5s)')));
  // Accepted at 21000..25000, discarded from 26000 on: takeover at 25000 + 3414.062.
  assert.equal(h.sent[sentBefore]?.at, 25000 + 3414.062);
});

test('a master steps down for a higher-priority advert: VIPs removed, notify_backup', () => {
  const h = harness([config({ priority: 100, notify: { backup: '/nb', master: '/nm' } })]);
  h.router.start();
  h.clock.advance(DOWN_100);
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
  h.clock.advance(500);
  h.router.receive(advert({ priority: 200 }), receipt({ source: '10.0.0.9' }));
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'BACKUP');
  assert.deepEqual(h.installed(), []);
  assert.equal(h.vipEvents.at(-1)?.op, 'remove');
  assert.deepEqual(h.notifies.at(-1), { at: DOWN_100 + 500, script: '/nb', args: [] });
  assert.equal(vi.masterAddress, '10.0.0.9');
  assert.equal(vi.stats.releasedMaster, 1);
  const sentBefore = h.sent.length;
  h.clock.advance(3000);
  assert.equal(h.sent.length, sentBefore, 'no adverts once backup');
});

test('equal priority: the higher primary address wins (RFC 3768 §6.4.3)', () => {
  const h = harness([config({ primaryAddress: '10.0.0.5' })]);
  h.router.start();
  h.clock.advance(DOWN_100);
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'MASTER');
  // Lower address, same priority: we stay master and answer at once with our own advert.
  const before = h.sent.length;
  h.router.receive(advert({ priority: 100 }), receipt({ source: '10.0.0.4' }));
  assert.equal(vi.state, 'MASTER');
  assert.equal(h.sent.length, before + 1);
  assert.equal(h.sent.at(-1)?.at, DOWN_100);
  // Higher address, same priority: we step down.
  h.router.receive(advert({ priority: 100 }), receipt({ source: '10.0.0.6' }));
  assert.equal(vi.state, 'BACKUP');
  assert.ok(h.logs.some((l) => l.includes('same priority 100 but higher IP address than ours')));
});

test('addresses compare as numbers, not strings (10.0.0.10 > 10.0.0.9)', () => {
  const h = harness([config({ primaryAddress: '10.0.0.9' })]);
  h.router.start();
  h.clock.advance(DOWN_100);
  h.router.receive(advert(), receipt({ source: '10.0.0.10' }));
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
});

test('a master answers a lower-priority advert with its own (keepalived), unless lower_prio_no_advert', () => {
  for (const lowerPrioNoAdvert of [false, true]) {
    const h = harness([config({ priority: 200, lowerPrioNoAdvert })]);
    h.router.start();
    h.clock.advance(4000);
    const before = h.sent.length;
    h.router.receive(advert({ priority: 50 }), receipt());
    assert.equal(h.router.instance('VI_1').state, 'MASTER');
    assert.equal(h.sent.length, before + (lowerPrioNoAdvert ? 0 : 1));
  }
});

test('the address owner (priority 255) becomes master at once', () => {
  const h = harness([config({ priority: 255, notify: { master: '/nm' } })]);
  h.router.start();
  h.clock.advance(0);
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'MASTER');
  assert.equal(h.sent[0]!.priority, 255);
  assert.equal(h.sent[0]!.at, 0);
  assert.deepEqual(h.notifies, [{ at: 0, script: '/nm', args: [] }]);
  // An owner is never outranked by a lower priority.
  h.router.receive(advert({ priority: 254 }), receipt({ source: '10.0.0.200' }));
  assert.equal(vi.state, 'MASTER');
});

test('two owners on one VRID: the one with the lower address steps down to 254 (keepalived)', () => {
  const h = harness([config({ priority: 255 })]);
  h.router.start();
  h.clock.advance(0);
  h.router.receive(advert({ priority: 255 }), receipt({ source: '10.0.0.3' }));
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'BACKUP');
  assert.equal(vi.effectivePriority, 254);
  assert.ok(h.logs.some((l) => l.includes('both configured as address owner')));
});

test('state MASTER below 255 takes over after one advert interval plus minimum skew (keepalived)', () => {
  const h = harness([config({ initialState: 'MASTER', priority: 100 })]);
  h.router.start();
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
  // advert_int + skew(priority 255) = 1000 ms + 1/256 s (3906 µs, keepalived's rounding)
  h.clock.advance(1003.905);
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
  h.clock.advance(0.001);
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
});

test('state MASTER below 255 stays backup when a higher-priority master is heard in time', () => {
  const h = harness([config({ initialState: 'MASTER', priority: 100 })]);
  h.router.start();
  for (let i = 0; i < 10; i++) {
    h.clock.advance(900);
    h.router.receive(advert({ priority: 120 }), receipt());
  }
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
});

test('priority 0 from the master: the backup takes over after Skew_Time', () => {
  const h = harness();
  h.router.start();
  h.router.receive(advert({ priority: 150 }), receipt());
  h.clock.advance(1000);
  h.router.receive(advert({ priority: 0 }), receipt());
  const vi = h.router.instance('VI_1');
  assert.equal(vi.stats.priorityZeroReceived, 1);
  h.clock.advance(609.374);
  assert.equal(vi.state, 'BACKUP');
  h.clock.advance(0.001);
  assert.equal(vi.state, 'MASTER');
  assert.equal(h.sent[0]!.at, 1000 + 609.375);
});

test('priority 0 received by a master: it sends an advert at once and stays master', () => {
  const h = harness();
  h.router.start();
  h.clock.advance(DOWN_100 + 200);
  const before = h.sent.length;
  h.router.receive(advert({ priority: 0 }), receipt());
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
  assert.equal(h.sent.length, before + 1);
  assert.equal(h.sent.at(-1)?.at, DOWN_100 + 200);
  // And the Adver_Timer was reset from that advert.
  h.clock.advance(999);
  assert.equal(h.sent.length, before + 1);
  h.clock.advance(1);
  assert.equal(h.sent.length, before + 2);
});

test('two routers wired back to back elect the higher priority, then fail over and back', () => {
  // Two harnesses exchange their sent adverts: a full election without a network.
  const a = harness([config({ priority: 200, primaryAddress: '10.0.0.2' })]);
  const b = harness([config({ priority: 100, primaryAddress: '10.0.0.3' })]);
  let delivered: [number, number] = [0, 0];
  let aAlive = true;
  const pump = (): void => {
    for (; delivered[0] < a.sent.length; delivered[0]++) {
      const s = a.sent[delivered[0]]!;
      if (aAlive) b.router.receive(advert({ priority: s.priority, advertIntCs: s.advertIntCs }), receipt({ source: s.source ?? '' }));
    }
    for (; delivered[1] < b.sent.length; delivered[1]++) {
      const s = b.sent[delivered[1]]!;
      if (aAlive) a.router.receive(advert({ priority: s.priority, advertIntCs: s.advertIntCs }), receipt({ source: s.source ?? '' }));
    }
  };
  const run = (ms: number): void => {
    for (let t = 0; t < ms; t += 10) {
      a.clock.advance(10);
      b.clock.advance(10);
      pump();
    }
  };
  a.router.start();
  b.router.start();
  run(10000);
  assert.equal(a.router.instance('VI_1').state, 'MASTER');
  assert.equal(b.router.instance('VI_1').state, 'BACKUP');
  // Clean stop of A: priority 0, B takes over after its skew time.
  a.router.stop();
  pump();
  aAlive = false;
  const stoppedAt = b.clock.now();
  run(1000);
  assert.equal(b.router.instance('VI_1').state, 'MASTER');
  const takeover = b.states.find((s) => s.state === 'MASTER');
  assert.ok(takeover && takeover.at - stoppedAt < 700, `takeover ${takeover?.at} after stop at ${stoppedAt}`);
  assert.deepEqual(b.installed(), ['10.0.0.100']);
  assert.deepEqual(a.installed(), []);
  // A comes back (a fresh daemon) and preempts B.
  const a2 = harness([config({ priority: 200, primaryAddress: '10.0.0.2' })]);
  a.router.stop();
  Object.assign(a, { router: a2.router, clock: a2.clock, sent: a2.sent });
  delivered = [0, delivered[1]];
  aAlive = true;
  a2.clock.advanceTo(b.clock.now());
  a2.router.start();
  run(10000);
  assert.equal(a2.router.instance('VI_1').state, 'MASTER');
  assert.equal(b.router.instance('VI_1').state, 'BACKUP');
  assert.deepEqual(b.installed(), []);
});
