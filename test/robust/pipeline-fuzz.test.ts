// The pipeline fuzz target (test/robust/fuzz.ts) in `npm test`: about 20,000 frames, spread over
// the six labs (DR, NAT, TUN, each with and without virtio-net headers), with a fixed seed so a
// failure is reproducible with `npm run fuzz -- --seed S --frames N`. The million-frame run is
// `npm run fuzz` (README, "Tests and benchmarks").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzPipeline } from './fuzz';

test('pipeline fuzz: 20,000 random and mutated frames in every mode, every emitted frame well-formed, every other one counted', () => {
  const r = fuzzPipeline({ frames: 20_000, seed: 0x13f022 });
  assert.equal(r.frames, 20_000);
  // The generator must reach the interesting paths, or the oracle checks nothing.
  assert.ok(r.forwarded > 300, `forwarded ${r.forwarded}`);
  assert.ok(r.queued > 500, `queued ${r.queued}`);
  for (const reason of ['BAD_IP_CHECKSUM', 'TRUNCATED_IP', 'TTL_EXPIRED', 'MARTIAN_SOURCE', 'NO_CONN', 'BAD_IHL', 'TOO_BIG']) {
    assert.ok((r.drops.get(reason) ?? 0) > 0, `no ${reason} drop reached: ${[...r.drops.keys()].join(', ')}`);
  }
});
