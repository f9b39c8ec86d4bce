// The one logger of uvs. Every subsystem takes a Logger and says how important a line is; where
// lines go (console, syslog, a test's array) and which levels pass is decided once, by whoever
// builds the logger (the command-line entry points, a test).
//
// Levels are syslog's severities (RFC 5424 section 6.2.1), so a syslog or journald sink maps them
// one to one: error 3 (LOG_ERR), warn 4 (LOG_WARNING), notice 5, info 6, debug 7. keepalived logs
// state transitions and checker results at LOG_INFO, failures at LOG_ERR/LOG_WARNING, and its
// detail (-D) at LOG_DEBUG; uvs does the same.

export type LogLevel = 'error' | 'warn' | 'notice' | 'info' | 'debug';

/** syslog severity of each level. */
export const LOG_SEVERITY: Readonly<Record<LogLevel, number>> = { error: 3, warn: 4, notice: 5, info: 6, debug: 7 };

/** syslog facilities by name (keepalived's -S takes 0..7 for local0..local7). */
export const LOG_FACILITY: Readonly<Record<string, number>> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  notice(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

/** Where the lines that pass the level go. */
export type LogSink = (level: LogLevel, message: string) => void;

export interface LoggerOptions {
  sink: LogSink;
  /** The least important level that passes; default 'info' ('debug' with keepalived's -D). */
  level?: LogLevel;
  /** Put before every message, e.g. "vrrp: ". */
  prefix?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const max = LOG_SEVERITY[options.level ?? 'info'];
  const prefix = options.prefix ?? '';
  const emit = (level: LogLevel) => (message: string): void => {
    if (LOG_SEVERITY[level] <= max) options.sink(level, prefix + message);
  };
  return { error: emit('error'), warn: emit('warn'), notice: emit('notice'), info: emit('info'), debug: emit('debug') };
}

/** A logger that drops everything. */
export const nullLogger: Logger = createLogger({ sink: () => {} , level: 'error' });

/** The same sink, with a prefix added to every message. */
export function prefixed(log: Logger, prefix: string): Logger {
  return {
    error: (m) => log.error(prefix + m),
    warn: (m) => log.warn(prefix + m),
    notice: (m) => log.notice(prefix + m),
    info: (m) => log.info(prefix + m),
    debug: (m) => log.debug(prefix + m),
  };
}

/** A logger that keeps every line as "level: message" (tests, and the VRRP thread's relay). */
export function memoryLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ sink: (level, message) => lines.push(`${level}: ${message}`), level: 'debug' });
  return Object.assign(logger, { lines });
}

/**
 * Console output: errors and warnings to stderr (with the program's name, as before), the rest to
 * stdout when `console` is on (uvsd -l), each with an ISO timestamp when `timestamps` is on.
 */
export function consoleSink(program: string, options: { console: boolean; timestamps?: boolean }): LogSink {
  return (level, message) => {
    const stamp = options.timestamps === true ? `${new Date().toISOString()} ` : '';
    if (level === 'error' || level === 'warn') process.stderr.write(`${stamp}${program}: ${message}\n`);
    else if (options.console) process.stdout.write(`${stamp}${message}\n`);
  };
}

/** A logger that pushes each message into `lines`, errors and warnings prefixed with `errorMark` (tests). */
export function linesLogger(lines: string[], errorMark = ''): Logger {
  return createLogger({ sink: (level, message) => lines.push(level === 'error' || level === 'warn' ? errorMark + message : message), level: 'debug' });
}

/** Sends one datagram to a unix socket: true when sent, false when it would block; throws when
 *  nobody listens. The native addon's unixDgramSend; injected, because this layer loads nothing. */
export type DatagramSend = (path: string, data: Uint8Array) => boolean;

/** keepalived 2.2's syslog idents for its VRRP and checker processes: a message that starts with
 *  one of them ("Keepalived_vrrp: (VI_1) Entering MASTER STATE") goes to syslog under that ident,
 *  so `journalctl -t Keepalived_vrrp` and rsyslog's programname filters keep matching. */
const KEEPALIVED_IDENT = /^(Keepalived_vrrp|Keepalived_healthcheckers): /;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** One syslog line as glibc's syslog(3) sends it to /dev/log (RFC 3164 section 4.1:
 *  `<PRI>Mmm dd hh:mm:ss TAG[pid]: MSG`, PRI = facility * 8 + severity, local time). */
export function syslogLine(facility: number, level: LogLevel, ident: string, pid: number, message: string, now: Date = new Date()): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${MONTHS[now.getMonth()]} ${String(now.getDate()).padStart(2, ' ')} ${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}`;
  const m = KEEPALIVED_IDENT.exec(message);
  const tag = m ? m[1] : ident;
  const text = m ? message.slice(m[0].length) : message;
  return `<${facility * 8 + LOG_SEVERITY[level]}>${stamp} ${tag}[${pid}]: ${text}`;
}

export interface SyslogSinkOptions {
  /** The syslog socket: /dev/log. */
  path: string;
  /** Facility number (LOG_FACILITY): keepalived's default is daemon (3), -S changes it. */
  facility: number;
  ident: string;
  send: DatagramSend;
  /** Where a line goes when syslog does not take it (nobody listens, or it would block), with
   *  the reason: errors and warnings must not be lost. */
  fallback: (level: LogLevel, message: string, why: string) => void;
  pid?: number;
}

/**
 * syslog through /dev/log, as keepalived logs by default. A line syslog does not take goes to
 * the fallback with the reason.
 */
export function syslogSink(options: SyslogSinkOptions): LogSink {
  const pid = options.pid ?? process.pid;
  return (level, message) => {
    const line = Buffer.from(syslogLine(options.facility, level, options.ident, pid, message));
    let why: string;
    try {
      if (options.send(options.path, line)) return;
      why = `${options.path} is full`;
    } catch (err) {
      why = (err as Error).message;
    }
    options.fallback(level, message, why);
  };
}

/**
 * stderr for systemd's journal: each line starts with `<N>`, N the syslog severity, which
 * journald reads as the line's priority (sd-daemon(3), "SD_ERR" etc.); the journal adds the time,
 * so there is no timestamp.
 */
export function journalSink(write: (text: string) => void = (t) => process.stderr.write(t)): LogSink {
  return (level, message) => write(`<${LOG_SEVERITY[level]}>${message}\n`);
}

/**
 * Whether stderr is connected to the journal (systemd.exec(5), $JOURNAL_STREAM: "DEVICE:INODE"
 * of the stream; compared with stderr's own, so a child that inherited the variable but not the
 * stream does not think so). `stat` is fstat(2) of fd 2.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv, stat: { dev: number; ino: number } | null): boolean {
  const v = env['JOURNAL_STREAM'];
  if (!v || !stat) return false;
  const m = /^(\d+):(\d+)$/.exec(v);
  return m !== null && Number(m[1]) === stat.dev && Number(m[2]) === stat.ino;
}
