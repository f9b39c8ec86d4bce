// ARP for IPv4 over Ethernet, RFC 826.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |     Hardware type (1)         |     Protocol type (0x0800)    |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |  HW len (6)   | Proto len (4) |   Operation (1 req, 2 reply)  |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                 Sender hardware address (6)                   |
//   +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                               |  Sender protocol address (4)  |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                               |                               |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//   |                 Target hardware address (6)                   |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                  Target protocol address (4)                  |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Only the Ethernet/IPv4 form (28 bytes) is decoded; anything else is BAD_ARP_FORMAT. A
// gratuitous ARP (RFC 5227 3, what keepalived sends for a VIP) has sender IP = target IP, as a
// request (target MAC 0 or broadcast) or as a reply.

import { DropReason } from './drop';
import { clipLength } from './layer';
import { readMac, writeMac } from './addr';
import { ETHERTYPE_IPV4 } from './ethernet';

export const ARP_LENGTH = 28;
export const ARP_HTYPE_ETHERNET = 1;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export class ArpPacket {
  hardwareType = 0;
  protocolType = 0;
  hardwareLength = 0;
  protocolLength = 0;
  operation = 0;
  /** MACs as 48-bit integers, IPs as host-order uint32. */
  senderMac = 0;
  senderIp = 0;
  targetMac = 0;
  targetIp = 0;

  reset(): void {
    this.hardwareType = 0;
    this.protocolType = 0;
    this.hardwareLength = 0;
    this.protocolLength = 0;
    this.operation = 0;
    this.senderMac = 0;
    this.senderIp = 0;
    this.targetMac = 0;
    this.targetIp = 0;
  }

  get isGratuitous(): boolean {
    return this.senderIp === this.targetIp;
  }

  decode(buf: Uint8Array, view: DataView, offset: number, length: number): DropReason | 0 {
    this.reset();
    length = clipLength(buf, offset, length);
    if (length < 8) return DropReason.TRUNCATED_ARP;
    this.hardwareType = view.getUint16(offset);
    this.protocolType = view.getUint16(offset + 2);
    this.hardwareLength = buf[offset + 4]!;
    this.protocolLength = buf[offset + 5]!;
    this.operation = view.getUint16(offset + 6);
    if (
      this.hardwareType !== ARP_HTYPE_ETHERNET ||
      this.protocolType !== ETHERTYPE_IPV4 ||
      this.hardwareLength !== 6 ||
      this.protocolLength !== 4
    ) {
      return DropReason.BAD_ARP_FORMAT;
    }
    if (length < ARP_LENGTH) return DropReason.TRUNCATED_ARP;
    this.senderMac = readMac(view, offset + 8);
    this.senderIp = view.getUint32(offset + 14);
    this.targetMac = readMac(view, offset + 18);
    this.targetIp = view.getUint32(offset + 24);
    return 0;
  }

  encodedLength(): number {
    return ARP_LENGTH;
  }

  /** Writes the 28 bytes at `offset` (fields as they are); returns 28, or -1 if they do not fit. */
  encode(buf: Uint8Array, view: DataView, offset: number): number {
    if (clipLength(buf, offset, ARP_LENGTH) < ARP_LENGTH) return -1;
    view.setUint16(offset, this.hardwareType & 0xffff);
    view.setUint16(offset + 2, this.protocolType & 0xffff);
    buf[offset + 4] = this.hardwareLength;
    buf[offset + 5] = this.protocolLength;
    view.setUint16(offset + 6, this.operation & 0xffff);
    writeMac(view, offset + 8, this.senderMac);
    view.setUint32(offset + 14, this.senderIp >>> 0);
    writeMac(view, offset + 18, this.targetMac);
    view.setUint32(offset + 24, this.targetIp >>> 0);
    return ARP_LENGTH;
  }

  /** Fills the fixed Ethernet/IPv4 fields (for building requests and replies). */
  setEthernetIpv4(operation: number): void {
    this.hardwareType = ARP_HTYPE_ETHERNET;
    this.protocolType = ETHERTYPE_IPV4;
    this.hardwareLength = 6;
    this.protocolLength = 4;
    this.operation = operation;
  }
}
