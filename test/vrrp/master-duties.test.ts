// What a master does besides advertising: VIPs with dev/label/scope, gratuitous ARP timing
// (garp_master_delay, garp_master_repeat, garp_master_refresh), unicast peers, and the
// shutdown sequence (priority 0 advert, VIPs removed, notify_stop).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VrrpRouter } from '../../src/vrrp/router';
import { advert, config, harness, receipt, vip } from './fakes';
import { nullLogger } from '../../src/runtime/log';

const DOWN_100 = 3609.375;

test('VIPs are added with their dev, label and scope, and removed the same way', () => {
  const vips = [vip('10.0.0.100', { label: 'eth0:1', scope: 'global' }), vip('10.0.1.100', { dev: 'eth1', scope: 'link' })];
  const h = harness([config({ virtualAddresses: vips, garpMasterDelayMs: 0, garpMasterRepeat: 1 })]);
  h.router.start();
  h.clock.advance(DOWN_100);
  h.router.receive(advert({ priority: 200, addresses: ['10.0.0.100', '10.0.1.100'] }), receipt());
  assert.deepEqual(
    h.vipEvents.map((e) => [e.op, e.address, e.dev, e.label, e.scope]),
    [
      ['add', '10.0.0.100', 'eth0', 'eth0:1', 'global'],
      ['add', '10.0.1.100', 'eth1', undefined, 'link'],
      ['garp', '10.0.0.100', 'eth0', 'eth0:1', 'global'],
      ['garp', '10.0.1.100', 'eth1', undefined, 'link'],
      ['remove', '10.0.0.100', 'eth0', 'eth0:1', 'global'],
      ['remove', '10.0.1.100', 'eth1', undefined, 'link'],
    ],
  );
});

test('gratuitous ARP: garp_master_repeat at once, again after garp_master_delay (defaults 5 and 5 s)', () => {
  const h = harness([config({ virtualAddresses: [vip('10.0.0.100'), vip('10.0.0.101')] })]);
  h.router.start();
  h.clock.advance(DOWN_100);
  assert.equal(h.garps(DOWN_100, DOWN_100).length, 10, '5 per VIP at once');
  h.clock.advance(4999);
  assert.equal(h.garps().length, 10);
  h.clock.advance(1);
  assert.equal(h.garps(DOWN_100 + 5000, DOWN_100 + 5000).length, 10, '5 per VIP after 5 s');
  h.clock.advance(60000);
  assert.equal(h.garps().length, 20, 'no refresh unless configured');
});

test('garp_master_refresh: periodic GARPs while master, garp_master_refresh_repeat each', () => {
  const h = harness([
    config({ garpMasterDelayMs: 0, garpMasterRepeat: 1, garpMasterRefreshMs: 10000, garpMasterRefreshRepeat: 2 }),
  ]);
  h.router.start();
  h.clock.advance(DOWN_100 + 30000);
  assert.deepEqual(
    h.garps().map((g) => g.at),
    [DOWN_100, DOWN_100 + 10000, DOWN_100 + 10000, DOWN_100 + 20000, DOWN_100 + 20000, DOWN_100 + 30000, DOWN_100 + 30000],
  );
});

test('leaving master cancels the pending GARP rounds', () => {
  const h = harness([config({ garpMasterRefreshMs: 2000 })]);
  h.router.start();
  h.clock.advance(DOWN_100 + 1000);
  h.router.receive(advert({ priority: 200 }), receipt());
  const count = h.garps().length;
  assert.equal(count, 5);
  // The new master keeps advertising; the pending delay and refresh rounds must not fire.
  for (let i = 0; i < 20; i++) {
    h.clock.advance(1000);
    h.router.receive(advert({ priority: 200 }), receipt());
  }
  assert.equal(h.router.instance('VI_1').state, 'BACKUP');
  assert.equal(h.garps().length, count);
});

test('unicast peers: one advert per peer, sent from unicast_src_ip', () => {
  const h = harness([config({ unicastPeers: ['10.0.0.3', '10.0.0.4'], unicastSource: '10.0.0.2' })]);
  h.router.start();
  h.clock.advance(DOWN_100);
  assert.deepEqual(
    h.sent.map((s) => [s.destination, s.source, s.ttl]),
    [
      ['10.0.0.3', '10.0.0.2', 255],
      ['10.0.0.4', '10.0.0.2', 255],
    ],
  );
  assert.equal(h.router.instance('VI_1').stats.advertsSent, 1);
});

test('shutdown of a master: priority 0 advert, VIPs removed, notify_stop and notify ... STOP', () => {
  const h = harness([config({ notify: { stop: '/ns', generic: '/n' } })]);
  h.router.start();
  h.clock.advance(DOWN_100 + 500);
  h.notifies.length = 0;
  const sentBefore = h.sent.length;
  h.router.stop();
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'STOP');
  assert.equal(h.sent.length, sentBefore + 1);
  assert.equal(h.sent.at(-1)?.priority, 0);
  assert.equal(h.sent.at(-1)?.at, DOWN_100 + 500);
  assert.equal(vi.stats.priorityZeroSent, 1);
  assert.deepEqual(h.installed(), []);
  assert.deepEqual(h.notifies, [
    { at: DOWN_100 + 500, script: '/ns', args: [] },
    { at: DOWN_100 + 500, script: '/n', args: ['INSTANCE', 'VI_1', 'STOP', '100'] },
  ]);
  assert.ok(h.socketClosed());
  // Nothing runs afterwards: no timers left, no more adverts or GARPs.
  assert.equal(h.clock.pending(), 0);
  h.clock.advance(60000);
  assert.equal(h.sent.length, sentBefore + 1);
});

test('shutdown of a backup sends nothing and touches no VIP', () => {
  const h = harness();
  h.router.start();
  h.clock.advance(1000);
  h.router.stop();
  assert.equal(h.sent.length, 0);
  assert.deepEqual(h.vipEvents, []);
  assert.equal(h.router.instance('VI_1').state, 'STOP');
  assert.equal(h.clock.pending(), 0);
});

test('the observer sees every transition with the priority', () => {
  const h = harness();
  h.router.start();
  h.clock.advance(DOWN_100);
  h.router.receive(advert({ priority: 200 }), receipt());
  h.router.stop();
  assert.deepEqual(
    h.states.map((s) => [s.previous, s.state, s.priority]),
    [
      ['INIT', 'BACKUP', 100],
      ['BACKUP', 'MASTER', 100],
      ['MASTER', 'BACKUP', 100],
      ['BACKUP', 'STOP', 100],
    ],
  );
});

test('start-up purges VIPs a crashed run may have left, when the VipManager can', () => {
  const purged: string[] = [];
  const h = harness([config({ virtualAddresses: [vip('10.0.0.100')], excludedAddresses: [vip('10.0.1.100')] })]);
  // The harness VipManager has no purge; a router built with one calls it before any state.
  assert.equal(h.vipEvents.length, 0);
  const r = new VrrpRouter(
    { instances: [h.router.instance('VI_1').config], syncGroups: [] },
    {
      clock: h.clock,
      socketFactory: () => ({ send: () => undefined, close: () => undefined }),
      vips: { add: () => undefined, remove: () => undefined, gratuitousArp: () => undefined, purge: (v) => purged.push(v.address) },
      notifier: { run: () => undefined },
      logger: nullLogger,
      observer: { instanceState: () => undefined, groupState: () => undefined },
      interfaces: h.interfaces,
    },
  );
  r.start();
  assert.deepEqual(purged, ['10.0.0.100', '10.0.1.100']);
});
