// Worker thread for state-race.test.ts: drives TCP state transitions of shared NAT entries
// from one direction (the other worker drives the other direction at the same time).
import { parentPort, workerData } from 'node:worker_threads';
import { DestTable } from '../../src/tables/dest-table';
import { ConnRef, ConnTable } from '../../src/conn/table';
import { ConnDir, tcpStateTransition } from '../../src/conn/tcp-state';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/packet/tcp';

interface Job {
  buffer: SharedArrayBuffer;
  destBuffer: SharedArrayBuffer;
  capacity: number;
  destCapacity: number;
  workerId: number;
  output: boolean;
  entries: number;
  rounds: number;
  client: number;
  vip: number;
  daddr: number;
  dport: number;
  seed: number;
  /** Int32 cell [0]: workers ready; both start together so their packets really overlap. */
  syncBuffer: SharedArrayBuffer;
}

const job = workerData as Job;
const dests = new DestTable(job.destCapacity, job.destBuffer);
const table = new ConnTable(job.capacity, dests, { workerId: job.workerId, buffer: job.buffer });
const ref = new ConnRef();
const FLAGS = [TCP_SYN, TCP_ACK, TCP_ACK, TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST, TCP_SYN | TCP_ACK];
let x = job.seed | 1;
let transitions = 0;
let misses = 0;
const deadline = Date.now() + 60_000;
const sync = new Int32Array(job.syncBuffer);
Atomics.add(sync, 0, 1);
while (Atomics.load(sync, 0) < 2 && Date.now() < deadline) Atomics.wait(sync, 0, 1, 5);
for (let r = 0; r < job.rounds && Date.now() < deadline; r++) {
  for (let i = 0; i < job.entries; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const flags = FLAGS[(x >>> 0) % FLAGS.length]!;
    const found = job.output
      ? table.lookupOut(6, job.daddr, job.dport, job.client, 10000 + i, ref)
      : table.lookupIn(6, job.client, 10000 + i, job.vip, 80, ref);
    if (!found) {
      misses++;
      continue;
    }
    if (tcpStateTransition(table, ref, job.output ? ConnDir.OUTPUT : ConnDir.INPUT, flags, 1000 + r) >= 0) transitions++;
  }
}
parentPort!.postMessage({ transitions, misses });
