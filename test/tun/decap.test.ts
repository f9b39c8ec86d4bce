// uvs-tun-decap's per-datagram work with a fake addon: the inner packet of a valid IPIP datagram
// goes to the TUN fd unchanged; other datagrams are counted by reason. The real thing (raw
// socket, TUN device) is exercised by test/netns/tun.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder } from '../../src/packet/builder';
import { ipv4ToInt } from '../../src/packet/addr';
import { TunDecapAgent, DecapError } from '../../src/tun/decap';
import type { NativeAddon } from '../../src/native/addon';
import { nullLogger } from '../../src/runtime/log';
import { foldSum, pseudoHeaderSum } from '../../src/packet/checksum';

function fakeNative(writes: Uint8Array[]): NativeAddon {
  const fake: Partial<NativeAddon> = {
    fdWrite: (_fd: number, buffer: ArrayBuffer | ArrayBufferView, length: number) => {
      const b = buffer as Uint8Array;
      writes.push(b.slice(0, length));
      return length;
    },
  };
  return fake as NativeAddon;
}

const inner = new PacketBuilder().ipv4({ src: '10.77.0.10', dst: '10.77.0.100', ttl: 63, df: true }).tcp({ srcPort: 4000, dstPort: 80, flags: 2 }).payload('hi').build();

function ipip(outerDst: string, opts: { protocol?: number; mf?: boolean } = {}): Uint8Array {
  return new PacketBuilder()
    .ipv4({ src: '10.77.0.2', dst: outerDst, ttl: 63, protocol: opts.protocol ?? 4, mf: opts.mf ?? false, df: !opts.mf })
    .payload(inner)
    .build();
}

test('an IPIP datagram for --local: the inner packet is written to the TUN device as it is', () => {
  const writes: Uint8Array[] = [];
  const agent = new TunDecapAgent({ device: 'uvstest0', local: ipv4ToInt('10.79.0.21'), mtu: 1480, log: nullLogger, native: fakeNative(writes) });
  const d = ipip('10.79.0.21');
  agent.buffer.set(d);
  assert.equal(agent.handle(d.length), 0);
  assert.deepEqual(writes, [inner]);
});

test('other datagrams are not written: another local address, not protocol 4, an outer fragment', () => {
  const writes: Uint8Array[] = [];
  const agent = new TunDecapAgent({ device: 'uvstest0', local: ipv4ToInt('10.79.0.21'), mtu: 1480, log: nullLogger, native: fakeNative(writes) });
  for (const d of [ipip('10.79.0.99'), ipip('10.79.0.21', { protocol: 41 }), ipip('10.79.0.21', { mf: true })]) {
    agent.buffer.set(d);
    assert.notEqual(agent.handle(d.length), 0);
  }
  assert.deepEqual(writes, []);
});

test('bad options are refused with a message that names them', () => {
  assert.throws(() => new TunDecapAgent({ device: 'a name with spaces', local: 0, mtu: 1480, log: nullLogger, native: fakeNative([]) }), DecapError);
  assert.throws(() => new TunDecapAgent({ device: 'uvst0', local: 0, mtu: 20, log: nullLogger, native: fakeNative([]) }), /--mtu 20/);
});

test('--allow: IPIP only from the listed directors; other outer sources are counted, not written', () => {
  const writes: Uint8Array[] = [];
  const agent = new TunDecapAgent({
    device: 'uvstest0', local: ipv4ToInt('10.79.0.21'), mtu: 1480, log: nullLogger, native: fakeNative(writes),
    allow: [ipv4ToInt('10.77.0.2')],
  });
  const fromDirector = ipip('10.79.0.21');
  agent.buffer.set(fromDirector);
  assert.equal(agent.handle(fromDirector.length), 0);
  const spoofed = new PacketBuilder().ipv4({ src: '10.66.6.6', dst: '10.79.0.21', ttl: 63, protocol: 4, df: true }).payload(inner).build();
  agent.buffer.set(spoofed);
  assert.notEqual(agent.handle(spoofed.length), 0, 'an IPIP datagram from a host not in --allow is not decapsulated');
  assert.deepEqual(writes, [inner]);
});

test('a CHECKSUM_PARTIAL inner packet (the pseudo-header sum in its field) is written with its checksum completed', () => {
  // The same packet as the fast path's tunnel carries it from a sender on veth: the TCP and UDP
  // fields hold only the folded pseudo-header sum.
  for (const proto of ['tcp', 'udp'] as const) {
    const b = new PacketBuilder().ipv4({ src: '10.77.0.10', dst: '10.77.0.100', ttl: 63, df: true });
    const whole = (proto === 'tcp' ? b.tcp({ srcPort: 4000, dstPort: 80, flags: 0x18 }) : b.udp({ srcPort: 4000, dstPort: 53 })).payload('hello, partial').build();
    const field = 20 + (proto === 'tcp' ? 16 : 6);
    const view = new DataView(whole.buffer, whole.byteOffset, whole.byteLength);
    const l4 = whole.length - 20;
    const pseudo = foldSum(pseudoHeaderSum(view.getUint32(12), view.getUint32(16), whole[9]!, l4));
    const partial = whole.slice();
    new DataView(partial.buffer).setUint16(field, pseudo);
    assert.notDeepEqual(partial, whole);
    const writes: Uint8Array[] = [];
    const agent = new TunDecapAgent({ device: 'uvstest0', local: 0, mtu: 1480, log: nullLogger, native: fakeNative(writes) });
    const d = new PacketBuilder().ipv4({ src: '10.77.0.2', dst: '10.79.0.21', ttl: 63, protocol: 4, df: true }).payload(partial).build();
    agent.buffer.set(d);
    assert.equal(agent.handle(d.length), 0);
    assert.deepEqual(writes, [whole], `${proto}: completed to the sender's whole checksum`);
    assert.equal(agent.stats().checksumsCompleted, 1);
    // A whole checksum is written as it is, and not counted.
    const d2 = new PacketBuilder().ipv4({ src: '10.77.0.2', dst: '10.79.0.21', ttl: 63, protocol: 4, df: true }).payload(whole).build();
    agent.buffer.set(d2);
    assert.equal(agent.handle(d2.length), 0);
    assert.deepEqual(writes[1], whole);
    assert.equal(agent.stats().checksumsCompleted, 1);
  }
});
