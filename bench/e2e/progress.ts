// The progress line of `npm run bench`: which case runs and how long is left. The plan is known up
// front (every step with its estimated seconds); the time left is the estimate of the steps not yet
// done, scaled by how the finished steps compared with their estimates. On a terminal it rewrites
// one line; elsewhere (CI logs) it prints one line per step.
import type { BenchRow } from '../lib';

export interface Step {
  label: string;
  seconds: number;
}

function fmt(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export class Progress {
  private done = 0;
  private estimatedDone = 0;
  private readonly start = Date.now();
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly steps: Step[]) {}

  get total(): number {
    return this.steps.reduce((s, x) => s + x.seconds, 0);
  }

  /** Announces the next step of the plan (labels must come in plan order). */
  begin(label: string): void {
    const idx = this.steps.findIndex((s, i) => i >= this.done && s.label === label);
    if (idx > this.done) {
      for (let i = this.done; i < idx; i++) this.estimatedDone += this.steps[i]!.seconds; // skipped steps
      this.done = idx;
    }
    const elapsed = (Date.now() - this.start) / 1000;
    const remainingEst = this.steps.slice(this.done).reduce((s, x) => s + x.seconds, 0);
    const pace = this.estimatedDone > 0 ? Math.min(3, Math.max(0.5, elapsed / this.estimatedDone)) : 1;
    const line = `[${String(this.done + 1).padStart(2)}/${this.steps.length}] ${label} — ${fmt(elapsed)} elapsed, ~${fmt(remainingEst * pace)} left`;
    if (this.tty) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(line + '\n');
    if (idx >= 0) {
      this.estimatedDone += this.steps[idx]!.seconds;
      this.done = idx + 1;
    }
  }

  /** A message that must not be overwritten by the progress line. */
  log(msg: string): void {
    process.stderr.write(this.tty ? `\r\x1b[K${msg}\n` : msg + '\n');
  }

  finish(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`bench: done in ${fmt((Date.now() - this.start) / 1000)}\n`);
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length & 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A row from repeated samples: median, min, max. */
export function sampledRow(group: string, name: string, unit: string, samples: number[], note?: string): BenchRow {
  const row: BenchRow = { group, name, unit, value: median(samples), samples, min: Math.min(...samples), max: Math.max(...samples) };
  if (note) row.note = note;
  return row;
}

/** Sets `ratio` on every row of the group against its baseline row. */
export function applyRatios(rows: BenchRow[], group: string, baselineName: string): void {
  const base = rows.find((r) => r.group === group && r.name === baselineName);
  if (!base) return;
  base.baseline = true;
  for (const r of rows) if (r.group === group && base.value > 0) r.ratio = r.value / base.value;
}
