// The health-check service as the daemon uses it: from the parsed keepalived.conf to a running
// CheckRunner with its Notifier (scripts + SMTP), one callback for the pools the data plane must
// apply, reload by reconfiguring, and stop with keepalived's omega semantics.
//
//   const health = HealthService.fromModel(model, { onPool: (vsId, dests) => ..., log });
//   health.start();
//   ...SIGHUP: health.reload(newModel)   // throws, old config still running, if the new one is bad
//   ...SIGTERM: await health.stop()
import type { KeepalivedConfig } from '../config/keepalived/model';
import { Notifier } from './notifier';
import { ScriptRunner } from '../notify/script';
import { SmtpAlerter } from '../notify/smtp';
import type { Clock } from '../runtime/clock';
import type { CheckConfig } from './from-config';
import { checkConfigFromModel } from './from-config';
import type { CheckEvent, PoolDest } from './runner';
import { CheckRunner } from './runner';
import type { Logger } from '../runtime/log';

export interface HealthServiceOptions {
  /** The destinations virtual server `vsId` must have now (apply by diffing). */
  onPool: (vsId: number, dests: PoolDest[]) => void;
  /** Every runner event, for logs and status (optional). */
  onEvent?: (e: CheckEvent) => void;
  log?: Logger;
  clock?: Clock;
  /** Bound on notify scripts' run time (ms). */
  scriptTimeoutMs?: number;
}

export class HealthService {
  private runner: CheckRunner;
  private notifier: Notifier;
  /** Notifiers replaced by reloads, awaited on stop so no notification is cut short. */
  private readonly previousNotifiers: Notifier[] = [];
  private scripts: ScriptRunner;
  private smtp: SmtpAlerter | undefined;

  private constructor(
    private config: CheckConfig,
    private readonly options: HealthServiceOptions,
  ) {
    for (const p of config.problems) options.log?.warn(p);
    this.scripts = new ScriptRunner(config.scripts);
    this.smtp = config.smtp ? new SmtpAlerter(config.smtp) : undefined;
    this.runner = new CheckRunner(config.virtualServers, { clock: options.clock, checkerContext: { scripts: this.scripts } });
    this.notifier = this.makeNotifier(config);
    this.runner.on('event', (e) => this.dispatch(e));
  }

  static fromModel(model: KeepalivedConfig, options: HealthServiceOptions): HealthService {
    return new HealthService(checkConfigFromModel(model), options);
  }

  static fromConfig(config: CheckConfig, options: HealthServiceOptions): HealthService {
    return new HealthService(config, options);
  }

  private makeNotifier(config: CheckConfig, scripts = this.scripts, smtp = this.smtp): Notifier {
    return new Notifier(config.virtualServers, {
      scripts,
      smtp,
      smtpAlertDefault: config.smtpAlertDefault,
      scriptTimeoutMs: this.options.scriptTimeoutMs,
      log: this.options.log,
    });
  }

  private dispatch(e: CheckEvent): void {
    if (e.type === 'pool') this.options.onPool(e.vs.id, e.dests);
    this.notifier.handle(e);
    this.options.onEvent?.(e);
  }

  start(): void {
    this.runner.start();
  }

  /**
   * Applies a new model, script_user / enable_script_security and the SMTP settings included (a
   * change to them builds a new script runner or mailer; checkers whose scripts it prepared are
   * rebuilt with it). Throws before changing anything when a checker of the new model cannot be
   * built.
   */
  reload(model: KeepalivedConfig): void {
    this.reloadConfig(checkConfigFromModel(model));
  }

  /** Throws, as reloadConfig would, when a checker of `config` cannot be built; changes nothing
   *  (the daemon checks every subsystem's part of a new file before it applies any). */
  validate(config: CheckConfig): void {
    const scripts = this.scriptsFor(config);
    void new CheckRunner(config.virtualServers, { clock: this.options.clock, checkerContext: { scripts } });
    this.makeNotifier(config, scripts, undefined);
  }

  /** The script runner for `config`: the running one while its settings are the same. Throws
   *  (a script_user that does not exist) before anything changes. */
  private scriptsFor(config: CheckConfig): ScriptRunner {
    return sameSettings(config.scripts, this.config.scripts) ? this.scripts : new ScriptRunner(config.scripts);
  }

  /** `reload` for a configuration already mapped (the daemon gives real servers stable ids). */
  reloadConfig(next: CheckConfig): void {
    for (const p of next.problems) this.options.log?.warn(p);
    const scripts = this.scriptsFor(next);
    const smtpChanged = !sameSettings(next.smtp, this.config.smtp);
    const smtp = smtpChanged ? (next.smtp ? new SmtpAlerter(next.smtp) : undefined) : this.smtp;
    const notifier = this.makeNotifier(next, scripts, smtp);
    try {
      this.runner.reconfigure(next.virtualServers, scripts === this.scripts ? undefined : { scripts });
    } catch (err) {
      if (smtpChanged) smtp?.close();
      throw err;
    }
    const previous = this.notifier;
    this.previousNotifiers.push(previous);
    if (smtpChanged && this.smtp) {
      // The old mailer ends once the notifications it carries are done.
      const old = this.smtp;
      void previous.idle().then(() => old.close());
    }
    this.scripts = scripts;
    this.smtp = smtp;
    this.notifier = notifier;
    this.config = next;
  }

  status(): ReturnType<CheckRunner['status']> {
    return this.runner.status();
  }

  /** The destinations virtual server `vsId` should have now (throws for an unknown id). */
  pool(vsId: number): PoolDest[] {
    return this.runner.pool(vsId);
  }

  /** Stops checks (omega notifications run), waits for notifications, closes the SMTP transport. */
  async stop(): Promise<void> {
    await this.runner.stop();
    for (const n of this.previousNotifiers) await n.idle();
    await this.notifier.idle();
    this.smtp?.close();
  }

  get checkConfig(): CheckConfig {
    return this.config;
  }
}

function sameSettings(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
