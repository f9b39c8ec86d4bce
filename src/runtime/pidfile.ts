// keepalived's pid files (-p, -r, -c): the daemon's pid and a newline, written at start, removed
// at exit. As keepalived, a file that names a live process refuses the start ("daemon is already
// running") and one that names a dead process is replaced ("Remove a zombie pid file").

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { UvsError } from './errors';

export class PidFileError extends UvsError {
  constructor(message: string) {
    super('UVS_ERR_USAGE', message);
  }
}

/** Whether `pid` is a live process (kill(pid, 0); EPERM means it lives under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes `pid` to each file. Throws PidFileError naming the option when a file names another live
 * process or cannot be written; `log` hears of replaced stale files. Returns the files written.
 */
export function writePidFiles(files: readonly { option: string; path: string }[], pid: number, log: (line: string) => void): string[] {
  const written: string[] = [];
  try {
    for (const { option, path } of files) {
      let old: string | null = null;
      try {
        old = readFileSync(path, 'utf8');
      } catch {
        old = null;
      }
      if (old !== null) {
        const other = Number(old.trim());
        if (Number.isInteger(other) && other > 0 && other !== pid && alive(other)) {
          throw new PidFileError(`${option} ${path}: daemon is already running (pid ${other})`);
        }
        log(`Remove a zombie pid file ${path}`);
      }
      try {
        writeFileSync(path, `${pid}\n`, { mode: 0o644 });
      } catch (err) {
        throw new PidFileError(`${option} ${path}: ${(err as Error).message}`);
      }
      written.push(path);
    }
  } catch (err) {
    removePidFiles(written, pid);
    throw err;
  }
  return written;
}

/** Removes the files that still hold `pid` (a successor's file is left alone). */
export function removePidFiles(paths: readonly string[], pid: number): void {
  for (const path of paths) {
    try {
      if (Number(readFileSync(path, 'utf8').trim()) === pid) rmSync(path, { force: true });
    } catch {
      // already gone
    }
  }
}
