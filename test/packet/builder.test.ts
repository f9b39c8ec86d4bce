// The builder produces exactly the captured frames when given the same field values (so its
// lengths and checksums are the real ones), and its overrides produce the intended breakage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allFrames, FixtureFrame, loadFixture } from './fixtures';
import { DecodedFrame } from './chain';
import { PacketBuilder } from '../../src/packet/builder';
import { viewOf } from '../../src/packet/layer';
import { DropReason } from '../../src/packet/drop';
import { TCP_ACK, TCP_SYN } from '../../src/packet/tcp';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED } from '../../src/packet/icmp';
import { ipv4ToInt } from '../../src/packet/addr';

/** A builder that should reproduce `fr`, set up from the decoded fields except lengths and checksums. */
function rebuild(fr: FixtureFrame): PacketBuilder {
  const d = new DecodedFrame();
  assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
  const b = new PacketBuilder().eth({
    src: d.eth.src,
    dst: d.eth.dst,
    ...(d.eth.tagged ? { vlan: { id: d.eth.vlanId, pcp: d.eth.pcp, dei: d.eth.dei, tpid: d.eth.tpid } } : {}),
  });
  let end = d.required;
  if (d.layers.includes('arp')) {
    b.arp({ operation: d.arp.operation, senderMac: d.arp.senderMac, senderIp: d.arp.senderIp, targetMac: d.arp.targetMac, targetIp: d.arp.targetIp });
    end = d.eth.payloadOffset + 28;
  } else {
    const ip = d.ip;
    b.ipv4({
      src: ip.src,
      dst: ip.dst,
      tos: ip.tos,
      id: ip.id,
      flags: ip.flags,
      fragmentOffset: ip.fragmentOffset,
      ttl: ip.ttl,
      protocol: ip.protocol,
      ...(ip.optionsLength ? { options: ip.options.slice(0, ip.optionsLength) } : {}),
    });
    let payloadStart = ip.payloadOffset;
    if (d.layers.includes('tcp')) {
      const t = d.tcp;
      b.tcp({ srcPort: t.srcPort, dstPort: t.dstPort, seq: t.seq, ack: t.ack, flags: t.flags, window: t.window, urgent: t.urgent, options: t.options.slice(0, t.optionsLength) });
      payloadStart = t.payloadOffset;
    } else if (d.layers.includes('udp')) {
      b.udp({ srcPort: d.udp.srcPort, dstPort: d.udp.dstPort });
      payloadStart = d.udp.payloadOffset;
    } else if (d.layers.includes('icmp')) {
      // A first fragment's ICMP checksum covers data in the next fragment: give it, do not compute it.
      b.icmp({ type: d.icmp.type, code: d.icmp.code, rest: d.icmp.rest, ...(ip.isFragment ? { checksum: d.icmp.checksum } : {}) });
      payloadStart = d.icmp.payloadOffset;
    } else if (d.layers.includes('vrrp')) {
      const v = d.vrrp;
      const addresses = Array.from(v.addresses.subarray(0, v.count));
      if (v.version === 2) {
        b.vrrp({ version: 2, vrid: v.vrid, priority: v.priority, addresses, advertInt: v.advertInt, authType: v.authType, password: Buffer.from(v.authData).toString('latin1').replace(/\0+$/, '') });
      } else {
        b.vrrp({ version: 3, vrid: v.vrid, priority: v.priority, addresses, maxAdvertInt: v.maxAdvertInt });
      }
      payloadStart = v.headerOffset + v.encodedLength();
    }
    b.payload(fr.bytes.slice(payloadStart, end));
  }
  if (end < fr.bytes.length) b.pad(fr.bytes.slice(end));
  return b;
}

test('builder output equals every captured frame built from the same fields', async (t) => {
  for (const fr of allFrames()) {
    await t.test(`${fr.fixture} frame ${fr.index}`, () => {
      assert.deepEqual(rebuild(fr).build(), fr.bytes);
    });
  }
});

test('hand-written builds: a SYN to a VIP and a frag-needed quoting it', () => {
  const syn = new PacketBuilder()
    .eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' })
    .ipv4({ src: '10.0.0.1', dst: '10.0.0.100', df: true, id: 7 })
    .tcp({ srcPort: 40000, dstPort: 80, seq: 1, flags: TCP_SYN, options: new Uint8Array([2, 4, 0x05, 0xb4]) })
    .build();
  const d = new DecodedFrame();
  assert.equal(d.decode(syn, viewOf(syn), syn.length), 0);
  assert.equal(d.ip.totalLength, 44);
  assert.equal(d.tcp.dataOffset, 6);
  assert.equal(d.tcp.mss(), 1460);
  assert.ok(d.ip.dontFragment);
  assert.ok(d.tcp.verifyChecksum(syn, d.tcp.headerOffset, d.ip.payloadLength, d.ip.src, d.ip.dst));

  const quote = syn.slice(14, 14 + 28);
  const err = new PacketBuilder()
    .eth()
    .ipv4({ src: '10.0.0.254', dst: '10.0.0.1' })
    .icmp({ type: ICMP_DEST_UNREACH, code: ICMP_FRAG_NEEDED, nextHopMtu: 1480 })
    .payload(quote)
    .build();
  const e = new DecodedFrame();
  assert.equal(e.decode(err, viewOf(err), err.length), 0);
  assert.deepEqual(e.layers, ['eth', 'ipv4', 'icmp', 'quote']);
  assert.equal(e.icmp.nextHopMtu, 1480);
  assert.equal(e.quoted.dst, ipv4ToInt('10.0.0.100'));
  assert.equal(e.icmp.quotedSrcPort, 40000);
  assert.equal(e.icmp.quotedDstPort, 80);
  assert.ok(e.icmp.verifyChecksum(err, e.icmp.headerOffset, e.ip.payloadLength));
});

test('overrides build broken packets that decode to the expected reason', () => {
  const base = () => new PacketBuilder().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' });
  const verdict = (b: Uint8Array) => new DecodedFrame().decode(b, viewOf(b), b.length);
  assert.equal(verdict(base().tcp({ srcPort: 1, dstPort: 2, flags: TCP_ACK }).build()), 0);
  assert.equal(verdict(new PacketBuilder().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2', checksum: 0xdead }).udp({ srcPort: 1, dstPort: 2 }).build()), DropReason.BAD_IP_CHECKSUM);
  assert.equal(verdict(new PacketBuilder().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2', totalLength: 200 }).udp({ srcPort: 1, dstPort: 2 }).build()), DropReason.TRUNCATED_IP);
  assert.equal(verdict(new PacketBuilder().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2', version: 6 }).udp({ srcPort: 1, dstPort: 2 }).build()), DropReason.BAD_IP_VERSION);
  assert.equal(verdict(new PacketBuilder().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ihl: 4 }).udp({ srcPort: 1, dstPort: 2 }).build()), DropReason.BAD_IHL);
  assert.equal(verdict(base().tcp({ srcPort: 1, dstPort: 2, dataOffset: 3 }).build()), DropReason.BAD_TCP_OFFSET);
  // Data offset 8 (32 bytes) but the IP total length leaves the segment only 20.
  assert.equal(verdict(new PacketBuilder().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2', totalLength: 40 }).tcp({ srcPort: 1, dstPort: 2, dataOffset: 8 }).build()), DropReason.TRUNCATED_TCP);
  assert.equal(verdict(base().udp({ srcPort: 1, dstPort: 2, length: 9 }).build()), DropReason.BAD_UDP_LENGTH);
  assert.equal(verdict(base().vrrp({ version: 3, vrid: 1, priority: 100, addresses: ['10.0.0.9'], count: 2 }).build()), DropReason.TRUNCATED_VRRP);
  assert.equal(verdict(base().vrrp({ version: 3, vrid: 1, priority: 100, addresses: [], type: 2 }).build()), DropReason.BAD_VRRP_TYPE);
  // A wrong transport checksum still decodes (decoders do not verify it) but does not verify.
  const bad = base().udp({ srcPort: 1, dstPort: 2, checksum: 0x1111 }).payload('x').build();
  const d = new DecodedFrame();
  assert.equal(d.decode(bad, viewOf(bad), bad.length), 0);
  assert.ok(!d.udp.verifyChecksum(bad, d.udp.headerOffset, d.ip.src, d.ip.dst));
  // Ethernet padding is not counted in any length.
  const padded = base().udp({ srcPort: 1, dstPort: 2 }).pad(18).build();
  assert.equal(padded.length, 60);
  assert.equal(verdict(padded), 0);
});

test('VRRP v2 PASS built by the builder matches keepalived byte for byte', () => {
  const fr = loadFixture('vrrp-v2')[0]!;
  const d = new DecodedFrame();
  assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
  const built = new PacketBuilder()
    .eth({ src: d.eth.src, dst: '01:00:5e:00:00:12' })
    .ipv4({ src: '10.201.0.1', dst: '224.0.0.18', tos: 0xc0, ttl: 255, id: d.ip.id })
    .vrrp({ version: 2, vrid: 51, priority: 150, addresses: ['10.201.0.100', '10.201.0.101'], advertInt: 1, password: 'uvs-pw' })
    .build();
  assert.deepEqual(built, fr.bytes);
});
