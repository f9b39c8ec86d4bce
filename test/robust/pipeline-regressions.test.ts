// Bugs the pipeline fuzz (test/robust/fuzz.ts) found, each as the test that failed before its fix.
//
// Seed 1306658 frame #98: a frame longer than its
// IPv4 total length (bytes after the IP packet, beyond Ethernet's padding to 60) was forwarded with
// those bytes. The kernel trims them on receive (ip_rcv_core: pskb_trim_rcsum to tot_len), so IPVS
// never sends them on; uvs must not either (they could carry anything the sender put there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder } from '../../src/packet/builder';
import { TCP_SYN } from '../../src/packet/tcp';
import { EthernetHeader, ETHERTYPE_IPV4 } from '../../src/packet/ethernet';
import { Ipv4Header } from '../../src/packet/ipv4';
import { viewOf } from '../../src/packet/layer';
import { ForwardMethod } from '../../src/tables/dest-table';
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC, TCP_PORT, UDP_PORT, VIP, drainTx, makePipelineLab } from './pipeline-lab';
import { QUEUED } from '../../src/dataplane/pipeline';

function synWithTrailer(sport: number, trailer: number, payload = 0): Uint8Array {
  return new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
    .ipv4({ src: CLIENT, dst: VIP, ttl: 64, id: 1 })
    .tcp({ srcPort: sport, dstPort: TCP_PORT, flags: TCP_SYN, seq: 1 })
    .payload(new Uint8Array(payload))
    .pad(new Uint8Array(trailer).fill(0xee))
    .build();
}

test('bytes after the IP packet are not forwarded (DR and NAT): the frame to send ends with the packet', () => {
  for (const fwd of [ForwardMethod.DROUTE, ForwardMethod.MASQ]) {
    const lab = makePipelineLab(fwd, false);
    const f = synWithTrailer(40000, 30, 100); // the IP packet is 140 bytes, 30 more follow
    assert.equal(lab.pipeline.process(f, viewOf(f), 0, f.length, 1_000_000, 0), 1);
    assert.equal(lab.pipeline.txLength, 14 + 140, `mode ${fwd}`);
    // A short packet with a trailer: cut to Ethernet's 60 bytes, not below.
    const g = synWithTrailer(40003, 30);
    assert.equal(lab.pipeline.process(g, viewOf(g), 0, g.length, 1_000_000, 0), 1);
    assert.equal(lab.pipeline.txLength, 60, `mode ${fwd}`);
  }
});

test('Ethernet padding of a short frame is kept (the frame stays 60 bytes)', () => {
  const lab = makePipelineLab(ForwardMethod.DROUTE, false);
  const f = synWithTrailer(40001, 6); // 54 + 6 = 60: padding, not a trailer
  assert.equal(lab.pipeline.process(f, viewOf(f), 0, f.length, 1_000_000, 0), 1);
  assert.equal(lab.pipeline.txLength, 60);
  const whole = synWithTrailer(40002, 0);
  assert.equal(lab.pipeline.process(whole, viewOf(whole), 0, whole.length, 1_000_000, 0), 1);
  assert.equal(lab.pipeline.txLength, 54);
});

// Seed 1306658 frame #2696: an 802.1Q-tagged datagram larger than the real server's MTU (a
// reassembled one), NAT without DF, was re-fragmented with only 14 bytes of its 18-byte Ethernet
// header copied: the fragments carried EtherType 0x8100 directly in front of the IP header. The
// fragments keep the frame's whole link-layer header, as the in-place rewrite does. (A tag with a
// VID other than 0 is now dropped as FOREIGN_VLAN before this point; a priority tag, VID 0, still
// comes this way.)
test('re-fragmenting a priority-tagged frame keeps its whole Ethernet header (tag included)', () => {
  const lab = makePipelineLab(ForwardMethod.MASQ, false);
  const data = new Uint8Array(3000).fill(0x42);
  const f = new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC, vlan: { id: 0, pcp: 5 } })
    .ipv4({ src: CLIENT, dst: VIP, ttl: 64, id: 7, df: false })
    .udp({ srcPort: 40000, dstPort: UDP_PORT })
    .payload(data)
    .build();
  assert.equal(lab.pipeline.process(f, viewOf(f), 0, f.length, 1_000_000, 0), QUEUED);
  const frags = drainTx(lab);
  assert.equal(frags.length, 3);
  let bytes = 0;
  for (const q of frags) {
    const eth = new EthernetHeader();
    const v = viewOf(q.bytes);
    assert.equal(eth.decode(q.bytes, v, 0, q.bytes.length), 0);
    assert.equal(eth.etherType, ETHERTYPE_IPV4);
    assert.equal(eth.vlanId, 0);
    const ip = new Ipv4Header();
    assert.equal(ip.decode(q.bytes, v, eth.payloadOffset, q.bytes.length - eth.payloadOffset), 0);
    assert.equal(ip.totalLength, q.bytes.length - 18);
    bytes += ip.payloadLength;
  }
  assert.equal(bytes, 8 + data.length);
});
