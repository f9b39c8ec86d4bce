// Small integer helpers the IPVS schedulers share: the kernel's hash functions and gcd/fls.
// All take and return uint32/int values; none allocates.

/** The kernel's GOLDEN_RATIO_32 (include/linux/hash.h), used by hash_32(). */
export const GOLDEN_RATIO_32 = 0x61c88647;

/** hash_32(val, bits) of include/linux/hash.h: the top `bits` bits of val * GOLDEN_RATIO_32 (mod 2^32).
 *  Used by ip_vs_sh (with the port added to the address) and ip_vs_lblcr. */
export function hash32(value: number, bits: number): number {
  return Math.imul(value, GOLDEN_RATIO_32) >>> (32 - bits);
}

/** The older multiplicative hash still used by ip_vs_dh_hashkey: (addr * 2654435761) & mask.
 *  The kernel multiplies in unsigned long; the low bits of the product are the same mod 2^32. */
export function multiplicativeHash(value: number, mask: number): number {
  return (Math.imul(value, 2654435761 | 0) >>> 0) & mask;
}

/** Greatest common divisor of two positive integers (lib/math/gcd.c gives the same result). */
export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** fls(x) of the kernel: the 1-based index of the most significant set bit, 0 for 0. */
export function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** IP protocols whose first 4 bytes are source/destination ports (ip_vs_sh_get_port / ip_vs_mh_get_port). */
export function hasPorts(protocol: number): boolean {
  return protocol === 6 || protocol === 17 || protocol === 132;
}
