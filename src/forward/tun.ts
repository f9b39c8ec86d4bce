// LVS-TUN (IP-in-IP, RFC 2003), over a frame.
//
// The inner packet keeps the client's addresses; its TTL is decremented (IPVS decrements in every
// mode, before encapsulating), then an outer IPv4 header is put in front: protocol 4, source = the
// director's address toward the real server (the route's preferred source, NextHopTable
// SRC_ADDR), destination = RIP, TOS and TTL from the inner header and DF copied from it
// (ip_vs_tunnel_xmit with the default pmtu_disc). The RX ring frame has no room for 20 more
// bytes, so the result is written into the worker's TxQueue buffer:
//
//   [virtio_net_hdr, all zero, when the socket uses one] [Ethernet] [outer IPv4] [inner packet]
//
// Size (ip_vs_tunnel_xmit → ensure_mtu_is_adequate): when inner + 20 exceeds the egress MTU and
// the inner packet has DF, the packet is refused with TOO_BIG and the caller answers the client
// with ICMP "fragmentation needed" carrying MTU − 20; without DF the outer packet is fragmented
// (RFC 791), as the kernel's ip_fragment would.
//
// Offloads: the virtio_net_hdr cannot describe IPIP GSO or a checksum inside a tunnel for every
// receiver (a real server running uvs-tun-decap reads the inner packet from a raw socket, where
// nobody would complete it), so everything leaves finished:
//   - a CHECKSUM_PARTIAL inner packet gets its L4 checksum completed (skb_checksum_help's sum
//     from csum_start, stored at csum_start + csum_offset);
//   - a TCPv4 GSO super-frame is cut into gso_size segments here (tcp_gso_segment's rules: seq
//     advances, FIN/PSH only on the last, CWR only on the first, IP id + 1 per segment, full
//     checksums), each then encapsulated like any packet; its MTU check uses the segment size,
//     as skb_gso_validate_network_len does. Other GSO kinds are dropped (GSO_UNSUPPORTED).

import { DropReason } from '../packet/drop';
import { completePartialChecksum, internetChecksum } from '../packet/checksum';
import { IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP } from '../packet/ipv4';
import { copyBytes } from '../packet/bytes';
import { writeTcpSegment } from '../packet/gso';
import { VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4 } from '../packet/vnet';
import { NextHopFlag, type NextHopTable } from '../tables/next-hop';
import type { TxQueue } from '../tables/tx-queue';
import { decrementTtl } from './dr';

export const IPIP_HEADER_BYTES = 20;
const ETH_BYTES = 14;

/** What the pipeline knows of the frame's offload state (from its virtio_net_hdr). */
export interface OffloadInfo {
  /** csum_start relative to the Ethernet header when the L4 checksum is CHECKSUM_PARTIAL, else -1. */
  csumStart: number;
  csumOffset: number;
  gsoType: number;
  gsoSize: number;
}

export class TunForwarder {
  private readonly tx: TxQueue;
  private readonly vnetLen: number;
  /** A segment of a super-frame is built here before it is encapsulated. */
  private readonly scratch = new Uint8Array(65536 + 64);
  private readonly scratchView = new DataView(this.scratch.buffer);
  private ipId = 1;
  /** After TOO_BIG: the MTU to announce to the client (egress MTU − 20). */
  icmpMtu = 0;
  /** Frames queued by the last forward(). */
  frames = 0;
  /** The real server's address (outer destination) of the packet being forwarded. */
  private rip = 0;

  constructor(tx: TxQueue, vnetHdr: boolean) {
    this.tx = tx;
    this.vnetLen = vnetHdr ? 10 : 0;
  }

  /**
   * Encapsulates the IPv4 packet at src[l3 .. l3 + innerLen) (Ethernet header at l2) for the real
   * server `rip` in `destSlot` and queues the frame(s). The source frame is not modified. Returns 0 or
   * a DropReason (TOO_BIG: see icmpMtu).
   */
  forward(src: Uint8Array, srcView: DataView, l2: number, l3: number, innerLen: number, off: OffloadInfo, nextHops: NextHopTable, destSlot: number, rip: number): DropReason | 0 {
    this.frames = 0;
    // Set again by a DF refusal below; any other TOO_BIG earns no ICMP (the pipeline sends
    // "fragmentation needed" only with an MTU here), so no earlier packet's MTU is announced.
    this.icmpMtu = 0;
    this.rip = rip >>> 0;
    const flags = nextHops.flags(destSlot);
    if ((flags & NextHopFlag.VALID) === 0) return DropReason.NO_NEXT_HOP;
    if (src[l3 + 8]! <= 1) return DropReason.TTL_EXPIRED;
    const mtu = nextHops.mtu(destSlot);
    const df = (src[l3 + 6]! & 0x40) !== 0;
    if (off.gsoType !== VNET_GSO_NONE) return this.segment(src, srcView, l3, innerLen, off, mtu, df, nextHops, destSlot);
    if (innerLen + IPIP_HEADER_BYTES > mtu && df) {
      this.icmpMtu = mtu - IPIP_HEADER_BYTES;
      return DropReason.TOO_BIG;
    }
    const csumAt = off.csumStart >= 0 ? l3 + (off.csumStart - (l3 - l2)) : -1;
    return this.emit(src, srcView, l3, innerLen, csumAt, off.csumOffset, mtu, nextHops, destSlot);
  }

  /** Cuts a TCPv4 super-frame into segments of gso_size and emits each. */
  private segment(src: Uint8Array, srcView: DataView, l3: number, innerLen: number, off: OffloadInfo, mtu: number, df: boolean, nextHops: NextHopTable, destSlot: number): DropReason | 0 {
    if ((off.gsoType & ~VNET_GSO_ECN) !== VNET_GSO_TCPV4 || src[l3 + 9] !== IPPROTO_TCP || off.gsoSize === 0) return DropReason.GSO_UNSUPPORTED;
    const ipHl = (src[l3]! & 0x0f) * 4;
    const l4 = l3 + ipHl;
    const tcpHl = (src[l4 + 12]! >>> 4) * 4;
    const hdrs = ipHl + tcpHl;
    if (hdrs > innerLen) return DropReason.TRUNCATED_TCP;
    const mss = off.gsoSize;
    if (hdrs + mss + IPIP_HEADER_BYTES > mtu && df) {
      this.icmpMtu = mtu - IPIP_HEADER_BYTES;
      return DropReason.TOO_BIG;
    }
    const payload = innerLen - hdrs;
    const s = this.scratch;
    const sv = this.scratchView;
    let frames = 0;
    for (let done = 0, i = 0; done < payload || (payload === 0 && i === 0); i++) {
      const chunk = payload - done < mss ? payload - done : mss;
      const segLen = writeTcpSegment(src, srcView, l3, l3 + hdrs + done, chunk, i, done + chunk >= payload, s, sv, 0);
      const r = this.emit(s, sv, 0, segLen, -1, 0, mtu, nextHops, destSlot);
      frames += this.frames;
      if (r !== 0) {
        this.frames = frames;
        return r;
      }
      done += chunk;
      if (payload === 0) break;
    }
    this.frames = frames;
    return 0;
  }

  /**
   * Writes [vnet][Ethernet][outer][inner] into the TX buffer (fragmenting the outer packet when
   * it does not fit and DF is clear), decrements the inner TTL and completes a partial checksum
   * (field at csumAt − l3 + inner start, sum from csumAt) on the copy.
   */
  private emit(src: Uint8Array, srcView: DataView, l3: number, innerLen: number, csumAt: number, csumOffset: number, mtu: number, nextHops: NextHopTable, destSlot: number): DropReason | 0 {
    const tx = this.tx;
    const out = tx.buffer;
    const ov = tx.view;
    const head = this.vnetLen + ETH_BYTES;
    const total = IPIP_HEADER_BYTES + innerLen;
    this.frames = 0;
    // An outer packet past 65,535 bytes cannot exist whole, but its fragments can (the kernel's
    // ip_fragment cuts skb->len): such a packet (no DF: a DF one was refused in forward()) is
    // fragmented as if the MTU were at most 65,535.
    if (total > 0xffff && mtu > 0xffff) mtu = 0xffff;
    // Build the whole outer packet once; fragments are cut from it below.
    const at = tx.reserve(head + total);
    if (at < 0) return DropReason.TX_BUFFER_FULL;
    const outerAt = at + head;
    const innerAt = outerAt + IPIP_HEADER_BYTES;
    copyBytes(src, srcView, l3, out, ov, innerAt, innerLen);
    decrementTtl(out, innerAt);
    if (csumAt >= 0) completePartialChecksum(out, ov, innerAt + (csumAt - l3), innerAt + innerLen, csumOffset, out[innerAt + 9] === IPPROTO_UDP);
    this.writeHeads(at, outerAt, innerAt, total, nextHops, destSlot);
    if (total <= mtu) {
      if (!tx.commit(at, head + total, nextHops.egress(destSlot))) return DropReason.TX_BUFFER_FULL;
      this.frames = 1;
      return 0;
    }
    // RFC 791 fragmentation of the outer packet (DF is clear): 8-byte multiples of the inner
    // bytes per fragment; the outer header has no options, so every fragment repeats it as is.
    const per = (mtu - IPIP_HEADER_BYTES) & ~7;
    // An egress MTU under 28 leaves no 8-byte block per fragment: dropped, no ICMP (icmpMtu 0).
    if (per <= 0) return DropReason.TOO_BIG;
    const data = innerLen;
    const egress = nextHops.egress(destSlot);
    const id = ov.getUint16(outerAt + 4);
    let frames = 0;
    tx.used = (at + head + total + 7) & ~7; // the whole packet stays put while fragments are cut from it
    // The first fragment is the start of the packet already written: shorten it in place after
    // the others are copied out of it.
    for (let offset = per; offset < data; offset += per) {
      const len = data - offset < per ? data - offset : per;
      const fAt = tx.reserve(head + IPIP_HEADER_BYTES + len);
      if (fAt < 0) return DropReason.TX_BUFFER_FULL;
      copyBytes(out, ov, at, out, ov, fAt, head + IPIP_HEADER_BYTES);
      copyBytes(out, ov, innerAt + offset, out, ov, fAt + head + IPIP_HEADER_BYTES, len);
      const fOuter = fAt + head;
      ov.setUint16(fOuter + 2, IPIP_HEADER_BYTES + len);
      ov.setUint16(fOuter + 4, id);
      ov.setUint16(fOuter + 6, (offset + len < data ? 0x2000 : 0) | (offset >>> 3));
      ov.setUint16(fOuter + 10, 0);
      ov.setUint16(fOuter + 10, internetChecksum(out, fOuter, IPIP_HEADER_BYTES));
      if (!tx.commit(fAt, head + IPIP_HEADER_BYTES + len, egress)) return DropReason.TX_BUFFER_FULL;
      frames++;
    }
    ov.setUint16(outerAt + 2, IPIP_HEADER_BYTES + per);
    ov.setUint16(outerAt + 6, 0x2000);
    ov.setUint16(outerAt + 10, 0);
    ov.setUint16(outerAt + 10, internetChecksum(out, outerAt, IPIP_HEADER_BYTES));
    // The first fragment was reserved before the others: queue it at its own place. Its queue
    // slot comes after theirs; the receiver reassembles in any order.
    if (!this.commitAt(at, head + IPIP_HEADER_BYTES + per, egress)) return DropReason.TX_BUFFER_FULL;
    this.frames = frames + 1;
    return 0;
  }

  private commitAt(offset: number, length: number, egress: number): boolean {
    // commit() advances `used` to the end of the frame it queues; keep the furthest end.
    const tx = this.tx;
    const used = tx.used;
    const ok = tx.commit(offset, length, egress);
    if (tx.used < used) tx.used = used;
    return ok;
  }

  private writeHeads(at: number, outerAt: number, innerAt: number, total: number, nextHops: NextHopTable, destSlot: number): void {
    const out = this.tx.buffer;
    const ov = this.tx.view;
    for (let i = at; i < at + this.vnetLen; i++) out[i] = 0;
    const eth = at + this.vnetLen;
    nextHops.writeMacs(destSlot, out, eth);
    out[eth + 12] = 0x08;
    out[eth + 13] = 0x00;
    out[outerAt] = 0x45;
    out[outerAt + 1] = out[innerAt + 1]!; // TOS
    ov.setUint16(outerAt + 2, total);
    ov.setUint16(outerAt + 4, this.ipId);
    this.ipId = (this.ipId + 1) & 0xffff;
    // DF copied from the inner header; no MF, offset 0.
    ov.setUint16(outerAt + 6, (out[innerAt + 6]! & 0x40) !== 0 ? 0x4000 : 0);
    out[outerAt + 8] = out[innerAt + 8]!; // TTL (already decremented)
    out[outerAt + 9] = IPPROTO_IPIP;
    ov.setUint16(outerAt + 10, 0);
    ov.setUint32(outerAt + 12, nextHops.srcAddr(destSlot));
    ov.setUint32(outerAt + 16, this.rip);
    ov.setUint16(outerAt + 10, internetChecksum(out, outerAt, IPIP_HEADER_BYTES));
  }
}
