// TCP segmentation of GSO super-frames in userspace (what the kernel's tcp_gso_segment does),
// for the paths that cannot hand a super-frame back to the kernel whole: TUN (the outer IPIP
// header must go on every segment) and the libpcap backend (pcap_inject has no virtio_net_hdr).

import { wholeIpv4Offset } from './ethernet';
import { IPPROTO_TCP } from './ipv4';
import { TCP_CWR, TCP_FIN, TCP_PSH } from './tcp';
import { internetChecksum, pseudoHeaderSum } from './checksum';
import { copyBytes } from './bytes';

/**
 * The IPv4 header offset when the frame is a TCP super-frame this backend can segment: IPv4
 * with a consistent header, not a fragment, a complete TCP header within the packet; else -1.
 */
export function tcpSuperFrameL3(frame: Uint8Array, view: DataView, length: number): number {
  const l3 = wholeIpv4Offset(frame, view, length);
  if (l3 < 0 || frame[l3 + 9] !== IPPROTO_TCP) return -1;
  const ihl = (frame[l3]! & 0x0f) * 4;
  const totalLength = view.getUint16(l3 + 2);
  if (totalLength < ihl + 20) return -1;
  const doff = (frame[l3 + ihl + 12]! >>> 4) * 4;
  if (doff < 20 || ihl + doff > totalLength) return -1;
  return l3;
}

/**
 * Writes segment `index` of the TCP super-frame whose IPv4 header is at src[l3] as an IPv4 packet
 * at out[outL3]: the IPv4 and TCP headers, then `payload` bytes from src[payloadAt], with the
 * changes tcp_gso_segment makes — IP total length and id + index, TCP sequence advanced by the
 * payload before this one, FIN/PSH kept only on the last segment, CWR only on the first — and
 * full IP and TCP checksums. Returns the segment's IPv4 length. No allocation.
 */
export function writeTcpSegment(src: Uint8Array, srcView: DataView, l3: number, payloadAt: number, payload: number,
  index: number, last: boolean, out: Uint8Array, outView: DataView, outL3: number): number {
  const ihl = (src[l3]! & 0x0f) * 4;
  const l4 = l3 + ihl;
  const hdrs = ihl + (src[l4 + 12]! >>> 4) * 4;
  const segLen = hdrs + payload;
  copyBytes(src, srcView, l3, out, outView, outL3, hdrs);
  copyBytes(src, srcView, payloadAt, out, outView, outL3 + hdrs, payload);
  const o4 = outL3 + ihl;
  outView.setUint16(outL3 + 2, segLen);
  outView.setUint16(outL3 + 4, (srcView.getUint16(l3 + 4) + index) & 0xffff);
  outView.setUint16(outL3 + 10, 0);
  outView.setUint16(outL3 + 10, internetChecksum(out, outL3, ihl));
  outView.setUint32(o4 + 4, (srcView.getUint32(l4 + 4) + (payloadAt - (l3 + hdrs))) >>> 0);
  let flags = src[l4 + 13]!;
  if (!last) flags &= ~(TCP_FIN | TCP_PSH);
  if (index > 0) flags &= ~TCP_CWR;
  out[o4 + 13] = flags;
  const l4Length = segLen - ihl;
  outView.setUint16(o4 + 16, 0);
  outView.setUint16(o4 + 16, internetChecksum(out, o4, l4Length, pseudoHeaderSum(outView.getUint32(outL3 + 12), outView.getUint32(outL3 + 16), IPPROTO_TCP, l4Length)));
  return segLen;
}
