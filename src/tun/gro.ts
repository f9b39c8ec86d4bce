// Userspace GRO for uvs-tun-decap: consecutive TCP segments of one flow, read one datagram at a
// time from the raw socket, are joined into one TCP super-frame and written to the TUN device
// (opened with IFF_VNET_HDR) with a virtio_net_hdr that says GSO TCPV4, gso_size = the segments'
// payload size, checksum CHECKSUM_PARTIAL — what a VM's virtio NIC hands its host.
//
// Why: the director's TUN path must send finished, MTU-sized segments (src/forward/tun.ts), and a
// TUN device has no GRO for what userspace writes (one write() = one skb, even with IFF_NAPI), so
// without this the real server's TCP stack, its ACK generation and the TUN write all ran once per
// ~1.4 kB segment. Measured in the bench lab (iperf3 through `uvs TUN`, 1 stream, 2 cores shared
// with another load): the real server spent ~5 CPU-seconds per GB (uvs-tun-decap ~45-75 % of a
// core, most of it the per-segment TUN write and TCP receive, iperf3 -s ~20 %); with this, ~2.4
// (iperf3 -s ~5 %), and throughput went from 0.8-1.5 to 1.3-2.8 Gbit/s (bench --quick, six
// alternations: medians 1.08 → 2.24). The rest is per segment and inherent without ipip: the
// director sends MTU-sized frames (a virtio_net_hdr cannot say IPIP GSO), each a veth transmit
// plus the real server's IP receive and raw-socket delivery, and the agent reads each one.
//
// The rules are the kernel's tcp_gro_receive(), made stricter where that is cheaper than exact:
//   - IPv4 without options, not a fragment (DF alone allowed), TCP with payload, ACK set and none
//     of SYN, FIN, RST, URG, CWR (PSH joins as the last segment; ECE must simply match);
//   - same addresses, ports, TOS, TTL, DF, ack number, flags + window word, TCP options (bytes
//     equal, timestamps included), and seq = the previous segment's end;
//   - every segment carries gso_size bytes (the first's payload) but the last, which may be
//     shorter and closes the frame, as PSH does; at most MAX_SEGMENTS segments and 65,535 bytes;
//   - a segment joins only when its IP header and TCP checksums verify: the super-frame is marked
//     CHECKSUM_PARTIAL, which the receiving stack does not verify again, so a corrupted segment
//     must never enter one. Anything that fails a rule is written alone, unchanged, and the
//     kernel judges it as before (a bad checksum is dropped and counted there, TcpInCsumErrors).
// A frame is written when the next datagram cannot join it and at the end of each batch of reads
// (drain()), so it adds no latency beyond the batch the agent read anyway.

import { foldSum, foldedSum, onesComplementSum, pseudoHeaderSum } from '../packet/checksum';
import { IPPROTO_TCP } from '../packet/ipv4';
import { copyBytes } from '../packet/bytes';

/** struct virtio_net_hdr (no num_buffers): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset. */
export const VNET_HDR_BYTES = 10;
/** Segments per super-frame at most (the kernel's GRO stops at 64 as well: MAX_GSO_SEGS for GRO is gro_max_size). */
export const MAX_SEGMENTS = 64;
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
const IP_HEADER = 20;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;
const TCP_URG = 0x20;
const TCP_CWR = 0x80;
const NEVER = TCP_FIN | TCP_SYN | TCP_RST | TCP_URG | TCP_CWR;
const MAX_IP_TOTAL = 0xffff;

export class TcpCoalescer {
  /** The frame being built: [virtio_net_hdr][IPv4][TCP][payload of every segment]. */
  readonly out = new Uint8Array(VNET_HDR_BYTES + MAX_IP_TOTAL);
  private readonly ov = new DataView(this.out.buffer);
  /** IP bytes in out (from VNET_HDR_BYTES); 0 when no frame is pending. */
  length = 0;
  /** Segments in the pending frame. */
  segments = 0;
  /** The pending frame takes no more segments (a short or PSH segment ended it). */
  closed = false;
  private mss = 0;
  private nextSeq = 0;
  private tcpHl = 0;
  /** A 32-bit view of the ArrayBuffer eligible() last read, for foldedSum(). */
  private u32: Uint32Array | null = null;
  private u32Of: ArrayBufferLike | null = null;
  // The candidate examined by the last eligible() call.
  private cTcpHl = 0;
  private cPayload = 0;
  /** Frames of 2+ segments written, and the segments in them (the rest went alone). */
  superFrames = 0;
  superSegments = 0;

  /**
   * True when the IPv4 packet at buf[at .. at + len) may be part of a super-frame (see the header):
   * a TCP data segment with no options in its IP header whose checksums verify. Remembers its
   * header size for append()/begin().
   */
  eligible(buf: Uint8Array, view: DataView, at: number, len: number): boolean {
    if (len < IP_HEADER + 20 || buf[at] !== 0x45 || buf[at + 9] !== IPPROTO_TCP) return false;
    if ((view.getUint16(at + 6) & 0xbfff) !== 0 || view.getUint16(at + 2) !== len) return false;
    const t = at + IP_HEADER;
    const thl = (buf[t + 12]! >>> 4) * 4;
    if (thl < 20 || IP_HEADER + thl >= len) return false; // no payload: an ACK, nothing to join
    const flags = buf[t + 13]!;
    if ((flags & TCP_ACK) === 0 || (flags & NEVER) !== 0) return false;
    if (this.u32Of !== buf.buffer) {
      this.u32Of = buf.buffer;
      this.u32 = new Uint32Array(buf.buffer, 0, buf.buffer.byteLength >>> 2);
    }
    if (foldedSum(buf, this.u32, at, IP_HEADER, 0) !== 0xffff) return false;
    const tcpLen = len - IP_HEADER;
    const pseudo = pseudoHeaderSum(view.getUint32(at + 12), view.getUint32(at + 16), IPPROTO_TCP, tcpLen);
    if (foldedSum(buf, this.u32, t, tcpLen, pseudo) !== 0xffff) return false;
    this.cTcpHl = thl;
    this.cPayload = tcpLen - thl;
    return true;
  }

  /** Starts a frame with the eligible() packet (none may be pending). */
  begin(buf: Uint8Array, view: DataView, at: number, len: number): void {
    copyBytes(buf, view, at, this.out, this.ov, VNET_HDR_BYTES, len);
    this.length = len;
    this.segments = 1;
    this.tcpHl = this.cTcpHl;
    this.mss = this.cPayload;
    this.nextSeq = (this.ov.getUint32(VNET_HDR_BYTES + IP_HEADER + 4) + this.cPayload) >>> 0;
    this.closed = (buf[at + IP_HEADER + 13]! & TCP_PSH) !== 0;
  }

  /** Appends the eligible() packet to the pending frame when it continues it; false (nothing changed) when not. */
  append(buf: Uint8Array, view: DataView, at: number): boolean {
    if (this.segments === 0 || this.closed || this.segments >= MAX_SEGMENTS) return false;
    const payload = this.cPayload;
    const thl = this.cTcpHl;
    if (thl !== this.tcpHl || payload > this.mss || this.length + payload > MAX_IP_TOTAL) return false;
    const o = this.out;
    const ov = this.ov;
    const p = VNET_HDR_BYTES;
    const t = at + IP_HEADER;
    const pt = p + IP_HEADER;
    if (buf[at + 1] !== o[p + 1] || buf[at + 8] !== o[p + 8] || (buf[at + 6]! & 0x40) !== (o[p + 6]! & 0x40)) return false;
    if (view.getUint32(at + 12) !== ov.getUint32(p + 12) || view.getUint32(at + 16) !== ov.getUint32(p + 16)) return false;
    if (view.getUint32(t) !== ov.getUint32(pt)) return false; // ports
    if (view.getUint32(t + 4) !== this.nextSeq || view.getUint32(t + 8) !== ov.getUint32(pt + 8)) return false;
    // doff, flags and window (tcp_flag_word), PSH aside: PSH may come on the last segment.
    if (((view.getUint32(t + 12) ^ ov.getUint32(pt + 12)) & ~(TCP_PSH << 16)) !== 0) return false;
    for (let i = 20; i < thl; i += 4) if (view.getUint32(t + i) !== ov.getUint32(pt + i)) return false;
    copyBytes(buf, view, t + thl, o, ov, p + this.length, payload);
    this.length += payload;
    this.segments++;
    this.nextSeq = (this.nextSeq + payload) >>> 0;
    const psh = (buf[t + 13]! & TCP_PSH) !== 0;
    if (psh) o[pt + 13] = o[pt + 13]! | TCP_PSH;
    if (psh || payload < this.mss) this.closed = true;
    return true;
  }

  /**
   * Finishes the pending frame in out and returns its length with the virtio_net_hdr (0: none
   * pending); the caller writes out[0 .. n). A single segment goes unchanged with a zero header
   * (its checksums are complete); two or more become one GSO TCPV4 packet, CHECKSUM_PARTIAL.
   */
  finish(): number {
    if (this.segments === 0) return 0;
    const o = this.out;
    const ov = this.ov;
    o.fill(0, 0, VNET_HDR_BYTES);
    const len = this.length;
    if (this.segments > 1) {
      const p = VNET_HDR_BYTES;
      ov.setUint16(p + 2, len);
      ov.setUint16(p + 10, 0);
      ov.setUint16(p + 10, ~foldSum(onesComplementSum(o, p, IP_HEADER)) & 0xffff);
      // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum (tcp_v4_send_check).
      ov.setUint16(p + IP_HEADER + 16, foldSum(pseudoHeaderSum(ov.getUint32(p + 12), ov.getUint32(p + 16), IPPROTO_TCP, len - IP_HEADER)));
      o[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
      o[1] = VIRTIO_NET_HDR_GSO_TCPV4;
      ov.setUint16(2, IP_HEADER + this.tcpHl, true); // hdr_len
      ov.setUint16(4, this.mss, true); // gso_size
      ov.setUint16(6, IP_HEADER, true); // csum_start
      ov.setUint16(8, 16, true); // csum_offset: tcphdr.check
      this.superFrames++;
      this.superSegments += this.segments;
    }
    this.length = 0;
    this.segments = 0;
    this.closed = false;
    return VNET_HDR_BYTES + len;
  }
}
