// Stacked devices and VLAN tags (docs/architecture.md, "Which interfaces"): uvs taps where the
// VIP's traffic arrives, once. A frame that reaches a bridge's address is seen by AF_PACKET on the
// bridge port and again on the bridge; with a passthru macvlan on the lower device and on the
// macvlan. Tapping both forwarded every frame twice. An 802.1Q-tagged frame (the tag offloaded
// into skb->vlan_tci before any tap) belongs to the VLAN device of its VID; with none, the kernel
// drops it (PACKET_OTHERHOST) and so must uvs; a priority tag (VID 0) is the untagged network.
//
// Lab: client (C), real server (R) and the director (D) on one switch (a bridge in namespace SW).
// D's link to the switch is d0; the director's addresses sit on d0 (plain), on a bridge br0 with
// d0 as its port (bridge), or on a passthru macvlan over d0 (macvlan). The real server counts what
// reaches it (UdpNoPorts: nothing listens on the port, so each datagram counts once).
// Needs root (CI runs it as root).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, inNs, nstatIn, repoRoot } from './helpers';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns();
const S = labSuffix('v');
const P = `uvs${S}`;
const C = `${P}c`;
const R = `${P}r`;
const SW = `${P}sw`;
const D = `${P}d`;
const VIP = '10.78.0.100';
const DIP = '10.78.0.2';
const CIP = '10.78.0.1';
const RIP = '10.78.0.21';
const PORT = 9;
const N = 20;

const daemon = new UvsdProcess(D);

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function sysctl(ns: string, ...kv: string[]): void {
  for (const x of kv) execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', x]);
}

function down(): void {
  for (const ns of [C, R, SW, D]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // not made (or already gone)
    }
  }
}

/** Client, real server and switch; the director's namespace comes per test (director()). */
function upSwitch(): void {
  ip('netns', 'add', SW);
  ip('-n', SW, 'link', 'add', `${P}sw`, 'type', 'bridge');
  ip('-n', SW, 'link', 'set', `${P}sw`, 'up');
  for (const [ns, dev, cidr] of [[C, `${P}c0`, `${CIP}/24`], [R, `${P}r0`, `${RIP}/24`]] as const) {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', SW, 'link', 'add', `${dev}s`, 'type', 'veth', 'peer', 'name', dev, 'netns', ns);
    ip('-n', SW, 'link', 'set', `${dev}s`, 'master', `${P}sw`, 'up');
    ip('-n', ns, 'addr', 'add', cidr, 'dev', dev);
    ip('-n', ns, 'link', 'set', dev, 'up');
  }
  // DR real server: the VIP on lo, never answering ARP for it.
  ip('-n', R, 'addr', 'add', `${VIP}/32`, 'dev', 'lo');
  sysctl(R, 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0');
  sysctl(C, 'net.ipv4.conf.all.rp_filter=0');
}

/** The director with its addresses on `dev` (d0 itself, a bridge over it, or a passthru macvlan). */
function director(kind: 'plain' | 'bridge' | 'macvlan'): string {
  ip('netns', 'add', D);
  ip('-n', D, 'link', 'set', 'lo', 'up');
  // The previous test's director had other MACs.
  for (const ns of [C, R]) ip('-n', ns, 'neigh', 'flush', 'all');
  const d0 = `${P}d0`;
  ip('-n', SW, 'link', 'add', `${d0}s`, 'type', 'veth', 'peer', 'name', d0, 'netns', D);
  ip('-n', SW, 'link', 'set', `${d0}s`, 'master', `${P}sw`, 'up');
  ip('-n', D, 'link', 'set', d0, 'up');
  let dev = d0;
  if (kind === 'bridge') {
    dev = `${P}br`;
    ip('-n', D, 'link', 'add', dev, 'type', 'bridge');
    ip('-n', D, 'link', 'set', d0, 'master', dev);
    // The bridge's MAC is its port's (what a bridge with one port picks anyway, made explicit):
    // a frame to the bridge is then PACKET_HOST on the port too, the double tap.
    const mac = inNs(D, 'cat', [`/sys/class/net/${d0}/address`]).stdout.trim();
    ip('-n', D, 'link', 'set', dev, 'address', mac);
  } else if (kind === 'macvlan') {
    dev = `${P}mv`;
    ip('-n', D, 'link', 'add', dev, 'link', d0, 'type', 'macvlan', 'mode', 'passthru');
  }
  ip('-n', D, 'addr', 'add', `${DIP}/24`, 'dev', dev);
  ip('-n', D, 'addr', 'add', `${VIP}/32`, 'dev', dev);
  ip('-n', D, 'link', 'set', dev, 'up');
  return dev;
}

function directorDown(): void {
  try {
    ip('netns', 'del', D);
  } catch {
    // not made
  }
  // The kernel destroys the namespace's devices after `netns del` returns: the switch-side veth
  // end may still be there when the next test adds one of the same name. Wait (bounded) for it.
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 100; i++) {
    if (spawnSync('ip', ['-n', SW, 'link', 'show', `${P}d0s`], { stdio: 'ignore' }).status !== 0) return;
    Atomics.wait(pause, 0, 0, 50);
  }
}

const udpNoPorts = (): number => nstatIn(R, 'UdpNoPorts');

/** N datagrams from the client to VIP:PORT through its own stack (ARP resolves the VIP). */
function sendUdp(n: number): void {
  const script = `
    const s = require('dgram').createSocket('udp4');
    let left = ${n};
    const next = () => { if (left-- === 0) return s.close(); s.send('x', ${PORT}, ${JSON.stringify(VIP)}, () => setTimeout(next, 5)); };
    next();`;
  const r = inNs(C, process.execPath, ['-e', script], 15_000);
  assert.equal(r.status, 0, r.stderr);
}

/**
 * `n` frames per VID written raw on the client's link (a packet socket: the tag is in the frame
 * data and the director's veth takes it out into skb->vlan_tci, as a NIC with VLAN offload would).
 */
function sendTagged(vids: number[], n: number, dstMac: string): void {
  const addon = join(repoRoot, 'dist', 'src', 'native', 'addon.js');
  const builder = join(repoRoot, 'dist', 'src', 'packet', 'builder.js');
  const script = `
    const { loadNative } = require(${JSON.stringify(addon)});
    const { PacketBuilder } = require(${JSON.stringify(builder)});
    const fs = require('fs');
    const dev = ${JSON.stringify(`${P}c0`)};
    const ifindex = Number(fs.readFileSync('/sys/class/net/' + dev + '/ifindex', 'utf8'));
    const src = fs.readFileSync('/sys/class/net/' + dev + '/address', 'utf8').trim();
    const sock = new (loadNative().PacketSocket)({ ifindex, protocol: 0 });
    for (const id of ${JSON.stringify(vids)}) {
      for (let i = 0; i < ${n}; i++) {
        const f = new PacketBuilder().eth({ src, dst: ${JSON.stringify(dstMac)}, vlan: { id } })
          .ipv4({ src: ${JSON.stringify(CIP)}, dst: ${JSON.stringify(VIP)} }).udp({ srcPort: 20000 + i, dstPort: ${PORT} }).payload('tagged').build();
        if (sock.send(f, new Int32Array([0]), new Int32Array([f.length]), 1) !== 1) throw new Error('not sent');
      }
    }
    sock.close();`;
  const r = inNs(C, process.execPath, ['-e', script], 15_000);
  assert.equal(r.status, 0, r.stderr);
}

async function startService(): Promise<void> {
  await daemon.start(['--workers', '1'], /data plane: \d+ worker/);
  daemon.uvsadm('-A', '-u', `${VIP}:${PORT}`, '-s', 'rr');
  daemon.uvsadm('-a', '-u', `${VIP}:${PORT}`, '-r', `${RIP}:${PORT}`, '-g');
  // The real server's MAC is resolved when the destination is added; one datagram proves the path.
  const deadline = Date.now() + 10_000;
  const before = udpNoPorts();
  while (udpNoPorts() === before && Date.now() < deadline) sendUdp(1);
  assert.ok(udpNoPorts() > before, `no datagram reached the real server\n${daemon.log}\n${daemon.uvsadm("--dataplane")}`);
}

/** Waits until the real server's count is still for 300 ms; the count since `from`. */
async function settled(from: number): Promise<number> {
  let last = -1;
  let now = udpNoPorts();
  for (let i = 0; i < 20 && now !== last; i++) {
    await new Promise((r) => setTimeout(r, 300));
    last = now;
    now = udpNoPorts();
  }
  return now - from;
}

if (!why) {
  down();
  upSwitch();
}

after(async () => {
  await daemon.stop('SIGKILL');
  if (!why) down();
});

for (const kind of ['bridge', 'macvlan'] as const) {
  test(`${kind}: each datagram to the VIP is forwarded once (the ${kind === 'bridge' ? 'bridge port' : 'passthru macvlan\'s lower device'} is not tapped)`, { skip: why ?? false }, async () => {
    try {
      director(kind);
      await startService();
      const from = udpNoPorts();
      sendUdp(N);
      assert.equal(await settled(from), N, `the real server got the datagrams ${(udpNoPorts() - from) / N} times\n${daemon.log}`);
      assert.match(daemon.log, new RegExp(`data plane: .* on ${kind === 'bridge' ? `${P}br` : `${P}mv`}\\n`), daemon.log);
    } finally {
      await daemon.stop('SIGKILL');
      directorDown();
    }
  });
}

for (const kind of ['plain', 'bridge'] as const) {
  test(`${kind}: 802.1Q frames of a VLAN the director does not have are not forwarded; priority-tagged (VID 0) ones are`, { skip: why ?? false }, async () => {
    try {
      const dev = director(kind);
      await startService();
      const mac = inNs(D, 'cat', [`/sys/class/net/${dev}/address`]).stdout.trim();
      let from = udpNoPorts();
      sendTagged([100, 4094], 10, mac);
      assert.equal(await settled(from), 0, `tagged frames of another VLAN reached the real server\n${daemon.log}`);
      from = udpNoPorts();
      sendTagged([0], 10, mac);
      assert.equal(await settled(from), 10, `priority-tagged frames\n${daemon.log}`);
    } finally {
      await daemon.stop('SIGKILL');
      directorDown();
    }
  });
}
