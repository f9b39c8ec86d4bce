// Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// Sums are carried as plain JavaScript numbers: adding 16-bit words to a double stays exact up to
// 2^53, i.e. for any packet up to 64 KiB many times over, so the carries are folded once at the end
// instead of per word. Every function here is allocation-free and usable on the packet path.
//
// Conventions:
//   - a "sum" is the ones-complement sum before the final complement, possibly not yet folded;
//   - a "checksum" is the 16-bit value stored in a header, ~fold(sum) & 0xffff;
//   - data that verifies sums (checksum field included) to 0xffff.

import { endianness } from 'node:os';
import { wholeIpv4Offset } from './ethernet';
import { IPPROTO_TCP, IPPROTO_UDP } from './ipv4';

/** Folds carries back into the low 16 bits (end-around carry) until the value fits in 16 bits. */
export function foldSum(sum: number): number {
  // Two folds are enough for 32-bit values; a while loop also covers the wider sums kept as doubles.
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * RFC 1071 ones-complement sum of buf[offset .. offset+length) taken as big-endian 16-bit words
 * (an odd last byte is padded with a zero low byte), plus `initial`. Not folded; feed it to
 * foldSum/finishChecksum or to another call as `initial`. Out-of-range bytes are not read: the
 * range is clipped to the buffer.
 */
export function onesComplementSum(buf: Uint8Array, offset: number, length: number, initial = 0): number {
  let end = offset + length;
  if (end > buf.length) end = buf.length;
  // The sum of big-endian words equals 256 × (sum of the even bytes) + (sum of the odd bytes), so
  // the two byte streams are summed apart, eight bytes per step, without shifting each word.
  let high = 0;
  let low = 0;
  let i = offset;
  const end8 = end - 7;
  for (; i < end8; i += 8) {
    high += buf[i]! + buf[i + 2]! + buf[i + 4]! + buf[i + 6]!;
    low += buf[i + 1]! + buf[i + 3]! + buf[i + 5]! + buf[i + 7]!;
  }
  for (; i < end - 1; i += 2) {
    high += buf[i]!;
    low += buf[i + 1]!;
  }
  if (i < end) high += buf[i]!; // odd length: the last byte is the high half of a zero-padded word
  return initial + high * 256 + low;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * onesComplementSum(buf, offset, length, initial), folded, four bytes per load when buf[offset] is
 * 4-byte aligned in its ArrayBuffer (u32 views that buffer): the sum of little-endian 32-bit words
 * folds to the byte-swapped sum of big-endian 16-bit words (RFC 1071 2(B), byte-order
 * independence; 2^16 ≡ 1 mod 0xffff). A third of the byte-wise sum's time on a 1.4 kB segment,
 * which was uvs-tun-decap's largest cost with GRO (perf: 18 % of its samples; src/tun/gro.ts).
 */
export function foldedSum(buf: Uint8Array, u32: Uint32Array | null, offset: number, length: number, initial: number): number {
  const abs = buf.byteOffset + offset;
  if (u32 === null || (abs & 3) !== 0 || !LITTLE_ENDIAN_HOST || offset + length > buf.length) return foldSum(onesComplementSum(buf, offset, length, initial));
  const words = length >>> 2;
  const first = abs >>> 2;
  let s = 0;
  for (let i = first, end = first + words; i < end; i++) s += u32[i]!;
  s = foldSum(s);
  s = ((s & 0xff) << 8) | (s >>> 8);
  const done = words * 4;
  return foldSum(onesComplementSum(buf, offset + done, length - done, s + initial));
}

/** Complemented, folded 16-bit checksum of a (possibly unfolded) sum. */
export function finishChecksum(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/** The checksum to store for buf[offset .. offset+length) with its checksum field zeroed (or skipped via initial). */
export function internetChecksum(buf: Uint8Array, offset: number, length: number, initial = 0): number {
  return finishChecksum(onesComplementSum(buf, offset, length, initial));
}

/** True when the range, checksum field included, sums to 0xffff (RFC 1071 section 1, verification). */
export function checksumVerifies(buf: Uint8Array, offset: number, length: number, initial = 0): boolean {
  return foldSum(onesComplementSum(buf, offset, length, initial)) === 0xffff;
}

/**
 * Sum of the IPv4 pseudo-header used by TCP, UDP (RFC 793 3.1, RFC 768) and VRRPv3 (RFC 5798 5.2.8):
 * source, destination, zero + protocol, and the upper-layer length. Addresses are host-order uint32.
 */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/**
 * RFC 1624 equation 3: HC' = ~(~HC + ~m + m'), the new checksum after a 16-bit field changed from
 * `oldValue` (m) to `newValue` (m'). Unlike equation 2 of RFC 1141 it never yields the -0 that a full
 * recomputation could not produce.
 */
export function checksumUpdate16(checksum: number, oldValue: number, newValue: number): number {
  const sum = (~checksum & 0xffff) + (~oldValue & 0xffff) + (newValue & 0xffff);
  return ~foldSum(sum) & 0xffff;
}

/** RFC 1624 update for a 32-bit field (an IPv4 address, a TCP sequence number): both halves at once. */
export function checksumUpdate32(checksum: number, oldValue: number, newValue: number): number {
  const sum =
    (~checksum & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    (newValue >>> 16) +
    (newValue & 0xffff);
  return ~foldSum(sum) & 0xffff;
}

/**
 * Completes a CHECKSUM_PARTIAL L4 checksum in place (skb_checksum_help): the field at
 * from + csumOffset holds the pseudo-header sum; the sum of from .. end over it, complemented,
 * is the checksum. UDP's computed 0 is sent as 0xffff.
 */
export function completePartialChecksum(buf: Uint8Array, view: DataView, from: number, end: number, csumOffset: number, udp: boolean): void {
  const field = from + csumOffset;
  if (field + 2 > end) return;
  let c = ~foldSum(onesComplementSum(buf, from, end - from)) & 0xffff;
  if (c === 0 && udp) c = 0xffff;
  view.setUint16(field, c);
}

/**
 * The offset of the IPv4 header when `frame` (Ethernet, length `length`) is a TCP or UDP packet,
 * not a fragment, whose checksum field holds only the folded pseudo-header sum — the state a
 * CHECKSUM_PARTIAL skb is captured in; otherwise -1. Reads only within `length`.
 */
export function partialChecksumL3(frame: Uint8Array, view: DataView, length: number): number {
  const l3 = wholeIpv4Offset(frame, view, length);
  return l3 >= 0 && holdsPseudoSum(frame, view, l3) ? l3 : -1;
}

/**
 * Whether the whole IPv4 packet at `l3` (not a fragment, all of it in the buffer) is TCP or UDP
 * with the folded pseudo-header sum in its checksum field: a CHECKSUM_PARTIAL packet as a raw or
 * packet socket hands it over. Completing such a checksum is safe even when it was whole already
 * and merely equal to that sum (1 in 65,536): completion then writes the same value back.
 */
export function holdsPseudoSum(frame: Uint8Array, view: DataView, l3: number): boolean {
  const ihl = (frame[l3]! & 0x0f) * 4;
  const totalLength = view.getUint16(l3 + 2);
  const protocol = frame[l3 + 9]!;
  const l4Length = totalLength - ihl;
  let field: number;
  if (protocol === IPPROTO_TCP) {
    if (l4Length < 20) return false;
    field = l3 + ihl + 16;
  } else if (protocol === IPPROTO_UDP) {
    if (l4Length < 8) return false;
    field = l3 + ihl + 6;
  } else {
    return false;
  }
  const stored = view.getUint16(field);
  if (protocol === IPPROTO_UDP && stored === 0) return false; // UDP without a checksum (RFC 768)
  return stored === foldSum(pseudoHeaderSum(view.getUint32(l3 + 12), view.getUint32(l3 + 16), protocol, l4Length));
}

/**
 * Completes the TCP/UDP checksum of the IPv4 packet at `l3` whose checksum field holds the
 * pseudo-header sum (partialChecksumL3, holdsPseudoSum): completePartialChecksum over its L4 bytes.
 */
export function completeL4Checksum(frame: Uint8Array, view: DataView, l3: number): void {
  const ihl = (frame[l3]! & 0x0f) * 4;
  const udp = frame[l3 + 9] === IPPROTO_UDP;
  completePartialChecksum(frame, view, l3 + ihl, l3 + view.getUint16(l3 + 2), udp ? 6 : 16, udp);
}
