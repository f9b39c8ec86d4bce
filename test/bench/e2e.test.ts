// Unit tests of the end-to-end bench's pure parts: the generator's frames and pacing, wrk parsing,
// medians and ratios, the stepped-load search, /proc parsing and CPU per packet, the added-latency
// rows and HTTP framing, the targets, and the report writers. No namespaces, no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFrames, frameBytes, MAX_STEPS, paceBatch, parseGo, type PktgenJob } from '../../bench/e2e/pktgen';
import { parseWrk } from '../../bench/e2e/tcp';
import { applyRatios, median, sampledRow } from '../../bench/e2e/progress';
import { toMarkdown, toSvg, type Report } from '../../bench/e2e/report';
import { checksum } from '../netns/native-lab';
import type { BenchRow } from '../../bench/lib';
import { bestOffered, clean, cpuPerPacketNs, inLabPerPacketNs, parsePidStat, generatorShort, highestClean, lossOf, MAX_LOSS, nextRate, parseProcStat, type LoadStep } from '../../bench/e2e/load';
import { addedRow, percentile, rttStats } from '../../bench/e2e/latency';
import { httpResponseLength } from '../../bench/e2e/rtt';
import { LOAD_GROUPS, markLoadTargets, uvsdArgs } from '../../bench/e2e/pps';
import { markKeepAliveTargets, TCP_GROUPS } from '../../bench/e2e/tcp';

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

// ---- issue 12: paced stepped load, CPU per packet, 1M flows, added latency, idle

test('pktgen frames for many flows: distinct (source address, port) pairs, valid checksums', () => {
  const { buf, offsets, length, flows } = buildFrames({ ...JOB, flows: 640, portsPerIp: 100, srcIp: '10.201.0.20' });
  assert.equal(flows, 640);
  const seen = new Set<string>();
  for (let i = 0; i < flows; i++) {
    const at = offsets[i]!;
    const f = buf.subarray(at, at + length);
    assert.equal(checksum(f.subarray(14, 34)), 0, `IPv4 header checksum of flow ${i}`);
    const src = [...f.subarray(26, 30)].join('.');
    const port = (f[34]! << 8) | f[35]!;
    assert.equal(src, `10.201.0.${20 + Math.floor(i / 100)}`);
    assert.equal(port, 10000 + (i % 100));
    seen.add(`${src}:${port}`);
  }
  assert.equal(seen.size, flows);
  assert.throws(() => buildFrames({ ...JOB, flows: 64 * 5000, portsPerIp: 64 }), /exceed 4096/);
  assert.throws(() => buildFrames({ ...JOB, portsPerIp: 0 }), /portsPerIp 0/);
});

test('pktgen pacing batch and the "go PPS" command', () => {
  assert.equal(paceBatch(0, 64), 64, 'unpaced: full batches');
  assert.equal(paceBatch(10_000, 64), 1, 'low rates: one frame per call');
  assert.equal(paceBatch(200_000, 64), 2);
  assert.equal(paceBatch(1_000_000, 64), 16);
  assert.equal(paceBatch(100e6, 64), 64, 'never more than the batch');
  assert.equal(parseGo('go 250000'), 250000);
  assert.equal(parseGo('go 0\n'), 0);
  assert.throws(() => parseGo('go'), /expected "go PPS"/);
  assert.throws(() => parseGo('go -5'), /expected "go PPS"/);
  assert.throws(() => parseGo('go 30000000'), /exceeds/);
  assert.ok(MAX_STEPS >= 16);
});

const PROC_STAT = `cpu  1000 50 300 8000 20 10 200 5 0 0
cpu0 500 25 150 4000 10 5 100 2 0 0
cpu1 500 25 150 4000 10 5 100 3 0 0
intr 12345
`;

test('/proc/stat: busy = user + nice + system + irq + softirq + steal, in seconds', () => {
  const t = parseProcStat(PROC_STAT);
  assert.equal(t.busy, (1000 + 50 + 300 + 10 + 200 + 5) / 100);
  assert.equal(t.softirq, 2);
  assert.equal(t.total, (1565 + 8000 + 20) / 100);
  assert.throws(() => parseProcStat('intr 1\n'), /no aggregate "cpu" line/);
  assert.throws(() => parseProcStat('cpu  1 2 x\n'), /cannot read/);
});

function step(asked: number, loss: number, over: Partial<LoadStep> = {}): LoadStep {
  const sent = Math.max(1, asked);
  return {
    asked, loss, received: Math.round(sent * (1 - loss)), forwarded: sent * (1 - loss), wallSeconds: 1,
    gen: { sent, short: 0, elapsed: 1, pps: asked, userCpu: 0.2 }, cpu: { busy: 1.5, softirq: 0.5, total: 2 }, ...over,
  };
}

test('loss, clean steps and CPU per packet', () => {
  assert.equal(lossOf(1000, 999), 0.001);
  assert.equal(lossOf(1000, 1002), 0, 'stray frames at the sink are not negative loss');
  assert.ok(Number.isNaN(lossOf(0, 0)));
  assert.ok(clean(step(1000, MAX_LOSS)));
  assert.ok(!clean(step(1000, 0.002)));
  const short = step(1000, 0, { gen: { sent: 900, short: 0, elapsed: 1, pps: 900 } });
  assert.ok(generatorShort(short) && clean(short), 'a rate the generator did not hold is still a clean step, at the rate offered');
  assert.ok(!generatorShort(step(1000, 0)));
  assert.equal(bestOffered([step(1000, 0), short, step(2000, 0.01)])!.gen.pps, 1000, 'the figure is the highest rate really offered without loss');
  assert.equal(highestClean([step(1000, 0), short])!.asked, 1000);
  // 1.5 s busy − 0.2 s generator user − 0.5 s background = 0.8 s over 100,000 frames = 8000 ns.
  assert.equal(Math.round(cpuPerPacketNs(step(100_000, 0, { received: 100_000 }), 0.5)), 8000);
  assert.ok(Number.isNaN(cpuPerPacketNs(step(1000, 0, { received: 0 }), 0)));
  // 0.5 s softirq + 0.1 s generator system + 0.4 s uvsd over 100,000 frames = 10,000 ns.
  const st = step(100_000, 0, { received: 100_000, procCpu: 0.4 });
  st.gen.sysCpu = 0.1;
  assert.equal(Math.round(inLabPerPacketNs(st)), 10_000);
});

/** Runs the search against a system that loses 1% above `capacity`. */
function search(capacity: number, ceiling: number, plan = { ramp: 10, bisect: 3 }): LoadStep[] {
  const done: LoadStep[] = [];
  for (let i = 0; i < 50; i++) {
    const r = nextRate(done, ceiling, plan);
    if (r === null) break;
    done.push(step(r, r > capacity ? 0.01 : 0));
  }
  return done;
}

test('stepped search: ramp up, stop after two failures, bisect to the highest clean rate', () => {
  const done = search(430_000, 1_000_000);
  assert.deepEqual(done.slice(0, 6).map((s) => s.asked), [100_000, 200_000, 300_000, 400_000, 500_000, 600_000], 'ramp stops after two failures');
  assert.deepEqual(done.slice(6).map((s) => s.asked), [450_000, 425_000, 437_500], 'bisection between 400k and 500k');
  assert.equal(done.length, 9, 'bounded by ramp + bisect');
  assert.equal(highestClean(done)!.asked, 425_000);
  // Clean all the way: the ramp reaches the ceiling and there is nothing to bisect.
  const all = search(2e6, 1_000_000);
  assert.equal(all.length, 10);
  assert.equal(highestClean(all)!.asked, 1_000_000);
  // Nothing clean: bisection below the first step.
  const none = search(0, 1_000_000, { ramp: 5, bisect: 2 });
  assert.deepEqual(none.map((s) => s.asked), [200_000, 400_000, 100_000, 50_000]);
  assert.equal(highestClean(none), null);
});

test('added latency: nearest-rank percentiles, per-pass difference from the direct path, target on uvs rows', () => {
  assert.equal(percentile([5, 1, 3, 2, 4], 50), 3);
  assert.equal(percentile([...Array(100).keys()].map((i) => i + 1), 99), 99);
  assert.ok(Number.isNaN(percentile([], 50)));
  const st = rttStats({ samplesUs: [10, 20, 30], lost: 1 });
  assert.deepEqual(st, { p50: 20, p99: 30, n: 3, lost: 1 });
  const runs = [
    { direct: { p50: 40, p99: 100, n: 100, lost: 0 }, via: { p50: 140, p99: 300, n: 99, lost: 1 } },
    { direct: { p50: 50, p99: 100, n: 100, lost: 0 }, via: { p50: 130, p99: 260, n: 100, lost: 0 } },
  ];
  const nat = addedRow('lat', 'uvs NAT', 2, runs, true);
  assert.equal(nat.value, 45, 'median of (100, 80) / 2 passes');
  assert.deepEqual(nat.samples, [50, 40]);
  assert.equal(nat.columns!['added p99/pass µs'], '90.0');
  assert.equal(nat.columns!['added p50/round trip µs'], '90.0', 'median of (100, 80), not divided by the passes');
  assert.equal(nat.target, '<= 50 µs per pass');
  assert.equal(nat.met, true);
  assert.match(nat.note!, /1 of 200 unanswered/);
  const dr = addedRow('lat', 'uvs DR', 1, runs, true);
  assert.equal(dr.value, 90);
  assert.equal(dr.met, false);
  assert.equal(addedRow('lat', 'HAProxy', 2, runs, false).target, undefined, 'peers carry no target');
});

test('HTTP response framing for the TCP round trips: Content-Length and chunked', () => {
  const cl = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nrs1\n');
  assert.equal(httpResponseLength(cl), cl.length);
  assert.equal(httpResponseLength(cl.subarray(0, cl.length - 1)), 0, 'body incomplete');
  const ch = Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nrs1\n\r\n0\r\n\r\n');
  assert.equal(httpResponseLength(ch), ch.length);
  assert.equal(httpResponseLength(Buffer.concat([ch, Buffer.from('HTTP/1.1')])), ch.length, 'the next response stays');
  assert.equal(httpResponseLength(ch.subarray(0, ch.length - 2)), 0);
  assert.equal(httpResponseLength(Buffer.from('HTTP/1.1 200 OK\r\n')), 0, 'headers incomplete');
  assert.throws(() => httpResponseLength(Buffer.from('HTTP/1.1 200 OK\r\nX: y\r\n\r\n')), /neither Content-Length nor chunked/);
});

test('/proc/PID/stat: utime + stime, whatever the command name holds', () => {
  const stat = '4242 (node (uvsd) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 11 0 100 1000 10 0\n';
  assert.equal(parsePidStat(stat), 3.8);
  assert.throws(() => parsePidStat('garbage'), /cannot read/);
});

test('issue 12 targets: keep-alive DR vs direct and HAProxy, NAT vs nftables; 64-byte DR and CPU per packet vs kernel', () => {
  const rows: BenchRow[] = [
    { ...sampledRow(TCP_GROUPS.keepAlive, 'direct', 'req/s', [100]), ratio: 1 },
    { ...sampledRow(TCP_GROUPS.keepAlive, 'uvs DR ring, 1 worker', 'req/s', [95]), ratio: 0.95 },
    { ...sampledRow(TCP_GROUPS.keepAlive, 'uvs NAT ring, 1 worker', 'req/s', [70]), ratio: 0.7 },
    { ...sampledRow(TCP_GROUPS.keepAlive, 'HAProxy mode tcp', 'req/s', [75]), ratio: 0.75 },
    { ...sampledRow(TCP_GROUPS.keepAlive, 'nftables DNAT', 'req/s', [80]), ratio: 0.8 },
    { ...sampledRow(LOAD_GROUPS.lossFree, 'uvs DR ring, 1 worker', 'pps', [95]), ratio: 0.95 },
    { ...sampledRow(LOAD_GROUPS.cpu, 'uvs DR ring, 1 worker', 'ns/pkt', [1600]), ratio: 1.6, columns: { 'in-lab ns/pkt': '3000' } },
    { ...sampledRow(LOAD_GROUPS.cpu, 'kernel ip_forward', 'ns/pkt', [1000]), ratio: 1, columns: { 'in-lab ns/pkt': '1200' } },
  ];
  markKeepAliveTargets(rows);
  markLoadTargets(rows);
  assert.match(rows[1]!.target!, /^>= 0\.9x direct, vs HAProxy 1\.27x \(>= 1\.2x\)$/);
  assert.equal(rows[1]!.met, true);
  assert.equal(rows[2]!.target, 'vs nftables DNAT 0.88x (>= 0.9x)');
  assert.equal(rows[2]!.met, false);
  assert.equal(rows[5]!.met, true);
  assert.equal(rows[6]!.target, '<= 1.5x kernel');
  assert.equal(rows[6]!.met, false);
  assert.equal(rows[6]!.columns!['in-lab ns/pkt'], '3000 (2.50x)');
  assert.equal(rows[7]!.columns!['in-lab ns/pkt'], '1200', 'the kernel row is the base');
});

test('report: setup lines under the title, extra columns per group', () => {
  const rows: BenchRow[] = [
    { ...sampledRow('lat', 'uvs DR', 'µs', [12.34]), columns: { 'added p99/pass µs': '40.0', passes: '1' } },
    { ...sampledRow('lat', 'HAProxy', 'µs', [80]), columns: { passes: '2' } },
  ];
  const md = toMarkdown({
    date: 'd', command: 'npm run bench', quick: true, seconds: 1, host: { cpus: 2, cpuModel: 'c', kernel: 'k', node: 'v20' },
    rows, failures: [], setup: ['Same nice for all | pinned'],
  });
  assert.match(md, /^- Same nice for all \\\| pinned$/m);
  assert.match(md, /\| case \| median \| min–max \| × baseline \| added p99\/pass µs \| passes \| target \| notes \|/);
  assert.match(md, /\| uvs DR \| 12\.3 µs \| 12\.3–12\.3 \| — \| 40\.0 \| 1 \|/);
  assert.match(md, /\| HAProxy \| 80\.0 µs \| 80\.0–80\.0 \| — \| {2}\| 2 \|/);
});

test('bench uvsd: every case starts without the previous case\'s connections (--conn-state none) unless it names a file', () => {
  const a = uvsdArgs('/tmp/s.sock', ['--io', 'ring', '--workers', '1']);
  assert.deepEqual(a, ['-n', '-l', '--no-config', '--socket', '/tmp/s.sock', '--conn-state', 'none', '--io', 'ring', '--workers', '1']);
  const own = uvsdArgs('/tmp/s.sock', ['-f', 'k.conf'], ['--conn-state', '/tmp/x.conns']);
  assert.deepEqual(own, ['-n', '-l', '--socket', '/tmp/s.sock', '-f', 'k.conf', '--conn-state', '/tmp/x.conns']);
});
