// The interface every health checker implements, and the small helpers they share (the message
// trail, timeouts tied to an AbortSignal, resolving connect_ip/connect_port against the real
// server). A check never throws: every failure, timeout or abort is a result with ok=false and a
// trail saying what happened, because the runner must keep going whatever the network does.
import { performance } from 'node:perf_hooks';
import { inspect } from 'node:util';
import type { CheckerKind, ConnectionOptions } from './types';
import { CHECK_DEFAULTS } from './types';

/** What a checker checks: the real server's address and port (the defaults of connect_ip/port). */
export interface CheckTarget {
  address: string;
  port: number;
}

export interface CheckResult {
  ok: boolean;
  /** Human-readable steps, oldest first: "connect 127.0.0.1:80", "status 200 accepted", ... */
  trail: string[];
  /** MISC_CHECK misc_dynamic: the weight the script asked for (exit status - 2); else undefined. */
  dynamicWeight?: number;
  /** Time the check took, in milliseconds. */
  elapsedMs: number;
}

export interface Checker {
  readonly kind: CheckerKind;
  /** Runs one check. Never rejects; an abort of `signal` ends it promptly with ok=false. */
  check(target: CheckTarget, signal: AbortSignal): Promise<CheckResult>;
}

/** Accumulates the trail of one check and builds the result. */
export class Trail {
  readonly steps: string[] = [];
  private readonly started = performance.now();

  add(step: string): this {
    this.steps.push(step);
    return this;
  }

  ok(step?: string): CheckResult {
    if (step) this.steps.push(step);
    return { ok: true, trail: this.steps, elapsedMs: performance.now() - this.started };
  }

  fail(step: string): CheckResult {
    this.steps.push(step);
    return { ok: false, trail: this.steps, elapsedMs: performance.now() - this.started };
  }
}

/** Where a connection-based check connects: connect_ip/connect_port override the real server. */
export function endpoint(options: ConnectionOptions, target: CheckTarget): CheckTarget {
  return { address: options.connectIp ?? target.address, port: options.connectPort ?? target.port };
}

/** connect_timeout in milliseconds (keepalived default 5 s). */
export function connectTimeoutMs(options: ConnectionOptions): number {
  return Math.round((options.connectTimeout ?? CHECK_DEFAULTS.connectTimeout) * 1000);
}

/** "[10.0.0.1]:80", keepalived's FMT_RS / FMT_VS spelling of an address and port. */
export function formatEndpoint(address: string, port: number): string {
  return `[${address}]:${port}`;
}

/**
 * An AbortSignal that fires when `parent` aborts or after `ms`, whichever comes first, with a
 * reason saying which. `dispose` clears the timer so nothing outlives the check.
 */
export function deadline(parent: AbortSignal, ms: number, what: string): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onParent = (): void => controller.abort(new Error('check aborted'));
  if (parent.aborted) onParent();
  else parent.addEventListener('abort', onParent, { once: true });
  const timer = setTimeout(() => controller.abort(new Error(`${what} timed out after ${ms} ms`)), ms);
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onParent);
    },
  };
}

/** The reason text of an aborted signal. */
export function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r === undefined || r === null) return 'aborted';
  return r instanceof Error ? r.message : typeof r === 'string' ? r : inspect(r);
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
