// decode → encode gives back the captured bytes, header by header, and every checksum in the
// captures verifies with our code (the same checksums tshark marked [correct]).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allFrames, FixtureFrame } from './fixtures';
import { DecodedFrame } from './chain';
import { EncodeFlag, viewOf } from '../../src/packet/layer';
import { checksumVerifies } from '../../src/packet/checksum';

/** Zeroes [offset, offset+n) in a copy, lets `encode` write there, and expects the original back. */
function reencodes(fr: FixtureFrame, offset: number, n: number, encode: (buf: Uint8Array, view: DataView) => number, what: string): void {
  const copy = fr.bytes.slice();
  copy.fill(0, offset, offset + n);
  assert.equal(encode(copy, viewOf(copy)), n, `${fr.fixture} frame ${fr.index}: ${what} writes ${n} bytes`);
  assert.deepEqual(copy, fr.bytes, `${fr.fixture} frame ${fr.index}: ${what} round trip`);
}

test('decode → encode is byte-identical for every header of every fixture', async (t) => {
  for (const fr of allFrames()) {
    await t.test(`${fr.fixture} frame ${fr.index}`, () => {
      const d = new DecodedFrame();
      assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
      reencodes(fr, 0, d.eth.headerLength, (b, v) => d.eth.encode(b, v, 0), 'ethernet');
      if (d.layers.includes('arp')) reencodes(fr, d.eth.payloadOffset, 28, (b, v) => d.arp.encode(b, v, d.eth.payloadOffset), 'arp');
      if (d.layers.includes('ipv4')) reencodes(fr, d.ip.headerOffset, d.ip.headerLength, (b, v) => d.ip.encode(b, v, d.ip.headerOffset), 'ipv4');
      if (d.layers.includes('tcp')) reencodes(fr, d.tcp.headerOffset, d.tcp.headerLength, (b, v) => d.tcp.encode(b, v, d.tcp.headerOffset), 'tcp');
      if (d.layers.includes('udp')) reencodes(fr, d.udp.headerOffset, 8, (b, v) => d.udp.encode(b, v, d.udp.headerOffset), 'udp');
      if (d.layers.includes('icmp')) reencodes(fr, d.icmp.headerOffset, 8, (b, v) => d.icmp.encode(b, v, d.icmp.headerOffset), 'icmp');
      if (d.layers.includes('quote')) reencodes(fr, d.quoted.headerOffset, d.quoted.headerLength, (b, v) => d.quoted.encode(b, v, d.quoted.headerOffset), 'quoted ipv4');
      if (d.layers.includes('vrrp')) {
        reencodes(fr, d.vrrp.headerOffset, d.vrrp.encodedLength(), (b, v) => d.vrrp.encode(b, v, d.vrrp.headerOffset), 'vrrp');
      }
    });
  }
});

test('encode with FIX_ALL recomputes exactly the captured lengths and checksums', async (t) => {
  for (const fr of allFrames()) {
    await t.test(`${fr.fixture} frame ${fr.index}`, () => {
      const d = new DecodedFrame();
      assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
      const ip = d.ip;
      if (d.layers.includes('ipv4')) {
        const wantChecksum = ip.checksum;
        ip.checksum = 0x1234;
        ip.totalLength = 1;
        reencodes(fr, ip.headerOffset, ip.headerLength, (b, v) => ip.encode(b, v, ip.headerOffset, EncodeFlag.FIX_ALL, ip.payloadLength), 'ipv4 FIX_ALL');
        assert.equal(ip.checksum, wantChecksum);
      }
      if (d.layers.includes('tcp')) {
        const tcp = d.tcp;
        tcp.checksum = 0;
        tcp.dataOffset = 0;
        reencodes(fr, tcp.headerOffset, tcp.optionsLength + 20, (b, v) => tcp.encode(b, v, tcp.headerOffset, EncodeFlag.FIX_ALL, tcp.payloadLength, ip.src, ip.dst), 'tcp FIX_ALL');
      }
      if (d.layers.includes('udp')) {
        const udp = d.udp;
        udp.checksum = 0;
        udp.length = 0;
        reencodes(fr, udp.headerOffset, 8, (b, v) => udp.encode(b, v, udp.headerOffset, EncodeFlag.FIX_ALL, udp.payloadLength, ip.src, ip.dst), 'udp FIX_ALL');
      }
      // A first fragment's ICMP checksum covers the whole datagram, which is not all here.
      if (d.layers.includes('icmp') && !ip.isFragment) {
        const icmp = d.icmp;
        icmp.checksum = 0;
        reencodes(fr, icmp.headerOffset, 8, (b, v) => icmp.encode(b, v, icmp.headerOffset, EncodeFlag.COMPUTE_CHECKSUMS, icmp.payloadLength), 'icmp checksum');
      }
      if (d.layers.includes('vrrp')) {
        const vrrp = d.vrrp;
        vrrp.checksum = 0;
        reencodes(fr, vrrp.headerOffset, vrrp.encodedLength(), (b, v) => vrrp.encode(b, v, vrrp.headerOffset, EncodeFlag.COMPUTE_CHECKSUMS, ip.src, ip.dst), 'vrrp checksum');
      }
    });
  }
});

test('every checksum in the captures verifies, and a flipped bit makes it fail', async (t) => {
  let verified = 0;
  for (const fr of allFrames()) {
    await t.test(`${fr.fixture} frame ${fr.index}`, () => {
      const d = new DecodedFrame();
      assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
      const b = fr.bytes;
      const ip = d.ip;
      const check = (ok: () => boolean, offset: number, what: string) => {
        assert.ok(ok(), `${what} verifies`);
        b[offset]! ^= 0x10;
        try {
          assert.ok(!ok(), `${what} fails after a flipped bit at ${offset}`);
        } finally {
          b[offset]! ^= 0x10;
        }
        verified++;
      };
      if (d.layers.includes('ipv4')) check(() => checksumVerifies(b, ip.headerOffset, ip.headerLength), ip.headerOffset + 8, 'IP header');
      // A fragment carries only part of the datagram the transport checksum covers.
      if (ip.isFragment) return;
      if (d.layers.includes('tcp')) check(() => d.tcp.verifyChecksum(b, d.tcp.headerOffset, ip.payloadLength, ip.src, ip.dst), ip.payloadOffset + ip.payloadLength - 1, 'TCP');
      if (d.layers.includes('udp')) check(() => d.udp.verifyChecksum(b, d.udp.headerOffset, ip.src, ip.dst), ip.payloadOffset + ip.payloadLength - 1, 'UDP');
      if (d.layers.includes('icmp')) check(() => d.icmp.verifyChecksum(b, d.icmp.headerOffset, ip.payloadLength), ip.payloadOffset + ip.payloadLength - 1, 'ICMP');
      if (d.layers.includes('vrrp')) {
        check(() => d.vrrp.verifyChecksum(b, d.vrrp.headerOffset, ip.src, ip.dst), ip.payloadOffset + 2, 'VRRP');
        if (d.vrrp.version === 3) {
          // The v3 checksum includes the pseudo-header: another destination must not verify.
          assert.ok(!d.vrrp.verifyChecksum(b, d.vrrp.headerOffset, ip.src, ip.dst + 1), 'VRRPv3 pseudo-header is covered');
        }
      }
    });
  }
  assert.ok(verified >= 60, `verified ${verified} checksums`);
});
