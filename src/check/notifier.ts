// Turns the check runner's events into what keepalived does for them: a real server's
// notify_up / notify_down script (no extra arguments), a virtual server's quorum_up /
// quorum_down script, and an SMTP alert when smtp_alert is on for the real server (default
// yes) or the virtual server (default no). Scripts are prepared (split + security-checked) once,
// when the notifier is built, so a refused script is reported at start, as keepalived reports
// it at config load, and never runs. The checkers' alert texts (alertForEvent) live here too; the
// mail transport and VRRP's texts are in src/notify/smtp.ts, which knows nothing of the checkers.
import type { CheckEvent, CheckRunner } from './runner';
import type { CheckerKind, RealServerOptions, ScriptSpec, VirtualServerOptions } from './types';
import { formatEndpoint } from './checker';
import type { PreparedScript, ScriptOutcome, ScriptRunner } from '../notify/script';
import { ScriptError } from '../notify/script';
import type { Alert, SendOutcome, SmtpAlerter } from '../notify/smtp';
import type { Logger } from '../runtime/log';

export interface NotifierOptions {
  scripts: ScriptRunner;
  /** Absent when smtp_server / notification_email are not configured. */
  smtp?: SmtpAlerter;
  /** Bound on each notify script's run time (keepalived does not wait on them; we bound them). */
  scriptTimeoutMs?: number;
  /** global smtp_alert / smtp_alert_checker: the default for real and virtual servers when set. */
  smtpAlertDefault?: boolean;
  /** Where problems and results go; default nothing. */
  log?: Logger;
}

export interface NotifyRecord {
  event: CheckEvent['type'];
  script?: { command: string; outcome: ScriptOutcome };
  mail?: { subject: string; outcome: SendOutcome };
}

export class Notifier {
  private readonly prepared = new Map<string, PreparedScript>();
  private readonly pending = new Set<Promise<void>>();
  /** Problems found while preparing scripts (refused by security, not found). */
  readonly problems: string[] = [];

  constructor(
    virtualServers: readonly VirtualServerOptions[],
    private readonly options: NotifierOptions,
    /** Called after each notification completes, for tests and logs. */
    private readonly onRecord?: (r: NotifyRecord) => void,
  ) {
    for (const vs of virtualServers) {
      this.prepare(`vs${vs.id}:up`, vs.quorumUp);
      this.prepare(`vs${vs.id}:down`, vs.quorumDown);
      for (const rs of vs.realServers) {
        this.prepare(`rs${vs.id}/${rs.id}:up`, rs.notifyUp);
        this.prepare(`rs${vs.id}/${rs.id}:down`, rs.notifyDown);
      }
    }
  }

  private prepare(key: string, spec: ScriptSpec | undefined): void {
    if (spec === undefined) return;
    const command = spec.command;
    try {
      const p = this.options.scripts.prepare(spec);
      for (const w of p.warnings) this.options.log?.warn(w);
      this.prepared.set(key, p);
    } catch (err) {
      const msg = err instanceof ScriptError ? err.message : `script "${command}": ${(err as Error).message}`;
      this.problems.push(msg);
      this.options.log?.error(msg);
    }
  }

  /** Subscribes to a runner. */
  attach(runner: CheckRunner): void {
    runner.on('event', (e) => this.handle(e));
  }

  /** Handles one event; the work runs in the background (see `idle`). */
  handle(e: CheckEvent): void {
    const job = this.process(e).catch((err: Error) => this.options.log?.error(`notifier: ${e.type}: ${err.message}`));
    this.pending.add(job);
    void job.finally(() => this.pending.delete(job));
  }

  /** Resolves when every notification started so far has finished. */
  async idle(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  private rsAlert(rs: RealServerOptions): boolean {
    return rs.smtpAlert ?? this.options.smtpAlertDefault ?? true;
  }

  private vsAlert(vs: VirtualServerOptions): boolean {
    return vs.smtpAlert ?? this.options.smtpAlertDefault ?? false;
  }

  private async process(e: CheckEvent): Promise<void> {
    let key: string;
    let mail: boolean;
    if (e.type === 'rs-up' || e.type === 'rs-down') {
      key = `rs${e.vs.id}/${e.rs.id}:${e.type === 'rs-up' ? 'up' : 'down'}`;
      mail = this.rsAlert(e.rs);
    } else if (e.type === 'quorum-gained' || e.type === 'quorum-lost') {
      key = `vs${e.vs.id}:${e.type === 'quorum-gained' ? 'up' : 'down'}`;
      mail = this.vsAlert(e.vs);
    } else return;

    const record: NotifyRecord = { event: e.type };
    const script = this.prepared.get(key);
    const jobs: Array<Promise<void>> = [];
    if (script)
      jobs.push(
        this.options.scripts.run(script, [], this.options.scriptTimeoutMs ?? 10_000).then((outcome) => {
          record.script = { command: script.command, outcome };
          if (outcome.spawnError || outcome.timedOut || outcome.exitCode !== 0)
            this.options.log?.warn(`notify script "${script.command}": ${outcome.spawnError ?? (outcome.timedOut ? 'timed out' : `exit ${outcome.exitCode ?? outcome.signal}`)}`);
        }),
      );
    const smtp = this.options.smtp;
    if (mail && smtp) {
      const alert = alertForEvent(e, smtp.routerId);
      if (alert)
        jobs.push(
          smtp.send(alert).then((outcome) => {
            record.mail = { subject: alert.subject, outcome };
            if (!outcome.ok) this.options.log?.warn(outcome.message);
          }),
        );
    }
    await Promise.all(jobs);
    if (record.script || record.mail) this.onRecord?.(record);
  }
}

const CHECK_LABEL: Record<CheckerKind, string> = {
  TCP_CHECK: 'TCP CHECK',
  HTTP_GET: 'HTTP_GET CHECK',
  SSL_GET: 'SSL_GET CHECK',
  MISC_CHECK: 'MISC CHECK',
  SMTP_CHECK: 'SMTP CHECK',
  DNS_CHECK: 'DNS CHECK',
  UDP_CHECK: 'UDP CHECK',
  PING_CHECK: 'PING CHECK',
};

/**
 * The alert keepalived would send for a runner event, or null when the event sends none
 * (keepalived mails real-server transitions, quorum changes and shutdown under omega).
 */
export function alertForEvent(e: CheckEvent, routerId: string): Alert | null {
  switch (e.type) {
    case 'rs-up':
    case 'rs-down': {
      if (e.type === 'rs-down' && e.initial) return null; // keepalived sends no mail for alpha's first failure
      const up = e.type === 'rs-up';
      const subject = `[${routerId}] Realserver ${formatEndpoint(e.rs.address, e.rs.port)} of virtual server ${formatEndpoint(e.vs.address, e.vs.port)} - ${up ? 'UP' : 'DOWN'}`;
      const head =
        e.type === 'rs-down' && e.stopping ? '=> Shutting down <=' : `=> ${e.checker ? CHECK_LABEL[e.checker] : 'CHECK'} ${up ? 'succeed' : 'failed'} on service <=`;
      return { subject, body: [head, '', ...e.trail].join('\r\n') };
    }
    case 'quorum-gained':
    case 'quorum-lost': {
      const up = e.type === 'quorum-gained';
      const subject = `[${routerId}] Virtualserver ${formatEndpoint(e.vs.address, e.vs.port)} - ${up ? 'UP' : 'DOWN'}`;
      if (e.stopping) return { subject, body: '=> Shutting down <=' };
      const what = up ? (e.init ? 'Starting with quorum up' : 'Gained quorum') : e.init ? 'Starting with quorum down' : 'Lost quorum';
      const quorum = e.vs.quorum ?? 1;
      const hysteresis = e.vs.hysteresis ?? 0;
      return { subject, body: `=> ${what} ${quorum}+${hysteresis}=${e.threshold} <= ${e.weightSum} <=` };
    }
    default:
      return null;
  }
}
