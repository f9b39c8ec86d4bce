// uvs-tun-decap's userspace GRO (src/tun/gro.ts): which segments join a super-frame, what the
// written frame and its virtio_net_hdr say, and that anything else goes alone, unchanged, in
// order. Through the agent with a fake addon, as test/tun/decap.test.ts does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder } from '../../src/packet/builder';
import { ipv4ToInt } from '../../src/packet/addr';
import { foldSum, onesComplementSum, pseudoHeaderSum } from '../../src/packet/checksum';
import { TunDecapAgent } from '../../src/tun/decap';
import { MAX_SEGMENTS, TcpCoalescer, VNET_HDR_BYTES } from '../../src/tun/gro';
import type { NativeAddon } from '../../src/native/addon';
import { nullLogger } from '../../src/runtime/log';

const ACK = 0x10;
const PSH = 0x08;
const TS = Uint8Array.from([1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);

interface Seg { seq: number; len: number; flags?: number; srcPort?: number; ack?: number; window?: number; options?: Uint8Array; checksum?: number; mf?: boolean }

function segment(s: Seg): Uint8Array {
  const payload = new Uint8Array(s.len);
  for (let i = 0; i < s.len; i++) payload[i] = (s.seq + i) & 0xff;
  return new PacketBuilder()
    .ipv4({ src: '10.77.0.10', dst: '10.77.0.100', ttl: 63, df: !s.mf, mf: s.mf ?? false })
    .tcp({ srcPort: s.srcPort ?? 4000, dstPort: 80, flags: s.flags ?? ACK, seq: s.seq, ack: s.ack ?? 5, window: s.window ?? 500, options: s.options ?? TS, ...(s.checksum !== undefined ? { checksum: s.checksum } : {}) })
    .payload(payload)
    .build();
}

function ipip(inner: Uint8Array): Uint8Array {
  return new PacketBuilder().ipv4({ src: '10.77.0.2', dst: '10.79.0.21', ttl: 63, protocol: 4, df: true }).payload(inner).build();
}

function agentWith(writes: Uint8Array[]): TunDecapAgent {
  const fake: Partial<NativeAddon> = {
    fdWrite: (_fd: number, buffer: ArrayBuffer | ArrayBufferView, length: number) => {
      writes.push((buffer as Uint8Array).slice(0, length));
      return length;
    },
  };
  return new TunDecapAgent({ device: 'uvstest0', local: ipv4ToInt('10.79.0.21'), mtu: 1500, gro: true, log: nullLogger, native: fake as NativeAddon });
}

function feed(agent: TunDecapAgent, inners: Uint8Array[]): void {
  for (const inner of inners) {
    const d = ipip(inner);
    agent.buffer.set(d);
    agent.handle(d.length);
  }
  agent.flush();
}

const vnet = (w: Uint8Array): DataView => new DataView(w.buffer, w.byteOffset, VNET_HDR_BYTES);

test('consecutive segments of a flow become one GSO TCPV4 frame: headers of the first, payloads in order, CHECKSUM_PARTIAL', () => {
  const writes: Uint8Array[] = [];
  const agent = agentWith(writes);
  const segs = [segment({ seq: 1000, len: 1000 }), segment({ seq: 2000, len: 1000 }), segment({ seq: 3000, len: 400, flags: ACK | PSH })];
  feed(agent, segs);
  assert.equal(writes.length, 1);
  const w = writes[0]!;
  const h = vnet(w);
  assert.equal(h.getUint8(0), 1, 'NEEDS_CSUM');
  assert.equal(h.getUint8(1), 1, 'GSO TCPV4');
  assert.equal(h.getUint16(2, true), 20 + 32, 'hdr_len');
  assert.equal(h.getUint16(4, true), 1000, 'gso_size');
  assert.equal(h.getUint16(6, true), 20, 'csum_start');
  assert.equal(h.getUint16(8, true), 16, 'csum_offset');
  const ip = w.subarray(VNET_HDR_BYTES);
  const v = new DataView(ip.buffer, ip.byteOffset, ip.length);
  assert.equal(v.getUint16(2), ip.length);
  assert.equal(ip.length, 20 + 32 + 2400);
  assert.equal(foldSum(onesComplementSum(ip, 0, 20)), 0xffff, 'the IP header checksum is redone');
  assert.equal(v.getUint32(24), 1000, 'seq of the first');
  assert.equal(ip[33]! & PSH, PSH, 'PSH of the last segment');
  assert.equal(v.getUint16(36), foldSum(pseudoHeaderSum(v.getUint32(12), v.getUint32(16), 6, ip.length - 20)), 'pseudo-header sum in the TCP checksum field');
  const payload = ip.subarray(52);
  for (let i = 0; i < payload.length; i++) if (payload[i] !== ((1000 + i) & 0xff)) assert.fail(`payload byte ${i}`);
  assert.deepEqual(agent.stats().superFrames, 1);
  assert.equal(agent.stats().delivered, 3);
});

test('a lone segment goes unchanged with a zero virtio_net_hdr', () => {
  const writes: Uint8Array[] = [];
  const agent = agentWith(writes);
  const s = segment({ seq: 1, len: 100 });
  feed(agent, [s]);
  assert.deepEqual(writes, [Uint8Array.from([...new Uint8Array(VNET_HDR_BYTES), ...s])]);
  assert.equal(agent.stats().delivered, 1);
});

test('what may not join is written alone, in order, unchanged: a gap, another flow, other ack/window/options, a bad checksum, SYN/FIN, a fragment', () => {
  const cases: Array<[string, Seg]> = [
    ['a sequence gap', { seq: 2001, len: 1000 }],
    ['another flow', { seq: 2000, len: 1000, srcPort: 4001 }],
    ['another ack', { seq: 2000, len: 1000, ack: 6 }],
    ['another window', { seq: 2000, len: 1000, window: 501 }],
    ['other options', { seq: 2000, len: 1000, options: Uint8Array.from([1, 1, 8, 10, 0, 0, 0, 8, 0, 0, 0, 9]) }],
    ['a longer segment', { seq: 2000, len: 1001 }],
  ];
  for (const [what, s] of cases) {
    const writes: Uint8Array[] = [];
    const agent = agentWith(writes);
    feed(agent, [segment({ seq: 1000, len: 1000 }), segment(s)]);
    assert.equal(writes.length, 2, what);
    for (const w of writes) assert.equal(w[1], 0, `${what}: no GSO`);
    assert.deepEqual(writes[1]!.subarray(VNET_HDR_BYTES), segment(s), what);
  }
  const never: Array<[string, Seg]> = [
    ['a bad TCP checksum', { seq: 2000, len: 1000, checksum: 0x1234 }],
    ['FIN', { seq: 2000, len: 1000, flags: ACK | 0x01 }],
    ['SYN', { seq: 2000, len: 1000, flags: 0x02 }],
    ['a fragment', { seq: 2000, len: 1000, mf: true }],
    ['a pure ACK', { seq: 2000, len: 0 }],
  ];
  for (const [what, s] of never) {
    const writes: Uint8Array[] = [];
    const agent = agentWith(writes);
    const later = segment({ seq: 2000 + s.len, len: 1000 });
    feed(agent, [segment({ seq: 1000, len: 1000 }), segment(s), later]);
    assert.equal(writes.length, 3, what);
    assert.deepEqual(writes[1]!.subarray(VNET_HDR_BYTES), segment(s), `${what}: unchanged, after what came before`);
  }
});

test('a frame ends after a short segment, after PSH, at MAX_SEGMENTS and before 65,535 bytes', () => {
  let writes: Uint8Array[] = [];
  let agent = agentWith(writes);
  feed(agent, [segment({ seq: 0, len: 1000 }), segment({ seq: 1000, len: 500 }), segment({ seq: 1500, len: 500 })]);
  assert.deepEqual(writes.map((w) => w.length - VNET_HDR_BYTES - 52), [1500, 500]);
  writes = [];
  agent = agentWith(writes);
  feed(agent, [segment({ seq: 0, len: 100, flags: ACK | PSH }), segment({ seq: 100, len: 100 })]);
  assert.equal(writes.length, 2);
  writes = [];
  agent = agentWith(writes);
  const many: Uint8Array[] = [];
  for (let i = 0; i < MAX_SEGMENTS + 3; i++) many.push(segment({ seq: i * 100, len: 100 }));
  feed(agent, many);
  assert.deepEqual(writes.map((w) => (w.length - VNET_HDR_BYTES - 52) / 100), [MAX_SEGMENTS, 3]);
  writes = [];
  agent = agentWith(writes);
  const big: Uint8Array[] = [];
  for (let i = 0; i < 50; i++) big.push(segment({ seq: i * 1400, len: 1400 }));
  feed(agent, big);
  for (const w of writes) assert.ok(w.length - VNET_HDR_BYTES <= 0xffff);
  assert.equal(writes.reduce((n, w) => n + (w.length - VNET_HDR_BYTES - 52), 0), 50 * 1400);
  assert.equal(agent.stats().delivered, 50);
});

test('a failed write of a super-frame counts each of its datagrams', () => {
  const fake: Partial<NativeAddon> = { fdWrite: () => { throw new Error('EIO'); } };
  const agent = new TunDecapAgent({ device: 'uvstest0', local: 0, mtu: 1500, gro: true, log: nullLogger, native: fake as NativeAddon });
  feed(agent, [segment({ seq: 0, len: 100 }), segment({ seq: 100, len: 100 }), segment({ seq: 200, len: 100 })]);
  const s = agent.stats();
  assert.equal(s.writeErrors, 3);
  assert.equal(s.delivered, 0);
});

test('TcpCoalescer alone: nothing pending, nothing to write', () => {
  assert.equal(new TcpCoalescer().finish(), 0);
});
