// Where uvsd's lines go (src/runtime/log.ts, src/cli/uvsd.ts): syslog lines in syslog(3)'s
// format with keepalived's idents, the journal's <N> prefixes, the JOURNAL_STREAM check, the
// fallback when nobody listens on /dev/log; sd_notify; pid files; and uvsd as a process logging
// to a test /dev/log (a python3 datagram listener in a temp dir). No root needed.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createLogger, journalSink, stderrIsJournal, syslogLine, syslogSink } from '../../src/runtime/log';
import type { LogLevel } from '../../src/runtime/log';
import { sdNotifier } from '../../src/runtime/sd-notify';
import { PidFileError, removePidFiles, writePidFiles } from '../../src/runtime/pidfile';

const root = join(__dirname, '..', '..', '..');
const UVSD = join(root, 'dist', 'src', 'cli', 'uvsd.js');
const dir = mkdtempSync(join(tmpdir(), 'uvs-log-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('syslogLine: <facility*8+severity>, RFC 3164 time, ident[pid], keepalived idents split off', () => {
  const at = new Date(2026, 0, 5, 7, 8, 9);
  assert.equal(syslogLine(3, 'info', 'uvsd', 42, 'Starting uvsd v0.1.0', at), '<30>Jan  5 07:08:09 uvsd[42]: Starting uvsd v0.1.0');
  assert.equal(syslogLine(3, 'info', 'uvsd', 42, 'Keepalived_vrrp: (VI_1) Entering MASTER STATE', at),
    '<30>Jan  5 07:08:09 Keepalived_vrrp[42]: (VI_1) Entering MASTER STATE');
  assert.equal(syslogLine(18, 'error', 'uvsd', 7, 'Keepalived_healthcheckers: x', new Date(2026, 11, 25, 23, 0, 0)),
    '<147>Dec 25 23:00:00 Keepalived_healthcheckers[7]: x');
  assert.equal(syslogLine(3, 'debug', 'uvsd', 1, 'Keepalived_other: y', at), '<31>Jan  5 07:08:09 uvsd[1]: Keepalived_other: y');
});

test('syslogSink: sends each line; a line syslog does not take goes to the fallback with the reason', () => {
  const sent: string[] = [];
  const fallback: string[] = [];
  let mode: 'ok' | 'full' | 'gone' = 'ok';
  const log = createLogger({
    level: 'debug',
    sink: syslogSink({
      path: '/x/log', facility: 3, ident: 'uvsd', pid: 9,
      send: (path, data) => {
        if (mode === 'gone') throw new Error(`sendto(${path}): No such file or directory`);
        if (mode === 'full') return false;
        sent.push(Buffer.from(data).toString());
        return true;
      },
      fallback: (level, message, why) => fallback.push(`${level} ${message} (${why})`),
    }),
  });
  log.info('a');
  log.debug('b');
  mode = 'full';
  log.warn('c');
  mode = 'gone';
  log.error('d');
  assert.deepEqual(sent.map((s) => s.replace(/^(<\d+>)\w{3} [ \d]\d \d\d:\d\d:\d\d /, '$1')), ['<30>uvsd[9]: a', '<31>uvsd[9]: b']);
  assert.deepEqual(fallback, ['warn c (/x/log is full)', 'error d (sendto(/x/log): No such file or directory)']);
});

test('journalSink: <N> prefixes journald reads as priorities; stderrIsJournal compares dev:ino', () => {
  const out: string[] = [];
  const log = createLogger({ sink: journalSink((t) => out.push(t)), level: 'debug' });
  for (const l of ['error', 'warn', 'notice', 'info', 'debug'] as LogLevel[]) log[l](l);
  assert.equal(out.join(''), '<3>error\n<4>warn\n<5>notice\n<6>info\n<7>debug\n');
  assert.equal(stderrIsJournal({ JOURNAL_STREAM: '8:1234' }, { dev: 8, ino: 1234 }), true);
  assert.equal(stderrIsJournal({ JOURNAL_STREAM: '8:1234' }, { dev: 8, ino: 99 }), false);
  assert.equal(stderrIsJournal({}, { dev: 8, ino: 1234 }), false);
  assert.equal(stderrIsJournal({ JOURNAL_STREAM: 'junk' }, { dev: 8, ino: 1234 }), false);
});

test('sdNotifier: nothing without NOTIFY_SOCKET; paths and @abstract names; a failure is reported', () => {
  const sent: [string, string][] = [];
  const send = (p: string, d: Uint8Array): boolean => { sent.push([p, Buffer.from(d).toString()]); return true; };
  assert.equal(sdNotifier({}, send).active, false);
  assert.equal(sdNotifier({ NOTIFY_SOCKET: 'relative' }, send).active, false);
  assert.equal(sdNotifier({ NOTIFY_SOCKET: '/run/systemd/notify' }, send).notify('READY=1'), null);
  assert.equal(sdNotifier({ NOTIFY_SOCKET: '@abc' }, send).notify('STOPPING=1'), null);
  assert.deepEqual(sent, [['/run/systemd/notify', 'READY=1'], ['@abc', 'STOPPING=1']]);
  const failing = sdNotifier({ NOTIFY_SOCKET: '/nope' }, () => { throw new Error('ECONNREFUSED'); });
  assert.equal(failing.notify('READY=1'), '/nope: ECONNREFUSED');
});

test('pid files: written, a live holder refuses the start naming the option, a stale one is replaced, removed at exit', () => {
  const p = join(dir, 'k.pid');
  const v = join(dir, 'v.pid');
  const said: string[] = [];
  assert.deepEqual(writePidFiles([{ option: '-p', path: p }, { option: '-r', path: v }], 4242, (l) => said.push(l)), [p, v]);
  assert.equal(readFileSync(p, 'utf8'), '4242\n');
  // This test process is alive: its pid in the file refuses another daemon, and nothing is left half written.
  writeFileSync(p, `${process.pid}\n`);
  rmSync(v);
  assert.throws(() => writePidFiles([{ option: '-r', path: v }, { option: '-p', path: p }], 4343, () => {}),
    (e: unknown) => e instanceof PidFileError && new RegExp(`^-p ${p}: daemon is already running \\(pid ${process.pid}\\)$`).test(e.message));
  assert.equal(existsSync(v), false);
  // A dead pid (a child that has exited) is a zombie file, replaced.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  writeFileSync(p, `${dead}\n`);
  writePidFiles([{ option: '-p', path: p }], 4444, (l) => said.push(l));
  assert.deepEqual(said, [`Remove a zombie pid file ${p}`]);
  removePidFiles([p], 5555); // not ours: left alone
  assert.equal(existsSync(p), true);
  removePidFiles([p], 4444);
  assert.equal(existsSync(p), false);
  assert.throws(() => writePidFiles([{ option: '-c', path: join(dir, 'no', 'such', 'dir.pid') }], 1, () => {}), /^PidFileError: -c .*dir\.pid: ENOENT/);
});

test('uvsd logs to a test /dev/log: syslog format, -S facility, -D detail; -p pid file; nobody listening: errors to stderr', async () => {
  const logSock = join(dir, 'log.sock');
  const listener = spawn('/usr/bin/python3', ['-c',
    'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("up",flush=True)\nwhile True: print(s.recv(65536).decode(),flush=True)', logSock],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(listener);
  let lines = '';
  listener.stdout.on('data', (d: Buffer) => (lines += d.toString()));
  const until = async (what: string, cond: () => boolean): Promise<void> => {
    const deadline = Date.now() + 30_000; // only bounds a hang: starting uvsd takes seconds on a loaded CI machine
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${lines}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until('the listener', () => lines.startsWith('up'));
  const pidFile = join(dir, 'uvsd.pid');
  const uvsd = spawn(process.execPath, [UVSD, '-n', '--no-config', '--io', 'none', '--socket', join(dir, 'u.sock'), '-S', 'local3', '-D', '-p', pidFile, '-B'], {
    env: { ...process.env, UVS_SYSLOG_SOCKET: logSock, JOURNAL_STREAM: '' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(uvsd);
  let stderr = '';
  uvsd.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // local3 = 19: info 19*8+6 = 158, notice 157.
  await until('the start line', () => new RegExp(`<158>\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d uvsd\\[${uvsd.pid}\\]: Starting uvsd v`).test(lines));
  // Each line is its own datagram, printed by the listener as it comes: the -B note sent right
  // after the start line may not have reached this process yet, so it is waited for too.
  await until('the -B note', () => /<157>.* uvsd\[\d+\]: option -B \(keepalived's --no_bfd\) accepted: uvs has no BFD/.test(lines));
  await until('the pid file', () => existsSync(pidFile));
  await until('the daemon to run', () => /uvsd\[\d+\]: uvsd \d+: control socket /.test(lines));
  assert.equal(readFileSync(pidFile, 'utf8'), `${uvsd.pid}\n`);
  uvsd.kill('SIGTERM');
  await new Promise((r) => uvsd.once('exit', r));
  assert.equal(existsSync(pidFile), false, 'the pid file goes with the daemon');
  await until('the stop line', () => /<158>.* uvsd\[\d+\]: Stopped uvsd v/.test(lines));
  assert.equal(stderr, '');

  // Nobody on the socket: info lines are lost (as keepalived's are without syslogd), a fatal error still reaches stderr.
  const lonely = spawnSync(process.execPath, [UVSD, '-n', '-f', join(dir, 'missing.conf'), '--io', 'none', '--socket', join(dir, 'v.sock')], {
    env: { ...process.env, UVS_SYSLOG_SOCKET: join(dir, 'nobody.sock'), JOURNAL_STREAM: '' }, encoding: 'utf8', timeout: 10_000,
  });
  assert.notEqual(lonely.status, 0);
  assert.match(lonely.stderr, /^uvsd: .*missing\.conf/);
});

test('a missing default configuration: uvsd warns and runs with an empty table, as keepalived; -t fails', () => {
  // Only when the machine has no file at the default path (this test never writes one).
  if (existsSync('/etc/keepalived/keepalived.conf')) return;
  const t = spawnSync(process.execPath, [UVSD, '-t'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(t.status, 1);
  assert.match(t.stderr, /^uvsd: \/etc\/keepalived\/keepalived\.conf: no such configuration file \(the default; -f names another\)\n$/);
  const r = spawnSync(process.execPath, [UVSD, '-l', '--io', 'none', '--socket', join(dir, 'w.sock'), '--signum=STOP'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.stdout, '15\n');
});
