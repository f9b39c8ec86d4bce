// Every receive check of RFC 3768 §7.1 / RFC 5798 §7.1 drops the advert, counts it under its own
// reason and logs a line — and a dropped advert does not hold a backup back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VrrpInstanceInput } from '../../src/vrrp/config';
import { AUTH_PASS, AdvertReceipt, AdvertDropReason, VrrpAdvert } from '../../src/vrrp/types';
import { advert, config, harness, receipt, vip } from './fakes';

interface Case {
  reason: AdvertDropReason;
  config?: Partial<VrrpInstanceInput>;
  advert?: Partial<VrrpAdvert>;
  receipt?: Partial<AdvertReceipt>;
  log: string;
}

const pass = { authType: AUTH_PASS, authPass: 'secret' };

const cases: Case[] = [
  { reason: 'lengthError', receipt: { lengthOk: false }, log: 'shorter or longer' },
  { reason: 'ttlError', receipt: { ttl: 254 }, log: 'invalid TTL from 10.0.0.3: received 254, expect 255' },
  { reason: 'versionError', advert: { version: 3 }, log: 'wrong version from 10.0.0.3: received 3, expect 2' },
  { reason: 'invalidAuthType', advert: { authType: 7 }, log: 'invalid auth type 7' },
  { reason: 'authTypeMismatch', config: pass, advert: { authType: 0 }, log: 'received auth type 0 from 10.0.0.3, expecting 1' },
  { reason: 'authFailure', config: pass, advert: { authType: 1, authData: 'wrong' }, log: 'invalid password from 10.0.0.3' },
  { reason: 'intervalMismatch', advert: { advertIntCs: 200 }, log: 'advertisement interval mismatch from 10.0.0.3: mine=1s received=2s' },
  { reason: 'typeError', advert: { type: 2 }, log: 'invalid packet type 2' },
  { reason: 'addressListError', advert: { addresses: ['10.0.0.100', '10.0.0.101'] }, log: 'unexpected ip number count 2' },
  { reason: 'checksumError', receipt: { checksumOk: false }, log: 'invalid VRRPv2 checksum' },
  { reason: 'castMismatch', receipt: { destination: '10.0.0.2' }, log: 'expected multicast packet but received a unicast one' },
  { reason: 'addressListError', advert: { addresses: ['10.0.0.99'] }, log: 'not present in advert from 10.0.0.3: 10.0.0.100' },
  {
    reason: 'castMismatch',
    config: { unicastPeers: ['10.0.0.3'] },
    log: 'expected unicast packet but received a multicast one',
  },
  {
    reason: 'unicastSourceError',
    config: { unicastPeers: ['10.0.0.3'], checkUnicastSource: true },
    receipt: { source: '10.0.0.77', destination: '10.0.0.2' },
    log: 'unicast source address 10.0.0.77 is not a unicast peer',
  },
];

for (const c of cases) {
  test(`receive check ${c.reason}: ${c.log}`, () => {
    const h = harness([config(c.config)]);
    h.router.start();
    const vi = h.router.instance('VI_1');
    // A higher-priority advert that fails a check must not reset the Master_Down_Timer.
    for (let i = 0; i < 5; i++) {
      h.router.receive(advert({ priority: 200, ...c.advert }), receipt(c.receipt));
      h.clock.advance(1000);
    }
    assert.equal(vi.stats[c.reason], 5, `${c.reason} counted`);
    assert.equal(vi.stats.advertsReceived, 0);
    const otherDrops = Object.entries(vi.stats).filter(
      ([k, v]) => k !== c.reason && v !== 0 && !['advertsSent', 'becameMaster'].includes(k),
    );
    assert.deepEqual(otherDrops, [], 'only one counter moves');
    assert.equal(h.logs.filter((l) => l.includes(c.log) && l.startsWith('(VI_1)') && l.endsWith('- dropped')).length, 5);
    assert.equal(vi.state, 'MASTER', 'the dropped adverts did not keep it backup');
  });
}

test('a good advert of each kind is accepted (the checks do not reject what they should pass)', () => {
  const goods: [Partial<VrrpInstanceInput>, Partial<VrrpAdvert>, Partial<AdvertReceipt>][] = [
    [{}, {}, {}],
    [pass, { authType: 1, authData: 'secret' }, {}],
    [{ version: 3 }, { version: 3 }, {}],
    // v3 may carry another interval (the backup learns it); v2 may not.
    [{ version: 3 }, { version: 3, advertIntCs: 300 }, {}],
    // Unicast: TTL is not checked (keepalived), the destination is our address.
    [{ unicastPeers: ['10.0.0.3'] }, {}, { ttl: 64, destination: '10.0.0.2' }],
    [{ unicastPeers: ['10.0.0.3'], checkUnicastSource: true }, {}, { destination: '10.0.0.2' }],
    // Same set of addresses in another order.
    [{ virtualAddresses: [vip('10.0.0.100'), vip('10.0.0.101')] }, { addresses: ['10.0.0.101', '10.0.0.100'] }, {}],
  ];
  for (const [cfg, adv, rcp] of goods) {
    const h = harness([config(cfg)]);
    h.router.start();
    h.router.receive(advert({ priority: 200, ...adv }), receipt(rcp));
    assert.equal(h.router.instance('VI_1').stats.advertsReceived, 1, JSON.stringify([cfg, adv, rcp]));
  }
});

test('skip_check_adv_addr: the address list is checked only when the master changes', () => {
  const h = harness([config({ skipCheckAdvAddr: true })]);
  h.router.start();
  const vi = h.router.instance('VI_1');
  h.router.receive(advert({ priority: 200 }), receipt());
  h.router.receive(advert({ priority: 200, addresses: ['10.9.9.9'] }), receipt());
  assert.equal(vi.stats.addressListError, 0);
  assert.equal(vi.stats.advertsReceived, 2);
  h.router.receive(advert({ priority: 200, addresses: ['10.9.9.9'] }), receipt({ source: '10.0.0.4' }));
  assert.equal(vi.stats.addressListError, 1);
});

test('an advert for a VRID we do not run is counted and ignored (RFC 3768 §7.1)', () => {
  const h = harness();
  h.router.start();
  h.router.receive(advert({ vrid: 52, priority: 200 }), receipt());
  assert.equal(h.router.unknownVrid, 1);
  assert.equal(h.router.instance('VI_1').stats.advertsReceived, 0);
  assert.equal(h.router.stats().unknownVrid, 1);
});

test('an instance bound to an ifindex ignores the same VRID on another interface', () => {
  const h = harness([config({ ifindex: 3 })]);
  h.router.start();
  h.router.receive(advert({ priority: 200 }), receipt({ ifindex: 4 }));
  assert.equal(h.router.unknownVrid, 1);
  h.router.receive(advert({ priority: 200 }), receipt({ ifindex: 3 }));
  assert.equal(h.router.instance('VI_1').stats.advertsReceived, 1);
});

test('a wrong password from a higher-priority peer does not stop our takeover, and is logged', () => {
  const h = harness([config(pass)]);
  h.router.start();
  for (let i = 0; i < 6; i++) {
    h.router.receive(advert({ priority: 250, authType: 1, authData: 'guess' }), receipt());
    h.clock.advance(1000);
  }
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'MASTER');
  assert.equal(vi.stats.authFailure, 6);
  // Our own adverts carry the password.
  assert.equal(h.sent[0]!.authType, 1);
  assert.equal(h.sent[0]!.authData, 'secret');
});

test('adverts are ignored in FAULT', () => {
  const h = harness([config()], [], ({ interfaces }) => interfaces.down.add('eth0'));
  h.router.start();
  const vi = h.router.instance('VI_1');
  assert.equal(vi.state, 'FAULT');
  h.router.receive(advert({ priority: 200 }), receipt({ ttl: 1 }));
  assert.equal(vi.stats.ttlError, 0);
  assert.equal(vi.stats.advertsReceived, 0);
});
