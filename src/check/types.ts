import type { ScriptSpec } from '../notify/script';
// Typed options of keepalived's health checkers, virtual servers and real servers, as far as the
// checkers, the runner and the notifier need them. Names mirror keepalived.conf(5) keywords
// (camelCase) and every default is keepalived's, so an adapter can map the config parser's model
// onto these objects one keyword at a time. Times are in SECONDS, as in keepalived.conf (<TIMER>
// accepts fractions); the runner converts to milliseconds.
//
// Defaults quoted from keepalived.conf(5), "Virtual server(s)" section:
//   delay_loop 60, connect_timeout 5, retry 1 (DNS_CHECK 3, MISC_CHECK 0),
//   delay_before_retry 3 for HTTP_GET/SSL_GET, delay_loop for DNS_CHECK, 1 otherwise,
//   warmup = delay_loop (0 disables), quorum 1, hysteresis 0, weight 1,
//   HTTP status_code 200-299, DNS type SOA and name ".", UDP max_reply_length 255.

export type CheckerKind =
  | 'TCP_CHECK'
  | 'HTTP_GET'
  | 'SSL_GET'
  | 'MISC_CHECK'
  | 'SMTP_CHECK'
  | 'DNS_CHECK'
  | 'UDP_CHECK'
  | 'PING_CHECK';

/** Options every checker but MISC_CHECK has (keepalived's "generic connection options"). */
export interface ConnectionOptions {
  /** connect_ip: defaults to the real server's address. */
  connectIp?: string;
  /** connect_port: defaults to the real server's port. */
  connectPort?: number;
  /** bindto: source address of the check's socket. */
  bindTo?: string;
  /** bind_port: source port of the check's socket. */
  bindPort?: number;
  /** connect_timeout in seconds (default 5). */
  connectTimeout?: number;
}

/** Scheduling options shared by all checkers; unset ones inherit real server → virtual server. */
export interface SchedulingOptions {
  /** delay_loop: seconds between checks (default 60). */
  delayLoop?: number;
  /** retry (alias nb_get_retry): extra attempts before an alive server is declared down. */
  retry?: number;
  /** delay_before_retry: seconds between those attempts. */
  delayBeforeRetry?: number;
  /** warmup: the first check runs after a random delay up to this many seconds (default delay_loop). */
  warmup?: number;
  /** alpha: the checker starts as failed, so the server is down until its first success. */
  alpha?: boolean;
  /** log_all_failures: log every failed attempt, not only the transition. */
  logAllFailures?: boolean;
  /** "file:line" of the block in keepalived.conf, for messages; not compared on reload (a line
   *  moved by an edit above it is not a changed checker). */
  loc?: string;
}

export interface TcpCheckOptions extends ConnectionOptions, SchedulingOptions {
  kind: 'TCP_CHECK';
}

/** One `url { }` block of HTTP_GET / SSL_GET. */
export interface HttpUrlOptions {
  /** path: the request target, e.g. "/" or "/health". */
  path: string;
  /** digest: MD5 of the body as 32 lower-case hex digits (keepalived's genhash output). */
  digest?: string;
  /** status_code: single codes and ranges, e.g. [[200, 299], [503, 503]]; default [[200, 299]]. */
  statusCode?: Array<[number, number]>;
  /** virtualhost: Host header value (overrides the checker's, real server's and virtual server's). */
  virtualhost?: string;
}

export interface HttpGetOptions extends ConnectionOptions, SchedulingOptions {
  kind: 'HTTP_GET' | 'SSL_GET';
  url: HttpUrlOptions[];
  /** http_protocol: "1.0" (default), "1.0C" (1.0 + Connection: close) or "1.1". */
  httpProtocol?: '1.0' | '1.0C' | '1.1';
  /** virtualhost at checker level. */
  virtualhost?: string;
  /** SSL_GET enable_sni / sni_name. */
  enableSni?: boolean;
  sniName?: string;
}

export interface MiscCheckOptions extends SchedulingOptions {
  kind: 'MISC_CHECK';
  /** misc_path: the command line, split by keepalived's rules (see src/notify/command.ts). */
  miscPath: string;
  /** misc_path already split by the config parser (else `miscPath` is split by keepalived's rules). */
  miscArgv?: string[];
  /** misc_timeout in seconds; keepalived uses delay_loop when unset. */
  miscTimeout?: number;
  /** misc_dynamic: exit 0 = up, 1 = down, 2..255 = up with weight exit-2. */
  miscDynamic?: boolean;
  /** user: run the script as this user (and group). */
  user?: string;
  group?: string;
}

export interface SmtpCheckOptions extends ConnectionOptions, SchedulingOptions {
  kind: 'SMTP_CHECK';
  /** helo_name: default the local host name. */
  heloName?: string;
}

export type DnsQueryType = 'A' | 'NS' | 'CNAME' | 'SOA' | 'MX' | 'TXT' | 'AAAA';

export interface DnsCheckOptions extends ConnectionOptions, SchedulingOptions {
  kind: 'DNS_CHECK';
  /** type: default SOA. */
  type?: DnsQueryType;
  /** name: default "." (the root). */
  name?: string;
}

export interface UdpCheckOptions extends ConnectionOptions, SchedulingOptions {
  kind: 'UDP_CHECK';
  /** payload: bytes to send (keepalived: a HEX_STR; random bytes when unset). */
  payload?: Buffer;
  /** require_reply: a reply datagram must arrive. */
  requireReply?: boolean;
  /** require_reply HEX_STR: expected reply prefix; a null nibble mask entry means "X" (ignored). */
  expectedReply?: { bytes: Buffer; mask: Buffer };
  /** min_reply_length (default 0) / max_reply_length (default 255). */
  minReplyLength?: number;
  maxReplyLength?: number;
}

export interface PingCheckOptions extends ConnectionOptions, SchedulingOptions {
  kind: 'PING_CHECK';
}

export type CheckerOptions =
  | TcpCheckOptions
  | HttpGetOptions
  | MiscCheckOptions
  | SmtpCheckOptions
  | DnsCheckOptions
  | UdpCheckOptions
  | PingCheckOptions;

/** A script reference as keepalived stores notify_up / quorum_up / misc_path: command + user. */
/** A notify or MISC_CHECK script as the script runner takes it (src/notify/script.ts). */
export type { ScriptSpec } from '../notify/script';

export interface RealServerOptions extends SchedulingOptions {
  /** A stable id (the dest-table slot, or the parser's id): events carry it. */
  id: number;
  address: string;
  port: number;
  /** weight: default 1. */
  weight?: number;
  inhibitOnFailure?: boolean;
  notifyUp?: ScriptSpec;
  notifyDown?: ScriptSpec;
  /** smtp_alert: default yes for real servers (unless global smtp_alert/smtp_alert_checker set). */
  smtpAlert?: boolean;
  virtualhost?: string;
  connectTimeout?: number;
  checkers: CheckerOptions[];
}

export interface VirtualServerOptions extends SchedulingOptions {
  id: number;
  /** "10.0.0.1:80" style label used in messages, keepalived's FMT_VS ("[ip]:port"). */
  address: string;
  port: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  /** omega: on shutdown, run the real servers' notify_down and the quorum_down script. */
  omega?: boolean;
  /** quorum: minimum total weight of live servers (default 1). */
  quorum?: number;
  /** hysteresis: flap dampener around quorum (default 0). */
  hysteresis?: number;
  quorumUp?: ScriptSpec;
  quorumDown?: ScriptSpec;
  /** sorry_server: put in the pool (alone) while quorum is lost. */
  sorryServer?: { address: string; port: number; inhibit?: boolean };
  inhibitOnFailure?: boolean;
  /** smtp_alert on quorum transitions: default no. */
  smtpAlert?: boolean;
  virtualhost?: string;
  connectTimeout?: number;
  realServers: RealServerOptions[];
}

export const CHECK_DEFAULTS = {
  delayLoop: 60,
  connectTimeout: 5,
  retry: 1,
  retryDns: 3,
  retryMisc: 0,
  delayBeforeRetryHttp: 3,
  delayBeforeRetry: 1,
  weight: 1,
  quorum: 1,
  hysteresis: 0,
  dnsType: 'SOA' as DnsQueryType,
  dnsName: '.',
  udpMaxReplyLength: 255,
  /** keepalived's IPVS_WEIGHT_MAX is 65535 (IPVS's weight is a 32-bit int but ipvsadm caps it). */
  weightMax: 65535,
} as const;

/** keepalived's default retry for a checker kind (keepalived.conf(5): DNS 3, MISC 0, others 1). */
export function defaultRetry(kind: CheckerKind): number {
  if (kind === 'DNS_CHECK') return CHECK_DEFAULTS.retryDns;
  if (kind === 'MISC_CHECK') return CHECK_DEFAULTS.retryMisc;
  return CHECK_DEFAULTS.retry;
}

/** keepalived's default delay_before_retry for a kind: delay_loop for DNS, 3 s for HTTP/SSL, else 1 s. */
export function defaultDelayBeforeRetry(kind: CheckerKind, delayLoop: number): number {
  if (kind === 'DNS_CHECK') return delayLoop;
  if (kind === 'HTTP_GET' || kind === 'SSL_GET') return CHECK_DEFAULTS.delayBeforeRetryHttp;
  return CHECK_DEFAULTS.delayBeforeRetry;
}

/**
 * Parses a status_code list as keepalived accepts it ("200", "200-299 400-499 503") into ranges.
 * Throws with the offending token when it is not a code or range within 100..599.
 */
export function parseStatusCodes(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const token of text.trim().split(/\s+/)) {
    if (!token) continue;
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(token);
    if (!m) throw new Error(`status_code: "${token}" is not a code (e.g. 200) or range (e.g. 200-299)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 100 || hi > 599 || lo > hi) throw new Error(`status_code: "${token}" is outside 100-599 or reversed`);
    out.push([lo, hi]);
  }
  if (out.length === 0) throw new Error('status_code: no code given');
  return out;
}

/**
 * Parses keepalived's free-format HEX_STR (UDP_CHECK payload / require_reply): whitespace separates
 * groups, each group is read two digits per byte with an odd trailing digit as its own byte, so
 * "Ab12f 3 456" = AB 12 0F 03 45 06. X/x stands for an ignored nibble (returned in the mask as 0).
 */
export function parseHexString(text: string, allowWildcard = false): { bytes: Buffer; mask: Buffer } {
  const bytes: number[] = [];
  const mask: number[] = [];
  for (const group of text.trim().split(/\s+/)) {
    if (!group) continue;
    for (let i = 0; i < group.length; i += 2) {
      const pair = group.slice(i, i + 2);
      let value = 0;
      let m = 0;
      for (const ch of pair) {
        value <<= 4;
        m <<= 4;
        if (/[0-9a-fA-F]/.test(ch)) {
          value |= parseInt(ch, 16);
          m |= 0xf;
        } else if (allowWildcard && (ch === 'x' || ch === 'X')) {
          // ignored nibble: value 0, mask 0
        } else {
          throw new Error(`hex string: "${ch}" in "${group}" is not a hex digit${allowWildcard ? ' or X' : ''}`);
        }
      }
      bytes.push(value);
      mask.push(m);
    }
  }
  return { bytes: Buffer.from(bytes), mask: Buffer.from(mask) };
}
