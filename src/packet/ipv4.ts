// IPv4 header, RFC 791 section 3.1.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Version|  IHL  |Type of Service|          Total Length         |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |         Identification        |Flags|      Fragment Offset    |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |  Time to Live |    Protocol   |         Header Checksum       |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                       Source Address                          |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                    Destination Address                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                    Options                    |    Padding    |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Flags: bit 0 reserved (must be zero), bit 1 DF, bit 2 MF. Fragment offset in 8-byte units.
// IHL in 32-bit words, 5..15, so options take up to 40 bytes.
//
// The checks follow the kernel's ip_rcv_core() order: at least 20 bytes, version 4, IHL >= 5, the
// whole header present, header checksum, total length neither past the data nor below the header.
// Options are walked like ip_options_compile(): EOL ends them, NOP is one byte, every other option
// has a length byte >= 2 that stays inside the header.

import { DropReason } from './drop';
import { EncodeFlag, clipLength } from './layer';
import { checksumVerifies, internetChecksum } from './checksum';

export const IPV4_HEADER_LENGTH = 20;
export const IPV4_MAX_OPTIONS_LENGTH = 40;

export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_VRRP = 112;

/** The 3-bit flags field. */
export const IPV4_FLAG_RESERVED = 0x4;
export const IPV4_FLAG_DF = 0x2;
export const IPV4_FLAG_MF = 0x1;

export const IPOPT_END = 0;
export const IPOPT_NOOP = 1;
export const IPOPT_RR = 7;

export class Ipv4Header {
  version = 0;
  /** Header length in 32-bit words. */
  ihl = 0;
  tos = 0;
  totalLength = 0;
  id = 0;
  /** 3 bits: IPV4_FLAG_RESERVED | IPV4_FLAG_DF | IPV4_FLAG_MF. */
  flags = 0;
  /** In 8-byte units (multiply by 8 for bytes). */
  fragmentOffset = 0;
  ttl = 0;
  protocol = 0;
  checksum = 0;
  /** Host-order uint32. */
  src = 0;
  dst = 0;
  /** Raw option bytes (padding included, exactly as on the wire), optionsLength of them are valid. */
  readonly options = new Uint8Array(IPV4_MAX_OPTIONS_LENGTH);
  optionsLength = 0;

  /** Where the header was decoded, and where its payload is (offset + IHL×4, total length − IHL×4). */
  headerOffset = 0;
  payloadOffset = 0;
  payloadLength = 0;

  /**
   * Settings of this instance (set once, not per packet):
   * verifyChecksum: decode returns BAD_IP_CHECKSUM when the header checksum is wrong.
   * quoted: the header is the one quoted inside an ICMP error (RFC 792), which carries only the
   *   header + 8 bytes: the total length may run past the data (payloadLength is then clipped to
   *   what is there) and the checksum is not verified (a router may quote it after changing the TTL).
   */
  verifyChecksum = true;
  quoted = false;

  get dontFragment(): boolean {
    return (this.flags & IPV4_FLAG_DF) !== 0;
  }
  get moreFragments(): boolean {
    return (this.flags & IPV4_FLAG_MF) !== 0;
  }
  /** True for any fragment (first included): MF set or a non-zero offset. */
  get isFragment(): boolean {
    return (this.flags & IPV4_FLAG_MF) !== 0 || this.fragmentOffset !== 0;
  }
  get headerLength(): number {
    return this.ihl * 4;
  }
  get dscp(): number {
    return this.tos >>> 2;
  }
  get ecn(): number {
    return this.tos & 3;
  }

  reset(): void {
    this.version = 0;
    this.ihl = 0;
    this.tos = 0;
    this.totalLength = 0;
    this.id = 0;
    this.flags = 0;
    this.fragmentOffset = 0;
    this.ttl = 0;
    this.protocol = 0;
    this.checksum = 0;
    this.src = 0;
    this.dst = 0;
    this.optionsLength = 0;
    this.headerOffset = 0;
    this.payloadOffset = 0;
    this.payloadLength = 0;
  }

  decode(buf: Uint8Array, view: DataView, offset: number, length: number): DropReason | 0 {
    this.reset();
    length = clipLength(buf, offset, length);
    if (length < IPV4_HEADER_LENGTH) return DropReason.TRUNCATED_IP;
    const vihl = buf[offset]!;
    this.version = vihl >>> 4;
    this.ihl = vihl & 0x0f;
    if (this.version !== 4) return DropReason.BAD_IP_VERSION;
    if (this.ihl < 5) return DropReason.BAD_IHL;
    const headerLength = this.ihl * 4;
    if (length < headerLength) return DropReason.TRUNCATED_IP;
    this.tos = buf[offset + 1]!;
    this.totalLength = view.getUint16(offset + 2);
    this.id = view.getUint16(offset + 4);
    const fragWord = view.getUint16(offset + 6);
    this.flags = fragWord >>> 13;
    this.fragmentOffset = fragWord & 0x1fff;
    this.ttl = buf[offset + 8]!;
    this.protocol = buf[offset + 9]!;
    this.checksum = view.getUint16(offset + 10);
    this.src = view.getUint32(offset + 12);
    this.dst = view.getUint32(offset + 16);
    const optionsLength = headerLength - IPV4_HEADER_LENGTH;
    for (let i = 0; i < optionsLength; i++) this.options[i] = buf[offset + IPV4_HEADER_LENGTH + i]!;
    this.optionsLength = optionsLength;
    this.headerOffset = offset;
    this.payloadOffset = offset + headerLength;

    if (!this.quoted && this.verifyChecksum && !checksumVerifies(buf, offset, headerLength)) {
      return DropReason.BAD_IP_CHECKSUM;
    }
    if (this.totalLength < headerLength) return DropReason.BAD_IP_TOTAL_LENGTH;
    if (this.totalLength > length) {
      if (!this.quoted) return DropReason.TRUNCATED_IP;
      this.payloadLength = length - headerLength;
    } else {
      this.payloadLength = this.totalLength - headerLength;
    }
    if (optionsLength > 0 && !this.optionsWellFormed()) return DropReason.BAD_IP_OPTIONS;
    return 0;
  }

  /** Walks the options TLVs (ip_options_compile's framing rules, not each option's semantics). */
  optionsWellFormed(): boolean {
    const opts = this.options;
    const n = this.optionsLength;
    let i = 0;
    while (i < n) {
      const type = opts[i]!;
      if (type === IPOPT_END) return true;
      if (type === IPOPT_NOOP) {
        i++;
        continue;
      }
      if (i + 1 >= n) return false;
      const optLength = opts[i + 1]!;
      if (optLength < 2 || i + optLength > n) return false;
      i += optLength;
    }
    return true;
  }

  /**
   * Offset of the first option of `type` inside `options`, or -1. Lets the data plane find e.g.
   * record-route without allocating.
   */
  findOption(type: number): number {
    const opts = this.options;
    const n = this.optionsLength;
    let i = 0;
    while (i < n) {
      const t = opts[i]!;
      if (t === type) return i;
      if (t === IPOPT_END) return -1;
      if (t === IPOPT_NOOP) {
        i++;
        continue;
      }
      if (i + 1 >= n || opts[i + 1]! < 2) return -1;
      i += opts[i + 1]!;
    }
    return -1;
  }

  /** Sets the option bytes (tests, builder); pads nothing — FIX_LENGTHS on encode does. */
  setOptions(bytes: Uint8Array): void {
    if (bytes.length > IPV4_MAX_OPTIONS_LENGTH) {
      throw new RangeError(`Ipv4Header.setOptions: ${bytes.length} bytes of options, at most ${IPV4_MAX_OPTIONS_LENGTH} fit in a header`);
    }
    this.options.set(bytes);
    this.optionsLength = bytes.length;
  }

  /** Bytes encode writes: IHL×4 as set, or 20 + options rounded up to 4 with FIX_LENGTHS. */
  encodedLength(flags: number = EncodeFlag.NONE): number {
    if (flags & EncodeFlag.FIX_LENGTHS) return IPV4_HEADER_LENGTH + ((this.optionsLength + 3) & ~3);
    // A deliberately short header (below 5 words) is still written as the fixed 20 bytes.
    return this.ihl < 5 ? IPV4_HEADER_LENGTH : this.ihl * 4;
  }

  /**
   * Writes the header at `offset`; returns the bytes written, or -1 if it does not fit in buf.
   * FIX_LENGTHS: IHL from the options (zero-padded to a multiple of 4), total length = header +
   * `payloadLength`. COMPUTE_CHECKSUMS: header checksum. The fields of this object are updated to
   * what was written, so a decode of the result gives them back.
   */
  encode(buf: Uint8Array, view: DataView, offset: number, flags: number = EncodeFlag.NONE, payloadLength = 0): number {
    if (flags & EncodeFlag.FIX_LENGTHS) {
      const padded = (this.optionsLength + 3) & ~3;
      for (let i = this.optionsLength; i < padded; i++) this.options[i] = IPOPT_END;
      this.optionsLength = padded;
      this.ihl = (IPV4_HEADER_LENGTH + padded) >>> 2;
      this.totalLength = IPV4_HEADER_LENGTH + padded + payloadLength;
      if (this.version === 0) this.version = 4;
    }
    const headerLength = this.ihl * 4;
    // An IHL below 5 (a deliberately broken header) still writes the fixed 20 bytes.
    const writeLength = headerLength < IPV4_HEADER_LENGTH ? IPV4_HEADER_LENGTH : headerLength;
    if (clipLength(buf, offset, writeLength) < writeLength) return -1;
    buf[offset] = ((this.version & 0x0f) << 4) | (this.ihl & 0x0f);
    buf[offset + 1] = this.tos;
    view.setUint16(offset + 2, this.totalLength & 0xffff);
    view.setUint16(offset + 4, this.id & 0xffff);
    view.setUint16(offset + 6, ((this.flags & 7) << 13) | (this.fragmentOffset & 0x1fff));
    buf[offset + 8] = this.ttl;
    buf[offset + 9] = this.protocol;
    view.setUint16(offset + 10, this.checksum & 0xffff);
    view.setUint32(offset + 12, this.src >>> 0);
    view.setUint32(offset + 16, this.dst >>> 0);
    const optionsRoom = writeLength - IPV4_HEADER_LENGTH;
    for (let i = 0; i < optionsRoom; i++) buf[offset + IPV4_HEADER_LENGTH + i] = i < this.optionsLength ? this.options[i]! : 0;
    if (flags & EncodeFlag.COMPUTE_CHECKSUMS) {
      view.setUint16(offset + 10, 0);
      this.checksum = internetChecksum(buf, offset, writeLength);
      view.setUint16(offset + 10, this.checksum);
    }
    return writeLength;
  }
}
