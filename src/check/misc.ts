// MISC_CHECK (keepalived's check_misc.c): runs misc_path; exit 0 = up, anything else = down,
// killed at misc_timeout (default: delay_loop) = down. With misc_dynamic, exit 1 = down and
// 2..255 = up with the weight set to (exit status - 2) (keepalived.conf(5): "an exit status of 255
// would set weight to 253"). The script is split and security-checked once, at construction,
// through the notifier's ScriptRunner, so the same rules as notify scripts apply.
import type { CheckTarget, CheckResult, Checker } from './checker';
import { Trail } from './checker';
import type { MiscCheckOptions } from './types';
import { CHECK_DEFAULTS } from './types';
import type { PreparedScript, ScriptRunner } from '../notify/script';

export class MiscChecker implements Checker {
  readonly kind = 'MISC_CHECK' as const;
  private readonly script: PreparedScript;
  private readonly timeoutMs: number;

  /** @param delayLoop the effective delay_loop (seconds), misc_timeout's default. */
  constructor(
    readonly options: MiscCheckOptions,
    private readonly runner: ScriptRunner,
    delayLoop: number = CHECK_DEFAULTS.delayLoop,
  ) {
    this.script = runner.prepare({ command: options.miscPath, argv: options.miscArgv, user: options.user, group: options.group });
    this.timeoutMs = Math.round((options.miscTimeout ?? delayLoop) * 1000);
  }

  async check(_target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const trail = new Trail();
    trail.add(`run ${this.script.args.join(' ')}${this.script.useShell ? ' (via /bin/sh)' : ''} (timeout ${this.timeoutMs} ms)`);
    if (signal.aborted) return trail.fail('aborted before start');
    const outcome = await this.runner.run(this.script, [], this.timeoutMs);
    if (outcome.output.trim()) trail.add(`output: ${outcome.output.trim().slice(0, 200)}`);
    if (outcome.spawnError) return trail.fail(`cannot run: ${outcome.spawnError}`);
    if (outcome.timedOut) return trail.fail(`timed out after ${this.timeoutMs} ms, killed`);
    if (outcome.exitCode === null) return trail.fail(`killed by ${outcome.signal}`);
    const status = outcome.exitCode;
    if (status === 0) return trail.ok('exit 0');
    if (this.options.miscDynamic && status >= 2) {
      const result = trail.ok(`exit ${status}: up, weight ${status - 2}`);
      result.dynamicWeight = status - 2;
      return result;
    }
    return trail.fail(`exit ${status}`);
  }
}
