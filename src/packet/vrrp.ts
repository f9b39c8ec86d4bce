// VRRP advertisements: version 2 (RFC 3768 section 5.1) and version 3 (RFC 5798 section 5.1).
//
// Version 2:
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |   Auth Type   |   Adver Int   |          Checksum             |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                         IP Address (1)                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                            .........                          |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                     Authentication Data (1)                   |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                     Authentication Data (2)                   |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Version 3 (IPv4 form):
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |(rsvd) |     Max Adver Int     |          Checksum             |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                       IPv4 Address(es)                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Type 1 = advertisement (the only one). v2: advert interval in seconds (8 bits), auth type 0 (none)
// or 1 (simple text password, 8 bytes zero-padded; RFC 2338 5.3.6, dropped by RFC 3768 but still
// sent by keepalived `auth_type PASS`), checksum over the VRRP message alone. v3: max advert
// interval in centiseconds (12 bits), no authentication, checksum also over the IPv4 pseudo-header
// (RFC 5798 5.2.8: src, dst, 0, protocol 112, VRRP length), like UDP. Sent to 224.0.0.18 with
// IP TTL 255 (checked by the receiver, RFC 5798 7.1).

import { DropReason } from './drop';
import { EncodeFlag, clipLength } from './layer';
import { checksumVerifies, internetChecksum, pseudoHeaderSum } from './checksum';
import { IPPROTO_VRRP } from './ipv4';

export const VRRP_HEADER_LENGTH = 8;
export const VRRP_AUTH_DATA_LENGTH = 8;
export const VRRP_TYPE_ADVERTISEMENT = 1;
export const VRRP_AUTH_NONE = 0;
export const VRRP_AUTH_PASS = 1;
export const VRRP_AUTH_AH = 2;
/** 224.0.0.18 */
export const VRRP_MULTICAST_GROUP = 0xe0000012;
export const VRRP_TTL = 255;
export const VRRP_MAX_ADDRESSES = 255;

export class VrrpPacket {
  version = 0;
  type = 0;
  vrid = 0;
  priority = 0;
  /** Count of addresses, as on the wire; `addresses[0 .. count)` hold them (host-order uint32). */
  count = 0;
  /** v2 only. */
  authType = 0;
  /** v2 only: seconds. */
  advertInt = 0;
  /** v3 only: the 4 reserved bits and the 12-bit max advert interval in centiseconds. */
  reserved = 0;
  maxAdvertInt = 0;
  checksum = 0;
  readonly addresses = new Uint32Array(VRRP_MAX_ADDRESSES);
  /** v2 only: the 8 bytes of authentication data (the zero-padded password for PASS). */
  readonly authData = new Uint8Array(VRRP_AUTH_DATA_LENGTH);

  headerOffset = 0;
  /** Bytes the checksum covers: the length given to decode (the IPv4 payload length). */
  messageLength = 0;

  reset(): void {
    this.version = 0;
    this.type = 0;
    this.vrid = 0;
    this.priority = 0;
    this.count = 0;
    this.authType = 0;
    this.advertInt = 0;
    this.reserved = 0;
    this.maxAdvertInt = 0;
    this.checksum = 0;
    this.authData.fill(0);
    this.headerOffset = 0;
    this.messageLength = 0;
  }

  /** The advertisement interval in centiseconds whatever the version. */
  get advertIntervalCs(): number {
    return this.version === 2 ? this.advertInt * 100 : this.maxAdvertInt;
  }

  decode(buf: Uint8Array, view: DataView, offset: number, length: number): DropReason | 0 {
    this.reset();
    length = clipLength(buf, offset, length);
    if (length < VRRP_HEADER_LENGTH) return DropReason.TRUNCATED_VRRP;
    const vt = buf[offset]!;
    this.version = vt >>> 4;
    this.type = vt & 0x0f;
    this.vrid = buf[offset + 1]!;
    this.priority = buf[offset + 2]!;
    this.count = buf[offset + 3]!;
    this.checksum = view.getUint16(offset + 6);
    this.headerOffset = offset;
    this.messageLength = length;
    if (this.version === 2) {
      this.authType = buf[offset + 4]!;
      this.advertInt = buf[offset + 5]!;
    } else if (this.version === 3) {
      const w = view.getUint16(offset + 4);
      this.reserved = w >>> 12;
      this.maxAdvertInt = w & 0x0fff;
    } else {
      return DropReason.BAD_VRRP_VERSION;
    }
    if (this.type !== VRRP_TYPE_ADVERTISEMENT) return DropReason.BAD_VRRP_TYPE;
    const addressesEnd = VRRP_HEADER_LENGTH + 4 * this.count;
    const needed = addressesEnd + (this.version === 2 ? VRRP_AUTH_DATA_LENGTH : 0);
    if (length < needed) return DropReason.TRUNCATED_VRRP;
    for (let i = 0; i < this.count; i++) this.addresses[i] = view.getUint32(offset + VRRP_HEADER_LENGTH + 4 * i);
    if (this.version === 2) {
      for (let i = 0; i < VRRP_AUTH_DATA_LENGTH; i++) this.authData[i] = buf[offset + addressesEnd + i]!;
    }
    return 0;
  }

  /** Bytes of the advertisement: 8 + 4 × count (+ 8 auth bytes for v2). */
  encodedLength(): number {
    return VRRP_HEADER_LENGTH + 4 * this.count + (this.version === 2 ? VRRP_AUTH_DATA_LENGTH : 0);
  }

  /** Checksum over `messageLength` bytes; src/dst (host order) matter only for v3's pseudo-header. */
  verifyChecksum(buf: Uint8Array, offset: number, src: number, dst: number): boolean {
    const n = this.messageLength;
    if (n < VRRP_HEADER_LENGTH || clipLength(buf, offset, n) < n) return false;
    const initial = this.version === 3 ? pseudoHeaderSum(src, dst, IPPROTO_VRRP, n) : 0;
    return checksumVerifies(buf, offset, n, initial);
  }

  /**
   * Writes the advertisement at `offset` (fields as they are; count addresses); returns the bytes
   * written or -1. COMPUTE_CHECKSUMS computes the checksum (v3 with the pseudo-header of src, dst)
   * and sets messageLength to the written length.
   */
  encode(buf: Uint8Array, view: DataView, offset: number, flags: number = EncodeFlag.NONE, src = 0, dst = 0): number {
    const n = this.encodedLength();
    if (clipLength(buf, offset, n) < n) return -1;
    buf[offset] = ((this.version & 0x0f) << 4) | (this.type & 0x0f);
    buf[offset + 1] = this.vrid;
    buf[offset + 2] = this.priority;
    buf[offset + 3] = this.count;
    if (this.version === 2) {
      buf[offset + 4] = this.authType;
      buf[offset + 5] = this.advertInt;
    } else {
      view.setUint16(offset + 4, ((this.reserved & 0x0f) << 12) | (this.maxAdvertInt & 0x0fff));
    }
    view.setUint16(offset + 6, this.checksum & 0xffff);
    for (let i = 0; i < this.count; i++) view.setUint32(offset + VRRP_HEADER_LENGTH + 4 * i, this.addresses[i]! >>> 0);
    if (this.version === 2) {
      const at = offset + VRRP_HEADER_LENGTH + 4 * this.count;
      for (let i = 0; i < VRRP_AUTH_DATA_LENGTH; i++) buf[at + i] = this.authData[i]!;
    }
    if (flags & EncodeFlag.COMPUTE_CHECKSUMS) {
      view.setUint16(offset + 6, 0);
      const initial = this.version === 3 ? pseudoHeaderSum(src, dst, IPPROTO_VRRP, n) : 0;
      this.checksum = internetChecksum(buf, offset, n, initial);
      view.setUint16(offset + 6, this.checksum);
      this.messageLength = n;
    }
    return n;
  }

  /**
   * v2 PASS: the password as 8 zero-padded bytes (longer ones are cut at 8, as keepalived does).
   * `password` is a byte string (latin1, one char per byte), as src/vrrp keeps it; plain ASCII
   * text is its own byte string.
   */
  setPassword(password: string): void {
    const bytes = Buffer.from(password, 'latin1');
    this.authData.fill(0);
    this.authData.set(bytes.subarray(0, VRRP_AUTH_DATA_LENGTH));
  }

  /** True when the auth data equals `expected` (8 bytes, e.g. from setPassword on another packet). No allocation. */
  authDataEquals(expected: Uint8Array): boolean {
    if (expected.length !== VRRP_AUTH_DATA_LENGTH) return false;
    for (let i = 0; i < VRRP_AUTH_DATA_LENGTH; i++) if (this.authData[i] !== expected[i]) return false;
    return true;
  }
}
