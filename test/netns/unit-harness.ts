// What the tests that run uvsd "as systemd's unit starts it" share (systemd.test.ts, show-it.test.ts):
// a listener for the two unix datagram sockets the unit's uvsd writes to (/dev/log and
// NOTIFY_SOCKET; Node has no AF_UNIX datagram sockets, so the listener is a small python3 script),
// the unit's ExecStart expanded as systemd expands it, and a bounded wait.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers';
import { UVSD } from './uvsd-process';

/** python3 source: binds argv[1] (syslog) and argv[2] (notify), prints each datagram as one JSON
 *  line {sock, text}, and {sock: 'up'} once both are bound. */
export const LISTENER = `
import json, os, select, socket, sys
socks = {}
for name, path in (('log', sys.argv[1]), ('notify', sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    socks[s] = name
print(json.dumps({'sock': 'up', 'text': ''}), flush=True)
while True:
    for s in select.select(list(socks), [], [], 30)[0]:
        print(json.dumps({'sock': socks[s], 'text': s.recv(65536).decode()}), flush=True)
`;

/** systemd/uvsd.service's ExecStart with its environment file, as systemd would expand them
 *  (an unquoted $VAR splits on whitespace), run with this node and the built uvsd. */
export function execStart(envFile: string): string[] {
  const unit = readFileSync(join(repoRoot, 'systemd', 'uvsd.service'), 'utf8');
  const line = /^ExecStart=(.*)$/m.exec(unit)![1]!;
  const env: Record<string, string> = {};
  for (const m of readFileSync(envFile, 'utf8').matchAll(/^([A-Z_]+)="(.*)"$/gm)) env[m[1]!] = m[2]!;
  const words = line.split(/\s+/).flatMap((w) => (w.startsWith('$') ? (env[w.slice(1)] ?? '').split(/\s+/).filter(Boolean) : [w]));
  assert.equal(words[0], '/usr/bin/uvsd');
  return [process.execPath, UVSD, ...words.slice(1)];
}

/** Polls `cond` every 100 ms; throws with `context()` after `ms`. */
export async function waitFor(what: string, cond: () => boolean, context: () => string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts LISTENER on DIR/log.sock and DIR/notify.sock; `got` fills as datagrams arrive. The
 *  caller kills `child` (it is also pushed onto `children`). */
export function startListener(dir: string, children: ChildProcess[]): { logSock: string; notifySock: string; got: { sock: string; text: string }[]; child: ChildProcess } {
  const logSock = join(dir, 'log.sock');
  const notifySock = join(dir, 'notify.sock');
  const got: { sock: string; text: string }[] = [];
  const child = spawn('/usr/bin/python3', ['-c', LISTENER, logSock, notifySock], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      got.push(JSON.parse(buf.slice(0, nl)) as { sock: string; text: string });
      buf = buf.slice(nl + 1);
    }
  });
  return { logSock, notifySock, got, child };
}
