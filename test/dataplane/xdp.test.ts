// The main thread's side of --io xdp (src/dataplane/xdp.ts): which interfaces carry a program and
// what its maps hold, against a fake addon that records every attach, detach and map update. The
// programs themselves, the AF_XDP sockets and forwarding through them are tested in namespaces
// (test/netns/native-xdp.test.ts, test/netns/xdp.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XdpPrograms, XDP_MAX_FRAME, XDP_MAP_ENTRIES, xdpMaxFrame } from '../../src/dataplane/xdp';
import type { InterfaceInfo } from '../../src/dataplane/netinfo';
import type { NativeAddon, XdpProgram } from '../../src/native/addon';
import { memoryLogger } from '../../src/runtime/log';
import { toIpv4Int } from '../../src/packet/addr';

interface FakeMap { fd: number; keys: Set<number> }

function fakeAddon(opts: { failAttach?: number; mapCap?: number } = {}): { addon: NativeAddon; maps: Map<number, FakeMap>; attached: Map<number, { mac: string; closed: boolean; prog: XdpProgram }>; attachCalls: unknown[] } {
  let nextFd = 100;
  const maps = new Map<number, FakeMap>();
  const attached = new Map<number, { mac: string; closed: boolean; prog: XdpProgram }>();
  const attachCalls: unknown[] = [];
  const addon = {
    xdpAttach(ifindex: number, o: { mac: string; maxFrame: number; mapEntries: number }): XdpProgram {
      attachCalls.push({ ifindex, ...o });
      if (ifindex === opts.failAttach) throw new Error('EBUSY (another XDP program is attached)');
      const mk = (): number => {
        const fd = nextFd++;
        maps.set(fd, { fd, keys: new Set() });
        return fd;
      };
      const rec = { mac: o.mac, closed: false, prog: null as unknown as XdpProgram };
      const prog: XdpProgram = { linkFd: nextFd++, progFd: nextFd++, xsksFd: mk(), dstsFd: mk(), srcsFd: mk(), ringflowsFd: nextFd++, nat: false, close: () => { rec.closed = true; } };
      rec.prog = prog;
      attached.set(ifindex, rec);
      return prog;
    },
    bpfMapUpdate(fd: number, key: number, on: boolean): void {
      const m = maps.get(fd);
      if (!m) throw new Error(`EBADF: map fd ${fd}`);
      if (on && opts.mapCap !== undefined && m.keys.size >= opts.mapCap) throw new Error('E2BIG');
      if (on) m.keys.add(key);
      else m.keys.delete(key);
    },
  } as unknown as NativeAddon;
  return { addon, maps, attached, attachCalls };
}

function iface(ifindex: number, ifname: string, mac: string): InterfaceInfo {
  return { ifindex, ifname, mac, mtu: 1500, up: true, loopback: false, addrs: [] };
}

const VIP = toIpv4Int('10.0.0.100');
const VIP2 = toIpv4Int('10.0.0.101');
const RS = toIpv4Int('10.0.1.2');

test('each captured interface gets one program; its maps hold the VIPs and NAT sources, also when attached later', () => {
  const f = fakeAddon();
  const x = new XdpPrograms(memoryLogger(), 'generic', f.addon);
  x.sync([iface(2, 'uvs0', '02:00:00:00:00:01')]);
  assert.deepEqual(f.attachCalls, [{ ifindex: 2, mac: '02:00:00:00:00:01', maxFrame: 1514, mapEntries: XDP_MAP_ENTRIES, mode: 'generic' }]);
  x.setHosts([VIP, VIP2], [RS]);
  const p2 = f.attached.get(2)!.prog;
  assert.deepEqual([...f.maps.get(p2.dstsFd)!.keys].sort(), [VIP, VIP2].sort());
  assert.deepEqual([...f.maps.get(p2.srcsFd)!.keys], [RS]);
  assert.equal(x.xsksFd(2), p2.xsksFd);
  assert.equal(x.xsksFd(3), undefined);
  // A second interface comes: its program starts with the addresses already served.
  x.sync([iface(2, 'uvs0', '02:00:00:00:00:01'), iface(3, 'uvs1', '02:00:00:00:00:02')]);
  const p3 = f.attached.get(3)!.prog;
  assert.deepEqual([...f.maps.get(p3.dstsFd)!.keys].sort(), [VIP, VIP2].sort());
  assert.deepEqual([...f.maps.get(p3.srcsFd)!.keys], [RS]);
  assert.equal(f.attachCalls.length, 2, 'the program already on uvs0 is kept');
  // A VIP goes, the NAT source goes: taken out of every program's maps.
  x.setHosts([VIP2], []);
  for (const p of [p2, p3]) {
    assert.deepEqual([...f.maps.get(p.dstsFd)!.keys], [VIP2]);
    assert.equal(f.maps.get(p.srcsFd)!.keys.size, 0);
  }
});

test('an interface that goes, or whose MAC changes, loses its program; close() detaches all', () => {
  const f = fakeAddon();
  const x = new XdpPrograms(memoryLogger(), 'generic', f.addon);
  x.sync([iface(2, 'uvs0', '02:00:00:00:00:01'), iface(3, 'uvs1', '02:00:00:00:00:02')]);
  const first3 = f.attached.get(3)!;
  x.sync([iface(3, 'uvs1', '02:00:00:00:00:09')]);
  assert.equal(first3.closed, true, 'the old program (old MAC baked in) is detached');
  const second3 = f.attached.get(3)!;
  x.sync([{ ...iface(3, 'uvs1', '02:00:00:00:00:09'), mtu: 1400 }]);
  assert.equal(second3.closed, true, 'an MTU change: the longest frame is baked in too');
  assert.equal((f.attachCalls.at(-1) as { maxFrame: number }).maxFrame, 1414);
  assert.equal(f.attached.get(3)!.mac, '02:00:00:00:00:09', 'and one with the new MAC attached');
  assert.equal(x.xsksFd(2), undefined, 'uvs0 is no longer captured');
  const now3 = f.attached.get(3)!;
  x.close();
  assert.equal(now3.closed, true);
  assert.equal(x.xsksFd(3), undefined);
});

test('an attach that fails names the interface; a full map is logged once and changes nothing else', () => {
  const f = fakeAddon({ failAttach: 3, mapCap: 1 });
  const log = memoryLogger();
  const x = new XdpPrograms(log, 'generic', f.addon);
  assert.throws(() => x.sync([iface(2, 'uvs0', '02:00:00:00:00:01'), iface(3, 'uvs1', '02:00:00:00:00:02')]), /--io xdp: cannot attach the XDP program to uvs1: EBUSY/);
  assert.ok(x.xsksFd(2) !== undefined, 'the interface done before the failure keeps its program');
  x.setHosts([VIP, VIP2], []);
  const p2 = f.attached.get(2)!.prog;
  assert.equal(f.maps.get(p2.dstsFd)!.keys.size, 1, 'one fits; the other is forwarded through the ring');
  x.setHosts([VIP, VIP2, toIpv4Int('10.0.0.102')], []);
  const warnings = log.lines.filter((l) => /XDP program's map failed/.test(l));
  assert.equal(warnings.length, 1, `logged once: ${log.lines.join('\n')}`);
  assert.match(warnings[0]!, /uvs0: adding 10\.0\.0\.10[12] .*E2BIG.*through the AF_PACKET ring/);
});

test('the program redirects whole frames of the MTU at most (longer ones are aggregates for the ring), within a chunk', () => {
  assert.equal(xdpMaxFrame(1500), 1514);
  assert.equal(xdpMaxFrame(1280), 1294);
  assert.equal(xdpMaxFrame(9000), XDP_MAX_FRAME, 'jumbo frames longer than a chunk holds go through the ring');
});
