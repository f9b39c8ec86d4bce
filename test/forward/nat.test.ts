// NAT's checksum rules on their own: incremental updates equal full recomputation, UDP's zero.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder } from '../../src/packet/builder';
import { ipv4ToInt } from '../../src/packet/addr';
import { rewriteAddrPort } from '../../src/forward/nat';

test('TCP and UDP: destination rewrite equals a packet built with the new address and port', () => {
  for (const proto of [6, 17] as const) {
    const mk = (dst: string, dport: number) => {
      const b = new PacketBuilder().eth().ipv4({ src: '192.0.2.7', dst, ttl: 9 });
      (proto === 6 ? b.tcp({ srcPort: 3333, dstPort: dport, seq: 77 }) : b.udp({ srcPort: 3333, dstPort: dport })).payload('abcdefg');
      return b.build();
    };
    const f = mk('10.0.0.100', 80);
    rewriteAddrPort(f, 14, 34, proto, true, ipv4ToInt('10.9.8.7'), 8443, false);
    assert.deepEqual(f, mk('10.9.8.7', 8443), `protocol ${proto}`);
  }
});

test('UDP: a result of 0 is sent as 0xffff; "no checksum" (0) stays 0', () => {
  // Find a source port for which the rewritten checksum computes to 0 (one in 65535 does).
  let found = false;
  for (let sport = 1; sport < 65536 && !found; sport++) {
    const f = new PacketBuilder().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.100' }).udp({ srcPort: sport, dstPort: 53 }).payload('x').build();
    const g = new PacketBuilder().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.200' }).udp({ srcPort: sport, dstPort: 53 }).payload('x').build();
    if (((g[40]! << 8) | g[41]!) !== 0xffff) continue;
    found = true;
    rewriteAddrPort(f, 14, 34, 17, true, ipv4ToInt('10.0.0.200'), 53, false);
    assert.equal((f[40]! << 8) | f[41]!, 0xffff);
  }
  assert.ok(found);
  const none = new PacketBuilder().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.100' }).udp({ srcPort: 5, dstPort: 53, checksum: 0 }).payload('x').build();
  rewriteAddrPort(none, 14, 34, 17, true, ipv4ToInt('10.0.0.200'), 5353, false);
  assert.equal((none[40]! << 8) | none[41]!, 0);
});
