// SMTP_CHECK (keepalived's check_smtp.c): connect, expect the 220 greeting, send
// "HELO <helo_name>", expect 250, send "QUIT". Replies may be multi-line (RFC 5321 §4.2.1:
// "250-…" continues, "250 …" ends). helo_name defaults to the local host name.
import * as net from 'node:net';
import * as os from 'node:os';
import type { CheckTarget, CheckResult, Checker } from './checker';
import { Trail, abortReason, connectTimeoutMs, deadline, endpoint, errorText } from './checker';
import { connectTcp } from './tcp';
import type { SmtpCheckOptions } from './types';

/** Reads complete SMTP replies (the code of the last line) from a socket, in order. */
class ReplyReader {
  private buffer = '';
  private waiting: { resolve: (code: number) => void; reject: (e: Error) => void } | null = null;
  private readonly ready: number[] = [];
  private failure: Error | null = null;

  constructor(socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      this.buffer += text;
      let eol: number;
      while ((eol = this.buffer.indexOf('\r\n')) >= 0) {
        const line = this.buffer.slice(0, eol);
        this.buffer = this.buffer.slice(eol + 2);
        if (/^\d{3}-/.test(line)) continue;
        const m = /^(\d{3})(?: |$)/.exec(line);
        if (!m) {
          this.fail(new Error(`bad SMTP reply line ${JSON.stringify(line.slice(0, 80))}`));
          return;
        }
        this.push(Number(m[1]));
      }
      if (this.buffer.length > 4096) this.fail(new Error('SMTP reply line longer than 4096 bytes'));
    });
    socket.on('end', () => this.fail(new Error('connection closed by the server')));
    socket.on('error', (e) => this.fail(e));
  }

  private push(code: number): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w.resolve(code);
    } else this.ready.push(code);
  }

  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w.reject(err);
    }
  }

  next(): Promise<number> {
    const code = this.ready.shift();
    if (code !== undefined) return Promise.resolve(code);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }
}

export class SmtpChecker implements Checker {
  readonly kind = 'SMTP_CHECK' as const;

  constructor(readonly options: SmtpCheckOptions) {}

  async check(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const trail = new Trail();
    const to = endpoint(this.options, { address: target.address, port: this.options.connectPort ?? target.port });
    const stepMs = connectTimeoutMs(this.options);
    const helo = this.options.heloName ?? os.hostname();
    // keepalived re-arms connect_timeout at each step; the whole dialogue has 4 steps.
    const d = deadline(signal, stepMs * 4, 'SMTP dialogue');
    let socket: net.Socket | undefined;
    try {
      const c = deadline(d.signal, stepMs, 'connect');
      try {
        socket = await connectTcp(this.options, to, c.signal);
      } finally {
        c.dispose();
      }
      trail.add(`connected to ${to.address}:${to.port}`);
      const reader = new ReplyReader(socket);
      const onAbort = (): void => reader.fail(new Error(abortReason(d.signal)));
      d.signal.addEventListener('abort', onAbort, { once: true });
      socket.setTimeout(stepMs, () => reader.fail(new Error(`no reply for ${stepMs} ms`)));
      const banner = await reader.next();
      if (banner !== 220) return trail.fail(`greeting ${banner}, expected 220`);
      trail.add('greeting 220');
      socket.write(`HELO ${helo}\r\n`);
      const heloCode = await reader.next();
      if (heloCode !== 250) return trail.fail(`HELO ${helo} answered ${heloCode}, expected 250`);
      trail.add(`HELO ${helo}: 250`);
      socket.write('QUIT\r\n');
      d.signal.removeEventListener('abort', onAbort);
      return trail.ok('QUIT sent');
    } catch (err) {
      return trail.fail(`SMTP check failed: ${errorText(err)}`);
    } finally {
      socket?.end();
      socket?.destroy();
      d.dispose();
    }
  }
}
