// Shared pieces of the micro benchmarks: each bench/<area>.bench.ts exports
// `collect(opts): Promise<BenchRow[]>`, usually by handing its cases to runCases (benny).
import * as benny from 'benny';
import { loadNative, type NativeAddon } from '../src/native/addon';

export interface BenchRow {
  group: string;
  name: string;
  value: number;
  unit: string;
  /** The target this row is held against, in words ("<= 100 ns"), when the issue sets one. */
  target?: string;
  /** Whether the target is met, when there is one. */
  met?: boolean;
  /** End-to-end rows: value is the median of `samples`; min and max of the same samples. */
  samples?: number[];
  min?: number;
  max?: number;
  /** value / the value of the group's baseline row measured in the same run. */
  ratio?: number;
  /** This row is the baseline its group's ratios are taken against. */
  baseline?: boolean;
  /** Extra figures that explain the row (offered rate, CPU use, errors), in words. */
  note?: string;
  /** Request latency percentiles (medians over the runs), for request-rate rows. */
  latency?: { p50ms: number; p99ms: number };
  /** Further named cells of the row (end-to-end tables get one column per name used in the group). */
  columns?: Record<string, string>;
}

export interface BenchOptions {
  /** Short runs: prove the harness works, numbers are rough. */
  quick: boolean;
}

export interface BenchCase {
  group: string;
  name: string;
  /** One call of fn does `opsPerCall` operations (batching hides the call overhead). */
  opsPerCall?: number;
  fn: () => void;
  /** Target in ns per operation, when the issue sets one. */
  targetNs?: number;
}

/** Runs cases with benny and returns ns per operation for each. */
export async function runCases(suite: string, cases: BenchCase[], opts: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const benchOpts = opts.quick ? { minSamples: 3, maxTime: 0.3 } : { minSamples: 10, maxTime: 2 };
  await benny.suite(
    suite,
    ...cases.map((c) => benny.add(`${c.group} / ${c.name}`, c.fn, benchOpts)),
    benny.cycle(),
    benny.complete((summary) => {
      summary.results.forEach((r, i) => {
        const c = cases[i]!;
        const ns = 1e9 / (r.ops * (c.opsPerCall ?? 1));
        const row: BenchRow = { group: c.group, name: c.name, value: ns, unit: 'ns/op' };
        if (c.targetNs !== undefined) {
          row.target = `<= ${c.targetNs} ns`;
          row.met = ns <= c.targetNs;
        }
        rows.push(row);
      });
    }),
  );
  return rows;
}

/** The addon, or null when it is not built (benches leave their native rows out). */
export function tryNative(): NativeAddon | null {
  try {
    return loadNative();
  } catch {
    return null;
  }
}
