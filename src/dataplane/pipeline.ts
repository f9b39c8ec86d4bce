// What one data-plane worker does to one frame: parse → classify → connection lookup or schedule
// → rewrite, in place. The worker loop (worker.ts) feeds it frames from the ring and transmits
// what it returns; tests feed it frames built with the packet builder and compare the bytes.
//
// Classification follows IPVS's ip_vs_in / ip_vs_out:
//   - a packet to a virtual service (protocol, VIP, port — or the VIP's port-0 persistent service)
//     finds its connection or is scheduled (ConnScheduler.inPacket), then is rewritten for the
//     entry's forwarding method;
//   - a packet from a NAT real server that matches a connection is a reply (ConnScheduler.outPacket);
//   - an ICMP error quoting a tracked flow goes to the party that owns it (forward/icmp.ts);
//   - anything else is not ours: the kernel, which sees the same frame, deals with it.
//
// Output: DR and NAT rewrite the frame in place in the RX ring (process() returns the egress
// interface); TUN and the ICMP errors uvs originates are built in the worker's TxQueue
// (process() returns QUEUED and the worker sends the queue after the batch).
//
// Odd cases, each with a fixture test:
//   - TTL ≤ 1: dropped (TTL_EXPIRED) and answered with ICMP time exceeded, like a router.
//   - IP options: forwarded as they are (IPVS neither strips nor processes them; the IP
//     header's length is honoured everywhere, so the transport header is found behind them).
//   - Fragments: the rings use PACKET_FANOUT_FLAG_DEFRAG, so the kernel hands uvs reassembled
//     datagrams (IPVS too runs after defragmentation). A fragment that still reaches the
//     pipeline (no fanout, other backends) is dropped and counted (IP_FRAGMENT) when it is for
//     a virtual service or from a NAT real server, else left to the kernel.
//   - Ports with no service: left to the kernel (not ours), as IPVS leaves them.
//   - Full connection table: the new flow is refused (CONN_TABLE_FULL), existing ones go on.
//
// Batches (the worker's path; issue 12): at a million entries a connection lookup is a DRAM
// miss or two, paid one after the other when frames are looked up one at a time. The worker
// therefore hands the pipeline its frames in batches of LOOKUP_BATCH:
//   1. beginBatch(), then prepare(slot, frame) for each frame: a quick read of the frame's
//      5-tuple straight from its bytes (no validation, no allocation) and the service lookup; a
//      frame to a virtual service goes into the forward batch, any other TCP/UDP frame into the
//      reply batch (a possible NAT reply), ICMP and the rest into neither;
//   2. lookupBatch(): ConnTable.lookupInBatch and lookupOutBatch, which load every home bucket
//      and predicted entry line of the batch before probing, so the misses overlap (in the
//      workers through the addon's connLookupBatch, whose software prefetch puts the whole
//      batch's misses in flight at once: src/conn/README.md "Batched lookups");
//   3. process(frame, ..., slot) for each frame, in order, exactly as before (full parse, every
//      check and drop), except that the connection lookup takes the batch's result when the
//      key process() parsed equals the one prepare() read (ConnTable.batchResult re-checks it
//      against what earlier frames of the batch did: a second frame of a new flow sees the
//      entry the first one created, a frame after a FIN or RST sees the new state). Anything
//      prepare() got wrong (an odd header, a VLAN tag) only costs a wasted lookup: process()
//      looks the frame up alone. ICMP errors keep their own single lookups.
// process() without a slot (tests, the pcap backend) looks each frame up alone, and so does the
// worker while the table holds fewer than LOOKUP_BATCH_MIN_ENTRIES connections (all in cache:
// nothing to overlap, and the extra pass would cost more than it saves).
//
// Per packet: no allocation, no closures, no strings. The objects used here (headers, key, ref,
// the lookup batches) are allocated once per Pipeline.

import { endianness } from 'node:os';
import { DropReason } from '../packet/drop';
import { EthernetHeader, ETHERTYPE_IPV4 } from '../packet/ethernet';
import { Ipv4Header, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../packet/ipv4';
import { IcmpHeader, ICMP_DEST_UNREACH, ICMP_EXC_TTL, ICMP_FRAG_NEEDED, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED } from '../packet/icmp';
import { TcpHeader, TCP_RST, TCP_SYN } from '../packet/tcp';
import { UdpHeader } from '../packet/udp';
import type { PacketKey } from '../sched/scheduler';
import type { DestTable } from '../tables/dest-table';
import { ForwardMethod } from '../tables/dest-table';
import { SvcFlag, type ServiceSnapshot } from '../service/snapshot';
import { ConnLookupBatch, ConnRef, EntryCell, Meta, Traffic, type ConnTable } from '../conn/table';
import { ConnScheduler, ConnVerdict, type ConnService } from '../conn/schedule';
import { forwardDr } from '../forward/dr';
import { forwardNatIn, forwardNatOut } from '../forward/nat';
import { TunForwarder, type OffloadInfo } from '../forward/tun';
import { VNET_GSO_NONE } from '../packet/vnet';
import { completePartialChecksum } from '../packet/checksum';
import { Fragmenter } from '../forward/fragment';
import { IcmpRateLimit, IcmpResponder, natIcmpRewrite } from '../forward/icmp';
import { decrementTtl } from '../forward/dr';
import type { NextHopTable } from '../tables/next-hop';
import { ClientHopTable } from '../tables/client-hops';
import { TxQueue } from '../tables/tx-queue';
import { DestField } from '../tables/dest-table';
import { VNET_HDR_LEN } from '../native/addon';
import { WorkerStat, type WorkerCounters } from './counters';
import { FAST_EVENT_CELLS, FastKind, type FastFlows } from './fast-path';

/** process() result when the frame is not to be transmitted. */
export const NO_TX = -1;
/** process() result when the output was written into Pipeline.tx (send it after the batch). */
export const QUEUED = -2;

/** Frames per batched lookup (prepare → lookupBatch → process): a power of two. 64 frames'
 *  buckets and entry lines (about 12 KiB) stay in the L1/L2 cache until their frames are
 *  processed, and 64 independent loads are more than a core keeps in flight. */
export const LOOKUP_BATCH = 64;
/**
 * Below this many live connections the worker looks frames up one at a time: the table then
 * sits in the caches, there is no miss to overlap, and the batch's extra pass costs more than
 * it saves (bench/forward.bench.ts's 1 M-connection cases, interleaved: about 55 ns per frame
 * slower at 3 K live entries, faster at 64 K and, by 150-200 ns per frame, at 1 M). 32 K
 * entries (2.5 MiB with their buckets) is past the L2 cache; PipelineDeps.batchMinEntries
 * overrides it (tests: 0).
 */
export const LOOKUP_BATCH_MIN_ENTRIES = 32_768;

/** virtio_net_hdr flag: the L4 checksum is CHECKSUM_PARTIAL. */
const VNET_F_NEEDS_CSUM = 1;
/** Ethernet's shortest frame without the FCS: shorter ones are padded to it. */
const ETH_MIN_FRAME = 60;

export interface PipelineDeps {
  dests: DestTable;
  conns: ConnTable;
  nextHops: NextHopTable;
  counters: WorkerCounters;
  /** NAT's next hops toward clients, shared by the workers (default: a private table). */
  clientHops?: ClientHopTable;
  /** Frames are preceded by a virtio_net_hdr (PACKET_VNET_HDR), and built ones must be too. */
  vnetHdr?: boolean;
  /** Interfaces the worker transmits on (TxQueue size); default 1. */
  egressCount?: number;
  /** MTU per egress interface, for NAT replies (0 or absent: not checked). */
  egressMtu?: readonly number[];
  /** The ICMP error budget shared by all workers (IcmpRateLimit's buffer; default: a private one). */
  icmpLimit?: SharedArrayBuffer;
  /** Batched lookups only from this many live connections on (default LOOKUP_BATCH_MIN_ENTRIES). */
  batchMinEntries?: number;
  /** The in-kernel fast path (fast-path.ts): DR flows are offered to it once established. */
  fast?: FastFlows | null;
}

/** The kernel writes the legacy virtio_net_hdr in host order for packet sockets. */
const LITTLE_ENDIAN = endianness() === 'LE';

export class Pipeline {
  private readonly eth = new EthernetHeader();
  private readonly ip = new Ipv4Header();
  private readonly tcp = new TcpHeader();
  private readonly udp = new UdpHeader();
  private readonly icmp = new IcmpHeader();
  private readonly quoted = new Ipv4Header();
  private readonly offload: OffloadInfo = { csumStart: -1, csumOffset: 0, gsoType: VNET_GSO_NONE, gsoSize: 0 };
  /** Frames built by this worker (TUN, ICMP errors), sent by the worker after each batch. */
  readonly tx: TxQueue;
  private readonly tun: TunForwarder;
  private readonly fragmenter: Fragmenter;
  private readonly egressMtu: Int32Array;
  private readonly icmpOut: IcmpResponder;
  private readonly clientHops: ClientHopTable;
  private readonly conns: ConnTable;
  private readonly dests: DestTable;
  private readonly vnetHdr: boolean;
  private readonly key: PacketKey = { protocol: 0, saddr: 0, sport: 0, daddr: 0, dport: 0 };
  private readonly ref = new ConnRef();
  /** After process() returned an egress interface: how many bytes of the frame (from l2) to send. */
  txLength = 0;
  /** Transport payload bytes of the packet being processed. */
  private payloadLength = 0;
  private readonly connScheduler: ConnScheduler;
  private readonly nextHops: NextHopTable;
  private readonly counters: WorkerCounters;
  private snapshot: ServiceSnapshot | null = null;
  /** ConnService per service slot of the current snapshot (null: no such service). */
  private services: (ConnService | null)[] = [];
  /** The batch's lookups (see "Batches" at the top): client → VIP frames and the rest. */
  private readonly inBatch = new ConnLookupBatch(LOOKUP_BATCH);
  private readonly outBatch = new ConnLookupBatch(LOOKUP_BATCH);
  private inCount = 0;
  private outCount = 0;
  /** Per frame slot: its index in inBatch or outBatch (-1: none) and its service (-1: none). */
  private readonly slotIn = new Int32Array(LOOKUP_BATCH).fill(-1);
  private readonly slotOut = new Int32Array(LOOKUP_BATCH).fill(-1);
  private readonly slotSvc = new Int32Array(LOOKUP_BATCH);
  /** The snapshot the batch was prepared with (null: no batch; a new snapshot voids it). */
  private batchSnapshot: ServiceSnapshot | null = null;
  private readonly batchMinEntries: number;
  private readonly fast: FastFlows | null;
  /** While process() runs: the frame's slot when its key is the one prepare() read, else -1. */
  private slot = -1;

  constructor(deps: PipelineDeps) {
    this.connScheduler = new ConnScheduler(deps.conns);
    this.nextHops = deps.nextHops;
    this.counters = deps.counters;
    this.conns = deps.conns;
    // drop_entry's evictions by this worker's sweep are counted with its other figures.
    deps.conns.evictionSink = deps.counters;
    this.dests = deps.dests;
    this.vnetHdr = deps.vnetHdr === true;
    this.clientHops = deps.clientHops ?? new ClientHopTable(16);
    this.tx = new TxQueue(deps.egressCount ?? 1);
    this.tun = new TunForwarder(this.tx, this.vnetHdr);
    this.icmpOut = new IcmpResponder(this.tx, this.vnetHdr, deps.icmpLimit ? IcmpRateLimit.over(deps.icmpLimit) : new IcmpRateLimit());
    this.fragmenter = new Fragmenter(this.tx, this.vnetHdr);
    this.egressMtu = Int32Array.from(deps.egressMtu ?? []);
    this.batchMinEntries = deps.batchMinEntries ?? LOOKUP_BATCH_MIN_ENTRIES;
    this.fast = deps.fast ?? null;
    this.quoted.quoted = true;
  }

  /** Switches to a new service snapshot; called between batches. */
  setSnapshot(snapshot: ServiceSnapshot, services: (ConnService | null)[]): void {
    this.snapshot = snapshot;
    this.services = services;
    this.counters.set(WorkerStat.SNAPSHOT_GEN, snapshot.generation);
  }

  /**
   * Starts a batch of up to LOOKUP_BATCH frames (see "Batches" at the top). Returns false when
   * the table is too small for batching to pay (LOOKUP_BATCH_MIN_ENTRIES): then skip prepare and
   * lookupBatch; process() looks the batch's frames up one at a time whatever slot it is given.
   */
  beginBatch(): boolean {
    this.inCount = 0;
    this.outCount = 0;
    if (this.conns.count < this.batchMinEntries) {
      this.batchSnapshot = null;
      return false;
    }
    this.slotIn.fill(-1);
    this.slotOut.fill(-1);
    this.batchSnapshot = this.snapshot;
    return true;
  }

  /**
   * First pass over frame `slot` (0..LOOKUP_BATCH-1) of the batch: reads its 5-tuple from the
   * bytes, unchecked (process() parses and checks the frame and uses the lookup only if it
   * parsed the same key), and queues its connection lookup.
   */
  prepare(slot: number, buf: Uint8Array, view: DataView, l2: number, length: number): void {
    const snapshot = this.batchSnapshot;
    if (snapshot === null || length < 38) return;
    let l3 = l2 + 14;
    let type = view.getUint16(l2 + 12);
    if (type === 0x8100) {
      // An 802.1Q tag left in the data: only VID 0 (priority tag) is processed (processFrame).
      type = view.getUint16(l2 + 16);
      l3 += 4;
    }
    if (type !== ETHERTYPE_IPV4) return;
    const vihl = buf[l3]!;
    const l4 = l3 + ((vihl & 0xf) << 2);
    // Fragments (More Fragments or an offset) are dropped or left to the kernel: no lookup.
    if (vihl >>> 4 !== 4 || l4 + 4 > l2 + length || (view.getUint16(l3 + 6) & 0x3fff) !== 0) return;
    const protocol = buf[l3 + 9]!;
    if (protocol !== IPPROTO_TCP && protocol !== IPPROTO_UDP) return;
    const dst = view.getUint32(l3 + 16);
    const dport = view.getUint16(l4 + 2);
    let svc = snapshot.lookup(protocol, dst, dport);
    if (svc < 0) svc = snapshot.lookup(protocol, dst, 0);
    this.slotSvc[slot] = svc;
    let b: ConnLookupBatch;
    let j: number;
    if (svc >= 0) {
      b = this.inBatch;
      j = this.inCount++;
      this.slotIn[slot] = j;
    } else {
      b = this.outBatch;
      j = this.outCount++;
      this.slotOut[slot] = j;
    }
    b.proto[j] = protocol;
    b.caddr[j] = view.getUint32(l3 + 12) | 0;
    b.cport[j] = view.getUint16(l4);
    b.vaddr[j] = dst | 0;
    b.vport[j] = dport;
  }

  /** The batch's connection lookups, all at once (ConnTable.lookupInBatch / lookupOutBatch). */
  lookupBatch(): void {
    if (this.inCount > 0) this.conns.lookupInBatch(this.inBatch, this.inCount);
    if (this.outCount > 0) this.conns.lookupOutBatch(this.outBatch, this.outCount);
  }

  /**
   * Processes the frame buf[l2 .. l2 + length), received on interface `ingress`. Returns the
   * egress interface index to transmit it on (rewritten in place; send this.txLength bytes from
   * l2), QUEUED (the output is in this.tx), or NO_TX (not ours, or dropped and counted).
   * `slot`: the frame's place in the batch prepared with beginBatch/prepare/lookupBatch
   * (-1: none, the frame is looked up alone).
   */
  process(buf: Uint8Array, view: DataView, l2: number, length: number, nowMs: number, ingress = 0, slot = -1): number {
    this.slot = slot >= 0 && slot < LOOKUP_BATCH && this.batchSnapshot !== null && this.batchSnapshot === this.snapshot ? slot : -1;
    const egress = this.processFrame(buf, view, l2, length, nowMs, ingress);
    this.slot = -1;
    if (egress >= 0) {
      // Send the IP packet, not what follows it: the kernel trims a frame to the IPv4 total
      // length on receive (ip_rcv_core: pskb_trim_rcsum), so IPVS never forwards trailing
      // bytes. Ethernet's padding of a short frame (to 60 bytes) is kept.
      const n = this.ip.headerOffset - l2 + this.ip.totalLength;
      this.txLength = n >= length ? length : Math.max(n, Math.min(length, ETH_MIN_FRAME));
    }
    return egress;
  }

  private processFrame(buf: Uint8Array, view: DataView, l2: number, length: number, nowMs: number, ingress: number): number {
    const eth = this.eth;
    this.icmpOut.nowMs = nowMs;
    let r = eth.decode(buf, view, l2, length);
    if (r !== 0) return this.drop(r);
    // A tag with a VID in the data (libpcap puts the offloaded tag back into what it hands over):
    // the frame is that VLAN device's, not this one's (ring-frame.ts, bpf.ts). VID 0 is untagged.
    if (eth.tagged !== 0 && eth.vlanId !== 0) return this.drop(DropReason.FOREIGN_VLAN);
    if (eth.etherType !== ETHERTYPE_IPV4) return this.notOurs();

    const ip = this.ip;
    r = ip.decode(buf, view, eth.payloadOffset, eth.payloadLength);
    if (r !== 0) return this.drop(r);
    const protocol = ip.protocol;
    const snapshot = this.snapshot;
    if (snapshot === null) return this.notOurs();
    if (protocol === IPPROTO_ICMP) return this.icmpError(buf, view, l2, nowMs);
    if (protocol !== IPPROTO_TCP && protocol !== IPPROTO_UDP) return this.notOurs();

    const key = this.key;
    let tcpFlags = 0;
    if (ip.isFragment) {
      // Only the first fragment carries ports; see the header comment.
      if (snapshot.hasAddress(protocol, ip.dst)) return this.drop(DropReason.IP_FRAGMENT);
      return this.notOurs();
    }
    if (protocol === IPPROTO_TCP) {
      r = this.tcp.decode(buf, view, ip.payloadOffset, ip.payloadLength);
      if (r !== 0) return this.drop(r);
      key.sport = this.tcp.srcPort;
      key.dport = this.tcp.dstPort;
      tcpFlags = this.tcp.flags;
      this.payloadLength = this.tcp.payloadLength;
    } else {
      r = this.udp.decode(buf, view, ip.payloadOffset, ip.payloadLength);
      if (r !== 0) return this.drop(r);
      key.sport = this.udp.srcPort;
      key.dport = this.udp.dstPort;
      this.payloadLength = this.udp.payloadLength;
    }
    key.protocol = protocol;
    key.saddr = ip.src;
    key.daddr = ip.dst;

    let svc: number;
    if (this.slot >= 0 && this.preparedSame(this.slot)) {
      svc = this.slotSvc[this.slot]!;
    } else {
      this.slot = -1;
      svc = snapshot.lookup(protocol, ip.dst, key.dport);
      // __ip_vs_service_find: a persistent port-zero service catches every port of its VIP.
      if (svc < 0) svc = snapshot.lookup(protocol, ip.dst, 0);
    }
    if (svc >= 0) return this.toService(buf, view, l2, svc, tcpFlags, nowMs, ingress);
    return this.natReply(buf, view, l2, tcpFlags, nowMs);
  }

  /** Whether prepare() read the key process() parsed for batch slot `slot`. */
  private preparedSame(slot: number): boolean {
    const key = this.key;
    let b: ConnLookupBatch;
    let j = this.slotIn[slot]!;
    if (j >= 0) {
      b = this.inBatch;
    } else {
      j = this.slotOut[slot]!;
      if (j < 0) return false;
      b = this.outBatch;
    }
    return (
      b.proto[j] === key.protocol &&
      b.caddr[j] === (key.saddr | 0) &&
      b.vaddr[j] === (key.daddr | 0) &&
      b.cport[j] === key.sport &&
      b.vport[j] === key.dport
    );
  }

  /** ip_vs_in: a packet from a client to virtual service `svc`. */
  private toService(buf: Uint8Array, view: DataView, l2: number, svc: number, tcpFlags: number, nowMs: number, ingress: number): number {
    const snapshot = this.snapshot!;
    const service = this.services[svc];
    if (!service || (snapshot.flags(svc) & SvcFlag.ACTIVE) === 0) return this.drop(DropReason.SERVICE_INACTIVE);
    // Martian sources (see DropReason.MARTIAN_SOURCE): checked before a connection is found or
    // made, so a spoofed martian neither reaches a real server nor takes a table entry.
    const src = this.ip.src;
    const top = src >>> 24;
    if (top === 0 || top === 127 || (top & 0xf0) === 0xe0 || src === 0xffffffff || src === this.ip.dst) {
      return this.drop(DropReason.MARTIAN_SOURCE);
    }
    const ref = this.ref;
    const key = this.key;
    const j = this.slot >= 0 ? this.slotIn[this.slot]! : -1;
    let hit = j >= 0 ? this.conns.batchResult(this.inBatch, j, ref) : this.conns.lookupIn(key.protocol, key.saddr, key.sport, key.daddr, key.dport, ref);
    if (hit && (tcpFlags & (TCP_SYN | TCP_RST)) !== 0 && this.fast !== null && this.fast.track && key.protocol === IPPROTO_TCP &&
        (this.conns.field(ref.index, EntryCell.TRAFFIC) & Traffic.OFFLOADED) !== 0) {
      // A SYN or RST the fast path handed back: the kernel may have carried the connection's
      // close already (a client reusing its port). Its state first, then this packet's.
      this.fast.refresh(this.conns, ref.index, ref.seq, nowMs);
      hit = this.conns.refAt(ref.index, ref.seq, ref);
    }
    const verdict = this.connScheduler.inPacketFound(service, key, tcpFlags, nowMs, ref, hit);
    switch (verdict) {
      case ConnVerdict.FORWARD:
        break;
      case ConnVerdict.PASS:
        return this.drop(DropReason.NO_CONN);
      case ConnVerdict.NO_DEST:
        return this.drop(DropReason.NO_DEST);
      case ConnVerdict.TABLE_FULL:
        return this.drop(DropReason.CONN_TABLE_FULL);
      case ConnVerdict.DEST_UNAVAILABLE:
        return this.drop(DropReason.DEST_UNAVAILABLE);
      case ConnVerdict.DEFENSE_DROP:
        return this.drop(DropReason.DROP_PACKET);
      default:
        return this.notOurs();
    }
    const counters = this.counters;
    const ip = this.ip;
    const dest = ref.destSlot;
    if (this.connScheduler.created) counters.countConn(svc, dest);
    const method = (ref.meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT;
    // Replies of a NAT connection leave the way its first packet came, exactly: kept with the
    // entry by the worker that created it, never changed by later frames (client-hops.ts).
    if (this.connScheduler.created && method === ForwardMethod.MASQ) this.conns.setClientHop(ref.index, buf, l2, ingress);
    // What the flood defence judges an entry by: did the client send data (src/conn/defense.ts).
    if (this.payloadLength > 0) this.conns.countData(ref.index);
    const l3 = ip.headerOffset;
    let out: number;
    let egress = this.nextHops.egress(dest);
    if (method === ForwardMethod.DROUTE || method === ForwardMethod.MASQ) {
      const partial = this.readOffload(view, l2);
      const mtu = this.nextHops.mtu(dest);
      const oversize = mtu > 0 && ip.totalLength > mtu && this.offload.gsoType === VNET_GSO_NONE;
      if (oversize && ip.dontFragment) {
        // Larger than the link and DF: what a router answers (RFC 1191), from the VIP.
        this.icmpOut.toSender(buf, l2, l3, ip.totalLength, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, ip.dst, ingress);
        this.drop(DropReason.TOO_BIG);
        return QUEUED;
      }
      if (method === ForwardMethod.DROUTE) {
        out = forwardDr(buf, l2, l3, this.nextHops, dest);
      } else {
        out = forwardNatIn(buf, l2, l3, ip.payloadOffset, ip.protocol, ref.daddr, ref.dport, partial, this.nextHops, dest);
      }
      if (out === 0 && oversize) {
        // A datagram the kernel reassembled for us (fanout defrag): fragment it again.
        out = this.refragment(buf, view, l2, l3, ip.totalLength, partial, mtu, egress);
        if (out === 0) {
          counters.countIn(svc, dest, ip.totalLength);
          return QUEUED;
        }
      }
    } else if (method === ForwardMethod.TUNNEL) {
      this.readOffload(view, l2);
      out = this.tun.forward(buf, view, l2, l3, ip.totalLength, this.offload, this.nextHops, dest, ref.daddr);
      // Too big for the tunnel without DF (sent in outer fragments): a flow the fast path cannot
      // carry whole stays here (its program demoted it already if it was offloaded). With DF the
      // packet is refused with "fragmentation needed" and the flow may stay in the kernel.
      if (this.fast !== null && out === 0 && this.tun.frames > 1 && this.offload.gsoType === VNET_GSO_NONE) {
        this.fast.keepHere(this.conns, ref.index);
      }
      if (out === DropReason.TOO_BIG && this.tun.icmpMtu > 0) {
        // ensure_mtu_is_adequate: "fragmentation needed" with the tunnel's MTU, from the VIP, for
        // a DF packet only (icmpMtu is 0 for a refusal of any other kind).
        this.icmpOut.toSender(buf, l2, l3, ip.totalLength, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, this.tun.icmpMtu, ip.dst, ingress);
      }
      egress = QUEUED;
    } else {
      out = DropReason.METHOD_UNSUPPORTED;
    }
    if (out !== 0) {
      if (out === DropReason.TTL_EXPIRED) {
        // decrement_ttl: time exceeded, from the VIP (icmp_send's source for a local destination).
        const sent = this.icmpOut.toSender(buf, l2, l3, ip.totalLength, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0, ip.dst, ingress);
        if (sent === 0) {
          this.drop(out);
          return QUEUED;
        }
        if (sent === DropReason.ICMP_RATELIMITED) this.drop(sent);
      }
      this.drop(out);
      return this.tx.pending > 0 && out === DropReason.TOO_BIG ? QUEUED : NO_TX;
    }
    counters.countIn(svc, dest, ip.totalLength);
    if (this.fast !== null) {
      if (method === ForwardMethod.DROUTE) {
        this.fast.seen(this.conns, ref.index, key.protocol, key.saddr, key.sport, key.daddr, key.dport, dest, tcpFlags, this.offload.gsoType !== VNET_GSO_NONE);
      } else if (method === ForwardMethod.MASQ) {
        this.fast.seen(this.conns, ref.index, key.protocol, key.saddr, key.sport, ref.daddr, ref.dport, dest, tcpFlags, this.offload.gsoType !== VNET_GSO_NONE, FastKind.NAT);
      } else if (method === ForwardMethod.TUNNEL) {
        this.fast.seen(this.conns, ref.index, key.protocol, key.saddr, key.sport, key.daddr, key.dport, dest, tcpFlags,
          this.offload.gsoType !== VNET_GSO_NONE, FastKind.TUN, ref.daddr, this.nextHops.srcAddr(dest));
      }
    }
    return egress;
  }

  /**
   * Kernel scheduling (fast-path.ts, "New connections scheduled in the kernel"): creates the
   * entries of the connections the program scheduled, from `n` records of the events ring in
   * `rec` (FAST_EVENT_CELLS cells each), as toService would have for their SYNs: the entry, its
   * real server, the service's and server's connection counts, a NAT entry's hop toward the
   * client; then tracked as an early offer. The SYN's packet and bytes were counted by the
   * program. A record user space cannot take (service gone or inactive, real server no longer
   * available, table full) has its keys taken back. `ifaceOf`: data-plane interface index by
   * ifindex (-1: not captured).
   */
  adoptScheduled(rec: Int32Array, n: number, nowMs: number, ifaceOf: (ifindex: number) => number): void {
    const fast = this.fast;
    if (fast === null) return;
    const key = this.key;
    const ref = this.ref;
    const snapshot = this.snapshot;
    fast.schedCheck(this.conns);
    for (let r = 0; r < n; r++) {
      const at = r * FAST_EVENT_CELLS;
      key.saddr = rec[at]! >>> 0;
      key.daddr = rec[at + 1]! >>> 0;
      key.sport = rec[at + 2]!;
      key.dport = rec[at + 3]!;
      key.protocol = rec[at + 4]!;
      const dest = rec[at + 5]!;
      const svc = rec[at + 6]!;
      const nat = rec[at + 8] === FastKind.NAT;
      const service = this.services[svc];
      let verdict = ConnVerdict.NO_DEST;
      if (service && snapshot !== null && (snapshot.flags(svc) & SvcFlag.ACTIVE) !== 0 && service.addr === key.daddr && service.port === key.dport) {
        verdict = this.connScheduler.adopt(service, key, dest, nowMs, ref);
      }
      if (verdict !== ConnVerdict.FORWARD) {
        fast.refuseScheduled(key.protocol, key.saddr, key.sport, key.daddr, key.dport, nat, this.dests.addr(dest), this.dests.get(dest, DestField.PORT) || key.dport);
        continue;
      }
      this.counters.countConn(svc, dest);
      if (nat) {
        const hop = this.hopCells;
        hop[0] = rec[at + 9]!;
        hop[1] = rec[at + 10]!;
        hop[2] = rec[at + 11]!;
        hop[3] = Traffic.HOP_VALID;
        this.conns.setClientHopCells(ref.index, hop, 0, ifaceOf(rec[at + 7]!));
      }
      fast.adopted(this.conns, ref.index, nowMs);
    }
  }
  private readonly hopCells = new Int32Array(4);

  /** ip_vs_out: a reply from a NAT real server, or not ours. */
  private natReply(buf: Uint8Array, view: DataView, l2: number, tcpFlags: number, nowMs: number): number {
    const ref = this.ref;
    const key = this.key;
    const j = this.slot >= 0 ? this.slotOut[this.slot]! : -1;
    const hit = j >= 0 ? this.conns.batchResult(this.outBatch, j, ref) : this.conns.lookupOut(key.protocol, key.saddr, key.sport, key.daddr, key.dport, ref);
    if (!this.connScheduler.outPacketFound(key, tcpFlags, nowMs, ref, hit)) return this.notOurs();
    this.conns.countReply(ref.index);
    const ip = this.ip;
    const l3 = ip.headerOffset;
    const table = this.conns;
    const vaddr = table.field(ref.index, EntryCell.VADDR) >>> 0;
    const vport = table.field(ref.index, EntryCell.PORTS) & 0xffff;
    const dest = ref.destSlot;
    const partial = this.readOffload(view, l2);
    let out = table.clientHopEgress(ref.index, ref.seq);
    if (out < 0) out = this.clientHops.egressOf(ip.dst);
    const mtu = out >= 0 && out < this.egressMtu.length ? this.egressMtu[out]! : 0;
    const oversize = mtu > 0 && ip.totalLength > mtu && this.offload.gsoType === VNET_GSO_NONE;
    if (oversize && ip.dontFragment && dest >= 0) {
      this.drop(DropReason.TOO_BIG);
      return this.icmpOut.toRealServer(buf, l3, ip.totalLength, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, this.nextHops, dest) === 0 ? QUEUED : NO_TX;
    }
    const egress = forwardNatOut(buf, l2, l3, ip.payloadOffset, ip.protocol, vaddr, vport, partial, table, ref.index, ref.seq, this.clientHops);
    if (egress < 0) {
      if (egress === -DropReason.TTL_EXPIRED && dest >= 0) {
        // The reply's destination is not local: the error comes from the director's address
        // toward the real server, and goes back to it.
        this.drop(DropReason.TTL_EXPIRED);
        const sent = this.icmpOut.toRealServer(buf, l3, ip.totalLength, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0, this.nextHops, dest);
        if (sent === DropReason.ICMP_RATELIMITED) this.drop(sent);
        return sent === 0 ? QUEUED : NO_TX;
      }
      return this.drop(-egress);
    }
    if (oversize) {
      const r = this.refragment(buf, view, l2, l3, ip.totalLength, partial, mtu, egress);
      if (r !== 0) return this.drop(r);
    }
    if (dest >= 0) this.counters.countOut(this.dests.get(dest, DestField.SERVICE), dest, ip.totalLength);
    if (this.fast !== null) this.fast.seenReply(table, ref.index, tcpFlags);
    return oversize ? QUEUED : egress;
  }

  /** The rewritten frame is larger than `mtu` (DF clear): queue it as fragments. */
  private refragment(buf: Uint8Array, view: DataView, l2: number, l3: number, totalLength: number, partial: boolean, mtu: number, egress: number): number {
    // Fragments cannot leave their checksum to the NIC: complete it first.
    if (partial) completePartialChecksum(buf, view, l2 + this.offload.csumStart, l3 + totalLength, this.offload.csumOffset, buf[l3 + 9] === IPPROTO_UDP);
    return this.fragmenter.fragment(buf, view, l2, l3, mtu, egress);
  }

  /**
   * ip_vs_in_icmp / ip_vs_out_icmp: an ICMP error (destination unreachable, source quench, time
   * exceeded) quoting a tracked TCP/UDP flow is sent to the party that owns the flow; anything
   * else ICMP is the kernel's (ping to the VIP, errors about the director's own traffic).
   */
  private icmpError(buf: Uint8Array, view: DataView, l2: number, nowMs: number): number {
    const ip = this.ip;
    const icmp = this.icmp;
    if (ip.isFragment) return this.notOurs();
    if (icmp.decode(buf, view, ip.payloadOffset, ip.payloadLength) !== 0) return this.notOurs();
    const t = icmp.type;
    if (t !== ICMP_DEST_UNREACH && t !== ICMP_SOURCE_QUENCH && t !== ICMP_TIME_EXCEEDED) return this.notOurs();
    const quoted = this.quoted;
    if (icmp.decodeQuote(quoted, buf, view) !== 0) return this.notOurs();
    const proto = quoted.protocol;
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return this.notOurs();
    // A quoted non-first fragment has no transport header: the "ports" are payload bytes and
    // could name any flow. IPVS finds no connection for it; the kernel's ICMP handling has it.
    if (quoted.fragmentOffset !== 0) return this.notOurs();
    const ref = this.ref;
    const table = this.conns;
    const l3 = ip.headerOffset;
    const qsport = icmp.quotedSrcPort;
    const qdport = icmp.quotedDstPort;
    // The quoted packet went VIP:vport → client: the flow is client → VIP (ip_vs_in_icmp).
    if (table.lookupIn(proto, quoted.dst, qdport, quoted.src, qsport, ref)) {
      const dest = ref.destSlot;
      if (dest < 0) return this.notOurs();
      // ip_vs_in_icmp: "Ensure the checksum is correct" before anything is rewritten or sent.
      if (!icmp.verifyChecksum(buf, icmp.headerOffset, ip.payloadLength)) return this.drop(DropReason.BAD_ICMP_CHECKSUM);
      const method = (ref.meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT;
      if (method === ForwardMethod.MASQ) {
        if (decrementTtl(buf, l3) !== 0) return this.drop(DropReason.TTL_EXPIRED);
        natIcmpRewrite(buf, l3, icmp.headerOffset, ip.payloadLength, quoted.headerOffset, icmp.quotedL4Offset, true, ref.daddr, ref.dport);
        this.nextHops.writeMacs(dest, buf, l2);
        return this.nextHops.egress(dest);
      }
      if (method === ForwardMethod.DROUTE) {
        const r = forwardDr(buf, l2, l3, this.nextHops, dest);
        return r === 0 ? this.nextHops.egress(dest) : this.drop(r);
      }
      if (method === ForwardMethod.TUNNEL) {
        const off = this.offload;
        off.csumStart = -1;
        off.gsoType = VNET_GSO_NONE;
        const r = this.tun.forward(buf, view, l2, l3, ip.totalLength, off, this.nextHops, dest, ref.daddr);
        return r === 0 ? QUEUED : this.drop(r);
      }
      return this.notOurs();
    }
    // The quoted packet went client → RIP:rport (a NAT real server's side): ip_vs_out_icmp.
    if (table.lookupOut(proto, quoted.dst, qdport, quoted.src, qsport, ref)) {
      // handle_response_icmp's ip_vs_checksum_complete, the same for the real server's side.
      if (!icmp.verifyChecksum(buf, icmp.headerOffset, ip.payloadLength)) return this.drop(DropReason.BAD_ICMP_CHECKSUM);
      const vaddr = table.field(ref.index, EntryCell.VADDR) >>> 0;
      const vport = table.field(ref.index, EntryCell.PORTS) & 0xffff;
      if (buf[l3 + 8]! <= 1) return this.drop(DropReason.TTL_EXPIRED);
      let egress = table.writeClientHop(ref.index, ref.seq, buf, l2);
      if (egress < 0) egress = this.clientHops.writeMacs(quoted.src, buf, l2);
      if (egress < 0) return this.drop(DropReason.NO_CLIENT_HOP);
      decrementTtl(buf, l3);
      natIcmpRewrite(buf, l3, icmp.headerOffset, ip.payloadLength, quoted.headerOffset, icmp.quotedL4Offset, false, vaddr, vport);
      return egress;
    }
    void nowMs;
    return this.notOurs();
  }

  /** Fills this.offload from the frame's virtio_net_hdr; true when the L4 checksum is partial. */
  private readOffload(view: DataView, l2: number): boolean {
    const off = this.offload;
    if (!this.vnetHdr) {
      off.csumStart = -1;
      off.gsoType = VNET_GSO_NONE;
      off.gsoSize = 0;
      return false;
    }
    const at = l2 - VNET_HDR_LEN;
    const partial = (view.getUint8(at) & VNET_F_NEEDS_CSUM) !== 0;
    off.gsoType = view.getUint8(at + 1);
    off.gsoSize = view.getUint16(at + 4, LITTLE_ENDIAN);
    off.csumStart = partial ? view.getUint16(at + 6, LITTLE_ENDIAN) : -1;
    off.csumOffset = view.getUint16(at + 8, LITTLE_ENDIAN);
    return partial;
  }

  private drop(reason: number): number {
    this.counters.drop(reason);
    return NO_TX;
  }

  private notOurs(): number {
    this.counters.add(WorkerStat.NOT_OURS, 1);
    return NO_TX;
  }
}
