// The ICMP errors uvs sends itself are rate-limited as the kernel's icmp_send is (forward/icmp.ts
// IcmpRateLimit): per destination one a second after a burst of 6 (icmp_ratelimit = 1000 ms,
// XRLIM_BURST_FACTOR), 1000 a second overall after a burst of 50 (icmp_msgs_per_sec,
// icmp_msgs_burst), "fragmentation needed" never. Before, every TTL-expired packet earned one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IcmpResponder } from '../../src/forward/icmp';
import { TxQueue } from '../../src/tables/tx-queue';
import { DropReason } from '../../src/packet/drop';
import { PacketBuilder } from '../../src/packet/builder';
import { ICMP_DEST_UNREACH, ICMP_EXC_TTL, ICMP_FRAG_NEEDED, ICMP_TIME_EXCEEDED } from '../../src/packet/icmp';
import { ipv4ToInt } from '../../src/packet/addr';

const VIP = ipv4ToInt('10.0.0.100');

function frameFrom(src: string): Uint8Array {
  return new PacketBuilder().eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' })
    .ipv4({ src, dst: '10.0.0.100', ttl: 1 }).udp({ srcPort: 1000, dstPort: 53 }).payload('x').build();
}

/** How many of `n` errors to the sender of `f` at time `t` went out. */
function send(r: IcmpResponder, tx: TxQueue, f: Uint8Array, n: number, t: number, type = ICMP_TIME_EXCEEDED, code = ICMP_EXC_TTL): { sent: number; limited: number } {
  let sent = 0;
  let limited = 0;
  for (let i = 0; i < n; i++) {
    (r as unknown as { nowMs: number }).nowMs = t;
    const v = r.toSender(f, 0, 14, f.length - 14, type, code, 0, VIP, 0);
    if (v === 0) sent++;
    else if (v === DropReason.ICMP_RATELIMITED) limited++;
    tx.reset();
  }
  return { sent, limited };
}

test('per destination: a burst of 6, then one a second', () => {
  const tx = new TxQueue(1);
  const r = new IcmpResponder(tx, false);
  const f = frameFrom('192.0.2.1');
  assert.deepEqual(send(r, tx, f, 100, 1000), { sent: 6, limited: 94 });
  assert.deepEqual(send(r, tx, f, 10, 1500), { sent: 0, limited: 10 });
  assert.deepEqual(send(r, tx, f, 10, 2000), { sent: 1, limited: 9 });
  assert.deepEqual(send(r, tx, f, 10, 5000), { sent: 3, limited: 7 });
});

test('overall: a burst of 50 over many destinations, then 1000 a second; fragmentation needed is never limited', () => {
  const tx = new TxQueue(1);
  const r = new IcmpResponder(tx, false);
  let sent = 0;
  for (let i = 0; i < 200; i++) sent += send(r, tx, frameFrom(`198.51.${i >> 8}.${i & 0xff}`), 1, 1000).sent;
  assert.equal(sent, 50);
  sent = 0;
  for (let i = 200; i < 400; i++) sent += send(r, tx, frameFrom(`198.51.${i >> 8}.${i & 0xff}`), 1, 1010).sent;
  assert.equal(sent, 10, '10 ms at 1000/s');
  assert.deepEqual(send(r, tx, frameFrom('192.0.2.9'), 100, 1010, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED), { sent: 100, limited: 0 });
});
