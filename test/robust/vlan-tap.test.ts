// The tap rule's unit half (docs/architecture.md, "Which interfaces"): which interfaces are
// captured on a host with bonds, bridges, macvlans and VLANs (`ip -d -j addr show` output faked),
// what the capture filter does with an offloaded 802.1Q tag (the kernel shows it only through
// SKF_AD_VLAN_TAG_PRESENT / SKF_AD_VLAN_TAG), and what the worker does with a ring descriptor
// (tp_status VLAN_VALID, tp_vlan_tci, sll_pkttype, sll_ifindex). The netns half (bridge, passthru
// macvlan, injected 802.1Q frames) is test/netns/vlan-bridge.test.ts; the CI kernel has no bonding
// or 802.1Q module, hence the bond case here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captureInterfaces, parseIpAddrJson } from '../../src/dataplane/netinfo';
import { buildHostFilter, buildPrefixFilter, coveringPrefixes, runFilter } from '../../src/dataplane/bpf';
import { ringFrameDrop, TP_STATUS_VLAN_VALID } from '../../src/dataplane/ring-frame';
import { DropReason } from '../../src/packet/drop';
import { PacketBuilder } from '../../src/packet/builder';
import { toIpv4Int } from '../../src/packet/addr';

const up = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'];
const inet = (local: string, prefixlen = 24): { family: string; local: string; prefixlen: number } => ({ family: 'inet', local, prefixlen });

// A bond of two NICs with a VLAN on top, a bridge with one port, a passthru macvlan and a bridge-mode
// one, an ipvlan, and a VRF slave: the shapes `ip -d -j addr show` (iproute2 6.x) gives them.
const HOST = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, link_type: 'loopback', address: '00:00:00:00:00:00', addr_info: [inet('127.0.0.1', 8)] },
  { ifindex: 2, ifname: 'eth0', flags: [...up, 'SLAVE'], master: 'bond0', mtu: 1500, address: '02:00:00:00:00:01', linkinfo: { info_slave_kind: 'bond' }, addr_info: [] },
  { ifindex: 3, ifname: 'eth1', flags: [...up, 'SLAVE'], master: 'bond0', mtu: 1500, address: '02:00:00:00:00:01', linkinfo: { info_slave_kind: 'bond' }, addr_info: [] },
  { ifindex: 4, ifname: 'bond0', flags: [...up, 'MASTER'], mtu: 1500, address: '02:00:00:00:00:01', linkinfo: { info_kind: 'bond' }, addr_info: [inet('10.0.0.2'), inet('10.0.0.100', 32)] },
  { ifindex: 5, ifname: 'bond0.100', link: 'bond0', flags: up, mtu: 1500, address: '02:00:00:00:00:01', linkinfo: { info_kind: 'vlan' }, addr_info: [inet('10.1.0.2')] },
  { ifindex: 6, ifname: 'eth2', flags: up, master: 'br0', link: 'peer', mtu: 1500, address: '02:00:00:00:00:02', linkinfo: { info_kind: 'veth', info_slave_kind: 'bridge' }, addr_info: [] },
  { ifindex: 7, ifname: 'br0', flags: up, mtu: 1500, address: '02:00:00:00:00:02', linkinfo: { info_kind: 'bridge' }, addr_info: [inet('10.2.0.2')] },
  { ifindex: 8, ifname: 'eth3', flags: up, mtu: 1500, address: '02:00:00:00:00:03', addr_info: [] },
  { ifindex: 9, ifname: 'mv0', link: 'eth3', flags: up, mtu: 1500, address: '02:00:00:00:00:03', linkinfo: { info_kind: 'macvlan' }, addr_info: [inet('10.3.0.2')] },
  { ifindex: 10, ifname: 'eth4', flags: up, mtu: 1500, address: '02:00:00:00:00:04', addr_info: [inet('10.4.0.2')] },
  { ifindex: 11, ifname: 'mv1', link: 'eth4', flags: up, mtu: 1500, address: '02:00:00:00:00:44', linkinfo: { info_kind: 'macvlan' }, addr_info: [inet('10.4.0.3')] },
  { ifindex: 12, ifname: 'eth5', flags: up, master: 'vrf-blue', mtu: 1500, address: '02:00:00:00:00:05', linkinfo: { info_slave_kind: 'vrf' }, addr_info: [inet('10.5.0.2')] },
  { ifindex: 13, ifname: 'eth6', flags: ['BROADCAST', 'MULTICAST'], mtu: 1500, address: '02:00:00:00:00:06', addr_info: [] },
]);

test('tap rule: bond slaves, bridge ports and a same-MAC macvlan lower are skipped; VLAN, bridge-mode macvlan and VRF slave kept', () => {
  const all = parseIpAddrJson(HOST);
  assert.equal(all.find((i) => i.ifname === 'eth0')!.master, 'bond0');
  assert.equal(all.find((i) => i.ifname === 'eth0')!.slaveKind, 'bond');
  assert.equal(all.find((i) => i.ifname === 'mv0')!.kind, 'macvlan');
  const { chosen, skipped } = captureInterfaces(all);
  assert.deepEqual(chosen.map((i) => i.ifname), ['bond0', 'bond0.100', 'br0', 'mv0', 'eth4', 'mv1', 'eth5']);
  assert.deepEqual(skipped.map((s) => s.ifname), ['eth0', 'eth1', 'eth2', 'eth3']);
  assert.match(skipped[0]!.why, /bond port of bond0/);
  assert.match(skipped[2]!.why, /bridge port of br0/);
  assert.match(skipped[3]!.why, /lower device of macvlan mv0/);
});

const VIP = '10.0.0.100';
const frame = new PacketBuilder().eth({ src: '02:00:00:00:00:09', dst: '02:00:00:00:00:01' })
  .ipv4({ src: '192.0.2.1', dst: VIP }).udp({ srcPort: 1000, dstPort: 53 }).payload('q').build();

test('capture filter: an offloaded tag with a VID is refused, a priority tag (VID 0) and no tag accepted — exact and prefix filters', () => {
  const filters = [
    buildHostFilter({ destinations: [VIP] }),
    buildPrefixFilter(coveringPrefixes([toIpv4Int(VIP)], 4), []),
  ];
  for (const f of filters) {
    assert.ok(runFilter(f, frame, 0) > 0, 'untagged');
    assert.ok(runFilter(f, frame, 0, 0x0000) > 0, 'VID 0');
    assert.ok(runFilter(f, frame, 0, 0xe000) > 0, 'VID 0 with priority 7');
    assert.equal(runFilter(f, frame, 0, 100), 0, 'VID 100');
    assert.equal(runFilter(f, frame, 0, 0x2000 | 4094), 0, 'VID 4094 with priority 1');
    assert.equal(runFilter(f, frame, 3, null), 0, 'PACKET_OTHERHOST');
  }
});

test('ring descriptor: VLAN_VALID with a VID, a packet type other than HOST, or another ifindex is dropped and counted; the bond case', () => {
  // A bond slave's socket (if one were opened there) and the bond's own: the kernel reports the
  // frame on the device the socket is bound to; anything else is not the socket's.
  const BOND = 4;
  assert.equal(ringFrameDrop(0, 0, 0, BOND, BOND), 0);
  assert.equal(ringFrameDrop(TP_STATUS_VLAN_VALID, 0, 0, BOND, BOND), 0, 'priority tag');
  assert.equal(ringFrameDrop(TP_STATUS_VLAN_VALID, 100, 0, BOND, BOND), DropReason.FOREIGN_VLAN);
  assert.equal(ringFrameDrop(0, 100, 0, BOND, BOND), 0, 'a TCI without VLAN_VALID is stale ring content');
  assert.equal(ringFrameDrop(0, 0, 3, BOND, BOND), DropReason.NOT_HOST_FRAME, 'PACKET_OTHERHOST');
  assert.equal(ringFrameDrop(0, 0, 4, BOND, BOND), DropReason.NOT_HOST_FRAME, 'PACKET_OUTGOING');
  assert.equal(ringFrameDrop(0, 0, 1, BOND, BOND), DropReason.NOT_HOST_FRAME, 'PACKET_BROADCAST');
  assert.equal(ringFrameDrop(0, 0, 0, 2, BOND), DropReason.NOT_HOST_FRAME, 'reported on the slave eth0');
  assert.equal(ringFrameDrop(0, 0, 0, 2, 0), 0, 'a socket bound to every interface takes any');
});
