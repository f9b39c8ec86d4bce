// The fast path's policy (src/dataplane/fast-path.ts) over a real connection table, with the
// kernel's side (the maps) replaced by a fake that records what it was asked: which flows are
// offered and when, which come back and why, how expiry asks about an offloaded flow, and what the
// hops records and the statistics fold make of the tables. The XDP program itself runs in
// test/netns/fast-path.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PacketKey } from '../../src/sched/scheduler';
import { DestField, DestFlag, DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { ConnRef, ConnTable, EntryCell, HeaderCell, SyncCell, SYNC_RECORD_CELLS, Traffic } from '../../src/conn/table';
import { ConnScheduler, ConnVerdict, type ConnService } from '../../src/conn/schedule';
import { NextHopTable } from '../../src/tables/next-hop';
import { FAST_FIN, FAST_HOP_BYTES, FAST_MIN_PACKETS, FAST_TRACK, FastFlows, FastKind, FastPath } from '../../src/dataplane/fast-path';
import { connStateName, TcpState } from '../../src/conn/tcp-state';
import { parseUvsdArgs } from '../../src/control/uvsd-options';
import { WorkerCounters, WorkerStat, Stat, STAT_CELLS } from '../../src/dataplane/counters';
import type { FastPathMaps, NativeAddon } from '../../src/native/addon';
import { addDest, ip, TestRoundRobin } from '../conn/helpers';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../../src/packet/tcp';

const TCP = 6;
const UDP = 17;
const VIP = ip('10.0.0.100');
const T0 = 5_000_000;
const E2BIG = 7;

/** The kernel's maps as a JS Map keyed by the 5-tuple, with a clock for the flows' last packet. */
class FakeKernel {
  flows = new Map<string, { slot: number; lastSeen: number; base: number; packets: number; flags: number }>();
  calls: string[] = [];
  now = 0;
  full = false;
  hops = new ArrayBuffer(8 * FAST_HOP_BYTES);

  native(): NativeAddon {
    const k = (p: number, s: number, sp: number, d: number, dp: number): string => `${p}/${s >>> 0}:${sp}>${d >>> 0}:${dp}`;
    return {
      fastPut: (_fd: number, p: number, s: number, sp: number, d: number, dp: number, slot: number, base: number, flags = 0): number => {
        this.calls.push(`put ${k(p, s, sp, d, dp)} -> ${slot}${flags !== 0 ? ` flags ${flags}` : ''}`);
        if (this.full) return E2BIG;
        this.flows.set(k(p, s, sp, d, dp), { slot, lastSeen: this.now, base, packets: 0, flags });
        return 0;
      },
      fastPutNat: (_fd: number, p: number, c: number, cp: number, v: number, vp: number, d: number, dp: number, slot: number, base: number,
        hopA: number, hopB: number, hopC: number, ifindex: number, flags = 0): number => {
        this.calls.push(`putNat ${k(p, c, cp, v, vp)} / ${k(p, d, dp, c, cp)} -> ${slot} hop ${(hopA >>> 0).toString(16)}.${(hopB >>> 0).toString(16)}.${(hopC >>> 0).toString(16)}@${ifindex}${flags !== 0 ? ` flags ${flags}` : ''}`);
        if (this.full) return E2BIG;
        this.flows.set(k(p, c, cp, v, vp), { slot, lastSeen: this.now, base, packets: 0, flags });
        this.flows.set(k(p, d, dp, c, cp), { slot, lastSeen: this.now, base: 0, packets: 0, flags });
        return 0;
      },
      fastPutTun: (_fd: number, p: number, s: number, sp: number, d: number, dp: number, slot: number, base: number, rip: number, src: number): number => {
        this.calls.push(`putTun ${k(p, s, sp, d, dp)} -> ${slot} outer ${src >>> 0}>${rip >>> 0}`);
        if (this.full) return E2BIG;
        this.flows.set(k(p, s, sp, d, dp), { slot, lastSeen: this.now, base, packets: 0, flags: 0 });
        return 0;
      },
      fastDelete: (_fd: number, p: number, s: number, sp: number, d: number, dp: number): boolean => {
        this.calls.push(`delete ${k(p, s, sp, d, dp)}`);
        return this.flows.delete(k(p, s, sp, d, dp));
      },
      fastIdle: (_fd: number, p: number, s: number, sp: number, d: number, dp: number, out?: Float64Array): number => {
        this.calls.push(`idle ${k(p, s, sp, d, dp)}`);
        const f = this.flows.get(k(p, s, sp, d, dp));
        if (f === undefined) return -1;
        if (out) {
          out[0] = f.base;
          out[1] = f.packets;
          if (out.length > 2) out[2] = f.flags;
        }
        return this.now - f.lastSeen;
      },
      fastPathMaps: (o: { entries: number; slots: number }): FastPathMaps => {
        this.calls.push(`maps ${o.entries} ${o.slots}`);
        return { fastFd: 30, hopsFd: 31, hops: this.hops, close: () => this.calls.push('close') };
      },
    } as unknown as NativeAddon;
  }
}

function setup(protocol = UDP, track = false) {
  const dests = new DestTable(8);
  const a = addDest(dests, '10.0.1.1', 53, ForwardMethod.DROUTE);
  const rr = new TestRoundRobin(dests, [a]);
  const table = new ConnTable(256, dests, { workerId: 0 });
  const sched = new ConnScheduler(table);
  const svc: ConnService = { protocol, addr: VIP, port: 53, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler: rr };
  const kernel = new FakeKernel();
  const counters = new WorkerCounters({ maxServices: 4, maxDests: 8 });
  const fast = new FastFlows(kernel.native(), 30, counters, [], track);
  let now = T0;
  fast.clock = () => now;
  table.offloadHook = fast;
  const out = new ConnRef();
  const k: PacketKey = { protocol, saddr: ip('192.168.0.7'), sport: 4000, daddr: VIP, dport: 53 };
  /** One client packet through the scheduler, then what the pipeline tells the fast path. */
  const packet = (flags = 0, at = T0, superFrame = false, data = true): void => {
    now = at;
    assert.equal(sched.inPacket(svc, k, flags, at, out), ConnVerdict.FORWARD);
    if (data) table.countData(out.index);
    fast.seen(table, out.index, k.protocol, k.saddr, k.sport, k.daddr, k.dport, out.destSlot, flags, superFrame);
  };
  const flowKey = `${protocol}/${ip('192.168.0.7') >>> 0}:4000>${VIP >>> 0}:53`;
  return { dests, a, table, kernel, counters, fast, out, packet, flowKey, sched, svc, k };
}

test(`a UDP flow is offered once, after ${FAST_MIN_PACKETS} packets`, () => {
  const { kernel, packet, table, out, counters, a, flowKey } = setup();
  for (let i = 1; i < FAST_MIN_PACKETS; i++) packet();
  assert.deepEqual(kernel.calls, [], 'not before the threshold');
  packet();
  assert.deepEqual(kernel.calls, [`put ${flowKey} -> ${a}`]);
  assert.ok((table.field(out.index, EntryCell.TRAFFIC) & Traffic.OFFLOADED) !== 0);
  packet();
  packet();
  assert.equal(kernel.calls.length, 1, 'packets the program declined (or queued before the offer) do not offer it again');
  assert.equal(counters.get(WorkerStat.FAST_OFFLOADS), 1);
});

test('TCP: offered only ESTABLISHED with client data; a FIN takes it back for good', () => {
  const { kernel, packet, table, out, counters, flowKey } = setup(TCP);
  packet(TCP_SYN, T0, false, false);
  for (let i = 0; i < FAST_MIN_PACKETS + 2; i++) packet(TCP_ACK, T0 + 1, false, false);
  assert.deepEqual(kernel.calls, [], 'a SYN then bare ACKs (what a spoofed SYN-then-ACK flood sends) are never offered');
  packet(TCP_ACK | TCP_PSH, T0 + 2);
  assert.equal(kernel.calls.length, 1);
  assert.ok(kernel.flows.has(flowKey));
  packet(TCP_ACK | TCP_FIN, T0 + 3);
  assert.deepEqual(kernel.calls.slice(1), [`delete ${flowKey}`]);
  const t = table.field(out.index, EntryCell.TRAFFIC);
  assert.equal(t & Traffic.OFFLOADED, 0);
  assert.ok((t & Traffic.NO_FAST) !== 0);
  packet(TCP_ACK, T0 + 4);
  assert.equal(kernel.calls.length, 2, 'never offered again');
  assert.equal(counters.get(WorkerStat.FAST_LEFT), 1);
});

test('a super-frame: an offloaded flow comes back; a flow not offloaded yet is never offered', () => {
  const s1 = setup();
  for (let i = 0; i < FAST_MIN_PACKETS; i++) s1.packet();
  s1.packet(0, T0, true);
  assert.deepEqual(s1.kernel.calls.slice(1), [`delete ${s1.flowKey}`]);
  const s2 = setup();
  s2.packet(0, T0, true);
  for (let i = 0; i < FAST_MIN_PACKETS * 2; i++) s2.packet();
  assert.deepEqual(s2.kernel.calls, []);
});

test('a full map refuses: the flow stays in user space, counted, and is not offered again', () => {
  const { kernel, packet, table, out, counters } = setup();
  kernel.full = true;
  for (let i = 0; i < FAST_MIN_PACKETS + 3; i++) packet();
  assert.equal(kernel.calls.length, 1);
  assert.equal(counters.get(WorkerStat.FAST_REFUSED), 1);
  const t = table.field(out.index, EntryCell.TRAFFIC);
  assert.equal(t & Traffic.OFFLOADED, 0);
  assert.ok((t & Traffic.NO_FAST) !== 0);
});

test('expiry: an offloaded flow the kernel keeps forwarding is re-armed; an idle one expires and leaves the map', () => {
  const { kernel, packet, table, counters, flowKey } = setup();
  for (let i = 0; i < FAST_MIN_PACKETS; i++) packet();
  const timeout = 300_000; // UDP
  // The kernel forwarded a packet 1 s before the entry's own clock says it is due.
  kernel.now = timeout - 1000;
  kernel.flows.get(flowKey)!.lastSeen = timeout - 1000;
  kernel.now = timeout + 10;
  assert.equal(table.expire(T0 + timeout + 10, 1000), 0, 'kept');
  assert.equal(table.count, 1);
  assert.ok(kernel.calls.includes(`idle ${flowKey}`));
  assert.equal(counters.get(WorkerStat.FAST_KEPT), 1);
  // Not asked again before the new expiry (timeout - idle after the sweep).
  const asked = kernel.calls.length;
  assert.equal(table.expire(T0 + timeout + 500, 1000), 0);
  assert.equal(kernel.calls.length, asked);
  // Nothing since: due at T0 + timeout + 10 + (timeout - 1010).
  kernel.now += timeout;
  assert.equal(table.expire(T0 + 2 * timeout + 20, 1000), 1, 'expired');
  assert.equal(table.count, 0);
  assert.ok(!kernel.flows.has(flowKey), 'the key left the map with the entry');
  assert.deepEqual(kernel.calls.slice(-2), [`idle ${flowKey}`, `delete ${flowKey}`]);
});

test('-L -c lists an offloaded entry\'s time left from the kernel\'s last packet, without counting a put-off expiry', () => {
  const { kernel, packet, table, counters, flowKey } = setup();
  for (let i = 0; i < FAST_MIN_PACKETS; i++) packet();
  // 200 s later by the entry's own clock; the kernel forwarded a packet 1 s ago.
  kernel.now = 200_000;
  kernel.flows.get(flowKey)!.lastSeen = 199_000;
  const [row] = [...table.list(T0 + 200_000)];
  assert.equal(row!.expiresMs, 300_000 - 1000);
  assert.equal(counters.get(WorkerStat.FAST_KEPT), 0);
  // Never forwarded since the offer, long ago: the entry's own clock.
  kernel.flows.get(flowKey)!.lastSeen = -1_000_000;
  assert.equal([...table.list(T0 + 200_000)][0]!.expiresMs, 100_000);
});

test('an export (sync scan, restart) raises in_pkts by the packets the kernel forwarded, so sync resends busy offloaded flows', () => {
  const { kernel, packet, table, out, flowKey } = setup();
  for (let i = 0; i < FAST_MIN_PACKETS; i++) packet();
  assert.equal(kernel.flows.get(flowKey)!.base, FAST_MIN_PACKETS, 'the offer records in_pkts then');
  kernel.flows.get(flowKey)!.packets = 120;
  const rec = new Int32Array(SYNC_RECORD_CELLS * 4);
  const { records } = table.exportBatch(0, rec, T0 + 1000);
  assert.equal(records, 1);
  assert.equal(rec[SyncCell.IN_PKTS], FAST_MIN_PACKETS + 120);
  assert.equal(table.field(out.index, EntryCell.IN_PKTS), FAST_MIN_PACKETS + 120, 'kept in the entry');
  // A packet through user space meanwhile (a declined one) only adds; the export never lowers it.
  packet();
  table.exportBatch(0, rec, T0 + 1000);
  assert.equal(rec[SyncCell.IN_PKTS], FAST_MIN_PACKETS + 121);
});

test('every free of an offloaded entry deletes its key: -C (remove) too', () => {
  const { kernel, packet, table, out, flowKey } = setup();
  for (let i = 0; i < FAST_MIN_PACKETS; i++) packet();
  assert.ok(table.remove(out.index, table.seqOf(out.index)));
  assert.ok(!kernel.flows.has(flowKey));
});

test('hops records: MACs and ifindex for an AVAILABLE on-link DR or NAT server whose egress MTU is no smaller than any capture MTU, and a TUN one anywhere', () => {
  const dests = new DestTable(8);
  const dr = addDest(dests, '10.0.1.1', 80, ForwardMethod.DROUTE);
  const nat = addDest(dests, '10.0.1.2', 80, ForwardMethod.MASQ);
  const gw = addDest(dests, '10.0.1.3', 80, ForwardMethod.DROUTE);
  const small = addDest(dests, '10.0.1.4', 80, ForwardMethod.DROUTE);
  const tun = addDest(dests, '10.0.1.5', 80, ForwardMethod.TUNNEL);
  const tunRouted = addDest(dests, '10.9.1.5', 80, ForwardMethod.TUNNEL);
  const hops = new NextHopTable(8);
  const info = { dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:aa', egress: 1, mtu: 1500, srcAddr: ip('10.0.1.254'), viaGateway: false };
  hops.set(dr, info);
  hops.set(nat, info);
  hops.set(tun, info);
  hops.set(gw, { ...info, viaGateway: true });
  hops.set(tunRouted, { ...info, viaGateway: true, mtu: 1400 });
  hops.set(small, { ...info, mtu: 1400 });
  const kernel = new FakeKernel();
  const fp = new FastPath(kernel.native(), { maxServices: 4, maxDests: 8 });
  let active = true;
  const egress = { ifindex: (e: number): number => [0, 17][e] ?? 0, maxMtu: (): number => 1500, serviceActive: (): boolean => active };
  fp.syncAll(dests, hops, egress);
  assert.equal(fp.ifindexOf(dr), 17);
  assert.deepEqual([...new Uint8Array(kernel.hops, dr * FAST_HOP_BYTES, 12)], [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0xaa]);
  assert.equal(fp.ifindexOf(nat), 17, 'NAT: the tc program forwards the client\'s side with it');
  assert.equal(fp.ifindexOf(tun), 17, 'TUN: the tc program encapsulates');
  assert.equal(fp.ifindexOf(tunRouted), 0, 'TUN behind a router, on an egress with a smaller MTU than a capture MTU: a super-frame\'s segments might not fit');
  hops.set(tunRouted, { ...info, viaGateway: true });
  fp.syncSlot(tunRouted, dests, hops, egress);
  assert.equal(fp.ifindexOf(tunRouted), 17, 'TUN behind a router: a gateway\'s MACs are as good');
  assert.equal(fp.ifindexOf(gw), 0, 'behind a router');
  assert.equal(fp.ifindexOf(small), 0, 'egress MTU below a capture MTU');
  // Deleted (AVAILABLE cleared): declined at once.
  dests.set(dr, DestField.FLAGS, DestFlag.IN_USE);
  fp.syncSlot(dr, dests, hops, egress);
  assert.equal(fp.ifindexOf(dr), 0);
  // The next hop moves (NextHopTable.onChange is how the data plane hears of it).
  dests.set(dr, DestField.FLAGS, DestFlag.IN_USE | DestFlag.AVAILABLE);
  hops.onChange = (slot) => fp.syncSlot(slot, dests, hops, egress);
  hops.set(dr, { ...info, dstMac: '02:00:00:00:00:09' });
  assert.equal(fp.ifindexOf(dr), 17);
  assert.equal(new Uint8Array(kernel.hops)[dr * FAST_HOP_BYTES + 5], 9);
  hops.clear(dr);
  assert.equal(fp.ifindexOf(dr), 0, 'next hop unknown: declined');
  hops.set(dr, info);
  assert.equal(fp.ifindexOf(dr), 17);
  active = false;
  fp.syncSlot(dr, dests, hops, egress);
  assert.equal(fp.ifindexOf(dr), 0, 'VRRP backup for the VIP: declined');
});

test('statistics: what the program counted is folded into the real server and its service, once', () => {
  const dests = new DestTable(8);
  const d = addDest(dests, '10.0.1.1', 80, ForwardMethod.DROUTE);
  dests.set(d, DestField.SERVICE, 2);
  const kernel = new FakeKernel();
  const fp = new FastPath(kernel.native(), { maxServices: 4, maxDests: 8 });
  const words = new Uint32Array(kernel.hops);
  const put = (packets: number, bytes: number): void => {
    const w = (d * FAST_HOP_BYTES) >>> 2;
    words[w + 4] = packets % 4294967296;
    words[w + 5] = Math.floor(packets / 4294967296);
    words[w + 6] = bytes % 4294967296;
    words[w + 7] = Math.floor(bytes / 4294967296);
  };
  put(10, 640);
  fp.fold(dests, true);
  put(4294967296 + 25, 5_000_000_000);
  fp.fold(dests, true);
  fp.fold(dests, true);
  const c = fp.counters.cells;
  const db = fp.counters.destBase + d * STAT_CELLS;
  assert.equal(c[db + Stat.INPKTS], 4294967296 + 25);
  assert.equal(c[db + Stat.INBYTES], 5_000_000_000);
  assert.equal(c[2 * STAT_CELLS + Stat.INPKTS], 4294967296 + 25);
  assert.equal(c[2 * STAT_CELLS + Stat.INBYTES], 5_000_000_000);
  assert.equal(fp.totalPackets(), 4294967296 + 25);
  // NAT replies the program forwarded: out_pkts / out_bytes, of the server and of its service.
  const w = (d * FAST_HOP_BYTES) >>> 2;
  words[w + 8] = 7;
  words[w + 10] = 700;
  fp.fold(dests, true);
  assert.equal(c[db + Stat.OUTPKTS], 7);
  assert.equal(c[db + Stat.OUTBYTES], 700);
  assert.equal(c[2 * STAT_CELLS + Stat.OUTPKTS], 7);
  assert.equal(c[db + Stat.INPKTS], 4294967296 + 25, 'in unchanged');
  assert.equal(fp.totalPackets(), 4294967296 + 25 + 7);
});

/** A NAT service's flow: client 192.168.0.7:4000 -> VIP:80, real server 10.0.1.1:8080, its client
 *  hop learned on data-plane interface 1, which may send replies as ifindex 23. */
function natSetup(track = false) {
  const dests = new DestTable(8);
  const a = addDest(dests, '10.0.1.1', 8080, ForwardMethod.MASQ);
  const rr = new TestRoundRobin(dests, [a]);
  const table = new ConnTable(256, dests, { workerId: 0 });
  const sched = new ConnScheduler(table);
  const svc: ConnService = { protocol: TCP, addr: VIP, port: 80, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler: rr };
  const kernel = new FakeKernel();
  const counters = new WorkerCounters({ maxServices: 4, maxDests: 8 });
  const fast = new FastFlows(kernel.native(), 30, counters, [0, 23], track);
  fast.clock = () => T0;
  table.offloadHook = fast;
  const out = new ConnRef();
  const k: PacketKey = { protocol: TCP, saddr: ip('192.168.0.7'), sport: 4000, daddr: VIP, dport: 80 };
  // The client's frame: destination MAC (ours) 02:00:00:00:00:aa, source (the client) 02:00:00:00:00:07.
  const frame = Uint8Array.from([2, 0, 0, 0, 0, 0xaa, 2, 0, 0, 0, 0, 7]);
  let hopLearned = false;
  const packet = (flags = TCP_ACK | TCP_PSH, at = T0, superFrame = false, ingress = 1): void => {
    assert.equal(sched.inPacket(svc, k, flags, at, out), ConnVerdict.FORWARD);
    if (!hopLearned) {
      table.setClientHop(out.index, frame, 0, ingress);
      hopLearned = true;
    }
    table.countData(out.index);
    fast.seen(table, out.index, TCP, k.saddr, k.sport, out.daddr, out.dport, out.destSlot, flags, superFrame, FastKind.NAT);
  };
  const inKey = `${TCP}/${ip('192.168.0.7') >>> 0}:4000>${VIP >>> 0}:80`;
  const replyKey = `${TCP}/${ip('10.0.1.1') >>> 0}:8080>${ip('192.168.0.7') >>> 0}:4000`;
  return { table, kernel, fast, out, packet, inKey, replyKey, a, sched, dests, counters };
}

test('NAT: both keys offered together, the reply\'s with the client hop and its egress; super-frames do not keep it out', () => {
  const { kernel, packet, table, out, inKey, replyKey, a } = natSetup();
  packet(TCP_SYN);
  for (let i = 0; i < FAST_MIN_PACKETS; i++) packet(TCP_ACK | TCP_PSH, T0 + 1, i === 2);
  // The reply's MACs as the entry holds them: the client's (02:00:00:00:00:07), then ours.
  assert.deepEqual(kernel.calls, [`putNat ${inKey} / ${replyKey} -> ${a} hop 2000000.70200.aa@23`]);
  assert.ok(kernel.flows.has(inKey) && kernel.flows.has(replyKey));
  assert.ok((table.field(out.index, EntryCell.TRAFFIC) & Traffic.OFFLOADED) !== 0);
});

test('NAT: the reply\'s FIN takes both keys back; expiry asks both directions; a free deletes both', () => {
  const s = natSetup();
  s.packet(TCP_SYN);
  for (let i = 0; i < FAST_MIN_PACKETS; i++) s.packet();
  assert.equal(s.kernel.flows.size, 2);
  // Expiry: the client side quiet for 5 s, the replies 1 s ago: 1 s idle.
  s.kernel.now = 5000;
  s.kernel.flows.get(s.replyKey)!.lastSeen = 4000;
  assert.equal(s.fast.idleMs(s.table, s.out.index), 1000);
  // A FIN from the real server, declined by the program, seen by user space.
  s.fast.seenReply(s.table, s.out.index, TCP_ACK);
  assert.equal(s.kernel.flows.size, 2, 'a plain ACK is a one-off');
  s.fast.seenReply(s.table, s.out.index, TCP_FIN | TCP_ACK);
  assert.equal(s.kernel.flows.size, 0, 'both keys deleted');
  assert.ok((s.table.field(s.out.index, EntryCell.TRAFFIC) & Traffic.NO_FAST) !== 0);
  // Another connection, offloaded, then freed by -C: both keys go.
  const t = natSetup();
  t.packet(TCP_SYN);
  for (let i = 0; i < FAST_MIN_PACKETS; i++) t.packet();
  assert.ok(t.table.remove(t.out.index, t.table.seqOf(t.out.index)));
  assert.equal(t.kernel.flows.size, 0);
});

test('NAT: not offered when the client\'s interface may not send replies in the kernel', () => {
  const s = natSetup();
  s.packet(TCP_SYN, T0, false, 0);
  for (let i = 0; i < FAST_MIN_PACKETS + 2; i++) s.packet(TCP_ACK | TCP_PSH, T0 + 1, false, 0);
  assert.deepEqual(s.kernel.calls, [], 'interface 0: a smaller MTU, no kernel egress');
});

test('TUN: offered with the real server and the outer source, super-frames or not; a packet sent in outer fragments keeps or takes its flow back', () => {
  const dests = new DestTable(8);
  const a = addDest(dests, '10.0.1.1', 80, ForwardMethod.TUNNEL);
  const rr = new TestRoundRobin(dests, [a]);
  const table = new ConnTable(256, dests, { workerId: 0 });
  const sched = new ConnScheduler(table);
  const svc: ConnService = { protocol: UDP, addr: VIP, port: 53, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler: rr };
  const kernel = new FakeKernel();
  const counters = new WorkerCounters({ maxServices: 4, maxDests: 8 });
  const fast = new FastFlows(kernel.native(), 30, counters);
  table.offloadHook = fast;
  const out = new ConnRef();
  const src = ip('10.0.1.254');
  /** `count` packets of flow `sport`; `tooBig(i)`: packet i left in outer fragments (the pipeline
   *  then calls keepHere instead of seen); every third one is a super-frame. */
  const flow = (sport: number, count: number, tooBig: (i: number) => boolean): { key: string; index: number } => {
    const k: PacketKey = { protocol: UDP, saddr: ip('192.168.0.7'), sport, daddr: VIP, dport: 53 };
    for (let i = 0; i < count; i++) {
      assert.equal(sched.inPacket(svc, k, 0, T0, out), ConnVerdict.FORWARD);
      if (tooBig(i)) fast.keepHere(table, out.index);
      else fast.seen(table, out.index, UDP, k.saddr, k.sport, k.daddr, k.dport, out.destSlot, 0, i % 3 === 0, FastKind.TUN, out.daddr, src);
    }
    return { key: `${UDP}/${ip('192.168.0.7') >>> 0}:${sport}>${VIP >>> 0}:53`, index: out.index };
  };
  const offered = flow(4000, FAST_MIN_PACKETS + 2, () => false);
  assert.deepEqual(kernel.calls, [`putTun ${offered.key} -> ${a} outer ${src >>> 0}>${ip('10.0.1.1') >>> 0}`]);
  flow(4001, FAST_MIN_PACKETS + 2, (i) => i === 1);
  assert.equal(kernel.calls.length, 1, 'a flow that sent a packet in outer fragments is never offered');
  // An offloaded flow's packet sent in fragments (the program demoted the flow): taken back for good.
  const third = flow(4002, FAST_MIN_PACKETS, () => false);
  assert.equal(kernel.calls.length, 2);
  flow(4002, 3, (i) => i === 0);
  assert.deepEqual(kernel.calls.slice(2), [`delete ${kernel.calls[1]!.slice(7, kernel.calls[1]!.indexOf(' ->'))}`]);
  assert.ok((table.field(third.index, EntryCell.TRAFFIC) & Traffic.NO_FAST) !== 0);
  assert.equal(counters.get(WorkerStat.FAST_LEFT), 1);
  // One key: a free deletes it alone.
  assert.ok(table.remove(offered.index, table.seqOf(offered.index)));
  assert.deepEqual(kernel.calls.slice(3), [`delete ${offered.key}`]);
});

// ---- whole connections in the kernel (--fast-path-early: tracked flows) ----------------------

test('tracked DR: offered at its SYN; the read-back applies the handshake and data, then the client\'s FIN takes it back in FIN_WAIT', () => {
  const { kernel, packet, table, out, fast, counters, flowKey, dests, a } = setup(TCP, true);
  packet(TCP_SYN, T0, false, false);
  assert.deepEqual(kernel.calls, [`put ${flowKey} -> ${a} flags ${FAST_TRACK}`], 'offered at once, tracked');
  assert.equal(table.field(out.index, EntryCell.STATE) & 0xff, TcpState.SYN_RECV);
  assert.equal(fast.tracked, 1);
  // Not due yet: nothing is read.
  assert.equal(fast.poll(table, T0 + 100), 0);
  // The kernel forwarded the handshake's ACK and two data packets.
  kernel.flows.get(flowKey)!.packets = 3;
  assert.equal(fast.poll(table, T0 + 200), 1);
  assert.equal(table.field(out.index, EntryCell.STATE) & 0xff, TcpState.ESTABLISHED, 'the handshake applied');
  assert.equal(dests.get(a, DestField.ACTIVE), 1, 'counted active, as IPVS does once established');
  assert.ok((table.field(out.index, EntryCell.TRAFFIC) & Traffic.DATA_MASK) >= 1, 'the data counted for the flood defence');
  assert.ok(kernel.flows.has(flowKey), 'still in the kernel');
  // Its FIN, forwarded and recorded by the program; read at the next level (400 ms later).
  kernel.flows.get(flowKey)!.flags |= FAST_FIN;
  assert.equal(fast.poll(table, T0 + 599), 0);
  assert.equal(fast.poll(table, T0 + 600), 1);
  assert.equal(kernel.flows.has(flowKey), false, 'closed: the key is deleted');
  const t = table.field(out.index, EntryCell.TRAFFIC);
  assert.equal(t & Traffic.OFFLOADED, 0);
  assert.ok((t & Traffic.NO_FAST) !== 0);
  assert.equal(connStateName(TCP, table.field(out.index, EntryCell.STATE) & 0xff, false), 'FIN_WAIT', 'the state its FIN leads to (input only)');
  assert.equal(dests.get(a, DestField.ACTIVE), 0);
  assert.equal(dests.get(a, DestField.INACTIVE), 1);
  assert.equal(counters.get(WorkerStat.FAST_LEFT), 1);
  assert.equal(fast.tracked, 0);
});

test('tracked: a SYN nobody answered is taken back at the first read-back; a flood of them pauses the offers for a second', () => {
  const s = setup(TCP, true);
  s.packet(TCP_SYN, T0, false, false);
  assert.equal(s.kernel.flows.size, 1);
  s.fast.poll(s.table, T0 + 200);
  assert.equal(s.kernel.flows.size, 0, 'taken back');
  assert.equal(s.table.field(s.out.index, EntryCell.STATE) & 0xff, TcpState.SYN_RECV, 'left to user space as it was');
  assert.ok((s.table.field(s.out.index, EntryCell.TRAFFIC) & Traffic.NO_FAST) !== 0);
  assert.equal(s.fast.unansweredSyns, 1);

  // 64 spoofed sources, none answered: the next SYN is not offered for a second.
  const f = setup(TCP, true);
  let at = T0;
  for (let i = 0; i < 64; i++) {
    f.k.saddr = ip('192.168.1.1') + i;
    f.packet(TCP_SYN, at, false, false);
    at += 3;
  }
  assert.equal(f.kernel.flows.size, 64);
  f.fast.poll(f.table, at + 200);
  assert.equal(f.kernel.flows.size, 0);
  f.kernel.calls.length = 0;
  f.k.saddr = ip('192.168.2.1');
  f.packet(TCP_SYN, at + 300, false, false);
  assert.deepEqual(f.kernel.calls, [], 'paused');
  f.k.saddr = ip('192.168.2.2');
  f.packet(TCP_SYN, at + 200 + 1000, false, false);
  assert.equal(f.kernel.calls.length, 1, 'offered again after the pause');
});

test('tracked: no offer while the table is under pressure', () => {
  const s = setup(TCP, true);
  s.table.cells[HeaderCell.AMEMTHRESH] = s.table.capacity + 1;
  s.packet(TCP_SYN, T0, false, false);
  assert.deepEqual(s.kernel.calls, []);
});

test('tracked NAT: the real server\'s FIN alone keeps it in the kernel (FIN_WAIT); the client\'s closes it (TIME_WAIT), both keys deleted', () => {
  const s = natSetup(true);
  s.packet(TCP_SYN);
  assert.equal(s.kernel.calls.length, 1);
  assert.match(s.kernel.calls[0]!, new RegExp(`^putNat .* flags ${FAST_TRACK}$`));
  const inFlow = s.kernel.flows.get(s.inKey)!;
  const reply = s.kernel.flows.get(s.replyKey)!;
  inFlow.packets = 2; // the ACK, the request
  reply.packets = 3; // the SYN-ACK, the response, its FIN
  reply.flags |= FAST_FIN;
  s.fast.poll(s.table, T0 + 200);
  assert.equal(connStateName(TCP, s.table.field(s.out.index, EntryCell.STATE) & 0xff, false), 'FIN_WAIT');
  assert.equal(s.kernel.flows.size, 2, 'half closed: both keys stay');
  const traffic = s.table.field(s.out.index, EntryCell.TRAFFIC);
  assert.equal((traffic & Traffic.REPLY_MASK) >>> Traffic.REPLY_SHIFT, 3, 'replies counted');
  inFlow.flags |= FAST_FIN;
  s.fast.poll(s.table, T0 + 600);
  assert.equal(connStateName(TCP, s.table.field(s.out.index, EntryCell.STATE) & 0xff, false), 'TIME_WAIT');
  assert.equal(s.kernel.flows.size, 0, 'both keys deleted');
  assert.equal(s.counters.get(WorkerStat.FAST_LEFT), 1);
});

test('tracked: a SYN handed back on a port whose connection closed in the kernel brings the entry up to date, so it is scheduled anew', () => {
  const s = setup(TCP, true);
  s.packet(TCP_SYN, T0, false, false);
  const first = s.out.index;
  const flow = s.kernel.flows.get(s.flowKey)!;
  flow.packets = 4;
  flow.flags |= FAST_FIN;
  // Before any read-back, the client reuses its port: the program hands the SYN back (its
  // direction sent a FIN) and marks the flow demoted (an OR: the other bits stay); the pipeline
  // refreshes the entry before applying the SYN.
  flow.flags |= 1;
  assert.equal(s.fast.refresh(s.table, first, s.table.seqOf(first), T0 + 50), false, 'closed');
  assert.equal(s.kernel.flows.size, 0);
  assert.equal(connStateName(TCP, s.table.field(first, EntryCell.STATE) & 0xff, false), 'FIN_WAIT');
  // conn_reuse_mode 1 expires a TIME_WAIT entry only; an input-only FIN_WAIT one takes the SYN
  // as IPVS's table says (SYN_RECV), on the same real server.
  assert.equal(s.sched.inPacket(s.svc, s.k, TCP_SYN, T0 + 51, s.out), ConnVerdict.FORWARD);
  assert.equal(s.table.field(s.out.index, EntryCell.STATE) & 0xff, TcpState.SYN_RECV);
});

test('uvsd --fast-path-early: off by default, on|off, anything else refused with the option named', () => {
  assert.equal(parseUvsdArgs([]).fastPathEarly, false);
  assert.equal(parseUvsdArgs(['--fast-path-early', 'on']).fastPathEarly, true);
  assert.equal(parseUvsdArgs(['--fast-path-early', 'off']).fastPathEarly, false);
  assert.throws(() => parseUvsdArgs(['--fast-path-early', 'yes']), /--fast-path-early: "yes" is not one of on, off/);
});

test('tracked: a connection with nothing after its handshake (a spoofed SYN-then-ACK pair) is taken back 1.4 s after its SYN; one with data stays', () => {
  const s = setup(TCP, true);
  s.packet(TCP_SYN, T0, false, false);
  const spoofed = s.out.index;
  s.k.saddr = ip('192.168.0.8');
  s.packet(TCP_SYN, T0, false, false);
  const real = s.out.index;
  const keys = [...s.kernel.flows.keys()];
  assert.equal(keys.length, 2);
  s.kernel.flows.get(keys[0]!)!.packets = 1; // the ACK alone
  s.kernel.flows.get(keys[1]!)!.packets = 1;
  s.fast.poll(s.table, T0 + 200);
  s.fast.poll(s.table, T0 + 600);
  assert.equal(s.kernel.flows.size, 2, 'both still in the kernel at the first two read-backs');
  assert.equal(s.table.field(spoofed, EntryCell.STATE) & 0xff, TcpState.ESTABLISHED);
  s.kernel.flows.get(keys[1]!)!.packets = 2; // the real client's request
  s.fast.poll(s.table, T0 + 1400);
  assert.deepEqual([...s.kernel.flows.keys()], [keys[1]], 'the idle one taken back, the other kept');
  assert.equal(s.table.field(spoofed, EntryCell.TRAFFIC) & (Traffic.OFFLOADED | Traffic.DATA_MASK), 0, 'back in user space, no data: what drop_entry evicts first');
  assert.ok((s.table.field(real, EntryCell.TRAFFIC) & Traffic.OFFLOADED) !== 0);
});
