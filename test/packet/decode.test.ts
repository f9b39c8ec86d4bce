// Every captured fixture decodes, and every field agrees with what tshark printed beside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allFrames, field, fields, loadFixture, macOf, num, section, subsection, FixtureFrame } from './fixtures';
import { DecodedFrame } from './chain';
import { intToIpv4, intToMac } from '../../src/packet/addr';
import { ETHERTYPE_VLAN } from '../../src/packet/ethernet';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, ICMP_TIME_EXCEEDED, IcmpHeader, writeIcmpError } from '../../src/packet/icmp';
import { IPPROTO_UDP, Ipv4Header } from '../../src/packet/ipv4';
import { viewOf } from '../../src/packet/layer';
import { TCP_SYN } from '../../src/packet/tcp';

const hex = (n: number) => '0x' + n.toString(16).padStart(4, '0');

function checkIpv4Against(lines: string[], ip: DecodedFrame['ip'], indent: number, where: string): void {
  const f = (name: string) => field(lines, name, indent);
  assert.equal(ip.version, num(f('Version')), `${where}: version`);
  assert.equal(ip.ihl, num(f('Header Length')), `${where}: IHL`);
  assert.equal(ip.tos, Number(f('Differentiated Services Field')!.split(' ')[0]), `${where}: TOS`);
  assert.equal(ip.totalLength, num(f('Total Length')), `${where}: total length`);
  assert.equal(ip.id, Number(f('Identification')!.split(' ')[0]), `${where}: id`);
  assert.equal(ip.flags, Number(f('Flags')!.split(/[ ,]/)[0]), `${where}: flags`);
  assert.equal(ip.dontFragment, fields(lines, "Don't fragment", indent + 4)[0] === 'Set', `${where}: DF`);
  assert.equal(ip.moreFragments, fields(lines, 'More fragments', indent + 4)[0] === 'Set', `${where}: MF`);
  // tshark 4.0 prints the fragment offset in bytes.
  assert.equal(ip.fragmentOffset * 8, num(f('Fragment Offset')), `${where}: fragment offset`);
  assert.equal(ip.ttl, num(f('Time to Live')), `${where}: TTL`);
  assert.equal(ip.protocol, num(f('Protocol')), `${where}: protocol`);
  assert.equal(hex(ip.checksum), f('Header Checksum')!.split(' ')[0], `${where}: header checksum`);
  assert.equal(intToIpv4(ip.src), f('Source Address'), `${where}: src`);
  assert.equal(intToIpv4(ip.dst), f('Destination Address'), `${where}: dst`);
}

function checkFrame(fr: FixtureFrame): DecodedFrame {
  const where = `${fr.fixture} frame ${fr.index}`;
  const d = new DecodedFrame();
  assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0, `${where}: decodes`);

  const eth = section(fr, 'Ethernet II')!;
  assert.equal(intToMac(d.eth.dst), macOf(field(eth, 'Destination')), `${where}: dst MAC`);
  assert.equal(intToMac(d.eth.src), macOf(field(eth, 'Source')), `${where}: src MAC`);
  const vlan = section(fr, '802.1Q Virtual LAN');
  if (vlan) {
    assert.equal(d.eth.tagged, 1, `${where}: tagged`);
    assert.equal(d.eth.tpid, num(field(eth, 'Type')));
    assert.equal(d.eth.tpid, ETHERTYPE_VLAN);
    assert.equal(d.eth.pcp, num(field(vlan, 'Priority')), `${where}: PCP`);
    assert.equal(d.eth.vlanId, num(field(vlan, 'ID')), `${where}: VID`);
    assert.equal(d.eth.dei, field(vlan, 'DEI') === 'Ineligible' ? 0 : 1, `${where}: DEI`);
    assert.equal(d.eth.etherType, num(field(vlan, 'Type')), `${where}: inner EtherType`);
  } else {
    assert.equal(d.eth.tagged, 0);
    assert.equal(d.eth.etherType, num(field(eth, 'Type')), `${where}: EtherType`);
  }

  const arp = section(fr, 'Address Resolution Protocol');
  if (arp) {
    assert.ok(d.layers.includes('arp'), `${where}: ARP decoded`);
    assert.equal(d.arp.hardwareType, num(field(arp, 'Hardware type')));
    assert.equal(d.arp.protocolType, num(field(arp, 'Protocol type')));
    assert.equal(d.arp.hardwareLength, num(field(arp, 'Hardware size')));
    assert.equal(d.arp.protocolLength, num(field(arp, 'Protocol size')));
    assert.equal(d.arp.operation, num(field(arp, 'Opcode')), `${where}: opcode`);
    assert.equal(intToMac(d.arp.senderMac), macOf(field(arp, 'Sender MAC address')));
    assert.equal(intToIpv4(d.arp.senderIp), field(arp, 'Sender IP address'));
    assert.equal(intToMac(d.arp.targetMac), macOf(field(arp, 'Target MAC address')));
    assert.equal(intToIpv4(d.arp.targetIp), field(arp, 'Target IP address'));
    assert.equal(d.arp.isGratuitous, arp[0]!.includes('gratuitous'), `${where}: gratuitous`);
  }

  const ipLines = section(fr, 'Internet Protocol Version 4');
  if (ipLines) {
    assert.ok(d.layers.includes('ipv4'));
    checkIpv4Against(ipLines, d.ip, 0, where);
    assert.equal(field(ipLines, 'Header Checksum')!.includes('[correct]'), true, `${where}: tshark verified the IP checksum too`);
    if (d.ip.optionsLength > 0) {
      const opts = field(ipLines, 'Options')!;
      assert.equal(d.ip.optionsLength, num(/\((\d+) bytes\)/.exec(opts)![1]), `${where}: options length`);
    }
  }

  const tcp = section(fr, 'Transmission Control Protocol');
  if (tcp) {
    const t = d.tcp;
    assert.ok(d.layers.includes('tcp'));
    assert.equal(t.srcPort, num(field(tcp, 'Source Port')));
    assert.equal(t.dstPort, num(field(tcp, 'Destination Port')));
    assert.equal(t.seq, num(field(tcp, 'Sequence Number')), `${where}: seq`);
    assert.equal(t.ack, num(field(tcp, 'Acknowledgment Number')), `${where}: ack`);
    assert.equal(t.dataOffset, num(field(tcp, 'Header Length')), `${where}: data offset`);
    assert.equal(t.flags | (t.reserved << 8), Number(field(tcp, 'Flags')!.split(' ')[0]), `${where}: flags`);
    assert.equal(t.window, num(field(tcp, 'Window')), `${where}: window`);
    assert.equal(hex(t.checksum), field(tcp, 'Checksum')!.split(' ')[0]);
    assert.equal(t.urgent, num(field(tcp, 'Urgent Pointer')));
    assert.equal(t.payloadLength, num(/Len: (\d+)/.exec(tcp[0]!)![1]), `${where}: segment length`);
    const mssLine = tcp.find((l) => l.includes('MSS Value: '));
    assert.equal(t.mss(), mssLine ? Number(mssLine.split('MSS Value: ')[1]) : -1, `${where}: MSS`);
  }

  const udp = section(fr, 'User Datagram Protocol');
  if (udp) {
    assert.ok(d.layers.includes('udp'));
    assert.equal(d.udp.srcPort, num(field(udp, 'Source Port')));
    assert.equal(d.udp.dstPort, num(field(udp, 'Destination Port')));
    assert.equal(d.udp.length, num(field(udp, 'Length')));
    assert.equal(hex(d.udp.checksum), field(udp, 'Checksum')!.split(' ')[0]);
  }

  const icmp = section(fr, 'Internet Control Message Protocol');
  if (icmp && d.ip.fragmentOffset === 0) {
    const c = d.icmp;
    assert.ok(d.layers.includes('icmp'));
    assert.equal(c.type, num(field(icmp, 'Type')), `${where}: ICMP type`);
    assert.equal(c.code, num(field(icmp, 'Code')), `${where}: ICMP code`);
    assert.equal(hex(c.checksum), field(icmp, 'Checksum')!.split(' ')[0]);
    const id = field(icmp, 'Identifier (BE)');
    if (id !== undefined) {
      assert.equal(c.id, num(id.split(' ')[0]), `${where}: echo id`);
      assert.equal(c.sequence, num(field(icmp, 'Sequence Number (BE)')!.split(' ')[0]), `${where}: echo seq`);
    }
    const mtu = field(icmp, 'MTU of next hop');
    if (mtu !== undefined) assert.equal(c.nextHopMtu, num(mtu), `${where}: next-hop MTU`);
    const quotedIp = subsection(icmp, 'Internet Protocol Version 4', 4);
    assert.equal(c.isError, quotedIp !== undefined, `${where}: error messages quote a header`);
    if (quotedIp) {
      assert.ok(d.layers.includes('quote'), `${where}: quote decoded`);
      checkIpv4Against(quotedIp, d.quoted, 4, `${where} (quoted)`);
      const quotedUdp = subsection(icmp, 'User Datagram Protocol', 4);
      if (quotedUdp) {
        assert.equal(c.quotedSrcPort, num(field(quotedUdp, 'Source Port', 4)));
        assert.equal(c.quotedDstPort, num(field(quotedUdp, 'Destination Port', 4)));
      }
      const quotedIcmp = subsection(icmp, 'Internet Control Message Protocol', 4);
      if (quotedIcmp) assert.equal(c.quotedSrcPort >>> 8, num(field(quotedIcmp, 'Type', 4)), `${where}: quoted ICMP type`);
    }
  }

  const vrrp = section(fr, 'Virtual Router Redundancy Protocol');
  if (vrrp) {
    const v = d.vrrp;
    assert.ok(d.layers.includes('vrrp'));
    assert.equal(v.version, num(field(vrrp, 'VRRP protocol version', 4)));
    assert.equal(v.type, num(field(vrrp, 'VRRP packet type', 4)));
    assert.equal(v.vrid, num(field(vrrp, 'Virtual Rtr ID')));
    assert.equal(v.priority, num(field(vrrp, 'Priority')!.split(' ')[0]));
    assert.equal(v.count, num(field(vrrp, 'Addr Count')));
    assert.deepEqual(
      Array.from(v.addresses.subarray(0, v.count), intToIpv4),
      fields(vrrp, 'IP Address'),
      `${where}: address list`,
    );
    if (v.version === 2) {
      assert.equal(v.authType, num(field(vrrp, 'Auth Type')));
      assert.equal(v.advertInt, num(field(vrrp, 'Adver Int')));
      const pass = field(vrrp, 'Authentication String');
      if (pass !== undefined) assert.equal(Buffer.from(v.authData).toString('latin1').replace(/\0+$/, ''), pass);
    } else {
      assert.equal(v.maxAdvertInt, num(field(vrrp, 'Adver Int')));
    }
    assert.equal(hex(v.checksum), field(vrrp, 'Checksum')!.split(' ')[0]);
    assert.ok(field(vrrp, 'Checksum')!.includes('[correct]'), `${where}: tshark verified the VRRP checksum`);
  }
  return d;
}

test('every fixture frame decodes and matches the tshark text', async (t) => {
  const frames = allFrames();
  assert.ok(frames.length >= 30, `expected the full fixture set, got ${frames.length} frames`);
  for (const fr of frames) await t.test(`${fr.fixture} frame ${fr.index}`, () => void checkFrame(fr));
});

test('fixture-specific facts the captures were made to show', () => {
  const d = new DecodedFrame();
  const decode = (name: string, i: number) => {
    const fr = loadFixture(name)[i]!;
    assert.equal(d.decode(fr.bytes, fr.view, fr.bytes.length), 0);
    return fr;
  };

  decode('http-tcp', 0);
  assert.equal(d.tcp.flags, TCP_SYN);
  assert.equal(d.tcp.dstPort, 8080);
  assert.equal(d.tcp.dataOffset, 10);

  decode('icmp-frag-needed', 1);
  assert.equal(d.icmp.type, ICMP_DEST_UNREACH);
  assert.equal(d.icmp.code, ICMP_FRAG_NEEDED);
  assert.equal(d.icmp.nextHopMtu, 1280, 'the router link had MTU 1280');
  assert.ok(d.quoted.dontFragment);
  assert.ok(d.quoted.totalLength > d.quoted.headerLength + d.quoted.payloadLength, 'the quote is shorter than the datagram it quotes');

  decode('icmp-time-exceeded', 1);
  assert.equal(d.icmp.type, ICMP_TIME_EXCEEDED);
  assert.equal(d.icmp.code, 0, 'TTL exceeded in transit');
  assert.equal(d.ip.dst, d.quoted.src, 'the error goes back to the sender of the quoted datagram');
  assert.equal(d.quoted.ttl, 1, 'sent with ping -t 1');

  decode('icmp-port-unreachable', 1);
  assert.equal(d.icmp.code, ICMP_PORT_UNREACH);
  assert.equal(d.quoted.protocol, IPPROTO_UDP);
  assert.equal(d.icmp.quotedSrcPort, 40000);
  assert.equal(d.icmp.quotedDstPort, 9);

  decode('ipv4-options', 0);
  assert.equal(d.ip.ihl, 15);
  assert.equal(d.ip.findOption(7), 1, 'record route after one NOP');

  decode('ipv4-fragments', 0);
  assert.ok(d.ip.moreFragments && d.ip.isFragment);
  decode('ipv4-fragments', 1);
  assert.ok(!d.ip.moreFragments && d.ip.fragmentOffset === 185);

  decode('vrrp-v2', 0);
  assert.equal(d.vrrp.authType, 1);
  assert.equal(d.vrrp.advertIntervalCs, 100);
  decode('vrrp-v3', 0);
  assert.equal(d.vrrp.maxAdvertInt, 50, 'advert_int 0.5 is 50 centiseconds');
  assert.equal(d.vrrp.count, 3);

  decode('vlan-arp', 0);
  assert.equal(d.eth.vlanId, 100);
  assert.equal(d.eth.pcp, 5);
});

test('writeIcmpError reproduces the kernel router errors byte for byte (548-byte quote, TOS 0xc0)', async (t) => {
  const cases: [string, number, number][] = [
    ['icmp-frag-needed', ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED],
    ['icmp-time-exceeded', ICMP_TIME_EXCEEDED, 0],
    ['icmp-port-unreachable', ICMP_DEST_UNREACH, ICMP_PORT_UNREACH],
  ];
  for (const [name, type, code] of cases) {
    await t.test(name, () => {
      const [offending, error] = loadFixture(name) as [FixtureFrame, FixtureFrame];
      const o = new DecodedFrame();
      const e = new DecodedFrame();
      assert.equal(o.decode(offending.bytes, offending.view, offending.bytes.length), 0);
      assert.equal(e.decode(error.bytes, error.view, error.bytes.length), 0);
      const out = new Uint8Array(error.bytes.length);
      out.set(error.bytes.subarray(0, 14)); // the Ethernet header is not ours to write here
      const n = writeIcmpError(
        out, viewOf(out), 14, new Ipv4Header(), new IcmpHeader(), type, code, e.icmp.rest,
        e.ip.src, e.ip.dst, e.ip.ttl, e.ip.id, offending.bytes, o.ip.headerOffset, o.ip.totalLength,
      );
      assert.equal(n, error.bytes.length - 14);
      assert.deepEqual(out, error.bytes);
    });
  }
});
