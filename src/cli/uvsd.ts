#!/usr/bin/env node
// uvsd: the uvs daemon. Thin entry point: options, where log lines go, config test, pid files,
// start, systemd's readiness notification, signals.
//
// Where lines go (README.md, "Logging"), as keepalived: -l the console; otherwise syslog
// (/dev/log, facility daemon or -S) unless -G; under systemd (stderr is the journal's stream) or
// with --log-journal, stderr with <N> level prefixes instead of syslog, the same journal without
// the native addon. Errors and warnings always reach stderr when nothing else takes them.

import { existsSync, fstatSync, writeFileSync } from 'node:fs';
import { ConfigInvalidError, loadKeepalivedConfig } from '../control/config-loader';
import { Daemon } from '../control/daemon';
import { defaultConfigId } from '../config/keepalived/index';
import { consoleSink, createLogger, journalSink, stderrIsJournal, syslogSink } from '../runtime/log';
import type { DatagramSend, LogSink } from '../runtime/log';
import { SIGNUMS, UVSD_USAGE, UvsdUsageError, parseUvsdArgs } from '../control/uvsd-options';
import type { UvsdOptions } from '../control/uvsd-options';
import { loadNative } from '../native/addon';
import { sdNotifier } from '../runtime/sd-notify';
import { PidFileError, removePidFiles, writePidFiles } from '../runtime/pidfile';
import { uvsVersion } from '../runtime/version';
import { IPVS_VERSION } from '../control/daemon';
import { ipFacts } from '../control/vrrp';
import { vrrpFromKeepalived } from '../vrrp/from-keepalived';
import { VrrpConfigError, validateRuntimeConfig } from '../vrrp/config';
import { DUMP_SIGNALS, writeDump, type DumpKind } from '../control/dumps';

/** The syslog socket; UVS_SYSLOG_SOCKET moves it (tests listen on a socket of their own). */
const SYSLOG_SOCKET = process.env['UVS_SYSLOG_SOCKET'] ?? '/dev/log';

function fatal(message: string, status: number): never {
  process.stderr.write(`uvsd: ${message}\n`);
  process.exit(status);
}

/** The addon's datagram send, or one that explains why there is none (the addon is not built). */
function datagramSend(): DatagramSend {
  try {
    const addon = loadNative();
    return (path, data) => addon.unixDgramSend(path, data);
  } catch (err) {
    const why = (err as Error).message;
    return () => { throw new Error(why); };
  }
}

function stderrStat(): { dev: number; ino: number } | null {
  try {
    const s = fstatSync(2);
    return { dev: s.dev, ino: s.ino };
  } catch {
    return null;
  }
}

let syslogDown = false;

function logSink(options: UvsdOptions, send: DatagramSend): LogSink {
  const stderrOnly = consoleSink('uvsd', { console: false });
  if (options.logConsole) return consoleSink('uvsd', { console: true, timestamps: true });
  if (options.logJournal || (!process.stderr.isTTY && stderrIsJournal(process.env, stderrStat()))) return journalSink();
  if (options.noSyslog) return stderrOnly;
  return syslogSink({
    path: SYSLOG_SOCKET,
    facility: options.logFacility,
    ident: 'uvsd',
    send,
    fallback: (level, message, why) => {
      // Without a syslog daemon the info lines are lost, as keepalived's are; errors and
      // warnings go to stderr, and the first of them says why.
      if (level !== 'error' && level !== 'warn') return;
      if (!syslogDown) process.stderr.write(`uvsd: syslog ${SYSLOG_SOCKET}: ${why}; errors and warnings go to stderr\n`);
      syslogDown = true;
      stderrOnly(level, message);
    },
  });
}

function configTest(options: UvsdOptions): never {
  const out = (text: string): void => {
    if (options.configTestLog) writeFileSync(options.configTestLog, text, { flag: 'a' });
    else process.stderr.write(text);
  };
  if (!options.configFile) {
    process.stdout.write('uvsd: --no-config: the empty configuration is valid\n');
    process.exit(0);
  }
  if (!existsSync(options.configFile)) {
    out(`uvsd: ${options.configFile}: no such configuration file${options.configDefault ? ' (the default; -f names another)' : ''}\n`);
    process.exit(1);
  }
  try {
    const loaded = loadKeepalivedConfig(options.configFile, undefined, options.configId ?? defaultConfigId());
    for (const w of loaded.warnings) out(`${w}\n`);
    // What a start would refuse, -t refuses too: the VRRP part is converted (interfaces, addresses
    // to send from, authentication) and checked as the VRRP thread would, unless -C (no VRRP) runs.
    const vrrpRuns = !options.checkOnly || options.vrrpOnly;
    if (vrrpRuns && loaded.keepalived.vrrpInstances.length > 0) {
      const mapping = vrrpFromKeepalived(loaded.keepalived, ipFacts(loaded.keepalived));
      for (const w of mapping.warnings) out(`${w}\n`);
      validateRuntimeConfig(mapping.config);
    }
    process.stdout.write(`uvsd: ${options.configFile}: configuration is valid ` +
      `(${loaded.model.services.length} virtual services for the IPVS table)\n`);
    process.exit(0);
  } catch (err) {
    if (err instanceof ConfigInvalidError) {
      out(`${err.message}\n`);
      process.exit(err.exitCode);
    }
    // A VRRP conversion error already names its file:line.
    out(err instanceof VrrpConfigError ? `uvsd: ${err.message}\n` : `uvsd: ${options.configFile}: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  let options: UvsdOptions;
  try {
    options = parseUvsdArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UvsdUsageError) {
      process.stderr.write(`uvsd: ${err.message}\n${UVSD_USAGE}`);
      process.exit(2);
    }
    throw err;
  }
  if (options.help) {
    process.stdout.write(UVSD_USAGE);
    return;
  }
  if (options.version) {
    process.stdout.write(`uvsd ${uvsVersion()} (uvs, IPVS ${IPVS_VERSION} compatible; keepalived 2.2 options and configuration)\n`);
    return;
  }
  if (options.signum) {
    process.stdout.write(`${SIGNUMS[options.signum]}\n`);
    return;
  }
  if (options.umask !== null) process.umask(options.umask);
  if (options.configTest) configTest(options);

  const send = datagramSend();
  // -D: keepalived's detail lines are its debug level.
  const log = createLogger({ sink: logSink(options, send), level: options.logDetail ? 'debug' : 'info' });
  log.info(`Starting uvsd v${uvsVersion()}`);
  for (const note of options.notes) log.notice(note);
  const pidFiles = [
    { option: '-p', path: options.pidFile }, { option: '-r', path: options.vrrpPidFile }, { option: '-c', path: options.checkersPidFile },
  ].filter((f): f is { option: string; path: string } => f.path !== null);
  let written: string[] = [];
  try {
    written = writePidFiles(pidFiles, process.pid, (line) => log.info(line));
  } catch (err) {
    if (err instanceof PidFileError) fatal(err.message, 1);
    throw err;
  }
  process.on('exit', () => removePidFiles(written, process.pid));

  const systemd = sdNotifier(process.env, send);
  const tell = (state: string): void => {
    const failed = systemd.notify(state);
    if (failed !== null) log.warn(`sd_notify ${state.split('\n')[0]}: ${failed}`);
  };

  // Signals are taken from here on: one that comes while the daemon starts is acted on once it runs
  // (the default action would end the process without removing the pid files).
  let daemon: Daemon | null = null;
  let pending: string | null = null;
  const shutdown = (signal: string): void => {
    if (!daemon) {
      pending = signal;
      return;
    }
    const running = daemon;
    log.info(`${signal}: shutting down`);
    tell('STOPPING=1');
    // A hard deadline: whatever hangs, the process is gone within a few seconds (docs/architecture.md, "Shutdown").
    setTimeout(() => process.exit(1), 3000).unref();
    running.stop().then(() => {
      log.info(`Stopped uvsd v${uvsVersion()}`);
      process.exit(0);
    }, (err: unknown) => fatal(`shutdown: ${(err as Error).message}`, 1));
  };
  // A crash (an exception or a rejection nothing handled) must not leave the kernel guard, the
  // VIPs or the pid files behind: log it, clean up what can be cleaned within a deadline, and exit
  // non-zero (70, EX_SOFTWARE) so systemd's Restart=on-failure starts a fresh uvsd.
  let crashing = false;
  const crash = (what: string, err: unknown): void => {
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    if (crashing) {
      process.stderr.write(`uvsd: ${what} during the crash cleanup: ${text}\n`);
      process.exit(70);
    }
    crashing = true;
    log.error(`fatal: ${what}: ${text}`);
    tell('STOPPING=1');
    setTimeout(() => process.exit(70), 3000).unref();
    const running = daemon;
    if (!running) process.exit(70);
    // After a crash the connection table is not handed to the next uvsd (nor the guard kept).
    running.discardConnState();
    running.stop().then(
      () => process.exit(70),
      (e: unknown) => {
        process.stderr.write(`uvsd: cleanup after the crash failed: ${(e as Error).message}\n`);
        process.exit(70);
      },
    );
  };
  process.on('uncaughtException', (err) => crash('uncaught exception', err));
  process.on('unhandledRejection', (reason) => crash('unhandled rejection', reason));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    if (!daemon) return; // the file is being read for the start right now
    // systemd waits for READY=1 after RELOADING=1 before `systemctl reload` returns.
    tell('RELOADING=1');
    void daemon.reload().then(() => tell('READY=1'));
  });

  // keepalived's state dumps (src/control/dumps.ts): SIGUSR1 data, SIGUSR2 stats, JSON. Taken from
  // here on, so a dump asked for during the start is not the signal's default action (exit).
  const dumpTexts: Record<DumpKind, string> = {
    DATA: 'Printing VRRP data for process(%d) on signal',
    STATS: 'Printing VRRP stats for process(%d) on signal',
    JSON: 'Printing VRRP as json for process(%d) on signal',
  };
  for (const kind of Object.keys(DUMP_SIGNALS) as DumpKind[]) {
    process.on(DUMP_SIGNALS[kind], () => {
      const running = daemon;
      if (!running) return;
      log.info(dumpTexts[kind].replace('%d', String(process.pid)));
      Promise.all([running.vrrpReport(), Promise.resolve(running.checkReport())]).then(
        ([instances, checks]) => writeDump(kind, instances, checks),
      ).then(
        (path) => log.debug(`${kind} dump written to ${path}`),
        (err: unknown) => log.error(`${kind} dump: ${(err as Error).message}`),
      );
    });
  }

  try {
    daemon = await Daemon.start(options, log);
  } catch (err) {
    fatal((err as Error).message, err instanceof ConfigInvalidError ? err.exitCode : 1);
  }
  tell(`READY=1\nSTATUS=${daemon.options.configFile ? `running ${daemon.options.configFile}` : 'running with an empty table'}\nMAINPID=${process.pid}`);
  if (pending !== null) shutdown(pending);
}

main().catch((err: unknown) => fatal((err as Error).stack ?? String(err), 1));
