// Micro benchmarks of the connection table at 1 M entries: lookups (hit, miss, reply),
// insert + remove, the expiry sweep, and the memory per entry.
import { DestTable, ForwardMethod, DestField } from '../src/tables/dest-table';
import { ConnLookupBatch, ConnRef, ConnTable, connTableBytes, StateFlag, type ConnBatchLookup } from '../src/conn/table';
import { setDefense } from '../src/conn/defense';
import { runCases, tryNative, type BenchOptions, type BenchRow } from './lib';

const TCP = 6;
const VIP = 0x0a000064;
const DADDR = 0x0a000101;
const N = 1 << 20;
const BATCH = 1024;

export async function collect(opts: BenchOptions): Promise<BenchRow[]> {
  const dests = new DestTable(4);
  const slot = dests.allocate();
  dests.set(slot, DestField.ADDR, DADDR);
  dests.set(slot, DestField.PORT, 8080);
  dests.set(slot, DestField.FWD, ForwardMethod.MASQ);
  const table = new ConnTable(N, dests, { workerId: 0 });
  // The table runs nearly full: keep the flood defence (drop_entry) from evicting the idle
  // entries, so the sweep rows measure expiry alone.
  setDefense(table, { dropEntry: 0 });
  // Client i: address 100.64.0.0 + (i >> 6), port 1024 + (i & 63) — distinct 5-tuples.
  const caddr = (i: number) => (0x64400000 + (i >>> 6)) | 0;
  const cport = (i: number) => 1024 + (i & 63);
  const live = N - 2 * BATCH;
  const rows: BenchRow[] = [];

  let t = process.hrtime.bigint();
  for (let i = 0; i < live; i++) {
    table.insert(TCP, caddr(i), cport(i), VIP, 80, DADDR, 8080, slot, ForwardMethod.MASQ, 0, StateFlag.INACTIVE, 1e9, 0, -1);
  }
  const fillNs = Number(process.hrtime.bigint() - t) / live;
  rows.push({ group: 'conn', name: `insert while filling to ${live} entries`, value: fillNs, unit: 'ns/op' });

  // Random probe orders, fixed up front so the loop allocates nothing.
  const order = new Int32Array(1 << 16);
  let x = 0x9e3779b9;
  for (let i = 0; i < order.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    order[i] = (x >>> 0) % live;
  }
  const ref = new ConnRef();
  let pos = 0;
  let sink = 0;
  const mask = order.length - 1;

  // Insert + remove pairs at the top of the table (1 M - 2048 .. 1 M - 1024 live).
  const batch = new ConnLookupBatch(64);
  const fillBatch = (vport: number) => {
    for (let j = 0; j < 64; j++) {
      const i = order[(pos++) & mask]!;
      batch.proto[j] = TCP;
      batch.caddr[j] = caddr(i);
      batch.cport[j] = cport(i);
      batch.vaddr[j] = VIP;
      batch.vport[j] = vport;
    }
  };
  // The same lookups in a table that fits in the L3 cache (16 K entries, ~1 MB): no DRAM
  // miss, so this is the code's cost plus two L3 hits, against the two DRAM misses at 1 M.
  const SMALL = 1 << 14;
  const small = new ConnTable(SMALL, dests, { workerId: 0 });
  const smallLive = SMALL - 64;
  for (let i = 0; i < smallLive; i++) {
    small.insert(TCP, caddr(i), cport(i), VIP, 80, DADDR, 8080, slot, ForwardMethod.MASQ, 0, StateFlag.INACTIVE, 1e9, 0, -1);
  }
  const smallOrder = new Int32Array(order.length);
  for (let i = 0; i < order.length; i++) smallOrder[i] = order[i]! % smallLive;
  const native = tryNative();
  /** The batched rows with the table's batched lookup set to `lookup` (null: the JS passes). */
  const batchRows = (how: string, lookup: ConnBatchLookup | null, targetNs: number | undefined) => {
    // lookupInBatch alone: hits (vport 80: every key is live) or misses (81: none is).
    const lookups = (name: string, vport: number, target: number | undefined) => ({
      group: 'conn',
      name,
      opsPerCall: 64 * 16,
      targetNs: target,
      fn: () => {
        table.batchLookup = lookup;
        for (let r = 0; r < 16; r++) {
          fillBatch(vport);
          sink += table.lookupInBatch(batch, 64);
        }
      },
    });
    return [
      lookups(`lookup hit, batches of 64 (${how}, key copy included)`, 80, targetNs),
      {
        group: 'conn',
        // What the data plane does per batch (src/dataplane/pipeline.ts, "Batches"): the batched
        // lookup, then each frame takes its result with batchResult (its entry re-read, warm).
        name: `lookup hit, batches of 64 as the pipeline takes them (${how}, + batchResult)`,
        opsPerCall: 64 * 16,
        targetNs,
        fn: () => {
          table.batchLookup = lookup;
          for (let r = 0; r < 16; r++) {
            fillBatch(80);
            table.lookupInBatch(batch, 64);
            for (let j = 0; j < 64; j++) if (table.batchResult(batch, j, ref)) sink++;
          }
        },
      },
      lookups(`lookup miss, batches of 64 (${how})`, 81, targetNs === undefined ? undefined : 100),
    ];
  };
  const extra = new Int32Array(BATCH);
  const extraSeq = new Int32Array(BATCH);
  let serial = 0;

  rows.push(
    ...(await runCases(
      'conn table (1 M entries)',
      [
        {
          group: 'conn',
          name: 'lookup hit (forward)',
          opsPerCall: BATCH,
          targetNs: 100,
          fn: () => {
            for (let k = 0; k < BATCH; k++) {
              const i = order[(pos++) & mask]!;
              if (table.lookupIn(TCP, caddr(i), cport(i), VIP, 80, ref)) sink++;
            }
          },
        },
        {
          group: 'conn',
          name: 'lookup hit (reply)',
          opsPerCall: BATCH,
          targetNs: 100,
          fn: () => {
            for (let k = 0; k < BATCH; k++) {
              const i = order[(pos++) & mask]!;
              if (table.lookupOut(TCP, DADDR, 8080, caddr(i), cport(i), ref)) sink++;
            }
          },
        },
        // Issue 12: <= 150 ns at 1 M entries amortized over batches of 64 (one dependent DRAM
        // read is ~137 ns on the CI machine when it is quiet: see the reference row). The target
        // is on the workers' path, the addon's connLookupBatch; the JS passes are the fallback
        // of a build without the addon.
        ...batchRows('JS passes', null, undefined),
        ...(native !== null ? batchRows('native connLookupBatch, the workers\' path', native.connLookupBatch, 150) : []),
        {
          group: 'conn',
          name: 'lookup miss',
          opsPerCall: BATCH,
          targetNs: 100,
          fn: () => {
            for (let k = 0; k < BATCH; k++) {
              const i = order[(pos++) & mask]!;
              if (table.lookupIn(TCP, caddr(i), cport(i), VIP, 81, ref)) sink++;
            }
          },
        },
        {
          group: 'conn',
          name: 'lookup hit, 16 K entries (fits in L3: no DRAM miss)',
          opsPerCall: BATCH,
          targetNs: 100,
          fn: () => {
            for (let k = 0; k < BATCH; k++) {
              const i = smallOrder[(pos++) & mask]!;
              if (small.lookupIn(TCP, caddr(i), cport(i), VIP, 80, ref)) sink++;
            }
          },
        },
        {
          group: 'conn',
          name: 'insert + remove (per pair)',
          opsPerCall: BATCH,
          fn: () => {
            const base = 0x0b000000 + (serial++ & 0xffff) * BATCH;
            for (let k = 0; k < BATCH; k++) {
              const idx = table.insert(TCP, base + k, 5000, VIP, 80, DADDR, 8080, slot, ForwardMethod.MASQ, 0, StateFlag.INACTIVE, 1e9, 0, -1);
              extra[k] = idx;
              extraSeq[k] = table.seqOf(idx);
            }
            for (let k = 0; k < BATCH; k++) table.remove(extra[k]!, extraSeq[k]!);
          },
        },
        {
          group: 'conn',
          name: 'expire sweep, nothing due (per slot)',
          opsPerCall: 4096,
          fn: () => {
            sink += table.expire(1, 4096);
          },
        },
      ],
      opts,
    )),
  );

  // Expiry that frees: make BATCH*16 entries due and sweep them out, timed by hand.
  const dueCount = BATCH * 16;
  const now = 2_000_000_000;
  for (let i = 0; i < dueCount; i++) {
    table.insert(TCP, (0x0c000000 + i) | 0, 6000, VIP, 80, DADDR, 8080, slot, ForwardMethod.MASQ, 0, StateFlag.INACTIVE, 0, now, -1);
  }
  t = process.hrtime.bigint();
  let freed = 0;
  for (let calls = 0; freed < dueCount && calls < 10_000; calls++) freed += table.expire(now, 4096);
  const sweepNs = Number(process.hrtime.bigint() - t);
  rows.push({ group: 'conn', name: `expire sweep freeing ${freed} of ${table.count + freed} (per entry freed, scan included)`, value: sweepNs / Math.max(1, freed), unit: 'ns/op' });

  // Reference for the numbers above: one dependent random read over 64 MB (the size of this
  // table) on this machine. A lookup is two dependent reads (bucket, then entry).
  const chase = new Int32Array(16 * 1024 * 1024);
  for (let i = 0; i < chase.length; i++) chase[i] = i;
  for (let i = chase.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * i);
    const tmp = chase[i]!;
    chase[i] = chase[j]!;
    chase[j] = tmp;
  }
  let p = 0;
  const hops = opts.quick ? 200_000 : 2_000_000;
  t = process.hrtime.bigint();
  for (let k = 0; k < hops; k++) p = chase[p]!;
  rows.push({ group: 'conn', name: 'reference: one dependent random read over 64 MB', value: Number(process.hrtime.bigint() - t) / hops, unit: 'ns/op' });
  sink += p;

  const bytes = connTableBytes(N) / N;
  // 64-byte entry (one cache line: key, destination, state, the NAT next hop toward the client,
  // traffic counters for the flood defence) + 16 bytes of buckets in the two indexes + 1 bit of
  // the taken bitmap (placement by hash).
  rows.push({ group: 'conn', name: 'memory per entry, both indexes and the bitmap included', value: bytes, unit: 'bytes', target: '<= 80.125', met: bytes <= 80.125 + 1e-3 });
  // How many live entries sit in the slot their key predicts (or its buddy): their lookups
  // overlap the bucket's and the entry's misses. About 2/3 when a table is filled to the brim
  // (each arrival finds one of its two slots free with probability 1 - load²), more below.
  const stats = table.placementStats();
  rows.push({ group: 'conn', name: 'entries on their predicted line pair (table full)', value: Math.round((stats.predicted * 1000) / stats.live) / 10, unit: '%' });
  rows.push({ group: 'conn', name: 'live entries during the lookups', value: live, unit: 'entries' });
  if (sink === -1) console.log(sink);
  return rows;
}
