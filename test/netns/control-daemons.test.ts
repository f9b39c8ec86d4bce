// Needs root: two network namespaces, each with its own uvsd started through `ip netns exec`, each
// reached by a plain `uvsadm` in that namespace (the socket is /run/uvs/<netns inode>.sock); a
// stale socket after kill -9, a second uvsd refused, SIGTERM exit. Namespaces uvsc<suffix>a/b are
// removed in `after`, even on failure.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cannotRunNetns, labSuffix, repoRoot } from './helpers';

const why = cannotRunNetns();
const suffix = labSuffix('c');
const NS_A = `uvsc${suffix}a`;
const NS_B = `uvsc${suffix}b`;
const UVSD = join(repoRoot, 'dist', 'src', 'cli', 'uvsd.js');
const UVSADM = join(repoRoot, 'dist', 'src', 'cli', 'uvsadm.js');
const daemons = new Set<ChildProcess>();
const made: string[] = [];

/** The environment without UVS_SOCKET, so the namespace's default socket is used. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['UVS_SOCKET'];
  return env;
}

function socketOf(ns: string): string {
  // /run/netns/NAME is a bind mount of the namespace: the same inode as /proc/self/ns/net inside it.
  return `/run/uvs/${statSync(`/run/netns/${ns}`).ino}.sock`;
}

function startUvsd(ns: string): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, UVSD, '-n', '-G', '--no-config'], { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  daemons.add(child);
  return child;
}

function uvsadm(ns: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, UVSADM, ...args], { env: cleanEnv(), encoding: 'utf8', timeout: 15_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** The pid of the uvsd inside `ip netns exec` (ip execs node, so it is the same process). */
function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  child.kill(sig);
}

before(() => {
  if (why) return;
  for (const ns of [NS_A, NS_B]) {
    const r = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
    made.push(ns);
  }
});

after(async () => {
  for (const d of daemons) {
    if (d.exitCode === null && d.signalCode === null) {
      d.kill('SIGKILL');
      await exited(d, 5000).catch(() => undefined);
    }
  }
  for (const ns of made) {
    try {
      const sock = socketOf(ns);
      if (existsSync(sock)) unlinkSync(sock);
    } catch {
      // namespace already gone
    }
    spawnSync('ip', ['netns', 'del', ns]);
  }
});

test('each namespace has its own uvsd and table; stale sockets, second daemons and SIGTERM', { skip: why ?? false }, async () => {
  const a = startUvsd(NS_A);
  const b = startUvsd(NS_B);
  await waitFor('uvsd in both namespaces', () => uvsadm(NS_A, ['-Ln']).status === 0 && uvsadm(NS_B, ['-Ln']).status === 0);
  const sockA = socketOf(NS_A);
  const sockB = socketOf(NS_B);
  assert.notEqual(sockA, sockB);
  assert.equal(statSync(sockA).mode & 0o777, 0o600);
  assert.equal(statSync('/run/uvs').mode & 0o077, 0, '/run/uvs is private');

  assert.equal(uvsadm(NS_A, ['-A', '-t', '10.0.0.1:80', '-s', 'rr']).status, 0);
  assert.equal(uvsadm(NS_A, ['-a', '-t', '10.0.0.1:80', '-r', '10.0.1.1', '-g']).status, 0);
  assert.equal(uvsadm(NS_B, ['-A', '-u', '10.0.0.2:53', '-s', 'wlc']).status, 0);
  assert.equal(uvsadm(NS_A, ['-S', '-n']).stdout, '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1\n');
  assert.equal(uvsadm(NS_B, ['-S', '-n']).stdout, '-A -u 10.0.0.2:53 -s wlc\n');

  // A second uvsd in namespace A is refused, and A's daemon keeps its table.
  const second = spawnSync('ip', ['netns', 'exec', NS_A, process.execPath, UVSD, '-G', '--no-config'], { env: cleanEnv(), encoding: 'utf8', timeout: 15_000 });
  assert.equal(second.status, 1);
  assert.match(second.stderr, /another uvsd already runs in this network namespace/);
  assert.match(uvsadm(NS_A, ['-Ln']).stdout, /10\.0\.0\.1:80 rr/);

  // kill -9 leaves a stale socket; uvsadm says no daemon runs; the next start replaces the socket.
  signal(a, 'SIGKILL');
  await exited(a, 5000);
  assert.ok(existsSync(sockA));
  const none = uvsadm(NS_A, ['-Ln']);
  assert.equal(none.status, 2);
  assert.equal(none.stderr, `uvsadm: no uvsd is running in this network namespace (no answer on ${sockA})\n`);
  const a2 = startUvsd(NS_A);
  await waitFor('the restarted uvsd', () => uvsadm(NS_A, ['-Ln']).status === 0);
  assert.equal(uvsadm(NS_A, ['-S', '-n']).stdout, '', 'a new daemon starts with an empty table');
  assert.equal(uvsadm(NS_B, ['-S', '-n']).stdout, '-A -u 10.0.0.2:53 -s wlc\n', 'B is untouched');

  // SIGTERM: prompt exit, socket removed.
  for (const [child, sock] of [[a2, sockA], [b, sockB]] as const) {
    const t0 = Date.now();
    signal(child, 'SIGTERM');
    assert.deepEqual(await exited(child, 5000), { code: 0, signal: null });
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(existsSync(sock), false);
  }
});
