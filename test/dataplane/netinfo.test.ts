import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpAddrJson, parseIpRouteGetJson, parseIpRouteShowJson, parseNeighMac, NetInfo } from '../../src/dataplane/netinfo';
import type { CommandRunner } from '../../src/dataplane/guard';
import { ClientHopTable } from '../../src/tables/client-hops';
import { refreshClientRoutes } from '../../src/dataplane/client-routes';
import { ipv4ToInt } from '../../src/packet/addr';
import { linesLogger } from '../../src/runtime/log';

// Recorded from `ip -j addr show` in a lab director namespace (iproute2 6.1).
const ADDR_JSON = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, link_type: 'loopback', address: '00:00:00:00:00:00',
    addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
  { ifindex: 2, ifname: 'uvst1e0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, link_type: 'ether', address: '3e:1d:22:9a:01:02',
    addr_info: [{ family: 'inet', local: '10.77.0.2', prefixlen: 24 }, { family: 'inet', local: '10.77.0.100', prefixlen: 32, secondary: true }, { family: 'inet6', local: 'fe80::1', prefixlen: 64 }] },
]);

test('parseIpAddrJson keeps IPv4 addresses, flags, MAC and MTU', () => {
  const ifs = parseIpAddrJson(ADDR_JSON);
  assert.equal(ifs.length, 2);
  assert.equal(ifs[0]!.loopback, true);
  assert.deepEqual(ifs[1], {
    ifname: 'uvst1e0', ifindex: 2, mac: '3e:1d:22:9a:01:02', mtu: 1500, up: true, loopback: false,
    addrs: [{ addr: '10.77.0.2', prefixlen: 24, secondary: false }, { addr: '10.77.0.100', prefixlen: 32, secondary: true }],
  });
});

test('parseIpRouteGetJson: on-link and via a gateway', () => {
  assert.deepEqual(parseIpRouteGetJson('[{"dst":"10.77.0.21","dev":"uvst1e0","prefsrc":"10.77.0.2","flags":[],"uid":0,"cache":[]}]'),
    { dst: '10.77.0.21', ifname: 'uvst1e0', gateway: null, prefsrc: '10.77.0.2', type: 'unicast' });
  const viaGw = parseIpRouteGetJson('[{"dst":"10.9.0.5","gateway":"10.77.0.1","dev":"uvst1e0","prefsrc":"10.77.0.2","flags":[],"uid":0,"cache":[]}]');
  assert.equal(viaGw.gateway, '10.77.0.1');
  assert.throws(() => parseIpRouteGetJson('[]'), /empty answer/);
});

test('parseNeighMac ignores INCOMPLETE and FAILED entries', () => {
  assert.equal(parseNeighMac('[{"dst":"10.0.0.5","dev":"e0","lladdr":"aa:bb:cc:dd:ee:ff","state":["STALE"]}]', '10.0.0.5'), 'aa:bb:cc:dd:ee:ff');
  assert.equal(parseNeighMac('[{"dst":"10.0.0.5","dev":"e0","state":["INCOMPLETE"]}]', '10.0.0.5'), null);
  assert.equal(parseNeighMac('[{"dst":"10.0.0.5","dev":"e0","lladdr":"aa:bb:cc:dd:ee:ff","state":["FAILED"]}]', '10.0.0.5'), null);
  assert.equal(parseNeighMac('[]', '10.0.0.5'), null);
});

test('neighbourMac probes until the kernel has learnt the MAC, and gives up at the deadline', async () => {
  let probes = 0;
  let shows = 0;
  const runner: CommandRunner = {
    run: () => {
      shows++;
      const json = probes > 0 && shows > 3 ? '[{"dst":"10.0.0.5","lladdr":"02:00:00:00:00:05","state":["REACHABLE"]}]' : '[]';
      return Promise.resolve({ status: 0, stdout: json, stderr: '' });
    },
  };
  const info = new NetInfo({ runner, probe: () => {
    probes++;
    return Promise.resolve();
  }, sleep: async () => {} });
  assert.equal(await info.neighbourMac('10.0.0.5', 'e0'), '02:00:00:00:00:05');
  assert.equal(probes, 1);

  const never = new NetInfo({ runner: { run: () => Promise.resolve({ status: 0, stdout: '[]', stderr: '' }) }, probe: async () => {}, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) });
  assert.equal(await never.neighbourMac('10.0.0.6', 'e0', 200), null);

  const failing = new NetInfo({ runner: { run: () => Promise.resolve({ status: 1, stdout: '', stderr: 'Cannot find device "nope"' }) } });
  await assert.rejects(failing.route('10.0.0.1'), /ip -j route get 10\.0\.0\.1: Cannot find device "nope"/);
});

test('ip -j -4 route show: unicast routes with their gateway; local/broadcast types left out', () => {
  const json = JSON.stringify([
    { dst: 'default', gateway: '10.0.0.1', dev: 'eth0', flags: [] },
    { dst: '10.0.0.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '10.0.0.2', flags: [] },
    { type: 'broadcast', dst: '10.0.0.255', dev: 'eth0' },
    { dst: '192.168.5.0/24', gateway: '10.0.0.9', dev: 'eth0', flags: [] },
  ]);
  assert.deepEqual(parseIpRouteShowJson(json), [
    { dst: 'default', ifname: 'eth0', gateway: '10.0.0.1' },
    { dst: '10.0.0.0/24', ifname: 'eth0', gateway: null },
    { dst: '192.168.5.0/24', ifname: 'eth0', gateway: '10.0.0.9' },
  ]);
});

test('refreshClientRoutes: routes via a resolved gateway on a captured interface, longest prefix first; others left out', async () => {
  const routes = JSON.stringify([
    { dst: 'default', gateway: '10.0.0.1', dev: 'e0' },
    { dst: '10.0.0.0/24', dev: 'e0' },
    { dst: '192.168.0.0/16', gateway: '10.1.0.1', dev: 'e1' },
    { dst: '172.16.0.0/12', gateway: '10.9.0.1', dev: 'other' },
    { dst: '203.0.113.0/24', gateway: '10.0.0.99', dev: 'e0' },
  ]);
  const macs: Record<string, string> = { '10.0.0.1': '02:00:00:00:00:01', '10.1.0.1': '02:00:00:00:01:01' };
  const runner: CommandRunner = {
    run: (_cmd, args) => {
      if (args.includes('route')) return Promise.resolve({ status: 0, stdout: routes, stderr: '' });
      const addr = args[args.indexOf('to') + 1]!;
      const mac = macs[addr];
      return Promise.resolve({ status: 0, stdout: mac ? JSON.stringify([{ dst: addr, lladdr: mac, state: ['REACHABLE'] }]) : '[]', stderr: '' });
    },
  };
  const info = new NetInfo({ runner, probe: async () => {}, sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 5))) });
  const ifaces = [
    { ifname: 'e0', ifindex: 2, mac: '02:00:00:00:aa:00', mtu: 1500, up: true, loopback: false, addrs: [] },
    { ifname: 'e1', ifindex: 3, mac: '02:00:00:00:aa:01', mtu: 1500, up: true, loopback: false, addrs: [] },
  ];
  const table = new ClientHopTable(8);
  const warnings: string[] = [];
  const got = await refreshClientRoutes(table, info, ifaces, linesLogger(warnings));
  assert.equal(got.length, 2);
  assert.equal(table.count, 2);
  assert.deepEqual(table.describe(ipv4ToInt('192.168.3.4')), { nextHopMac: '02:00:00:00:01:01', ownMac: '02:00:00:00:aa:01', egress: 1 });
  assert.deepEqual(table.describe(ipv4ToInt('8.8.8.8')), { nextHopMac: '02:00:00:00:00:01', ownMac: '02:00:00:00:aa:00', egress: 0 });
  assert.equal(warnings.length, 1, 'the gateway that does not answer ARP');
  assert.match(warnings[0]!, /203\.0\.113\.0\/24 via 10\.0\.0\.99 on e0: no ARP answer/);
  // On-link clients have no route here: their replies need the entry's own next hop.
  table.setRoutes(got.filter((r) => r.prefixLen > 0));
  assert.equal(table.describe(ipv4ToInt('8.8.8.8')), null);
});
