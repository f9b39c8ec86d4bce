// A data-plane worker's pipeline without rings, for the robustness suites (the fuzz target and the
// malformed corpus): one director with a TCP and a UDP virtual service on one VIP, two real
// servers each, in a chosen forwarding method, with or without virtio-net headers. Frames are
// handed to Pipeline.process() as a worker hands ring frames; what it queues is read from its
// TxQueue.
//
// The addresses are those of the captured fixtures (test/fixtures/packets: 10.201.0.1 → 10.201.0.2,
// TCP port 8080, UDP port 9), so a captured frame reaches the service as it was captured.
import { ipv4ToInt } from '../../src/packet/addr';
import { DestTable, DestField, type ForwardMethod } from '../../src/tables/dest-table';
import { ServiceSnapshot, type CompiledService } from '../../src/service/snapshot';
import { ConnTable } from '../../src/conn/table';
import type { ConnService } from '../../src/conn/schedule';
import { getSchedulerFactory } from '../../src/sched/index';
import { NextHopTable } from '../../src/tables/next-hop';
import { ClientHopTable } from '../../src/tables/client-hops';
import { WorkerCounters, WorkerStat } from '../../src/dataplane/counters';
import { Pipeline } from '../../src/dataplane/pipeline';
import { DROP_REASON_COUNT } from '../../src/packet/drop';

export const CLIENT_MAC = '02:00:00:00:00:0a';
export const DIRECTOR_MAC = '02:00:00:00:00:02';
export const DIRECTOR_RS_MAC = '02:00:00:00:01:02';
export const RS_MACS = ['02:00:00:00:01:15', '02:00:00:00:01:16'];
/** The fixtures' client and server: the server address is the VIP here. */
export const CLIENT = '10.201.0.1';
export const VIP = '10.201.0.2';
export const DIP = '10.78.0.1';
export const RIPS = ['10.78.0.21', '10.78.0.22'];
export const TCP_PORT = 8080;
export const UDP_PORT = 9;
/** NAT translates the UDP service's port (the TCP one keeps 8080). */
export const UDP_RPORT = 5353;
/** The real servers' MTU toward the director's RS side. */
export const RS_MTU = 1500;

export interface PipelineLab {
  pipeline: Pipeline;
  conns: ConnTable;
  counters: WorkerCounters;
  fwd: ForwardMethod;
  vnet: boolean;
  /** Number of egress interfaces (0: clients, 1: real servers, 2: spare). */
  egressCount: number;
}

export function makePipelineLab(fwd: ForwardMethod, vnet: boolean, connMax = 4096, batchMinEntries?: number): PipelineLab {
  const dests = new DestTable(16);
  const conns = new ConnTable(connMax, dests, { workerId: 0 });
  const nextHops = new NextHopTable(16);
  const counters = new WorkerCounters({ maxServices: 8, maxDests: 16 });
  const compiled: CompiledService[] = [];
  const services: (ConnService | null)[] = [null, null, null, null, null];
  for (const [slot, protocol, port, rport] of [[3, 6, TCP_PORT, TCP_PORT], [4, 17, UDP_PORT, UDP_RPORT]] as const) {
    const slots: number[] = [];
    RIPS.forEach((rip, i) => {
      const d = dests.allocate();
      dests.set(d, DestField.ADDR, ipv4ToInt(rip) | 0);
      dests.set(d, DestField.PORT, rport);
      dests.set(d, DestField.WEIGHT, 1);
      dests.set(d, DestField.FWD, fwd);
      dests.set(d, DestField.SERVICE, slot);
      nextHops.set(d, { dstMac: RS_MACS[i]!, srcMac: DIRECTOR_RS_MAC, egress: 1, mtu: RS_MTU, srcAddr: ipv4ToInt(DIP), viaGateway: false });
      slots.push(d);
    });
    const scheduler = getSchedulerFactory('rr').create(dests, 0, 16);
    scheduler.update(slots);
    compiled.push({
      slot, protocol, addr: ipv4ToInt(VIP), port, fwmark: 0, persistTimeout: 0, netmask: 0xffffffff,
      schedIndex: 0, schedFlags: 0, destCount: 2, onePacket: false, active: true,
    });
    services[slot] = { protocol, addr: ipv4ToInt(VIP), port, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler };
  }
  const clientHops = new ClientHopTable(8);
  const egressCount = 3;
  const pipeline = new Pipeline({ dests, conns, nextHops, counters, clientHops, vnetHdr: vnet, egressCount, egressMtu: [1500, 1500, 1500], batchMinEntries });
  pipeline.setSnapshot(ServiceSnapshot.build(1, 8, compiled), services);
  return { pipeline, conns, counters, fwd, vnet, egressCount };
}

/** Sum of every drop reason's counter. */
export function totalDrops(c: WorkerCounters): number {
  let n = 0;
  for (let r = 1; r < DROP_REASON_COUNT; r++) n += c.drops(r);
  return n;
}

export function notOurs(c: WorkerCounters): number {
  return c.get(WorkerStat.NOT_OURS);
}

/** The frames the pipeline queued, per egress, copied out; the queue is reset. */
export function drainTx(lab: PipelineLab): { egress: number; bytes: Uint8Array }[] {
  const tx = lab.pipeline.tx;
  const out: { egress: number; bytes: Uint8Array }[] = [];
  for (let e = 0; e < tx.counts.length; e++) {
    for (let i = 0; i < tx.counts[e]!; i++) {
      const at = tx.offsets[e]![i]!;
      out.push({ egress: e, bytes: tx.buffer.slice(at, at + tx.lengths[e]![i]!) });
    }
  }
  tx.reset();
  return out;
}
