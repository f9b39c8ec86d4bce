// Direct routing (LVS-DR), a pure function over a frame.
//
// The IP packet is left as the client sent it — destination still the VIP, which the real server
// holds on a non-ARPing interface — and only the Ethernet header changes: destination = the real
// server's MAC, source = the director's MAC on the egress interface. TTL is decremented and the
// header checksum updated incrementally (RFC 1624), as IPVS does in every mode (ip_vs_dr_xmit →
// ip_vs_send_or_cont → ip_forward-like decrease in the output path).
//
// Returns 0 when the frame is ready to transmit, otherwise the reason to drop it.

import { DropReason } from '../packet/drop';
import { checksumUpdate16 } from '../packet/checksum';
import { NextHopFlag, type NextHopTable } from '../tables/next-hop';

/** Offsets of IPv4 header fields used here. */
const IP_TTL = 8;
const IP_CHECKSUM = 10;

/**
 * Decrements the TTL of the IPv4 header at `l3` and fixes its checksum. A packet whose TTL would
 * reach 0 is not forwarded (RFC 1812 5.3.1); the caller answers it with ICMP time exceeded.
 */
export function decrementTtl(frame: Uint8Array, l3: number): DropReason | 0 {
  const ttl = frame[l3 + IP_TTL]!;
  if (ttl <= 1) return DropReason.TTL_EXPIRED;
  const proto = frame[l3 + IP_TTL + 1]!;
  const oldWord = (ttl << 8) | proto;
  const newWord = ((ttl - 1) << 8) | proto;
  frame[l3 + IP_TTL] = ttl - 1;
  const csum = (frame[l3 + IP_CHECKSUM]! << 8) | frame[l3 + IP_CHECKSUM + 1]!;
  const updated = checksumUpdate16(csum, oldWord, newWord);
  frame[l3 + IP_CHECKSUM] = updated >>> 8;
  frame[l3 + IP_CHECKSUM + 1] = updated & 0xff;
  return 0;
}

/**
 * Rewrites the frame at `l2` (Ethernet header; IPv4 header at `l3`) for the real server in DestTable
 * slot `destSlot`. The next-hop record must be VALID; a real server behind a router cannot be
 * reached by DR (the frame would carry the router's MAC and the router would route it back to
 * the VIP's owner), which the control plane reports when the server is added.
 */
export function forwardDr(frame: Uint8Array, l2: number, l3: number, nextHops: NextHopTable, destSlot: number): DropReason | 0 {
  const flags = nextHops.flags(destSlot);
  if ((flags & NextHopFlag.VALID) === 0) return DropReason.NO_NEXT_HOP;
  if ((flags & NextHopFlag.VIA_GATEWAY) !== 0) return DropReason.NOT_ON_LINK;
  const ttl = decrementTtl(frame, l3);
  if (ttl !== 0) return ttl;
  nextHops.writeMacs(destSlot, frame, l2);
  return 0;
}
