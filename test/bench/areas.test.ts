// The bench's area selection (bench/areas.ts): names match a file's area exactly; and which rows
// of a run failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchArea, failedRows, selectBenchFiles } from '../../bench/areas';
import type { BenchRow } from '../../bench/lib';

const FILES = ['areas.js', 'conn-list.bench.js', 'conn.bench.js', 'e2e.bench.js', 'lib.js', 'run.js', 'scale-apply.bench.js', 'scale.bench.js'];

test('bench areas: the file name without .bench.js; other files are no area', () => {
  assert.equal(benchArea('conn-list.bench.js'), 'conn-list');
  assert.equal(benchArea('run.js'), null);
  assert.equal(benchArea('conn.bench.js.map'), null);
});

test('bench areas: a name selects its own file only, not the areas it is a prefix of', () => {
  assert.deepEqual(selectBenchFiles(FILES, ['conn']), ['conn.bench.js']);
  assert.deepEqual(selectBenchFiles(FILES, ['scale']), ['scale.bench.js']);
  assert.deepEqual(selectBenchFiles(FILES, ['conn-list', 'conn', 'conn']), ['conn-list.bench.js', 'conn.bench.js']);
  assert.deepEqual(selectBenchFiles(FILES, []), ['conn-list.bench.js', 'conn.bench.js', 'e2e.bench.js', 'scale-apply.bench.js', 'scale.bench.js']);
});

test('bench areas: an unknown name (a prefix included) is an error listing the valid areas', () => {
  assert.throws(() => selectBenchFiles(FILES, ['con']), /^Error: bench: unknown area "con" \(areas: conn, conn-list, e2e, scale, scale-apply\)$/);
  assert.throws(() => selectBenchFiles(FILES, ['e2e', 'x', 'run']), /unknown areas "x", "run"/);
});

test('failed rows: a row without a value fails unless it is marked not measured; measured rows never', () => {
  const row = (name: string, value: number, note?: string): BenchRow => ({ group: 'g', name, value, unit: 'pps', ...(note ? { note } : {}) });
  assert.deepEqual(failedRows([
    row('uvs', 1000),
    row('haproxy', Number.NaN, 'haproxy exited with 1'),
    row('xdp', Number.NaN, 'not measured: no AF_XDP here'),
    row('missed target', 0.5),
  ]), ['row failed: g / haproxy: haproxy exited with 1']);
  assert.deepEqual(failedRows([row('no note', Number.NaN)]), ['row failed: g / no note']);
});
