// A fake of the pcap binding (pcap.ts PcapBinding) that behaves like pcap_session.cc over
// libpcap's non-blocking immediate-mode read, and a PcapWorker wired to it over real shared tables
// with one DR service — for the unit tests and the micro benchmark of the pcap backend.
import { PCAP_HDR_CAPLEN, PCAP_HDR_LEN, type PcapBinding, type PcapBindingSession, type PcapLinkType, type PcapStats } from '../../src/dataplane/pcap';
import { PcapWorker } from '../../src/dataplane/pcap-loop';
import type { EthtoolOps } from '../../src/dataplane/pcap-offloads';
import type { EthtoolFeature } from '../../src/native/addon';
import type { WorkerInit, WorkerService } from '../../src/dataplane/worker';
import { ipv4ToInt } from '../../src/packet/addr';
import { DestTable, DestField, ForwardMethod } from '../../src/tables/dest-table';
import { ServiceSnapshot } from '../../src/service/snapshot';
import { ConnTable } from '../../src/conn/table';
import { getSchedulerFactory, type Scheduler } from '../../src/sched/index';
import { NextHopTable } from '../../src/tables/next-hop';
import { ClientHopTable } from '../../src/tables/client-hops';
import { WorkerCounters } from '../../src/dataplane/counters';

export const CLIENT_MAC = '02:00:00:00:00:0a';
export const DIRECTOR_MAC = '02:00:00:00:00:02';
export const RS_MAC = '02:00:00:00:00:15';
export const VIP = '10.77.0.100';
export const RIP = '10.77.0.21';

export class FakeSession implements PcapBindingSession {
  static all: FakeSession[] = [];
  device = '';
  filter = '';
  snapLength = 0;
  timeoutMs = -1;
  promiscuous = true;
  onPacket: (() => void) | null = null;
  read_callback?: () => void;
  queue: Uint8Array[] = [];
  injected: Buffer[] = [];
  breakLoop = false;
  closed = false;
  polling = false;
  constructor() {
    FakeSession.all.push(this);
  }
  open_live(device: string, filter: string, _buf: number, snap: number, _dump: string, onPacket: () => void, _mon: boolean, timeout: number,
    _warn: (m: string) => void, promisc: boolean): PcapLinkType {
    Object.assign(this, { device, filter, snapLength: snap, timeoutMs: timeout, promiscuous: promisc, onPacket });
    return 'LINKTYPE_ETHERNET';
  }
  /**
   * What pcap_session.cc over libpcap's non-blocking TPACKET_V3 read does: copy each frame and its
   * lengths, call back; once close() set the break flag, -2 (and the handle freed) only when a
   * packet is there to read, 0 while the ring is empty.
   */
  dispatch(frame: Buffer, header: Buffer): number {
    if (this.closed) throw new Error('dispatch after the handle was freed');
    if (this.breakLoop) {
      if (this.queue.length === 0) return 0;
      this.queue.length = 0;
      this.closed = true;
      this.polling = false;
      return -2;
    }
    const h = new Uint32Array(header.buffer, header.byteOffset, 4);
    for (const f of this.queue.splice(0)) {
      const n = Math.min(f.length, frame.length);
      frame.set(f.subarray(0, n));
      h[PCAP_HDR_CAPLEN] = n;
      h[PCAP_HDR_LEN] = f.length;
      this.onPacket!();
    }
    return 0;
  }
  start_polling(): void {
    this.polling = true;
  }
  inject(frame: Buffer): void {
    this.injected.push(Buffer.from(frame));
  }
  close(): void {
    this.breakLoop = true;
  }
  stats(): PcapStats {
    return { ps_recv: 0, ps_drop: 0, ps_ifdrop: 0 };
  }
}

export const fakePcap: PcapBinding = { PcapSession: FakeSession, lib_version: () => 'fake' };

export class FakeEthtool implements EthtoolOps {
  readonly state = new Map<string, boolean>();
  readonly calls: string[] = [];
  fixed = new Set<string>();
  ethtoolGet(ifname: string, f: EthtoolFeature): boolean {
    return this.state.get(`${ifname}/${f}`) ?? false;
  }
  ethtoolSet(ifname: string, f: EthtoolFeature, on: boolean): void {
    if (this.fixed.has(`${ifname}/${f}`)) throw new Error('Operation not supported');
    this.calls.push(`${ifname} ${f} ${on ? 'on' : 'off'}`);
    this.state.set(`${ifname}/${f}`, on);
  }
}

export interface PcapWorkerFixture {
  worker: PcapWorker;
  counters: WorkerCounters;
  scheduler: Scheduler;
  /** The snapshot message for one DR service VIP:80/TCP → RIP:80 (service slot 3). */
  snapshot: { snapshot: SharedArrayBuffer; services: WorkerService[] };
}

/** A PcapWorker on interface "e0" (MTU 1500) over a fake binding, with one DR real server. */
export function pcapWorkerFixture(opts: { ethtool: FakeEthtool; offloadStatePath: string }): PcapWorkerFixture {
  const dests = new DestTable(16);
  const slot = dests.allocate();
  dests.set(slot, DestField.ADDR, ipv4ToInt(RIP) | 0);
  dests.set(slot, DestField.PORT, 80);
  dests.set(slot, DestField.WEIGHT, 1);
  dests.set(slot, DestField.FWD, ForwardMethod.DROUTE);
  dests.set(slot, DestField.SERVICE, 3);
  const conns = new ConnTable(1024, dests, { workerId: 255 });
  const nextHops = new NextHopTable(16);
  nextHops.set(slot, { dstMac: RS_MAC, srcMac: DIRECTOR_MAC, egress: 0, mtu: 1500, srcAddr: ipv4ToInt('10.77.0.2'), viaGateway: false });
  const clientHops = new ClientHopTable(64);
  const layout = { maxServices: 8, maxDests: 16 };
  const counters = new WorkerCounters(layout);
  const scheduler = getSchedulerFactory('rr').create(dests, 0, 16);
  scheduler.update([slot]);
  const init: WorkerInit = {
    workerId: 0, ifaces: [{ name: 'e0', index: 2 }], fanoutGroupBase: 0, ring: {}, vnetHdr: true, filter: [],
    destCapacity: 16, dests: dests.buffer, connCapacity: conns.capacity, conns: conns.buffer, nextHops: nextHops.buffer,
    clientHopCapacity: clientHops.capacity, clientHops: clientHops.buffer, counterLayout: layout, counters: counters.buffer,
  };
  const worker = new PcapWorker(init, {
    pcap: fakePcap, ethtool: opts.ethtool, ifInfo: () => ({ mac: DIRECTOR_MAC, mtu: 1500 }), offloadStatePath: opts.offloadStatePath,
  });
  const snapshot = ServiceSnapshot.build(1, 8, [{
    slot: 3, protocol: 6, addr: ipv4ToInt(VIP), port: 80, fwmark: 0, persistTimeout: 0, netmask: 0xffffffff,
    schedIndex: 3, schedFlags: 0, destCount: 1, onePacket: false, active: true,
  }]);
  const services: WorkerService[] = [{
    slot: 3, protocol: 6, addr: ipv4ToInt(VIP), port: 80, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff,
    onePacket: false, scheduler: { name: 'rr', flags: 0, shared: scheduler.shared },
  }];
  return { worker, counters, scheduler, snapshot: { snapshot: snapshot.buffer, services } };
}

