// v2 vs v3 timing: Skew_Time and Master_Down_Interval (RFC 3768 §6.1, RFC 5798 §6.1),
// centiseconds on the wire, fractional advert_int, and v3's learned Master_Adver_Interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VrrpConfigError, instanceConfig } from '../../src/vrrp/config';
import { masterDownIntervalMs, skewTimeMs } from '../../src/vrrp/instance';
import { advert, config, harness, receipt } from './fakes';

test('Skew_Time and Master_Down_Interval, as keepalived computes them in whole microseconds', () => {
  const table: [version: number, priority: number, intervalMs: number, skew: number, down: number][] = [
    // v2: (256 - p) / 256 seconds, whatever the interval (RFC 3768 §6.1)
    [2, 100, 1000, 609.375, 3609.375],
    [2, 254, 1000, 7.812, 3007.812],
    [2, 1, 1000, 996.093, 3996.093],
    [2, 100, 3000, 609.375, 9609.375],
    // v3: ((256 - p) * Master_Adver_Interval) / 256 with the interval in centiseconds (RFC 5798 §6.1)
    [3, 100, 1000, 609.375, 3609.375],
    [3, 100, 3000, 1828.125, 10828.125],
    [3, 100, 500, 304.687, 1804.687],
    [3, 200, 10, 2.187, 32.187],
    [3, 255, 1000, 3.906, 3003.906],
  ];
  for (const [version, priority, intervalMs, skew, down] of table) {
    assert.equal(skewTimeMs(version, priority, intervalMs), skew, `skew v${version} p${priority} ${intervalMs}ms`);
    assert.equal(masterDownIntervalMs(version, priority, intervalMs), down, `down v${version} p${priority} ${intervalMs}ms`);
  }
});

test('v3 with advert_int 0.5: adverts every 500 ms carrying 50 centiseconds', () => {
  const h = harness([config({ version: 3, advertIntMs: 500 })]);
  h.router.start();
  h.clock.advance(1804.687);
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
  h.clock.advance(2000);
  assert.deepEqual(
    h.sent.map((s) => [s.at, s.advertIntCs, s.version, s.authType]),
    [1804.687, 2304.687, 2804.687, 3304.687, 3804.687].map((at) => [at, 50, 3, 0]),
  );
});

test('v3 backup learns Master_Adver_Interval from the master and times out on it', () => {
  // We are configured with 1 s; the master advertises every 3 s (300 cs).
  const h = harness([config({ version: 3 })]);
  h.router.start();
  h.router.receive(advert({ version: 3, priority: 200, advertIntCs: 300 }), receipt());
  const vi = h.router.instance('VI_1');
  assert.equal(vi.masterAdverIntMs, 3000);
  // Master_Down_Interval = 3 * 3 s + (156 * 300 / 256) cs = 10828.125 ms
  h.clock.advance(10828.124);
  assert.equal(vi.state, 'BACKUP');
  h.clock.advance(0.001);
  assert.equal(vi.state, 'MASTER');
  // As master it goes back to its own interval (keepalived vrrp_state_become_master).
  assert.equal(vi.masterAdverIntMs, 1000);
  assert.equal(h.sent[0]!.advertIntCs, 100);
  h.clock.advance(1000);
  assert.equal(h.sent.length, 2);
});

test('v3 centisecond intervals: 0.01 s is the smallest, 40.95 s the largest', () => {
  const h = harness([config({ version: 3, advertIntMs: 10, priority: 200 })]);
  h.router.start();
  h.clock.advance(32.187);
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
  h.clock.advance(100);
  assert.equal(h.sent.length, 11);
  assert.ok(h.sent.every((s) => s.advertIntCs === 1));
  assert.doesNotThrow(() => instanceConfig(config({ version: 3, advertIntMs: 40950 })));
  assert.throws(() => instanceConfig(config({ version: 3, advertIntMs: 40960 })), VrrpConfigError);
  assert.throws(() => instanceConfig(config({ version: 3, advertIntMs: 5 })), /0.01..40.95/);
  assert.throws(() => instanceConfig(config({ version: 3, advertIntMs: 15.5 })), /steps of 0.01/);
});

test('v2 takes whole seconds only', () => {
  assert.throws(() => instanceConfig(config({ advertIntMs: 1500 })), /whole seconds 1..255 for VRRPv2/);
  assert.doesNotThrow(() => instanceConfig(config({ advertIntMs: 3000 })));
});

test('v2 with advert_int 3: 3 s adverts, and a 1 s advert from a peer is an interval mismatch', () => {
  const h = harness([config({ advertIntMs: 3000 })]);
  h.router.start();
  h.router.receive(advert({ priority: 200, advertIntCs: 100 }), receipt());
  assert.equal(h.router.instance('VI_1').stats.intervalMismatch, 1);
  h.clock.advance(9609.375);
  assert.equal(h.router.instance('VI_1').state, 'MASTER');
  h.clock.advance(6000);
  assert.deepEqual(
    h.sent.map((s) => [s.at, s.advertIntCs]),
    [
      [9609.375, 300],
      [12609.375, 300],
      [15609.375, 300],
    ],
  );
});

test('configuration errors say which instance and which setting', () => {
  assert.throws(() => instanceConfig(config({ vrid: 0 })), /vrrp instance VI_1: virtual_router_id 0 is outside 1..255/);
  assert.throws(() => instanceConfig(config({ priority: 256 })), /priority 256 is outside 1..255/);
  assert.throws(() => instanceConfig(config({ primaryAddress: '10.0.0' })), /primary address "10.0.0" is not an IPv4 address/);
  assert.throws(() => instanceConfig(config({ version: 3, authType: 1, authPass: 'x' })), /VRRPv3 has no authentication/);
  assert.throws(
    () => instanceConfig(config({ virtualAddresses: [{ address: 'fe80::1', prefixLength: 64, dev: 'eth0' }] })),
    /IPv6 VIPs are not supported yet/,
  );
  // keepalived truncates a PASS password to 8 bytes.
  assert.equal(instanceConfig(config({ authType: 1, authPass: '123456789' })).authPass, '12345678');
});
