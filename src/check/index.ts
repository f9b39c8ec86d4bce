// One factory for all checkers, so the runner (and the daemon's adapter) need not know the files.
import type { Checker } from './checker';
import { DnsChecker } from './dns';
import { HttpChecker } from './http';
import { MiscChecker } from './misc';
import { PingChecker } from './ping';
import { SmtpChecker } from './smtp';
import { TcpChecker } from './tcp';
import { UdpChecker } from './udp';
import type { CheckerOptions } from './types';
import { CHECK_DEFAULTS } from './types';
import type { ScriptRunner } from '../notify/script';

export interface CheckerContext {
  /** Runs MISC_CHECK scripts under keepalived's script rules. */
  scripts: ScriptRunner;
  /** virtualhost inherited from the real server / virtual server (HTTP_GET, SSL_GET). */
  virtualhost?: string;
  /** Effective delay_loop in seconds (MISC_CHECK's default misc_timeout). */
  delayLoop?: number;
}

export function createChecker(options: CheckerOptions, ctx: CheckerContext): Checker {
  switch (options.kind) {
    case 'TCP_CHECK':
      return new TcpChecker(options);
    case 'HTTP_GET':
    case 'SSL_GET':
      return new HttpChecker(options, ctx.virtualhost);
    case 'MISC_CHECK':
      return new MiscChecker(options, ctx.scripts, ctx.delayLoop ?? CHECK_DEFAULTS.delayLoop);
    case 'SMTP_CHECK':
      return new SmtpChecker(options);
    case 'DNS_CHECK':
      return new DnsChecker(options);
    case 'UDP_CHECK':
      return new UdpChecker(options);
    case 'PING_CHECK':
      return new PingChecker(options);
  }
}


export type { Checker, CheckResult, CheckTarget } from './checker';
export * from './types';
