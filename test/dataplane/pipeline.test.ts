// The worker pipeline on frames built with the packet builder: input frame → expected output
// frame and verdict (Katran's fixture style), plus the counters the pipeline leaves behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder } from '../../src/packet/builder';
import { TCP_ACK, TCP_SYN } from '../../src/packet/tcp';
import { DropReason } from '../../src/packet/drop';
import { viewOf } from '../../src/packet/layer';
import { ipv4ToInt } from '../../src/packet/addr';
import { DestTable, DestField, ForwardMethod } from '../../src/tables/dest-table';
import { ServiceSnapshot, type CompiledService } from '../../src/service/snapshot';
import { ConnTable } from '../../src/conn/table';
import type { ConnService } from '../../src/conn/schedule';
import { getSchedulerFactory } from '../../src/sched/index';
import { NextHopTable } from '../../src/tables/next-hop';
import { WorkerCounters, WorkerStat, Stat, STAT_CELLS } from '../../src/dataplane/counters';
import { Pipeline, NO_TX, QUEUED } from '../../src/dataplane/pipeline';

const CLIENT_MAC = '02:00:00:00:00:0a';
const DIRECTOR_MAC = '02:00:00:00:00:02';
const RS_MACS = ['02:00:00:00:00:15', '02:00:00:00:00:16'];
const VIP = '10.77.0.100';
const RIPS = ['10.77.0.21', '10.77.0.22'];

interface Lab {
  pipeline: Pipeline;
  dests: DestTable;
  counters: WorkerCounters;
  nextHops: NextHopTable;
  slots: number[];
  conns: ConnTable;
}

function makeLab(opts: { scheduler?: string; fwd?: ForwardMethod; resolve?: boolean; active?: boolean; weights?: number[] } = {}): Lab {
  const dests = new DestTable(16);
  const conns = new ConnTable(1024, dests, { workerId: 0 });
  const nextHops = new NextHopTable(16);
  const counters = new WorkerCounters({ maxServices: 8, maxDests: 16 });
  const slots: number[] = [];
  RIPS.forEach((rip, i) => {
    const slot = dests.allocate();
    dests.set(slot, DestField.ADDR, ipv4ToInt(rip) | 0);
    dests.set(slot, DestField.PORT, 80);
    dests.set(slot, DestField.WEIGHT, opts.weights?.[i] ?? 1);
    dests.set(slot, DestField.FWD, opts.fwd ?? ForwardMethod.DROUTE);
    dests.set(slot, DestField.SERVICE, 3);
    if (opts.resolve !== false) {
      nextHops.set(slot, { dstMac: RS_MACS[i]!, srcMac: DIRECTOR_MAC, egress: 0, mtu: 1500, srcAddr: ipv4ToInt('10.77.0.2'), viaGateway: false });
    }
    slots.push(slot);
  });
  const scheduler = getSchedulerFactory(opts.scheduler ?? 'rr').create(dests, 0, 16);
  // In the order they were added (the scheduler walks them newest first, like the kernel).
  scheduler.update(slots);
  const compiled: CompiledService = {
    slot: 3, protocol: 6, addr: ipv4ToInt(VIP), port: 80, fwmark: 0, persistTimeout: 0, netmask: 0xffffffff,
    schedIndex: 0, schedFlags: 0, destCount: 2, onePacket: false, active: opts.active ?? true,
  };
  const service: ConnService = {
    protocol: 6, addr: ipv4ToInt(VIP), port: 80, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler,
  };
  const pipeline = new Pipeline({ dests, conns, nextHops, counters });
  const services: (ConnService | null)[] = [null, null, null, service];
  pipeline.setSnapshot(ServiceSnapshot.build(1, 8, [compiled]), services);
  return { pipeline, dests, counters, nextHops, slots, conns };
}

function clientFrame(sport: number, flags: number, ttl = 64, dport = 80, payload = ''): Uint8Array {
  return new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
    .ipv4({ src: '10.77.0.10', dst: VIP, ttl, id: 0x1234, df: true })
    .tcp({ srcPort: sport, dstPort: dport, flags, seq: 1000 })
    .payload(payload)
    .build();
}

function run(lab: Lab, frame: Uint8Array): number {
  return lab.pipeline.process(frame, viewOf(frame), 0, frame.length, 1_000_000);
}

test('DR: SYN to the VIP leaves with the real server MAC, the director MAC as source, TTL - 1', () => {
  const lab = makeLab();
  const input = clientFrame(40000, TCP_SYN);
  const frame = input.slice();
  assert.equal(run(lab, frame), 0);
  // Expected output: the same IP packet with TTL 63 (checksum fixed), new MACs. rr over the
  // kernel's list [rs2, rs1] starts at the head: rs2.
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_MAC, dst: RS_MACS[1]! })
    .ipv4({ src: '10.77.0.10', dst: VIP, ttl: 63, id: 0x1234, df: true })
    .tcp({ srcPort: 40000, dstPort: 80, flags: TCP_SYN, seq: 1000 })
    .build();
  assert.deepEqual(frame, expected);
  const c = lab.counters;
  assert.equal(c.cells[3 * STAT_CELLS + Stat.CONNS], 1);
  assert.equal(c.cells[3 * STAT_CELLS + Stat.INPKTS], 1);
  assert.equal(c.cells[3 * STAT_CELLS + Stat.INBYTES], 40);
  assert.equal(c.cells[c.destBase + lab.slots[1]! * STAT_CELLS + Stat.CONNS], 1);
});

test('DR: later packets of a flow follow it; new flows alternate under rr', () => {
  const lab = makeLab();
  const destMacOf = (f: Uint8Array) => Array.from(f.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    const f = clientFrame(41000 + i, TCP_SYN);
    assert.equal(run(lab, f), 0);
    seen.push(destMacOf(f));
  }
  assert.deepEqual(seen, [RS_MACS[1], RS_MACS[0], RS_MACS[1], RS_MACS[0]]);
  for (let i = 0; i < 4; i++) {
    const f = clientFrame(41000 + i, TCP_ACK, 64, 80, 'GET / HTTP/1.1\r\n\r\n');
    assert.equal(run(lab, f), 0);
    assert.equal(destMacOf(f), seen[i]);
  }
  assert.equal(lab.counters.cells[3 * STAT_CELLS + Stat.CONNS], 4);
  assert.equal(lab.counters.cells[3 * STAT_CELLS + Stat.INPKTS], 8);
});

test('verdicts: TTL 1, no SYN, wrong port, unresolved MAC, inactive service, bad checksum', () => {
  const lab = makeLab();
  assert.equal(run(lab, clientFrame(42000, TCP_SYN, 1)), QUEUED, "answered with ICMP time exceeded");
  assert.equal(lab.counters.drops(DropReason.TTL_EXPIRED), 1);

  assert.equal(run(lab, clientFrame(42001, TCP_ACK)), NO_TX);
  assert.equal(lab.counters.drops(DropReason.NO_CONN), 1);

  // A port with no service is left to the kernel.
  assert.equal(run(lab, clientFrame(42002, TCP_SYN, 64, 81)), NO_TX);
  assert.equal(lab.counters.get(WorkerStat.NOT_OURS), 1);

  const broken = new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
    .ipv4({ src: '10.77.0.10', dst: VIP, checksum: 0xdead })
    .tcp({ srcPort: 42003, dstPort: 80, flags: TCP_SYN })
    .build();
  assert.equal(run(lab, broken), NO_TX);
  assert.equal(lab.counters.drops(DropReason.BAD_IP_CHECKSUM), 1);

  const unresolved = makeLab({ resolve: false });
  assert.equal(run(unresolved, clientFrame(42004, TCP_SYN)), NO_TX);
  assert.equal(unresolved.counters.drops(DropReason.NO_NEXT_HOP), 1);

  const backup = makeLab({ active: false });
  assert.equal(run(backup, clientFrame(42005, TCP_SYN)), NO_TX);
  assert.equal(backup.counters.drops(DropReason.SERVICE_INACTIVE), 1);
});

test('fragments to a VIP are dropped and counted; to another address they are not ours', () => {
  const lab = makeLab();
  const frag = new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
    .ipv4({ src: '10.77.0.10', dst: VIP, mf: true })
    .tcp({ srcPort: 43000, dstPort: 80, flags: TCP_SYN })
    .build();
  assert.equal(run(lab, frag), NO_TX);
  assert.equal(lab.counters.drops(DropReason.IP_FRAGMENT), 1);
  const other = new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
    .ipv4({ src: '10.77.0.10', dst: '10.77.0.2', mf: true })
    .tcp({ srcPort: 43000, dstPort: 80, flags: TCP_SYN })
    .build();
  assert.equal(run(lab, other), NO_TX);
  assert.equal(lab.counters.drops(DropReason.IP_FRAGMENT), 1);
});

test('a quiesced real server (weight 0) gets no new flows but keeps its open one', () => {
  const lab = makeLab();
  const first = clientFrame(44000, TCP_SYN);
  run(lab, first);
  const rs2 = lab.slots[1]!;
  lab.dests.set(rs2, DestField.WEIGHT, 0);
  for (let i = 1; i <= 3; i++) {
    const f = clientFrame(44000 + i, TCP_SYN);
    assert.equal(run(lab, f), 0);
    assert.equal(f[5], 0x15, 'new flows go to rs1');
  }
  const ack = clientFrame(44000, TCP_ACK);
  assert.equal(run(lab, ack), 0);
  assert.equal(ack[5], 0x16, 'the open flow stays on rs2');
});
