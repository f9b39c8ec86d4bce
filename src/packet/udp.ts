// UDP header, RFC 768.
//
//    0      7 8     15 16    23 24    31
//   +--------+--------+--------+--------+
//   |     Source      |   Destination   |
//   |      Port       |      Port       |
//   +--------+--------+--------+--------+
//   |                 |                 |
//   |     Length      |    Checksum     |
//   +--------+--------+--------+--------+
//   |          data octets ...
//   +---------------- ...
//
// Length covers header + data (>= 8). Checksum over the IPv4 pseudo-header and the datagram;
// 0 means "not computed" (RFC 768), so a computed 0 is sent as 0xffff, and an incremental update
// must leave a 0 alone (the kernel's udp_partial_csum_update / CSUM_MANGLED_0 do the same).

import { DropReason } from './drop';
import { EncodeFlag, clipLength } from './layer';
import { checksumUpdate16, checksumUpdate32, checksumVerifies, internetChecksum, pseudoHeaderSum } from './checksum';
import { IPPROTO_UDP } from './ipv4';

export const UDP_HEADER_LENGTH = 8;

export class UdpHeader {
  srcPort = 0;
  dstPort = 0;
  /** Header + data, as in the header. */
  length = 0;
  checksum = 0;

  headerOffset = 0;
  payloadOffset = 0;
  /** length − 8: the datagram's own idea of its data, which may be less than the IP payload. */
  payloadLength = 0;

  reset(): void {
    this.srcPort = 0;
    this.dstPort = 0;
    this.length = 0;
    this.checksum = 0;
    this.headerOffset = 0;
    this.payloadOffset = 0;
    this.payloadLength = 0;
  }

  /** `length` is the IPv4 payload length. */
  decode(buf: Uint8Array, view: DataView, offset: number, length: number): DropReason | 0 {
    this.reset();
    length = clipLength(buf, offset, length);
    if (length < UDP_HEADER_LENGTH) return DropReason.TRUNCATED_UDP;
    this.srcPort = view.getUint16(offset);
    this.dstPort = view.getUint16(offset + 2);
    this.length = view.getUint16(offset + 4);
    this.checksum = view.getUint16(offset + 6);
    this.headerOffset = offset;
    this.payloadOffset = offset + UDP_HEADER_LENGTH;
    // __udp4_lib_rcv: ulen > skb->len or ulen < sizeof(udphdr) is a short packet.
    if (this.length < UDP_HEADER_LENGTH || this.length > length) return DropReason.BAD_UDP_LENGTH;
    this.payloadLength = this.length - UDP_HEADER_LENGTH;
    return 0;
  }

  /** True when the checksum is 0 (none) or verifies over pseudo-header + `length` bytes of datagram. */
  verifyChecksum(buf: Uint8Array, offset: number, src: number, dst: number): boolean {
    if (this.checksum === 0) return true;
    const n = this.length;
    if (n < UDP_HEADER_LENGTH || clipLength(buf, offset, n) < n) return false;
    return checksumVerifies(buf, offset, n, pseudoHeaderSum(src, dst, IPPROTO_UDP, n));
  }

  encodedLength(): number {
    return UDP_HEADER_LENGTH;
  }

  /**
   * Writes the header, returns 8 or -1 if it does not fit. FIX_LENGTHS: length = 8 + payloadLength.
   * COMPUTE_CHECKSUMS: checksum over pseudo-header + header + the payload already in buf after it.
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
    if (clipLength(buf, offset, UDP_HEADER_LENGTH) < UDP_HEADER_LENGTH) return -1;
    if (flags & EncodeFlag.FIX_LENGTHS) this.length = UDP_HEADER_LENGTH + payloadLength;
    view.setUint16(offset, this.srcPort & 0xffff);
    view.setUint16(offset + 2, this.dstPort & 0xffff);
    view.setUint16(offset + 4, this.length & 0xffff);
    view.setUint16(offset + 6, this.checksum & 0xffff);
    if (flags & EncodeFlag.COMPUTE_CHECKSUMS) {
      const n = UDP_HEADER_LENGTH + payloadLength;
      view.setUint16(offset + 6, 0);
      const sum = internetChecksum(buf, offset, n, pseudoHeaderSum(src, dst, IPPROTO_UDP, n));
      this.checksum = sum === 0 ? 0xffff : sum;
      view.setUint16(offset + 6, this.checksum);
    }
    return UDP_HEADER_LENGTH;
  }
}

/** RFC 1624 update of a UDP checksum for a 16-bit change; 0 ("no checksum") stays 0, a result of 0 becomes 0xffff. */
export function udpChecksumUpdate16(checksum: number, oldValue: number, newValue: number): number {
  if (checksum === 0) return 0;
  const c = checksumUpdate16(checksum, oldValue, newValue);
  return c === 0 ? 0xffff : c;
}

/** Same for a 32-bit change (an address in the pseudo-header). */
export function udpChecksumUpdate32(checksum: number, oldValue: number, newValue: number): number {
  if (checksum === 0) return 0;
  const c = checksumUpdate32(checksum, oldValue, newValue);
  return c === 0 ? 0xffff : c;
}
