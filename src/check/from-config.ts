// Maps the keepalived.conf parser's model (src/config/keepalived/model.ts) onto the checker,
// runner and notifier options. Pure: model in, options and problems out. Ids are positional
// (virtual server = its index in the config, real server = its index in its virtual server), which
// the daemon may replace by its own stable ids (dest-table slots) before building the runner.
//
// What the model keeps as raw settings is read here: http_protocol, enable_sni, sni_name
// (HTTP_GET/SSL_GET), payload, require_reply, min/max_reply_length (UDP_CHECK), user (MISC_CHECK).
// Not supported (reported as problems, the checker is left out, as keepalived drops a checker it
// cannot run): FILE_CHECK, BFD_CHECK, HTTP regex, SSL_GET's SSL { } client certificate block.
import type { Checker as ConfigChecker, KeepalivedConfig, ConfigScript, VirtualServer as ConfigVs } from '../config/keepalived/model';
import type { ScriptGlobals } from '../notify/script';
import type { SmtpAlertGlobals } from '../notify/smtp';
import type { CheckerOptions, DnsQueryType, ScriptSpec, VirtualServerOptions } from './types';
import { parseHexString } from './types';
import { DNS_TYPES } from './dns';

export interface CheckConfig {
  virtualServers: VirtualServerOptions[];
  scripts: ScriptGlobals;
  /** Present when smtp_server and notification_email are both configured. */
  smtp?: SmtpAlertGlobals;
  /** global smtp_alert / smtp_alert_checker. */
  smtpAlertDefault?: boolean;
  /** "file:line: what" for every checker or setting that could not be mapped. */
  problems: string[];
}

function script(s: ConfigScript | undefined): ScriptSpec | undefined {
  return s ? { command: s.command, argv: s.argv, user: s.user, group: s.group } : undefined;
}

function raw(c: ConfigChecker, keyword: string): string[] | undefined {
  return c.other.find((o) => o.keyword === keyword)?.args;
}

function vsAddress(vs: ConfigVs): { address: string; port: number } {
  switch (vs.key.kind) {
    case 'ip':
      return { address: vs.key.address.text, port: vs.key.port };
    case 'fwmark':
      return { address: `FWM ${vs.key.mark}`, port: 0 };
    case 'group':
      return { address: `group ${vs.key.name}`, port: 0 };
  }
}

/** One config checker → zero or more checker options (SMTP_CHECK host{} blocks give one each). */
function mapChecker(c: ConfigChecker, where: string, problems: string[]): CheckerOptions[] {
  const at = `${c.loc.file}:${c.loc.line}`;
  const sched = {
    delayLoop: c.delayLoop,
    retry: c.retry,
    delayBeforeRetry: c.delayBeforeRetry,
    warmup: c.warmup,
    alpha: c.alpha,
    loc: at,
  };
  const conn = {
    connectIp: c.connectIp?.text,
    connectPort: c.connectPort,
    bindTo: c.bindto?.text,
    bindPort: c.bindPort,
    connectTimeout: c.connectTimeout,
  };
  switch (c.type) {
    case 'TCP_CHECK':
      return [{ kind: 'TCP_CHECK', ...sched, ...conn }];
    case 'PING_CHECK':
      return [{ kind: 'PING_CHECK', ...sched, ...conn }];
    case 'HTTP_GET':
    case 'SSL_GET': {
      const urls = c.urls.filter((u) => u.path !== undefined);
      if (urls.length === 0) {
        problems.push(`${at}: ${where} ${c.type} has no url with a path - checker ignored`);
        return [];
      }
      if (urls.some((u) => u.regex !== undefined)) problems.push(`${at}: ${where} ${c.type} url regex is not supported - regex ignored`);
      const proto = raw(c, 'http_protocol')?.[0];
      return [
        {
          kind: c.type,
          ...sched,
          ...conn,
          virtualhost: c.virtualhost,
          httpProtocol: proto === '1.1' || proto === '1.0C' || proto === '1.0' ? proto : undefined,
          enableSni: raw(c, 'enable_sni') !== undefined,
          sniName: raw(c, 'sni_name')?.[0],
          url: urls.map((u) => ({
            path: u.path!,
            digest: u.digest,
            statusCode: u.statusCodes.length ? u.statusCodes : undefined,
            virtualhost: u.virtualhost,
          })),
        },
      ];
    }
    case 'MISC_CHECK': {
      if (!c.miscPath) {
        problems.push(`${at}: ${where} MISC_CHECK has no misc_path - checker ignored`);
        return [];
      }
      const user = raw(c, 'user');
      return [
        {
          kind: 'MISC_CHECK',
          ...sched,
          miscPath: c.miscPath.command,
          miscArgv: c.miscPath.argv,
          miscTimeout: c.miscTimeout,
          miscDynamic: c.miscDynamic,
          user: user?.[0] ?? c.miscPath.user,
          group: user?.[1] ?? c.miscPath.group,
        },
      ];
    }
    case 'SMTP_CHECK': {
      const base = { kind: 'SMTP_CHECK' as const, ...sched, ...conn, heloName: c.heloName };
      if (c.hosts.length === 0) return [base];
      return c.hosts.map((h) => ({
        ...base,
        connectIp: h.connectIp?.text ?? base.connectIp,
        connectPort: h.connectPort ?? base.connectPort,
        bindTo: h.bindto?.text ?? base.bindTo,
        bindPort: h.bindPort ?? base.bindPort,
        connectTimeout: h.connectTimeout ?? base.connectTimeout,
      }));
    }
    case 'DNS_CHECK': {
      const type = (c.dnsType ?? 'SOA').toUpperCase();
      if (!(type in DNS_TYPES)) {
        problems.push(`${at}: ${where} DNS_CHECK type '${c.dnsType}' is not one of ${Object.keys(DNS_TYPES).join('|')} - checker ignored`);
        return [];
      }
      return [{ kind: 'DNS_CHECK', ...sched, ...conn, type: type as DnsQueryType, name: c.dnsName }];
    }
    case 'UDP_CHECK': {
      try {
        const payload = raw(c, 'payload');
        const reply = raw(c, 'require_reply');
        const min = raw(c, 'min_reply_length')?.[0];
        const max = raw(c, 'max_reply_length')?.[0];
        return [
          {
            kind: 'UDP_CHECK',
            ...sched,
            ...conn,
            payload: payload ? parseHexString(payload.join(' ')).bytes : undefined,
            requireReply: reply !== undefined,
            expectedReply: reply && reply.length ? parseHexString(reply.join(' '), true) : undefined,
            minReplyLength: min !== undefined ? Number(min) : undefined,
            maxReplyLength: max !== undefined ? Number(max) : undefined,
          },
        ];
      } catch (err) {
        problems.push(`${at}: ${where} UDP_CHECK: ${(err as Error).message} - checker ignored`);
        return [];
      }
    }
    case 'FILE_CHECK':
    case 'BFD_CHECK':
      problems.push(`${at}: ${where} ${c.type} is not supported by uvs - checker ignored`);
      return [];
  }
}

export function checkConfigFromModel(model: KeepalivedConfig): CheckConfig {
  const problems: string[] = [];
  const g = model.global;
  const virtualServers = model.virtualServers.map((vs, vsIndex): VirtualServerOptions => {
    const { address, port } = vsAddress(vs);
    return {
      id: vsIndex,
      address,
      port,
      protocol: vs.protocol,
      delayLoop: vs.delayLoop,
      retry: vs.retry,
      delayBeforeRetry: vs.delayBeforeRetry,
      warmup: vs.warmup,
      alpha: vs.alpha,
      omega: vs.omega,
      quorum: vs.quorum,
      hysteresis: vs.hysteresis,
      quorumUp: script(vs.quorumUp),
      quorumDown: script(vs.quorumDown),
      sorryServer: vs.sorryServer ? { address: vs.sorryServer.address.text, port: vs.sorryServer.port ?? port, inhibit: vs.sorryServerInhibit } : undefined,
      smtpAlert: vs.smtpAlert,
      virtualhost: vs.virtualhost,
      connectTimeout: vs.connectTimeout,
      realServers: vs.realServers.map((rs, rsIndex) => {
        const rsPort = rs.port ?? port;
        const where = `real_server ${rs.address.text}:${rsPort}`;
        return {
          id: rsIndex,
          address: rs.address.text,
          port: rsPort,
          weight: rs.weight,
          inhibitOnFailure: rs.inhibitOnFailure,
          notifyUp: script(rs.notifyUp),
          notifyDown: script(rs.notifyDown),
          smtpAlert: rs.smtpAlert,
          checkers: rs.checkers.flatMap((c) => mapChecker(c, where, problems)),
        };
      }),
    };
  });
  const smtp: SmtpAlertGlobals | undefined =
    g.smtpServer && g.notificationEmail.length
      ? {
          smtpServer: { host: g.smtpServer.host, port: g.smtpServer.port },
          notificationEmail: g.notificationEmail,
          notificationEmailFrom: g.notificationEmailFrom,
          smtpHeloName: g.smtpHeloName,
          smtpConnectTimeout: g.smtpConnectTimeout,
          routerId: g.routerId,
        }
      : undefined;
  return {
    virtualServers,
    scripts: { scriptUser: g.scriptUser ? { user: g.scriptUser.user, group: g.scriptUser.group } : undefined, enableScriptSecurity: g.enableScriptSecurity },
    smtp,
    smtpAlertDefault: g.smtpAlertChecker ?? g.smtpAlert,
    problems,
  };
}
