// Kernel scheduling (uvsd --fast-path-sched; src/dataplane/fast-path.ts, "New connections
// scheduled in the kernel"): the cycles user space lays out for the XDP program (schedCycle,
// FastPath.syncService), and what a worker makes of the program's records (Pipeline.adoptScheduled):
// entries, counters, the NAT hop, the read-backs that follow, and the records it refuses. The
// program itself runs in test/netns/fast-path-nat.test.ts and flood.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DestField, DestFlag, DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { ConnRef, ConnTable, EntryCell, HeaderCell, Traffic } from '../../src/conn/table';
import type { ConnService } from '../../src/conn/schedule';
import { getSchedulerFactory } from '../../src/sched/index';
import { NextHopTable } from '../../src/tables/next-hop';
import { ClientHopTable } from '../../src/tables/client-hops';
import { ServiceSnapshot, type CompiledService } from '../../src/service/snapshot';
import { WorkerCounters, WorkerStat, Stat, STAT_CELLS } from '../../src/dataplane/counters';
import { Pipeline } from '../../src/dataplane/pipeline';
import { FAST_EVENT_CELLS, FAST_FIN, FAST_TRACK, FastCtl, FastFlows, FastKind, FastPath, SCHED_SLOTS, schedCycle, type SchedService } from '../../src/dataplane/fast-path';
import { connStateName, TcpState } from '../../src/conn/tcp-state';
import { parseUvsdArgs } from '../../src/control/uvsd-options';
import type { FastEventsReader, FastPathMaps, NativeAddon } from '../../src/native/addon';
import { ipv4ToInt } from '../../src/packet/addr';

const TCP = 6;
const VIP = ipv4ToInt('10.77.0.100');
const CLIENT = ipv4ToInt('10.77.0.10');
const RIPS = ['10.78.0.21', '10.78.0.22', '10.78.0.23'].map(ipv4ToInt);
const PERSISTENT = 1;
const ONEPACKET = 4;
const T0 = 9_000_000;

function destTable(fwd: ForwardMethod[], weights: number[]): { dests: DestTable; slots: number[] } {
  const dests = new DestTable(16);
  const slots = fwd.map((f, i) => {
    const slot = dests.allocate();
    dests.set(slot, DestField.ADDR, RIPS[i]! | 0);
    dests.set(slot, DestField.PORT, 8080);
    dests.set(slot, DestField.WEIGHT, weights[i]!);
    dests.set(slot, DestField.FWD, f);
    dests.set(slot, DestField.SERVICE, 3);
    return slot;
  });
  return { dests, slots };
}

/** A service as the model lists it: real servers newest first. */
function service(slots: number[], fwd: ForwardMethod[], over: Partial<SchedService> = {}): SchedService {
  const dests = slots.map((slot, i) => ({ slot, addr: RIPS[i]!, port: 8080, fwd: fwd[i]!, uThreshold: 0, lThreshold: 0 })).reverse();
  return { protocol: TCP, port: 80, fwmark: 0, flags: 0, scheduler: 'rr', dests, ...over };
}

test('schedCycle: rr takes each server with a weight once, in the list\'s order (newest first, as rr walks it); NAT with its port, DR with the service\'s', () => {
  const fwd = [ForwardMethod.MASQ, ForwardMethod.DROUTE, ForwardMethod.MASQ];
  const { dests, slots } = destTable(fwd, [1, 3, 0]);
  const out = new Int32Array(SCHED_SLOTS * 4);
  const n = schedCycle(service(slots, fwd), dests, PERSISTENT, ONEPACKET, out);
  assert.equal(n, 2, 'the weight-0 server is left out');
  assert.deepEqual([...out.subarray(0, 8)], [slots[1]!, FastKind.DR, RIPS[1]! | 0, 80, slots[0]!, FastKind.NAT, RIPS[0]! | 0, 8080]);
  // The user-space rr's picks, in the same order.
  const rr = getSchedulerFactory('rr').create(dests, 0, 16);
  rr.update(slots);
  const key = { protocol: TCP, saddr: CLIENT, sport: 1, daddr: VIP, dport: 80 };
  assert.deepEqual([rr.schedule(key, 0), rr.schedule(key, 0)], [slots[1], slots[0]]);
  // Not available (removed by a checker, or inhibited): left out too.
  dests.updateFlags(slots[0]!, 0, DestFlag.AVAILABLE);
  assert.equal(schedCycle(service(slots, fwd), dests, PERSISTENT, ONEPACKET, out), 1);
  assert.equal(out[0], slots[1]);
});

test('schedCycle: wrr is the kernel\'s walk over one round (from the largest weight down by the gcd), the same picks as the user-space wrr', () => {
  const fwd = [ForwardMethod.DROUTE, ForwardMethod.DROUTE, ForwardMethod.DROUTE];
  const weights = [4, 2, 6];
  const { dests, slots } = destTable(fwd, weights);
  const out = new Int32Array(SCHED_SLOTS * 4);
  const n = schedCycle(service(slots, fwd, { scheduler: 'wrr' }), dests, PERSISTENT, ONEPACKET, out);
  assert.equal(n, 6, 'one round: 4/2 + 2/2 + 6/2 entries');
  const picks = Array.from({ length: n }, (_, i) => out[i * 4]!);
  // The user-space scheduler repeats a round of the same length, the same sequence from where it
  // happens to start (servers added one by one leave its cw at 1, the round's last level).
  const wrr = getSchedulerFactory('wrr').create(dests, 0, 16);
  wrr.update(slots);
  const key = { protocol: TCP, saddr: CLIENT, sport: 1, daddr: VIP, dport: 80 };
  const user = Array.from({ length: 2 * n }, () => wrr.schedule(key, 0));
  assert.deepEqual(user.slice(n), user.slice(0, n), 'a round of n');
  const rotations = Array.from({ length: n }, (_, r) => [...user.slice(r, n), ...user.slice(0, r)].join());
  assert.ok(rotations.includes(picks.join()), `${picks.join()} is a rotation of ${user.slice(0, n).join()}`);
  for (const [i, w] of weights.entries()) assert.equal(picks.filter((s) => s === slots[i]).length, w / 2, 'each server in proportion');
});

test('schedCycle: not in the kernel for UDP, persistence, one-packet, fwmark, port 0, count-based schedulers, thresholds, TUN servers, or a round past 255', () => {
  const fwd = [ForwardMethod.DROUTE, ForwardMethod.MASQ];
  const { dests, slots } = destTable(fwd, [1, 1]);
  const out = new Int32Array(SCHED_SLOTS * 4);
  const cycle = (over: Partial<SchedService>, f = fwd): number => schedCycle(service(slots, f, over), dests, PERSISTENT, ONEPACKET, out);
  assert.equal(cycle({}), 2);
  assert.equal(cycle({ protocol: 17 }), 0);
  assert.equal(cycle({ flags: PERSISTENT }), 0);
  assert.equal(cycle({ flags: ONEPACKET }), 0);
  assert.equal(cycle({ fwmark: 7 }), 0);
  assert.equal(cycle({ port: 0 }), 0);
  for (const s of ['wlc', 'lc', 'sh', 'mh', 'sed']) assert.equal(cycle({ scheduler: s }), 0, s);
  const thresholds = service(slots, fwd);
  (thresholds.dests[0] as { uThreshold: number }).uThreshold = 10;
  assert.equal(schedCycle(thresholds, dests, PERSISTENT, ONEPACKET, out), 0, 'an upper threshold depends on live counts');
  assert.equal(cycle({}, [ForwardMethod.DROUTE, ForwardMethod.TUNNEL]), 0, 'TUN stays in user space');
  dests.set(slots[0]!, DestField.WEIGHT, 255);
  dests.set(slots[1]!, DestField.WEIGHT, 1);
  assert.equal(cycle({ scheduler: 'wrr' }), 0, '256 entries in a round: too long');
  assert.equal(cycle({ scheduler: 'rr' }), 2, 'rr ignores the weights\' size');
});

/** The kernel's side for FastPath and FastFlows: a map of keys, the services' cycles, the events. */
class FakeKernel {
  flows = new Map<string, { packets: number; flags: number; base: number }>();
  cycles = new Map<string, number[]>();
  calls: string[] = [];
  ctl = new ArrayBuffer(64);
  static key(p: number, s: number, sp: number, d: number, dp: number): string {
    return `${p}/${s >>> 0}:${sp}>${d >>> 0}:${dp}`;
  }
  native(): NativeAddon {
    return {
      fastPathMaps: (o: { entries: number; slots: number; sched?: { services: number } }): FastPathMaps => ({
        fastFd: 30, hopsFd: 31, hops: new ArrayBuffer(16 * 48), close: () => undefined,
        ...(o.sched ? { svcFd: 32, ctlFd: 33, eventsFd: 34, ctl: this.ctl } : {}),
      }),
      fastSvcPut: (_fd: number, p: number, v: number, vp: number, id: number, e: Int32Array, n: number): number => {
        this.calls.push(`svcPut ${p}/${v >>> 0}:${vp} id ${id} n ${n}`);
        this.cycles.set(`${p}/${v >>> 0}:${vp}`, [...e.subarray(0, n * 4)]);
        return 0;
      },
      fastSvcDelete: (_fd: number, p: number, v: number, vp: number): boolean => {
        this.calls.push(`svcDelete ${p}/${v >>> 0}:${vp}`);
        return this.cycles.delete(`${p}/${v >>> 0}:${vp}`);
      },
      fastDelete: (_fd: number, p: number, s: number, sp: number, d: number, dp: number): boolean => {
        this.calls.push(`delete ${FakeKernel.key(p, s, sp, d, dp)}`);
        return this.flows.delete(FakeKernel.key(p, s, sp, d, dp));
      },
      fastIdle: (_fd: number, p: number, s: number, sp: number, d: number, dp: number, out?: Float64Array): number => {
        const f = this.flows.get(FakeKernel.key(p, s, sp, d, dp));
        if (f === undefined) return -1;
        if (out) {
          out[0] = f.base;
          out[1] = f.packets;
          if (out.length > 2) out[2] = f.flags;
        }
        return 0;
      },
    } as unknown as NativeAddon;
  }
}

const CLIENT_MAC = [0x02, 0, 0, 0, 0, 0x0a];
const OUR_MAC = [0x02, 0, 0, 0, 0, 0x02];

function lab(fwd = ForwardMethod.MASQ) {
  const { dests, slots } = destTable([fwd, fwd], [1, 1]);
  const conns = new ConnTable(64, dests, { workerId: 0 });
  const counters = new WorkerCounters({ maxServices: 8, maxDests: 16 });
  const kernel = new FakeKernel();
  const native = kernel.native();
  const fast = new FastFlows(native, 30, counters, [0, 7], true);
  let now = T0;
  fast.clock = () => now;
  conns.offloadHook = fast;
  const ctl = new BigUint64Array(kernel.ctl);
  // The events ring is read by the worker (native); the records are given to adoptScheduled here.
  const reader: FastEventsReader = { read: () => 0, close: () => undefined };
  fast.attachSched(reader, ctl);
  const scheduler = getSchedulerFactory('rr').create(dests, 0, 16);
  scheduler.update(slots);
  const compiled: CompiledService = {
    slot: 3, protocol: TCP, addr: VIP, port: 80, fwmark: 0, persistTimeout: 0, netmask: 0xffffffff,
    schedIndex: 0, schedFlags: 0, destCount: 2, onePacket: false, active: true,
  };
  const svc: ConnService = { protocol: TCP, addr: VIP, port: 80, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler };
  const pipeline = new Pipeline({ dests, conns, nextHops: new NextHopTable(16), counters, clientHops: new ClientHopTable(8), egressCount: 2, fast });
  pipeline.setSnapshot(ServiceSnapshot.build(1, 8, [compiled]), [null, null, null, svc]);
  const rec = new Int32Array(16 * FAST_EVENT_CELLS);
  /** One record of the program: client port `cport` scheduled to `slot`, the SYN in by ifindex 7. */
  const record = (at: number, cport: number, slot: number, svcId = 3, kind = fwd === ForwardMethod.MASQ ? FastKind.NAT : FastKind.DR): void => {
    const c = at * FAST_EVENT_CELLS;
    rec.set([CLIENT | 0, VIP | 0, cport, 80, TCP, slot, svcId, 7, kind,
      (CLIENT_MAC[0]! << 24) | (CLIENT_MAC[1]! << 16) | (CLIENT_MAC[2]! << 8) | CLIENT_MAC[3]!,
      (CLIENT_MAC[4]! << 24) | (CLIENT_MAC[5]! << 16) | (OUR_MAC[0]! << 8) | OUR_MAC[1]!,
      (OUR_MAC[2]! << 24) | (OUR_MAC[3]! << 16) | (OUR_MAC[4]! << 8) | OUR_MAC[5]!], c);
    // What the program put: the client's key (and a NAT reply's), tracked, the SYN forwarded.
    kernel.flows.set(FakeKernel.key(TCP, CLIENT, cport, VIP, 80), { packets: 0, flags: FAST_TRACK, base: 1 });
    if (kind === FastKind.NAT) kernel.flows.set(FakeKernel.key(TCP, dests.addr(slot), 8080, CLIENT, cport), { packets: 0, flags: FAST_TRACK, base: 1 });
  };
  const ifaceOf = (ifindex: number): number => (ifindex === 7 ? 1 : -1);
  const adopt = (n: number, at = T0): void => {
    now = at;
    pipeline.adoptScheduled(rec, n, at, ifaceOf);
  };
  const entry = (cport: number): ConnRef | null => {
    const ref = new ConnRef();
    return conns.lookupIn(TCP, CLIENT, cport, VIP, 80, ref) ? ref : null;
  };
  return { dests, slots, conns, counters, kernel, fast, ctl, record, adopt, entry, setNow: (t: number) => { now = t; } };
}

test('adoptScheduled: an entry per record on the kernel\'s real server, SYN_RECV, counted, offloaded and tracked; NAT with the SYN\'s hop', () => {
  const s = lab();
  s.record(0, 40000, s.slots[1]!);
  s.record(1, 40001, s.slots[0]!);
  s.adopt(2);
  for (const [cport, slot] of [[40000, s.slots[1]!], [40001, s.slots[0]!]] as const) {
    const e = s.entry(cport);
    assert.ok(e !== null, `entry for ${cport}`);
    assert.equal(e.destSlot, slot, 'the real server the program chose');
    assert.equal(e.state & 0xff, TcpState.SYN_RECV);
    assert.equal(s.conns.field(e.index, EntryCell.IN_PKTS), 1, 'the SYN');
    const t = s.conns.field(e.index, EntryCell.TRAFFIC);
    assert.ok((t & Traffic.OFFLOADED) !== 0, 'its keys are the kernel\'s');
    assert.ok((t & Traffic.HOP_VALID) !== 0);
    assert.equal((t & Traffic.HOP_IF_MASK) >>> Traffic.HOP_IF_SHIFT, 1, 'the interface the SYN came in by');
    // The hop as the pipeline would have learned it from the SYN: the client's MAC, then ours.
    assert.equal(s.conns.field(e.index, EntryCell.HOP_A) >>> 0, 0x0200_0000);
    assert.equal(s.conns.field(e.index, EntryCell.HOP_B) >>> 0, 0x000a_0200);
    assert.equal(s.conns.field(e.index, EntryCell.HOP_C) >>> 0, 0x0000_0002);
    assert.equal(s.dests.get(slot, DestField.INACTIVE), 1);
  }
  assert.equal(s.counters.cells[3 * STAT_CELLS + Stat.CONNS], 2, 'the service\'s connections');
  assert.equal(s.counters.cells[s.counters.destBase + s.slots[0]! * STAT_CELLS + Stat.CONNS], 1);
  assert.equal(s.counters.cells[3 * STAT_CELLS + Stat.INPKTS], 0, 'packets are the program\'s to count');
  assert.equal(s.counters.get(WorkerStat.FAST_SCHEDULED), 2);
  assert.equal(s.fast.tracked, 2);
  // The read-back finds the rest of a short connection done in the kernel: closed, keys deleted.
  for (const f of s.kernel.flows.values()) {
    f.packets = 3;
    f.flags |= FAST_FIN;
  }
  assert.equal(s.fast.poll(s.conns, T0 + 200), 2);
  assert.equal(s.kernel.flows.size, 0, 'both connections\' keys deleted');
  const e = s.entry(40000)!;
  assert.equal(connStateName(TCP, e.state & 0xff, false), 'TIME_WAIT');
});

test('adoptScheduled: a record for a service gone, not its own address, or a real server taken away meanwhile has its keys taken back', () => {
  const s = lab();
  s.record(0, 41000, s.slots[0]!, 5);                  // no such service slot
  s.adopt(1);
  assert.equal(s.entry(41000), null);
  assert.equal(s.kernel.flows.size, 0, 'both keys deleted');
  s.record(0, 41001, s.slots[0]!);
  s.dests.updateFlags(s.slots[0]!, 0, DestFlag.AVAILABLE);
  s.adopt(1);
  assert.equal(s.entry(41001), null);
  assert.equal(s.kernel.flows.size, 0);
  assert.equal(s.counters.get(WorkerStat.FAST_SCHED_DROPPED), 2);
  assert.equal(s.counters.get(WorkerStat.FAST_SCHEDULED), 0);
});

test('adoptScheduled: a client reusing its port follows the kernel\'s choice; the old entry goes without touching the new keys', () => {
  const s = lab(ForwardMethod.DROUTE);
  s.record(0, 42000, s.slots[0]!);
  s.adopt(1);
  const first = s.entry(42000)!;
  // Closed in the kernel (the client's FIN): FIN_WAIT in user space, keys deleted.
  const flow = s.kernel.flows.get(FakeKernel.key(TCP, CLIENT, 42000, VIP, 80))!;
  flow.packets = 3;
  flow.flags |= FAST_FIN;
  s.fast.poll(s.conns, T0 + 200);
  assert.equal(connStateName(TCP, s.conns.field(first.index, EntryCell.STATE) & 0xff, false), 'FIN_WAIT');
  assert.equal(s.kernel.flows.size, 0);
  // The same port again, scheduled by the program to the other server.
  s.record(0, 42000, s.slots[1]!);
  s.adopt(1, T0 + 300);
  const second = s.entry(42000)!;
  assert.equal(second.destSlot, s.slots[1], 'the kernel\'s choice, not the old entry\'s server');
  assert.equal(second.state & 0xff, TcpState.SYN_RECV);
  assert.equal(s.kernel.flows.size, 1, 'the new connection\'s key stays');
});

test('the flood pause (most first read-backs unanswered) and table pressure stop the program\'s scheduling too: pausedUntil in the control cell', () => {
  const s = lab(ForwardMethod.DROUTE);
  assert.equal(s.ctl[FastCtl.PAUSED_UNTIL], 0n);
  for (let i = 0; i < 64; i++) {
    s.record(0, 43000 + i, s.slots[i % 2]!);
    s.adopt(1);
  }
  const before = process.hrtime.bigint();
  s.fast.poll(s.conns, T0 + 200);
  assert.equal(s.fast.unansweredSyns, 64);
  const until = s.ctl[FastCtl.PAUSED_UNTIL];
  assert.ok(until >= before + 900_000_000n && until <= process.hrtime.bigint() + 1_000_000_000n, 'a second from now, CLOCK_MONOTONIC');
  assert.equal(s.kernel.flows.size, 0, 'the unanswered SYNs\' keys are taken back');

  // Table pressure (amemthresh): the records entered next pause the program first.
  const p = lab(ForwardMethod.DROUTE);
  p.conns.cells[HeaderCell.AMEMTHRESH] = p.conns.capacity + 1;
  p.record(0, 44000, p.slots[0]!);
  p.adopt(1);
  assert.ok(p.ctl[FastCtl.PAUSED_UNTIL]! > process.hrtime.bigint(), 'paused under pressure');
});

test('FastPath.syncService: writes a service\'s cycle once, again when it changes, and removes it when it stops qualifying or goes', () => {
  const kernel = new FakeKernel();
  const fast = new FastPath(kernel.native(), { maxServices: 8, maxDests: 16 }, 64, { services: 8 });
  assert.ok(fast.ctl !== null);
  const fwd = [ForwardMethod.MASQ, ForwardMethod.MASQ];
  const { dests, slots } = destTable(fwd, [1, 1]);
  const svc = { ...service(slots, fwd), addr: VIP };
  fast.syncService(3, svc, dests, PERSISTENT, ONEPACKET);
  fast.syncService(3, svc, dests, PERSISTENT, ONEPACKET);
  assert.deepEqual(kernel.calls, [`svcPut 6/${VIP}:80 id 3 n 2`], 'unchanged: not written again');
  dests.set(slots[0]!, DestField.WEIGHT, 0);
  fast.syncService(3, svc, dests, PERSISTENT, ONEPACKET);
  assert.equal(kernel.calls[1], `svcPut 6/${VIP}:80 id 3 n 1`);
  fast.syncService(3, { ...svc, scheduler: 'wlc' }, dests, PERSISTENT, ONEPACKET);
  assert.equal(kernel.calls[2], `svcDelete 6/${VIP}:80`);
  fast.syncService(3, svc, dests, PERSISTENT, ONEPACKET);
  fast.syncService(3, undefined, dests, PERSISTENT, ONEPACKET);
  assert.deepEqual(kernel.calls.slice(3), [`svcPut 6/${VIP}:80 id 3 n 1`, `svcDelete 6/${VIP}:80`]);
  assert.equal(fast.scheduledServices, 0);
  // A service that moves to another port: the old key goes.
  fast.syncService(4, svc, dests, PERSISTENT, ONEPACKET);
  fast.syncService(4, { ...svc, port: 81 }, dests, PERSISTENT, ONEPACKET);
  assert.deepEqual(kernel.calls.slice(5), [`svcPut 6/${VIP}:80 id 4 n 1`, `svcDelete 6/${VIP}:80`, `svcPut 6/${VIP}:81 id 4 n 1`]);
});

test('uvsd --fast-path-sched: off by default; on needs --fast-path-early on; anything else refused with the option named', () => {
  assert.equal(parseUvsdArgs([]).fastPathSched, false);
  assert.equal(parseUvsdArgs(['--fast-path-early', 'on', '--fast-path-sched', 'on']).fastPathSched, true);
  assert.throws(() => parseUvsdArgs(['--fast-path-sched', 'on']), /--fast-path-sched on needs --fast-path-early on/);
  assert.throws(() => parseUvsdArgs(['--fast-path-early', 'on', '--fast-path-sched', 'on', '--fast-path', 'off']), /--fast-path-sched on needs/);
  assert.throws(() => parseUvsdArgs(['--fast-path-sched', 'maybe']), /--fast-path-sched: "maybe" is not one of on, off/);
});
