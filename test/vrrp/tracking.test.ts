// track_interface and track_script: FAULT for unweighted objects, priority weights with
// keepalived's semantics (a positive weight is added while OK, a negative one while failing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advert, config, harness, receipt } from './fakes';

const DOWN_100 = 3609.375;

test('the instance interface going down: master → FAULT with a priority 0 advert, VIPs removed, notify_fault', () => {
  const h = harness([config({ notify: { fault: '/nf', backup: '/nb', generic: '/n' } })]);
  h.router.start();
  h.clock.advance(DOWN_100 + 100);
  h.notifies.length = 0;
  const before = h.sent.length;
  h.router.setInterfaceState('eth0', false);
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'FAULT');
  assert.equal(h.sent.length, before + 1);
  assert.equal(h.sent.at(-1)?.priority, 0);
  assert.deepEqual(h.installed(), []);
  assert.deepEqual(h.notifies, [
    { at: DOWN_100 + 100, script: '/nf', args: [] },
    { at: DOWN_100 + 100, script: '/n', args: ['INSTANCE', 'VI_1', 'FAULT', '100'] },
  ]);
  // In FAULT: no adverts, no takeover.
  h.clock.advance(20000);
  assert.equal(h.sent.length, before + 1);
  assert.equal(vi.state, 'FAULT');
  // Link back: BACKUP, then MASTER after Master_Down_Interval.
  h.router.setInterfaceState('eth0', true);
  assert.equal(vi.state, 'BACKUP');
  assert.deepEqual(h.notifies.slice(2).map((n) => n.script), ['/nb', '/n']);
  h.clock.advance(DOWN_100);
  assert.equal(vi.state, 'MASTER');
});

test('dont_track_primary: the instance interface going down changes nothing', () => {
  const h = harness([config({ dontTrackPrimary: true })]);
  h.router.start();
  h.router.setInterfaceState('eth0', false);
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
});

test('an interface down at start-up: the instance starts in FAULT', () => {
  const h = harness([config({ trackInterfaces: [{ name: 'eth1', weight: 0, reverse: false }], notify: { fault: '/nf' } })], [], ({ interfaces }) =>
    interfaces.down.add('eth1'),
  );
  h.router.start();
  assert.equal(h.router.instance('VI_1').state, 'FAULT');
  assert.deepEqual(h.notifies.map((n) => n.script), ['/nf']);
  h.clock.advance(10000);
  assert.equal(h.sent.length, 0);
  h.router.setInterfaceState('eth1', true);
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
});

test('weighted track_interface: a negative weight lowers the priority while the interface is down', () => {
  const h = harness([config({ trackInterfaces: [{ name: 'eth1', weight: -20, reverse: false }] })]);
  h.router.start();
  h.clock.advance(DOWN_100);
  const vi = h.router.instance('VI_1');
  h.router.setInterfaceState('eth1', false);
  assert.equal(vi.state, 'MASTER', 'a weighted interface never means FAULT');
  assert.equal(vi.effectivePriority, 80);
  h.clock.advance(1000);
  assert.equal(h.sent.at(-1)?.priority, 80);
  // A peer at 90 now outranks us.
  h.router.receive(advert({ priority: 90 }), receipt());
  assert.equal(vi.state, 'BACKUP');
  h.router.setInterfaceState('eth1', true);
  assert.equal(vi.effectivePriority, 100);
});

test('track_script with a positive weight: added while the script succeeds', () => {
  const h = harness([config({ trackScripts: [{ name: 'chk_haproxy', weight: 2, reverse: false }] })]);
  h.router.setScriptResult('chk_haproxy', true);
  h.router.start();
  const vi = h.router.instance('VI_1');
  assert.equal(vi.effectivePriority, 102);
  h.clock.advance(4000);
  assert.equal(h.sent[0]!.priority, 102);
  h.router.setScriptResult('chk_haproxy', false);
  assert.equal(vi.effectivePriority, 100);
  assert.equal(vi.state, 'MASTER');
  h.clock.advance(1000);
  assert.equal(h.sent.at(-1)?.priority, 100);
  assert.ok(h.logs.includes('(VI_1) Changing effective priority from 102 to 100'));
});

test('track_script with a negative weight: added while the script fails; reverse flips it', () => {
  const h = harness([
    config({ name: 'A', vrid: 1, trackScripts: [{ name: 's', weight: -30, reverse: false }] }),
    config({ name: 'B', vrid: 2, trackScripts: [{ name: 's', weight: -30, reverse: true }] }),
  ]);
  h.router.setScriptResult('s', true);
  h.router.start();
  assert.equal(h.router.instance('A').effectivePriority, 100);
  assert.equal(h.router.instance('B').effectivePriority, 70);
  h.router.setScriptResult('s', false);
  assert.equal(h.router.instance('A').effectivePriority, 70);
  assert.equal(h.router.instance('B').effectivePriority, 100);
});

test('effective priority is clamped to 1..254, and an owner (255) ignores weights', () => {
  const h = harness([
    config({ name: 'A', vrid: 1, priority: 250, trackScripts: [{ name: 's', weight: 50, reverse: false }] }),
    config({ name: 'B', vrid: 2, priority: 10, trackScripts: [{ name: 's', weight: -50, reverse: true }] }),
    config({ name: 'C', vrid: 3, priority: 255, trackScripts: [{ name: 's', weight: -50, reverse: true }] }),
  ]);
  h.router.setScriptResult('s', true);
  h.router.start();
  assert.equal(h.router.instance('A').effectivePriority, 254);
  assert.equal(h.router.instance('B').effectivePriority, 1);
  assert.equal(h.router.instance('C').effectivePriority, 255);
});

test('an unweighted track_script failing means FAULT; instances wait in INIT for the first result', () => {
  const h = harness([config({ trackScripts: [{ name: 'chk', weight: 0, reverse: false }], notify: { generic: '/n' } })]);
  h.router.start();
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'INIT');
  h.clock.advance(10000);
  assert.equal(h.sent.length, 0);
  assert.equal(h.notifies.length, 0);
  h.router.setScriptResult('chk', true);
  assert.equal(vi.state, 'BACKUP');
  h.clock.advance(DOWN_100);
  assert.equal(vi.state, 'MASTER');
  h.router.setScriptResult('chk', false);
  assert.equal(vi.state, 'FAULT');
  assert.equal(h.sent.at(-1)?.priority, 0);
  assert.deepEqual(
    h.notifies.map((n) => n.args[2]),
    ['BACKUP', 'MASTER', 'FAULT'],
  );
});

test('a backup whose priority rises takes over sooner (keepalived moves the running timer)', () => {
  const h = harness([config({ trackScripts: [{ name: 's', weight: 100, reverse: false }] })]);
  h.router.setScriptResult('s', false);
  h.router.start();
  // Master at 150 advertises at t=0; we are 100, so we accept and arm 3609.375.
  h.router.receive(advert({ priority: 150 }), receipt());
  h.clock.advance(500);
  // Now we are 200: lower-priority adverts from the 150 master are discarded.
  h.router.setScriptResult('s', true);
  const vi = h.router.instance('VI_1');
  assert.equal(vi.effectivePriority, 200);
  // Skew fell from 609.375 to 218.75 ms: the timer now fires at 3218.75.
  assert.equal(vi.timerDue(), 3218.75);
  h.router.receive(advert({ priority: 150 }), receipt());
  h.clock.advanceTo(3218.75);
  assert.equal(vi.state, 'MASTER');
  assert.equal(h.sent[0]!.priority, 200);
});
