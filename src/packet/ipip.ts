// IP-in-IP encapsulation, RFC 2003: an outer IPv4 header (protocol 4) in front of an unchanged
// inner IPv4 packet. This is LVS's TUN mode.
//
//   +---------------------------+
//   |      Outer IP Header      |   protocol 4, src = director, dst = real server
//   +---------------------------+
//   |      Inner IP Header      |   untouched (its TTL already decremented by the forwarder)
//   +---------------------------+
//   |         IP Payload        |
//   +---------------------------+
//
// Outer fields follow the kernel's ip_vs_tunnel_xmit(): version 4, IHL 5, TOS and TTL copied from
// the inner header, DF copied from the inner header (when PMTU discovery is on, the default), MF and
// fragment offset 0, a fresh identification. RFC 2003 3.1 says the same for TOS and DF.
//
// The caller owns the room: encapsulation writes the outer header in the 20 bytes just before the
// inner packet, so a forwarder reserves that headroom in its TX buffer (or moves the L2 header).

import { DropReason } from './drop';
import { EncodeFlag, clipLength } from './layer';
import { IPPROTO_IPIP, IPV4_FLAG_DF, IPV4_HEADER_LENGTH, Ipv4Header } from './ipv4';

export const IPIP_OVERHEAD = IPV4_HEADER_LENGTH;
const IPV4_MAX_TOTAL_LENGTH = 0xffff;

/**
 * Writes an outer header at `outerOffset` in front of the already decoded `inner` packet, which must
 * start at outerOffset + 20. `outer` is a scratch header (overwritten). `copyDf` mirrors
 * sysctl pmtu_disc (IPVS default 1). Returns 0, TOO_BIG when the result would exceed 65535 bytes,
 * or TRUNCATED_IP when buf has no room at outerOffset.
 */
export function ipipEncapsulate(
  buf: Uint8Array,
  view: DataView,
  outerOffset: number,
  inner: Ipv4Header,
  outer: Ipv4Header,
  src: number,
  dst: number,
  id: number,
  copyDf = true,
): DropReason | 0 {
  if (outerOffset < 0 || inner.headerOffset !== outerOffset + IPIP_OVERHEAD) return DropReason.TRUNCATED_IP;
  const total = IPIP_OVERHEAD + inner.totalLength;
  if (total > IPV4_MAX_TOTAL_LENGTH) return DropReason.TOO_BIG;
  if (clipLength(buf, outerOffset, IPIP_OVERHEAD) < IPIP_OVERHEAD) return DropReason.TRUNCATED_IP;
  outer.reset();
  outer.version = 4;
  outer.tos = inner.tos;
  outer.id = id & 0xffff;
  outer.flags = copyDf ? inner.flags & IPV4_FLAG_DF : 0;
  outer.ttl = inner.ttl;
  outer.protocol = IPPROTO_IPIP;
  outer.src = src;
  outer.dst = dst;
  outer.encode(buf, view, outerOffset, EncodeFlag.FIX_ALL, inner.totalLength);
  outer.headerOffset = outerOffset;
  outer.payloadOffset = outerOffset + IPIP_OVERHEAD;
  outer.payloadLength = inner.totalLength;
  return 0;
}

/**
 * Decodes an IP-in-IP packet at `offset`: `outer` gets the outer header, `inner` the inner one
 * (at outer.payloadOffset). Returns NOT_IPIP when the outer protocol is not 4, IP_FRAGMENT when the
 * outer packet is a fragment (it would need reassembly first), else the decoders' verdicts. Nothing
 * is moved: the inner packet simply starts at inner.headerOffset.
 */
export function ipipDecapsulate(
  buf: Uint8Array,
  view: DataView,
  offset: number,
  length: number,
  outer: Ipv4Header,
  inner: Ipv4Header,
): DropReason | 0 {
  const outerVerdict = outer.decode(buf, view, offset, length);
  if (outerVerdict !== 0) return outerVerdict;
  if (outer.protocol !== IPPROTO_IPIP) return DropReason.NOT_IPIP;
  if (outer.isFragment) return DropReason.IP_FRAGMENT;
  return inner.decode(buf, view, outer.payloadOffset, outer.payloadLength);
}

/**
 * Strips the outer header of a frame in place: moves the `l2Length` bytes of link-layer header that
 * precede the outer IP header (at frameOffset) forward over it, so the frame now starts at the
 * returned offset (frameOffset + outer header length) with the inner packet right after its L2
 * header. The caller fixes the EtherType if needed (it is IPv4 before and after).
 */
export function ipipStripFrame(buf: Uint8Array, frameOffset: number, l2Length: number, outerHeaderLength: number): number {
  buf.copyWithin(frameOffset + outerHeaderLength, frameOffset, frameOffset + l2Length);
  return frameOffset + outerHeaderLength;
}
