// Worker thread for workers.test.ts. Each worker owns a few "keeper" keys that must be findable
// at every instant, and churns filler entries around them in a table it shares with the main
// thread and the other worker. Each round it re-creates its keepers behind the fillers (a new
// copy first, then the old copy is expired), then frees the fillers: backward-shift deletion
// then moves the keepers while the other worker is looking them up.
import { parentPort, workerData } from 'node:worker_threads';
import { DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { ConnLookupBatch, ConnRef, ConnTable, StateFlag } from '../../src/conn/table';
import { loadNative } from '../../src/native/addon';

interface Job {
  buffer: SharedArrayBuffer;
  destBuffer: SharedArrayBuffer;
  /** Int32 cells: [0] ready count, [1] finished count. */
  syncBuffer: SharedArrayBuffer;
  capacity: number;
  destCapacity: number;
  workerId: number;
  otherId: number;
  rounds: number;
  batch: number;
  keepers: number;
  stable: number;
  vip: number;
  daddr: number;
  dport: number;
  churnSlot: number;
  /** Look the others up in batches through the addon's connLookupBatch (the workers' path). */
  nativeBatch?: boolean;
}

const job = workerData as Job;
const dests = new DestTable(job.destCapacity, job.destBuffer);
const table = new ConnTable(job.capacity, dests, {
  workerId: job.workerId,
  buffer: job.buffer,
  batchLookup: job.nativeBatch === true ? loadNative().connLookupBatch : null,
});
const batch = new ConnLookupBatch(64);
const sync = new Int32Array(job.syncBuffer);
const ref = new ConnRef();
const TCP = 6;
const LONG = 1e9;
const counts = { stableMiss: 0, stableReplyMiss: 0, keeperMiss: 0, ownMiss: 0, inserted: 0, refused: 0, freed: 0, lookups: 0 };

const fillerOf = (worker: number, i: number) => (0x0b000000 | (worker << 16) | i) | 0;
const keeperOf = (worker: number, k: number) => (0x0c000000 | (worker << 16) | k) | 0;

function put(caddr: number, cport: number, timeoutMs: number, now: number): number {
  const idx = table.insert(TCP, caddr, cport, job.vip, 80, job.daddr, job.dport, job.churnSlot, ForwardMethod.MASQ, 0, StateFlag.INACTIVE, timeoutMs, now, -1);
  if (idx < 0) counts.refused++;
  else counts.inserted++;
  return idx;
}

function checkOthers(from: number): void {
  if (job.nativeBatch === true) {
    checkOthersBatched(from);
    return;
  }
  for (let k = 0; k < job.keepers; k++) {
    counts.lookups += 2;
    if (!table.lookupIn(TCP, keeperOf(job.otherId, k), 7, job.vip, 80, ref)) counts.keeperMiss++;
    if (!table.lookupOut(TCP, job.daddr, job.dport, keeperOf(job.otherId, k), 7, ref)) counts.keeperMiss++;
  }
  for (let s = from % job.stable, n = 0; n < 8; n++, s = (s + 1) % job.stable) {
    counts.lookups += 2;
    if (!table.lookupIn(TCP, (0x0a000000 | s) | 0, 1000, job.vip, 80, ref)) counts.stableMiss++;
    if (!table.lookupOut(TCP, job.daddr, job.dport, (0x0a000000 | s) | 0, 1000, ref)) counts.stableReplyMiss++;
  }
}

/** checkOthers with batched lookups: the other worker's keepers and 8 stable keys, forward,
 *  then the same keys' replies. */
function checkOthersBatched(from: number): void {
  let n = 0;
  const key = (caddr: number, cport: number): void => {
    batch.proto[n] = TCP;
    batch.caddr[n] = caddr;
    batch.cport[n] = cport;
    batch.vaddr[n] = job.vip;
    batch.vport[n] = 80;
    n++;
  };
  for (let k = 0; k < job.keepers; k++) key(keeperOf(job.otherId, k), 7);
  for (let s = from % job.stable, m = 0; m < 8; m++, s = (s + 1) % job.stable) key((0x0a000000 | s) | 0, 1000);
  counts.lookups += 2 * n;
  table.lookupInBatch(batch, n);
  for (let j = 0; j < n; j++) {
    if (batch.index[j]! >= 0) continue;
    if (j < job.keepers) counts.keeperMiss++;
    else counts.stableMiss++;
  }
  // The replies: real server → client, the packet's own addresses in order.
  for (let j = 0; j < n; j++) {
    const caddr = batch.caddr[j]!;
    const cport = batch.cport[j]!;
    batch.caddr[j] = job.daddr;
    batch.cport[j] = job.dport;
    batch.vaddr[j] = caddr;
    batch.vport[j] = cport;
  }
  table.lookupOutBatch(batch, n);
  for (let j = 0; j < n; j++) {
    if (batch.index[j]! >= 0) continue;
    if (j < job.keepers) counts.keeperMiss++;
    else counts.stableReplyMiss++;
  }
}

const keeperIdx: number[] = [];
for (let k = 0; k < job.keepers; k++) keeperIdx.push(put(keeperOf(job.workerId, k), 7, LONG, 0));
Atomics.add(sync, 0, 1);
const deadline = Date.now() + 60_000;
while (Atomics.load(sync, 0) < 2 && Date.now() < deadline) Atomics.wait(sync, 0, 1, 10);

for (let round = 0; round < job.rounds && Date.now() < deadline; round++) {
  const now = 1000 + round;
  const cport = 2000 + (round & 0x7fff);
  for (let i = 0; i < job.batch; i++) {
    const idx = put(fillerOf(job.workerId, i), cport, 0, now);
    if (idx >= 0 && (!table.lookupIn(TCP, fillerOf(job.workerId, i), cport, job.vip, 80, ref) || ref.index !== idx)) counts.ownMiss++;
    checkOthers(i + round);
  }
  // Keepers move behind the fillers: new copy first, then the old one is expired.
  for (let k = 0; k < job.keepers; k++) {
    const fresh = put(keeperOf(job.workerId, k), 7, LONG, now);
    if (fresh < 0) continue;
    const old = keeperIdx[k]!;
    table.expireNow(old, table.seqOf(old), now);
    keeperIdx[k] = fresh;
  }
  // Free the fillers and the old keepers in bounded sweeps, looking the others up between.
  for (let k = 0; k < 1000; k++) {
    counts.freed += table.expire(now, 8);
    checkOthers(k);
    if (counts.freed === counts.inserted - job.keepers) break;
  }
}
Atomics.add(sync, 1, 1);
// Keep looking while the other worker still churns, so the last rounds are checked too.
while (Atomics.load(sync, 1) < 2 && Date.now() < deadline) checkOthers(0);

parentPort!.postMessage({ ...counts, recovered: table.recoveredMisses });
