// The decoders allocate nothing per packet (docs/architecture.md: nothing on the hot path allocates). Checked in a child process with
// --expose-gc (alloc-child.ts): after warm-up, millions of decodes must neither trigger a scavenge
// nor grow the heap by more than a rounding error (one small object per decode would be tens of MB).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ALL = ['http-tcp', 'vrrp-v2', 'vrrp-v3', 'icmp-frag-needed', 'icmp-port-unreachable', 'arp-request-reply', 'vlan-arp', 'ipv4-options'];

test('decoding 3 million captured frames allocates nothing per packet', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', join(__dirname, 'alloc-child.js'), ALL.join(','), '3000000'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const { bad, grown, scavenges } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bad: number; grown: number; scavenges: number };
  assert.equal(bad, 0, 'every frame decodes and verifies');
  assert.equal(scavenges, 0, `no minor GC while decoding (heap grew ${grown} bytes)`);
  assert.ok(grown < 2_000_000, `heap grew by ${grown} bytes over 3e6 decodes`);
});
