// The wire mapping checked against adverts captured from real keepalived 2.2
// (test/fixtures/packets/vrrp-v2.txt, vrrp-v3.txt): decode them into the state machine's records,
// feed them to a router configured as keepalived's peer, and encode our own adverts to the very
// same bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { instanceConfig } from '../../src/vrrp/config';
import { Ipv4Header } from '../../src/packet/ipv4';
import { EncodeFlag, viewOf } from '../../src/packet/layer';
import { DecodedAdvert, VrrpWire, WireError } from '../../src/vrrp/wire';
import { OutgoingAdvert } from '../../src/vrrp/types';
import { loadFixture } from '../packet/fixtures';
import { config, harness, vip } from './fakes';

const ETHERNET = 14;

function ipPackets(name: string): Uint8Array[] {
  return loadFixture(name).map((f) => f.bytes.slice(ETHERNET));
}

function decoded(r: DecodedAdvert | WireError): DecodedAdvert {
  if ('error' in r) throw new Error(r.error);
  return r;
}

const v2Peer = {
  vrid: 51,
  primaryAddress: '10.201.0.2',
  authType: 1,
  authPass: 'uvs-pw',
  virtualAddresses: [vip('10.201.0.100'), vip('10.201.0.101')],
};
const v3Peer = {
  vrid: 52,
  version: 3 as const,
  advertIntMs: 500,
  primaryAddress: '10.201.0.2',
  virtualAddresses: [vip('10.201.0.110'), vip('10.201.0.111'), vip('10.201.0.112')],
};

test('keepalived VRRPv2 adverts (PASS auth) decode to the fields tshark shows', () => {
  const wire = new VrrpWire();
  for (const packet of ipPackets('vrrp-v2')) {
    const { advert, receipt } = decoded(wire.decode(packet, 7));
    assert.deepEqual(advert, {
      version: 2,
      type: 1,
      vrid: 51,
      priority: 150,
      advertIntCs: 100,
      authType: 1,
      authData: 'uvs-pw',
      addresses: ['10.201.0.100', '10.201.0.101'],
    });
    assert.deepEqual(receipt, {
      source: '10.201.0.1',
      destination: '224.0.0.18',
      ttl: 255,
      ifindex: 7,
      checksumOk: true,
      lengthOk: true,
    });
  }
});

test('keepalived VRRPv3 adverts decode with centiseconds and a good pseudo-header checksum', () => {
  const wire = new VrrpWire();
  for (const packet of ipPackets('vrrp-v3')) {
    const { advert, receipt } = decoded(wire.decode(packet, 0));
    assert.equal(advert.version, 3);
    assert.equal(advert.vrid, 52);
    assert.equal(advert.priority, 200);
    assert.equal(advert.advertIntCs, 50);
    assert.deepEqual(advert.addresses, ['10.201.0.110', '10.201.0.111', '10.201.0.112']);
    assert.equal(receipt.checksumOk, true);
    assert.equal(receipt.lengthOk, true);
  }
});

test('a router configured as keepalived\'s peer accepts its adverts and stays backup', () => {
  for (const [fixture, peer] of [
    ['vrrp-v2', v2Peer],
    ['vrrp-v3', v3Peer],
  ] as const) {
    const h = harness([config(peer)]);
    h.router.start();
    const wire = new VrrpWire();
    const vi = h.router.instance('VI_1');
    for (let round = 0; round < 10; round++) {
      for (const packet of ipPackets(fixture)) {
        const { advert, receipt } = decoded(wire.decode(packet, 0));
        h.router.receive(advert, receipt);
      }
      h.clock.advance(vi.config.advertIntMs);
    }
    assert.equal(vi.state, 'BACKUP', fixture);
    assert.equal(vi.stats.advertsReceived, 30, fixture);
    assert.equal(h.sent.length, 0);
  }
});

test('the same adverts with another password, or one flipped bit, are dropped and counted', () => {
  const h = harness([config({ ...v2Peer, authPass: 'other' }), config({ ...v3Peer, name: 'VI_3' })]);
  h.router.start();
  const wire = new VrrpWire();
  const [v2] = ipPackets('vrrp-v2');
  h.router.receive(decoded(wire.decode(v2!, 0)).advert, decoded(wire.decode(v2!, 0)).receipt);
  assert.equal(h.router.instance('VI_1').stats.authFailure, 1);
  const [v3] = ipPackets('vrrp-v3');
  const bad = v3!.slice();
  bad[bad.length - 1]! ^= 1; // last address byte: the VRRP checksum no longer matches
  const r = decoded(wire.decode(bad, 0));
  assert.equal(r.receipt.checksumOk, false);
  h.router.receive(r.advert, r.receipt);
  assert.equal(h.router.instance('VI_3').stats.checksumError, 1);
});

test('a TTL below 255 (e.g. routed) is seen by the receive check', () => {
  const [v2] = ipPackets('vrrp-v2');
  const packet = v2!.slice();
  const ip = new Ipv4Header();
  const view = viewOf(packet);
  assert.equal(ip.decode(packet, view, 0, packet.length), 0);
  ip.ttl = 254;
  ip.encode(packet, view, 0, EncodeFlag.COMPUTE_CHECKSUMS);
  const r = decoded(new VrrpWire().decode(packet, 0));
  assert.equal(r.receipt.ttl, 254);
  const h = harness([config(v2Peer)]);
  h.router.start();
  h.router.receive(r.advert, r.receipt);
  assert.equal(h.router.instance('VI_1').stats.ttlError, 1);
});

test('truncated and non-VRRP packets', () => {
  const wire = new VrrpWire();
  const [v2] = ipPackets('vrrp-v2');
  // Cut the auth data and fix the IP total length: the VRRP length check fails.
  const short = v2!.slice(0, v2!.length - 4);
  const ip = new Ipv4Header();
  const view = viewOf(short);
  ip.verifyChecksum = false;
  ip.decode(short, view, 0, short.length);
  ip.totalLength = short.length;
  ip.encode(short, view, 0, EncodeFlag.COMPUTE_CHECKSUMS);
  assert.equal(decoded(wire.decode(short, 0)).receipt.lengthOk, false);
  // Protocol 6 is not ours.
  const tcp = v2!.slice();
  const view2 = viewOf(tcp);
  ip.verifyChecksum = true;
  ip.decode(tcp, view2, 0, tcp.length);
  ip.protocol = 6;
  ip.encode(tcp, view2, 0, EncodeFlag.COMPUTE_CHECKSUMS);
  const r = wire.decode(tcp, 0);
  assert.ok('error' in r && /not VRRP/.test(r.error));
  assert.ok('error' in wire.decode(new Uint8Array(10), 0));
});

test('our adverts encode byte for byte as keepalived\'s (v2 PASS and v3)', () => {
  const wire = new VrrpWire();
  const [v2] = ipPackets('vrrp-v2');
  const [v3] = ipPackets('vrrp-v3');
  const v2Advert: OutgoingAdvert = {
    version: 2,
    type: 1,
    vrid: 51,
    priority: 150,
    advertIntCs: 100,
    authType: 1,
    authData: 'uvs-pw',
    addresses: ['10.201.0.100', '10.201.0.101'],
    interfaceName: 'eth0',
    source: '10.201.0.1',
    destination: '224.0.0.18',
    ttl: 255,
  };
  const ipId = (p: Uint8Array): number => (p[4]! << 8) | p[5]!;
  assert.deepEqual(Buffer.from(wire.encodePacket(v2Advert, '10.201.0.1', ipId(v2!))), Buffer.from(v2!));
  const v3Advert: OutgoingAdvert = {
    ...v2Advert,
    version: 3,
    vrid: 52,
    priority: 200,
    advertIntCs: 50,
    authType: 0,
    authData: '',
    addresses: ['10.201.0.110', '10.201.0.111', '10.201.0.112'],
  };
  assert.deepEqual(Buffer.from(wire.encodePacket(v3Advert, '10.201.0.1', ipId(v3!))), Buffer.from(v3!));
  // The payload-only form is the same VRRP message.
  assert.deepEqual(Buffer.from(wire.encodePayload(v3Advert, '10.201.0.1')), Buffer.from(v3!.subarray(20)));
});

test('what the state machine sends survives encode → decode → receive checks of a peer', () => {
  const a = harness([config({ ...v2Peer, priority: 200 })]);
  a.router.start();
  a.clock.advance(4000);
  const out = a.sent[0]!;
  const wire = new VrrpWire();
  const r = decoded(wire.decode(wire.encodePacket(out, out.source ?? '', 1), 0));
  const b = harness([config({ ...v2Peer, primaryAddress: '10.201.0.3' })]);
  b.router.start();
  b.router.receive(r.advert, r.receipt);
  assert.equal(b.router.instance('VI_1').stats.advertsReceived, 1);
  assert.equal(instanceConfig(config(v2Peer)).authPass, 'uvs-pw');
});

// keepalived compares the 8 bytes of a PASS advert's authentication data with its own 8 (the
// password cut at 8 bytes, zero-padded): bytes after a NUL, and bytes that are not valid UTF-8,
// count like any other.
test('PASS authentication compares the 8 raw bytes, not decoded text up to the first NUL', () => {
  const wire = new VrrpWire();
  const ours = instanceConfig(config({ ...v2Peer, authPass: 'secret' }));
  const packetWith = (auth: number[]): Uint8Array => {
    const p = wire.encodePacket({
      version: 2, type: 1, vrid: ours.vrid, priority: 100, advertIntCs: 100, authType: 1, authData: 'secret',
      addresses: ours.virtualAddresses.map((a) => a.address), interfaceName: 'eth0', source: '10.201.0.3', destination: '224.0.0.18', ttl: 255,
    }, '10.201.0.3', 1);
    const at = p.length - 8;
    for (let i = 0; i < 8; i++) p[at + i] = auth[i]!;
    // Both checksums again: the packet must stay valid except for its password.
    const view = viewOf(p);
    view.setUint16(20 + 6, 0);
    let sum = 0;
    for (let i = 20; i < p.length; i += 2) sum += (p[i]! << 8) | (p[i + 1] ?? 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    view.setUint16(20 + 6, ~sum & 0xffff);
    return p;
  };
  const verdict = (auth: number[]): string => {
    const r = decoded(wire.decode(packetWith(auth), 0));
    const h = harness([config({ ...v2Peer, authPass: 'secret', primaryAddress: '10.201.0.2' })]);
    h.router.start();
    h.router.receive(r.advert, r.receipt);
    return h.logs.some((l) => /invalid password/.test(l)) ? 'refused' : 'accepted';
  };
  const secret = [...Buffer.from('secret')];
  assert.equal(verdict([...secret, 0, 0]), 'accepted');
  assert.equal(verdict([...secret, 0, 0x41]), 'refused', 'a byte after the NUL padding differs');
  assert.equal(verdict([...secret.slice(0, 5), 0xff, 0, 0]), 'refused', 'an invalid UTF-8 byte differs from "t"');
  const pw8 = instanceConfig(config({ ...v2Peer, authPass: 'pä' + 'x'.repeat(6) }));
  assert.equal(Buffer.from(pw8.authPass, 'latin1').length, 8, 'a multibyte password is cut at 8 bytes, not characters');
});
