// npm run bench [-- --quick] [-- area ...]: runs every bench/<area>.bench.ts and prints one table.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchRow, BenchOptions } from './lib';

function formatValue(row: BenchRow): string {
  if (row.unit === 'ns/op') return row.value < 10 ? row.value.toFixed(2) : row.value.toFixed(1);
  return String(Math.round(row.value * 100) / 100);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opts: BenchOptions = { quick: args.includes('--quick') };
  const areas = args.filter((a) => !a.startsWith('--'));
  const files = readdirSync(__dirname)
    .filter((f) => f.endsWith('.bench.js'))
    .filter((f) => areas.length === 0 || areas.some((a) => f.startsWith(a)))
    .sort();
  const rows: BenchRow[] = [];
  for (const file of files) {
    const mod = (await import(join(__dirname, file))) as { collect(o: BenchOptions): Promise<BenchRow[]> };
    rows.push(...(await mod.collect(opts)));
  }
  const header = ['group', 'case', 'value', 'unit', 'target', 'met'];
  const table = rows.map((r) => [r.group, r.name, formatValue(r), r.unit, r.target ?? '', r.met === undefined ? '' : r.met ? 'yes' : 'NO']);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  console.log('\n' + line(header));
  console.log('| ' + widths.map((w) => '-'.repeat(w)).join(' | ') + ' |');
  for (const t of table) console.log(line(t));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
