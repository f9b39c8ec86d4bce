// IPv4 fragmentation (RFC 791 3.2, "fragmentation procedure") into the worker's TX buffer.
//
// Why uvs needs it: the rings use PACKET_FANOUT_FLAG_DEFRAG, so a datagram that arrived in
// fragments reaches the pipeline reassembled (as IPVS, which runs after ip_defrag, sees it) and
// may be larger than the egress MTU. The kernel would fragment it again on output
// (ip_fragment / ip_do_fragment); uvs does the same here after the DR or NAT rewrite.
//
// Each fragment gets the (already rewritten) Ethernet header, the IP header with total length,
// MF and offset set and its checksum recomputed, and 8-byte multiples of the payload. The first
// fragment carries every option; the later ones only the options whose copied flag (bit 7 of the
// type) is set, padded with End of Option List to a 4-byte multiple (ip_options_fragment).

import { DropReason } from '../packet/drop';
import { internetChecksum } from '../packet/checksum';
import type { TxQueue } from '../tables/tx-queue';
import { copyBytes } from '../packet/bytes';

const IPOPT_END = 0;
const IPOPT_NOOP = 1;
const IPOPT_COPY = 0x80;

/** Options that later fragments repeat (room for the largest header). */
export class Fragmenter {
  private readonly tx: TxQueue;
  private readonly vnetLen: number;
  private readonly laterHeader = new Uint8Array(60);
  private readonly laterView = new DataView(this.laterHeader.buffer);
  /** Frames queued by the last call. */
  frames = 0;

  constructor(tx: TxQueue, vnetHdr: boolean) {
    this.tx = tx;
    this.vnetLen = vnetHdr ? 10 : 0;
  }

  /**
   * Queues the IPv4 packet src[l3 .. l3 + totalLength) (Ethernet header at l2, ready for the
   * wire) as fragments of at most `mtu` bytes on `egress`. The caller checked DF is clear.
   * Each fragment gets the whole link-layer header src[l2 .. l3), an 802.1Q tag included, as
   * the in-place rewrite keeps it.
   */
  fragment(src: Uint8Array, srcView: DataView, l2: number, l3: number, mtu: number, egress: number): DropReason | 0 {
    this.frames = 0;
    const tx = this.tx;
    const out = tx.buffer;
    const ov = tx.view;
    const hl = (src[l3]! & 0x0f) * 4;
    const total = srcView.getUint16(l3 + 2);
    const fragField = srcView.getUint16(l3 + 6);
    const baseOffset = (fragField & 0x1fff) * 8; // a fragment being fragmented again keeps its place
    const lastMf = fragField & 0x2000;
    const laterHl = this.laterOptions(src, l3, hl);
    const data = total - hl;
    const l2Len = l3 - l2;
    let offset = 0;
    while (offset < data) {
      const headerLen = offset === 0 ? hl : laterHl;
      const room = (mtu - headerLen) & ~7;
      if (room <= 0) return DropReason.TOO_BIG;
      const len = data - offset <= mtu - headerLen ? data - offset : room;
      const frameLen = this.vnetLen + l2Len + headerLen + len;
      const at = tx.reserve(frameLen);
      if (at < 0) return DropReason.TX_BUFFER_FULL;
      for (let i = at; i < at + this.vnetLen; i++) out[i] = 0;
      const eth = at + this.vnetLen;
      copyBytes(src, srcView, l2, out, ov, eth, l2Len);
      const ip = eth + l2Len;
      if (offset === 0) copyBytes(src, srcView, l3, out, ov, ip, hl);
      else {
        copyBytes(this.laterHeader, this.laterView, 0, out, ov, ip, laterHl);
        out[ip] = 0x40 | (laterHl >>> 2);
      }
      copyBytes(src, srcView, l3 + hl + offset, out, ov, ip + headerLen, len);
      const more = offset + len < data ? 0x2000 : lastMf;
      ov.setUint16(ip + 2, headerLen + len);
      ov.setUint16(ip + 6, (fragField & 0x4000) | more | ((baseOffset + offset) >>> 3));
      ov.setUint16(ip + 10, 0);
      ov.setUint16(ip + 10, internetChecksum(out, ip, headerLen));
      if (!tx.commit(at, frameLen, egress)) return DropReason.TX_BUFFER_FULL;
      this.frames++;
      offset += len;
    }
    return 0;
  }

  /** Builds the header of the later fragments in laterHeader; returns its length. */
  private laterOptions(src: Uint8Array, l3: number, hl: number): number {
    const h = this.laterHeader;
    for (let i = 0; i < 20; i++) h[i] = src[l3 + i]!;
    let w = 20;
    let i = 20;
    while (i < hl) {
      const type = src[l3 + i]!;
      if (type === IPOPT_END) break;
      if (type === IPOPT_NOOP) {
        i++;
        continue;
      }
      const len = i + 1 < hl ? src[l3 + i + 1]! : 0;
      if (len < 2 || i + len > hl) break; // malformed: the decoder refused it already
      if ((type & IPOPT_COPY) !== 0) {
        for (let k = 0; k < len; k++) h[w + k] = src[l3 + i + k]!;
        w += len;
      }
      i += len;
    }
    while ((w & 3) !== 0) h[w++] = IPOPT_END;
    return w;
  }
}
