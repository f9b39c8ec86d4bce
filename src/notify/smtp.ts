// smtp_alert: mails to notification_email through smtp_server, with keepalived's subjects and
// bodies (keepalived/core/smtp.c, check/ipwrapper.c, vrrp/vrrp.c), sent with nodemailer. The
// checkers' texts are built in src/check/notifier.ts (alertForEvent); VRRP's here (alertForVrrp).
//
// Subjects (router_id defaults to the host name):
//   [router_id] Realserver [10.0.0.2]:80 of virtual server [10.0.0.1]:80 - DOWN
//   [router_id] Virtualserver [10.0.0.1]:80 - UP
//   [router_id] VRRP Instance VI_1 - Entering MASTER state
//   [router_id] VRRP Group VG_1 - Entering BACKUP state
// Bodies: one line such as "=> TCP CHECK failed on service <=" (keepalived's), followed here by
// the check's message trail so the reader sees why. Headers as keepalived writes them: Date,
// From, Subject, X-Mailer: Keepalived, To. keepalived speaks plain SMTP (no STARTTLS, no AUTH),
// HELO smtp_helo_name (default the host name), one connection per alert, smtp_connect_timeout
// (default 30 s) bounding it.
import * as os from 'node:os';
import * as nodemailer from 'nodemailer';

export interface SmtpAlertGlobals {
  /** smtp_server host and port (default 25). */
  smtpServer: { host: string; port?: number };
  /** notification_email: recipients. */
  notificationEmail: string[];
  /** notification_email_from: default keepalived@<host name>. */
  notificationEmailFrom?: string;
  /** smtp_helo_name: default the host name. */
  smtpHeloName?: string;
  /** smtp_connect_timeout in seconds: default 30. */
  smtpConnectTimeout?: number;
  /** router_id: default the host name. */
  routerId?: string;
}

export interface Alert {
  subject: string;
  body: string;
}

export interface SendOutcome {
  ok: boolean;
  /** The server's final reply, or the error. */
  message: string;
}

/**
 * keepalived's VRRP alert texts (vrrp_notify.c: vrrp_smtp_notifier / vrrp_sync_smtp_notifier).
 * The caller sends one only when the state differs from the last one mailed, as keepalived does.
 */
export function alertForVrrp(routerId: string, kind: 'INSTANCE' | 'GROUP', name: string, state: 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP'): Alert {
  const what = kind === 'INSTANCE' ? 'Instance' : 'Group';
  const subject = `[${routerId}] VRRP ${what} ${name} - ${state === 'STOP' ? 'Stopping' : `Entering ${state} state`}`;
  let body: string;
  if (kind === 'GROUP') body = state === 'STOP' ? '=> All VRRP group instances are now stopping <=' : `=> All VRRP group instances are now in ${state} state <=`;
  else if (state === 'MASTER') body = '=> VRRP Instance is now owning VRRP VIPs <=';
  else if (state === 'STOP') body = '=> VRRP Instance stopping <=';
  else body = '=> VRRP Instance is no longer owning VRRP VIPs <=';
  return { subject, body };
}

export class SmtpAlerter {
  readonly routerId: string;
  private readonly from: string;
  private readonly transport: nodemailer.Transporter;

  constructor(readonly globals: SmtpAlertGlobals) {
    if (globals.notificationEmail.length === 0) throw new Error('smtp_alert: notification_email has no recipient');
    const host = os.hostname();
    this.routerId = globals.routerId ?? host;
    this.from = globals.notificationEmailFrom ?? `keepalived@${host}`;
    const timeoutMs = Math.round((globals.smtpConnectTimeout ?? 30) * 1000);
    this.transport = nodemailer.createTransport({
      host: globals.smtpServer.host,
      port: globals.smtpServer.port ?? 25,
      secure: false,
      ignoreTLS: true, // keepalived speaks plain SMTP
      name: globals.smtpHeloName ?? host,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
  }

  /** Sends one alert; never rejects (a mail server being down must not disturb the daemon). */
  async send(alert: Alert): Promise<SendOutcome> {
    try {
      const info = await this.transport.sendMail({
        from: this.from,
        to: this.globals.notificationEmail,
        subject: alert.subject,
        text: alert.body,
        headers: { 'X-Mailer': 'Keepalived' },
      });
      return { ok: true, message: String(info.response) };
    } catch (err) {
      return { ok: false, message: `SMTP alert to ${this.globals.smtpServer.host}:${this.globals.smtpServer.port ?? 25} failed: ${(err as Error).message}` };
    }
  }

  close(): void {
    this.transport.close();
  }
}
