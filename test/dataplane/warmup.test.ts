// The workers' JIT warm-up (src/dataplane/warmup.ts): its synthetic frames take the paths real
// traffic takes — every one is forwarded (DR, NAT both ways, TUN; TCP and UDP; new and
// established flows; batched and single lookups), with and without a virtio_net_hdr — so what it
// warms is the forwarding code, not a drop path. A change to the pipeline that made it drop them
// fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmUpPipeline, WARMUP_ROUNDS } from '../../src/dataplane/warmup';
import { loadNative, nativeAddonPath } from '../../src/native/addon';
import { existsSync } from 'node:fs';

for (const vnetHdr of [false, true]) {
  test(`warm-up ${vnetHdr ? 'behind a virtio_net_hdr' : 'of plain frames'}: every synthetic frame is forwarded`, () => {
    const r = warmUpPipeline(vnetHdr);
    // Per round: 6 client frames, plus 2 NAT replies once the flows are established.
    assert.ok(r.frames >= WARMUP_ROUNDS * 6, JSON.stringify(r));
    assert.equal(r.forwarded, r.frames, JSON.stringify(r));
  });
}

test('warm-up: a few rounds are enough for a short run, and two runs are independent (private tables)', () => {
  const a = warmUpPipeline(false, 20);
  const b = warmUpPipeline(false, 20);
  // 10 rounds per pipeline, all of them new flows: 6 frames each, no replies yet.
  assert.deepEqual([a.frames, a.forwarded], [120, 120]);
  assert.deepEqual([b.frames, b.forwarded], [120, 120], 'the second run opened its connections again: nothing carried over');
});

test('warm-up through the addon\'s batched lookup (the workers\' path): every synthetic frame is forwarded', {
  skip: existsSync(nativeAddonPath()) ? false : `native addon not built at ${nativeAddonPath()}`,
}, () => {
  const r = warmUpPipeline(false, WARMUP_ROUNDS, loadNative().connLookupBatch);
  assert.ok(r.frames >= WARMUP_ROUNDS * 6, JSON.stringify(r));
  assert.equal(r.forwarded, r.frames, JSON.stringify(r));
});
