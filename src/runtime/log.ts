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
