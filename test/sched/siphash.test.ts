// SipHash test vectors: SipHash-2-4 from the reference implementation (github.com/veorq/SipHash,
// as copied into the kernel's lib/siphash_kunit.c), and the kernel's hsiphash on 64-bit
// (SipHash-1-3 truncated to u32) from lib/siphash_kunit.c: vector n hashes bytes 0..n-1 under the
// key 00 01 .. 0f.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hsiphashU32, sipHash, sipKeyFromBytes } from '../../src/sched/siphash';

const KEY = sipKeyFromBytes(Uint8Array.from({ length: 16 }, (_, i) => i));
const SIPHASH24 = [
  0x726fdb47dd0e0e31n, 0x74f839c593dc67fdn, 0x0d6c8009d9a94f5an, 0x85676696d7fb7e2dn, 0xcf2794e0277187b7n,
  0x18765564cd99a68dn, 0xcbc9466e58fee3cen, 0xab0200f58b01d137n, 0x93f5f5799a932462n, 0x9e0082df0ba9e4b0n,
  0x7a5dbbc594ddb9f3n, 0xf4b32f46226bada7n, 0x751e8fbc860ee5fbn, 0x14ea5627c0843d90n, 0xf723ca908e7af2een,
  0xa129ca6149be45e5n, 0x3f2acc7f57c29bdbn, 0x699ae9f52cbe4794n, 0x4bc1b3f0968dd39cn, 0xbb6dc91da77961bdn,
];
const HSIPHASH64 = [
  0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140,
  0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956,
  0x7d908b66, 0x63dbd80c, 0xb473e63e, 0x8d297d1c,
];
const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);

test('SipHash-2-4 reference vectors (lengths 0..19)', () => {
  SIPHASH24.forEach((want, len) => assert.equal(sipHash(KEY, bytes(len)), want, `length ${len}`));
});

test('hsiphash (64-bit kernel: SipHash-1-3, low 32 bits) vectors (lengths 0..19)', () => {
  HSIPHASH64.forEach((want, len) => assert.equal(Number(sipHash(KEY, bytes(len), 1, 3) & 0xffffffffn), want, `length ${len}`));
});

test('hsiphashU32 (hot path) equals the general SipHash-1-3 on 4 bytes', () => {
  // The kernel's own 4-byte vector: hsiphash_1u32(0x03020100) == vector[4].
  assert.equal(hsiphashU32(0x03020100, KEY.k0lo, KEY.k0hi, KEY.k1lo, KEY.k1hi), HSIPHASH64[4]);
  const key = { k0lo: 2654435761, k0hi: 0, k1lo: 2654435761, k1hi: 0 };
  for (const v of [0, 1, 0x0a000001, 0xffffffff, 0xc0a80164, 0x80000000, 12345678]) {
    const le = new Uint8Array(4);
    new DataView(le.buffer).setUint32(0, v, true);
    assert.equal(hsiphashU32(v, key.k0lo, key.k0hi, key.k1lo, key.k1hi), Number(sipHash(key, le, 1, 3) & 0xffffffffn), `value ${v}`);
  }
});

test('sipKeyFromBytes refuses a short key', () => {
  assert.throws(() => sipKeyFromBytes(new Uint8Array(8)), /16 bytes/);
});
