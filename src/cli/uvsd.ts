#!/usr/bin/env node
// uvsd: the uvs daemon. Thin entry point: options, config test, start, signals.

import { ConfigInvalidError, loadKeepalivedConfig } from '../control/config-loader';
import { Daemon } from '../control/daemon';
import { consoleSink, createLogger } from '../runtime/log';
import { DaemonAlreadyRunningError } from '../control/server';
import { UVSD_USAGE, UvsdUsageError, parseUvsdArgs } from '../control/uvsd-options';
import type { UvsdOptions } from '../control/uvsd-options';

const VERSION = 'uvsd 0.1.0 (IPVS 1.2.1 compatible control plane)';

function fatal(message: string, status: number): never {
  process.stderr.write(`uvsd: ${message}\n`);
  process.exit(status);
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
    process.stdout.write(`${VERSION}\n`);
    return;
  }

  // Errors and warnings always reach stderr; the rest only with -l (keepalived's console option).
  const log = createLogger({ sink: consoleSink('uvsd', { console: options.logConsole }) });

  if (options.configTest) {
    if (!options.configFile) {
      process.stdout.write('uvsd: no configuration file given (-f): the empty configuration is valid\n');
      return;
    }
    try {
      const loaded = loadKeepalivedConfig(options.configFile);
      for (const w of loaded.warnings) process.stderr.write(`${w}\n`);
      process.stdout.write(`uvsd: ${options.configFile}: configuration is valid ` +
        `(${loaded.model.services.length} virtual services for the IPVS table)\n`);
      return;
    } catch (err) {
      if (err instanceof ConfigInvalidError) fatal(err.message, err.exitCode);
      fatal(`${options.configFile}: ${(err as Error).message}`, 1);
    }
  }

  let daemon: Daemon;
  try {
    daemon = await Daemon.start(options, log);
  } catch (err) {
    if (err instanceof DaemonAlreadyRunningError) fatal(err.message, 1);
    if (err instanceof ConfigInvalidError) fatal(err.message, err.exitCode);
    fatal((err as Error).message, 1);
  }

  const shutdown = (signal: string): void => {
    log.info(`${signal}: shutting down`);
    // A hard deadline: whatever hangs, the process is gone within a few seconds (docs/architecture.md, "Shutdown").
    setTimeout(() => process.exit(1), 3000).unref();
    daemon.stop().then(() => process.exit(0), (err: unknown) => fatal(`shutdown: ${(err as Error).message}`, 1));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => daemon.reload());
}

main().catch((err: unknown) => fatal((err as Error).stack ?? String(err), 1));
