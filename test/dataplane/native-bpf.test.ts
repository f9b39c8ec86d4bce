// The BPF host filter as a table: frame kind × packet type → accepted or not, run through the
// interpreter in bpf.ts (the namespace test runs the same programs in the kernel).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ACCEPT_BYTES, buildHostFilter, runFilter } from '../../src/dataplane/bpf';
import { toIpv4Int } from '../../src/packet/addr';
import { arpRequest, ethFrame, udpFrame } from '../netns/native-lab';

const HOST = 0;
const BROADCAST = 1;
const OTHERHOST = 3;
const OUTGOING = 4;

const macA = '02:00:00:00:00:0a';
const macB = '02:00:00:00:00:0b';
const udp = (src: string, dst: string): Uint8Array =>
  udpFrame({ dstMac: macB, srcMac: macA, srcIp: src, dstIp: dst, sport: 1000, dport: 80, payload: new Uint8Array(10) });

describe('buildHostFilter', () => {
  const cases: Array<{ name: string; frame: Uint8Array; pkttype: number; arp: boolean; accept: boolean }> = [
    { name: 'IPv4 to the first VIP', frame: udp('10.0.0.9', '10.1.0.1'), pkttype: HOST, arp: false, accept: true },
    { name: 'IPv4 to the last VIP', frame: udp('10.0.0.9', '10.1.0.3'), pkttype: HOST, arp: false, accept: true },
    { name: 'IPv4 to another address', frame: udp('10.0.0.9', '10.1.0.4'), pkttype: HOST, arp: false, accept: false },
    { name: 'IPv4 from a listed source (NAT reply)', frame: udp('10.2.0.7', '10.0.0.9'), pkttype: HOST, arp: false, accept: true },
    { name: 'IPv4 to a VIP but broadcast', frame: udp('10.0.0.9', '10.1.0.1'), pkttype: BROADCAST, arp: false, accept: false },
    { name: 'IPv4 to a VIP but for another host', frame: udp('10.0.0.9', '10.1.0.1'), pkttype: OTHERHOST, arp: false, accept: false },
    { name: 'IPv4 to a VIP but outgoing', frame: udp('10.0.0.9', '10.1.0.1'), pkttype: OUTGOING, arp: false, accept: false },
    { name: 'ARP without arp', frame: arpRequest(macA, '10.0.0.9', '10.1.0.1'), pkttype: BROADCAST, arp: false, accept: false },
    { name: 'ARP request (broadcast) with arp', frame: arpRequest(macA, '10.0.0.9', '10.1.0.1'), pkttype: BROADCAST, arp: true, accept: true },
    { name: 'IPv4 to a VIP with arp', frame: udp('10.0.0.9', '10.1.0.2'), pkttype: HOST, arp: true, accept: true },
    { name: 'other EtherType', frame: ethFrame(macB, macA, 0x86dd, new Uint8Array(40)), pkttype: HOST, arp: true, accept: false },
    { name: 'runt frame', frame: ethFrame(macB, macA, 0x0800, new Uint8Array(4)), pkttype: HOST, arp: false, accept: false },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.accept ? 'accept' : 'drop'}`, () => {
      const prog = buildHostFilter({ destinations: ['10.1.0.1', '10.1.0.2', '10.1.0.3'], sources: ['10.2.0.7'], arp: c.arp });
      const kept = runFilter(prog, c.frame, c.pkttype);
      assert.equal(kept, c.accept ? Math.min(ACCEPT_BYTES, c.frame.length) : 0);
    });
  }

  it('bounds the address list by the 8-bit jump and says by how much', () => {
    const many = Array.from({ length: 300 }, (_, i) => (0x0a000000 + i) >>> 0);
    assert.throws(() => buildHostFilter({ destinations: many }), /300 addresses need a jump of \d+ instructions; classic BPF allows 255, so use at most \d+ addresses/);
    // 245: the VLAN test (bpf.ts, vlanCheck) takes 5 of the 255.
    const ok = buildHostFilter({ destinations: many.slice(0, 245) });
    assert.equal(runFilter(ok, udp('10.0.0.9', '10.0.0.244'), HOST) > 0, true);
  });

  it('refuses an empty list and bad addresses', () => {
    assert.throws(() => buildHostFilter({ destinations: [] }), /would drop everything/);
    assert.throws(() => buildHostFilter({ destinations: ['10.1.0.256'] }), /invalid IPv4 address "10.1.0.256"/);
    assert.equal(toIpv4Int('255.1.2.3'), 0xff010203);
  });
});
