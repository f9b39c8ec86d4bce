// sh, dh, mh: bucket layouts worked out from ip_vs_sh_reassign / ip_vs_dh_reassign /
// ip_vs_mh_populate (torvalds/linux), hash values recomputed here with BigInt arithmetic
// independent of the implementation, plus the properties users rely on: same key, same server;
// shares proportional to weights; fallback; Maglev's small disruption when a server goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SH_TAB_SIZE, shBuckets, shFactory } from '../../src/sched/sh';
import { dhBuckets, dhFactory } from '../../src/sched/dh';
import { MH_TAB_SIZE, mhFactory, mhLookup } from '../../src/sched/mh';
import { SchedFlag } from '../../src/sched/scheduler';
import { Lab, packetKey } from './helpers';

/** hash_32(v, 8) with BigInt: top 8 bits of (v * 0x61C88647) mod 2^32. */
const hash32Big = (v: number) => Number(((BigInt(v) * 0x61c88647n) & 0xffffffffn) >> 24n);
const counts = (items: Iterable<string | number>) => {
  const m = new Map<string | number, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
};

test('sh: buckets filled round robin, each dest `weight` consecutive buckets', () => {
  // list B(1) A(3): B A A A B A A A ...
  const table = shBuckets([1, 0], [1, 3]);
  assert.deepEqual(Array.from(table.subarray(0, 8)), [1, 0, 0, 0, 1, 0, 0, 0]);
  assert.deepEqual(counts(table), new Map([[1, 64], [0, 192]]));
  // weight 0 still takes one bucket before the walk moves on
  assert.deepEqual(Array.from(shBuckets([5, 6], [0, 2]).subarray(0, 6)), [5, 6, 6, 5, 6, 6]);
  assert.deepEqual(Array.from(shBuckets([], [])).every((s) => s === -1), true);
});

test('sh: the source address picks bucket hash_32(saddr, 8); same key, same server', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 }, { name: 'C', weight: 1 });
  const sh = shFactory.create(lab.dests, 0, 8);
  sh.update(lab.list('A', 'B', 'C')); // list C B A: bucket i -> ['C','B','A'][i % 3]
  for (const saddr of [0xc0a80001, 0x0a000002, 0x01020304, 0xfffffffe]) {
    const want = ['C', 'B', 'A'][hash32Big(saddr) % 3];
    const key = packetKey(saddr);
    assert.deepEqual(lab.run(sh, 3, { key }), [want, want, want], `saddr ${saddr.toString(16)}`);
    key.sport = 1234; // ports only count with sh-port
    assert.deepEqual(lab.run(sh, 1, { key }), [want]);
  }
});

test('sh: shares follow the weights over many clients', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 3 }, { name: 'B', weight: 1 });
  const sh = shFactory.create(lab.dests, 0, 8);
  sh.update(lab.list('A', 'B'));
  const key = packetKey();
  const picks: string[] = [];
  for (let i = 0; i < 20000; i++) {
    key.saddr = (0x0a000000 + i * 7919) >>> 0;
    picks.push(lab.run(sh, 1, { key })[0]!);
  }
  const a = counts(picks).get('A')!;
  assert.ok(a > 14000 && a < 16000, `A got ${a} of 20000 (weight 3 of 4)`);
});

test('sh: unavailable bucket gives none; sh-fallback walks the kernel offsets; sh-port adds the port', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 });
  const plain = shFactory.create(lab.dests, 0, 8);
  const fallback = shFactory.create(lab.dests, SchedFlag.SCHED1, 8);
  plain.update(lab.list('A', 'B'));
  fallback.update(lab.list('A', 'B')); // list B A: even buckets B, odd buckets A
  // A source address hashing to an odd bucket (A):
  let saddr = 1;
  while (hash32Big(saddr) % 2 === 0) saddr++;
  const key = packetKey(saddr);
  assert.deepEqual(lab.run(plain, 1, { key }), ['A']);
  lab.set('A', { overload: true });
  assert.deepEqual(lab.run(plain, 1, { key }), ['-']);
  // fallback offset 0: bucket (ihash + ihash) & 255 is even -> B
  assert.deepEqual(lab.run(fallback, 1, { key }), ['B']);
  lab.set('B', { weight: 0 });
  assert.deepEqual(lab.run(fallback, 1, { key }), ['-']);
  lab.set('A', { overload: false });
  lab.set('B', { weight: 1 });
  // sh-port: bucket hash_32(sport + saddr); find a port that lands on the other server
  const withPort = shFactory.create(lab.dests, SchedFlag.SCHED2, 8);
  withPort.update(lab.list('A', 'B'));
  let sport = 1;
  while (hash32Big((saddr + sport) >>> 0) % 2 === 1) sport++;
  const tcp = packetKey(saddr, 0x0a000001, sport, 80, 6);
  assert.deepEqual(lab.run(withPort, 1, { key: tcp }), ['B']);
  const icmp = packetKey(saddr, 0x0a000001, sport, 0, 1); // no ports for ICMP
  assert.deepEqual(lab.run(withPort, 1, { key: icmp }), ['A']);
});

test('sh: empty service, and a fresh scheduler before update, give -1', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 });
  const sh = shFactory.create(lab.dests, SchedFlag.SCHED1, 8);
  assert.deepEqual(lab.run(sh, 1), ['-']);
  sh.update([]);
  assert.deepEqual(lab.run(sh, 1), ['-']);
});

test('dh: destination address, one bucket per server, weights ignored', () => {
  assert.deepEqual(Array.from(dhBuckets([7, 8, 9]).subarray(0, 5)), [7, 8, 9, 7, 8]);
  const lab = new Lab();
  lab.add({ name: 'A', weight: 5 }, { name: 'B', weight: 1 });
  const dh = dhFactory.create(lab.dests, 0, 8);
  dh.update(lab.list('A', 'B')); // list B A
  for (const daddr of [0x0a000001, 0x0a000002, 0xc0a80a0a, 0x08080808]) {
    const bucket = Number((BigInt(daddr) * 2654435761n) & 0xffn);
    const want = ['B', 'A'][bucket % 2]!;
    assert.deepEqual(lab.run(dh, 2, { key: packetKey(0x01010101, daddr) }), [want, want]);
    assert.deepEqual(lab.run(dh, 1, { key: packetKey(0x02020202, daddr) }), [want], 'source address does not matter');
  }
  const picks = counts(Array.from({ length: 4000 }, (_, i) => lab.run(dh, 1, { key: packetKey(1, 0x0a000000 + i) })[0]!));
  assert.ok(Math.abs(picks.get('A')! - 2000) < 200, `A got ${picks.get('A')} of 4000 (weights ignored)`);
  lab.set('A', { weight: 0 });
  const onA = [0x0a000001, 0x0a000002, 0x0a000003, 0x0a000004].find((a) => Number((BigInt(a) * 2654435761n) & 0xffn) % 2 === 1)!;
  assert.deepEqual(lab.run(dh, 1, { key: packetKey(1, onA) }), ['-'], 'dh has no fallback');
});

function mhLab(n: number, weight = 1) {
  const lab = new Lab(256);
  const names = Array.from({ length: n }, (_, i) => `S${i}`);
  lab.add(...names.map((name, i) => ({ name, weight, addr: (0x0a000a00 + i + 1) | 0, port: 80 })));
  return { lab, names };
}

function mhPicks(lab: Lab, sched: ReturnType<typeof mhFactory.create>, clients: number): string[] {
  const key = packetKey();
  const out: string[] = [];
  for (let i = 0; i < clients; i++) {
    key.saddr = (0xac100000 + i * 2654435761) >>> 0;
    out.push(lab.name(sched.schedule(key, 0)));
  }
  return out;
}

test('mh: equal weights split the 4093 positions within one of each other', () => {
  const table = mhLookup([0, 1, 2].map((slot) => ({ slot, addr: 0x0a000001 + slot, port: 80, lastWeight: 1 })));
  assert.equal(table.length, MH_TAB_SIZE);
  assert.deepEqual([...counts(table).values()].sort(), [1364, 1364, 1365]);
  // weights 2:1 -> turns 2 and 1
  const weighted = counts(mhLookup([{ slot: 0, addr: 1, port: 80, lastWeight: 2 }, { slot: 1, addr: 2, port: 80, lastWeight: 1 }]));
  assert.ok(Math.abs(weighted.get(0)! - 2729) <= 2, `weight 2 got ${weighted.get(0)}`);
  // a huge weight ratio is shifted into 6 bits: 1000/1 -> rshift 4 -> turns 62 and 1
  const skewed = counts(mhLookup([{ slot: 0, addr: 1, port: 80, lastWeight: 1000 }, { slot: 1, addr: 2, port: 80, lastWeight: 1 }]));
  assert.ok(Math.abs(skewed.get(1)! - Math.round(4093 / 63)) <= 2, `weight 1 got ${skewed.get(1)}`);
  assert.ok(mhLookup([{ slot: 0, addr: 1, port: 80, lastWeight: 0 }]).every((s) => s === -1));
});

test('mh: same key same server, proportional shares, and scheduling through the table', () => {
  const { lab, names } = mhLab(4);
  lab.set('S0', { weight: 3 });
  const mh = mhFactory.create(lab.dests, 0, 16);
  mh.update(lab.list(...names));
  const first = mhPicks(lab, mh, 8000);
  assert.deepEqual(mhPicks(lab, mh, 8000), first);
  const share = counts(first).get('S0')! / 8000;
  assert.ok(share > 0.45 && share < 0.55, `S0 (weight 3 of 6) got ${share}`);
  // A second director (another scheduler over another table) computes the same lookup.
  const other = mhFactory.create(lab.dests, 0, 16);
  other.update(lab.list(...names));
  assert.deepEqual(mhPicks(lab, other, 2000), first.slice(0, 2000));
});

test('mh: the table depends on the set of servers, not the order they were added or a remove and re-add', () => {
  const { lab, names } = mhLab(5);
  // The kernel's walk (mhLookup) is order-dependent: the sort in the scheduler is what fixes it.
  const asDests = (order: string[]) => order.map((n) => ({ slot: lab.slot(n), addr: lab.dests.addr(lab.slot(n)), port: 80, lastWeight: 1 }));
  const reversed = [...names].reverse();
  assert.notDeepEqual(Array.from(mhLookup(asDests(names))), Array.from(mhLookup(asDests(reversed))), 'list order changes the kernel\'s table');
  const a = mhFactory.create(lab.dests, 0, 16);
  const b = mhFactory.create(lab.dests, 0, 16);
  a.update(lab.list(...names));
  b.update(lab.list(...reversed));
  const picks = mhPicks(lab, a, 5000);
  assert.deepEqual(mhPicks(lab, b, 5000), picks, 'two directors, servers added in opposite orders');
  // A checker on director b takes S2 out and puts it back (at the end of the list).
  b.update(lab.list(...reversed.filter((n) => n !== 'S2')));
  assert.notDeepEqual(mhPicks(lab, b, 5000), picks);
  b.update(lab.list(...reversed.filter((n) => n !== 'S2'), 'S2'));
  assert.deepEqual(mhPicks(lab, b, 5000), picks, 'after the re-add, b maps every flow as a does');
});

test('mh: removing one of 10 servers moves few of the other clients (Maglev)', () => {
  const { lab, names } = mhLab(10);
  const mh = mhFactory.create(lab.dests, 0, 16);
  mh.update(lab.list(...names));
  const before = mhPicks(lab, mh, 20000);
  mh.update(lab.list(...names.filter((n) => n !== 'S4')));
  const after = mhPicks(lab, mh, 20000);
  let stayed = 0;
  let moved = 0;
  before.forEach((server, i) => {
    if (server === 'S4') assert.notEqual(after[i], 'S4');
    else if (after[i] === server) stayed++;
    else moved++;
  });
  const disruption = moved / (stayed + moved);
  assert.ok(disruption < 0.05, `moved ${(disruption * 100).toFixed(1)}% of the clients of remaining servers`);
});

test('mh: quiescing keeps the table (last_weight), fallback finds another server, mh-port', () => {
  const { lab, names } = mhLab(3);
  const mh = mhFactory.create(lab.dests, 0, 8);
  const fb = mhFactory.create(lab.dests, SchedFlag.SCHED1, 8);
  mh.update(lab.list(...names));
  fb.update(lab.list(...names));
  const before = mhPicks(lab, mh, 3000);
  lab.set('S1', { weight: 0 });
  mh.update(lab.list(...names));
  fb.update(lab.list(...names));
  const after = mhPicks(lab, mh, 3000);
  const afterFb = mhPicks(lab, fb, 3000);
  before.forEach((server, i) => {
    assert.equal(after[i], server === 'S1' ? '-' : server, 'others keep their server; S1 clients get none');
    if (server === 'S1') assert.ok(afterFb[i] === 'S0' || afterFb[i] === 'S2');
    else assert.equal(afterFb[i], server);
  });
  // mh-port: the source port changes the key for TCP, not for ICMP.
  const port = mhFactory.create(lab.dests, SchedFlag.SCHED2, 8);
  lab.set('S1', { weight: 1 });
  port.update(lab.list(...names));
  const servers = new Set<string>();
  for (let sport = 1000; sport < 1050; sport++) servers.add(lab.name(port.schedule(packetKey(0x01020304, 0x0a000001, sport, 80, 6), 0)));
  assert.ok(servers.size > 1, 'different source ports reach different servers');
  const icmp = new Set<string>();
  for (let sport = 1000; sport < 1050; sport++) icmp.add(lab.name(port.schedule(packetKey(0x01020304, 0x0a000001, sport, 0, 1), 0)));
  assert.equal(icmp.size, 1);
});

test('mh: empty table gives -1, too many servers refused', () => {
  const { lab } = mhLab(1);
  const mh = mhFactory.create(lab.dests, SchedFlag.SCHED1, 8);
  assert.deepEqual(lab.run(mh, 1), ['-']);
  mh.update([]);
  assert.deepEqual(lab.run(mh, 1), ['-']);
  assert.equal(SH_TAB_SIZE, 256);
});

test('sh: a weight change rebuilds the buckets in the next update', () => {
  const lab = new Lab();
  lab.add({ name: 'A', weight: 1 }, { name: 'B', weight: 1 });
  const sh = shFactory.create(lab.dests, 0, 8);
  sh.update(lab.list('A', 'B')); // list B A: B A B A ...
  const key = packetKey();
  const bucketOf = (saddr: number) => hash32Big(saddr);
  // A client in bucket 1 (A) and one in bucket 2 (B):
  let onOne = 1;
  while (bucketOf(onOne) !== 1) onOne++;
  let onTwo = 1;
  while (bucketOf(onTwo) !== 2) onTwo++;
  key.saddr = onOne;
  assert.deepEqual(lab.run(sh, 1, { key }), ['A']);
  key.saddr = onTwo;
  assert.deepEqual(lab.run(sh, 1, { key }), ['B']);
  lab.set('B', { weight: 2 }); // list B2 A1: B B A B B A ...: bucket 1 -> B, bucket 2 -> A
  assert.deepEqual(lab.run(sh, 1, { key }), ['B'], 'the table changes only with update()');
  sh.update(lab.list('A', 'B'));
  assert.deepEqual(lab.run(sh, 1, { key }), ['A']);
  key.saddr = onOne;
  assert.deepEqual(lab.run(sh, 1, { key }), ['B']);
});
