// Truncated and malformed input gives a drop reason, never an exception, never a read past the data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allFrames, loadFixture, prng } from './fixtures';
import { DecodedFrame } from './chain';
import { DropReason, DROP_REASON_COUNT, DROP_REASON_NAMES, dropReasonName } from '../../src/packet/drop';
import { viewOf } from '../../src/packet/layer';
import { internetChecksum } from '../../src/packet/checksum';
import { EthernetHeader } from '../../src/packet/ethernet';
import { Ipv4Header } from '../../src/packet/ipv4';
import { TcpHeader } from '../../src/packet/tcp';
import { UdpHeader } from '../../src/packet/udp';
import { IcmpHeader } from '../../src/packet/icmp';
import { ArpPacket } from '../../src/packet/arp';
import { VrrpPacket } from '../../src/packet/vrrp';

test('the drop reason table has one name per code and stable codes', () => {
  assert.equal(DROP_REASON_NAMES.length, DROP_REASON_COUNT);
  assert.equal(new Set(DROP_REASON_NAMES).size, DROP_REASON_COUNT);
  // Codes are part of the counter layout: these must never move.
  assert.equal(dropReasonName(DropReason.TRUNCATED_ETH), 'TRUNCATED_ETH');
  assert.equal(DropReason.TRUNCATED_ETH, 1);
  assert.equal(dropReasonName(DropReason.BAD_IP_CHECKSUM), 'BAD_IP_CHECKSUM');
  assert.equal(DropReason.BAD_IP_CHECKSUM, 9);
  assert.equal(dropReasonName(DropReason.TOO_BIG), 'TOO_BIG');
  assert.equal(dropReasonName(999), 'DROP_999');
});

test('every fixture truncated at every length: a drop reason exactly when a header is cut', async (t) => {
  for (const fr of allFrames()) {
    await t.test(`${fr.fixture} frame ${fr.index}`, () => {
      const d = new DecodedFrame();
      assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
      const required = d.required;
      assert.ok(required > 0 && required <= fr.bytes.length);
      for (let n = 0; n < fr.bytes.length; n++) {
        // Both ways a frame can be short: a shorter length over the full buffer, and a buffer that
        // really ends (a read past it would throw RangeError from DataView).
        const cut = fr.bytes.slice(0, n);
        for (const [buf, view, len] of [
          [fr.bytes, fr.view, n],
          [cut, viewOf(cut), n],
          [cut, viewOf(cut), fr.bytes.length], // a length that lies: clipped to the buffer
        ] as const) {
          let r: number;
          assert.doesNotThrow(() => (r = d.decode(buf, view, len)), `length ${n}`);
          if (n < required) assert.notEqual(r!, 0, `length ${n} < ${required} must be refused`);
          else assert.equal(r!, 0, `length ${n} >= ${required} (only padding cut) is fine`);
        }
      }
    });
  }
});

test('random byte corruption of every fixture never throws (fixed seed, bounded)', () => {
  const rand = prng(0x5eed);
  const frames = allFrames();
  const d = new DecodedFrame();
  const seen = new Set<number>();
  for (let iter = 0; iter < 20000; iter++) {
    const fr = frames[iter % frames.length]!;
    const b = fr.bytes.slice();
    const flips = 1 + Math.floor(rand() * 4);
    // Mostly headers: the first 80 bytes hold every header field that steers the decoders.
    for (let k = 0; k < flips; k++) b[Math.floor(rand() * Math.min(b.length, 80))] = Math.floor(rand() * 256);
    const r = d.decode(b, viewOf(b), b.length);
    assert.ok(Number.isInteger(r) && r >= 0 && r < DROP_REASON_COUNT, `reason ${r}`);
    seen.add(r);
  }
  assert.ok(seen.has(0) && seen.has(DropReason.BAD_IP_CHECKSUM), `reasons seen: ${[...seen].map(dropReasonName).join(',')}`);
});

/** The first TCP fixture frame, mutated by `f` (IP checksum fixed afterwards unless told not to). */
function mutated(name: string, index: number, f: (b: Uint8Array, v: DataView, d: DecodedFrame) => void, fixIpChecksum = true): Uint8Array {
  const fr = loadFixture(name)[index]!;
  const d = new DecodedFrame();
  assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
  const b = fr.bytes.slice();
  const v = viewOf(b);
  f(b, v, d);
  if (fixIpChecksum && d.layers.includes('ipv4')) {
    const at = d.ip.headerOffset;
    const ihl = (b[at]! & 0x0f) * 4;
    v.setUint16(at + 10, 0);
    v.setUint16(at + 10, internetChecksum(b, at, Math.max(ihl, 20)));
  }
  return b;
}
const verdict = (b: Uint8Array) => dropReasonName(new DecodedFrame().decode(b, viewOf(b), b.length));

test('bad versions, lengths, offsets and counts give the matching reason', () => {
  const ETH = 14;
  assert.equal(verdict(mutated('http-tcp', 0, (b) => (b[ETH] = 0x65))), 'BAD_IP_VERSION');
  assert.equal(verdict(mutated('http-tcp', 0, (b) => (b[ETH] = 0x44))), 'BAD_IHL');
  assert.equal(verdict(mutated('vrrp-v3', 0, (b) => (b[ETH] = 0x4f))), 'TRUNCATED_IP', 'IHL 15 (60 bytes) in a 40-byte packet');
  assert.equal(verdict(mutated('http-tcp', 0, (b) => (b[ETH] = 0x4f))), 'BAD_IP_OPTIONS', 'IHL 15 makes the TCP header look like options that do not parse');
  assert.equal(verdict(mutated('http-tcp', 0, (_b, v) => v.setUint16(ETH + 2, 19))), 'BAD_IP_TOTAL_LENGTH');
  assert.equal(verdict(mutated('http-tcp', 0, (_b, v) => v.setUint16(ETH + 2, 61))), 'TRUNCATED_IP');
  assert.equal(verdict(mutated('http-tcp', 0, (b) => (b[ETH + 8] = 1), false)), 'BAD_IP_CHECKSUM');
  assert.equal(verdict(mutated('http-tcp', 0, (_b, v) => v.setUint16(12, 0x86dd))), 'UNSUPPORTED_ETHERTYPE');
  // TCP data offset: below 5, and beyond the segment.
  assert.equal(verdict(mutated('http-tcp', 0, (b, _v, d) => (b[d.tcp.headerOffset + 12] = 0x40))), 'BAD_TCP_OFFSET');
  assert.equal(verdict(mutated('http-tcp', 1, (b, _v, d) => (b[d.tcp.headerOffset + 12] = 0xf0))), 'TRUNCATED_TCP');
  // UDP length below 8 and beyond the IP payload.
  assert.equal(verdict(mutated('icmp-port-unreachable', 0, (_b, v, d) => v.setUint16(d.udp.headerOffset + 4, 7))), 'BAD_UDP_LENGTH');
  assert.equal(verdict(mutated('icmp-port-unreachable', 0, (_b, v, d) => v.setUint16(d.udp.headerOffset + 4, 26))), 'BAD_UDP_LENGTH');
  // IP options whose record-route length runs past the header.
  assert.equal(verdict(mutated('ipv4-options', 0, (b) => (b[ETH + 20 + 2] = 41))), 'BAD_IP_OPTIONS');
  assert.equal(verdict(mutated('ipv4-options', 0, (b) => (b[ETH + 20 + 2] = 1))), 'BAD_IP_OPTIONS');
  // VRRP: version, type, an address count that does not fit.
  assert.equal(verdict(mutated('vrrp-v2', 0, (b, _v, d) => (b[d.vrrp.headerOffset] = 0x41))), 'BAD_VRRP_VERSION');
  assert.equal(verdict(mutated('vrrp-v3', 0, (b, _v, d) => (b[d.vrrp.headerOffset] = 0x32))), 'BAD_VRRP_TYPE');
  assert.equal(verdict(mutated('vrrp-v3', 0, (b, _v, d) => (b[d.vrrp.headerOffset + 3] = 4))), 'TRUNCATED_VRRP');
  assert.equal(verdict(mutated('vrrp-v2', 0, (b, _v, d) => (b[d.vrrp.headerOffset + 3] = 3))), 'TRUNCATED_VRRP', 'v2 needs room for the auth data too');
  // ARP other than Ethernet/IPv4.
  assert.equal(verdict(mutated('arp-request-reply', 0, (b) => (b[ETH + 4] = 8))), 'BAD_ARP_FORMAT');
  assert.equal(verdict(mutated('arp-request-reply', 0, (_b, v) => v.setUint16(ETH, 6))), 'BAD_ARP_FORMAT');
  // A VLAN tag cut short.
  const tagged = loadFixture('vlan-arp')[0]!.bytes;
  assert.equal(new EthernetHeader().decode(tagged, viewOf(tagged), 0, 17), DropReason.TRUNCATED_VLAN);
  // ICMP error whose quote is too short for IP header + 8 bytes.
  assert.equal(verdict(mutated('icmp-port-unreachable', 1, (_b, v, d) => v.setUint16(d.ip.headerOffset + 2, d.ip.totalLength - d.icmp.payloadLength + 27))), 'TRUNCATED_ICMP_QUOTE');
});

test('each decoder alone survives every offset/length pair over a short buffer', () => {
  const rand = prng(7);
  const buf = new Uint8Array(64).map(() => Math.floor(rand() * 256));
  buf[0] = 0x45;
  const view = viewOf(buf);
  const decoders = [new EthernetHeader(), new Ipv4Header(), new TcpHeader(), new UdpHeader(), new IcmpHeader(), new ArpPacket(), new VrrpPacket()];
  for (const dec of decoders) {
    for (let offset = -2; offset <= buf.length + 2; offset++) {
      for (let len = -1; len <= buf.length + 2; len++) {
        const r = dec.decode(buf, view, offset, len);
        assert.ok(Number.isInteger(r) && r >= 0 && r < DROP_REASON_COUNT);
      }
    }
  }
});
