// NAT, TUN, ICMP and the odd cases through the worker pipeline, as fixtures: input frame →
// expected output frame (built independently with the packet builder, checksums computed in
// full) and verdict, plus the counters left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder } from '../../src/packet/builder';
import { TCP_ACK, TCP_PSH, TCP_SYN, TcpHeader } from '../../src/packet/tcp';
import { DropReason } from '../../src/packet/drop';
import { viewOf } from '../../src/packet/layer';
import { ipv4ToInt } from '../../src/packet/addr';
import { foldSum, onesComplementSum, pseudoHeaderSum } from '../../src/packet/checksum';
import { DestTable, DestField, ForwardMethod } from '../../src/tables/dest-table';
import { ServiceSnapshot, type CompiledService } from '../../src/service/snapshot';
import { ConnTable, SYNC_RECORD_CELLS } from '../../src/conn/table';
import type { ConnService } from '../../src/conn/schedule';
import { getSchedulerFactory } from '../../src/sched/index';
import { NextHopTable } from '../../src/tables/next-hop';
import { ClientHopTable } from '../../src/tables/client-hops';
import { WorkerCounters, WorkerStat, Stat, STAT_CELLS } from '../../src/dataplane/counters';
import { Pipeline, NO_TX, QUEUED } from '../../src/dataplane/pipeline';

const CLIENT_MAC = '02:00:00:00:00:0a';
const DIRECTOR_MAC = '02:00:00:00:00:02';
const DIRECTOR_RS_MAC = '02:00:00:00:01:02';
const RS_MACS = ['02:00:00:00:01:15', '02:00:00:00:01:16'];
const CLIENT = '10.77.0.10';
const VIP = '10.77.0.100';
const DIP = '10.78.0.1';
const RIPS = ['10.78.0.21', '10.78.0.22'];

interface Lab {
  pipeline: Pipeline;
  conns: ConnTable;
  clientHops: ClientHopTable;
  dests: DestTable;
  counters: WorkerCounters;
  slots: number[];
}

function makeLab(opts: { fwd: ForwardMethod; proto?: number; rport?: number; mtu?: number; vnet?: boolean; connMax?: number; egressMtu?: number[] }): Lab {
  const dests = new DestTable(16);
  const conns = new ConnTable(opts.connMax ?? 1024, dests, { workerId: 0 });
  const nextHops = new NextHopTable(16);
  const counters = new WorkerCounters({ maxServices: 8, maxDests: 16 });
  const slots: number[] = [];
  RIPS.forEach((rip, i) => {
    const slot = dests.allocate();
    dests.set(slot, DestField.ADDR, ipv4ToInt(rip) | 0);
    dests.set(slot, DestField.PORT, opts.rport ?? 80);
    dests.set(slot, DestField.WEIGHT, 1);
    dests.set(slot, DestField.FWD, opts.fwd);
    dests.set(slot, DestField.SERVICE, 3);
    nextHops.set(slot, { dstMac: RS_MACS[i]!, srcMac: DIRECTOR_RS_MAC, egress: 1, mtu: opts.mtu ?? 1500, srcAddr: ipv4ToInt(DIP), viaGateway: false });
    slots.push(slot);
  });
  const scheduler = getSchedulerFactory('rr').create(dests, 0, 16);
  scheduler.update(slots);
  const proto = opts.proto ?? 6;
  const compiled: CompiledService = {
    slot: 3, protocol: proto, addr: ipv4ToInt(VIP), port: 80, fwmark: 0, persistTimeout: 0, netmask: 0xffffffff,
    schedIndex: 0, schedFlags: 0, destCount: 2, onePacket: false, active: true,
  };
  const service: ConnService = {
    protocol: proto, addr: ipv4ToInt(VIP), port: 80, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler,
  };
  const clientHops = new ClientHopTable(8);
  const pipeline = new Pipeline({ dests, conns, nextHops, counters, clientHops, vnetHdr: opts.vnet ?? false, egressCount: 3, egressMtu: opts.egressMtu });
  pipeline.setSnapshot(ServiceSnapshot.build(1, 8, [compiled]), [null, null, null, service]);
  return { pipeline, conns, clientHops, dests, counters, slots };
}

function run(lab: Lab, frame: Uint8Array, ingress = 0, l2 = 0): number {
  return lab.pipeline.process(frame, viewOf(frame), l2, frame.length - l2, 1_000_000, ingress);
}

/** The frames the pipeline queued in its TX buffer for `egress`, copied out. */
function queued(lab: Lab, egress: number): Uint8Array[] {
  const tx = lab.pipeline.tx;
  const out: Uint8Array[] = [];
  for (let i = 0; i < tx.counts[egress]!; i++) {
    const at = tx.offsets[egress]![i]!;
    out.push(tx.buffer.slice(at, at + tx.lengths[egress]![i]!));
  }
  return out;
}

function tcpFrame(o: { srcMac?: string; dstMac?: string; src: string; dst: string; sport: number; dport: number; flags: number; ttl?: number; df?: boolean; payload?: Uint8Array | string; options?: Uint8Array; id?: number; tos?: number }): Uint8Array {
  return new PacketBuilder()
    .eth({ src: o.srcMac ?? CLIENT_MAC, dst: o.dstMac ?? DIRECTOR_MAC })
    .ipv4({ src: o.src, dst: o.dst, ttl: o.ttl ?? 64, id: o.id ?? 0x1234, df: o.df ?? true, options: o.options, tos: o.tos ?? 0 })
    .tcp({ srcPort: o.sport, dstPort: o.dport, flags: o.flags, seq: 1000, ack: 0 })
    .payload(o.payload ?? '')
    .build();
}

/** The frame behind an all-zero virtio_net_hdr (nothing offloaded). */
function withVnet(frame: Uint8Array): Uint8Array {
  const f = new Uint8Array(10 + frame.length);
  f.set(frame, 10);
  return f;
}

// ---- NAT ---------------------------------------------------------------------------------------

test('NAT: client → VIP:80 leaves as client → RIP:8080 (port translation), TTL − 1, RS MACs', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, rport: 8080 });
  const frame = tcpFrame({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: TCP_SYN });
  assert.equal(run(lab, frame), 1, 'egress toward the real servers');
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_RS_MAC, dst: RS_MACS[1]! })
    .ipv4({ src: CLIENT, dst: RIPS[1]!, ttl: 63, id: 0x1234, df: true })
    .tcp({ srcPort: 40000, dstPort: 8080, flags: TCP_SYN, seq: 1000, ack: 0 })
    .build();
  assert.deepEqual(frame, expected);
});

test('NAT: the reply RIP:8080 → client leaves as VIP:80 → client toward the client, counted as OutPkts', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, rport: 8080 });
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40001, dport: 80, flags: TCP_SYN }), 0);
  const reply = tcpFrame({ srcMac: RS_MACS[1]!, dstMac: DIRECTOR_RS_MAC, src: RIPS[1]!, dst: CLIENT, sport: 8080, dport: 40001, flags: TCP_SYN | TCP_ACK, payload: 'hello' });
  assert.equal(run(lab, reply, 1), 0, 'egress: the interface the client came in on');
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_MAC, dst: CLIENT_MAC })
    .ipv4({ src: VIP, dst: CLIENT, ttl: 63, id: 0x1234, df: true })
    .tcp({ srcPort: 80, dstPort: 40001, flags: TCP_SYN | TCP_ACK, seq: 1000, ack: 0 })
    .payload('hello')
    .build();
  assert.deepEqual(reply, expected);
  const c = lab.counters.cells;
  assert.equal(c[3 * STAT_CELLS + Stat.OUTPKTS], 1);
  assert.equal(c[3 * STAT_CELLS + Stat.OUTBYTES], 45);
  assert.equal(c[lab.counters.destBase + lab.slots[1]! * STAT_CELLS + Stat.OUTPKTS], 1);
});

test('NAT: a reply to a client never seen is dropped (NO_CLIENT_HOP); an unrelated packet is not ours', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ });
  const stray = tcpFrame({ srcMac: RS_MACS[0]!, dstMac: DIRECTOR_RS_MAC, src: RIPS[0]!, dst: CLIENT, sport: 80, dport: 40002, flags: TCP_ACK });
  assert.equal(run(lab, stray, 1), NO_TX);
  assert.equal(lab.counters.drops(DropReason.NO_CLIENT_HOP), 0, 'no entry: not a reply at all');
});

test('NAT: spoofed frames with the client\'s address from another MAC and interface do not move its replies', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, rport: 8080 });
  const SPOOF_MAC = '02:00:00:00:00:66';
  const SPOOF_OWN = '02:00:00:00:02:02';
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 41000, dport: 80, flags: TCP_SYN }), 0);
  // Same source address, other ports (a colliding source), from another MAC on interface 2...
  for (let p = 0; p < 50; p++) {
    assert.equal(run(lab, tcpFrame({ srcMac: SPOOF_MAC, dstMac: SPOOF_OWN, src: CLIENT, dst: VIP, sport: 42000 + p, dport: 80, flags: TCP_SYN }), 2), 1);
  }
  // ...and the very same connection, later packets from the spoofer.
  run(lab, tcpFrame({ srcMac: SPOOF_MAC, dstMac: SPOOF_OWN, src: CLIENT, dst: VIP, sport: 41000, dport: 80, flags: TCP_ACK }), 2);
  const rs = lab.conns.list(1_000_000).find((e) => e.cport === 41000)!;
  const reply = tcpFrame({ srcMac: RS_MACS[rs.destSlot === lab.slots[0] ? 0 : 1]!, dstMac: DIRECTOR_RS_MAC, src: rs.daddr === ipv4ToInt(RIPS[0]!) ? RIPS[0]! : RIPS[1]!, dst: CLIENT, sport: 8080, dport: 41000, flags: TCP_SYN | TCP_ACK });
  assert.equal(run(lab, reply, 1), 0, 'out the interface the real client came in on');
  assert.deepEqual(Array.from(reply.subarray(0, 12)), [...macBytes(CLIENT_MAC), ...macBytes(DIRECTOR_MAC)]);
  // The spoofer's own connections answer toward the spoofer's side, each exactly.
  const spoofed = lab.conns.list(1_000_000).find((e) => e.cport === 42007)!;
  const back = tcpFrame({ srcMac: RS_MACS[0]!, dstMac: DIRECTOR_RS_MAC, src: spoofed.daddr === ipv4ToInt(RIPS[0]!) ? RIPS[0]! : RIPS[1]!, dst: CLIENT, sport: 8080, dport: 42007, flags: TCP_SYN | TCP_ACK });
  assert.equal(run(lab, back, 1), 2);
  assert.deepEqual(Array.from(back.subarray(0, 12)), [...macBytes(SPOOF_MAC), ...macBytes(SPOOF_OWN)]);
});

test('NAT: an entry without its own next hop (connection sync) replies by the resolved client route, else NO_CLIENT_HOP', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, rport: 8080 });
  // Export an entry the pipeline made and import it into a fresh table: the record carries no hop.
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 41100, dport: 80, flags: TCP_SYN }), 0);
  const rec = new Int32Array(SYNC_RECORD_CELLS * 4);
  const { records } = lab.conns.exportBatch(0, rec, 1_000_000);
  assert.equal(records, 1);
  const e = lab.conns.list(1_000_000)[0]!;
  lab.conns.remove(e.index, lab.conns.seqOf(e.index));
  assert.ok(lab.conns.importEntry(rec, 0, e.destSlot, 1_000_000) >= 0);
  const rip = e.daddr === ipv4ToInt(RIPS[0]!) ? RIPS[0]! : RIPS[1]!;
  const mkReply = (): Uint8Array => tcpFrame({ srcMac: RS_MACS[0]!, dstMac: DIRECTOR_RS_MAC, src: rip, dst: CLIENT, sport: 8080, dport: 41100, flags: TCP_ACK });
  assert.equal(run(lab, mkReply(), 1), NO_TX);
  assert.equal(lab.counters.drops(DropReason.NO_CLIENT_HOP), 1);
  const GW_MAC = '02:00:00:00:00:01';
  lab.clientHops.setRoutes([
    { prefix: 0, prefixLen: 0, nextHopMac: '02:00:00:00:00:99', ownMac: DIRECTOR_RS_MAC, egress: 1 },
    { prefix: ipv4ToInt('10.77.0.0'), prefixLen: 16, nextHopMac: GW_MAC, ownMac: DIRECTOR_MAC, egress: 0 },
  ]);
  const reply = mkReply();
  assert.equal(run(lab, reply, 1), 0, 'the longest route wins');
  assert.deepEqual(Array.from(reply.subarray(0, 12)), [...macBytes(GW_MAC), ...macBytes(DIRECTOR_MAC)]);
});

test('flood defence through the pipeline: spoofed SYNs fill the table, the sweep evicts them (counted per worker), a real client gets in', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, connMax: 64 });
  for (let i = 0; i < 64; i++) {
    assert.equal(run(lab, tcpFrame({ src: `198.18.0.${i + 1}`, dst: VIP, sport: 1000 + i, dport: 80, flags: TCP_SYN })), 1);
  }
  assert.equal(run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 43000, dport: 80, flags: TCP_SYN })), NO_TX);
  assert.equal(lab.counters.drops(DropReason.CONN_TABLE_FULL), 1);
  // The worker loop's sweep, 300 ms later (the SYN grace at a full table is 200 ms).
  assert.equal(lab.conns.expire(1_000_300, 512), 64);
  assert.equal(lab.counters.get(WorkerStat.EVICT_SYN), 64);
  assert.equal(run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 43000, dport: 80, flags: TCP_SYN }), 0), 1);
});

function macBytes(mac: string): number[] {
  return mac.split(':').map((x) => parseInt(x, 16));
}

test('NAT UDP: checksum updated like a full recomputation; a zero ("none") checksum stays zero', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, proto: 17, rport: 5353 });
  const mk = (sport: number, checksum?: number) => new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
    .ipv4({ src: CLIENT, dst: VIP, ttl: 64, id: 7 })
    .udp({ srcPort: sport, dstPort: 80, checksum })
    .payload('query')
    .build();
  const f = mk(5000);
  assert.equal(run(lab, f), 1);
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_RS_MAC, dst: RS_MACS[1]! })
    .ipv4({ src: CLIENT, dst: RIPS[1]!, ttl: 63, id: 7 })
    .udp({ srcPort: 5000, dstPort: 5353 })
    .payload('query')
    .build();
  assert.deepEqual(f, expected);
  const z = mk(5001, 0);
  assert.equal(run(lab, z), 1);
  assert.equal((z[14 + 20 + 6]! << 8) | z[14 + 20 + 7]!, 0);
  assert.equal((z[14 + 20 + 2]! << 8) | z[14 + 20 + 3]!, 5353);
});

test('NAT with CHECKSUM_PARTIAL: the pseudo-header sum follows the address, the port change is not folded in', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, rport: 8080, vnet: true });
  const inner = tcpFrame({ src: CLIENT, dst: VIP, sport: 40003, dport: 80, flags: TCP_ACK | TCP_PSH, payload: 'x'.repeat(100), df: true });
  // The sender left the checksum to the NIC: the field holds fold(pseudo-header sum).
  const tcpLen = inner.length - 34;
  const partialField = (src: string, dst: string) => foldSum(pseudoHeaderSum(ipv4ToInt(src), ipv4ToInt(dst), 6, tcpLen));
  const frame = new Uint8Array(10 + inner.length);
  frame.set(inner, 10);
  frame[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
  const v = viewOf(frame);
  v.setUint16(6, 34, true); // csum_start (host order, little-endian here)
  v.setUint16(8, 16, true); // csum_offset
  v.setUint16(10 + 34 + 16, partialField(CLIENT, VIP));
  // A SYN first: sloppy_tcp is off, so the flow must exist.
  run(lab, withVnet(tcpFrame({ src: CLIENT, dst: VIP, sport: 40003, dport: 80, flags: TCP_SYN })), 0, 10);
  assert.equal(run(lab, frame, 0, 10), 1);
  assert.equal(v.getUint16(10 + 34 + 16), partialField(CLIENT, RIPS[1]!));
  assert.equal(v.getUint16(10 + 34 + 2), 8080);
  // What the NIC then computes verifies.
  const check = ~foldSum(onesComplementSum(frame, 10 + 34, tcpLen)) & 0xffff;
  v.setUint16(10 + 34 + 16, check);
  assert.ok(new TcpHeader().verifyChecksum(frame, 10 + 34, tcpLen, ipv4ToInt(CLIENT), ipv4ToInt(RIPS[1]!)));
});

// ---- TUN ---------------------------------------------------------------------------------------

test('TUN: TTL − 1 on the inner packet, outer IPv4 (proto 4, DIP → RIP, DF and TOS copied) built in the TX buffer', () => {
  const lab = makeLab({ fwd: ForwardMethod.TUNNEL });
  const frame = tcpFrame({ src: CLIENT, dst: VIP, sport: 40010, dport: 80, flags: TCP_SYN, tos: 0x10 });
  const copy = frame.slice();
  assert.equal(run(lab, frame), QUEUED);
  assert.deepEqual(frame, copy, 'the ring frame is left as it was');
  const out = queued(lab, 1);
  assert.equal(out.length, 1);
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_RS_MAC, dst: RS_MACS[1]! })
    .ipv4({ src: DIP, dst: RIPS[1]!, ttl: 63, id: 1, df: true, tos: 0x10, protocol: 4 })
    .ipv4({ src: CLIENT, dst: VIP, ttl: 63, id: 0x1234, df: true, tos: 0x10 })
    .tcp({ srcPort: 40010, dstPort: 80, flags: TCP_SYN, seq: 1000, ack: 0 })
    .build();
  assert.deepEqual(out[0], expected);
  assert.equal(lab.counters.cells[3 * STAT_CELLS + Stat.INPKTS], 1);
});

test('TUN: a DF packet that no longer fits gets ICMP "fragmentation needed" with MTU − 20, from the VIP', () => {
  const lab = makeLab({ fwd: ForwardMethod.TUNNEL, mtu: 1500 });
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40011, dport: 80, flags: TCP_SYN }));
  lab.pipeline.tx.reset();
  const big = tcpFrame({ src: CLIENT, dst: VIP, sport: 40011, dport: 80, flags: TCP_ACK, payload: new Uint8Array(1460) });
  assert.equal(big.length, 14 + 1500);
  assert.equal(run(lab, big, 0), QUEUED);
  assert.equal(lab.counters.drops(DropReason.TOO_BIG), 1);
  assert.equal(queued(lab, 1).length, 0, 'nothing to the real server');
  const icmp = queued(lab, 0);
  assert.equal(icmp.length, 1);
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_MAC, dst: CLIENT_MAC })
    .ipv4({ src: VIP, dst: CLIENT, ttl: 64, id: 1, tos: 0xc0 })
    .icmp({ type: 3, code: 4, nextHopMtu: 1480 })
    .payload(big.slice(14, 14 + 548))
    .build();
  assert.deepEqual(icmp[0], expected);
});

test('TUN: without DF a packet that no longer fits goes out as outer fragments that reassemble', () => {
  const lab = makeLab({ fwd: ForwardMethod.TUNNEL, mtu: 1500 });
  const syn = tcpFrame({ src: CLIENT, dst: VIP, sport: 40012, dport: 80, flags: TCP_SYN, df: false });
  run(lab, syn);
  lab.pipeline.tx.reset();
  const big = tcpFrame({ src: CLIENT, dst: VIP, sport: 40012, dport: 80, flags: TCP_ACK, payload: new Uint8Array(1460).fill(0x5a), df: false });
  assert.equal(run(lab, big), QUEUED);
  const frags = queued(lab, 1);
  assert.equal(frags.length, 2);
  const parts: { off: number; mf: boolean; data: Uint8Array }[] = frags.map((f) => {
    const v = viewOf(f);
    assert.ok(f.length - 14 <= 1500);
    assert.equal(f[14 + 9], 4);
    const fo = v.getUint16(14 + 6);
    return { off: (fo & 0x1fff) * 8, mf: (fo & 0x2000) !== 0, data: f.slice(34) };
  });
  parts.sort((a, b) => a.off - b.off);
  assert.equal(parts[0]!.off, 0);
  assert.equal(parts[0]!.mf, true);
  assert.equal(parts[1]!.off, parts[0]!.data.length);
  assert.equal(parts[1]!.mf, false);
  const inner = new Uint8Array(parts[0]!.data.length + parts[1]!.data.length);
  inner.set(parts[0]!.data, 0);
  inner.set(parts[1]!.data, parts[0]!.data.length);
  const want = big.slice(14);
  want[8] = 63;
  const v = viewOf(want);
  v.setUint16(10, 0);
  v.setUint16(10, ~foldSum(onesComplementSum(want, 0, 20)) & 0xffff);
  assert.deepEqual(inner, want);
});

test('TUN: a TCP GSO super-frame is cut into gso_size segments with full checksums', () => {
  const lab = makeLab({ fwd: ForwardMethod.TUNNEL, vnet: true });
  run(lab, withVnet(tcpFrame({ src: CLIENT, dst: VIP, sport: 40013, dport: 80, flags: TCP_SYN })), 0, 10);
  lab.pipeline.tx.reset();
  const data = new Uint8Array(3000);
  for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
  const inner = tcpFrame({ src: CLIENT, dst: VIP, sport: 40013, dport: 80, flags: TCP_ACK | TCP_PSH, payload: data });
  const frame = new Uint8Array(10 + inner.length);
  frame.set(inner, 10);
  const v = viewOf(frame);
  frame[0] = 1;
  frame[1] = 1; // GSO_TCPV4
  v.setUint16(4, 1000, true); // gso_size
  v.setUint16(6, 34, true);
  v.setUint16(8, 16, true);
  v.setUint16(10 + 34 + 16, 0x1111); // whatever the sender left there: recomputed per segment
  assert.equal(run(lab, frame, 0, 10), QUEUED);
  const segs = queued(lab, 1);
  assert.equal(segs.length, 3);
  const tcp = new TcpHeader();
  segs.forEach((s, i) => {
    const sv = viewOf(s);
    assert.deepEqual(Array.from(s.subarray(0, 10)), new Array(10).fill(0), 'virtio_net_hdr: nothing left to offload');
    const outer = 10 + 14;
    const innerAt = outer + 20;
    assert.equal(sv.getUint16(outer + 2), 20 + 40 + 1000);
    assert.equal(sv.getUint16(innerAt + 2), 40 + 1000);
    assert.equal(sv.getUint16(innerAt + 4), (0x1234 + i) & 0xffff);
    assert.equal(s[innerAt + 8], 63);
    assert.equal(foldSum(onesComplementSum(s, innerAt, 20)), 0xffff, 'inner IP checksum');
    assert.equal(sv.getUint32(innerAt + 20 + 4), 1000 + i * 1000);
    assert.equal(s[innerAt + 20 + 13], i === 2 ? TCP_ACK | TCP_PSH : TCP_ACK);
    assert.ok(tcp.verifyChecksum(s, innerAt + 20, 1020, ipv4ToInt(CLIENT), ipv4ToInt(VIP)), `segment ${i} TCP checksum`);
    assert.deepEqual(s.subarray(innerAt + 40), data.subarray(i * 1000, i * 1000 + 1000));
  });
});

// ---- TTL, ICMP errors, options, full table -----------------------------------------------------

test('TTL 1: dropped and answered with ICMP time exceeded from the VIP, back out the ingress interface', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ });
  const f = tcpFrame({ src: CLIENT, dst: VIP, sport: 40020, dport: 80, flags: TCP_SYN, ttl: 1 });
  const copy = f.slice();
  assert.equal(run(lab, f, 0), QUEUED);
  assert.deepEqual(f, copy);
  assert.equal(lab.counters.drops(DropReason.TTL_EXPIRED), 1);
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_MAC, dst: CLIENT_MAC })
    .ipv4({ src: VIP, dst: CLIENT, ttl: 64, id: 1, tos: 0xc0 })
    .icmp({ type: 11, code: 0 })
    .payload(copy.slice(14))
    .build();
  assert.deepEqual(queued(lab, 0), [expected]);
});

test('NAT: a reply with TTL 1 is answered with time exceeded from the director, toward the real server', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ });
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40021, dport: 80, flags: TCP_SYN }));
  const reply = tcpFrame({ srcMac: RS_MACS[1]!, dstMac: DIRECTOR_RS_MAC, src: RIPS[1]!, dst: CLIENT, sport: 80, dport: 40021, flags: TCP_SYN | TCP_ACK, ttl: 1 });
  assert.equal(run(lab, reply, 1), QUEUED);
  const out = queued(lab, 1);
  assert.equal(out.length, 1);
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_RS_MAC, dst: RS_MACS[1]! })
    .ipv4({ src: DIP, dst: RIPS[1]!, ttl: 64, id: 1, tos: 0xc0 })
    .icmp({ type: 11, code: 0 })
    .payload(reply.slice(14))
    .build();
  assert.deepEqual(out[0], expected);
});

/** An ICMP error from `src` to `dst` quoting the first 28 bytes of the IP packet in `quotedFrame`. */
function icmpError(o: { srcMac: string; dstMac: string; src: string; dst: string; type: number; code: number; mtu?: number; quotedFrame: Uint8Array; ttl?: number }): Uint8Array {
  return new PacketBuilder()
    .eth({ src: o.srcMac, dst: o.dstMac })
    .ipv4({ src: o.src, dst: o.dst, ttl: o.ttl ?? 64, id: 99 })
    .icmp({ type: o.type, code: o.code, nextHopMtu: o.mtu ?? 0 })
    .payload(o.quotedFrame.slice(14, 14 + 28))
    .build();
}

test('ICMP from the client side about a NAT reply goes to the real server, outer and quoted header translated', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, rport: 8080 });
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40030, dport: 80, flags: TCP_SYN }));
  // A router near the client: the reply VIP:80 → client:40030 was too big for its next link.
  const replyAsSent = tcpFrame({ srcMac: DIRECTOR_MAC, dstMac: CLIENT_MAC, src: VIP, dst: CLIENT, sport: 80, dport: 40030, flags: TCP_ACK, ttl: 63 });
  const err = icmpError({ srcMac: CLIENT_MAC, dstMac: DIRECTOR_MAC, src: '10.77.0.1', dst: VIP, type: 3, code: 4, mtu: 1400, quotedFrame: replyAsSent });
  assert.equal(run(lab, err, 0), 1);
  const quotedAfter = tcpFrame({ srcMac: DIRECTOR_MAC, dstMac: CLIENT_MAC, src: RIPS[1]!, dst: CLIENT, sport: 8080, dport: 40030, flags: TCP_ACK, ttl: 63 });
  const expected = icmpError({ srcMac: DIRECTOR_RS_MAC, dstMac: RS_MACS[1]!, src: '10.77.0.1', dst: RIPS[1]!, type: 3, code: 4, mtu: 1400, quotedFrame: quotedAfter, ttl: 63 });
  const ev = viewOf(expected);
  ev.setUint16(14 + 22, 0);
  ev.setUint16(14 + 22, ~foldSum(onesComplementSum(expected, 14 + 20, expected.length - 34)) & 0xffff);
  assert.deepEqual(err, expected);
});

test('ICMP from a NAT real server about a client packet goes to the client as if from the VIP', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, proto: 17, rport: 5353 });
  const query = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: CLIENT, dst: VIP, ttl: 64, id: 5 }).udp({ srcPort: 6000, dstPort: 80 }).payload('q').build();
  assert.equal(run(lab, query, 0), 1);
  // query now is what the real server received: client:6000 → RIP:5353; it answers port unreachable.
  const err = icmpError({ srcMac: RS_MACS[1]!, dstMac: DIRECTOR_RS_MAC, src: RIPS[1]!, dst: CLIENT, type: 3, code: 3, quotedFrame: query });
  assert.equal(run(lab, err, 1), 0);
  const asClientSent = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: CLIENT, dst: VIP, ttl: 63, id: 5 }).udp({ srcPort: 6000, dstPort: 80 }).payload('q').build();
  const expected = icmpError({ srcMac: DIRECTOR_MAC, dstMac: CLIENT_MAC, src: VIP, dst: CLIENT, type: 3, code: 3, quotedFrame: asClientSent, ttl: 63 });
  // Quoted UDP checksum: as the real server saw it (not recomputed).
  expected.set(err.subarray(14 + 28 + 20 + 6, 14 + 28 + 20 + 8), 14 + 28 + 20 + 6);
  const ev = viewOf(expected);
  ev.setUint16(14 + 22, 0);
  ev.setUint16(14 + 22, ~foldSum(onesComplementSum(expected, 14 + 20, expected.length - 34)) & 0xffff);
  assert.deepEqual(err, expected);
});

test('ICMP about a DR flow is forwarded to its real server unchanged but for MACs and TTL; unrelated ICMP is not ours', () => {
  const lab = makeLab({ fwd: ForwardMethod.DROUTE });
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40040, dport: 80, flags: TCP_SYN }));
  const replyAsSent = tcpFrame({ srcMac: RS_MACS[1]!, dstMac: CLIENT_MAC, src: VIP, dst: CLIENT, sport: 80, dport: 40040, flags: TCP_ACK });
  const err = icmpError({ srcMac: CLIENT_MAC, dstMac: DIRECTOR_MAC, src: '10.77.0.1', dst: VIP, type: 3, code: 4, mtu: 1400, quotedFrame: replyAsSent });
  const expected = icmpError({ srcMac: DIRECTOR_RS_MAC, dstMac: RS_MACS[1]!, src: '10.77.0.1', dst: VIP, type: 3, code: 4, mtu: 1400, quotedFrame: replyAsSent, ttl: 63 });
  assert.equal(run(lab, err), 1);
  assert.deepEqual(err, expected);
  const other = icmpError({ srcMac: CLIENT_MAC, dstMac: DIRECTOR_MAC, src: '10.77.0.1', dst: VIP, type: 3, code: 4, quotedFrame: tcpFrame({ src: VIP, dst: CLIENT, sport: 80, dport: 1, flags: TCP_ACK }) });
  assert.equal(run(lab, other), NO_TX);
  const ping = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: CLIENT, dst: VIP }).icmp({ type: 8, id: 1, sequence: 1 }).build();
  assert.equal(run(lab, ping), NO_TX);
});

test('IP options are forwarded as they are (NAT): the transport header is found behind them', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ });
  const opts = new Uint8Array([1, 1, 1, 0]); // NOP NOP NOP EOL
  const f = tcpFrame({ src: CLIENT, dst: VIP, sport: 40050, dport: 80, flags: TCP_SYN, options: opts });
  assert.equal(run(lab, f), 1);
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_RS_MAC, dst: RS_MACS[1]! })
    .ipv4({ src: CLIENT, dst: RIPS[1]!, ttl: 63, id: 0x1234, df: true, options: opts })
    .tcp({ srcPort: 40050, dstPort: 80, flags: TCP_SYN, seq: 1000, ack: 0 })
    .build();
  assert.deepEqual(f, expected);
});

test('a full connection table refuses new flows (CONN_TABLE_FULL) and keeps forwarding the existing ones', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, connMax: 8 });
  let admitted = 0;
  let port = 41000;
  for (; port < 41100; port++) {
    if (run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: port, dport: 80, flags: TCP_SYN })) !== 1) break;
    admitted++;
  }
  assert.ok(admitted >= 1 && admitted <= 8, `admitted ${admitted}`);
  assert.equal(lab.counters.drops(DropReason.CONN_TABLE_FULL), 1);
  for (let p = 41000; p < 41000 + admitted; p++) {
    const ack = tcpFrame({ src: CLIENT, dst: VIP, sport: p, dport: 80, flags: TCP_ACK, payload: 'GET /' });
    assert.equal(run(lab, ack), 1, `existing flow from port ${p}`);
  }
  assert.equal(run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: port + 1, dport: 80, flags: TCP_SYN })), NO_TX);
  assert.equal(lab.counters.drops(DropReason.CONN_TABLE_FULL), 2);
});

test('a reassembled datagram larger than the MTU is fragmented again after the NAT rewrite; with DF it gets frag-needed', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, proto: 17, rport: 5353, mtu: 1500 });
  const data = new Uint8Array(2972);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  const big = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: CLIENT, dst: VIP, ttl: 64, id: 9 }).udp({ srcPort: 7000, dstPort: 80 }).payload(data).build();
  assert.equal(run(lab, big), QUEUED);
  const parts = queued(lab, 1);
  assert.equal(parts.length, 3);
  const expected = new PacketBuilder().eth({ src: DIRECTOR_RS_MAC, dst: RS_MACS[1]! }).ipv4({ src: CLIENT, dst: RIPS[1]!, ttl: 63, id: 9 }).udp({ srcPort: 7000, dstPort: 5353 }).payload(data).build();
  const joined: number[] = [];
  for (const p of parts) {
    assert.deepEqual(p.subarray(0, 14), expected.subarray(0, 14));
    assert.ok(p.length - 14 <= 1500);
    joined.push(...p.subarray(34));
  }
  assert.deepEqual(Uint8Array.from(joined), expected.subarray(34));
  assert.equal(lab.counters.cells[3 * STAT_CELLS + Stat.INPKTS], 1);

  lab.pipeline.tx.reset();
  const df = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: CLIENT, dst: VIP, ttl: 64, id: 10, df: true }).udp({ srcPort: 7001, dstPort: 80 }).payload(data).build();
  assert.equal(run(lab, df), QUEUED);
  const icmp = queued(lab, 0);
  assert.equal(icmp.length, 1);
  assert.equal(icmp[0]![14 + 20], 3);
  assert.equal(icmp[0]![14 + 21], 4);
  assert.equal(viewOf(icmp[0]!).getUint16(14 + 26), 1500, 'next-hop MTU');
  assert.equal(lab.counters.drops(DropReason.TOO_BIG), 1);
});

test('NAT: a reassembled reply larger than the client-side MTU is fragmented toward the client', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, proto: 17, rport: 5353, egressMtu: [1500, 1500] });
  const q = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: CLIENT, dst: VIP, ttl: 64 }).udp({ srcPort: 7100, dstPort: 80 }).payload('q').build();
  assert.equal(run(lab, q, 0), 1);
  const answer = new PacketBuilder().eth({ src: RS_MACS[1]!, dst: DIRECTOR_RS_MAC }).ipv4({ src: RIPS[1]!, dst: CLIENT, ttl: 64 }).udp({ srcPort: 5353, dstPort: 7100 }).payload(new Uint8Array(2000)).build();
  assert.equal(run(lab, answer, 1), QUEUED);
  const tx = lab.pipeline.tx;
  assert.equal(tx.counts[0], 2, 'two fragments toward the client');
  const start = tx.offsets[0]![0]!;
  const first = tx.buffer.slice(start, start + tx.lengths[0]![0]!);
  assert.deepEqual(Array.from(first.subarray(26, 30)), [10, 77, 0, 100], 'from the VIP');
  assert.equal(viewOf(first).getUint16(34), 80, 'from the virtual port');
});

test('ICMP about a TUN flow is encapsulated to its real server', () => {
  const lab = makeLab({ fwd: ForwardMethod.TUNNEL });
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40060, dport: 80, flags: TCP_SYN }));
  lab.pipeline.tx.reset();
  const replyAsSent = tcpFrame({ srcMac: RS_MACS[1]!, dstMac: CLIENT_MAC, src: VIP, dst: CLIENT, sport: 80, dport: 40060, flags: TCP_ACK });
  const err = icmpError({ srcMac: CLIENT_MAC, dstMac: DIRECTOR_MAC, src: '10.77.0.1', dst: VIP, type: 3, code: 4, mtu: 1400, quotedFrame: replyAsSent });
  assert.equal(run(lab, err), QUEUED);
  const out = queued(lab, 1);
  assert.equal(out.length, 1);
  const innerAfter = icmpError({ srcMac: CLIENT_MAC, dstMac: DIRECTOR_MAC, src: '10.77.0.1', dst: VIP, type: 3, code: 4, mtu: 1400, quotedFrame: replyAsSent, ttl: 63 });
  const expected = new PacketBuilder()
    .eth({ src: DIRECTOR_RS_MAC, dst: RS_MACS[1]! })
    .ipv4({ src: DIP, dst: RIPS[1]!, ttl: 63, id: 2, protocol: 4 })
    .payload(innerAfter.subarray(14))
    .build();
  assert.deepEqual(out[0], expected);
});

// The kernel drops martian sources before routing (ip_route_input_slow: multicast, limited
// broadcast, 0/8, loopback unless route_localnet; a local address as source fails
// fib_validate_source). uvs taps before the kernel's checks, so it drops them itself.
test('martian sources to a virtual service are dropped and counted (MARTIAN_SOURCE), in every mode', () => {
  for (const fwd of [ForwardMethod.DROUTE, ForwardMethod.MASQ, ForwardMethod.TUNNEL]) {
    const lab = makeLab({ fwd });
    const martians = ['127.0.0.1', '127.255.0.9', '0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '255.255.255.255', VIP];
    for (const src of martians) {
      assert.equal(run(lab, tcpFrame({ src, dst: VIP, sport: 40000, dport: 80, flags: TCP_SYN })), NO_TX, `${fwd}: source ${src}`);
    }
    assert.equal(lab.counters.drops(DropReason.MARTIAN_SOURCE), martians.length, `mode ${fwd}`);
    assert.equal(lab.conns.count, 0, 'no connection was created for a martian');
    assert.notEqual(run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: TCP_SYN })), NO_TX, 'a real client still gets in');
  }
});

test('TUN: a packet without DF whose outer header would pass 65535 bytes is fragmented, with no "fragmentation needed" (the last DF refusal\'s MTU is not reused)', () => {
  const lab = makeLab({ fwd: ForwardMethod.TUNNEL, mtu: 1500 });
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40013, dport: 80, flags: TCP_SYN, df: false }));
  // A DF refusal first: the forwarder remembers MTU 1480 for its ICMP.
  assert.equal(run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40013, dport: 80, flags: TCP_ACK, payload: new Uint8Array(1460) })), QUEUED);
  assert.equal(lab.counters.drops(DropReason.TOO_BIG), 1);
  lab.pipeline.tx.reset();
  // 65,520 bytes reassembled by fanout defrag, no DF: the outer packet (65,540) cannot exist
  // whole, but its fragments can (the kernel's ip_fragment works on skb->len).
  const huge = tcpFrame({ src: CLIENT, dst: VIP, sport: 40013, dport: 80, flags: TCP_ACK, payload: new Uint8Array(65520 - 40).fill(0x33), df: false });
  assert.equal(run(lab, huge), QUEUED);
  assert.equal(lab.counters.drops(DropReason.TOO_BIG), 1, 'not refused');
  assert.equal(queued(lab, 0).length, 0, 'no ICMP to the client');
  const frags = queued(lab, 1);
  assert.equal(frags.length, Math.ceil(65520 / 1480));
  let data = 0;
  for (const f of frags) {
    assert.ok(f.length - 14 <= 1500);
    data += viewOf(f).getUint16(14 + 2) - 20;
  }
  assert.equal(data, 65520);
});

test('ICMP errors about a tracked flow with a bad ICMP checksum are dropped and counted, not rewritten (ip_vs_in_icmp / handle_response_icmp)', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, rport: 8080 });
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40031, dport: 80, flags: TCP_SYN }));
  const replyAsSent = tcpFrame({ srcMac: DIRECTOR_MAC, dstMac: CLIENT_MAC, src: VIP, dst: CLIENT, sport: 80, dport: 40031, flags: TCP_ACK, ttl: 63 });
  const err = icmpError({ srcMac: CLIENT_MAC, dstMac: DIRECTOR_MAC, src: '10.77.0.1', dst: VIP, type: 3, code: 4, mtu: 1400, quotedFrame: replyAsSent });
  err[14 + 20 + 2]! ^= 0x5a; // the ICMP checksum
  const copy = err.slice();
  assert.equal(run(lab, err, 0), NO_TX);
  assert.deepEqual(err, copy, 'not rewritten');
  assert.equal(lab.counters.drops(DropReason.BAD_ICMP_CHECKSUM), 1);
  // From the NAT real server's side too.
  const query = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: CLIENT, dst: VIP, ttl: 64, id: 5 }).udp({ srcPort: 6001, dstPort: 80 }).payload('q').build();
  const udpLab = makeLab({ fwd: ForwardMethod.MASQ, proto: 17, rport: 5353 });
  assert.equal(run(udpLab, query, 0), 1);
  const back = icmpError({ srcMac: RS_MACS[1]!, dstMac: DIRECTOR_RS_MAC, src: RIPS[1]!, dst: CLIENT, type: 3, code: 3, quotedFrame: query });
  back[14 + 20 + 3]! ^= 0x01;
  assert.equal(run(udpLab, back, 1), NO_TX);
  assert.equal(udpLab.counters.drops(DropReason.BAD_ICMP_CHECKSUM), 1);
});

test('ICMP error quoting a non-first fragment (no L4 header in the quote) is left to the kernel', () => {
  const lab = makeLab({ fwd: ForwardMethod.MASQ, rport: 8080 });
  run(lab, tcpFrame({ src: CLIENT, dst: VIP, sport: 40032, dport: 80, flags: TCP_SYN }));
  // The quoted bytes after the IP header look like the flow's ports, but the quoted packet is a
  // fragment at offset 1480: they are payload, not a TCP header.
  const replyAsSent = tcpFrame({ srcMac: DIRECTOR_MAC, dstMac: CLIENT_MAC, src: VIP, dst: CLIENT, sport: 80, dport: 40032, flags: TCP_ACK, ttl: 63 });
  const fv = viewOf(replyAsSent);
  fv.setUint16(14 + 6, 1480 / 8);
  fv.setUint16(14 + 10, 0);
  fv.setUint16(14 + 10, ~foldSum(onesComplementSum(replyAsSent, 14, 20)) & 0xffff);
  const err = icmpError({ srcMac: CLIENT_MAC, dstMac: DIRECTOR_MAC, src: '10.77.0.1', dst: VIP, type: 3, code: 4, mtu: 1400, quotedFrame: replyAsSent });
  const copy = err.slice();
  assert.equal(run(lab, err, 0), NO_TX);
  assert.deepEqual(err, copy);
});

test('a frame with an 802.1Q tag of a VLAN in its data (libpcap puts the offloaded tag back) is not forwarded: FOREIGN_VLAN', () => {
  const lab = makeLab({ fwd: ForwardMethod.DROUTE });
  const tagged = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC, vlan: { id: 100 } })
    .ipv4({ src: CLIENT, dst: VIP, ttl: 64 }).tcp({ srcPort: 40050, dstPort: 80, flags: TCP_SYN }).build();
  assert.equal(run(lab, tagged), NO_TX);
  assert.equal(lab.counters.drops(DropReason.FOREIGN_VLAN), 1);
});
