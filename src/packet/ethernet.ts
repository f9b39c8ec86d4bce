// Ethernet II frame header, with at most one 802.1Q (or 802.1ad) tag.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Destination MAC (6 bytes)                  |
//  +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                               |                               |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//  |                      Source MAC (6 bytes)                     |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |   EtherType or TPID (0x8100)  |  PCP|D|    VLAN ID (12 bits)  |   <- tag only when TPID
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  EtherType (after the tag)    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// IEEE 802.1Q: TCI = PCP (3 bits priority) | DEI (1 bit) | VID (12 bits). A second, inner tag
// (Q-in-Q) is not unwrapped: etherType then reads 0x8100 and the data plane drops it as unsupported.
// Frames shorter than 60 bytes are padded on the wire; the padding is not part of any header and
// the IPv4 total length, not the frame length, tells where the packet ends.

import { DropReason } from './drop';
import { clipLength } from './layer';
import { readMac, writeMac } from './addr';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_IPV6 = 0x86dd;

export const ETHERNET_HEADER_LENGTH = 14;
export const VLAN_TAG_LENGTH = 4;

export class EthernetHeader {
  /** 48-bit integers (see addr.ts). */
  dst = 0;
  src = 0;
  /** EtherType of the payload: after the tag when there is one. */
  etherType = 0;
  /** 1 when an 802.1Q/802.1ad tag was present. */
  tagged = 0;
  /** Tag protocol identifier (0x8100 or 0x88a8) when tagged. */
  tpid = 0;
  /** Priority code point (0..7), drop eligible indicator (0/1), VLAN id (0..4095). */
  pcp = 0;
  dei = 0;
  vlanId = 0;
  /** 14, or 18 when tagged. */
  headerLength = 0;
  /** Where the payload starts in the buffer (offset + headerLength) and how many bytes follow. */
  payloadOffset = 0;
  payloadLength = 0;

  reset(): void {
    this.dst = 0;
    this.src = 0;
    this.etherType = 0;
    this.tagged = 0;
    this.tpid = 0;
    this.pcp = 0;
    this.dei = 0;
    this.vlanId = 0;
    this.headerLength = 0;
    this.payloadOffset = 0;
    this.payloadLength = 0;
  }

  decode(buf: Uint8Array, view: DataView, offset: number, length: number): DropReason | 0 {
    this.reset();
    length = clipLength(buf, offset, length);
    if (length < ETHERNET_HEADER_LENGTH) return DropReason.TRUNCATED_ETH;
    this.dst = readMac(view, offset);
    this.src = readMac(view, offset + 6);
    let type = view.getUint16(offset + 12);
    let headerLength = ETHERNET_HEADER_LENGTH;
    if (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) {
      if (length < ETHERNET_HEADER_LENGTH + VLAN_TAG_LENGTH) return DropReason.TRUNCATED_VLAN;
      const tci = view.getUint16(offset + 14);
      this.tagged = 1;
      this.tpid = type;
      this.pcp = tci >>> 13;
      this.dei = (tci >>> 12) & 1;
      this.vlanId = tci & 0x0fff;
      type = view.getUint16(offset + 16);
      headerLength += VLAN_TAG_LENGTH;
    }
    this.etherType = type;
    this.headerLength = headerLength;
    this.payloadOffset = offset + headerLength;
    this.payloadLength = length - headerLength;
    return 0;
  }

  /** Bytes encode will write: 14, or 18 with a tag. */
  encodedLength(): number {
    return this.tagged ? ETHERNET_HEADER_LENGTH + VLAN_TAG_LENGTH : ETHERNET_HEADER_LENGTH;
  }

  /** Writes the header at `offset`; returns the bytes written, or -1 when it does not fit in buf. */
  encode(buf: Uint8Array, view: DataView, offset: number): number {
    const need = this.encodedLength();
    if (clipLength(buf, offset, need) < need) return -1;
    writeMac(view, offset, this.dst);
    writeMac(view, offset + 6, this.src);
    if (this.tagged) {
      view.setUint16(offset + 12, this.tpid === 0 ? ETHERTYPE_VLAN : this.tpid);
      view.setUint16(offset + 14, ((this.pcp & 7) << 13) | ((this.dei & 1) << 12) | (this.vlanId & 0x0fff));
      view.setUint16(offset + 16, this.etherType);
    } else {
      view.setUint16(offset + 12, this.etherType);
    }
    return need;
  }
}

/**
 * Offset of the IPv4 header behind the Ethernet header and up to two VLAN tags (802.1ad outer,
 * 802.1Q inner), or -1 when the frame is not IPv4 or too short for a minimal IPv4 header.
 * For code outside the data plane's parser (libpcap backend, checksum and GSO helpers).
 */
export function ipv4HeaderOffset(view: DataView, length: number): number {
  let l3 = 14;
  if (length < l3 + 20) return -1;
  let type = view.getUint16(12);
  // At most two VLAN tags (802.1ad outer, 802.1Q inner).
  for (let tags = 0; tags < 2 && (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ); tags++) {
    if (length < l3 + 4 + 20) return -1;
    type = view.getUint16(l3 + 2);
    l3 += 4;
  }
  return type === ETHERTYPE_IPV4 ? l3 : -1;
}

/**
 * The offset of a whole, unfragmented IPv4 packet behind the link-layer header (see
 * ipv4HeaderOffset): version 4, a header of at least 20 bytes, a total length that covers the
 * header and lies within `length`, no MF and no fragment offset; else -1. The checks the
 * checksum completion and the GSO segmentation both start from.
 */
export function wholeIpv4Offset(frame: Uint8Array, view: DataView, length: number): number {
  const l3 = ipv4HeaderOffset(view, length);
  if (l3 < 0) return -1;
  const vihl = frame[l3]!;
  if (vihl >>> 4 !== 4) return -1;
  const ihl = (vihl & 0x0f) * 4;
  const totalLength = view.getUint16(l3 + 2);
  if (ihl < 20 || totalLength < ihl || l3 + totalLength > length) return -1;
  if ((view.getUint16(l3 + 6) & 0x3fff) !== 0) return -1; // MF or a fragment offset
  return l3;
}
