// Micro benchmarks of the forwarding modes through the worker pipeline (parse → classify →
// connection lookup → rewrite) on an established flow: DR, NAT (both directions) and TUN, for a
// small and a full-size packet. DR and NAT rewrite in place, so each operation first restores the
// frame from a pristine copy (TypedArray.set, no allocation); the "restore only" rows measure that
// copy, to be subtracted when comparing. TUN builds its output in the worker's TX buffer, which
// is reset after each operation as the worker does after each batch.
import { runCases, tryNative, type BenchOptions, type BenchRow } from './lib';
import { PacketBuilder } from '../src/packet/builder';
import { TCP_ACK, TCP_SYN } from '../src/packet/tcp';
import { viewOf } from '../src/packet/layer';
import { ipv4ToInt } from '../src/packet/addr';
import { internetChecksum } from '../src/packet/checksum';
import { DestTable, DestField, ForwardMethod } from '../src/tables/dest-table';
import { ServiceSnapshot } from '../src/service/snapshot';
import { ConnTable, StateFlag, type ConnBatchLookup } from '../src/conn/table';
import { getSchedulerFactory } from '../src/sched/index';
import { NextHopTable } from '../src/tables/next-hop';
import { WorkerCounters } from '../src/dataplane/counters';
import { Pipeline, NO_TX, LOOKUP_BATCH } from '../src/dataplane/pipeline';

const BATCH = 1000;
const CLIENT = '10.77.0.10';
const VIP = '10.77.0.100';
const RIP = '10.78.0.21';
const CLIENT_MAC = '02:00:00:00:00:0a';
const DIRECTOR_MAC = '02:00:00:00:00:02';
const RS_MAC = '02:00:00:00:01:15';

let sink = 0;

function pipelineFor(fwd: ForwardMethod, connMax = 4096, onConns?: (conns: ConnTable) => void): Pipeline {
  const dests = new DestTable(16);
  const conns = new ConnTable(connMax, dests, { workerId: 0 });
  onConns?.(conns);
  const nextHops = new NextHopTable(16);
  const counters = new WorkerCounters({ maxServices: 8, maxDests: 16 });
  const slot = dests.allocate();
  dests.set(slot, DestField.ADDR, ipv4ToInt(RIP) | 0);
  dests.set(slot, DestField.PORT, 8080);
  dests.set(slot, DestField.WEIGHT, 1);
  dests.set(slot, DestField.FWD, fwd);
  dests.set(slot, DestField.SERVICE, 1);
  nextHops.set(slot, { dstMac: RS_MAC, srcMac: DIRECTOR_MAC, egress: 0, mtu: 9000, srcAddr: ipv4ToInt('10.78.0.1'), viaGateway: false });
  const scheduler = getSchedulerFactory('rr').create(dests, 0, 16);
  scheduler.update([slot]);
  const p = new Pipeline({ dests, conns, nextHops, counters, egressCount: 1 });
  p.setSnapshot(
    ServiceSnapshot.build(1, 8, [{
      slot: 1, protocol: 6, addr: ipv4ToInt(VIP), port: 80, fwmark: 0, persistTimeout: 0, netmask: 0xffffffff,
      schedIndex: 0, schedFlags: 0, destCount: 1, onePacket: false, active: true,
    }]),
    [null, { protocol: 6, addr: ipv4ToInt(VIP), port: 80, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler }],
  );
  return p;
}

function frame(src: string, dst: string, sport: number, dport: number, flags: number, payload: number, srcMac = CLIENT_MAC): Uint8Array {
  return new PacketBuilder()
    .eth({ src: srcMac, dst: DIRECTOR_MAC })
    .ipv4({ src, dst, ttl: 64, df: true })
    .tcp({ srcPort: sport, dstPort: dport, flags })
    .payload(new Uint8Array(payload))
    .build();
}

function established(fwd: ForwardMethod): Pipeline {
  const p = pipelineFor(fwd);
  const syn = frame(CLIENT, VIP, 40000, 80, TCP_SYN, 0);
  if (p.process(syn, viewOf(syn), 0, syn.length, 1_000_000, 0) === NO_TX) throw new Error('bench set-up: the SYN was not forwarded');
  p.tx.reset();
  return p;
}

/**
 * DR at 1 M connections, the frames of random established flows (each lookup a DRAM miss or
 * two): one lookup per frame (process() alone) against the worker's path, batches of
 * LOOKUP_BATCH (prepare each frame, lookupBatch, process each with its slot). Both restore their
 * frames from pristine copies first, as the rows above do.
 */
export function bigTableCases(N = 1 << 20, batchLookup: ConnBatchLookup | null = null): { group: string; name: string; opsPerCall: number; fn: () => void }[] {
  let conns: ConnTable | null = null;
  const p = pipelineFor(ForwardMethod.DROUTE, N, (c) => (conns = c));
  const size = N === 1 << 20 ? '1 M' : `${N}`;
  const live = N - Math.min(4096, N >> 2);
  const caddr = (i: number) => (0x64400000 + (i >>> 6)) | 0;
  const cport = (i: number) => 1024 + (i & 63);
  const vip = ipv4ToInt(VIP) | 0;
  const rip = ipv4ToInt(RIP) | 0;
  for (let i = 0; i < live; i++) conns!.insert(6, caddr(i), cport(i), vip, 80, rip, 8080, 0, ForwardMethod.DROUTE, 0, StateFlag.NOOUTPUT, 1e9, 1_000_000, -1);
  // 256 K frames of random flows in one buffer, 64 bytes apart as in a ring (32 MiB with their
  // pristine copies: the frames too come from DRAM, as a ring's do), restored word by word.
  const POOL = 1 << 18;
  const STRIDE = 64;
  const template = frame(CLIENT, VIP, 1, 80, TCP_ACK, 0);
  const pristine = new Uint8Array(POOL * STRIDE);
  const work = new Uint8Array(POOL * STRIDE);
  const view = viewOf(work);
  const pristine32 = new Int32Array(pristine.buffer);
  const work32 = new Int32Array(work.buffer);
  let x = 0x2545f491;
  for (let k = 0; k < POOL; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const i = (x >>> 0) % live;
    const f = template.slice();
    const v = viewOf(f);
    v.setUint32(26, caddr(i) >>> 0);
    v.setUint16(34, cport(i));
    v.setUint16(24, 0);
    v.setUint16(24, internetChecksum(f, 14, 20));
    pristine.set(f, k * STRIDE);
  }
  const len = template.length;
  const restore = (j: number): void => {
    for (let w = j * (STRIDE >> 2), e = w + (STRIDE >> 2); w < e; w++) work32[w] = pristine32[w]!;
  };
  restore(0);
  if (p.process(work, view, 0, len, 1_000_000, 0) === NO_TX) throw new Error(`bench set-up: a frame of an established flow at ${size} connections was not forwarded`);
  let pos = 0;
  const PER_CALL = 16 * LOOKUP_BATCH;
  const batchedCase = (how: string, lookup: ConnBatchLookup | null) => ({
    group: 'forward', name: `DR client → RS, ${size} connections, batches of ${LOOKUP_BATCH} (${how})`, opsPerCall: PER_CALL,
    fn: () => {
      conns!.batchLookup = lookup;
      for (let r = 0; r < 16; r++) {
        const at = pos;
        pos += LOOKUP_BATCH;
        p.beginBatch();
        for (let s = 0; s < LOOKUP_BATCH; s++) {
          const j = (at + s) & (POOL - 1);
          restore(j);
          p.prepare(s, work, view, j * STRIDE, len);
        }
        p.lookupBatch();
        for (let s = 0; s < LOOKUP_BATCH; s++) sink += p.process(work, view, ((at + s) & (POOL - 1)) * STRIDE, len, 1_000_000, 0, s);
      }
    },
  });
  return [
    {
      group: 'forward', name: `DR client → RS, ${size} connections, one lookup per frame`, opsPerCall: PER_CALL,
      fn: () => {
        for (let k = 0; k < PER_CALL; k++) {
          const j = pos++ & (POOL - 1);
          restore(j);
          sink += p.process(work, view, j * STRIDE, len, 1_000_000, 0);
        }
      },
    },
    batchedCase('JS passes', null),
    ...(batchLookup !== null ? [batchedCase('native connLookupBatch, the workers\' path', batchLookup)] : []),
  ];
}

export async function collect(opts: BenchOptions): Promise<BenchRow[]> {
  const cases = [];
  for (const payload of [0, 1446]) {
    const size = `${54 + payload} B`;
    const pristine = frame(CLIENT, VIP, 40000, 80, TCP_ACK, payload);
    const work = pristine.slice();
    const view = viewOf(work);
    const reply = frame(RIP, CLIENT, 8080, 40000, TCP_ACK, payload, RS_MAC);
    const replyWork = reply.slice();
    const replyView = viewOf(replyWork);
    const dr = established(ForwardMethod.DROUTE);
    const nat = established(ForwardMethod.MASQ);
    const tun = established(ForwardMethod.TUNNEL);
    cases.push(
      {
        group: 'forward', name: `restore only (baseline copy), ${size}`, opsPerCall: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) {
            work.set(pristine);
            sink += work[22]!;
          }
        },
      },
      {
        group: 'forward', name: `DR client → RS, ${size}`, opsPerCall: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) {
            work.set(pristine);
            sink += dr.process(work, view, 0, work.length, 1_000_000, 0);
          }
        },
      },
      {
        group: 'forward', name: `NAT client → RS (dst + port rewrite), ${size}`, opsPerCall: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) {
            work.set(pristine);
            sink += nat.process(work, view, 0, work.length, 1_000_000, 0);
          }
        },
      },
      {
        group: 'forward', name: `NAT RS → client (reply lookup + src rewrite), ${size}`, opsPerCall: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) {
            replyWork.set(reply);
            sink += nat.process(replyWork, replyView, 0, replyWork.length, 1_000_000, 0);
          }
        },
      },
      {
        group: 'forward', name: `TUN client → RS (IPIP into the TX buffer), ${size}`, opsPerCall: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) {
            work.set(pristine);
            sink += tun.process(work, view, 0, work.length, 1_000_000, 0);
            if (tun.tx.needsFlush) tun.tx.reset();
          }
          tun.tx.reset();
        },
      },
    );
  }
  // The worker's path: the batches through the addon (without it, only the JS rows above).
  const native = tryNative();
  cases.push(...bigTableCases(1 << 20, native?.connLookupBatch ?? null));
  // At LOOKUP_BATCH_MIN_ENTRIES (32 K), where the worker starts batching: one lookup per frame
  // against the batches (src/conn/README.md "Batched lookups" reads these rows).
  cases.push(...bigTableCases(1 << 15, native?.connLookupBatch ?? null));
  const rows = await runCases('forward', cases, opts);
  if (sink === 0.5) console.log(sink);
  return rows;
}
