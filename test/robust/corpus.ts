// The malformed-frame corpus: each class of hostile or broken frame, how it is derived from a
// captured fixture (test/fixtures/packets), and the verdict the data plane owes it — a specific
// DropReason (counted once), the ICMP error it earns (and the drop it is counted as), "not ours"
// (left to the kernel, which sees the same frame, as IPVS leaves it: NF_ACCEPT), or forwarded.
// test/robust/corpus.test.ts runs every class through the pipeline in DR, NAT and TUN.
//
// The fixtures' client 10.201.0.1 talks to 10.201.0.2, which is the VIP of the lab
// (test/robust/pipeline-lab.ts: TCP 8080 and UDP 9 services).
import { DropReason } from '../../src/packet/drop';
import { viewOf } from '../../src/packet/layer';
import { internetChecksum, pseudoHeaderSum } from '../../src/packet/checksum';
import { ipv4ToInt } from '../../src/packet/addr';
import { loadFixture } from '../packet/fixtures';
import { RIPS, VIP } from './pipeline-lab';

export type Verdict =
  | { drop: DropReason }
  | { icmp: { type: number; code: number }; counted: DropReason }
  | { notOurs: true }
  | { forward: true };

export interface CorpusClass {
  name: string;
  /** What the frame is made of, in words. */
  from: string;
  /** Why this verdict (the kernel/IPVS behaviour or RFC it matches). */
  why: string;
  verdict: Verdict;
  /** Frames sent first so that the class's frame finds the state it needs (a connection). */
  setup?: () => Uint8Array[];
  frame: () => Uint8Array;
}

const fixture = (name: string, index: number): Uint8Array => loadFixture(name)[index - 1]!.bytes.slice();
/** http-tcp frame 1: the client's SYN to VIP:8080 (with TCP options: 40-byte TCP header). */
const syn = (): Uint8Array => fixture('http-tcp', 1);
/** http-tcp frame 4: the client's HTTP request (ACK|PSH, 88 bytes of data). */
const request = (): Uint8Array => fixture('http-tcp', 4);
/** icmp-port-unreachable frame 1: a UDP datagram client:40000 → VIP:9. */
const udp = (): Uint8Array => fixture('icmp-port-unreachable', 1);
/** icmp-port-unreachable frame 2: the server's port unreachable about it. */
const portUnreachable = (): Uint8Array => fixture('icmp-port-unreachable', 2);

const L3 = 14;

function v(b: Uint8Array): DataView {
  return viewOf(b);
}
/** Recomputes the IPv4 header checksum of the header at `l3`. */
export function fixIp(b: Uint8Array, l3 = L3): Uint8Array {
  const ihl = (b[l3]! & 15) * 4;
  v(b).setUint16(l3 + 10, 0);
  v(b).setUint16(l3 + 10, internetChecksum(b, l3, Math.min(ihl, b.length - l3)));
  return b;
}
/** Recomputes the TCP (or UDP) checksum of the whole packet at `l3`. */
function fixL4(b: Uint8Array, l3 = L3): Uint8Array {
  const view = v(b);
  const ihl = (b[l3]! & 15) * 4;
  const total = view.getUint16(l3 + 2);
  const len = total - ihl;
  const proto = b[l3 + 9]!;
  const field = l3 + ihl + (proto === 6 ? 16 : 6);
  view.setUint16(field, 0);
  const c = internetChecksum(b, l3 + ihl, len, pseudoHeaderSum(view.getUint32(l3 + 12), view.getUint32(l3 + 16), proto, len));
  view.setUint16(field, c === 0 && proto === 17 ? 0xffff : c);
  return b;
}
function setSrc(b: Uint8Array, addr: string): Uint8Array {
  v(b).setUint32(L3 + 12, ipv4ToInt(addr));
  return fixL4(fixIp(b));
}
function withTotalLength(b: Uint8Array, n: number): Uint8Array {
  v(b).setUint16(L3 + 2, n);
  return fixIp(b);
}
/** The IP packet with `opts` (a multiple of 4 bytes) inserted as IP options. */
function withIpOptions(b: Uint8Array, opts: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length + opts.length);
  out.set(b.subarray(0, L3 + 20));
  out.set(opts, L3 + 20);
  out.set(b.subarray(L3 + 20), L3 + 20 + opts.length);
  out[L3] = 0x40 | ((20 + opts.length) >> 2);
  v(out).setUint16(L3 + 2, v(b).getUint16(L3 + 2) + opts.length);
  return fixIp(out);
}
/** An 802.1Q tag (TPID `tpid`, VID `vid`) inserted after the MAC addresses. */
function tagged(b: Uint8Array, tpid = 0x8100, vid = 62): Uint8Array {
  const out = new Uint8Array(b.length + 4);
  out.set(b.subarray(0, 12));
  v(out).setUint16(12, tpid);
  v(out).setUint16(14, vid);
  out.set(b.subarray(12), 16);
  return out;
}
/** The UDP datagram's server side: a reply RIP:5353 → client (NAT), or its ICMP error. */
function fromRip(b: Uint8Array): Uint8Array {
  const vip = ipv4ToInt(VIP);
  const rip = ipv4ToInt(RIPS[0]!);
  // Every copy of the VIP's address (outer and quoted headers) becomes the real server's.
  for (let i = 0; i + 4 <= b.length; i++) {
    if (v(b).getUint32(i) === vip) v(b).setUint32(i, rip);
  }
  return b;
}

export const CORPUS: CorpusClass[] = [
  // ---- link layer --------------------------------------------------------------------------------
  {
    name: 'truncated Ethernet header', from: 'http-tcp #1 cut to 10 bytes', verdict: { drop: DropReason.TRUNCATED_ETH },
    why: 'fewer than 14 bytes: no EtherType', frame: () => syn().slice(0, 10),
  },
  {
    name: 'cut 802.1Q tag', from: 'http-tcp #1 with TPID 0x8100 and the frame ending inside the tag', verdict: { drop: DropReason.TRUNCATED_VLAN },
    why: 'the 4-byte tag is not all there', frame: () => tagged(syn()).slice(0, 16),
  },
  {
    name: 'ARP (not IPv4)', from: 'arp-request-reply #1', verdict: { notOurs: true },
    why: 'the kernel answers ARP; the data plane handles IPv4 only', frame: () => fixture('arp-request-reply', 1),
  },
  {
    name: 'IPv6 EtherType', from: 'http-tcp #1 with EtherType 0x86dd', verdict: { notOurs: true },
    why: 'IPv6 is not forwarded by uvs: left to the kernel', frame: () => {
      const b = syn();
      v(b).setUint16(12, 0x86dd);
      return b;
    },
  },
  {
    name: '802.1Q-tagged ARP', from: 'vlan-arp #1', verdict: { drop: DropReason.FOREIGN_VLAN },
    why: 'a tag with a VID other than 0 in the data (as libpcap hands it over): the VLAN device\'s frame, not this device\'s (docs/architecture.md, "Which interfaces")',
    frame: () => fixture('vlan-arp', 1),
  },
  {
    name: '802.1Q-tagged SYN to the VIP', from: 'http-tcp #1 with a VID 62 tag', verdict: { drop: DropReason.FOREIGN_VLAN },
    why: 'VID 62 belongs to the VLAN device, which sees the frame untagged: forwarding this copy too would send it twice, onto the wrong VLAN',
    frame: () => tagged(syn()),
  },
  {
    name: 'priority-tagged SYN to the VIP', from: 'http-tcp #1 with a VID 0 tag', verdict: { forward: true },
    why: 'VID 0 is the untagged network with a priority (the kernel\'s check_vlan_id): forwarded, its tag kept',
    frame: () => tagged(syn(), 0x8100, 0),
  },
  {
    name: 'Q-in-Q (802.1ad outer tag) SYN', from: 'http-tcp #1 with 0x88a8 and 0x8100 tags', verdict: { drop: DropReason.FOREIGN_VLAN },
    why: 'the outer tag (VID 62) is another device\'s', frame: () => tagged(tagged(syn()), 0x88a8),
  },
  // ---- IPv4 header ----------------------------------------------------------------------------------
  {
    name: 'IP version 6 in an IPv4 frame', from: 'http-tcp #1, version nibble 6', verdict: { drop: DropReason.BAD_IP_VERSION },
    why: 'ip_rcv_core: iph->version != 4 → drop', frame: () => {
      const b = syn();
      b[L3] = 0x65;
      return fixIp(b);
    },
  },
  {
    name: 'IHL below 5', from: 'http-tcp #1, IHL 4', verdict: { drop: DropReason.BAD_IHL },
    why: 'ip_rcv_core: iph->ihl < 5 → drop', frame: () => {
      const b = syn();
      b[L3] = 0x44;
      return fixIp(b);
    },
  },
  {
    name: 'IHL beyond the bytes', from: 'http-tcp #1 cut to 14 + 40 bytes, IHL 15 (60 bytes of header)', verdict: { drop: DropReason.TRUNCATED_IP },
    why: 'pskb_may_pull(iph->ihl*4) fails', frame: () => {
      const b = syn().slice(0, L3 + 40);
      b[L3] = 0x4f;
      v(b).setUint16(L3 + 2, 40);
      return b;
    },
  },
  {
    name: 'total length beyond the frame', from: 'http-tcp #1, total length 1000', verdict: { drop: DropReason.TRUNCATED_IP },
    why: 'ip_rcv_core: skb->len < tot_len → drop', frame: () => withTotalLength(syn(), 1000),
  },
  {
    name: 'total length below the header', from: 'http-tcp #1, total length 19', verdict: { drop: DropReason.BAD_IP_TOTAL_LENGTH },
    why: 'ip_rcv_core: tot_len < ihl*4 → drop', frame: () => withTotalLength(syn(), 19),
  },
  {
    name: 'total length cuts the TCP header', from: 'http-tcp #1, total length 30', verdict: { drop: DropReason.TRUNCATED_TCP },
    why: 'tcp_v4_rcv: pskb_may_pull(th->doff*4) fails', frame: () => withTotalLength(syn(), 30),
  },
  {
    name: 'bad IPv4 header checksum', from: 'http-tcp #1, checksum + 1', verdict: { drop: DropReason.BAD_IP_CHECKSUM },
    why: 'ip_rcv_core: ip_fast_csum != 0 → drop', frame: () => {
      const b = syn();
      v(b).setUint16(L3 + 10, (v(b).getUint16(L3 + 10) + 1) & 0xffff);
      return b;
    },
  },
  {
    name: 'TTL 1', from: 'http-tcp #1, TTL 1', verdict: { icmp: { type: 11, code: 0 }, counted: DropReason.TTL_EXPIRED },
    why: 'ip_forward / IPVS decrement_ttl: time exceeded to the sender', frame: () => {
      const b = syn();
      b[L3 + 8] = 1;
      return fixIp(b);
    },
  },
  {
    name: 'TTL 0', from: 'http-tcp #1, TTL 0', verdict: { icmp: { type: 11, code: 0 }, counted: DropReason.TTL_EXPIRED },
    why: 'as TTL 1: it cannot be forwarded', frame: () => {
      const b = syn();
      b[L3 + 8] = 0;
      return fixIp(b);
    },
  },
  {
    name: 'IP option with length 0', from: 'http-tcp #1 with options [7, 0, 0, 0]', verdict: { drop: DropReason.BAD_IP_OPTIONS },
    why: 'ip_options_compile: optlen < 2 → parameter problem, drop', frame: () => withIpOptions(syn(), new Uint8Array([7, 0, 0, 0])),
  },
  {
    name: 'IP option running past the header', from: 'http-tcp #1 with options [7, 39, 4, 0]', verdict: { drop: DropReason.BAD_IP_OPTIONS },
    why: 'ip_options_compile: optlen > remaining → drop', frame: () => withIpOptions(syn(), new Uint8Array([7, 39, 4, 0])),
  },
  {
    name: 'well-formed IP options (record route of the captured ping)', from: 'http-tcp #1 with ipv4-options #1\'s 40 bytes of options', verdict: { forward: true },
    why: 'IPVS forwards options as they are', frame: () => {
      const o = fixture('ipv4-options', 1);
      return withIpOptions(syn(), o.subarray(L3 + 20, L3 + (o[L3]! & 15) * 4));
    },
  },
  // ---- fragments ------------------------------------------------------------------------------------
  {
    name: 'non-first fragment to the VIP', from: 'http-tcp #4, offset 185 (1480 bytes)', verdict: { drop: DropReason.IP_FRAGMENT },
    why: 'no ports to classify on; the rings defragment (fanout defrag), so only a bypass brings one here',
    frame: () => {
      const b = request();
      v(b).setUint16(L3 + 6, 185);
      return fixIp(b);
    },
  },
  {
    name: 'first fragment (MF) to the VIP', from: 'http-tcp #4 with MF', verdict: { drop: DropReason.IP_FRAGMENT },
    why: 'as above: a fragment never starts or feeds a connection by itself', frame: () => {
      const b = request();
      v(b).setUint16(L3 + 6, 0x2000);
      return fixIp(b);
    },
  },
  {
    name: 'MF with no payload', from: 'http-tcp #1 cut to its IP header, total length 20, MF', verdict: { drop: DropReason.IP_FRAGMENT },
    why: 'a fragment of nothing', frame: () => {
      const b = syn().slice(0, L3 + 20);
      v(b).setUint16(L3 + 2, 20);
      v(b).setUint16(L3 + 6, 0x2000);
      return fixIp(b);
    },
  },
  {
    name: 'overlapping fragment (offset 8 over a first fragment)', from: 'http-tcp #4, offset 1 (8 bytes), MF', verdict: { drop: DropReason.IP_FRAGMENT },
    why: 'overlaps are the reassembler\'s to refuse (RFC 5722); uvs drops every fragment it sees',
    frame: () => {
      const b = request();
      v(b).setUint16(L3 + 6, 0x2001);
      return fixIp(b);
    },
  },
  {
    name: 'DF set and larger than the real server\'s MTU', from: 'http-tcp #1 with 1460 bytes of data (1520-byte IP packet)',
    verdict: { icmp: { type: 3, code: 4 }, counted: DropReason.TOO_BIG },
    why: 'RFC 1191: fragmentation needed, with the next-hop MTU', frame: () => {
      const s = syn();
      const b = new Uint8Array(s.length + 1460);
      b.set(s);
      v(b).setUint16(L3 + 2, v(s).getUint16(L3 + 2) + 1460);
      return fixL4(fixIp(b));
    },
  },
  // ---- TCP / UDP ------------------------------------------------------------------------------------
  {
    name: 'TCP data offset below 5', from: 'http-tcp #1, data offset 4', verdict: { drop: DropReason.BAD_TCP_OFFSET },
    why: 'tcp_v4_rcv: th->doff < sizeof(tcphdr)/4 → bad_packet', frame: () => {
      const b = syn();
      b[L3 + 20 + 12] = 0x40 | (b[L3 + 20 + 12]! & 15);
      return b;
    },
  },
  {
    name: 'TCP data offset beyond the segment', from: 'http-tcp #3 (20-byte header), data offset 15', verdict: { drop: DropReason.TRUNCATED_TCP },
    why: 'tcp_v4_rcv: pskb_may_pull(th->doff*4) fails', frame: () => {
      const b = fixture('http-tcp', 3);
      b[L3 + 20 + 12] = 0xf0 | (b[L3 + 20 + 12]! & 15);
      return b;
    },
  },
  {
    name: 'TCP without SYN and no connection', from: 'http-tcp #3 (the handshake\'s ACK) with no SYN before', verdict: { drop: DropReason.NO_CONN },
    why: 'IPVS schedules only on SYN (sloppy_tcp 0)', frame: () => fixture('http-tcp', 3),
  },
  {
    name: 'bad TCP checksum', from: 'http-tcp #1, TCP checksum + 1', verdict: { forward: true },
    why: 'IPVS does not verify L4 checksums when it forwards (tcp_dnat_handler checks only with an application helper); the receiver drops it',
    frame: () => {
      const b = syn();
      v(b).setUint16(L3 + 20 + 16, (v(b).getUint16(L3 + 20 + 16) + 1) & 0xffff);
      return b;
    },
  },
  {
    name: 'frame longer than the IP packet (trailing bytes)', from: 'http-tcp #4 with 40 bytes after the packet', verdict: { forward: true },
    why: 'forwarded without them (ip_rcv_core trims to tot_len): checked by the test', setup: () => [syn()], frame: () => {
      const r = request();
      const b = new Uint8Array(r.length + 40).fill(0xee);
      b.set(r);
      return b;
    },
  },
  {
    name: 'UDP header cut', from: 'icmp-port-unreachable #1, total length 24', verdict: { drop: DropReason.TRUNCATED_UDP },
    why: '__udp4_lib_rcv: pskb_may_pull(sizeof(udphdr)) fails', frame: () => withTotalLength(udp(), 24),
  },
  {
    name: 'UDP length below 8', from: 'icmp-port-unreachable #1, UDP length 7', verdict: { drop: DropReason.BAD_UDP_LENGTH },
    why: '__udp4_lib_rcv: ulen < sizeof(udphdr) → short_packet', frame: () => {
      const b = udp();
      v(b).setUint16(L3 + 20 + 4, 7);
      return b;
    },
  },
  {
    name: 'UDP length beyond the IP payload', from: 'icmp-port-unreachable #1, UDP length 1000', verdict: { drop: DropReason.BAD_UDP_LENGTH },
    why: '__udp4_lib_rcv: ulen > skb->len → short_packet', frame: () => {
      const b = udp();
      v(b).setUint16(L3 + 20 + 4, 1000);
      return b;
    },
  },
  {
    name: 'unsupported IP protocol to the VIP (SCTP)', from: 'http-tcp #1 with protocol 132', verdict: { notOurs: true },
    why: 'no SCTP service: the kernel\'s, as IPVS leaves protocols it has no service for', frame: () => {
      const b = syn();
      b[L3 + 9] = 132;
      return fixIp(b);
    },
  },
  // ---- martian sources (ip_route_input_slow / fib_validate_source) --------------------------------------
  ...(['127.0.0.1', '0.1.2.3', '224.0.0.1', '255.255.255.255', VIP] as const).map((src): CorpusClass => ({
    name: `martian source ${src === VIP ? 'the VIP itself' : src}`, from: `http-tcp #1 from ${src}`, verdict: { drop: DropReason.MARTIAN_SOURCE },
    why: 'the kernel drops these before routing; uvs taps earlier', frame: () => setSrc(syn(), src),
  })),
  // ---- ICMP errors ----------------------------------------------------------------------------------
  {
    name: 'ICMP error from a real server, quote cut below 8 bytes of UDP', from: 'icmp-port-unreachable #2 from the RIP, quote cut to 24 bytes',
    verdict: { notOurs: true },
    why: 'ip_vs_in_icmp: the quoted ports are not there → NF_ACCEPT, the kernel decides', setup: () => [udp()], frame: () => {
      const b = fromRip(portUnreachable());
      const cut = b.slice(0, L3 + 20 + 8 + 24);
      v(cut).setUint16(L3 + 2, 20 + 8 + 24);
      fixIp(cut);
      return icmpChecksum(cut);
    },
  },
  {
    name: 'ICMP header cut (4 bytes)', from: 'icmp-port-unreachable #2, total length 24', verdict: { notOurs: true },
    why: 'too short to be an ICMP message: the kernel\'s icmp_rcv drops it', frame: () => withTotalLength(portUnreachable(), 24),
  },
];

function icmpChecksum(b: Uint8Array): Uint8Array {
  const ihl = (b[L3]! & 15) * 4;
  const len = v(b).getUint16(L3 + 2) - ihl;
  v(b).setUint16(L3 + ihl + 2, 0);
  v(b).setUint16(L3 + ihl + 2, internetChecksum(b, L3 + ihl, len));
  return b;
}
