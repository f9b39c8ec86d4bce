// uvsd and uvsadm as processes (node dist/src/cli/*.js) on a socket in a temporary directory:
// socket mode, a second daemon refused, a stale socket replaced after kill -9, SIGTERM/SIGINT exit,
// -t with and without a keepalived.conf, option validation. No root needed.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { defaultConnMax, defaultWorkers, parseUvsdArgs, UvsdUsageError } from '../../src/control/uvsd-options';
import { DEFAULT_BUSY_POLL_MAX_US, DEFAULT_BUSY_POLL_US } from '../../src/dataplane/dataplane';
import { networkInterfaces } from 'node:os';

const root = join(__dirname, '..', '..', '..');
const UVSD = join(root, 'dist', 'src', 'cli', 'uvsd.js');
const UVSADM = join(root, 'dist', 'src', 'cli', 'uvsadm.js');
const dir = mkdtempSync(join(tmpdir(), 'uvs-cli-'));
const children = new Set<ChildProcess>();

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function startUvsd(socket: string, extra: string[] = []): ChildProcess {
  // -G: errors to stderr only, nothing to the machine's syslog; --no-config unless the test gives
  // -f, so a keepalived.conf at the default path changes nothing here.
  const config = extra.includes('-f') ? [] : ['--no-config'];
  const child = spawn(process.execPath, [UVSD, '-n', '-G', '--io', 'none', '--socket', socket, ...config, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  return child;
}

// Every wait below is for a condition; the bound only turns a hung daemon into a failure. It is
// generous because on a loaded 2-core CI machine starting a Node.js process (uvsd, and each uvsadm
// probe) takes seconds: a 5 s bound failed there while the daemon was still starting.
const HUNG_MS = 30_000;

async function waitFor(what: string, cond: () => boolean, timeoutMs = HUNG_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function uvsadm(socket: string, args: string[], input = ''): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [UVSADM, ...args], { env: { ...process.env, UVS_SOCKET: socket }, input, encoding: 'utf8', timeout: 10_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function exited(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const timer = setTimeout(() => reject(new Error(`uvsd did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

function collect(child: ChildProcess): () => string {
  let text = '';
  child.stderr!.on('data', (d: Buffer) => { text += d.toString(); });
  return () => text;
}

test('socket 0600, a second daemon refused, SIGTERM exits promptly and removes the socket', async () => {
  const socket = join(dir, 'a.sock');
  const first = startUvsd(socket);
  await waitFor('the control socket', () => existsSync(socket));
  assert.equal(statSync(socket).mode & 0o777, 0o600);
  assert.equal(uvsadm(socket, ['-A', '-t', '10.0.0.1:80', '-s', 'rr']).status, 0);

  const second = spawnSync(process.execPath, [UVSD, '-G', '--no-config', '--io', 'none', '--socket', socket], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(second.status, 1);
  assert.match(second.stderr, /^uvsd: another uvsd already runs in this network namespace: it answers on .*a\.sock; stop it first\n$/);
  // The first daemon and its table are untouched.
  assert.match(uvsadm(socket, ['-Ln']).stdout, /TCP {2}10\.0\.0\.1:80 rr/);

  first.kill('SIGTERM');
  const r = await exited(first, HUNG_MS);
  // Exit code 0 is the prompt exit: uvsd's SIGTERM watchdog ends a stop that takes over 3 s with
  // exit code 1 (src/cli/uvsd.ts), so no wall-clock measure is needed here (it failed under load).
  assert.deepEqual(r, { code: 0, signal: null });
  assert.equal(existsSync(socket), false);
  const none = uvsadm(socket, ['-Ln']);
  assert.equal(none.status, 2);
  assert.equal(none.stderr.split('\n').length, 2, 'one line');
});

test('a stale socket left by kill -9 does not block the next start; SIGINT exits too', async () => {
  const socket = join(dir, 'b.sock');
  const crashed = startUvsd(socket);
  await waitFor('the control socket', () => existsSync(socket));
  crashed.kill('SIGKILL');
  await exited(crashed, HUNG_MS);
  assert.ok(existsSync(socket), 'kill -9 leaves the socket file behind');
  assert.equal(uvsadm(socket, ['-Ln']).status, 2, 'nobody answers on the stale socket');

  const next = startUvsd(socket, ['-l']);
  await waitFor('the new daemon to answer', () => uvsadm(socket, ['-Ln']).status === 0);
  assert.equal(uvsadm(socket, ['-Ln']).stdout, 'IP Virtual Server version 1.2.1 (size=4096)\n' +
    'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n');
  next.kill('SIGINT');
  assert.deepEqual(await exited(next, HUNG_MS), { code: 0, signal: null });
  assert.equal(existsSync(socket), false);
});

test('-f loads a keepalived.conf, SIGHUP reloads it by diff; -t checks it with keepalived -t exit codes', async () => {
  const good = join(dir, 'good.conf');
  writeFileSync(good, 'virtual_server 10.0.0.5 80 {\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n' +
    '  real_server 10.0.1.1 80 {\n    weight 4\n  }\n}\n');
  const bad = join(dir, 'bad.conf');
  writeFileSync(bad, 'virtual_server 10.0.0.5 80 {\n  real_server 10.0.1.1 80 {\n    weight abc\n  }\n}\n');
  const ok = spawnSync(process.execPath, [UVSD, '-t', '-f', good], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(ok.status, 0, ok.stderr);
  const ko = spawnSync(process.execPath, [UVSD, '-t', '-f', bad], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(ko.status, 5);
  assert.match(ko.stderr, /bad\.conf:3: error: .*abc/);
  const missing = spawnSync(process.execPath, [UVSD, '-t', '-f', join(dir, 'nonexistent.conf')], { encoding: 'utf8', timeout: 10_000 });
  assert.notEqual(missing.status, 0);

  const socket = join(dir, 'c.sock');
  const daemon = startUvsd(socket, ['-f', good]);
  const stderr = collect(daemon);
  await waitFor('the daemon to answer', () => existsSync(socket) && uvsadm(socket, ['-Ln']).status === 0);
  assert.equal(uvsadm(socket, ['-S', '-n']).stdout, '-A -t 10.0.0.5:80 -s wrr\n-a -t 10.0.0.5:80 -r 10.0.1.1:80 -g -w 4\n');
  // SIGHUP: the file is read again and applied by diff; a broken file leaves the table as it was.
  writeFileSync(good, 'virtual_server 10.0.0.5 80 {\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n' +
    '  real_server 10.0.1.1 80 {\n    weight 9\n  }\n}\n');
  daemon.kill('SIGHUP');
  await waitFor('the reload', () => uvsadm(socket, ['-S', '-n']).stdout.includes('-w 9'));
  assert.equal(uvsadm(socket, ['-S', '-n']).stdout, '-A -t 10.0.0.5:80 -s wrr\n-a -t 10.0.0.5:80 -r 10.0.1.1:80 -g -w 9\n');
  assert.equal(stderr(), '');
  writeFileSync(good, 'virtual_server 10.0.0.5 80 {\n  real_server 10.0.1.1 80 {\n    weight abc\n');
  daemon.kill('SIGHUP');
  await waitFor('the refused reload to be reported', () => stderr().includes('reload of'));
  assert.match(stderr(), /^uvsd: reload of .*good\.conf failed, the running table is unchanged: /);
  assert.equal(uvsadm(socket, ['-S', '-n']).stdout, '-A -t 10.0.0.5:80 -s wrr\n-a -t 10.0.0.5:80 -r 10.0.1.1:80 -g -w 9\n');
  daemon.kill('SIGTERM');
  await exited(daemon, HUNG_MS);
  // A daemon whose file does not check out does not start.
  const refused = spawnSync(process.execPath, [UVSD, '-G', '--io', 'none', '--socket', join(dir, 'd.sock'), '-f', bad], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(refused.status, 5);
  assert.equal(existsSync(join(dir, 'd.sock')), false);
});

test('uvsd options: data-plane options are validated', () => {
  const o = parseUvsdArgs(['-nl', '--io', 'pcap', '--iface', 'uvs0', '--iface=uvs1', '--workers', '3', '--conn-max=1024', '--socket', '/tmp/x.sock']);
  assert.equal(o.io, 'pcap');
  assert.deepEqual(o.ifaces, ['uvs0', 'uvs1']);
  assert.equal(o.workers, 3);
  assert.equal(o.connMax, 1024);
  assert.deepEqual(o.connDefense, {});
  assert.equal(o.fanout, 'hash');
  assert.equal(parseUvsdArgs(['--fanout', 'cpu']).fanout, 'cpu');
  assert.equal(o.busyPollUs, DEFAULT_BUSY_POLL_US);
  assert.equal(parseUvsdArgs(['--busy-poll', '0']).busyPollUs, 0);
  assert.equal(parseUvsdArgs(['--busy-poll=1500']).busyPollUs, 1500);
  assert.equal(o.busyPollMaxUs, DEFAULT_BUSY_POLL_MAX_US);
  assert.equal(parseUvsdArgs(['--busy-poll-max', '0']).busyPollMaxUs, 0);
  // Default workers: one core left to the kernel's receive work, at least one worker.
  assert.deepEqual([1, 2, 4, 200].map((n) => defaultWorkers(n)), [1, 1, 3, 64]);
  assert.equal(parseUvsdArgs([]).workers, defaultWorkers());
  assert.ok(o.dontFork && o.logConsole);
  const d = parseUvsdArgs(['--conn-max', '4096', '--drop-entry', '3', '--drop-packet=1', '--secure-tcp', '2', '--amemthresh', '512', '--am-droprate', '20']);
  assert.deepEqual(d.connDefense, { dropEntry: 3, dropPacket: 1, secureTcp: 2, amemthresh: 512, amDroprate: 20 });
  // The default capacity comes from memory: 1/64 of it at 80 bytes per entry, within bounds.
  assert.equal(defaultConnMax(4 * 2 ** 30), 837_552); // 4 GiB / 64 / 80.125 bytes
  assert.equal(defaultConnMax(2 ** 20), 65_536);
  assert.equal(defaultConnMax(2 ** 50), 0xfffffd);
  assert.equal(parseUvsdArgs(['-f/etc/k.conf']).configFile, '/etc/k.conf');
  const bad: [string[], RegExp][] = [
    [['--io', 'dpdk'], /--io: "dpdk" is not one of ring, xdp, pcap, none/],
    [['--xdp-mode', 'offload'], /--xdp-mode: "offload" is not one of generic, native/],
    [['--fanout', 'rnd'], /--fanout: "rnd" is not one of hash, cpu, lb/],
    [['--busy-poll', '-1'], /--busy-poll: "-1" is not a whole number of µs in 0\.\.100000/],
    [['--busy-poll', '100001'], /--busy-poll: "100001" is not a whole number/],
    [['--busy-poll-max', '2ms'], /--busy-poll-max: "2ms" is not a whole number of µs in 0\.\.100000/],
    [['--workers', '0'], /--workers: 0 is out of range/],
    [['--workers', 'two'], /not a whole number/],
    [['--conn-max', '99999999999'], /out of range/],
    [['--drop-entry', '4'], /--drop-entry: "4" is not one of 0 \(off\), 1, 2 \(auto\), 3 \(always\)/],
    [['--secure-tcp', 'on'], /--secure-tcp: "on" is not one of/],
    [['--conn-max', '100', '--amemthresh', '200'], /--amemthresh: 200 free slots is more than --conn-max \(100\)/],
    [['--am-droprate', '0'], /--am-droprate: 0 is out of range/],
    [['--iface', 'a-name-longer-than-15'], /not a valid interface name/],
    [['--iface'], /needs a value/],
    [['-q'], /unknown option -q/],
    [['--bogus'], /unknown option --bogus/],
    [['stray'], /unexpected argument/],
  ];
  for (const [argv, message] of bad) assert.throws(() => parseUvsdArgs(argv), (e: unknown) => e instanceof UvsdUsageError && message.test(e.message), argv.join(' '));
  const r = spawnSync(process.execPath, [UVSD, '--io', 'dpdk'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^uvsd: --io: "dpdk" is not one of ring, xdp, pcap, none\nUsage: uvsd/);
  assert.equal(parseUvsdArgs(['--io', 'xdp', '--xdp-mode', 'native']).xdpMode, 'native');
  assert.equal(parseUvsdArgs(['--io', 'xdp']).xdpMode, 'generic');
});

test('keepalived 2.2 options: meanings, notes, defaults, errors that name the option', () => {
  const d = parseUvsdArgs([]);
  assert.equal(d.configFile, '/etc/keepalived/keepalived.conf');
  assert.equal(d.configDefault, true);
  assert.equal(d.logFacility, 3); // LOG_DAEMON
  assert.equal(d.pidFile, null);
  const e = parseUvsdArgs(['--no-config']);
  assert.equal(e.configFile, null);
  assert.equal(e.configDefault, false);

  const o = parseUvsdArgs(['-nDP', '-S', '2', '-G', '-p', '/tmp/k.pid', '--vrrp_pid=/tmp/v.pid', '-c/tmp/c.pid', '-i', 'lb1', '-u', '022', '-BR', '--all', '-g', '/tmp/log', '-x']);
  assert.ok(o.logDetail && o.vrrpOnly && !o.checkOnly && o.noSyslog && o.dontFork);
  assert.equal(o.dontRespawn, true, '-R: a dead VRRP thread is not restarted');
  assert.equal(parseUvsdArgs([]).dontRespawn, false);
  assert.equal(o.logFacility, 18); // local2
  assert.deepEqual([o.pidFile, o.vrrpPidFile, o.checkersPidFile], ['/tmp/k.pid', '/tmp/v.pid', '/tmp/c.pid']);
  assert.equal(o.configId, 'lb1');
  assert.equal(o.umask, 0o22);
  assert.deepEqual(o.notes.map((n) => n.split(' accepted')[0]), [
    "option -B (keepalived's --no_bfd)", "option --all (keepalived's --all)",
    "option -g (keepalived's --log-file)", "option -x (keepalived's --snmp)",
  ]);
  for (const [arg, n] of [['local7', 23], ['user', 1], ['daemon', 3], ['0', 16]] as const) assert.equal(parseUvsdArgs(['-S', arg]).logFacility, n);
  assert.equal(parseUvsdArgs(['--log-facility=local4']).logFacility, 20);
  assert.ok(parseUvsdArgs(['-C']).checkOnly);
  assert.equal(parseUvsdArgs(['--config-test=/tmp/t.log']).configTestLog, '/tmp/t.log');
  assert.equal(parseUvsdArgs(['-t']).configTestLog, null);
  assert.equal(parseUvsdArgs(['--signum=reload']).signum, 'RELOAD');

  const bad: [string[], RegExp][] = [
    [['-S', 'mail'], /^-S: "mail" is not a facility/],
    [['--log-facility=8'], /^--log-facility: "8" is not a facility/],
    [['-S'], /^option -S needs a value/],
    [['-f', '/a', '--no-config'], /--no-config and -f\/--use-file exclude each other/],
    [['-u', '0999'], /^-u: "0999" is not a umask/],
    [['-T'], /^-T: genhash mode is not part of uvsd/],
    [['-s', 'ns1'], /^-s: uvsd runs in the network namespace it is started in; use ip netns exec ns1/],
    [['--signum=STATS_CLEAR'], /^--signum: uvsd does not handle STATS_CLEAR: the VRRP counters are not cleared/],
    [['--signum=FOO'], /^--signum: unknown signal function "FOO"/],
    [['-p', ''], /^-p: empty file name/],
    [['--dont-fork=1'], /^option --dont-fork takes no value/],
  ];
  for (const [argv, message] of bad) assert.throws(() => parseUvsdArgs(argv), (err: unknown) => err instanceof UvsdUsageError && message.test(err.message), argv.join(' '));
});

test('--signum prints the signal numbers; --version prints package.json\'s version', () => {
  const stop = spawnSync(process.execPath, [UVSD, '--signum=STOP'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(stop.stdout, '15\n');
  assert.equal(spawnSync(process.execPath, [UVSD, '--signum=RELOAD'], { encoding: 'utf8', timeout: 10_000 }).stdout, '1\n');
  // keepalived's numbers for DATA (SIGUSR1) and STATS (SIGUSR2); JSON is SIGURG (keepalived's
  // SIGRTMIN+2 cannot be caught by Node.js).
  assert.deepEqual(['DATA', 'STATS', 'JSON'].map((f) => parseUvsdArgs([`--signum=${f}`]).signum), ['DATA', 'STATS', 'JSON']);
  assert.equal(spawnSync(process.execPath, [UVSD, '--signum=DATA'], { encoding: 'utf8', timeout: 10_000 }).stdout, '10\n');
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const v = spawnSync(process.execPath, [UVSD, '--version'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(v.status, 0);
  assert.match(v.stdout, new RegExp(`^uvsd ${version.replace(/\./g, '\\.')} \\(uvs, IPVS 1\\.2\\.1 compatible`));
});

test('-t runs the VRRP conversion a start runs: what a start would refuse, -t refuses too (not with -C)', (t) => {
  // keepalived -t wants an existing, non-loopback interface; it is only read, never changed.
  const ifname = Object.keys(networkInterfaces()).find((n) => n !== 'lo');
  if (ifname === undefined) {
    t.skip('no non-loopback interface on this machine');
    return;
  }
  const ah = join(dir, 'ah.conf');
  writeFileSync(ah, `vrrp_instance VI_1 {\n  state BACKUP\n  interface ${ifname}\n  virtual_router_id 51\n  priority 100\n` +
    '  mcast_src_ip 10.9.9.1\n  authentication {\n    auth_type AH\n    auth_pass secret\n  }\n  virtual_ipaddress {\n    10.9.9.9/32\n  }\n}\n');
  const r = spawnSync(process.execPath, [UVSD, '-t', '-f', ah], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /ah\.conf:7: vrrp_instance VI_1: auth_type AH is not supported/);
  const checkersOnly = spawnSync(process.execPath, [UVSD, '-t', '-C', '-f', ah], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(checkersOnly.status, 0, `-C runs no VRRP, so -t -C does not check it\n${checkersOnly.stderr}`);
});

test('uvsadm whose reader stops early (| head) ends as ipvsadm does on SIGPIPE: status 141, nothing on stderr', async () => {
  // The read end is closed before uvsadm (a node process, tens of ms to start) writes.
  const child = spawn(process.execPath, [UVSADM, '--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  assert.equal(status, 141, stderr);
  assert.equal(stderr, '');
});
