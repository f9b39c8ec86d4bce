// The pipeline's batched connection lookups (pipeline.ts "Batches": beginBatch → prepare →
// lookupBatch → process with a slot, the worker's path) against frames looked up one at a time
// (process without a slot): the same frames through two identical labs must give the same
// verdicts, the same bytes out and the same counters. The frames are the fuzz target's (few
// clients and ports, random TCP flags, NAT replies, ICMP errors, mutations), so a batch often holds
// several frames of one flow: a new flow's first and second frame, a FIN or RST and then a SYN
// reusing the port, a reply right after its connection's first frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { viewOf } from '../../src/packet/layer';
import { PacketBuilder } from '../../src/packet/builder';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/packet/tcp';
import { ForwardMethod } from '../../src/tables/dest-table';
import { LOOKUP_BATCH, NO_TX } from '../../src/dataplane/pipeline';
import { loadNative, nativeAddonPath } from '../../src/native/addon';
import { existsSync } from 'node:fs';
import { prng } from '../packet/fixtures';
import { FrameSource, mutate } from '../robust/fuzz';
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC, TCP_PORT, VIP, drainTx, makePipelineLab, type PipelineLab } from '../robust/pipeline-lab';

const VNET = 10;

interface Outcome {
  egress: number;
  txLength: number;
  bytes: string;
  queued: string;
}

function outcome(lab: PipelineLab, egress: number, frame: Uint8Array): Outcome {
  const queued = drainTx(lab)
    .map((q) => `${q.egress}:${Buffer.from(q.bytes).toString('hex')}`)
    .join(',');
  return { egress, txLength: egress >= 0 ? lab.pipeline.txLength : 0, bytes: Buffer.from(frame).toString('hex'), queued };
}

/** Runs `frames` through `single` one at a time and through `batched` in batches of the given sizes. */
function compare(single: PipelineLab, batched: PipelineLab, frames: Uint8Array[], sizes: () => number, what: string): void {
  const l2 = single.vnet ? VNET : 0;
  let nowMs = 1_000_000;
  for (let at = 0; at < frames.length; ) {
    const n = Math.min(frames.length - at, Math.max(1, Math.min(LOOKUP_BATCH, sizes())));
    const a = frames.slice(at, at + n).map((f) => f.slice());
    const b = frames.slice(at, at + n).map((f) => f.slice());
    const p = batched.pipeline;
    p.beginBatch();
    for (let i = 0; i < n; i++) p.prepare(i, b[i]!, viewOf(b[i]!), l2, b[i]!.length - l2);
    p.lookupBatch();
    for (let i = 0; i < n; i++) {
      nowMs += 1;
      const ea = single.pipeline.process(a[i]!, viewOf(a[i]!), l2, a[i]!.length - l2, nowMs, i % 2);
      const oa = outcome(single, ea, a[i]!);
      const eb = p.process(b[i]!, viewOf(b[i]!), l2, b[i]!.length - l2, nowMs, i % 2, i);
      const ob = outcome(batched, eb, b[i]!);
      assert.deepEqual(ob, oa, `${what}: frame #${at + i} (batch slot ${i} of ${n}) differs: ${Buffer.from(frames[at + i]!).toString('hex')}`);
    }
    assert.deepEqual([...batched.counters.cells], [...single.counters.cells], `${what}: counters differ after the batch ending at frame #${at + n - 1}`);
    assert.equal(batched.conns.count, single.conns.count, `${what}: connection counts differ`);
    at += n;
  }
}

const nativeBuilt = existsSync(nativeAddonPath());
for (const [fwd, vnet, name, engine] of [
  [ForwardMethod.DROUTE, false, 'DR', 'js'],
  [ForwardMethod.MASQ, false, 'NAT', 'js'],
  [ForwardMethod.MASQ, true, 'NAT+vnet', 'js'],
  [ForwardMethod.TUNNEL, false, 'TUN', 'js'],
  // The workers' path: the batches looked up by the addon (connLookupBatch).
  [ForwardMethod.DROUTE, false, 'DR', 'native'],
  [ForwardMethod.MASQ, false, 'NAT', 'native'],
] as const) {
  const skip = engine === 'native' && !nativeBuilt ? `native addon not built at ${nativeAddonPath()}` : false;
  test(`batched lookups (${engine === 'js' ? 'JS passes' : 'native connLookupBatch'}) give the same verdicts, bytes and counters as single ones: ${name}, 6,000 fuzz frames`, { skip }, () => {
    const rand = prng(0x5eed00 + fwd * 2 + (vnet ? 1 : 0));
    const source = new FrameSource(rand);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 6000; i++) {
      const m = mutate(rand, source.seed().bytes);
      if (!vnet) {
        frames.push(m);
      } else {
        // A virtio_net_hdr with nothing offloaded in front of the frame.
        const f = new Uint8Array(VNET + m.length);
        f.set(m, VNET);
        frames.push(f);
      }
    }
    const single = makePipelineLab(fwd, vnet);
    const batched = makePipelineLab(fwd, vnet, 4096, 0);
    if (engine === 'native') batched.conns.batchLookup = loadNative().connLookupBatch;
    // Count the lookups made one at a time: the batched lab must take most results from its batches.
    let singleLookups = 0;
    const lookupIn = batched.conns.lookupIn.bind(batched.conns);
    batched.conns.lookupIn = (...args) => {
      singleLookups++;
      return lookupIn(...args);
    };
    let singleSide = 0;
    const lookupInSingle = single.conns.lookupIn.bind(single.conns);
    single.conns.lookupIn = (...args) => {
      singleSide++;
      return lookupInSingle(...args);
    };
    compare(single, batched, frames, () => 1 + Math.floor(rand() * 64), name);
    assert.ok(single.conns.count > 0, 'no connection was created: the frames reach nothing');
    assert.ok(singleLookups < singleSide / 2, `the batched lab looked ${singleLookups} frames up alone (the single one ${singleSide}): the batches are not used`);
  });
}

function tcp(sport: number, flags: number): Uint8Array {
  return new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
    .ipv4({ src: CLIENT, dst: VIP, ttl: 64, df: true })
    .tcp({ srcPort: sport, dstPort: TCP_PORT, flags })
    .build();
}

test('one batch: a new flow\'s second frame finds the entry its first created; a SYN after RST/FIN in the same batch is handled as alone', () => {
  for (const fwd of [ForwardMethod.DROUTE, ForwardMethod.MASQ]) {
    const frames = [
      tcp(41000, TCP_SYN), tcp(41000, TCP_ACK), tcp(41000, TCP_ACK), // new flow, then its next frames
      tcp(41001, TCP_SYN), tcp(41001, TCP_RST), tcp(41001, TCP_ACK), tcp(41001, TCP_SYN),
      tcp(41002, TCP_SYN), tcp(41002, TCP_FIN | TCP_ACK), tcp(41002, TCP_ACK), tcp(41002, TCP_SYN), tcp(41002, TCP_ACK),
      tcp(41003, TCP_ACK), // no entry, not a SYN: not ours to create
    ];
    const single = makePipelineLab(fwd, false);
    const batched = makePipelineLab(fwd, false, 4096, 0);
    compare(single, batched, frames, () => LOOKUP_BATCH, `one batch, ${fwd === ForwardMethod.MASQ ? 'NAT' : 'DR'}`);
    // The second frame of the new flow was forwarded (it found the first's entry).
    const again = makePipelineLab(fwd, false, 4096, 0);
    const f = [tcp(42000, TCP_SYN), tcp(42000, TCP_ACK)];
    const p = again.pipeline;
    assert.equal(p.beginBatch(), true);
    f.forEach((x, i) => p.prepare(i, x, viewOf(x), 0, x.length));
    p.lookupBatch();
    assert.notEqual(p.process(f[0]!, viewOf(f[0]!), 0, f[0]!.length, 1_000_000, 0, 0), NO_TX);
    assert.notEqual(p.process(f[1]!, viewOf(f[1]!), 0, f[1]!.length, 1_000_001, 0, 1), NO_TX);
    assert.equal(again.conns.count, 1);
  }
});

test('below batchMinEntries live connections the pipeline looks frames up one at a time', () => {
  const lab = makePipelineLab(ForwardMethod.DROUTE, false, 4096, 2);
  const p = lab.pipeline;
  let single = 0;
  const lookupIn = lab.conns.lookupIn.bind(lab.conns);
  lab.conns.lookupIn = (...args) => {
    single++;
    return lookupIn(...args);
  };
  const run = (sport: number, flags: number, expectBatch: boolean): void => {
    const f = tcp(sport, flags);
    assert.equal(p.beginBatch(), expectBatch);
    if (expectBatch) {
      p.prepare(0, f, viewOf(f), 0, f.length);
      p.lookupBatch();
    }
    const before = single;
    assert.notEqual(p.process(f, viewOf(f), 0, f.length, 1_000_000, 0, 0), NO_TX);
    // A new flow's SYN: alone, one lookupIn; from the batch, none (its miss stands: nothing was
    // published since the batch was looked up).
    assert.equal(single - before, expectBatch ? 0 : 1);
  };
  run(43000, TCP_SYN, false); // 0 entries
  run(43001, TCP_SYN, false); // 1 entry
  run(43002, TCP_SYN, true); // 2 entries: batched from here on
  assert.equal(lab.conns.count, 3);
});
