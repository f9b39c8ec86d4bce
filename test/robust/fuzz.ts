// Fuzz target over the data-plane pipeline (src/dataplane/pipeline.ts and src/forward/), in every
// mode — DR, NAT (client → VIP and real server → client), TUN — with and without virtio-net
// headers.
//
// Input: frames built from the captured fixtures (test/fixtures/packets) and from the packet
// builder (TCP/UDP to the VIP, NAT replies, ICMP errors quoting tracked flows, random bytes),
// then mutated: bit flips, byte overwrites, truncation, trailing garbage, length fields that lie
// (IP total length, IHL, TCP data offset, UDP length), IP option garbage, fragment fields, TTL
// 0/1/2, and with a virtio_net_hdr when the lab has one (nothing offloaded, CHECKSUM_PARTIAL, or a
// TCPv4 GSO super-frame, always within the frame as the kernel guarantees).
//
// Oracle, per frame:
//   - process() never throws and writes nothing outside the frame (guard bytes around it);
//   - a frame it does not send (NO_TX, or QUEUED with nothing queued) is counted: a DropReason
//     or NOT_OURS;
//   - every frame it emits (rewritten in place, or built in its TX queue) is well-formed: IPv4
//     header checksum valid, total length equal to the bytes (Ethernet padding aside), options
//     well-formed; the TCP/UDP/ICMP checksum valid — or correctly marked partial in the
//     virtio_net_hdr — whenever the input's was (a director does not repair a sender's bad
//     checksum, IPVS does not either); TTL one less than the input's; for TUN the outer header is
//     DIP → RIP, protocol 4, and its length is that of the inner packet; fragments reassemble to a
//     packet that passes the same checks; ICMP errors uvs originates have TTL 64, a valid
//     checksum and quote the input's addresses.
//
// The PRNG is seeded: a failure prints the seed, the frame number, the lab and the frame in hex,
// enough to replay it (`npm run fuzz -- --seed S --frames N` replays the same sequence).
//
// `npm test` runs test/robust/pipeline-fuzz.test.ts (about 20,000 frames); `npm run fuzz` runs
// this file's main: 1,000,000 frames, `--frames N --seed S` to change.
import { PacketBuilder } from '../../src/packet/builder';
import { viewOf } from '../../src/packet/layer';
import { ipv4ToInt } from '../../src/packet/addr';
import { foldSum, onesComplementSum, pseudoHeaderSum, completePartialChecksum, internetChecksum } from '../../src/packet/checksum';
import { EthernetHeader, ETHERTYPE_IPV4 } from '../../src/packet/ethernet';
import { Ipv4Header } from '../../src/packet/ipv4';
import { DROP_REASON_COUNT, dropReasonName } from '../../src/packet/drop';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../../src/packet/tcp';
import { ForwardMethod } from '../../src/tables/dest-table';
import { NO_TX, QUEUED } from '../../src/dataplane/pipeline';
import { allFrames, prng } from '../packet/fixtures';
import {
  CLIENT, CLIENT_MAC, DIP, DIRECTOR_MAC, DIRECTOR_RS_MAC, RIPS, RS_MACS, TCP_PORT, UDP_PORT, UDP_RPORT, VIP,
  drainTx, makePipelineLab, notOurs, totalDrops, type PipelineLab,
} from './pipeline-lab';

const VNET = 10;
const GUARD = 32;
const IPPROTO_ICMP = 1;
const IPPROTO_IPIP = 4;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const VIP_INT = ipv4ToInt(VIP);
const DIP_INT = ipv4ToInt(DIP);
const RIP_INTS = RIPS.map(ipv4ToInt);

export interface FuzzResult {
  frames: number;
  /** Frames sent as they were rewritten (in place), and frames built in the TX queue. */
  forwarded: number;
  queued: number;
  notOurs: number;
  drops: Map<string, number>;
  ms: number;
}

export class FuzzFailure extends Error {}

type Rand = () => number;

interface Seed {
  bytes: Uint8Array;
  /** The frame is a GSO candidate (TCP with enough payload). */
  note: string;
}

const CLIENTS = [CLIENT, '10.201.0.7', '10.77.5.9', '192.0.2.33'];
/** Martian sources (DropReason.MARTIAN_SOURCE), mixed in now and then. */
const MARTIANS = ['127.0.0.1', '224.0.0.5', VIP, '0.0.0.0', '255.255.255.255'];

function client_(rand: Rand): string {
  return rand() < 0.1 ? pick(rand, MARTIANS) : pick(rand, CLIENTS);
}
const CLIENT_PORTS = Array.from({ length: 24 }, (_, i) => (i === 0 ? 39366 : 40000 + i));

function pick<T>(rand: Rand, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)]!;
}
function int(rand: Rand, n: number): number {
  return Math.floor(rand() * n);
}

/** Replaces every occurrence of address `from` (4 bytes, anywhere) with `to`: the fixtures hold
 *  their addresses in outer and quoted headers alike. */
function replaceAddr(b: Uint8Array, from: number, to: number): void {
  for (let i = 0; i + 4 <= b.length; i++) {
    if (b[i] === from >>> 24 && b[i + 1] === ((from >>> 16) & 0xff) && b[i + 2] === ((from >>> 8) & 0xff) && b[i + 3] === (from & 0xff)) {
      b[i] = to >>> 24;
      b[i + 1] = (to >>> 16) & 0xff;
      b[i + 2] = (to >>> 8) & 0xff;
      b[i + 3] = to & 0xff;
      i += 3;
    }
  }
}

/** Recomputes the IPv4 header checksum(s) and the L4 checksum of an Ethernet/IPv4 frame, also
 *  in an ICMP error's quoted header, as far as the bytes go. */
export function fixChecksums(b: Uint8Array): void {
  const v = viewOf(b);
  let l3 = 14;
  if (b.length < 14) return;
  let et = v.getUint16(12);
  if (et === 0x8100 && b.length >= 18) {
    et = v.getUint16(16);
    l3 = 18;
  }
  if (et !== ETHERTYPE_IPV4) return;
  fixIp(b, v, l3, b.length - l3, false);
}

function fixIp(b: Uint8Array, v: DataView, l3: number, avail: number, quoted: boolean): void {
  if (avail < 20 || b[l3]! >> 4 !== 4) return;
  const ihl = (b[l3]! & 15) * 4;
  if (ihl < 20 || ihl > avail) return;
  v.setUint16(l3 + 10, 0);
  v.setUint16(l3 + 10, internetChecksum(b, l3, ihl));
  const total = v.getUint16(l3 + 2);
  if (total < ihl) return;
  const fragment = (v.getUint16(l3 + 6) & 0x3fff) !== 0;
  if (fragment) return;
  const l4 = l3 + ihl;
  const len = Math.min(total, avail) - ihl;
  const proto = b[l3 + 9]!;
  if (quoted) return;
  if (total > avail) return;
  const src = v.getUint32(l3 + 12);
  const dst = v.getUint32(l3 + 16);
  if (proto === IPPROTO_TCP && len >= 20) {
    v.setUint16(l4 + 16, 0);
    v.setUint16(l4 + 16, internetChecksum(b, l4, len, pseudoHeaderSum(src, dst, IPPROTO_TCP, len)));
  } else if (proto === IPPROTO_UDP && len >= 8) {
    const ulen = v.getUint16(l4 + 4);
    if (ulen < 8 || ulen > len) return;
    v.setUint16(l4 + 6, 0);
    const c = internetChecksum(b, l4, ulen, pseudoHeaderSum(src, dst, IPPROTO_UDP, ulen));
    v.setUint16(l4 + 6, c === 0 ? 0xffff : c);
  } else if (proto === IPPROTO_ICMP && len >= 8) {
    const t = b[l4]!;
    if ((t === 3 || t === 11 || t === 4) && len >= 28) fixIp(b, v, l4 + 8, len - 8, true);
    v.setUint16(l4 + 2, 0);
    v.setUint16(l4 + 2, internetChecksum(b, l4, len));
  }
}

export class FrameSource {
  private readonly fixtures: Uint8Array[];
  constructor(private readonly rand: Rand) {
    this.fixtures = allFrames().map((f) => f.bytes);
  }

  /** A seed frame (no virtio_net_hdr), well-formed or nearly so. */
  seed(): Seed {
    const r = this.rand;
    const k = r();
    if (k < 0.25) return this.fromFixture();
    if (k < 0.5) return this.tcp(false);
    if (k < 0.6) return this.udp(false);
    if (k < 0.75) return r() < 0.5 ? this.tcp(true) : this.udp(true);
    if (k < 0.92) return this.icmpError();
    return this.random();
  }

  private fromFixture(): Seed {
    const r = this.rand;
    const b = pick(r, this.fixtures).slice();
    // Half of them come from the real server's side: the server address becomes a RIP (NAT replies).
    if (r() < 0.5) replaceAddr(b, VIP_INT, pick(r, RIP_INTS));
    if (r() < 0.3) replaceAddr(b, ipv4ToInt(CLIENT), ipv4ToInt(client_(r)));
    fixChecksums(b);
    return { bytes: b, note: 'fixture' };
  }

  private tcp(reply: boolean): Seed {
    const r = this.rand;
    const client = client_(r);
    const cport = pick(r, CLIENT_PORTS);
    const flags = pick(r, [TCP_SYN, TCP_SYN, TCP_ACK, TCP_ACK | TCP_PSH, TCP_FIN | TCP_ACK, TCP_RST, TCP_SYN | TCP_ACK, int(r, 256)]);
    const n = pick(r, [0, 0, 1, 10, 100, 536, 1400, 1460, 1480, 2000, 2960, 4000]);
    const payload = new Uint8Array(n);
    for (let i = 0; i < n; i += 7) payload[i] = int(r, 256);
    const options = r() < 0.1 ? randomIpOptions(r) : undefined;
    const rip = pick(r, RIPS);
    const b = new PacketBuilder()
      .eth(reply ? { src: pick(r, RS_MACS), dst: DIRECTOR_RS_MAC } : { src: CLIENT_MAC, dst: DIRECTOR_MAC })
      .ipv4({ src: reply ? rip : client, dst: reply ? client : VIP, ttl: pick(r, [64, 64, 64, 2, 1, 0, 255]), id: int(r, 65536), df: r() < 0.7, options, tos: r() < 0.2 ? int(r, 256) : 0 })
      .tcp({ srcPort: reply ? TCP_PORT : cport, dstPort: reply ? cport : TCP_PORT, flags, seq: int(r, 2 ** 32), ack: int(r, 2 ** 32), options: r() < 0.2 ? new Uint8Array([2, 4, 5, 0xb4]) : undefined })
      .payload(payload)
      .build();
    return { bytes: b, note: reply ? 'tcp-reply' : 'tcp' };
  }

  private udp(reply: boolean): Seed {
    const r = this.rand;
    const client = client_(r);
    const cport = pick(r, CLIENT_PORTS);
    const n = pick(r, [0, 1, 12, 512, 1472, 1473, 3000]);
    const payload = new Uint8Array(n).fill(int(r, 256));
    const b = new PacketBuilder()
      .eth(reply ? { src: pick(r, RS_MACS), dst: DIRECTOR_RS_MAC } : { src: CLIENT_MAC, dst: DIRECTOR_MAC })
      .ipv4({ src: reply ? pick(r, RIPS) : client, dst: reply ? client : VIP, ttl: pick(r, [64, 64, 1, 2]), id: int(r, 65536), df: r() < 0.3 })
      .udp({ srcPort: reply ? pick(r, [UDP_RPORT, UDP_PORT]) : cport, dstPort: reply ? cport : UDP_PORT, checksum: r() < 0.1 ? 0 : undefined })
      .payload(payload)
      .build();
    return { bytes: b, note: reply ? 'udp-reply' : 'udp' };
  }

  /** An ICMP error quoting a flow, from either side, quoting 28 bytes or more (or less). */
  private icmpError(): Seed {
    const r = this.rand;
    const proto = r() < 0.6 ? IPPROTO_TCP : IPPROTO_UDP;
    const client = pick(r, CLIENTS.slice(0, 3));
    const cport = pick(r, CLIENT_PORTS);
    const fromClientSide = r() < 0.5;
    // Client side: the quoted packet went VIP → client (a reply), reported by a router near the client.
    // Real server side: the quoted packet went client → RIP, reported by the real server.
    const rip = pick(r, RIPS);
    const qsrc = fromClientSide ? VIP : client;
    const qdst = fromClientSide ? client : rip;
    const vport = proto === IPPROTO_TCP ? TCP_PORT : UDP_PORT;
    const rport = proto === IPPROTO_TCP ? TCP_PORT : UDP_RPORT;
    const qsport = fromClientSide ? vport : cport;
    const qdport = fromClientSide ? cport : rport;
    const qb = new PacketBuilder().eth({}).ipv4({ src: qsrc, dst: qdst, ttl: 63, id: int(r, 65536), df: r() < 0.5 });
    if (proto === IPPROTO_TCP) qb.tcp({ srcPort: qsport, dstPort: qdport, flags: TCP_ACK, seq: int(r, 2 ** 32) });
    else qb.udp({ srcPort: qsport, dstPort: qdport });
    const quotedFrame = qb.payload(new Uint8Array(int(r, 64))).build();
    const quoteLen = pick(r, [28, 28, 48, 8, 20, 27, quotedFrame.length - 14]);
    const type = pick(r, [3, 3, 11, 4, 12, 5]);
    const b = new PacketBuilder()
      .eth(fromClientSide ? { src: CLIENT_MAC, dst: DIRECTOR_MAC } : { src: pick(r, RS_MACS), dst: DIRECTOR_RS_MAC })
      .ipv4({ src: fromClientSide ? '10.201.1.3' : rip, dst: fromClientSide ? VIP : client, ttl: pick(r, [64, 1, 2]), id: int(r, 65536) })
      .icmp({ type, code: int(r, 5), nextHopMtu: 1400 })
      .payload(quotedFrame.slice(14, 14 + Math.max(0, quoteLen)))
      .build();
    return { bytes: b, note: 'icmp-error' };
  }

  private random(): Seed {
    const r = this.rand;
    const n = int(r, 200);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = int(r, 256);
    // Mostly an Ethernet/IPv4 prefix to the VIP so the bytes get past the first check.
    if (n >= 34 && r() < 0.8) {
      b.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x00], 0);
      b[14] = 0x45;
      const v = viewOf(b);
      v.setUint16(16, n - 14);
      v.setUint16(20, 0);
      b[23] = pick(r, [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_IPIP, int(r, 256)]);
      v.setUint32(30, VIP_INT);
      fixChecksums(b);
    }
    return { bytes: b, note: 'random' };
  }
}

function randomIpOptions(r: Rand): Uint8Array {
  const n = 4 * (1 + int(r, 10));
  const o = new Uint8Array(n);
  const k = r();
  if (k < 0.3) o.fill(1); // NOPs
  else if (k < 0.5) {
    o[0] = 7; // record route, well-formed
    o[1] = Math.min(n, 39);
    o[2] = 4;
  } else for (let i = 0; i < n; i++) o[i] = int(r, 256);
  return o;
}

/** Applies 0..4 mutations; the IP checksum is fixed afterwards most of the time so the mutated
 *  fields reach the code behind the header check. */
export function mutate(r: Rand, input: Uint8Array): Uint8Array {
  let b = input;
  const count = r() < 0.35 ? 0 : 1 + int(r, 3);
  const l3 = b.length >= 18 && b[12] === 0x81 && b[13] === 0 ? 18 : 14;
  const ihl = b.length > l3 ? (b[l3]! & 15) * 4 : 20;
  const l4 = l3 + ihl;
  for (let m = 0; m < count; m++) {
    const v = viewOf(b);
    const k = int(r, 14);
    switch (k) {
      case 0: // bit flip anywhere in the headers
        if (b.length) b[int(r, Math.min(b.length, 100))]! ^= 1 << int(r, 8);
        break;
      case 1: // byte overwrite
        if (b.length) b[int(r, Math.min(b.length, 100))] = int(r, 256);
        break;
      case 2: // truncation
        b = b.slice(0, int(r, b.length + 1));
        break;
      case 3: { // trailing garbage
        const t = new Uint8Array(b.length + 1 + int(r, 40));
        t.set(b);
        for (let i = b.length; i < t.length; i++) t[i] = int(r, 256);
        b = t;
        break;
      }
      case 4: // IP total length lies
        if (b.length >= l3 + 4) v.setUint16(l3 + 2, pick(r, [0, 19, 20, ihl, b.length - l3 - 1, b.length - l3 + 1, 0xffff, int(r, 65536)]) & 0xffff);
        break;
      case 5: // IHL lies
        if (b.length > l3) b[l3] = (b[l3]! & 0xf0) | pick(r, [0, 4, 5, 6, 15, int(r, 16)]);
        break;
      case 6: // TCP data offset lies
        if (b.length > l4 + 12) b[l4 + 12] = (pick(r, [0, 4, 5, 15, int(r, 16)]) << 4) | (b[l4 + 12]! & 15);
        break;
      case 7: // UDP length lies
        if (b.length >= l4 + 6) v.setUint16(l4 + 4, pick(r, [0, 7, 8, 9, b.length - l4 + 1, 0xffff, int(r, 65536)]));
        break;
      case 8: // fragment fields
        if (b.length >= l3 + 8) v.setUint16(l3 + 6, pick(r, [0x2000, 0x2000 | int(r, 8192), int(r, 8192), 0x4000 | 1, 0x8000, int(r, 65536)]));
        break;
      case 9: // TTL at the edge
        if (b.length > l3 + 8) b[l3 + 8] = pick(r, [0, 1, 2, 255]);
        break;
      case 10: { // IP options garbage: the header grows, behind it the rest as it was
        if (b.length < l4) break;
        const opts = randomIpOptions(r);
        const t = new Uint8Array(b.length + opts.length);
        t.set(b.subarray(0, l4));
        t.set(opts, l4);
        t.set(b.subarray(l4), l4 + opts.length);
        const nihl = Math.min(15, ihl / 4 + opts.length / 4);
        t[l3] = 0x40 | nihl;
        const tv = viewOf(t);
        tv.setUint16(l3 + 2, (tv.getUint16(l3 + 2) + opts.length) & 0xffff);
        b = t;
        break;
      }
      case 11: // protocol byte
        if (b.length > l3 + 9) b[l3 + 9] = pick(r, [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_IPIP, 0, 255]);
        break;
      case 12: // transport header bytes (ports, flags, quoted header of an ICMP error)
        if (b.length > l4) b[l4 + int(r, Math.min(48, b.length - l4))] = int(r, 256);
        break;
      case 13: // EtherType: VLAN tag in front, or another type
        if (b.length >= 14) {
          if (r() < 0.5) {
            const t = new Uint8Array(b.length + 4);
            t.set(b.subarray(0, 12));
            t.set([0x81, 0, 0, int(r, 256)], 12);
            t.set(b.subarray(12), 16);
            b = t;
          } else v.setUint16(12, pick(r, [0x86dd, 0x0806, 0x88a8, int(r, 65536)]));
        }
        break;
    }
  }
  if (r() < 0.7) {
    // Fix the IP header checksum (only that: L4 lies stay).
    const v = viewOf(b);
    const at = b.length >= 18 && b[12] === 0x81 && b[13] === 0 ? 18 : 14;
    if (b.length >= at + 20) {
      const h = (b[at]! & 15) * 4;
      if (h >= 20 && at + h <= b.length) {
        v.setUint16(at + 10, 0);
        v.setUint16(at + 10, internetChecksum(b, at, h));
      }
    }
  }
  return b;
}

/** Where an Ethernet/IPv4 frame's IPv4 header starts, or -1. */
function ipAt(b: Uint8Array, v: DataView, l2: number, len: number): number {
  const eth = new EthernetHeader();
  if (eth.decode(b, v, l2, len) !== 0 || eth.etherType !== ETHERTYPE_IPV4) return -1;
  return eth.payloadOffset;
}

/** virtio_net_hdr: nothing (70 %), CHECKSUM_PARTIAL (20 %), or TCPv4 GSO (10 %) when the frame
 *  allows it; the L4 checksum field then holds the pseudo-header sum, as the kernel leaves it. */
function withVnet(r: Rand, frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(VNET + frame.length);
  out.set(frame, VNET);
  const v = viewOf(out);
  const k = r();
  if (k < 0.7) return out;
  const l3 = ipAt(out, v, VNET, frame.length);
  if (l3 < 0 || out.length < l3 + 20) return out;
  const ihl = (out[l3]! & 15) * 4;
  const total = v.getUint16(l3 + 2);
  const proto = out[l3 + 9]!;
  if (ihl < 20 || total < ihl || l3 + total > out.length || (v.getUint16(l3 + 6) & 0x3fff) !== 0) return out;
  const l4len = total - ihl;
  const field = proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : -1;
  if (field < 0 || l4len < field + 2) return out;
  const csumStart = l3 + ihl - VNET;
  out[0] = 1; // NEEDS_CSUM
  v.setUint16(6, csumStart, true);
  v.setUint16(8, field, true);
  v.setUint16(l3 + ihl + field, foldSum(pseudoHeaderSum(v.getUint32(l3 + 12), v.getUint32(l3 + 16), proto, l4len)));
  const tcpHdr = proto === IPPROTO_TCP && l4len >= 20 ? (out[l3 + ihl + 12]! >> 4) * 4 : 0;
  if (k >= 0.9 && tcpHdr >= 20 && l4len - tcpHdr > 536) {
    out[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
    v.setUint16(2, csumStart + tcpHdr, true); // hdr_len
    v.setUint16(4, pick(r, [536, 1000, 1448]), true); // gso_size
  }
  return out;
}

/** 'ok', 'bad' or null (nothing to check: not TCP/UDP/ICMP, a fragment, lengths out of range) for
 *  the L4 checksum of the IPv4 packet at l3 (within `end`); a partial checksum (virtio_net_hdr
 *  NEEDS_CSUM at csumStart/csumOffset, relative to `base`) is completed on a copy first. */
function l4Checksum(b: Uint8Array, l3: number, end: number, partial: { base: number; start: number; offset: number } | null): 'ok' | 'bad' | null {
  const v = viewOf(b);
  if (end - l3 < 20) return null;
  const ihl = (b[l3]! & 15) * 4;
  const total = v.getUint16(l3 + 2);
  if (ihl < 20 || total < ihl || l3 + total > end) return null;
  if ((v.getUint16(l3 + 6) & 0x3fff) !== 0) return null;
  const l4 = l3 + ihl;
  const len = total - ihl;
  const proto = b[l3 + 9]!;
  let c = b;
  let cv = v;
  if (partial !== null) {
    c = b.slice();
    cv = viewOf(c);
    const from = partial.base + partial.start;
    completePartialChecksum(c, cv, from, l3 + total, partial.offset, proto === IPPROTO_UDP);
  }
  const src = cv.getUint32(l3 + 12);
  const dst = cv.getUint32(l3 + 16);
  if (proto === IPPROTO_TCP) {
    if (len < 20) return null;
    return foldSum(onesComplementSum(c, l4, len, pseudoHeaderSum(src, dst, IPPROTO_TCP, len))) === 0xffff ? 'ok' : 'bad';
  }
  if (proto === IPPROTO_UDP) {
    if (len < 8) return null;
    const ulen = cv.getUint16(l4 + 4);
    if (ulen < 8 || ulen > len) return null;
    if (cv.getUint16(l4 + 6) === 0) return 'ok';
    return foldSum(onesComplementSum(c, l4, ulen, pseudoHeaderSum(src, dst, IPPROTO_UDP, ulen))) === 0xffff ? 'ok' : 'bad';
  }
  if (proto === IPPROTO_ICMP) {
    if (len < 8) return null;
    return foldSum(onesComplementSum(c, l4, len)) === 0xffff ? 'ok' : 'bad';
  }
  return null;
}

interface InputFacts {
  ttl: number;
  src: number;
  dst: number;
  proto: number;
  l4: 'ok' | 'bad' | null;
  /** The inner checksum state of an IPIP input is not followed. */
}

function factsOf(frame: Uint8Array, l2: number, vnet: boolean): InputFacts | null {
  const v = viewOf(frame);
  const l3 = ipAt(frame, v, l2, frame.length - l2);
  if (l3 < 0 || frame.length - l3 < 20) return null;
  let partial = null;
  if (vnet && (frame[0]! & 1) !== 0) partial = { base: l2, start: v.getUint16(6, true), offset: v.getUint16(8, true) };
  return { ttl: frame[l3 + 8]!, src: v.getUint32(l3 + 12), dst: v.getUint32(l3 + 16), proto: frame[l3 + 9]!, l4: l4Checksum(frame, l3, frame.length, partial) };
}

/** Checks one emitted Ethernet frame (starting at l2 of b, ending at b.length). Returns problems. */
function checkFrame(b: Uint8Array, l2: number, vnet: boolean, what: string, problems: string[]): { l3: number; ip: Ipv4Header } | null {
  const v = viewOf(b);
  const len = b.length - l2;
  const l3 = ipAt(b, v, l2, len);
  if (l3 < 0) {
    problems.push(`${what}: not Ethernet/IPv4`);
    return null;
  }
  const ip = new Ipv4Header();
  const r = ip.decode(b, v, l3, b.length - l3);
  if (r !== 0) {
    problems.push(`${what}: IPv4 header refused (${dropReasonName(r)})`);
    return null;
  }
  // Ethernet pads frames to 60 bytes; anything longer must be exactly the IP packet.
  if (ip.totalLength !== b.length - l3 && len > 60) problems.push(`${what}: IP total length ${ip.totalLength} but ${b.length - l3} bytes after the Ethernet header`);
  if (vnet && l2 >= VNET && (b[l2 - VNET]! & 1) !== 0) {
    const start = v.getUint16(l2 - VNET + 6, true);
    const off = v.getUint16(l2 - VNET + 8, true);
    if (l2 + start + off + 2 > b.length) problems.push(`${what}: virtio_net_hdr csum_start ${start} + csum_offset ${off} past the frame`);
  }
  return { l3, ip };
}

function partialOf(b: Uint8Array, l2: number, vnet: boolean): { base: number; start: number; offset: number } | null {
  if (!vnet || l2 < VNET || (b[l2 - VNET]! & 1) === 0) return null;
  const v = viewOf(b);
  return { base: l2, start: v.getUint16(l2 - VNET + 6, true), offset: v.getUint16(l2 - VNET + 8, true) };
}

/** Reassembles the IPv4 fragments (same id) among `frames` into one Ethernet frame (no vnet). */
function reassemble(frags: { b: Uint8Array; l3: number; ip: Ipv4Header }[], problems: string[]): Uint8Array | null {
  frags.sort((a, c) => a.ip.fragmentOffset - c.ip.fragmentOffset);
  let expect = 0;
  const parts: Uint8Array[] = [];
  for (let i = 0; i < frags.length; i++) {
    const f = frags[i]!;
    const off = f.ip.fragmentOffset * 8;
    if (off !== expect) {
      problems.push(`fragments: offset ${off}, expected ${expect}`);
      return null;
    }
    const data = f.b.subarray(f.ip.payloadOffset, f.l3 + f.ip.totalLength);
    if (f.ip.moreFragments && data.length % 8 !== 0) problems.push(`fragment at ${off}: ${data.length} bytes, not a multiple of 8`);
    if (f.ip.moreFragments !== (i < frags.length - 1)) problems.push(`fragment at ${off}: MF ${f.ip.moreFragments}`);
    parts.push(data);
    expect += data.length;
  }
  const first = frags[0]!;
  const hdr = first.b.subarray(0, first.ip.payloadOffset);
  const out = new Uint8Array(hdr.length + expect);
  out.set(hdr);
  let at = hdr.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  const v = viewOf(out);
  v.setUint16(first.l3 + 2, out.length - first.l3);
  v.setUint16(first.l3 + 6, v.getUint16(first.l3 + 6) & 0x4000);
  v.setUint16(first.l3 + 10, 0);
  v.setUint16(first.l3 + 10, internetChecksum(out, first.l3, first.ip.payloadOffset - first.l3));
  return out;
}

export interface FuzzOptions {
  frames: number;
  seed: number;
  /** Called every `progressEvery` frames. */
  progress?: (done: number) => void;
  progressEvery?: number;
}

const MODES: [ForwardMethod, boolean, string][] = [
  [ForwardMethod.DROUTE, false, 'DR'],
  [ForwardMethod.DROUTE, true, 'DR+vnet'],
  [ForwardMethod.MASQ, false, 'NAT'],
  [ForwardMethod.MASQ, true, 'NAT+vnet'],
  [ForwardMethod.TUNNEL, false, 'TUN'],
  [ForwardMethod.TUNNEL, true, 'TUN+vnet'],
];

/** Runs the fuzz loop; throws FuzzFailure (seed, frame, lab, hex) on the first oracle violation. */
export function fuzzPipeline(opts: FuzzOptions): FuzzResult & { perMode: Map<string, number> } {
  const rand = prng(opts.seed);
  const source = new FrameSource(rand);
  const labs: [PipelineLab, string][] = MODES.map(([fwd, vnet, name]) => [makePipelineLab(fwd, vnet), name]);
  const result = { frames: 0, forwarded: 0, queued: 0, notOurs: 0, drops: new Map<string, number>(), ms: 0, perMode: new Map<string, number>() };
  const t0 = performance.now();
  let nowMs = 1_000_000;
  for (let n = 0; n < opts.frames; n++) {
    const [lab, name] = labs[n % labs.length]!;
    const seed = source.seed();
    const mutated = mutate(rand, seed.bytes);
    const frame = lab.vnet ? withVnet(rand, mutated) : mutated;
    const l2 = lab.vnet ? VNET : 0;
    // The frame sits in a larger buffer between guard bytes, as in a ring block.
    const buf = new Uint8Array(GUARD + frame.length + GUARD);
    for (let i = 0; i < GUARD; i++) {
      buf[i] = 0xa5;
      buf[GUARD + frame.length + i] = 0x5a;
    }
    buf.set(frame, GUARD);
    const view = viewOf(buf);
    const input = factsOf(frame, l2, lab.vnet);
    const drops0 = totalDrops(lab.counters);
    const notOurs0 = notOurs(lab.counters);
    nowMs += 1;
    const fail = (why: string): never => {
      throw new FuzzFailure(
        `pipeline fuzz: ${why}\n  seed ${opts.seed}, frame #${n} (${seed.note}), lab ${name}\n  input (${frame.length} bytes${lab.vnet ? ', virtio_net_hdr first' : ''}): ${Buffer.from(frame).toString('hex')}`,
      );
    };
    let egress: number;
    try {
      egress = lab.pipeline.process(buf, view, GUARD + l2, frame.length - l2, nowMs, n % 2 === 0 ? 0 : 1);
    } catch (err) {
      return fail(`process() threw: ${(err as Error).stack ?? String(err)}`);
    }
    for (let i = 0; i < GUARD; i++) {
      if (buf[i] !== 0xa5 || buf[GUARD + frame.length + i] !== 0x5a) fail('process() wrote outside the frame');
    }
    const dDrops = totalDrops(lab.counters) - drops0;
    const dNotOurs = notOurs(lab.counters) - notOurs0;
    const problems: string[] = [];
    const queued = drainTx(lab);
    if (egress === NO_TX) {
      if (dDrops + dNotOurs < 1) fail('not sent, and counted neither as a drop nor as not ours');
      if (queued.length > 0) fail(`NO_TX but ${queued.length} frames queued`);
    } else if (egress === QUEUED) {
      if (queued.length === 0 && dDrops < 1) fail('QUEUED with nothing queued and no drop counted');
    } else {
      if (egress < 0 || egress >= lab.egressCount) fail(`egress ${egress} out of range`);
      if (dDrops !== 0) fail(`forwarded, yet ${dDrops} drops counted`);
      if (queued.length > 0) fail('forwarded in place and queued frames as well');
      // The frame as the worker sends it: the ring frame from l2 (its virtio_net_hdr before it).
      // pipeline.txLength: what the worker sends (the IP packet, Ethernet padding kept).
      const sendLength = lab.pipeline.txLength;
      if (sendLength <= 0 || sendLength > frame.length - l2) fail(`txLength ${sendLength} for a ${frame.length - l2}-byte frame`);
      const out = buf.slice(GUARD, GUARD + l2 + sendLength);
      const c = checkFrame(out, l2, lab.vnet, 'forwarded frame', problems);
      if (c !== null && input !== null) {
        if (c.ip.ttl !== input.ttl - 1) problems.push(`TTL ${c.ip.ttl}, input had ${input.ttl}`);
        if (input.l4 === 'ok' && !c.ip.isFragment && l4Checksum(out, c.l3, out.length, partialOf(out, l2, lab.vnet)) === 'bad') problems.push('L4 checksum broken by the rewrite');
        if (lab.fwd === ForwardMethod.DROUTE && c.ip.dst !== input.dst) problems.push('DR changed the destination address');
        if (lab.fwd === ForwardMethod.MASQ && c.ip.dst !== input.dst && !RIP_INTS.includes(c.ip.dst)) problems.push('NAT: destination is neither kept nor a RIP');
      }
      result.forwarded++;
    }
    if (queued.length > 0) {
      const frags = new Map<string, { b: Uint8Array; l3: number; ip: Ipv4Header }[]>();
      for (const q of queued) {
        const qb = q.bytes;
        const ql2 = lab.vnet ? VNET : 0;
        const c = checkFrame(qb, ql2, lab.vnet, `queued frame to ${q.egress}`, problems);
        if (c === null) continue;
        if (c.ip.isFragment) {
          const key = `${c.ip.src}/${c.ip.dst}/${c.ip.id}/${c.ip.protocol}`;
          const list = frags.get(key) ?? [];
          c.ip.payloadOffset -= ql2;
          c.ip.headerOffset -= ql2;
          list.push({ b: qb.slice(ql2), l3: c.l3 - ql2, ip: c.ip });
          frags.set(key, list);
          continue;
        }
        checkQueued(qb.slice(ql2), c.l3 - ql2, input, lab, partialOf(qb, ql2, lab.vnet) !== null ? partialOf(qb, ql2, lab.vnet) : null, problems);
      }
      for (const list of frags.values()) {
        const whole = reassemble(list, problems);
        if (whole !== null) {
          const l3 = list[0]!.l3;
          checkQueued(whole, l3, input, lab, null, problems);
        }
      }
      result.queued += queued.length;
    }
    if (problems.length > 0) fail(problems.join('; '));
    result.frames++;
    result.perMode.set(name, (result.perMode.get(name) ?? 0) + 1);
    // The worker loop's expiry sweep, so the tables keep room for new flows.
    if (n % 512 === 0) for (const [l] of labs) l.conns.expire(nowMs + 600_000, 4096);
    if (opts.progress && opts.progressEvery && (n + 1) % opts.progressEvery === 0) opts.progress(n + 1);
  }
  result.ms = performance.now() - t0;
  for (const [lab] of labs) {
    result.notOurs += notOurs(lab.counters);
    for (let r = 1; r < DROP_REASON_COUNT; r++) {
      const d = lab.counters.drops(r);
      if (d > 0) result.drops.set(dropReasonName(r), (result.drops.get(dropReasonName(r)) ?? 0) + d);
    }
  }
  return result;
}

/** A whole (unfragmented or reassembled) frame the pipeline built: IPIP, a re-fragmented packet,
 *  or an ICMP error of its own. */
function checkQueued(b: Uint8Array, l3: number, input: InputFacts | null, lab: PipelineLab, partial: { base: number; start: number; offset: number } | null, problems: string[]): void {
  const v = viewOf(b);
  const proto = b[l3 + 9]!;
  const src = v.getUint32(l3 + 12);
  const dst = v.getUint32(l3 + 16);
  if (proto === IPPROTO_IPIP) {
    if (lab.fwd !== ForwardMethod.TUNNEL) problems.push('IPIP out of a non-TUN lab');
    if (src !== DIP_INT || !RIP_INTS.includes(dst)) problems.push('IPIP outer header is not DIP → RIP');
    const ihl = (b[l3]! & 15) * 4;
    const inner = l3 + ihl;
    const ip = new Ipv4Header();
    const r = ip.decode(b, v, inner, b.length - inner);
    if (r !== 0) {
      problems.push(`IPIP inner header refused (${dropReasonName(r)})`);
      return;
    }
    if (ip.totalLength !== v.getUint16(l3 + 2) - ihl) problems.push(`IPIP: inner length ${ip.totalLength}, outer payload ${v.getUint16(l3 + 2) - ihl}`);
    if (input !== null) {
      if (ip.ttl !== input.ttl - 1) problems.push(`TUN inner TTL ${ip.ttl}, input had ${input.ttl}`);
      if (ip.src !== input.src || ip.dst !== input.dst) problems.push('TUN changed the inner addresses');
      if (input.l4 === 'ok' && l4Checksum(b, inner, b.length, null) === 'bad') problems.push('TUN: inner L4 checksum not valid');
    }
    return;
  }
  if (proto === IPPROTO_ICMP && input !== null && (src === VIP_INT || src === DIP_INT) && b[l3 + 8] === 64 && !(input.proto === IPPROTO_ICMP && input.src === src)) {
    // An ICMP error of uvs's own: valid checksum, quoting the input's addresses.
    if (l4Checksum(b, l3, b.length, null) !== 'ok') problems.push('ICMP error built with a bad checksum');
    const t = b[l3 + 20 + ((b[l3]! & 15) * 4 - 20)]!;
    if (t !== 3 && t !== 11) problems.push(`ICMP type ${t} built`);
    const q = l3 + (b[l3]! & 15) * 4 + 8;
    if (b.length >= q + 20) {
      const qs = v.getUint32(q + 12);
      const qd = v.getUint32(q + 16);
      // The quote is the input's header (NAT replies: as the real server sent it).
      if (!(qs === input.src && qd === input.dst)) problems.push('ICMP error quotes other addresses than the input\'s');
    }
    return;
  }
  // A re-fragmented packet (DR/NAT larger than the MTU), reassembled: as a forwarded frame.
  if (input !== null) {
    if (b[l3 + 8] !== input.ttl - 1) problems.push(`re-fragmented packet: TTL ${b[l3 + 8]}, input had ${input.ttl}`);
    if (input.l4 === 'ok' && l4Checksum(b, l3, b.length, partial) === 'bad') problems.push('re-fragmented packet: L4 checksum not valid');
  }
}

function main(): void {
  const args = process.argv.slice(2);
  const get = (name: string, dflt: number): number => {
    const i = args.indexOf(name);
    if (i < 0) return dflt;
    const n = Number(args[i + 1]);
    if (!Number.isInteger(n) || n < 0) {
      console.error(`fuzz: ${name} needs a non-negative integer, got ${JSON.stringify(args[i + 1])}`);
      process.exit(2);
    }
    return n;
  };
  const frames = get('--frames', 1_000_000);
  const seed = get('--seed', 0x13f022);
  console.log(`pipeline fuzz: ${frames} frames, seed ${seed}, modes ${MODES.map((m) => m[2]).join(', ')}`);
  try {
    const r = fuzzPipeline({ frames, seed, progressEvery: 100_000, progress: (n) => console.log(`  ${n} frames`) });
    console.log(`ok: ${r.frames} frames in ${(r.ms / 1000).toFixed(1)} s (${Math.round(r.frames / (r.ms / 1000))} frames/s)`);
    console.log(`  forwarded in place ${r.forwarded}, frames queued (TUN, fragments, ICMP errors) ${r.queued}, not ours ${r.notOurs}`);
    console.log(`  per mode: ${[...r.perMode].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    console.log('  drops by reason:');
    for (const [k, v] of [...r.drops].sort((a, b) => b[1] - a[1])) console.log(`    ${k.padEnd(24)} ${v}`);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}

if (require.main === module) main();
