// RFC 1071 sums and RFC 1624 incremental updates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng, loadFixture } from './fixtures';
import {
  checksumUpdate16,
  checksumUpdate32,
  checksumVerifies,
  finishChecksum,
  foldSum,
  foldedSum,
  internetChecksum,
  onesComplementSum,
  pseudoHeaderSum,
} from '../../src/packet/checksum';
import { udpChecksumUpdate16 } from '../../src/packet/udp';
import { viewOf } from '../../src/packet/layer';
import { DecodedFrame } from './chain';

/** Straightforward reference: one 16-bit word at a time, fold after each add. */
function referenceChecksum(b: Uint8Array, offset: number, length: number): number {
  let sum = 0;
  for (let i = 0; i < length; i += 2) {
    const hi = b[offset + i]!;
    const lo = i + 1 < length ? b[offset + i + 1]! : 0;
    sum += (hi << 8) | lo;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

test('RFC 1071 section 3 numerical example', () => {
  // Bytes 00 01 f2 03 f4 f5 f6 f7: the sum is ddf2 (carries folded), the checksum its complement.
  const b = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(foldSum(onesComplementSum(b, 0, 8)), 0xddf2);
  assert.equal(internetChecksum(b, 0, 8), 0x220d);
});

test('full sum equals a word-at-a-time reference on random data, odd lengths and offsets included', () => {
  const rand = prng(1071);
  const b = new Uint8Array(1600);
  for (let iter = 0; iter < 500; iter++) {
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
    const offset = Math.floor(rand() * 64);
    const length = Math.floor(rand() * (b.length - offset));
    assert.equal(internetChecksum(b, offset, length), referenceChecksum(b, offset, length), `offset ${offset} length ${length}`);
  }
  // All-ones data: the sum is -0 (0xffff), whose checksum is 0.
  assert.equal(internetChecksum(new Uint8Array(20).fill(0xff), 0, 20), 0);
  // A range running past the buffer is clipped, not read.
  assert.equal(internetChecksum(b, b.length - 3, 100), referenceChecksum(b, b.length - 3, 3));
});

test('a header with its checksum in place verifies; the same holds through the initial sum', () => {
  const rand = prng(2);
  const b = new Uint8Array(40);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
  const v = viewOf(b);
  v.setUint16(10, 0);
  v.setUint16(10, internetChecksum(b, 0, 40, 1234));
  assert.ok(checksumVerifies(b, 0, 40, 1234));
  assert.ok(!checksumVerifies(b, 0, 40, 1235));
});

test('pseudo-header sum reproduces the captured TCP checksum', () => {
  const fr = loadFixture('http-tcp')[0]!;
  const d = new DecodedFrame();
  assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
  const copy = fr.bytes.slice();
  viewOf(copy).setUint16(d.tcp.headerOffset + 16, 0);
  const initial = pseudoHeaderSum(d.ip.src, d.ip.dst, 6, d.ip.payloadLength);
  assert.equal(finishChecksum(onesComplementSum(copy, d.tcp.headerOffset, d.ip.payloadLength, initial)), d.tcp.checksum);
});

test('RFC 1624 incremental update equals full recomputation for random 16- and 32-bit changes', () => {
  const rand = prng(1624);
  const b = new Uint8Array(60);
  const v = viewOf(b);
  for (let iter = 0; iter < 20000; iter++) {
    const n = 20 + 2 * Math.floor(rand() * 20);
    for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
    // Now and then all-zero or all-one data, where the ±0 corner cases live.
    if (iter % 97 === 0) b.fill(iter % 2 ? 0xff : 0, 0, n);
    v.setUint16(10, 0);
    const before = internetChecksum(b, 0, n);
    v.setUint16(10, before);
    if (rand() < 0.5) {
      let at = 2 * Math.floor(rand() * (n / 2));
      if (at === 10) at = 12;
      const oldValue = v.getUint16(at);
      const newValue = iter % 13 === 0 ? (iter % 2 ? 0 : 0xffff) : Math.floor(rand() * 0x10000);
      v.setUint16(at, newValue);
      const updated = checksumUpdate16(before, oldValue, newValue);
      v.setUint16(10, 0);
      assert.equal(updated, internetChecksum(b, 0, n), `16-bit change at ${at}: ${oldValue} → ${newValue}`);
    } else {
      const at = 12 + 4 * Math.floor(rand() * Math.floor((n - 12) / 4)); // aligned 32-bit fields after the checksum
      if (at + 4 > n) continue;
      const oldValue = v.getUint32(at);
      const newValue = Math.floor(rand() * 0x100000000);
      v.setUint32(at, newValue);
      const updated = checksumUpdate32(before, oldValue, newValue);
      v.setUint16(10, 0);
      assert.equal(updated, internetChecksum(b, 0, n), `32-bit change at ${at}`);
    }
  }
});

test('incremental update of a captured packet: NAT-style address and port rewrite', () => {
  const fr = loadFixture('http-tcp')[2]!;
  const d = new DecodedFrame();
  const b = fr.bytes.slice();
  const v = viewOf(b);
  assert.equal(d.decode(b, v, b.length), 0);
  const newDst = 0x0a000063;
  const newPort = 80;
  // IP header: only the address; TCP: the address through the pseudo-header, and the port.
  const ipCheck = checksumUpdate32(d.ip.checksum, d.ip.dst, newDst);
  let tcpCheck = checksumUpdate32(d.tcp.checksum, d.ip.dst, newDst);
  tcpCheck = checksumUpdate16(tcpCheck, d.tcp.dstPort, newPort);
  v.setUint32(d.ip.headerOffset + 16, newDst);
  v.setUint16(d.ip.headerOffset + 10, ipCheck);
  v.setUint16(d.tcp.headerOffset + 2, newPort);
  v.setUint16(d.tcp.headerOffset + 16, tcpCheck);
  assert.equal(d.decode(b, v, b.length), 0, 'IP checksum still verifies');
  assert.ok(d.tcp.verifyChecksum(b, d.tcp.headerOffset, d.ip.payloadLength, d.ip.src, newDst));
});

test('UDP: a zero checksum stays zero, a computed zero becomes 0xffff', () => {
  assert.equal(udpChecksumUpdate16(0, 1234, 4321), 0);
  // Find a change whose RFC 1624 result is 0 and check it is sent as 0xffff.
  assert.equal(checksumUpdate16(0xfffe, 0, 1), 0xfffd);
  assert.equal(checksumUpdate16(0x0001, 0x0000, 0x0001), 0x0000);
  assert.equal(udpChecksumUpdate16(0x0001, 0x0000, 0x0001), 0xffff);
});

test('foldedSum: the same folded sum as the byte-wise one, at every alignment and odd length', () => {
  const buf = new Uint8Array(4096 + 8);
  let x = 12345;
  for (let i = 0; i < buf.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    buf[i] = x >>> 24;
  }
  buf.fill(0xff, 100, 400); // long carries
  const u32 = new Uint32Array(buf.buffer, 0, buf.byteLength >>> 2);
  for (const offset of [0, 1, 2, 3, 4, 20, 52]) {
    for (const length of [0, 1, 2, 3, 5, 20, 1399, 1400, 1480, 4096]) {
      for (const initial of [0, 0x1fffe, 123456]) {
        assert.equal(foldedSum(buf, u32, offset, length, initial), foldSum(onesComplementSum(buf, offset, length, initial)), `offset ${offset} length ${length} initial ${initial}`);
      }
    }
  }
  const sub = buf.subarray(4);
  assert.equal(foldedSum(sub, u32, 16, 1000, 7), foldSum(onesComplementSum(sub, 16, 1000, 7)), 'a view that does not start its buffer');
});
