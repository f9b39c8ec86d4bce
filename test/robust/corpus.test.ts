// The malformed corpus (test/robust/corpus.ts): every class, in DR, NAT and TUN, gets exactly the
// verdict the corpus gives it — its DropReason counted once and nothing sent; the ICMP error it
// earns sent back out the ingress interface (and its drop counted); left to the kernel (counted
// as not ours); or forwarded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { viewOf } from '../../src/packet/layer';
import { DROP_REASON_COUNT, dropReasonName } from '../../src/packet/drop';
import { ForwardMethod } from '../../src/tables/dest-table';
import { NO_TX, QUEUED } from '../../src/dataplane/pipeline';
import { CORPUS } from './corpus';
import { drainTx, makePipelineLab, notOurs, totalDrops } from './pipeline-lab';

const MODES: [ForwardMethod, string][] = [[ForwardMethod.DROUTE, 'DR'], [ForwardMethod.MASQ, 'NAT'], [ForwardMethod.TUNNEL, 'TUN']];

test('the corpus has at least 30 classes, each named once', () => {
  assert.ok(CORPUS.length >= 30, `${CORPUS.length} classes`);
  assert.equal(new Set(CORPUS.map((c) => c.name)).size, CORPUS.length);
});

for (const cls of CORPUS) {
  test(`corpus: ${cls.name} (${cls.from})`, () => {
    for (const [fwd, mode] of MODES) {
      const lab = makePipelineLab(fwd, false);
      const run = (f: Uint8Array): number => lab.pipeline.process(f, viewOf(f), 0, f.length, 1_000_000, 0);
      for (const s of cls.setup?.() ?? []) run(s);
      drainTx(lab);
      const drops0 = new Float64Array(DROP_REASON_COUNT);
      for (let r = 1; r < DROP_REASON_COUNT; r++) drops0[r] = lab.counters.drops(r);
      const total0 = totalDrops(lab.counters);
      const notOurs0 = notOurs(lab.counters);
      const frame = cls.frame();
      const result = run(frame);
      const out = drainTx(lab);
      const dTotal = totalDrops(lab.counters) - total0;
      const dNotOurs = notOurs(lab.counters) - notOurs0;
      const counted: string[] = [];
      for (let r = 1; r < DROP_REASON_COUNT; r++) if (lab.counters.drops(r) > drops0[r]!) counted.push(dropReasonName(r));
      const seen = `${mode}: result ${result}, drops [${counted.join(', ')}], not ours +${dNotOurs}, ${out.length} queued`;
      const v = cls.verdict;
      if ('drop' in v) {
        assert.equal(result, NO_TX, seen);
        assert.deepEqual(counted, [dropReasonName(v.drop)], seen);
        assert.equal(dTotal, 1, seen);
        assert.equal(out.length, 0, seen);
      } else if ('icmp' in v) {
        assert.equal(result, QUEUED, seen);
        assert.deepEqual(counted, [dropReasonName(v.counted)], seen);
        assert.equal(out.length, 1, seen);
        const err = out[0]!;
        assert.equal(err.egress, 0, `${seen}: back out the ingress interface`);
        assert.equal(err.bytes[14 + 9], 1, `${seen}: ICMP`);
        const at = 14 + (err.bytes[14]! & 15) * 4;
        assert.deepEqual([err.bytes[at], err.bytes[at + 1]], [v.icmp.type, v.icmp.code], seen);
      } else if ('notOurs' in v) {
        assert.equal(result, NO_TX, seen);
        assert.equal(dNotOurs, 1, seen);
        assert.equal(dTotal, 0, seen);
      } else {
        assert.equal(dTotal, 0, seen);
        if (fwd === ForwardMethod.TUNNEL) {
          assert.equal(result, QUEUED, seen);
          assert.equal(out.length, 1, seen);
          assert.equal(out[0]!.egress, 1, seen);
          assert.equal(out[0]!.bytes[14 + 9], 4, `${seen}: IPIP`);
        } else {
          assert.equal(result, 1, seen);
          // What is sent ends with the IP packet (no trailing bytes).
          const l3 = frame[12] === 0x81 ? 18 : 14;
          assert.equal(lab.pipeline.txLength, Math.max(l3 + viewOf(frame).getUint16(l3 + 2), Math.min(frame.length, 60)), seen);
        }
      }
    }
  });
}
