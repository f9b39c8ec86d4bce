// RFC 791 fragmentation into the TX buffer: sizes, offsets, MF, the copied options, and that the
// pieces put together are the original packet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder } from '../../src/packet/builder';
import { viewOf } from '../../src/packet/layer';
import { checksumVerifies } from '../../src/packet/checksum';
import { TxQueue } from '../../src/tables/tx-queue';
import { Fragmenter } from '../../src/forward/fragment';

function udpFrame(payload: number, options?: Uint8Array): Uint8Array {
  const data = new Uint8Array(payload);
  for (let i = 0; i < payload; i++) data[i] = (i * 13) & 0xff;
  return new PacketBuilder()
    .eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' })
    .ipv4({ src: '10.1.0.1', dst: '10.2.0.1', id: 0x4242, ttl: 63, options })
    .udp({ srcPort: 1000, dstPort: 53 })
    .payload(data)
    .build();
}

function frames(tx: TxQueue, egress: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < tx.counts[egress]!; i++) {
    const start = tx.offsets[egress]![i]!;
    out.push(tx.buffer.slice(start, start + tx.lengths[egress]![i]!));
  }
  return out;
}

test('a 3000-byte datagram becomes 1500-byte fragments that reassemble to the original', () => {
  const tx = new TxQueue(2);
  const f = udpFrame(3000 - 28);
  assert.equal(new Fragmenter(tx, false).fragment(f, viewOf(f), 0, 14, 1500, 1), 0);
  const parts = frames(tx, 1);
  assert.equal(parts.length, 3);
  const payload: number[] = [];
  parts.forEach((p, i) => {
    const v = viewOf(p);
    assert.ok(p.length - 14 <= 1500);
    assert.deepEqual(p.subarray(0, 14), f.subarray(0, 14), 'Ethernet header copied');
    assert.equal(v.getUint16(14 + 4), 0x4242, 'same id');
    const fo = v.getUint16(14 + 6);
    assert.equal((fo & 0x2000) !== 0, i < 2, 'MF on all but the last');
    assert.equal((fo & 0x1fff) * 8, payload.length, 'offset');
    assert.equal(v.getUint16(14 + 2), p.length - 14);
    assert.ok(checksumVerifies(p, 14, 20), 'header checksum');
    if (i < 2) assert.equal((p.length - 34) % 8, 0, 'non-final fragments carry 8-byte multiples');
    payload.push(...p.subarray(34));
  });
  assert.deepEqual(Uint8Array.from(payload), f.subarray(34));
});

test('later fragments keep only the options with the copied flag, padded to 4 bytes', () => {
  const tx = new TxQueue(1);
  // Security (130, copied, 11 bytes) + Record Route (7, not copied, 7 bytes) + EOL + pad = 20.
  const opts = new Uint8Array([130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0, 0]);
  const f = udpFrame(2000, opts);
  assert.equal(new Fragmenter(tx, true).fragment(f, viewOf(f), 0, 14, 1500, 0), 0);
  const parts = frames(tx, 0);
  assert.equal(parts.length, 2);
  const first = parts[0]!;
  const second = parts[1]!;
  assert.deepEqual(Array.from(first.subarray(0, 10)), new Array(10).fill(0), 'virtio_net_hdr');
  assert.equal(first[10 + 14]! & 0x0f, 10, 'first fragment: all 20 bytes of options');
  assert.equal(second[10 + 14]! & 0x0f, 8, 'later fragment: 11 bytes of Security padded to 12');
  assert.deepEqual(Array.from(second.subarray(10 + 34, 10 + 46)), [130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.ok(checksumVerifies(second, 10 + 14, 32));
});
