// vrrp_sync_group: members move together (keepalived vrrp_sync.c).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VrrpSyncGroupConfig } from '../../src/vrrp/config';
import { advert, config, harness, receipt, vip } from './fakes';

const DOWN_100 = 3609.375;

function pair(groupNotify: VrrpSyncGroupConfig['notify'] = {}) {
  return harness(
    [
      config({ name: 'VI_EXT', vrid: 51, interface: 'eth0', virtualAddresses: [vip('10.0.0.100')] }),
      config({
        name: 'VI_INT',
        vrid: 52,
        interface: 'eth1',
        primaryAddress: '10.1.0.2',
        virtualAddresses: [vip('10.1.0.100', { dev: 'eth1' })],
      }),
    ],
    [{ name: 'G1', instances: ['VI_EXT', 'VI_INT'], notify: groupNotify }],
  );
}

const ext = advert({ vrid: 51, priority: 150, addresses: ['10.0.0.100'] });
const int = advert({ vrid: 52, priority: 150, addresses: ['10.1.0.100'] });

test('group notify scripts get GROUP NAME STATE 0 at start, and the members their own', () => {
  const h = pair({ backup: '/gb', generic: '/gn' });
  h.router.start();
  assert.deepEqual(
    h.notifies.map((n) => [n.script, ...n.args]),
    [
      ['/gb'],
      ['/gn', 'GROUP', 'G1', 'BACKUP', '0'],
    ],
  );
  assert.deepEqual(h.groupStates.map((g) => g.state), ['BACKUP']);
});

test('one member cannot become master while the other still hears its master', () => {
  const h = pair();
  h.router.start();
  // Only VI_INT's master keeps advertising.
  for (let t = 0; t < 20; t++) {
    h.router.receive(int, receipt({ source: '10.1.0.3' }));
    h.clock.advance(1000);
  }
  assert.equal(h.router.instance('VI_EXT').state, 'BACKUP', 'held back by the group');
  assert.equal(h.router.instance('VI_EXT').wantState, 'MASTER');
  assert.equal(h.router.instance('VI_INT').state, 'BACKUP');
  assert.equal(h.sent.length, 0);
  assert.deepEqual(h.installed(), []);
});

test('when every member wants master, all become master together', () => {
  const h = pair({ master: '/gm' });
  h.router.start();
  h.clock.advance(DOWN_100);
  assert.equal(h.router.instance('VI_EXT').state, 'MASTER');
  assert.equal(h.router.instance('VI_INT').state, 'MASTER');
  assert.deepEqual(h.installed(), ['10.0.0.100', '10.1.0.100']);
  assert.deepEqual(h.groupStates.map((g) => g.state), ['BACKUP', 'MASTER']);
  assert.deepEqual(h.notifies.filter((n) => n.script === '/gm').length, 1);
});

test('a member outranked on its VRID takes the whole group back to BACKUP', () => {
  const h = pair({ backup: '/gb' });
  h.router.start();
  h.clock.advance(DOWN_100 + 100);
  h.router.receive(ext, receipt({ source: '10.0.0.3' }));
  assert.equal(h.router.instance('VI_EXT').state, 'BACKUP');
  assert.equal(h.router.instance('VI_INT').state, 'BACKUP');
  assert.deepEqual(h.installed(), []);
  assert.deepEqual(h.groupStates.map((g) => g.state), ['BACKUP', 'MASTER', 'BACKUP']);
  // VI_INT's peer hears nothing from us any more and takes over; we do not fight back while
  // VI_EXT's master lives.
  for (let t = 0; t < 20; t++) {
    h.router.receive(ext, receipt({ source: '10.0.0.3' }));
    h.router.receive(int, receipt({ source: '10.1.0.3' }));
    h.clock.advance(1000);
  }
  assert.equal(h.router.instance('VI_INT').state, 'BACKUP');
});

test('one member in FAULT puts the group in FAULT; recovery brings all back to BACKUP', () => {
  const h = pair({ fault: '/gf', backup: '/gb' });
  h.router.start();
  h.clock.advance(DOWN_100 + 100);
  const before = h.sent.length;
  h.router.setInterfaceState('eth1', false);
  assert.equal(h.router.instance('VI_INT').state, 'FAULT');
  assert.equal(h.router.instance('VI_EXT').state, 'FAULT');
  // Both masters said goodbye with priority 0.
  assert.deepEqual(
    h.sent.slice(before).map((s) => [s.vrid, s.priority]).sort(),
    [
      [51, 0],
      [52, 0],
    ],
  );
  assert.deepEqual(h.installed(), []);
  assert.deepEqual(h.groupStates.map((g) => g.state), ['BACKUP', 'MASTER', 'FAULT']);
  assert.equal(h.notifies.filter((n) => n.script === '/gf').length, 1);
  h.clock.advance(10000);
  assert.equal(h.router.instance('VI_EXT').state, 'FAULT', 'stays in FAULT with its group');
  h.router.setInterfaceState('eth1', true);
  assert.equal(h.router.instance('VI_INT').state, 'BACKUP');
  assert.equal(h.router.instance('VI_EXT').state, 'BACKUP');
  assert.deepEqual(h.groupStates.map((g) => g.state), ['BACKUP', 'MASTER', 'FAULT', 'BACKUP']);
  h.clock.advance(DOWN_100);
  assert.equal(h.router.instance('VI_EXT').state, 'MASTER');
  assert.equal(h.router.instance('VI_INT').state, 'MASTER');
});

test('a member faulted at start-up puts the whole group in FAULT from the beginning', () => {
  const h = harness(
    [
      config({ name: 'A', vrid: 1, notify: { generic: '/n' } }),
      config({ name: 'B', vrid: 2, interface: 'eth1', notify: { generic: '/n' } }),
    ],
    [{ name: 'G', instances: ['A', 'B'], notify: {} }],
    ({ interfaces }) => interfaces.down.add('eth1'),
  );
  h.router.start();
  assert.equal(h.router.instance('A').state, 'FAULT');
  assert.equal(h.router.instance('B').state, 'FAULT');
  assert.deepEqual(h.notifies.map((n) => n.args.slice(0, 3)), [
    ['INSTANCE', 'A', 'FAULT'],
    ['INSTANCE', 'B', 'FAULT'],
  ]);
  h.clock.advance(20000);
  assert.equal(h.sent.length, 0);
});

test('shutdown: members stop (masters send priority 0), then the group notifies STOP', () => {
  const h = pair({ stop: '/gs', generic: '/gn' });
  h.router.start();
  h.clock.advance(DOWN_100);
  h.notifies.length = 0;
  h.router.stop();
  assert.deepEqual(
    h.sent.filter((s) => s.priority === 0).map((s) => s.vrid),
    [51, 52],
  );
  assert.deepEqual(
    h.notifies.map((n) => [n.script, ...n.args]),
    [
      ['/gs'],
      ['/gn', 'GROUP', 'G1', 'STOP', '0'],
    ],
  );
});

test('configuration: a sync group naming a missing instance, or an instance in two groups, is an error', () => {
  assert.throws(
    () => harness([config()], [{ name: 'G', instances: ['VI_1', 'VI_9'], notify: {} }]),
    /vrrp sync group G: instance VI_9 does not exist/,
  );
  assert.throws(
    () =>
      harness(
        [config(), config({ name: 'VI_2', vrid: 2 })],
        [
          { name: 'G', instances: ['VI_1', 'VI_2'], notify: {} },
          { name: 'H', instances: ['VI_1'], notify: {} },
        ],
      ),
    /instance VI_1 is already in another sync group/,
  );
  assert.throws(() => harness([config(), config({ name: 'VI_2' })]), /virtual_router_id 51 is already used on eth0/);
});
