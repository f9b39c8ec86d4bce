// SipHash (Aumasson & Bernstein) in 32-bit halves, without BigInt on the hot path.
//
// ip_vs_mh hashes with the kernel's hsiphash(). On 64-bit kernels (BITS_PER_LONG == 64, what every
// x86-64/arm64 director runs) lib/siphash.c makes hsiphash "SipHash-1-3 with 64-bit words, truncated
// to u32" (its comment: HalfSipHash1-3 is only used on 32-bit), so that is what hsiphashU32 computes.
// sipHash() is the general SipHash-c-d over bytes, used to check both against published vectors
// (SipHash-2-4: the reference implementation's; SipHash-1-3/hsiphash: lib/siphash_kunit.c's).

/** State v0..v3 as [lo, hi] pairs. Module-level so the hot path allocates nothing. */
const state = new Uint32Array(8);

/** One SIPROUND over `state`. */
function sipRound(): void {
  let v0l = state[0]!, v0h = state[1]!, v1l = state[2]!, v1h = state[3]!;
  let v2l = state[4]!, v2h = state[5]!, v3l = state[6]!, v3h = state[7]!;
  let lo: number, t: number;
  // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
  lo = (v0l + v1l) >>> 0; v0h = (v0h + v1h + (lo < v0l ? 1 : 0)) >>> 0; v0l = lo;
  t = v1h; v1h = ((v1h << 13) | (v1l >>> 19)) >>> 0; v1l = ((v1l << 13) | (t >>> 19)) >>> 0;
  v1l = (v1l ^ v0l) >>> 0; v1h = (v1h ^ v0h) >>> 0;
  t = v0l; v0l = v0h; v0h = t;
  // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
  lo = (v2l + v3l) >>> 0; v2h = (v2h + v3h + (lo < v2l ? 1 : 0)) >>> 0; v2l = lo;
  t = v3h; v3h = ((v3h << 16) | (v3l >>> 16)) >>> 0; v3l = ((v3l << 16) | (t >>> 16)) >>> 0;
  v3l = (v3l ^ v2l) >>> 0; v3h = (v3h ^ v2h) >>> 0;
  // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
  lo = (v0l + v3l) >>> 0; v0h = (v0h + v3h + (lo < v0l ? 1 : 0)) >>> 0; v0l = lo;
  t = v3h; v3h = ((v3h << 21) | (v3l >>> 11)) >>> 0; v3l = ((v3l << 21) | (t >>> 11)) >>> 0;
  v3l = (v3l ^ v0l) >>> 0; v3h = (v3h ^ v0h) >>> 0;
  // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
  lo = (v2l + v1l) >>> 0; v2h = (v2h + v1h + (lo < v2l ? 1 : 0)) >>> 0; v2l = lo;
  t = v1h; v1h = ((v1h << 17) | (v1l >>> 15)) >>> 0; v1l = ((v1l << 17) | (t >>> 15)) >>> 0;
  v1l = (v1l ^ v2l) >>> 0; v1h = (v1h ^ v2h) >>> 0;
  t = v2l; v2l = v2h; v2h = t;
  state[0] = v0l; state[1] = v0h; state[2] = v1l; state[3] = v1h;
  state[4] = v2l; state[5] = v2h; state[6] = v3l; state[7] = v3h;
}

/** PREAMBLE of lib/siphash.c: the four constants xor the key (k0, k1 as 32-bit halves). */
function init(k0lo: number, k0hi: number, k1lo: number, k1hi: number): void {
  state[0] = (0x70736575 ^ k0lo) >>> 0; state[1] = (0x736f6d65 ^ k0hi) >>> 0;
  state[2] = (0x6e646f6d ^ k1lo) >>> 0; state[3] = (0x646f7261 ^ k1hi) >>> 0;
  state[4] = (0x6e657261 ^ k0lo) >>> 0; state[5] = (0x6c796765 ^ k0hi) >>> 0;
  state[6] = (0x79746573 ^ k1lo) >>> 0; state[7] = (0x74656462 ^ k1hi) >>> 0;
}

/** Absorbs one 64-bit word m = (hi, lo) with `rounds` compression rounds. */
function absorb(mlo: number, mhi: number, rounds: number): void {
  state[6] = (state[6]! ^ mlo) >>> 0; state[7] = (state[7]! ^ mhi) >>> 0;
  for (let r = 0; r < rounds; r++) sipRound();
  state[0] = (state[0]! ^ mlo) >>> 0; state[1] = (state[1]! ^ mhi) >>> 0;
}

/** Finalization with `rounds` rounds; leaves v0^v1^v2^v3 in state[0] (lo) / state[1] (hi). */
function finish(rounds: number): void {
  state[4] = (state[4]! ^ 0xff) >>> 0;
  for (let r = 0; r < rounds; r++) sipRound();
  state[0] = (state[0]! ^ state[2]! ^ state[4] ^ state[6]!) >>> 0;
  state[1] = (state[1]! ^ state[3]! ^ state[5]! ^ state[7]!) >>> 0;
}

/** A 128-bit SipHash key as two little-endian 64-bit words, each split into uint32 halves. */
export interface SipKey {
  k0lo: number;
  k0hi: number;
  k1lo: number;
  k1hi: number;
}

/** Reads a SipHash key from 16 bytes (k0 = bytes 0..7 little-endian, k1 = bytes 8..15). */
export function sipKeyFromBytes(bytes: Uint8Array): SipKey {
  if (bytes.length !== 16) throw new RangeError(`sipKeyFromBytes: key must be 16 bytes, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 16);
  return { k0lo: dv.getUint32(0, true), k0hi: dv.getUint32(4, true), k1lo: dv.getUint32(8, true), k1hi: dv.getUint32(12, true) };
}

/** SipHash-c-d of `data` under `key`; the 64-bit result as a bigint (tests and control plane only). */
export function sipHash(key: SipKey, data: Uint8Array, cRounds = 2, dRounds = 4): bigint {
  init(key.k0lo, key.k0hi, key.k1lo, key.k1hi);
  const len = data.length;
  const end = len - (len % 8);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < end; i += 8) absorb(dv.getUint32(i, true), dv.getUint32(i + 4, true), cRounds);
  // Last block: remaining bytes little-endian, length (mod 256) in the top byte.
  let blo = 0;
  let bhi = ((len & 0xff) << 24) >>> 0;
  for (let i = end; i < len; i++) {
    const shift = (i - end) * 8;
    if (shift < 32) blo = (blo | (data[i]! << shift)) >>> 0;
    else bhi = (bhi | (data[i]! << (shift - 32))) >>> 0;
  }
  absorb(blo, bhi, cRounds);
  finish(dRounds);
  return (BigInt(state[1]!) << 32n) | BigInt(state[0]!);
}

/** The kernel's hsiphash(&v, sizeof(u32), key) on a 64-bit kernel: SipHash-1-3 over the 4 bytes of
 *  `value` in little-endian order (x86's native order, as ip_vs_mh_hashkey passes a u32 in memory),
 *  truncated to u32. Hot path: the four rounds run on local variables, nothing is allocated. */
export function hsiphashU32(value: number, k0lo: number, k0hi: number, k1lo: number, k1hi: number): number {
  return hsiphashBits(value, k0lo, k0hi, k1lo, k1hi) >>> 0;
}

/** hsiphashU32 as an int32 bit pattern: `>>> 0` it where it is used. Returning a uint32 above 2^31
 *  from a call that V8 does not inline boxes it in a heap number; an int32 stays a small integer.
 *  The four rounds are written out: as a loop V8 kept the halves boxed and ran 2.5 times slower. */
export function hsiphashBits(value: number, k0lo: number, k0hi: number, k1lo: number, k1hi: number): number {
  // Halves are int32 (V8 holds them unboxed); a carry compares them unsigned by flipping the sign
  // bit (x ^ MIN), which keeps the comparison in int32 too.
  const MIN = -0x80000000;
  let v0l = 0x70736575 ^ k0lo, v0h = 0x736f6d65 ^ k0hi;
  let v1l = 0x6e646f6d ^ k1lo, v1h = 0x646f7261 ^ k1hi;
  let v2l = 0x6e657261 ^ k0lo, v2h = 0x6c796765 ^ k0hi;
  let v3l = 0x79746573 ^ k1lo, v3h = 0x74656462 ^ k1hi;
  // No full 8-byte block; the final block b = (4 << 56) | value.
  const bl = value | 0;
  const bh = 0x04000000;
  v3l ^= bl;
  v3h ^= bh;
  let lo: number;
  let t: number;
  // c = 1 compression round
  lo = (v0l + v1l) | 0; v0h = (v0h + v1h + ((lo ^ MIN) < (v0l ^ MIN) ? 1 : 0)) | 0; v0l = lo;
  t = v1h; v1h = (v1h << 13) | (v1l >>> 19); v1l = (v1l << 13) | (t >>> 19);
  v1l ^= v0l; v1h ^= v0h;
  t = v0l; v0l = v0h; v0h = t;
  lo = (v2l + v3l) | 0; v2h = (v2h + v3h + ((lo ^ MIN) < (v2l ^ MIN) ? 1 : 0)) | 0; v2l = lo;
  t = v3h; v3h = (v3h << 16) | (v3l >>> 16); v3l = (v3l << 16) | (t >>> 16);
  v3l ^= v2l; v3h ^= v2h;
  lo = (v0l + v3l) | 0; v0h = (v0h + v3h + ((lo ^ MIN) < (v0l ^ MIN) ? 1 : 0)) | 0; v0l = lo;
  t = v3h; v3h = (v3h << 21) | (v3l >>> 11); v3l = (v3l << 21) | (t >>> 11);
  v3l ^= v0l; v3h ^= v0h;
  lo = (v2l + v1l) | 0; v2h = (v2h + v1h + ((lo ^ MIN) < (v2l ^ MIN) ? 1 : 0)) | 0; v2l = lo;
  t = v1h; v1h = (v1h << 17) | (v1l >>> 15); v1l = (v1l << 17) | (t >>> 15);
  v1l ^= v2l; v1h ^= v2h;
  t = v2l; v2l = v2h; v2h = t;
  // v0 ^= b; v2 ^= 0xff; d = 3 finalization rounds
  v0l ^= bl;
  v0h ^= bh;
  v2l ^= 0xff;
  lo = (v0l + v1l) | 0; v0h = (v0h + v1h + ((lo ^ MIN) < (v0l ^ MIN) ? 1 : 0)) | 0; v0l = lo;
  t = v1h; v1h = (v1h << 13) | (v1l >>> 19); v1l = (v1l << 13) | (t >>> 19);
  v1l ^= v0l; v1h ^= v0h;
  t = v0l; v0l = v0h; v0h = t;
  lo = (v2l + v3l) | 0; v2h = (v2h + v3h + ((lo ^ MIN) < (v2l ^ MIN) ? 1 : 0)) | 0; v2l = lo;
  t = v3h; v3h = (v3h << 16) | (v3l >>> 16); v3l = (v3l << 16) | (t >>> 16);
  v3l ^= v2l; v3h ^= v2h;
  lo = (v0l + v3l) | 0; v0h = (v0h + v3h + ((lo ^ MIN) < (v0l ^ MIN) ? 1 : 0)) | 0; v0l = lo;
  t = v3h; v3h = (v3h << 21) | (v3l >>> 11); v3l = (v3l << 21) | (t >>> 11);
  v3l ^= v0l; v3h ^= v0h;
  lo = (v2l + v1l) | 0; v2h = (v2h + v1h + ((lo ^ MIN) < (v2l ^ MIN) ? 1 : 0)) | 0; v2l = lo;
  t = v1h; v1h = (v1h << 17) | (v1l >>> 15); v1l = (v1l << 17) | (t >>> 15);
  v1l ^= v2l; v1h ^= v2h;
  t = v2l; v2l = v2h; v2h = t;
  // round 2
  lo = (v0l + v1l) | 0; v0h = (v0h + v1h + ((lo ^ MIN) < (v0l ^ MIN) ? 1 : 0)) | 0; v0l = lo;
  t = v1h; v1h = (v1h << 13) | (v1l >>> 19); v1l = (v1l << 13) | (t >>> 19);
  v1l ^= v0l; v1h ^= v0h;
  t = v0l; v0l = v0h; v0h = t;
  lo = (v2l + v3l) | 0; v2h = (v2h + v3h + ((lo ^ MIN) < (v2l ^ MIN) ? 1 : 0)) | 0; v2l = lo;
  t = v3h; v3h = (v3h << 16) | (v3l >>> 16); v3l = (v3l << 16) | (t >>> 16);
  v3l ^= v2l; v3h ^= v2h;
  lo = (v0l + v3l) | 0; v0h = (v0h + v3h + ((lo ^ MIN) < (v0l ^ MIN) ? 1 : 0)) | 0; v0l = lo;
  t = v3h; v3h = (v3h << 21) | (v3l >>> 11); v3l = (v3l << 21) | (t >>> 11);
  v3l ^= v0l; v3h ^= v0h;
  lo = (v2l + v1l) | 0; v2h = (v2h + v1h + ((lo ^ MIN) < (v2l ^ MIN) ? 1 : 0)) | 0; v2l = lo;
  t = v1h; v1h = (v1h << 17) | (v1l >>> 15); v1l = (v1l << 17) | (t >>> 15);
  v1l ^= v2l; v1h ^= v2h;
  t = v2l; v2l = v2h; v2h = t;
  // round 3
  lo = (v0l + v1l) | 0; v0h = (v0h + v1h + ((lo ^ MIN) < (v0l ^ MIN) ? 1 : 0)) | 0; v0l = lo;
  t = v1h; v1h = (v1h << 13) | (v1l >>> 19); v1l = (v1l << 13) | (t >>> 19);
  v1l ^= v0l; v1h ^= v0h;
  t = v0l; v0l = v0h; v0h = t;
  lo = (v2l + v3l) | 0; v2h = (v2h + v3h + ((lo ^ MIN) < (v2l ^ MIN) ? 1 : 0)) | 0; v2l = lo;
  t = v3h; v3h = (v3h << 16) | (v3l >>> 16); v3l = (v3l << 16) | (t >>> 16);
  v3l ^= v2l; v3h ^= v2h;
  lo = (v0l + v3l) | 0; v0h = (v0h + v3h + ((lo ^ MIN) < (v0l ^ MIN) ? 1 : 0)) | 0; v0l = lo;
  t = v3h; v3h = (v3h << 21) | (v3l >>> 11); v3l = (v3l << 21) | (t >>> 11);
  // The last round stays whole, line for line the kernel's SIPROUND like the three before it; the
  // u32 result reads only low halves, so a few high-half updates below are dead (V8 drops them).
  /* eslint-disable no-useless-assignment -- see the comment above */
  v3l ^= v0l; v3h ^= v0h;
  lo = (v2l + v1l) | 0; v2h = (v2h + v1h + ((lo ^ MIN) < (v2l ^ MIN) ? 1 : 0)) | 0; v2l = lo;
  t = v1h; v1h = (v1h << 17) | (v1l >>> 15); v1l = (v1l << 17) | (t >>> 15);
  v1l ^= v2l; v1h ^= v2h;
  t = v2l; v2l = v2h; v2h = t;
  /* eslint-enable no-useless-assignment */
  return v0l ^ v1l ^ v2l ^ v3l;
}
