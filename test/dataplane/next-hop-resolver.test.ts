// NextHopResolver: many services on few real servers. Every slot of an address gets the same
// record (the first one built, the others copied), routes and neighbours asked once per address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NextHopResolver } from '../../src/dataplane/next-hop-resolver';
import { NextHopTable } from '../../src/tables/next-hop';
import type { NetInfo, InterfaceInfo } from '../../src/dataplane/netinfo';
import { ForwardMethod } from '../../src/tables/dest-table';
import { nullLogger } from '../../src/runtime/log';

test('resolve: 30 slots on 3 addresses get their address\'s next hop; one route lookup for all', async () => {
  const asked: string[][] = [];
  const neigh = new Map([['eth0 10.0.0.1', '02:00:00:00:00:0a'], ['eth0 10.0.0.2', '02:00:00:00:00:0b'], ['eth1 10.9.0.254', '02:00:00:00:00:0c']]);
  const netinfo = {
    routesAndNeighbours: (addrs: string[]) => {
      asked.push(addrs);
      const routes = new Map(addrs.map((a) => [a, a === '10.0.0.3'
        ? { ifname: 'eth1', gateway: '10.9.0.254', prefsrc: '10.9.0.1' }
        : { ifname: 'eth0', gateway: null, prefsrc: '10.0.0.100' }]));
      return Promise.resolve({ routes, neighbours: neigh });
    },
    neighbours: () => Promise.resolve(neigh),
    probeNeighbour: () => Promise.resolve(),
    wait: () => Promise.resolve(),
  } as unknown as NetInfo;
  const ifaces = [
    { ifname: 'eth0', mac: '02:00:00:00:00:01', mtu: 1500, ifindex: 2 },
    { ifname: 'eth1', mac: '02:00:00:00:00:02', mtu: 9000, ifindex: 3 },
  ] as unknown as InterfaceInfo[];
  const table = new NextHopTable(64);
  const r = new NextHopResolver(netinfo, table, () => ifaces, nullLogger);
  const addr = (k: number) => (0x0a000001 + k) >>> 0;
  const targets = Array.from({ length: 30 }, (_, i) => ({ slot: i, addr: addr(i % 3), fwd: i % 3 === 2 ? ForwardMethod.MASQ : ForwardMethod.DROUTE }));
  await r.resolve(targets);
  assert.equal(asked.length, 1);
  assert.deepEqual(asked[0]!.sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  const want = [
    { dst: '02:00:00:00:00:0a', src: '02:00:00:00:00:01', egress: 0, mtu: 1500 },
    { dst: '02:00:00:00:00:0b', src: '02:00:00:00:00:01', egress: 0, mtu: 1500 },
    { dst: '02:00:00:00:00:0c', src: '02:00:00:00:00:02', egress: 1, mtu: 9000 },
  ];
  for (const t of targets) {
    const w = want[t.slot % 3]!;
    assert.equal(r.has(t.slot, t.addr), true, `slot ${t.slot}`);
    assert.deepEqual(table.macs(t.slot), { dst: w.dst, src: w.src }, `slot ${t.slot}`);
    assert.equal(table.egress(t.slot), w.egress);
    assert.equal(table.mtu(t.slot), w.mtu);
    assert.equal((table.flags(t.slot) & 2) !== 0, t.slot % 3 === 2, `slot ${t.slot}: via a gateway`);
  }
  // Known addresses: no second lookup, same records.
  await r.resolve([{ slot: 40, addr: addr(1), fwd: ForwardMethod.DROUTE }, { slot: 41, addr: addr(1), fwd: ForwardMethod.DROUTE }]);
  assert.equal(asked.length, 1);
  assert.deepEqual(table.macs(41), { dst: want[1]!.dst, src: want[1]!.src });
});
