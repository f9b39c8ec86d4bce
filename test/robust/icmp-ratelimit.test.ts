// The ICMP errors uvs sends itself are rate-limited as the kernel's icmp_send is (forward/icmp.ts
// IcmpRateLimit): per destination one a second after a burst of 6 (icmp_ratelimit = 1000 ms,
// XRLIM_BURST_FACTOR), 1000 a second overall after a burst of 50 (icmp_msgs_per_sec,
// icmp_msgs_burst), "fragmentation needed" never. Before, every TTL-expired packet earned one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IcmpRateLimit, IcmpResponder } from '../../src/forward/icmp';
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

test('one budget for the daemon: two workers sharing the buffer send together what one director may', () => {
  // Two simulated workers, as DataPlane builds them: each its own responder and TX queue, one
  // IcmpRateLimit state (WorkerInit.icmpLimit). Before, each worker had a budget of its own and
  // two workers sent 100 of these 200 errors at once.
  const shared = new IcmpRateLimit();
  const workers = [0, 1].map(() => {
    const tx = new TxQueue(1);
    return { tx, r: new IcmpResponder(tx, false, IcmpRateLimit.over(shared.buffer)) };
  });
  let sent = 0;
  for (let i = 0; i < 200; i++) {
    const w = workers[i & 1]!;
    sent += send(w.r, w.tx, frameFrom(`198.51.${i >> 8}.${i & 0xff}`), 1, 1000).sent;
  }
  assert.equal(sent, 50, 'the overall burst is shared');
  sent = 0;
  for (let i = 200; i < 400; i++) {
    const w = workers[i & 1]!;
    sent += send(w.r, w.tx, frameFrom(`198.51.${i >> 8}.${i & 0xff}`), 1, 1010).sent;
  }
  assert.equal(sent, 10, '10 ms at 1000/s, for both workers together');
  // Per destination too: one client whose flows land on both workers gets 6, then one a second.
  const f = frameFrom('192.0.2.77');
  const perDest = (t: number): number => send(workers[0]!.r, workers[0]!.tx, f, 5, t).sent + send(workers[1]!.r, workers[1]!.tx, f, 5, t).sent;
  assert.equal(perDest(60_000), 6);
  assert.equal(perDest(61_000), 1);
});

test('the shared state: its size is checked, and times that wrap at 32 bits do not stop errors', () => {
  assert.throws(() => new IcmpRateLimit(1000, 1000, 50, 1024, new SharedArrayBuffer(64)), /shared buffer has 64 bytes, 1024 slots need 8200/);
  assert.throws(() => new IcmpRateLimit(1000, 1000, 50, 1000), /power of two/);
  const tx = new TxQueue(1);
  const r = new IcmpResponder(tx, false);
  const f = frameFrom('192.0.2.5');
  // The µs clock wraps every 2^32 µs (about 71 min): errors still go on both sides of a wrap.
  const wrapMs = 4294967296 / 1000;
  const base = 1_765_000_000_000;
  const t0 = Math.ceil(base / wrapMs) * wrapMs - 2;
  assert.equal(send(r, tx, f, 3, t0).sent, 3);
  assert.equal(send(r, tx, f, 10, t0 + 4).sent, 3, 'the rest of the burst of 6 after the wrap');
  assert.equal(send(r, tx, f, 10, t0 + 3 * 3_600_000).sent, 6, 'hours later: a full burst again');
});
