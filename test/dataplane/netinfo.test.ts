import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpAddrJson, parseIpRouteGetJson, parseIpRouteShowJson, parseNeighMac, NetInfo } from '../../src/dataplane/netinfo';
import type { CommandRunner } from '../../src/dataplane/guard';

// Recorded from `ip -j addr show` in a lab director namespace (iproute2 6.1).
const ADDR_JSON = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, link_type: 'loopback', address: '00:00:00:00:00:00',
    addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
  { ifindex: 2, ifname: 'uvst1e0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, link_type: 'ether', address: '3e:1d:22:9a:01:02',
    addr_info: [{ family: 'inet', local: '10.77.0.2', prefixlen: 24 }, { family: 'inet', local: '10.77.0.100', prefixlen: 32 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64 }] },
]);

test('parseIpAddrJson keeps IPv4 addresses, flags, MAC and MTU', () => {
  const ifs = parseIpAddrJson(ADDR_JSON);
  assert.equal(ifs.length, 2);
  assert.equal(ifs[0]!.loopback, true);
  assert.deepEqual(ifs[1], {
    ifname: 'uvst1e0', ifindex: 2, mac: '3e:1d:22:9a:01:02', mtu: 1500, up: true, loopback: false,
    addrs: [{ addr: '10.77.0.2', prefixlen: 24 }, { addr: '10.77.0.100', prefixlen: 32 }],
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
    run: async () => {
      shows++;
      const json = probes > 0 && shows > 3 ? '[{"dst":"10.0.0.5","lladdr":"02:00:00:00:00:05","state":["REACHABLE"]}]' : '[]';
      return { status: 0, stdout: json, stderr: '' };
    },
  };
  const info = new NetInfo({ runner, probe: async () => void probes++, sleep: async () => {} });
  assert.equal(await info.neighbourMac('10.0.0.5', 'e0'), '02:00:00:00:00:05');
  assert.equal(probes, 1);

  const never = new NetInfo({ runner: { run: async () => ({ status: 0, stdout: '[]', stderr: '' }) }, probe: async () => {}, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) });
  assert.equal(await never.neighbourMac('10.0.0.6', 'e0', 200), null);

  const failing = new NetInfo({ runner: { run: async () => ({ status: 1, stdout: '', stderr: 'Cannot find device "nope"' }) } });
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
