// What one data-plane worker does to one frame: parse → classify → connection lookup or schedule
// → rewrite, in place. The worker loop (worker.ts) feeds it frames from the ring and transmits
// what it returns; tests feed it frames built with the packet builder and compare the bytes.
//
// Classification follows IPVS's ip_vs_in / ip_vs_out:
//   - a packet to a virtual service (protocol, VIP, port — or the VIP's port-0 persistent service)
//     finds its connection or is scheduled (ConnScheduler.inPacket), then is rewritten for the
//     entry's forwarding method;
//   - a packet from a NAT real server that matches a connection is a reply (ConnScheduler.outPacket);
//   - anything else is not ours: the kernel, which sees the same frame, deals with it.
//
// Per packet: no allocation, no closures, no strings. The objects used here (headers, key, ref)
// are allocated once per Pipeline.

import { DropReason } from '../packet/drop';
import { EthernetHeader, ETHERTYPE_IPV4 } from '../packet/ethernet';
import { Ipv4Header, IPPROTO_TCP, IPPROTO_UDP } from '../packet/ipv4';
import { TcpHeader } from '../packet/tcp';
import { UdpHeader } from '../packet/udp';
import type { PacketKey } from '../sched/scheduler';
import type { DestTable } from '../service/dest-table';
import { ForwardMethod } from '../service/dest-table';
import { SvcFlag, type ServiceSnapshot } from '../service/snapshot';
import { ConnRef, Meta, type ConnTable } from '../conn/table';
import { ConnScheduler, ConnVerdict, type ConnService } from '../conn/schedule';
import { forwardDr } from '../forward/dr';
import type { NextHopTable } from './next-hop';
import { WorkerStat, type WorkerCounters } from './counters';

/** process() result when the frame is not to be transmitted. */
export const NO_TX = -1;

export interface PipelineDeps {
  dests: DestTable;
  conns: ConnTable;
  nextHops: NextHopTable;
  counters: WorkerCounters;
}

export class Pipeline {
  private readonly eth = new EthernetHeader();
  private readonly ip = new Ipv4Header();
  private readonly tcp = new TcpHeader();
  private readonly udp = new UdpHeader();
  private readonly key: PacketKey = { protocol: 0, saddr: 0, sport: 0, daddr: 0, dport: 0 };
  private readonly ref = new ConnRef();
  private readonly connScheduler: ConnScheduler;
  private readonly nextHops: NextHopTable;
  private readonly counters: WorkerCounters;
  private snapshot: ServiceSnapshot | null = null;
  /** ConnService per service slot of the current snapshot (null: no such service). */
  private services: (ConnService | null)[] = [];

  constructor(deps: PipelineDeps) {
    this.connScheduler = new ConnScheduler(deps.conns);
    this.nextHops = deps.nextHops;
    this.counters = deps.counters;
  }

  /** Switches to a new service snapshot; called between batches. */
  setSnapshot(snapshot: ServiceSnapshot, services: (ConnService | null)[]): void {
    this.snapshot = snapshot;
    this.services = services;
    this.counters.set(WorkerStat.SNAPSHOT_GEN, snapshot.generation);
  }

  /**
   * Processes the frame buf[l2 .. l2 + length) in place. Returns the egress interface index to
   * transmit it on, or NO_TX (not ours, or dropped and counted).
   */
  process(buf: Uint8Array, view: DataView, l2: number, length: number, nowMs: number): number {
    const counters = this.counters;
    const eth = this.eth;
    let r = eth.decode(buf, view, l2, length);
    if (r !== 0) return this.drop(r);
    if (eth.etherType !== ETHERTYPE_IPV4) return this.notOurs();

    const ip = this.ip;
    r = ip.decode(buf, view, eth.payloadOffset, eth.payloadLength);
    if (r !== 0) return this.drop(r);
    const protocol = ip.protocol;
    if (protocol !== IPPROTO_TCP && protocol !== IPPROTO_UDP) return this.notOurs();
    const snapshot = this.snapshot;
    if (snapshot === null) return this.notOurs();

    const key = this.key;
    let tcpFlags = 0;
    if (ip.isFragment) {
      // Only the first fragment carries ports; IPVS sees reassembled datagrams (it runs after
      // defragmentation). Fragmented traffic to a virtual service is dropped and counted until
      // uvs reassembles (issue: data plane II).
      if (snapshot.hasAddress(protocol, ip.dst)) return this.drop(DropReason.IP_FRAGMENT);
      return this.notOurs();
    }
    if (protocol === IPPROTO_TCP) {
      r = this.tcp.decode(buf, view, ip.payloadOffset, ip.payloadLength);
      if (r !== 0) return this.drop(r);
      key.sport = this.tcp.srcPort;
      key.dport = this.tcp.dstPort;
      tcpFlags = this.tcp.flags;
    } else {
      r = this.udp.decode(buf, view, ip.payloadOffset, ip.payloadLength);
      if (r !== 0) return this.drop(r);
      key.sport = this.udp.srcPort;
      key.dport = this.udp.dstPort;
    }
    key.protocol = protocol;
    key.saddr = ip.src;
    key.daddr = ip.dst;

    let svc = snapshot.lookup(protocol, ip.dst, key.dport);
    // __ip_vs_service_find: a persistent port-zero service catches every port of its VIP.
    if (svc < 0) svc = snapshot.lookup(protocol, ip.dst, 0);
    if (svc >= 0) {
      const service = this.services[svc];
      if (!service || (snapshot.flags(svc) & SvcFlag.ACTIVE) === 0) return this.drop(DropReason.SERVICE_INACTIVE);
      const ref = this.ref;
      const verdict = this.connScheduler.inPacket(service, key, tcpFlags, nowMs, ref);
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
        default:
          return this.notOurs();
      }
      const dest = ref.destSlot;
      if (this.connScheduler.created) counters.countConn(svc, dest);
      const method = (ref.meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT;
      const l3 = eth.payloadOffset;
      let out: number;
      if (method === ForwardMethod.DROUTE) {
        out = forwardDr(buf, l2, l3, this.nextHops, dest);
      } else {
        // NAT and TUN arrive with the data plane II issue; until then such services are
        // listed and counted but their packets are dropped with a reason that says so.
        out = DropReason.METHOD_UNSUPPORTED;
      }
      if (out !== 0) return this.drop(out);
      counters.countIn(svc, dest, ip.totalLength);
      return this.nextHops.egress(dest);
    }
    return this.notOurs();
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
