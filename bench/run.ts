// npm run bench [-- --quick] [-- area ...]: runs every bench/<area>.bench.ts (or the areas named,
// exactly: bench/areas.ts) — the micro benchmarks
// and the end-to-end lab (e2e.bench.ts, root only) — with one progress line, prints one table and
// writes bench/results/<date>.json, bench/results/latest.md and bench/results/latest.svg
// (--quick: <date>-quick.json, latest-quick.md, latest-quick.svg, so CI never overwrites the
// figures the README shows). `--out DIR` writes elsewhere.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import type { BenchRow, BenchOptions } from './lib';
import { failedRows, selectBenchFiles } from './areas';
import { Progress, type Step } from './e2e/progress';
import { toMarkdown, toSvg, type Report } from './e2e/report';

interface BenchModule {
  collect(o: BenchOptions, progress?: Progress): Promise<BenchRow[]>;
  /** The steps this module will announce on the progress line (end-to-end modules). */
  plan?(o: BenchOptions): Step[];
  /** Lines for the report on how the systems were set up (CPU placement, nice). */
  setup?(o: BenchOptions): string[];
}

function formatValue(row: BenchRow): string {
  if (!Number.isFinite(row.value)) return row.note?.startsWith('not measured') ? 'n/a' : 'failed';
  if (row.unit === 'ns/op') return row.value < 10 ? row.value.toFixed(2) : row.value.toFixed(1);
  return String(Math.round(row.value * 100) / 100);
}

function parseArgs(argv: string[]): { opts: BenchOptions; areas: string[]; out: string } {
  const opts: BenchOptions = { quick: false };
  const areas: string[] = [];
  let out = join(__dirname, '..', '..', 'bench', 'results');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') opts.quick = true;
    else if (a === '--out') {
      const v = argv[++i];
      if (!v) throw new Error('bench: --out needs a directory');
      out = v;
    } else if (a.startsWith('--')) throw new Error(`bench: unknown option ${a} (--quick, --out DIR, area names)`);
    else areas.push(a);
  }
  return { opts, areas, out };
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1]!.trim() : cpus()[0]?.model ?? 'unknown CPU';
  } catch {
    return cpus()[0]?.model ?? 'unknown CPU';
  }
}

async function main(): Promise<void> {
  const { opts, areas, out } = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const files = selectBenchFiles(readdirSync(__dirname), areas);
  const mods: Array<{ file: string; mod: BenchModule }> = [];
  for (const file of files) mods.push({ file, mod: (await import(join(__dirname, file))) as BenchModule });
  // Micro benchmarks have no plan of their own: one step each, sized like benny's defaults.
  const microSeconds = opts.quick ? 8 : 45;
  const steps: Step[] = mods.flatMap(({ file, mod }) => mod.plan ? mod.plan(opts) : [{ label: `micro: ${file.replace(/\.bench\.js$/, '')}`, seconds: microSeconds }]);
  const progress = new Progress(steps);
  process.stderr.write(`bench: ${mods.length} area(s), about ${Math.round(progress.total / 60)} min${opts.quick ? ' (--quick)' : ''}\n`);
  const rows: BenchRow[] = [];
  const failures: string[] = [];
  for (const { file, mod } of mods) {
    if (!mod.plan) progress.begin(`micro: ${file.replace(/\.bench\.js$/, '')}`);
    try {
      rows.push(...(await mod.collect(opts, progress)));
    } catch (err) {
      const msg = `${file}: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`;
      failures.push(msg);
      progress.log(`bench: ${msg}`);
    }
  }
  progress.finish();
  // A row that could not be measured for a reason the harness knows ("not measured: …", e.g. a
  // tool this machine lacks) is n/a; any other row without a value failed (a peer that would not
  // start, a lab step that broke): the run says so and exits 1, like an area that threw.
  for (const msg of failedRows(rows)) {
    failures.push(msg);
    process.stderr.write(`bench: ${msg}\n`);
  }

  const header = ['group', 'case', 'value', 'unit', 'ratio', 'target', 'met'];
  const table = rows.map((r) => [
    r.group, r.name, formatValue(r), r.unit, r.ratio !== undefined && Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '',
    r.target ?? '', r.met === undefined ? '' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  console.log('\n' + line(header));
  console.log('| ' + widths.map((w) => '-'.repeat(w)).join(' | ') + ' |');
  for (const t of table) console.log(line(t));

  const date = new Date(started).toISOString().replace(/\.\d+Z$/, 'Z');
  const report: Report = {
    date,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick: opts.quick,
    seconds: (Date.now() - started) / 1000,
    host: { cpus: cpus().length, cpuModel: cpuModel(), kernel: release(), node: process.version },
    rows,
    setup: mods.flatMap(({ mod }) => mod.setup?.(opts) ?? []),
    failures,
  };
  mkdirSync(out, { recursive: true });
  const stamp = date.replace(/:/g, '-') + (opts.quick ? '-quick' : '');
  const latest = opts.quick ? 'latest-quick' : 'latest';
  // NaN is not JSON: failed or unmeasured rows carry null.
  writeFileSync(join(out, `${stamp}.json`), JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
  writeFileSync(join(out, `${latest}.md`), toMarkdown(report));
  writeFileSync(join(out, `${latest}.svg`), toSvg(report));
  console.log(`\nbench: wrote ${join(out, `${stamp}.json`)}, ${latest}.md and ${latest}.svg`);
  if (failures.length) process.exitCode = 1;
}

main().catch((err) => {
  // A usage error (an unknown option or area) is its message alone; anything else with its stack.
  console.error(err instanceof Error && err.message.startsWith('bench: ') ? err.message : err);
  process.exit(1);
});
