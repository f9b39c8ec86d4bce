// LVS-NAT (masquerading), pure functions over a frame.
//
// Inbound (client → VIP:vport): the destination becomes RIP:rport (ip_vs_nat_xmit → the
// protocol's dnat_handler), the frame goes to the real server's next hop, TTL − 1.
// Outbound (RIP:rport → client, found by ip_vs_out): the source becomes VIP:vport
// (snat_handler), the frame goes to the next hop toward the client, TTL − 1.
//
// Checksums are updated incrementally (RFC 1624), never recomputed over the payload:
//   - IP header: the address change;
//   - TCP/UDP: the address (it is in the pseudo-header) and the port.
// A frame whose L4 checksum is left to the NIC (CHECKSUM_PARTIAL: the virtio_net_hdr says
// NEEDS_CSUM, the ring says TP_STATUS_CSUMNOTREADY) carries in its checksum field the folded,
// uncomplemented pseudo-header sum; the device sums the L4 header and payload on top of it. Then
// only the address change is applied, to that uncomplemented value, and the port change is not
// (the device will sum the new port itself) — the kernel's inet_proto_csum_replace4 with
// pseudohdr = true and inet_proto_csum_replace2 with pseudohdr = false do the same. GSO
// super-frames are always CHECKSUM_PARTIAL and keep their virtio_net_hdr: the kernel segments
// them on transmit.
//
// UDP: a zero checksum means "none" and stays zero; a computed zero is sent as 0xffff (RFC 768).

import { DropReason } from '../packet/drop';
import { checksumUpdate16, checksumUpdate32 } from '../packet/checksum';
import { udpChecksumUpdate16, udpChecksumUpdate32 } from '../packet/udp';
import { IPPROTO_TCP } from '../packet/ipv4';
import { NextHopFlag, type NextHopTable } from '../tables/next-hop';
import type { ClientHopTable } from '../tables/client-hops';
import type { ConnTable } from '../conn/table';
import { decrementTtl } from './dr';

const IP_CHECKSUM = 10;
const IP_SRC = 12;
const IP_DST = 16;
const TCP_CHECKSUM = 16;
const UDP_CHECKSUM = 6;

function read32(f: Uint8Array, at: number): number {
  return ((f[at]! << 24) | (f[at + 1]! << 16) | (f[at + 2]! << 8) | f[at + 3]!) >>> 0;
}
function write32(f: Uint8Array, at: number, v: number): void {
  f[at] = v >>> 24;
  f[at + 1] = (v >>> 16) & 0xff;
  f[at + 2] = (v >>> 8) & 0xff;
  f[at + 3] = v & 0xff;
}
function read16(f: Uint8Array, at: number): number {
  return (f[at]! << 8) | f[at + 1]!;
}
function write16(f: Uint8Array, at: number, v: number): void {
  f[at] = v >>> 8;
  f[at + 1] = v & 0xff;
}

/**
 * Replaces the source (`dst` false) or destination (`dst` true) address and port of the TCP/UDP
 * packet whose IPv4 header is at `l3` and transport header at `l4`, fixing the checksums as the
 * header comment explains. `partial`: the L4 checksum is CHECKSUM_PARTIAL.
 */
export function rewriteAddrPort(
  frame: Uint8Array,
  l3: number,
  l4: number,
  protocol: number,
  dst: boolean,
  addr: number,
  port: number,
  partial: boolean,
): void {
  const addrAt = l3 + (dst ? IP_DST : IP_SRC);
  const portAt = l4 + (dst ? 2 : 0);
  const oldAddr = read32(frame, addrAt);
  const oldPort = read16(frame, portAt);
  addr >>>= 0;
  if (oldAddr !== addr) {
    write32(frame, addrAt, addr);
    write16(frame, l3 + IP_CHECKSUM, checksumUpdate32(read16(frame, l3 + IP_CHECKSUM), oldAddr, addr));
  }
  const csumAt = l4 + (protocol === IPPROTO_TCP ? TCP_CHECKSUM : UDP_CHECKSUM);
  let csum = read16(frame, csumAt);
  if (partial) {
    // The field holds fold(pseudo-header sum), uncomplemented: ~update(~field) adds ~old + new to it.
    if (oldAddr !== addr) csum = ~checksumUpdate32(~csum & 0xffff, oldAddr, addr) & 0xffff;
  } else if (protocol === IPPROTO_TCP) {
    if (oldAddr !== addr) csum = checksumUpdate32(csum, oldAddr, addr);
    if (oldPort !== port) csum = checksumUpdate16(csum, oldPort, port);
  } else {
    if (oldAddr !== addr) csum = udpChecksumUpdate32(csum, oldAddr, addr);
    if (oldPort !== port) csum = udpChecksumUpdate16(csum, oldPort, port);
  }
  write16(frame, csumAt, csum);
  write16(frame, portAt, port);
}

/**
 * Client → real server: destination := rip:rport, MACs toward the real server in `destSlot`,
 * TTL − 1. Returns 0, or the reason not to send (the frame is then unchanged, so an ICMP error
 * can quote it as received).
 */
export function forwardNatIn(
  frame: Uint8Array,
  l2: number,
  l3: number,
  l4: number,
  protocol: number,
  rip: number,
  rport: number,
  partial: boolean,
  nextHops: NextHopTable,
  destSlot: number,
): DropReason | 0 {
  if ((nextHops.flags(destSlot) & NextHopFlag.VALID) === 0) return DropReason.NO_NEXT_HOP;
  const ttl = decrementTtl(frame, l3);
  if (ttl !== 0) return ttl;
  rewriteAddrPort(frame, l3, l4, protocol, true, rip, rport, partial);
  nextHops.writeMacs(destSlot, frame, l2);
  return 0;
}

/**
 * Real server → client: source := vip:vport, MACs toward the client, TTL − 1. The next hop is the
 * one kept with connection entry `index` (generation `seq`, ConnTable.setClientHop), or for an
 * entry that has none (connection sync) the route in `clientHops`. Returns the egress interface
 * index (≥ 0) or −DropReason (the frame then unchanged).
 */
export function forwardNatOut(
  frame: Uint8Array,
  l2: number,
  l3: number,
  l4: number,
  protocol: number,
  vip: number,
  vport: number,
  partial: boolean,
  conns: ConnTable,
  index: number,
  seq: number,
  clientHops: ClientHopTable,
): number {
  // MACs first: when the client is unknown the frame must stay as it came.
  if ((frame[l3 + 8]! | 0) <= 1) return -DropReason.TTL_EXPIRED;
  let egress = conns.writeClientHop(index, seq, frame, l2);
  if (egress < 0) egress = clientHops.writeMacs(read32(frame, l3 + IP_DST), frame, l2);
  if (egress < 0) return -DropReason.NO_CLIENT_HOP;
  decrementTtl(frame, l3);
  rewriteAddrPort(frame, l3, l4, protocol, false, vip, vport, partial);
  return egress;
}
