// uvsd started the way systemd/uvsd.service starts it, by hand (this machine has no systemd as
// PID 1): keepalived's sample copied to the default path /etc/keepalived/keepalived.conf (a bind
// mount inside the test's own mount namespace, so the machine's /etc/keepalived never changes)
// with its interface adapted, the unit's ExecStart with DAEMON_ARGS from an environment file,
// a NOTIFY_SOCKET listener standing in for systemd and a /dev/log listener standing in for
// syslog (python3, unix datagram sockets in a temp dir; UVS_SYSLOG_SOCKET points uvsd at it).
// Checks: READY=1, keepalived's VRRP text at LOG_INFO under the Keepalived_vrrp ident, -D's
// debug lines, the checker texts, RELOADING=1/READY=1 on the unit's ExecReload (HUP), STOPPING=1
// and a clean exit on SIGTERM.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cannotRunNetns, labSuffix } from './helpers';
import { execStart, startListener, waitFor } from './unit-harness';

const skip = cannotRunNetns() ?? (existsSync('/etc/keepalived/keepalived.conf.sample') ? null : 'keepalived\'s sample is not installed (/etc/keepalived/keepalived.conf.sample)')
  ?? (existsSync('/etc/keepalived') ? null : '/etc/keepalived does not exist to bind-mount over');
const sfx = labSuffix('sd');
const NS = `uvs${sfx}n`;
const IF = `uvs${sfx}a`;
const PEER = `uvs${sfx}b`;
const dir = mkdtempSync(join(tmpdir(), 'uvs-systemd-'));
const children: ChildProcess[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  spawnSync('ip', ['netns', 'del', NS]);
  rmSync(dir, { recursive: true, force: true });
});

test('uvsd as the unit starts it: sd_notify, syslog with keepalived\'s texts, reload, stop', { skip: skip ?? false, timeout: 90_000 }, async () => {
  const run = (args: string[]): void => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
  };
  run(['netns', 'add', NS]);
  run(['-n', NS, 'link', 'add', IF, 'type', 'veth', 'peer', 'name', PEER]);
  run(['-n', NS, 'addr', 'add', '192.168.200.1/24', 'dev', IF]);
  // The sample's real servers (192.168.201.100, .101) get an address the director reaches.
  run(['-n', NS, 'addr', 'add', '192.168.201.100/24', 'dev', PEER]);
  for (const d of ['lo', IF, PEER]) run(['-n', NS, 'link', 'set', d, 'up']);

  // The seed tutorial: copy the sample to the default path, adapt the interface name. Its
  // vrrp_strict with authentication fails -t (5, as keepalived -t), but keepalived starts with it,
  // logging its corrections (no authentication, BACKUP until elected), and so does uvsd.
  const etc = join(dir, 'keepalived');
  mkdirSync(etc);
  const sample = readFileSync('/etc/keepalived/keepalived.conf.sample', 'utf8');
  writeFileSync(join(etc, 'keepalived.conf'), sample.replace(/interface eth0/g, `interface ${IF}`));
  const envFile = join(dir, 'uvsd.default');
  writeFileSync(envFile, 'DAEMON_ARGS="-D --io none"\n');

  const { logSock, notifySock, got } = startListener(dir, children);
  const shown = (): string => got.map((g) => `${g.sock}: ${g.text}`).join('\n') + `\nuvsd stderr:\n${stderr}`;
  await waitFor('the listeners', () => got.some((g) => g.sock === 'up'), shown);

  let stderr = '';
  const argv = execStart(envFile);
  // The bind mount lives in this process's own mount namespace (ip netns exec makes one, unshare
  // makes sure it is private): the machine's /etc/keepalived is never written.
  const uvsd = spawn('ip', ['netns', 'exec', NS, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c',
    'mount --bind "$0" /etc/keepalived && exec "$@"', etc, ...argv], {
    env: { ...process.env, NOTIFY_SOCKET: notifySock, UVS_SYSLOG_SOCKET: logSock, JOURNAL_STREAM: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(uvsd);
  uvsd.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const logs = (): string[] => got.filter((g) => g.sock === 'log').map((g) => g.text);
  const notes = (): string[] => got.filter((g) => g.sock === 'notify').map((g) => g.text);

  await waitFor('READY=1', () => notes().some((n) => n.startsWith('READY=1')), shown);
  const pid = Number(/MAINPID=(\d+)/.exec(notes().find((n) => n.startsWith('READY=1'))!)![1]);
  assert.ok(pid > 0);
  // syslog(3)'s format, facility daemon: <30> is daemon.info, <31> daemon.debug (-D).
  await waitFor('the VRRP transition in syslog', () => logs().some((l) => /^<30>\w{3} [ \d]\d \d\d:\d\d:\d\d Keepalived_vrrp\[\d+\]: \(VI_1\) Entering MASTER STATE$/.test(l)), shown);
  assert.ok(logs().some((l) => new RegExp(`^<30>.* uvsd\\[${pid}\\]: Starting uvsd v`).test(l)), shown());
  assert.ok(logs().some((l) => /keepalived\.conf:\d+: warning: \(VI_1\) Strict mode does not support authentication\. Ignoring\.$/.test(l)), shown());
  await waitFor('a checker result', () => logs().some((l) => /Keepalived_healthcheckers\[\d+\]: (HTTP_CHECK on service \[192\.168\.201\.10[01]\]:tcp:443 failed\.|Removing service \[192\.168\.201\.10[01]\]:tcp:443 from VS \[192\.168\.200\.100\]:tcp:443)$/.test(l)), shown, 40_000);

  await waitFor('-D\'s detail: each check at daemon.debug', () => logs().some((l) => /^<31>.* Keepalived_healthcheckers\[\d+\]: SSL_GET on service \[192\.168\.201\.10[01]\]:tcp:443 of VS \[192\.168\.200\.100\]:tcp:443: failure in \d+ ms/.test(l)), shown, 40_000);

  // ExecReload=/bin/kill -HUP $MAINPID
  const before = notes().length;
  assert.equal(spawnSync('/bin/kill', ['-HUP', String(pid)]).status, 0);
  await waitFor('RELOADING=1 then READY=1', () => notes().slice(before).join('|').includes('RELOADING=1|READY=1'), shown);

  uvsd.kill('SIGTERM');
  const code = await new Promise<number | null>((res) => uvsd.once('exit', (c) => res(c)));
  assert.equal(code, 0, shown());
  assert.ok(notes().includes('STOPPING=1'), shown());
  await waitFor('the stop line', () => logs().some((l) => /uvsd\[\d+\]: Stopped uvsd v/.test(l)), shown);
  assert.equal(stderr, '', 'nothing on stderr when syslog takes the lines');
  assert.equal(existsSync('/etc/keepalived/keepalived.conf'), false, 'the default path of the machine stays untouched');
});
