// TCP header, RFC 9293 section 3.1 (was RFC 793).
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |          Source Port          |       Destination Port        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                        Sequence Number                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                    Acknowledgment Number                      |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |  Data |       |C|E|U|A|P|R|S|F|                               |
//   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//   |       |       |R|E|G|K|H|T|N|N|                               |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |           Checksum            |         Urgent Pointer        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                           [Options]                           |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Data offset in 32-bit words (5..15). The checksum covers the IPv4 pseudo-header (src, dst, 0,
// protocol 6, TCP length) and the whole segment; decode does not verify it (with veth/GRO offloads
// the kernel leaves it partial, see docs/architecture.md, "Offloads"): verifyChecksum does, on request.

import { DropReason } from './drop';
import { EncodeFlag, clipLength } from './layer';
import { checksumVerifies, internetChecksum, pseudoHeaderSum } from './checksum';
import { IPPROTO_TCP } from './ipv4';

export const TCP_HEADER_LENGTH = 20;
export const TCP_MAX_OPTIONS_LENGTH = 40;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MSS = 2;

export class TcpHeader {
  srcPort = 0;
  dstPort = 0;
  /** Unsigned 32-bit. */
  seq = 0;
  ack = 0;
  /** Header length in 32-bit words. */
  dataOffset = 0;
  /** The 4 reserved bits between data offset and the flags (must be zero; kept for round trips). */
  reserved = 0;
  /** TCP_FIN .. TCP_CWR bits. */
  flags = 0;
  window = 0;
  checksum = 0;
  urgent = 0;
  readonly options = new Uint8Array(TCP_MAX_OPTIONS_LENGTH);
  optionsLength = 0;

  headerOffset = 0;
  payloadOffset = 0;
  /** Segment data bytes after the header (the layer length given to decode minus the header). */
  payloadLength = 0;

  reset(): void {
    this.srcPort = 0;
    this.dstPort = 0;
    this.seq = 0;
    this.ack = 0;
    this.dataOffset = 0;
    this.reserved = 0;
    this.flags = 0;
    this.window = 0;
    this.checksum = 0;
    this.urgent = 0;
    this.optionsLength = 0;
    this.headerOffset = 0;
    this.payloadOffset = 0;
    this.payloadLength = 0;
  }

  get headerLength(): number {
    return this.dataOffset * 4;
  }

  /** `length` is the whole segment: the IPv4 payload length. */
  decode(buf: Uint8Array, view: DataView, offset: number, length: number): DropReason | 0 {
    this.reset();
    length = clipLength(buf, offset, length);
    if (length < TCP_HEADER_LENGTH) return DropReason.TRUNCATED_TCP;
    this.srcPort = view.getUint16(offset);
    this.dstPort = view.getUint16(offset + 2);
    this.seq = view.getUint32(offset + 4);
    this.ack = view.getUint32(offset + 8);
    const b12 = buf[offset + 12]!;
    this.dataOffset = b12 >>> 4;
    this.reserved = b12 & 0x0f;
    this.flags = buf[offset + 13]!;
    this.window = view.getUint16(offset + 14);
    this.checksum = view.getUint16(offset + 16);
    this.urgent = view.getUint16(offset + 18);
    this.headerOffset = offset;
    // Like tcp_v4_rcv: a header shorter than 20 bytes is malformed, one longer than the data is
    // a truncated segment.
    if (this.dataOffset < 5) return DropReason.BAD_TCP_OFFSET;
    const headerLength = this.dataOffset * 4;
    if (headerLength > length) return DropReason.TRUNCATED_TCP;
    const optionsLength = headerLength - TCP_HEADER_LENGTH;
    for (let i = 0; i < optionsLength; i++) this.options[i] = buf[offset + TCP_HEADER_LENGTH + i]!;
    this.optionsLength = optionsLength;
    this.payloadOffset = offset + headerLength;
    this.payloadLength = length - headerLength;
    return 0;
  }

  /** MSS option value, or -1 when absent or malformed (walks the options without allocating). */
  mss(): number {
    const opts = this.options;
    const n = this.optionsLength;
    let i = 0;
    while (i < n) {
      const kind = opts[i]!;
      if (kind === TCPOPT_EOL) return -1;
      if (kind === TCPOPT_NOP) {
        i++;
        continue;
      }
      if (i + 1 >= n) return -1;
      const len = opts[i + 1]!;
      if (len < 2 || i + len > n) return -1;
      if (kind === TCPOPT_MSS) return len === 4 ? (opts[i + 2]! << 8) | opts[i + 3]! : -1;
      i += len;
    }
    return -1;
  }

  setOptions(bytes: Uint8Array): void {
    if (bytes.length > TCP_MAX_OPTIONS_LENGTH) {
      throw new RangeError(`TcpHeader.setOptions: ${bytes.length} bytes of options, at most ${TCP_MAX_OPTIONS_LENGTH} fit in a header`);
    }
    this.options.set(bytes);
    this.optionsLength = bytes.length;
  }

  /**
   * True when the checksum over pseudo-header + segment verifies. `segmentLength` is header +
   * data (the IPv4 payload length); src/dst are the IPv4 addresses, host order.
   */
  verifyChecksum(buf: Uint8Array, offset: number, segmentLength: number, src: number, dst: number): boolean {
    if (clipLength(buf, offset, segmentLength) < segmentLength) return false;
    return checksumVerifies(buf, offset, segmentLength, pseudoHeaderSum(src, dst, IPPROTO_TCP, segmentLength));
  }

  encodedLength(flags: number = EncodeFlag.NONE): number {
    if (flags & EncodeFlag.FIX_LENGTHS) return TCP_HEADER_LENGTH + ((this.optionsLength + 3) & ~3);
    // A deliberately short header (below 5 words) is still written as the fixed 20 bytes.
    return this.dataOffset < 5 ? TCP_HEADER_LENGTH : this.dataOffset * 4;
  }

  /**
   * Writes the header at `offset`, returns bytes written or -1 if it does not fit.
   * FIX_LENGTHS: data offset from the options (zero-padded to 4). COMPUTE_CHECKSUMS: checksum
   * over the pseudo-header (src, dst) and header + the `payloadLength` bytes that must already
   * follow it in buf.
   */
  encode(
    buf: Uint8Array,
    view: DataView,
    offset: number,
    flags: number = EncodeFlag.NONE,
    payloadLength = 0,
    src = 0,
    dst = 0,
  ): number {
    if (flags & EncodeFlag.FIX_LENGTHS) {
      const padded = (this.optionsLength + 3) & ~3;
      for (let i = this.optionsLength; i < padded; i++) this.options[i] = TCPOPT_EOL;
      this.optionsLength = padded;
      this.dataOffset = (TCP_HEADER_LENGTH + padded) >>> 2;
    }
    const headerLength = this.dataOffset * 4;
    const writeLength = headerLength < TCP_HEADER_LENGTH ? TCP_HEADER_LENGTH : headerLength;
    if (clipLength(buf, offset, writeLength) < writeLength) return -1;
    view.setUint16(offset, this.srcPort & 0xffff);
    view.setUint16(offset + 2, this.dstPort & 0xffff);
    view.setUint32(offset + 4, this.seq >>> 0);
    view.setUint32(offset + 8, this.ack >>> 0);
    buf[offset + 12] = ((this.dataOffset & 0x0f) << 4) | (this.reserved & 0x0f);
    buf[offset + 13] = this.flags;
    view.setUint16(offset + 14, this.window & 0xffff);
    view.setUint16(offset + 16, this.checksum & 0xffff);
    view.setUint16(offset + 18, this.urgent & 0xffff);
    const optionsRoom = writeLength - TCP_HEADER_LENGTH;
    for (let i = 0; i < optionsRoom; i++) buf[offset + TCP_HEADER_LENGTH + i] = i < this.optionsLength ? this.options[i]! : 0;
    if (flags & EncodeFlag.COMPUTE_CHECKSUMS) {
      const segmentLength = writeLength + payloadLength;
      view.setUint16(offset + 16, 0);
      this.checksum = internetChecksum(buf, offset, segmentLength, pseudoHeaderSum(src, dst, IPPROTO_TCP, segmentLength));
      view.setUint16(offset + 16, this.checksum);
    }
    return writeLength;
  }
}
