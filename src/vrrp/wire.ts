// Between the bytes of a VRRP packet and the records the state machine reads: decodes an IPv4
// packet as a raw IPPROTO_VRRP (112) socket delivers it (IP header included) into a VrrpAdvert
// plus its AdvertReceipt, and encodes an OutgoingAdvert as keepalived sends it (TOS 0xc0 =
// network control, TTL 255, VRRP checksum; v3 with the IPv4 pseudo-header, RFC 5798 §5.2.8).
// The header layouts live in src/packet/ (ipv4.ts, vrrp.ts); this file only maps fields.
// VRRP runs at a few packets per second per instance, so these functions may allocate.

import { intToIpv4, ipv4ToInt } from '../packet/addr';
import { IPPROTO_VRRP, Ipv4Header } from '../packet/ipv4';
import { EncodeFlag, viewOf } from '../packet/layer';
import { VRRP_AUTH_DATA_LENGTH, VRRP_HEADER_LENGTH, VrrpPacket } from '../packet/vrrp';
import { dropReasonName } from '../packet/drop';
import { AdvertReceipt, OutgoingAdvert, VrrpAdvert } from './types';

export interface DecodedAdvert {
  advert: VrrpAdvert;
  receipt: AdvertReceipt;
}

/** Not a VRRP packet at all (bad IP header, other protocol): nothing for the state machine. */
export interface WireError {
  error: string;
}

/** keepalived's IP header for adverts: DSCP CS6 (RFC 3768 §5.2 leaves TOS open; this is what peers see). */
export const VRRP_IP_TOS = 0xc0;

export class VrrpWire {
  private readonly ip = new Ipv4Header();
  private readonly vrrp = new VrrpPacket();

  decode(packet: Uint8Array, ifindex: number): DecodedAdvert | WireError {
    const view = viewOf(packet);
    const ipDrop = this.ip.decode(packet, view, 0, packet.length);
    if (ipDrop !== 0) return { error: `IPv4 header: ${dropReasonName(ipDrop)}` };
    if (this.ip.protocol !== IPPROTO_VRRP) return { error: `IP protocol ${this.ip.protocol} is not VRRP (112)` };
    const v = this.vrrp;
    const offset = this.ip.payloadOffset;
    const length = this.ip.payloadLength;
    const drop = v.decode(packet, view, offset, length);
    // A wrong version or type is still handed on: the state machine counts it under its own
    // reason (RFC 3768 §7.1), as keepalived does. Only a header too short to read is a length error.
    const headerRead = length >= VRRP_HEADER_LENGTH;
    const expected = VRRP_HEADER_LENGTH + 4 * v.count + (v.version === 2 ? VRRP_AUTH_DATA_LENGTH : 0);
    const knownVersion = v.version === 2 || v.version === 3;
    const lengthOk = headerRead && (!knownVersion || length === expected);
    const addresses: string[] = [];
    if (drop === 0) for (let i = 0; i < v.count; i++) addresses.push(intToIpv4(v.addresses[i]!));
    // All 8 bytes as a byte string (latin1: one char per byte), trailing zero padding dropped:
    // keepalived compares the raw 8 bytes, so bytes after a NUL and bytes that are not UTF-8 count.
    let authData = '';
    if (v.version === 2) {
      let end = VRRP_AUTH_DATA_LENGTH;
      while (end > 0 && v.authData[end - 1] === 0) end--;
      authData = Buffer.from(v.authData.subarray(0, end)).toString('latin1');
    }
    const checksumOk = lengthOk && knownVersion && v.verifyChecksum(packet, offset, this.ip.src, this.ip.dst);
    return {
      advert: {
        version: v.version,
        type: v.type,
        vrid: v.vrid,
        priority: v.priority,
        advertIntCs: v.version === 2 ? v.advertInt * 100 : v.maxAdvertInt,
        authType: v.version === 2 ? v.authType : 0,
        authData,
        addresses,
      },
      receipt: {
        source: intToIpv4(this.ip.src),
        destination: intToIpv4(this.ip.dst),
        ttl: this.ip.ttl,
        ifindex,
        checksumOk,
        lengthOk,
      },
    };
  }

  private fill(advert: OutgoingAdvert): void {
    const v = this.vrrp;
    v.reset();
    v.version = advert.version;
    v.type = advert.type;
    v.vrid = advert.vrid;
    v.priority = advert.priority;
    v.count = advert.addresses.length;
    for (let i = 0; i < v.count; i++) v.addresses[i] = ipv4ToInt(advert.addresses[i]!);
    if (advert.version === 2) {
      v.authType = advert.authType;
      v.advertInt = Math.round(advert.advertIntCs / 100);
      if (advert.authType === 1) v.setPassword(advert.authData);
    } else {
      v.maxAdvertInt = advert.advertIntCs & 0x0fff;
    }
  }

  /**
   * The VRRP message alone, for a raw socket whose kernel writes the IP header (then set
   * IP_MULTICAST_TTL/IP_TTL to 255). v3's checksum needs the source and destination it will carry.
   */
  encodePayload(advert: OutgoingAdvert, source: string): Uint8Array {
    this.fill(advert);
    const out = new Uint8Array(this.vrrp.encodedLength());
    this.vrrp.encode(out, viewOf(out), 0, EncodeFlag.COMPUTE_CHECKSUMS, ipv4ToInt(source), ipv4ToInt(advert.destination));
    return out;
  }

  /** A whole IPv4 packet (IP_HDRINCL), byte for byte as keepalived builds it. */
  encodePacket(advert: OutgoingAdvert, source: string, id = 0): Uint8Array {
    this.fill(advert);
    const payloadLength = this.vrrp.encodedLength();
    const ip = this.ip;
    ip.reset();
    ip.version = 4;
    ip.tos = VRRP_IP_TOS;
    ip.id = id;
    ip.ttl = advert.ttl;
    ip.protocol = IPPROTO_VRRP;
    ip.src = ipv4ToInt(source);
    ip.dst = ipv4ToInt(advert.destination);
    const headerLength = ip.encodedLength(EncodeFlag.FIX_LENGTHS);
    const out = new Uint8Array(headerLength + payloadLength);
    const view = viewOf(out);
    this.vrrp.encode(out, view, headerLength, EncodeFlag.COMPUTE_CHECKSUMS, ip.src, ip.dst);
    ip.encode(out, view, 0, EncodeFlag.FIX_ALL, payloadLength);
    return out;
  }
}
