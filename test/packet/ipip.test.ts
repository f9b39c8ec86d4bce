// IP-in-IP: the outer header IPVS's ip_vs_tunnel_xmit would write, and stripping it again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from './fixtures';
import { DecodedFrame } from './chain';
import { viewOf } from '../../src/packet/layer';
import { DropReason } from '../../src/packet/drop';
import { IPPROTO_IPIP, Ipv4Header } from '../../src/packet/ipv4';
import { IPIP_OVERHEAD, ipipDecapsulate, ipipEncapsulate, ipipStripFrame } from '../../src/packet/ipip';
import { PacketBuilder } from '../../src/packet/builder';
import { ipv4ToInt } from '../../src/packet/addr';
import { checksumVerifies } from '../../src/packet/checksum';

const DIP = ipv4ToInt('10.1.0.1');
const RIP = ipv4ToInt('10.2.0.5');

/** The captured SYN with 20 bytes of room between its Ethernet header and its IP packet, encapsulated. */
function encapsulatedSyn() {
  const fr = loadFixture('http-tcp')[0]!;
  const buf = new Uint8Array(fr.bytes.length + IPIP_OVERHEAD);
  buf.set(fr.bytes.subarray(0, 14), 0);
  buf.set(fr.bytes.subarray(14), 14 + IPIP_OVERHEAD);
  const view = viewOf(buf);
  const inner = new Ipv4Header();
  assert.equal(inner.decode(buf, view, 14 + IPIP_OVERHEAD, buf.length - 14 - IPIP_OVERHEAD), 0);
  const outer = new Ipv4Header();
  assert.equal(ipipEncapsulate(buf, view, 14, inner, outer, DIP, RIP, 0x1234), 0);
  return { fr, buf, view, inner, outer };
}

test('encapsulation writes the outer header IPVS writes: proto 4, TOS/TTL/DF copied, valid checksum', () => {
  const { buf, view, inner } = encapsulatedSyn();
  const outer = new Ipv4Header();
  assert.equal(outer.decode(buf, view, 14, buf.length - 14), 0, 'outer header decodes, checksum verifies');
  assert.equal(outer.protocol, IPPROTO_IPIP);
  assert.equal(outer.ihl, 5);
  assert.equal(outer.totalLength, inner.totalLength + 20);
  assert.equal(outer.src, DIP);
  assert.equal(outer.dst, RIP);
  assert.equal(outer.id, 0x1234);
  assert.equal(outer.ttl, inner.ttl);
  assert.equal(outer.tos, inner.tos);
  assert.equal(outer.dontFragment, inner.dontFragment);
  assert.ok(inner.dontFragment, 'the captured SYN has DF, so the copy is visible');
  assert.equal(outer.fragmentOffset, 0);
  assert.ok(checksumVerifies(buf, 14, 20));
});

test('the builder with two IPv4 layers (protocol 4 inferred) produces the same bytes', () => {
  const { fr, buf } = encapsulatedSyn();
  const d = new DecodedFrame();
  assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
  const nested = new PacketBuilder()
    .eth({ src: d.eth.src, dst: d.eth.dst })
    .ipv4({ src: DIP, dst: RIP, id: 0x1234, ttl: d.ip.ttl, tos: d.ip.tos, df: true })
    .ipv4({ src: d.ip.src, dst: d.ip.dst, id: d.ip.id, ttl: d.ip.ttl, tos: d.ip.tos, flags: d.ip.flags })
    .tcp({ srcPort: d.tcp.srcPort, dstPort: d.tcp.dstPort, seq: d.tcp.seq, ack: d.tcp.ack, flags: d.tcp.flags, window: d.tcp.window, options: d.tcp.options.slice(0, d.tcp.optionsLength) })
    .build();
  assert.deepEqual(nested, buf);
});

test('decapsulation finds the inner packet; stripping restores the original frame', () => {
  const { fr, buf, view } = encapsulatedSyn();
  const outer = new Ipv4Header();
  const inner = new Ipv4Header();
  assert.equal(ipipDecapsulate(buf, view, 14, buf.length - 14, outer, inner), 0);
  assert.equal(inner.headerOffset, 34);
  const start = ipipStripFrame(buf, 0, 14, outer.headerLength);
  assert.equal(start, 20);
  assert.deepEqual(buf.subarray(start), fr.bytes);
});

test('encapsulation and decapsulation refusals', () => {
  const fr = loadFixture('http-tcp')[0]!;
  const d = new DecodedFrame();
  assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
  const outer = new Ipv4Header();
  const inner = new Ipv4Header();
  assert.equal(ipipDecapsulate(fr.bytes, fr.view, 14, fr.bytes.length - 14, outer, inner), DropReason.NOT_IPIP);
  // No room in front of the packet: the inner header is not 20 bytes after the given offset.
  assert.equal(ipipEncapsulate(fr.bytes, fr.view, 0, d.ip, outer, DIP, RIP, 1), DropReason.TRUNCATED_IP);
  // Too big for an IPv4 total length once 20 bytes are added.
  const big = new Ipv4Header();
  big.headerOffset = 20;
  big.totalLength = 65530;
  assert.equal(ipipEncapsulate(new Uint8Array(100), new DataView(new ArrayBuffer(100)), 0, big, outer, DIP, RIP, 1), DropReason.TOO_BIG);
  // DF not copied when PMTU discovery is off.
  const { buf, view, inner: syn } = encapsulatedSyn();
  assert.equal(ipipEncapsulate(buf, view, 14, syn, outer, DIP, RIP, 2, false), 0);
  assert.equal(outer.dontFragment, false);
  // A fragmented outer packet must be reassembled first.
  const frag = new PacketBuilder().ipv4({ src: DIP, dst: RIP, mf: true }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ srcPort: 1, dstPort: 2 }).build();
  assert.equal(ipipDecapsulate(frag, viewOf(frag), 0, frag.length, outer, inner), DropReason.IP_FRAGMENT);
});
