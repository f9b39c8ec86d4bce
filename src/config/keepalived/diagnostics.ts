/**
 * Diagnostics produced while reading and checking a keepalived.conf.
 *
 * keepalived 2.2's `-t` exits non-zero (5, KEEPALIVED_EXIT_CONFIG_TEST) as soon as anything
 * was reported through its report_config_error(): that covers hard errors, but also messages it
 * words as warnings ("Unknown keyword", "WARNING - interface … doesn't exist", "no scheduler set").
 * So a diagnostic carries two things: how serious it reads to a human (`severity`) and whether
 * keepalived -t would count it against the config (`failsConfigTest`). Warnings that are uvs's own
 * (for example "IPv6 forwarding comes later") do not fail the test.
 */

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  /** Stable machine-readable code, e.g. 'unknown-keyword', 'no-such-interface'. */
  code: string;
  /** File the problem was found in ('' when it concerns the configuration as a whole). */
  file: string;
  /** 1-based line number in `file` (0 when not tied to a line). */
  line: number;
  message: string;
  /** True when `keepalived -t` reports the same thing and therefore exits non-zero. */
  failsConfigTest: boolean;
  /** Exit code keepalived -t uses for it when it differs from 5 (6 = script security violation). */
  exitCode?: number;
  /** keepalived -t stops reading at this problem, so its exit code wins over everything else. */
  aborts?: boolean;
  /** keepalived reports it (so -t fails) but runs on with a value it corrects ("clearing",
   *  "Ignoring", "resetting", an invalid setting left at its default): a start or reload does
   *  the same correction and only logs it (config-loader's `run`). */
  fixedUp?: boolean;
}

export interface Loc {
  file: string;
  line: number;
}

/** keepalived's exit codes for `-t` (keepalived/include/main.h, KEEPALIVED_EXIT_*). */
export const EXIT_OK = 0;
export const EXIT_CONFIG_TEST = 5;
export const EXIT_CONFIG_TEST_SECURITY = 6;
export const EXIT_NO_CONFIG = 7;

/** Collects diagnostics; one per parse or validation run. */
export class DiagnosticSink {
  readonly list: Diagnostic[] = [];

  error(loc: Loc | null, code: string, message: string): void {
    this.push('error', loc, code, message, true);
  }

  /** A warning that keepalived -t also reports (so the config test fails). */
  warnStrict(loc: Loc | null, code: string, message: string): void {
    this.push('warning', loc, code, message, true);
  }

  /** Reported by keepalived -t (which then fails) but corrected at run time: see Diagnostic.fixedUp. */
  fixup(loc: Loc | null, code: string, message: string): void {
    this.push('warning', loc, code, message, true);
    this.list[this.list.length - 1]!.fixedUp = true;
  }

  /** A warning of uvs's own that keepalived would not report. */
  note(loc: Loc | null, code: string, message: string): void {
    this.push('warning', loc, code, message, false);
  }

  push(severity: Severity, loc: Loc | null, code: string, message: string, failsConfigTest: boolean, exitCode?: number, aborts = false): void {
    const d: Diagnostic = { severity, code, file: loc ? loc.file : '', line: loc ? loc.line : 0, message, failsConfigTest };
    if (exitCode !== undefined) d.exitCode = exitCode;
    if (aborts) d.aborts = true;
    this.list.push(d);
  }
}

/** "file:line: severity: message", the form uvsd prints. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file ? (d.line > 0 ? `${d.file}:${d.line}: ` : `${d.file}: `) : '';
  return `${where}${d.severity}: ${d.message}`;
}

/**
 * The exit status `keepalived -t` would give for these diagnostics. Measured on keepalived 2.2.7:
 * a failed include check (6) and a missing interface (5) end the test at once; otherwise a script
 * security violation (6) wins over ordinary config errors (5); 0 when nothing counts.
 */
export function configTestExitCode(diagnostics: readonly Diagnostic[]): number {
  for (const d of diagnostics) if (d.failsConfigTest && d.aborts) return d.exitCode ?? EXIT_CONFIG_TEST;
  let code = EXIT_OK;
  for (const d of diagnostics) {
    if (!d.failsConfigTest) continue;
    const c = d.exitCode ?? EXIT_CONFIG_TEST;
    if (c > code) code = c;
  }
  return code;
}

