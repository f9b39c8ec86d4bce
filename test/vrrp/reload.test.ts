// SIGHUP: the new config is diffed against the running one; states survive, VIPs do not flap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VrrpInstanceInput, VrrpRuntimeConfig, instanceConfig } from '../../src/vrrp/config';
import { advert, config, harness, receipt, vip } from './fakes';

const DOWN_100 = 3609.375;

function runtime(inputs: VrrpInstanceInput[], syncGroups: VrrpRuntimeConfig['syncGroups'] = []): VrrpRuntimeConfig {
  return { instances: inputs.map(instanceConfig), syncGroups };
}

test('an unchanged config changes nothing: same objects, no adverts, no VIP or notify calls', () => {
  const h = harness([config({ notify: { generic: '/n' } })]);
  h.router.start();
  h.clock.advance(DOWN_100 + 100);
  const before = { inst: h.router.instance('VI_1'), sent: h.sent.length, vips: h.vipEvents.length, notifies: h.notifies.length };
  h.router.reload(runtime([config({ notify: { generic: '/n' } })]));
  assert.equal(h.router.instance('VI_1'), before.inst);
  assert.equal(h.sent.length, before.sent);
  assert.equal(h.vipEvents.length, before.vips);
  assert.equal(h.notifies.length, before.notifies);
  h.clock.advance(900);
  assert.equal(h.sent.length, before.sent + 1, 'the advert timer kept running');
});

test('a master whose VIPs and priority change stays master: VIPs diffed, an advert at once, no notify', () => {
  const h = harness([config({ virtualAddresses: [vip('10.0.0.100'), vip('10.0.0.101')], notify: { generic: '/n' } })]);
  h.router.start();
  h.clock.advance(DOWN_100 + 100);
  h.vipEvents.length = 0;
  const notifies = h.notifies.length;
  const sent = h.sent.length;
  h.router.reload(runtime([config({ priority: 120, virtualAddresses: [vip('10.0.0.101'), vip('10.0.0.102')], notify: { generic: '/n' } })]));
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'MASTER');
  assert.deepEqual(
    h.vipEvents.filter((e) => e.op !== 'garp').map((e) => [e.op, e.address]),
    [
      ['remove', '10.0.0.100'],
      ['add', '10.0.0.102'],
    ],
  );
  assert.deepEqual(h.installed(), ['10.0.0.101', '10.0.0.102']);
  assert.equal(h.sent.length, sent + 1);
  assert.equal(h.sent.at(-1)?.priority, 120);
  assert.deepEqual(h.sent.at(-1)?.addresses, ['10.0.0.101', '10.0.0.102']);
  assert.equal(h.notifies.length, notifies);
  assert.equal(vi.stats.becameMaster, 1, 'counters carried over');
  // The old object's timers are gone: one advert per second from now on.
  h.clock.advance(1000);
  assert.equal(h.sent.length, sent + 2);
});

test('a backup stays backup with a fresh Master_Down_Timer', () => {
  const h = harness();
  h.router.start();
  h.router.receive(advert({ priority: 200 }), receipt());
  h.clock.advance(2000);
  h.router.reload(runtime([config({ priority: 110 })]));
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'BACKUP');
  assert.equal(vi.effectivePriority, 110);
  // skew for 110 = 146/256 s = 570.312 ms
  assert.equal(vi.timerDue(), 2000 + 3570.312);
  assert.equal(h.sent.length, 0);
});

test('removed instances stop (priority 0 from a master), new ones start, changed VRIDs restart', () => {
  const h = harness([config({ name: 'A', vrid: 1 }), config({ name: 'B', vrid: 2, notify: { stop: '/stopB' } }), config({ name: 'C', vrid: 3 })]);
  h.router.start();
  h.clock.advance(DOWN_100);
  assert.deepEqual(
    h.router.instances.map((i) => i.state),
    ['MASTER', 'MASTER', 'MASTER'],
  );
  const sent = h.sent.length;
  h.router.reload(runtime([config({ name: 'A', vrid: 1 }), config({ name: 'C', vrid: 33 }), config({ name: 'D', vrid: 4 })]));
  assert.deepEqual(
    h.router.instances.map((i) => [i.name, i.state]),
    [
      ['A', 'MASTER'],
      ['C', 'BACKUP'],
      ['D', 'BACKUP'],
    ],
  );
  assert.deepEqual(
    h.sent.slice(sent).map((s) => [s.vrid, s.priority]),
    [
      [3, 0],
      [2, 0],
    ],
  );
  assert.ok(h.notifies.some((n) => n.script === '/stopB'));
  // Adverts for the old VRID 3 are no longer ours.
  h.router.receive(advert({ vrid: 3, priority: 200 }), receipt());
  assert.equal(h.router.unknownVrid, 1);
});

test('a reload that fails validation leaves the running config alone', () => {
  const h = harness();
  h.router.start();
  h.clock.advance(DOWN_100);
  assert.throws(
    () => h.router.reload({ instances: [instanceConfig(config()), instanceConfig(config({ name: 'X' }))], syncGroups: [] }),
    /virtual_router_id 51 is already used on eth0/,
  );
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
  h.clock.advance(1000);
  assert.equal(h.sent.at(-1)?.priority, 100);
});

test('a new interface in the config reopens the socket with the new endpoints', () => {
  const h = harness([config()]);
  h.router.start();
  assert.equal(h.socketClosed(), false);
  h.router.reload(runtime([config({ interface: 'eth1', primaryAddress: '10.1.0.2' })]));
  assert.equal(h.socketClosed(), true);
});

test('sync groups keep their state across a reload', () => {
  const inputs = [config({ name: 'A', vrid: 1 }), config({ name: 'B', vrid: 2 })];
  const groups = [{ name: 'G', instances: ['A', 'B'], notify: { generic: '/g' } }];
  const h = harness(inputs, groups);
  h.router.start();
  h.clock.advance(DOWN_100);
  assert.equal(h.router.groups[0]!.state, 'MASTER');
  const notifies = h.notifies.length;
  h.router.reload(runtime([config({ name: 'A', vrid: 1, priority: 150 }), config({ name: 'B', vrid: 2 })], groups));
  assert.equal(h.router.groups[0]!.state, 'MASTER');
  assert.deepEqual(h.router.instances.map((i) => i.state), ['MASTER', 'MASTER']);
  assert.equal(h.notifies.length, notifies);
  // The group still moves together: A outranked takes B to BACKUP.
  h.router.receive(advert({ vrid: 1, priority: 200 }), receipt());
  assert.deepEqual(h.router.instances.map((i) => i.state), ['BACKUP', 'BACKUP']);
});
