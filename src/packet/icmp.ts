// ICMP for IPv4, RFC 792 (and RFC 1191 for the next-hop MTU).
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |     Type      |     Code      |          Checksum             |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                     rest of header (by type)                  |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |      echo: data; errors: Internet Header + 64 bits of the     |
//   |      original datagram's data                                  |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Rest of header: echo/echo reply (0, 8): identifier | sequence number. Destination unreachable
// (3): unused, except code 4 "fragmentation needed and DF set" where RFC 1191 puts the next-hop MTU
// in the low 16 bits. Time exceeded (11): unused. Parameter problem (12): pointer in the first byte.
// Redirect (5): gateway address.
//
// The checksum covers the ICMP message only (no pseudo-header). Errors quote the offending IP header
// + at least 8 bytes; decodeQuote reads that header and the first 4 bytes after it (TCP/UDP ports),
// which is what IPVS's ip_vs_in_icmp needs to find the connection the error belongs to.

import { DropReason } from './drop';
import { EncodeFlag, clipLength } from './layer';
import { checksumVerifies, internetChecksum } from './checksum';
import { IPPROTO_ICMP, IPV4_HEADER_LENGTH, Ipv4Header } from './ipv4';

export const ICMP_HEADER_LENGTH = 8;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETER_PROBLEM = 12;

/** Destination unreachable codes (RFC 792, RFC 1122 3.2.2.1). */
export const ICMP_NET_UNREACH = 0;
export const ICMP_HOST_UNREACH = 1;
export const ICMP_PROT_UNREACH = 2;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;
/** Time exceeded codes. */
export const ICMP_EXC_TTL = 0;
export const ICMP_EXC_FRAGTIME = 1;

/** Bytes of the original datagram after its IP header that an error must quote (RFC 792). */
export const ICMP_QUOTE_L4_BYTES = 8;

export class IcmpHeader {
  type = 0;
  code = 0;
  checksum = 0;
  /** The second 32-bit word, unsigned; see the getters for its meaning per type. */
  rest = 0;

  headerOffset = 0;
  payloadOffset = 0;
  payloadLength = 0;

  /** Set by decodeQuote: where the quoted transport header starts and its first two 16-bit words. */
  quotedL4Offset = 0;
  quotedSrcPort = 0;
  quotedDstPort = 0;

  reset(): void {
    this.type = 0;
    this.code = 0;
    this.checksum = 0;
    this.rest = 0;
    this.headerOffset = 0;
    this.payloadOffset = 0;
    this.payloadLength = 0;
    this.quotedL4Offset = 0;
    this.quotedSrcPort = 0;
    this.quotedDstPort = 0;
  }

  /** Echo identifier (types 0 and 8). */
  get id(): number {
    return this.rest >>> 16;
  }
  set id(v: number) {
    this.rest = (((v & 0xffff) << 16) | (this.rest & 0xffff)) >>> 0;
  }
  /** Echo sequence number (types 0 and 8). */
  get sequence(): number {
    return this.rest & 0xffff;
  }
  set sequence(v: number) {
    this.rest = ((this.rest & 0xffff0000) | (v & 0xffff)) >>> 0;
  }
  /** Next-hop MTU of a "fragmentation needed" (type 3 code 4), RFC 1191; 0 from pre-1191 routers. */
  get nextHopMtu(): number {
    return this.rest & 0xffff;
  }
  set nextHopMtu(v: number) {
    this.rest = ((this.rest & 0xffff0000) | (v & 0xffff)) >>> 0;
  }
  /** Parameter problem pointer (type 12). */
  get pointer(): number {
    return this.rest >>> 24;
  }
  /** Redirect gateway (type 5), host order. */
  get gateway(): number {
    return this.rest;
  }

  /** True for the error messages that quote an offending datagram (RFC 1122 3.2.2). */
  get isError(): boolean {
    const t = this.type;
    return t === ICMP_DEST_UNREACH || t === ICMP_SOURCE_QUENCH || t === ICMP_REDIRECT || t === ICMP_TIME_EXCEEDED || t === ICMP_PARAMETER_PROBLEM;
  }

  /** `length` is the ICMP message length (the IPv4 payload length). */
  decode(buf: Uint8Array, view: DataView, offset: number, length: number): DropReason | 0 {
    this.reset();
    length = clipLength(buf, offset, length);
    if (length < ICMP_HEADER_LENGTH) return DropReason.TRUNCATED_ICMP;
    this.type = buf[offset]!;
    this.code = buf[offset + 1]!;
    this.checksum = view.getUint16(offset + 2);
    this.rest = view.getUint32(offset + 4);
    this.headerOffset = offset;
    this.payloadOffset = offset + ICMP_HEADER_LENGTH;
    this.payloadLength = length - ICMP_HEADER_LENGTH;
    return 0;
  }

  /**
   * Decodes the datagram quoted by an error into `quoted` (an Ipv4Header with quoted = true, kept
   * for this purpose) and reads the first 4 bytes of its transport header into quotedSrcPort and
   * quotedDstPort. Call after decode. Returns TRUNCATED_ICMP_QUOTE when this is not an error or the
   * quote holds less than a full IP header + 8 bytes, else the IPv4 decoder's verdict.
   */
  decodeQuote(quoted: Ipv4Header, buf: Uint8Array, view: DataView): DropReason | 0 {
    this.quotedL4Offset = 0;
    this.quotedSrcPort = 0;
    this.quotedDstPort = 0;
    if (!this.isError) return DropReason.TRUNCATED_ICMP_QUOTE;
    quoted.quoted = true;
    const verdict = quoted.decode(buf, view, this.payloadOffset, this.payloadLength);
    if (verdict === DropReason.TRUNCATED_IP) return DropReason.TRUNCATED_ICMP_QUOTE;
    if (verdict !== 0) return verdict;
    if (quoted.payloadLength < ICMP_QUOTE_L4_BYTES) return DropReason.TRUNCATED_ICMP_QUOTE;
    this.quotedL4Offset = quoted.payloadOffset;
    this.quotedSrcPort = view.getUint16(quoted.payloadOffset);
    this.quotedDstPort = view.getUint16(quoted.payloadOffset + 2);
    return 0;
  }

  /** True when the checksum over the `length`-byte message verifies. */
  verifyChecksum(buf: Uint8Array, offset: number, length: number): boolean {
    if (length < ICMP_HEADER_LENGTH || clipLength(buf, offset, length) < length) return false;
    return checksumVerifies(buf, offset, length);
  }

  encodedLength(): number {
    return ICMP_HEADER_LENGTH;
  }

  /** Writes the 8-byte header; COMPUTE_CHECKSUMS sums it with the `payloadLength` bytes after it. */
  encode(buf: Uint8Array, view: DataView, offset: number, flags: number = EncodeFlag.NONE, payloadLength = 0): number {
    if (clipLength(buf, offset, ICMP_HEADER_LENGTH) < ICMP_HEADER_LENGTH) return -1;
    buf[offset] = this.type;
    buf[offset + 1] = this.code;
    view.setUint16(offset + 2, this.checksum & 0xffff);
    view.setUint32(offset + 4, this.rest >>> 0);
    if (flags & EncodeFlag.COMPUTE_CHECKSUMS) {
      view.setUint16(offset + 2, 0);
      this.checksum = internetChecksum(buf, offset, ICMP_HEADER_LENGTH + payloadLength);
      view.setUint16(offset + 2, this.checksum);
    }
    return ICMP_HEADER_LENGTH;
  }
}

/**
 * Largest quote in an error, as the kernel's icmp_send() does it: the whole error stays within
 * 576 bytes (RFC 1812 4.3.2.3), so 576 − 20 (IP) − 8 (ICMP) = 548 bytes of the offending datagram.
 */
export const ICMP_MAX_QUOTE = 548;
/** TOS of an error: the offending packet's TOS bits with precedence "internetwork control" (icmp_send). */
const IPTOS_TOS_MASK = 0x1e;
const IPTOS_PREC_INTERNETCONTROL = 0xc0;

/**
 * Writes a complete ICMP error packet (IPv4 header + ICMP header + quote) at `offset` of `out`,
 * quoting the offending IPv4 datagram `original[originalOffset .. +originalLength)`, cut at
 * ICMP_MAX_QUOTE bytes. `ip` and `icmp` are scratch headers (overwritten). Returns the bytes
 * written, or -1 when out has no room. No allocation: for the data plane's "fragmentation needed"
 * (TUN mode) and TTL-expired answers.
 */
export function writeIcmpError(
  out: Uint8Array,
  outView: DataView,
  offset: number,
  ip: Ipv4Header,
  icmp: IcmpHeader,
  type: number,
  code: number,
  rest: number,
  src: number,
  dst: number,
  ttl: number,
  id: number,
  original: Uint8Array,
  originalOffset: number,
  originalLength: number,
): number {
  const quoteLength = clipLength(original, originalOffset, originalLength < ICMP_MAX_QUOTE ? originalLength : ICMP_MAX_QUOTE);
  const total = IPV4_HEADER_LENGTH + ICMP_HEADER_LENGTH + quoteLength;
  if (quoteLength < 1 || clipLength(out, offset, total) < total) return -1;
  const quoteAt = offset + IPV4_HEADER_LENGTH + ICMP_HEADER_LENGTH;
  // copyWithin when quoting from the same buffer, so overlapping ranges are handled.
  if (original.buffer === out.buffer && original.byteOffset === out.byteOffset) out.copyWithin(quoteAt, originalOffset, originalOffset + quoteLength);
  else out.set(original.subarray(originalOffset, originalOffset + quoteLength), quoteAt);
  const originalTos = original[originalOffset + 1]!;
  icmp.reset();
  icmp.type = type;
  icmp.code = code;
  icmp.rest = rest >>> 0;
  icmp.encode(out, outView, offset + IPV4_HEADER_LENGTH, EncodeFlag.COMPUTE_CHECKSUMS, quoteLength);
  ip.reset();
  ip.version = 4;
  ip.tos = (originalTos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL;
  ip.id = id & 0xffff;
  ip.ttl = ttl;
  ip.protocol = IPPROTO_ICMP;
  ip.src = src;
  ip.dst = dst;
  ip.encode(out, outView, offset, EncodeFlag.FIX_ALL, ICMP_HEADER_LENGTH + quoteLength);
  return total;
}
