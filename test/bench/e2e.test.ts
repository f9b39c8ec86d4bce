// Unit tests of the end-to-end bench's pure parts: the generator's frames, wrk parsing, medians and
// ratios, and the report writers. No namespaces, no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFrames, frameBytes, type PktgenJob } from '../../bench/e2e/pktgen';
import { parseWrk } from '../../bench/e2e/tcp';
import { applyRatios, median, sampledRow } from '../../bench/e2e/progress';
import { toMarkdown, toSvg, type Report } from '../../bench/e2e/report';
import { checksum } from '../netns/native-lab';
import type { BenchRow } from '../../bench/lib';

const JOB: PktgenJob = {
  iface: 'x', dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02', srcIp: '10.201.0.10', dstIp: '10.201.0.100',
  dport: 9, sport: 10000, flows: 100, frameSize: 64, batch: 64, durationMs: 1,
};

test('pktgen frames: RFC 2544 sizes, one source port per flow, valid IPv4 header checksums', () => {
  assert.equal(frameBytes(64), 60);
  assert.equal(frameBytes(1400), 1396);
  assert.throws(() => frameBytes(63), /outside 64\.\.1518/);
  assert.throws(() => frameBytes(1519), /outside 64\.\.1518/);
  for (const frameSize of [64, 1400]) {
    const { buf, offsets, length, flows } = buildFrames({ ...JOB, frameSize });
    assert.equal(length, frameSize - 4);
    assert.equal(flows, 128, 'flows are rounded up to whole batches');
    const seen = new Set<number>();
    for (let i = 0; i < flows; i++) {
      const start = offsets[i]!;
      const f = buf.subarray(start, start + length);
      assert.equal(start % 64, 0);
      assert.equal((f[12]! << 8) | f[13]!, 0x0800);
      assert.equal((f[16]! << 8) | f[17]!, length - 14, 'IPv4 total length');
      assert.equal(checksum(f.subarray(14, 34)), 0, 'IPv4 header checksum verifies');
      assert.deepEqual([...f.subarray(30, 34)], [10, 201, 0, 100]);
      seen.add((f[34]! << 8) | f[35]!);
      assert.equal((f[36]! << 8) | f[37]!, 9);
    }
    assert.equal(seen.size, flows);
    assert.ok(seen.has(10000) && seen.has(10127));
  }
  assert.throws(() => buildFrames({ ...JOB, sport: 65500 }), /exceed 1\.\.65535/);
});

const WRK_OUT = `Running 5s test @ http://10.201.0.100/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.21ms  830.12us  21.90ms   91.02%
    Req/Sec    13.21k     1.02k   15.01k    70.00%
  Latency Distribution
     50%    1.02ms
     75%    1.40ms
     90%    1.90ms
     99%  850.00us
  131520 requests in 5.00s, 15.31MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
Requests/sec:  26304.12
Transfer/sec:      3.06MB
`;

test('parseWrk reads requests/s, p50/p99 in any unit, and the error lines', () => {
  const r = parseWrk(WRK_OUT);
  assert.equal(r.rps, 26304.12);
  assert.equal(r.p50ms, 1.02);
  assert.equal(r.p99ms, 0.85);
  assert.match(r.errors, /Socket errors: connect 0, read 12/);
  assert.equal(parseWrk(WRK_OUT.replace('1.02ms', '1.50s')).p50ms, 1500);
  assert.throws(() => parseWrk('unable to connect to 10.201.0.100:80 Connection refused'), /no Requests\/sec/);
});

test('median, min–max and ratios to the baseline of the same group', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const rows: BenchRow[] = [
    sampledRow('g', 'kernel', 'pps', [100, 120, 80]),
    sampledRow('g', 'uvs', 'pps', [90, 50, 70]),
    sampledRow('other', 'uvs', 'pps', [1]),
  ];
  applyRatios(rows, 'g', 'kernel');
  assert.equal(rows[0]!.value, 100);
  assert.equal(rows[0]!.min, 80);
  assert.equal(rows[0]!.max, 120);
  assert.equal(rows[0]!.baseline, true);
  assert.equal(rows[1]!.ratio, 0.7);
  assert.equal(rows[2]!.ratio, undefined, 'other groups are left alone');
});

test('report: Markdown has one table per group with ratios and targets; SVG marks baseline and target', () => {
  const rows: BenchRow[] = [
    sampledRow('UDP 64', 'kernel', 'pps', [1e6, 9e5]),
    { ...sampledRow('UDP 64', 'uvs | DR', 'pps', [5e5, 6e5]), target: '>= 0.85x kernel', met: false },
    { group: 'UDP 64', name: 'broken', value: NaN, unit: 'pps', note: 'failed: x' },
    { group: 'sched', name: 'rr', value: 25, unit: 'ns/op' },
  ];
  applyRatios(rows, 'UDP 64', 'kernel');
  const rep: Report = {
    date: '2026-01-01T00:00:00Z', command: 'npm run bench', quick: false, seconds: 1,
    host: { cpus: 2, cpuModel: 'cpu <x>', kernel: 'k', node: 'v20' }, rows, failures: [],
  };
  const md = toMarkdown(rep);
  assert.match(md, /### UDP 64/);
  assert.match(md, /\| kernel \| 950\.0 k pps \| 900\.0 k–1\.000 M \| 1\.00 \(baseline\)/);
  assert.match(md, /uvs \\\| DR .* 0\.58 \| >= 0\.85x kernel: \*\*missed\*\*/);
  assert.match(md, /### sched\n\n\| case \| value \| target \|/);
  const svg = toSvg(rep);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /stroke-dasharray="4 3"/, 'target line');
  assert.match(svg, /target 0\.85×/);
  assert.match(svg, />failed</);
  assert.ok(!svg.includes('cpu <x>') && !svg.includes('sched'), 'micro groups stay out of the chart; text is escaped');
  // Every opened element is closed (a cheap well-formedness check without an XML parser).
  assert.equal((svg.match(/<text/g) ?? []).length, (svg.match(/<\/text>/g) ?? []).length);
});
