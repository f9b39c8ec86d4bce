// Which bench/<area>.bench.ts files a run takes: the area names on the command line
// (`npm run bench -- conn e2e`), each matched exactly against a file's area, so `conn` runs
// conn.bench.ts and not conn-list.bench.ts too (and `scale` not scale-apply). No names: every area.
// And which rows of a run failed (failedRows).
import type { BenchRow } from './lib';

const SUFFIX = '.bench.js';

/** The area of a compiled bench file (`conn-list.bench.js` → `conn-list`), or null for another file. */
export function benchArea(file: string): string | null {
  return file.endsWith(SUFFIX) ? file.slice(0, -SUFFIX.length) : null;
}

/**
 * The bench files to run, sorted: those whose area is one of `areas`, or all of them when `areas`
 * is empty. An unknown area is an error naming it and listing the valid ones (a typo must not
 * silently run nothing).
 */
export function selectBenchFiles(files: readonly string[], areas: readonly string[]): string[] {
  const known = new Map<string, string>();
  for (const f of files) {
    const area = benchArea(f);
    if (area !== null) known.set(area, f);
  }
  if (areas.length === 0) return [...known.values()].sort();
  const unknown = areas.filter((a) => !known.has(a));
  if (unknown.length > 0) {
    const valid = [...known.keys()].sort().join(', ');
    throw new Error(`bench: unknown area${unknown.length > 1 ? 's' : ''} ${unknown.map((a) => `"${a}"`).join(', ')} (areas: ${valid})`);
  }
  return [...new Set(areas)].map((a) => known.get(a)!).sort();
}

/**
 * The rows that failed: no value, and not marked "not measured: …" (a tool this machine lacks,
 * which is n/a rather than a failure). One line each, for stderr and the report's failures; a
 * run with any exits 1 (bench/run.ts).
 */
export function failedRows(rows: readonly BenchRow[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (Number.isFinite(r.value) || r.note?.startsWith('not measured')) continue;
    out.push(`row failed: ${r.group} / ${r.name}${r.note ? `: ${r.note.slice(0, 200)}` : ''}`);
  }
  return out;
}
