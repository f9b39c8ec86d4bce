#!/usr/bin/env node
// uvsadm: ipvsadm's interface for the uvsd of this network namespace. Thin entry point.

import { basename } from 'node:path';
import { systemResolver } from '../config/ipvsadm-addr';
import { runUvsadm } from '../control/uvsadm-main';

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => { text += chunk; });
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

const program = basename(process.argv[1] ?? 'uvsadm').replace(/\.js$/, '');

// stdout may be a pipe that node writes asynchronously: a streamed -L -c waits for it to drain
// rather than queue a million lines in memory.
let stdoutFull = false;

// A reader that stops early (`uvsadm -L -n -c | head`): ipvsadm dies of SIGPIPE, silently, and a
// shell reports 128 + 13. Node ignores SIGPIPE and raised an unhandled EPIPE with a stack trace;
// uvsadm now ends as ipvsadm does, with that status.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(141);
  throw err;
});

runUvsadm(process.argv.slice(2), {
  program,
  stdout: (t) => {
    if (!process.stdout.write(t)) stdoutFull = true;
  },
  stdoutBackedUp: () => {
    if (!stdoutFull) return undefined;
    return new Promise<void>((resolve) => process.stdout.once('drain', () => {
      stdoutFull = false;
      resolve();
    }));
  },
  stderr: (t) => process.stderr.write(t),
  readStdin,
  env: process.env,
  resolver: systemResolver(),
}).then(
  (status) => { process.exitCode = status; },
  (err: unknown) => {
    process.stderr.write(`${program}: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
