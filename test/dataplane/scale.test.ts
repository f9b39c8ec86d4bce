// The pieces that make changes cheap at scale, each without a kernel: the coarse BPF filter
// (through the interpreter), the guard's element deltas (a recording runner), the model's change
// tracking and batches, the protocol's line splitting of huge requests, and the workers' service
// deltas (ConnServiceSet).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACCEPT_BYTES, EXACT_FILTER_MAX, PREFIX_FILTER_MAX, buildSelectFilter, coveringPrefixes, runFilter, sameFilter,
} from '../../src/dataplane/bpf';
import { KernelGuard, type CommandRunner } from '../../src/dataplane/guard';
import { IpvsError, ServiceModel, type DestConfig, type ServiceConfig } from '../../src/service/model';
import { LineSplitter, MAX_LINE_BYTES } from '../../src/control/protocol';
import { ConnServiceSet } from '../../src/dataplane/conn-services';
import { ServiceSnapshot } from '../../src/service/snapshot';
import { DestTable } from '../../src/tables/dest-table';
import { getSchedulerFactory } from '../../src/sched/index';
import { workerRestartDelay } from '../../src/dataplane/dataplane';
import type { WorkerService } from '../../src/dataplane/worker';
import { udpFrame } from '../netns/native-lab';
import { ipv4ToInt } from '../../src/packet/addr';

const HOST = 0;
const OTHERHOST = 3;
const udp = (src: string, dst: string): Uint8Array =>
  udpFrame({ dstMac: '02:00:00:00:00:0b', srcMac: '02:00:00:00:00:0a', srcIp: src, dstIp: dst, sport: 1000, dport: 80, payload: new Uint8Array(10) });
const vip = (i: number): number => ipv4ToInt(`10.90.${i >> 8}.${i & 255}`);

describe('buildSelectFilter', () => {
  it('lists each address exactly while they are few', () => {
    const dsts = Array.from({ length: EXACT_FILTER_MAX }, (_, i) => vip(i));
    const prog = buildSelectFilter(dsts, []);
    assert.equal(runFilter(prog, udp('10.0.0.9', '10.90.0.5'), HOST), Math.min(ACCEPT_BYTES, udp('10.0.0.9', '10.90.0.5').length));
    assert.equal(runFilter(prog, udp('10.0.0.9', `10.90.0.${EXACT_FILTER_MAX}`), HOST), 0, 'the next address is not selected');
  });

  it('beyond, selects covering prefixes: every service address and its neighbours, nothing far off', () => {
    const dsts = Array.from({ length: 10_000 }, (_, i) => vip(i));
    const srcs = Array.from({ length: 500 }, (_, i) => ipv4ToInt(`10.78.${i >> 8}.${i & 255}`));
    const prog = buildSelectFilter(dsts, srcs);
    assert.ok(prog.length < 4096 && prog.length <= 2 * PREFIX_FILTER_MAX + 10, `${prog.length} instructions`);
    for (const i of [0, 1, 4999, 9999]) {
      const f = udp('10.0.0.9', `10.90.${i >> 8}.${i & 255}`);
      assert.ok(runFilter(prog, f, HOST) > 0, `service address ${i}`);
      assert.equal(runFilter(prog, f, OTHERHOST), 0, 'not for this host');
    }
    assert.ok(runFilter(prog, udp('10.78.1.200', '10.0.0.9'), HOST) > 0, 'a NAT real server as source');
    assert.equal(runFilter(prog, udp('10.0.0.9', '192.168.1.1'), HOST), 0, 'far off');
    assert.equal(runFilter(prog, udp('10.0.0.9', '10.91.0.1'), HOST), 0, 'outside the covering prefixes');
  });

  it('coveringPrefixes keeps to its budget with the longest common length', () => {
    assert.deepEqual(coveringPrefixes([ipv4ToInt('10.0.0.1'), ipv4ToInt('10.0.0.2')], 1), [{ addr: ipv4ToInt('10.0.0.0'), len: 30 }]);
    assert.deepEqual(coveringPrefixes([ipv4ToInt('10.0.0.1'), ipv4ToInt('192.0.0.2')], 1), [{ addr: 0, len: 0 }]);
    const p = coveringPrefixes(Array.from({ length: 3000 }, (_, i) => vip(i)), 48);
    assert.ok(p.length <= 48 && p.length > 0);
    assert.ok(sameFilter(buildSelectFilter([vip(1)], []), buildSelectFilter([vip(1)], [])));
    assert.ok(!sameFilter(buildSelectFilter([vip(1)], []), buildSelectFilter([vip(2)], [])));
  });
});

describe('KernelGuard.update', () => {
  it('sends only the changed elements, deletions first, in one transaction', async () => {
    const scripts: string[] = [];
    const runner: CommandRunner = {
      run: (_cmd, args, input) => {
        if (args[0] !== 'list') scripts.push(input ?? '');
        return Promise.resolve({ status: 0, stdout: '', stderr: '' });
      },
    };
    const g = new KernelGuard(runner, 'uvst');
    await g.install();
    scripts.length = 0;
    await g.update({
      addServices: [{ addr: '10.0.0.1', protocol: 'tcp', port: 80 }], delServices: [{ addr: '10.0.0.2', protocol: 'udp', port: 53 }],
      addNatReplies: [], delNatReplies: [], addNatSources: ['10.1.0.1'], delNatSources: [],
    });
    assert.deepEqual(scripts, [
      'delete element ip uvst services { 10.0.0.2 . udp . 53 }\nadd element ip uvst services { 10.0.0.1 . tcp . 80 }\nadd element ip uvst nat_sources { 10.1.0.1 }\n',
    ]);
    await g.update({ addServices: [], delServices: [], addNatReplies: [], delNatReplies: [], addNatSources: [], delNatSources: [] });
    assert.equal(scripts.length, 1, 'nothing changed: no nft at all');
    await assert.rejects(g.update({ addServices: [], delServices: [], addNatReplies: [], delNatReplies: [], addNatSources: ['10.1'], delNatSources: [] }), /bad IPv4 address "10.1"/);
  });
});

const svc = (i: number): ServiceConfig => ({ fwmark: 0, af: 4, protocol: 6, addr: vip(i), port: 80, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' });
const dest = (j: number): DestConfig => ({ af: 4, addr: ipv4ToInt(`10.77.0.${20 + j}`), port: 80, fwd: 3, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 });

describe('ServiceModel at scale', () => {
  it('changedSince lists exactly the services changed, deletions included', () => {
    const m = new ServiceModel({ maxServices: 100, destCapacity: 100 });
    for (let i = 0; i < 5; i++) m.addService(svc(i));
    const g0 = m.changedSince(0).generation;
    m.addDest(svc(1), dest(1));
    m.deleteService(svc(3));
    const { generation, ids } = m.changedSince(g0);
    assert.deepEqual(ids.sort(), [1, 3]);
    assert.equal(m.getById(3), null);
    assert.equal(m.getById(1)!.dests.length, 1);
    assert.deepEqual(m.changedSince(generation).ids, []);
    // The lowest free id is reused, as before.
    assert.equal(m.addService(svc(9)).id, 3);
  });

  it('batch() tells the listeners once, and once even when it throws half-way', () => {
    const m = new ServiceModel({ maxServices: 3, destCapacity: 10 });
    let calls = 0;
    m.onChange(() => calls++);
    m.batch(() => {
      for (let i = 0; i < 2; i++) m.addService(svc(i));
    });
    assert.equal(calls, 1);
    assert.throws(() => m.batch(() => {
      m.addService(svc(2));
      m.addService(svc(3)); // the fourth: over maxServices
    }), (e: unknown) => e instanceof IpvsError && e.errno === 'ENOMEM' && /--svc-max/.test(e.message));
    assert.equal(calls, 2);
  });

  it('names the option when the real-server table is full', () => {
    const m = new ServiceModel({ maxServices: 3, destCapacity: 1 });
    m.addService(svc(0));
    m.addDest(svc(0), dest(0));
    assert.throws(() => m.addDest(svc(0), dest(1)), /real-server table is full: 1 real servers \(uvsd --dest-max raises the cap\)/);
  });
});

describe('LineSplitter', () => {
  it('joins a line that arrives in many chunks, splits many lines in one chunk', () => {
    const got: string[] = [];
    const s = new LineSplitter((l) => got.push(l), () => got.push('OVERFLOW'));
    const big = 'x'.repeat(200_000);
    for (let i = 0; i < big.length; i += 65536) s.push(big.slice(i, i + 65536));
    s.push('\na\n\nb');
    s.push('c\n');
    assert.deepEqual(got.map((l) => (l.length > 10 ? `len ${l.length}` : l)), ['len 200000', 'a', 'bc']);
  });

  it('gives up on a line longer than the limit', () => {
    const got: string[] = [];
    const s = new LineSplitter((l) => got.push(l.slice(0, 5)), () => got.push('OVERFLOW'));
    const chunk = 'y'.repeat(1 << 20);
    for (let i = 0; i <= MAX_LINE_BYTES >> 20; i++) s.push(chunk);
    s.push('\nok\n');
    assert.deepEqual(got, ['OVERFLOW', 'ok']);
  });
});

describe('ConnServiceSet', () => {
  it('applies whole snapshots and deltas, and ignores a delta on a generation it does not have', () => {
    const dests = new DestTable(16);
    const rr = getSchedulerFactory('rr').create(dests, 0, 64);
    const ws = (slot: number, port: number): WorkerService => ({
      slot, protocol: 6, addr: vip(slot), port, persistent: false, persistTimeoutMs: 0, netmask: -1, onePacket: false,
      scheduler: { name: 'rr', flags: 0, shared: rr.shared },
    });
    const compiled = (slot: number, port: number) => ({
      slot, protocol: 6, addr: vip(slot), port, fwmark: 0, persistTimeout: 0, netmask: -1, schedIndex: slot, schedFlags: 0, destCount: 0, onePacket: false, active: true,
    });
    const set = new ConnServiceSet(dests);
    const s1 = ServiceSnapshot.build(1, 8, [compiled(0, 80), compiled(1, 80)]);
    assert.equal(set.apply(s1, { services: [ws(0, 80), ws(1, 80)], removed: [], base: 0, full: false }), null, 'a delta first: wait for a whole one');
    const a1 = set.apply(s1, { services: [ws(0, 80), ws(1, 80)], full: true })!;
    assert.equal(a1[0]!.port, 80);
    assert.equal(a1[1]!.port, 80);
    const s2 = ServiceSnapshot.build(2, 8, [compiled(0, 81)]);
    const a2 = set.apply(s2, { services: [ws(0, 81)], removed: [1], base: 1, full: false })!;
    assert.equal(a2[0]!.port, 81);
    assert.equal(a2[1], null);
    const s4 = ServiceSnapshot.build(4, 8, []);
    assert.equal(set.apply(s4, { services: [], removed: [0], base: 3, full: false }), null, 'generation 3 never came');
  });
});

describe('ServiceSnapshot.patch', () => {
  it('answers every lookup as a freshly built snapshot does, through random changes', () => {
    // Few addresses and ports, a small capacity: long clusters and shared addresses, the cases
    // where backward-shift deletion and the address index can go wrong.
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const CAP = 64;
    const live = new Map<number, ReturnType<typeof mk>>();
    function mk(slot: number) {
      return {
        slot, protocol: rnd(2) === 0 ? 6 : 17, addr: vip(rnd(6)), port: rnd(4) * 10 + 1, fwmark: 0, persistTimeout: 0,
        netmask: -1, schedIndex: slot, schedFlags: 0, destCount: rnd(3), onePacket: false, active: rnd(4) !== 0,
      };
    }
    const key = (s: { protocol: number; addr: number; port: number }): string => `${s.protocol}/${s.addr | 0}/${s.port}`;
    const slotsAt = (protocol: number, addr: number): number[] =>
      [...live.values()].filter((s) => s.protocol === protocol && (s.addr | 0) === addr).map((s) => s.slot);
    let snap = ServiceSnapshot.build(1, CAP, []);
    for (let gen = 2; gen < 400; gen++) {
      const set: ReturnType<typeof mk>[] = [];
      const clear: number[] = [];
      const touched = new Set<number>();
      for (let k = rnd(6); k >= 0; k--) {
        const slot = rnd(CAP);
        if (touched.has(slot)) continue;
        touched.add(slot);
        if (live.has(slot) && rnd(2) === 0) {
          live.delete(slot);
          clear.push(slot);
          continue;
        }
        const s = mk(slot);
        const taken = new Set([...live.values()].filter((o) => o.slot !== slot).map(key));
        if (taken.has(key(s)) || set.some((o) => key(o) === key(s))) continue;
        live.set(slot, s);
        set.push(s);
      }
      snap = ServiceSnapshot.patch(snap, gen, set, clear, live.size, slotsAt);
      const fresh = ServiceSnapshot.build(gen, CAP, [...live.values()]);
      assert.equal(snap.count, fresh.count);
      for (let a = 0; a < 7; a++) {
        for (const protocol of [6, 17]) {
          assert.equal(snap.hasAddress(protocol, vip(a)), fresh.hasAddress(protocol, vip(a)), `gen ${gen}: address ${a}/${protocol}`);
          for (let p = 0; p < 5; p++) {
            assert.equal(snap.lookup(protocol, vip(a), p * 10 + 1), fresh.lookup(protocol, vip(a), p * 10 + 1), `gen ${gen}: ${protocol} ${a}:${p}`);
          }
        }
      }
      for (let slot = 0; slot < CAP; slot++) assert.equal(snap.flags(slot), fresh.flags(slot), `gen ${gen}: flags of ${slot}`);
    }
  });
});

describe('uvsd --svc-max / --dest-max', () => {
  it('sets the caps, within what the tables can index', async () => {
    const { parseUvsdArgs, DEFAULT_SVC_MAX, DEFAULT_DEST_MAX, UvsdUsageError } = await import('../../src/control/uvsd-options');
    const d = parseUvsdArgs([]);
    assert.equal(d.svcMax, DEFAULT_SVC_MAX);
    assert.equal(d.destMax, DEFAULT_DEST_MAX);
    const o = parseUvsdArgs(['--svc-max', '20000', '--dest-max=1000']);
    assert.equal(o.svcMax, 20000);
    assert.equal(o.destMax, 1000);
    // 10,000 services × 10 real servers fit the default; a connection entry keeps 24 bits of slot.
    assert.ok(DEFAULT_DEST_MAX >= 100_000, `default --dest-max ${DEFAULT_DEST_MAX}`);
    assert.equal(parseUvsdArgs(['--dest-max', '100000']).destMax, 100_000);
    assert.equal(parseUvsdArgs(['--dest-max', '16777215']).destMax, 16_777_215);
    assert.throws(() => parseUvsdArgs(['--dest-max', '16777216']), (e: unknown) => e instanceof UvsdUsageError && /--dest-max: 16777216 is out of range 1\.\.16777215/.test(e.message));
    assert.throws(() => parseUvsdArgs(['--svc-max', 'lots']), /--svc-max: "lots" is not a whole number/);
  });
});

describe('NetInfo.routesAndNeighbours', () => {
  it('reads the neighbour dump and the routes from one ip -batch, skipping failed lookups', async () => {
    const { NetInfo } = await import('../../src/dataplane/netinfo');
    const inputs: string[] = [];
    const runner: CommandRunner = {
      run: (_cmd, args, input) => {
        inputs.push(`${args.join(' ')}|${input}`);
        return Promise.resolve({
          status: 1,
          stdout: '[{"dst":"10.0.0.21","dev":"e0","lladdr":"02:00:00:00:00:21","state":["REACHABLE"]},{"dst":"10.0.0.22","dev":"e0","state":["FAILED"]}]\n' +
            '[{"dst":"10.0.0.21","dev":"e0","prefsrc":"10.0.0.2","flags":[]}]\n',
          stderr: 'RTNETLINK answers: Network is unreachable\n',
        });
      },
    };
    const n = new NetInfo({ runner });
    const { routes, neighbours } = await n.routesAndNeighbours(['10.0.0.21', '10.9.9.9']);
    assert.deepEqual(inputs, ['-j -force -batch -|neigh show\nroute get 10.0.0.21\nroute get 10.9.9.9\n']);
    assert.deepEqual([...neighbours], [['e0 10.0.0.21', '02:00:00:00:00:21']]);
    assert.equal(routes.get('10.0.0.21')?.ifname, 'e0');
    assert.equal(routes.has('10.9.9.9'), false);
    await assert.rejects(n.routesAndNeighbours(['10.1']), /bad IPv4 address "10.1"/);
    const broken = new NetInfo({ runner: { run: () => Promise.resolve({ status: 255, stdout: '', stderr: 'Object "neigh" is unknown' }) } });
    await assert.rejects(broken.routesAndNeighbours(['10.0.0.1']), /no neighbour table in the answer: Object "neigh" is unknown/);
  });
});

describe('worker restarts', () => {
  it('back off: 100 ms after a quick death, doubling with each quick death in a row, at most 30 s', () => {
    assert.deepEqual([0, 1, 2, 3, 8, 9, 50].map((n) => workerRestartDelay(n)), [100, 200, 400, 800, 25_600, 30_000, 30_000]);
  });
});
