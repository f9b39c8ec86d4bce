// A packet builder for tests and forwarding fixtures (Katran's test style):
//
//   new PacketBuilder()
//     .eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' })
//     .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
//     .tcp({ srcPort: 40000, dstPort: 80, flags: TCP_SYN })
//     .payload(bytes)
//     .build();
//
// Lengths, the EtherType, the IP protocol and every checksum are right by default. Giving a field
// explicitly (totalLength, ihl, checksum, length, dataOffset, count, ...) writes that value instead,
// which is how tests build deliberately broken packets. It allocates freely: tests and fixtures
// only, never the packet path.

import { macToInt, ipv4ToInt } from './addr';
import { EncodeFlag, viewOf } from './layer';
import { internetChecksum, pseudoHeaderSum } from './checksum';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_VLAN, EthernetHeader } from './ethernet';
import { IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_VRRP, IPV4_FLAG_DF, IPV4_FLAG_MF, Ipv4Header } from './ipv4';
import { TcpHeader } from './tcp';
import { UdpHeader } from './udp';
import { IcmpHeader } from './icmp';
import { ARP_OP_REQUEST, ArpPacket } from './arp';
import { VRRP_TYPE_ADVERTISEMENT, VrrpPacket } from './vrrp';

type Mac = string | number;
type Ip = string | number;

export interface EthOptions {
  src?: Mac;
  dst?: Mac;
  /** Defaults to what the next layer needs (IPv4 or ARP). */
  etherType?: number;
  vlan?: { id: number; pcp?: number; dei?: number; tpid?: number };
}

export interface Ipv4Options {
  src: Ip;
  dst: Ip;
  tos?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** Raw 3-bit flags; wins over df/mf. */
  flags?: number;
  /** In 8-byte units. */
  fragmentOffset?: number;
  ttl?: number;
  protocol?: number;
  options?: Uint8Array;
  version?: number;
  ihl?: number;
  totalLength?: number;
  checksum?: number;
}

export interface TcpOptions {
  srcPort: number;
  dstPort: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  urgent?: number;
  options?: Uint8Array;
  reserved?: number;
  dataOffset?: number;
  checksum?: number;
}

export interface UdpOptions {
  srcPort: number;
  dstPort: number;
  length?: number;
  /** 0 sends "no checksum". */
  checksum?: number;
}

export interface IcmpOptions {
  type: number;
  code?: number;
  id?: number;
  sequence?: number;
  nextHopMtu?: number;
  /** Raw second word; wins over id/sequence/nextHopMtu. */
  rest?: number;
  checksum?: number;
}

export interface ArpOptions {
  operation?: number;
  senderMac: Mac;
  senderIp: Ip;
  targetMac?: Mac;
  targetIp: Ip;
}

export interface VrrpOptions {
  version: 2 | 3;
  vrid: number;
  priority: number;
  addresses: Ip[];
  /** v2: seconds (default 1). */
  advertInt?: number;
  /** v3: centiseconds (default 100). */
  maxAdvertInt?: number;
  /** v2: default 1 (PASS) when password is given, else 0. */
  authType?: number;
  password?: string;
  type?: number;
  count?: number;
  checksum?: number;
}

type Layer =
  | { kind: 'eth'; o: EthOptions }
  | { kind: 'ipv4'; o: Ipv4Options }
  | { kind: 'tcp'; o: TcpOptions }
  | { kind: 'udp'; o: UdpOptions }
  | { kind: 'icmp'; o: IcmpOptions }
  | { kind: 'arp'; o: ArpOptions }
  | { kind: 'vrrp'; o: VrrpOptions };

const mac = (m: Mac | undefined, fallback: number): number => (m === undefined ? fallback : typeof m === 'number' ? m : macToInt(m));
const ip = (a: Ip): number => (typeof a === 'number' ? a >>> 0 : ipv4ToInt(a));

export class PacketBuilder {
  private readonly layers: Layer[] = [];
  private data: Uint8Array = new Uint8Array(0);
  private trailer: Uint8Array = new Uint8Array(0);

  eth(o: EthOptions = {}): this {
    this.layers.push({ kind: 'eth', o });
    return this;
  }
  ipv4(o: Ipv4Options): this {
    this.layers.push({ kind: 'ipv4', o });
    return this;
  }
  tcp(o: TcpOptions): this {
    this.layers.push({ kind: 'tcp', o });
    return this;
  }
  udp(o: UdpOptions): this {
    this.layers.push({ kind: 'udp', o });
    return this;
  }
  icmp(o: IcmpOptions): this {
    this.layers.push({ kind: 'icmp', o });
    return this;
  }
  arp(o: ArpOptions): this {
    this.layers.push({ kind: 'arp', o });
    return this;
  }
  vrrp(o: VrrpOptions): this {
    this.layers.push({ kind: 'vrrp', o });
    return this;
  }
  /** Bytes after the last header (counted in every length). */
  payload(bytes: Uint8Array | string): this {
    this.data = typeof bytes === 'string' ? new Uint8Array(Buffer.from(bytes, 'utf8')) : bytes;
    return this;
  }
  /** Bytes after everything that no length counts, e.g. Ethernet padding to 60 bytes. */
  pad(bytes: Uint8Array | number): this {
    this.trailer = typeof bytes === 'number' ? new Uint8Array(bytes) : bytes;
    return this;
  }

  build(): Uint8Array {
    const headers = this.layers.map((l) => this.makeHeader(l));
    const sizes = headers.map((h, i) => this.sizeOf(this.layers[i]!, h));
    const headerTotal = sizes.reduce((a, b) => a + b, 0);
    const buf = new Uint8Array(headerTotal + this.data.length + this.trailer.length);
    const view = viewOf(buf);
    buf.set(this.data, headerTotal);
    buf.set(this.trailer, headerTotal + this.data.length);
    const offsets: number[] = [];
    let at = 0;
    for (const s of sizes) {
      offsets.push(at);
      at += s;
    }
    // Inside out, so each checksum covers bytes already in place.
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i]!;
      const offset = offsets[i]!;
      const after = headerTotal + this.data.length - offset - sizes[i]!;
      this.write(layer, headers[i]!, buf, view, offset, after, i);
    }
    return buf;
  }

  private nextKind(i: number): Layer['kind'] | undefined {
    return this.layers[i + 1]?.kind;
  }

  private makeHeader(l: Layer): EthernetHeader | Ipv4Header | TcpHeader | UdpHeader | IcmpHeader | ArpPacket | VrrpPacket {
    switch (l.kind) {
      case 'eth': {
        const h = new EthernetHeader();
        h.src = mac(l.o.src, 0x020000000001);
        h.dst = mac(l.o.dst, 0x020000000002);
        if (l.o.vlan) {
          h.tagged = 1;
          h.tpid = l.o.vlan.tpid ?? ETHERTYPE_VLAN;
          h.vlanId = l.o.vlan.id;
          h.pcp = l.o.vlan.pcp ?? 0;
          h.dei = l.o.vlan.dei ?? 0;
        }
        return h;
      }
      case 'ipv4': {
        const h = new Ipv4Header();
        const o = l.o;
        h.version = o.version ?? 4;
        h.tos = o.tos ?? 0;
        h.id = o.id ?? 0;
        h.flags = o.flags ?? ((o.df ? IPV4_FLAG_DF : 0) | (o.mf ? IPV4_FLAG_MF : 0));
        h.fragmentOffset = o.fragmentOffset ?? 0;
        h.ttl = o.ttl ?? 64;
        h.src = ip(o.src);
        h.dst = ip(o.dst);
        if (o.options) {
          const padded = new Uint8Array((o.options.length + 3) & ~3);
          padded.set(o.options);
          h.setOptions(o.ihl === undefined ? padded : o.options);
        }
        h.ihl = o.ihl ?? 5 + (h.optionsLength >>> 2);
        return h;
      }
      case 'tcp': {
        const h = new TcpHeader();
        const o = l.o;
        h.srcPort = o.srcPort;
        h.dstPort = o.dstPort;
        h.seq = o.seq ?? 0;
        h.ack = o.ack ?? 0;
        h.flags = o.flags ?? 0;
        h.window = o.window ?? 65535;
        h.urgent = o.urgent ?? 0;
        h.reserved = o.reserved ?? 0;
        if (o.options) {
          const padded = new Uint8Array((o.options.length + 3) & ~3);
          padded.set(o.options);
          h.setOptions(o.dataOffset === undefined ? padded : o.options);
        }
        h.dataOffset = o.dataOffset ?? 5 + (h.optionsLength >>> 2);
        return h;
      }
      case 'udp': {
        const h = new UdpHeader();
        h.srcPort = l.o.srcPort;
        h.dstPort = l.o.dstPort;
        return h;
      }
      case 'icmp': {
        const h = new IcmpHeader();
        const o = l.o;
        h.type = o.type;
        h.code = o.code ?? 0;
        if (o.rest !== undefined) h.rest = o.rest >>> 0;
        else {
          if (o.id !== undefined) h.id = o.id;
          if (o.sequence !== undefined) h.sequence = o.sequence;
          if (o.nextHopMtu !== undefined) h.nextHopMtu = o.nextHopMtu;
        }
        return h;
      }
      case 'arp': {
        const h = new ArpPacket();
        const o = l.o;
        h.setEthernetIpv4(o.operation ?? ARP_OP_REQUEST);
        h.senderMac = mac(o.senderMac, 0);
        h.senderIp = ip(o.senderIp);
        h.targetMac = mac(o.targetMac, 0);
        h.targetIp = ip(o.targetIp);
        return h;
      }
      case 'vrrp': {
        const h = new VrrpPacket();
        const o = l.o;
        h.version = o.version;
        h.type = o.type ?? VRRP_TYPE_ADVERTISEMENT;
        h.vrid = o.vrid;
        h.priority = o.priority;
        o.addresses.forEach((a, i) => (h.addresses[i] = ip(a)));
        // An overriding count is patched in after encoding (see write): the list holds what was given.
        h.count = o.addresses.length;
        if (o.version === 2) {
          h.advertInt = o.advertInt ?? 1;
          h.authType = o.authType ?? (o.password !== undefined ? 1 : 0);
          if (o.password !== undefined) h.setPassword(o.password);
        } else {
          h.maxAdvertInt = o.maxAdvertInt ?? 100;
        }
        return h;
      }
    }
  }

  private sizeOf(l: Layer, h: ReturnType<PacketBuilder['makeHeader']>): number {
    switch (l.kind) {
      case 'eth':
        return (h as EthernetHeader).encodedLength();
      case 'ipv4':
        return (h as Ipv4Header).encodedLength();
      case 'tcp':
        return (h as TcpHeader).encodedLength();
      default:
        return (h as UdpHeader | IcmpHeader | ArpPacket | VrrpPacket).encodedLength();
    }
  }

  /** The IPv4 header closest before layer i (for pseudo-headers). */
  private enclosingIp(i: number): { src: number; dst: number } {
    for (let j = i - 1; j >= 0; j--) {
      const l = this.layers[j]!;
      if (l.kind === 'ipv4') return { src: ip(l.o.src), dst: ip(l.o.dst) };
    }
    return { src: 0, dst: 0 };
  }

  private write(
    l: Layer,
    h: ReturnType<PacketBuilder['makeHeader']>,
    buf: Uint8Array,
    view: DataView,
    offset: number,
    after: number,
    i: number,
  ): void {
    const next = this.nextKind(i);
    switch (l.kind) {
      case 'eth': {
        const e = h as EthernetHeader;
        e.etherType = l.o.etherType ?? (next === 'arp' ? ETHERTYPE_ARP : ETHERTYPE_IPV4);
        e.encode(buf, view, offset);
        return;
      }
      case 'ipv4': {
        const p = h as Ipv4Header;
        const o = l.o;
        p.protocol =
          o.protocol ??
          (next === 'tcp' ? IPPROTO_TCP : next === 'udp' ? IPPROTO_UDP : next === 'icmp' ? IPPROTO_ICMP : next === 'vrrp' ? IPPROTO_VRRP : next === 'ipv4' ? IPPROTO_IPIP : 0);
        p.totalLength = o.totalLength ?? p.encodedLength() + after;
        p.checksum = o.checksum ?? 0;
        p.encode(buf, view, offset, o.checksum === undefined ? EncodeFlag.COMPUTE_CHECKSUMS : EncodeFlag.NONE);
        return;
      }
      case 'tcp': {
        const t = h as TcpHeader;
        const { src, dst } = this.enclosingIp(i);
        t.checksum = l.o.checksum ?? 0;
        t.encode(buf, view, offset, l.o.checksum === undefined ? EncodeFlag.COMPUTE_CHECKSUMS : EncodeFlag.NONE, after, src, dst);
        return;
      }
      case 'udp': {
        const u = h as UdpHeader;
        const { src, dst } = this.enclosingIp(i);
        u.length = l.o.length ?? 8 + after;
        u.checksum = l.o.checksum ?? 0;
        u.encode(buf, view, offset, l.o.checksum === undefined ? EncodeFlag.COMPUTE_CHECKSUMS : EncodeFlag.NONE, after, src, dst);
        return;
      }
      case 'icmp': {
        const c = h as IcmpHeader;
        c.checksum = l.o.checksum ?? 0;
        c.encode(buf, view, offset, l.o.checksum === undefined ? EncodeFlag.COMPUTE_CHECKSUMS : EncodeFlag.NONE, after);
        return;
      }
      case 'arp':
        (h as ArpPacket).encode(buf, view, offset);
        return;
      case 'vrrp': {
        const v = h as VrrpPacket;
        const { src, dst } = this.enclosingIp(i);
        v.checksum = l.o.checksum ?? 0;
        if (l.o.count !== undefined) {
          v.encode(buf, view, offset, EncodeFlag.NONE, src, dst);
          buf[offset + 3] = l.o.count;
          if (l.o.checksum === undefined) {
            const n = v.encodedLength();
            const initial = v.version === 3 ? pseudoHeaderSum(src, dst, IPPROTO_VRRP, n) : 0;
            view.setUint16(offset + 6, 0);
            view.setUint16(offset + 6, internetChecksum(buf, offset, n, initial));
          }
          return;
        }
        v.encode(buf, view, offset, l.o.checksum === undefined ? EncodeFlag.COMPUTE_CHECKSUMS : EncodeFlag.NONE, src, dst);
        return;
      }
    }
  }
}
