// The bench report: rows → JSON (everything), Markdown (one table per group) and a hand-written SVG
// bar chart (end-to-end groups; each bar is the row's median as a multiple of its group's baseline,
// with the min–max range as a whisker, the baseline marked by a line at 1.0 and a target, where the
// group has one, by a dashed line).
import type { BenchRow } from '../lib';

export interface Report {
  date: string;
  command: string;
  quick: boolean;
  seconds: number;
  host: { cpus: number; cpuModel: string; kernel: string; node: string };
  rows: BenchRow[];
  /** How the systems were set up (CPU placement, nice), one line each, printed under the title. */
  setup?: string[];
  /** Modules that failed as a whole (their rows are missing). */
  failures: string[];
}

function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '—';
  if (unit === 'pps') return v >= 1e6 ? `${(v / 1e6).toFixed(3)} M` : `${(v / 1e3).toFixed(1)} k`;
  if (unit === 'req/s') return v >= 1e3 ? `${(v / 1e3).toFixed(2)} k` : v.toFixed(0);
  if (unit === 'Gbit/s') return v.toFixed(2);
  if (unit === 'ns/op' || unit === 'ns/pkt' || unit === 'µs') return v < 10 ? v.toFixed(2) : v.toFixed(1);
  if (unit === '% of a core') return v.toFixed(2);
  if (unit === 'ratio') return v.toFixed(3);
  return String(Math.round(v * 100) / 100);
}

function groups(rows: BenchRow[]): Map<string, BenchRow[]> {
  const m = new Map<string, BenchRow[]>();
  for (const r of rows) {
    const list = m.get(r.group) ?? [];
    list.push(r);
    m.set(r.group, list);
  }
  return m;
}

function md(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function toMarkdown(rep: Report): string {
  const out: string[] = [];
  out.push(`# uvs benchmark ${rep.quick ? '(--quick) ' : ''}— ${rep.date}`);
  out.push('');
  out.push(`\`${rep.command}\` on ${rep.host.cpus} × ${rep.host.cpuModel}, Linux ${rep.host.kernel}, Node ${rep.host.node}; ${Math.round(rep.seconds)} s.`);
  out.push('Each end-to-end row is the median of its runs (min–max beside it) and its ratio to the group\'s baseline **of the same run**: the machine is shared and noisy, so compare ratios, not absolutes.');
  if (rep.setup?.length) out.push('', ...rep.setup.map((l) => `- ${md(l)}`));
  if (rep.failures.length) out.push('', ...rep.failures.map((f) => `- **failed:** ${md(f)}`));
  for (const [group, rows] of groups(rep.rows)) {
    const e2e = rows.some((r) => r.samples !== undefined || r.ratio !== undefined || !Number.isFinite(r.value));
    out.push('', `### ${group}`, '');
    if (e2e) {
      const lat = rows.some((r) => r.latency);
      const cols = [...new Set(rows.flatMap((r) => Object.keys(r.columns ?? {})))];
      const colHead = cols.map((c) => ` ${md(c)} |`).join('');
      out.push(`| case | median | min–max | × baseline |${lat ? ' p50 ms | p99 ms |' : ''}${colHead} target | notes |`);
      out.push(`| --- | ---: | ---: | ---: |${lat ? ' ---: | ---: |' : ''}${cols.map(() => ' ---: |').join('')} --- | --- |`);
      for (const r of rows) {
        const range = r.min !== undefined && r.max !== undefined ? `${num(r.min, r.unit)}–${num(r.max, r.unit)}` : '';
        const ratio = r.baseline ? '1.00 (baseline)' : r.ratio !== undefined && Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '—';
        const target = r.target ? `${r.target}: ${r.met === undefined ? '?' : r.met ? 'met' : '**missed**'}` : '';
        const latCells = lat ? ` ${r.latency ? r.latency.p50ms.toFixed(2) : ''} | ${r.latency ? r.latency.p99ms.toFixed(2) : ''} |` : '';
        const extra = cols.map((c) => ` ${md(r.columns?.[c] ?? '')} |`).join('');
        out.push(`| ${md(r.name)} | ${num(r.value, r.unit)} ${r.unit} | ${range} | ${ratio} |${latCells}${extra} ${md(target)} | ${md(r.note ?? '')} |`);
      }
    } else {
      out.push('| case | value | target |', '| --- | ---: | --- |');
      for (const r of rows) {
        const target = r.target ? `${r.target}: ${r.met === undefined ? '?' : r.met ? 'met' : '**missed**'}` : '';
        out.push(`| ${md(r.name)} | ${num(r.value, r.unit)} ${r.unit} | ${md(target)} |`);
      }
    }
  }
  out.push('');
  return out.join('\n');
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A target of the form ">= 0.85x …" or "<= 1.5x …" as a ratio, for the dashed line. */
function targetRatio(rows: BenchRow[]): number | null {
  for (const r of rows) {
    const m = r.target ? /^[<>]=\s*([\d.]+)x/.exec(r.target) : null;
    if (m) return Number(m[1]);
  }
  return null;
}

export function toSvg(rep: Report): string {
  const chart = [...groups(rep.rows)].filter(([, rows]) => rows.some((r) => r.baseline));
  const W = 900;
  const labelW = 250;
  const valueW = 120;
  const barW = W - labelW - valueW - 20;
  const rowH = 22;
  const parts: string[] = [];
  let y = 40;
  let maxRatio = 1.2;
  for (const [, rows] of chart) {
    for (const r of rows) {
      const hi = r.max !== undefined && r.ratio !== undefined && r.value > 0 ? (r.ratio * r.max) / r.value : r.ratio ?? 0;
      if (Number.isFinite(hi)) maxRatio = Math.max(maxRatio, hi);
    }
  }
  maxRatio = Math.min(Math.ceil(maxRatio * 5) / 5, 4);
  const x = (ratio: number): number => labelW + (Math.min(ratio, maxRatio) / maxRatio) * barW;
  parts.push(`<text x="10" y="22" font-size="15" font-weight="bold">uvs benchmark ${rep.quick ? '(--quick) ' : ''}${esc(rep.date)} — ratio to each group's baseline (line at 1.0)</text>`);
  for (const [group, rows] of chart) {
    y += 18;
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${esc(group)}</text>`);
    y += 8;
    const top = y;
    for (const r of rows) {
      const cy = y + rowH / 2;
      parts.push(`<text x="${labelW - 8}" y="${cy + 4}" font-size="12" text-anchor="end">${esc(r.name)}</text>`);
      if (r.ratio !== undefined && Number.isFinite(r.ratio)) {
        const fill = r.baseline ? '#9e9e9e' : r.met === false ? '#e57373' : '#4f81bd';
        parts.push(`<rect x="${labelW}" y="${y + 4}" width="${(x(r.ratio) - labelW).toFixed(1)}" height="${rowH - 8}" fill="${fill}"/>`);
        if (r.min !== undefined && r.max !== undefined && r.value > 0) {
          const lo = x((r.ratio * r.min) / r.value);
          const hi = x((r.ratio * r.max) / r.value);
          parts.push(`<line x1="${lo.toFixed(1)}" x2="${hi.toFixed(1)}" y1="${cy}" y2="${cy}" stroke="#222" stroke-width="1.2"/>`);
          parts.push(`<line x1="${lo.toFixed(1)}" x2="${lo.toFixed(1)}" y1="${cy - 4}" y2="${cy + 4}" stroke="#222"/>`);
          parts.push(`<line x1="${hi.toFixed(1)}" x2="${hi.toFixed(1)}" y1="${cy - 4}" y2="${cy + 4}" stroke="#222"/>`);
        }
        parts.push(`<text x="${W - valueW}" y="${cy + 4}" font-size="12">${r.ratio.toFixed(2)}× · ${esc(num(r.value, r.unit))} ${esc(r.unit)}</text>`);
      } else {
        parts.push(`<text x="${labelW + 4}" y="${cy + 4}" font-size="12" fill="#b00">${Number.isFinite(r.value) ? 'no baseline' : r.note?.startsWith('not measured') ? 'not measured yet' : 'failed'}</text>`);
      }
      y += rowH;
    }
    parts.push(`<line x1="${x(1).toFixed(1)}" x2="${x(1).toFixed(1)}" y1="${top}" y2="${y}" stroke="#000" stroke-width="1.5"/>`);
    const t = targetRatio(rows);
    if (t !== null) {
      parts.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${top}" y2="${y}" stroke="#c62828" stroke-width="1.2" stroke-dasharray="4 3"/>`);
      parts.push(`<text x="${x(t).toFixed(1)}" y="${y + 11}" font-size="10" fill="#c62828" text-anchor="middle">target ${t}×</text>`);
      y += 10;
    }
    y += 6;
  }
  y += 20;
  parts.push(`<text x="10" y="${y - 6}" font-size="10" fill="#555">grey: baseline · blue: case · red: target missed · whiskers: min–max of the runs · ${esc(rep.command)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}
