// uvsd against real keepalived (Debian's 2.2.x) on one L2 segment: two network namespaces joined
// by a veth, `uvsd -f keepalived.conf` in one, `keepalived -n -l -D -P` in the other, the same
// virtual_router_id. Checks what issue 6 asks: election by priority in both directions (v2 with
// PASS authentication, v3, unicast peers), failover when the master stops or is killed, preempt
// and nopreempt, never two holders once settled, a wrong password ignored and logged.
// The VIP is looked for with `ip addr` in each namespace, as an operator would.
//
// Needs root and keepalived (CI runs as root and installs keepalived). Namespaces are named
// uvs<suffix>a / uvs<suffix>b and are removed even when a test fails.
//
// Bounds: keepalived against itself (priorities 100/90, advert_int 1) moves the VIP ~0.65 s after
// a clean stop (priority-0 advert: the backup waits Skew_Time) and ~3.3 s after a kill
// (Master_Down_Interval = 3 × advert_int + skew). The asserts allow several times that, so only a
// real protocol fault (e.g. a backup waiting for a second interval) fails them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cannotRunNetns, inNs, labSuffix, namespacesWithPrefix, repoRoot } from './helpers';

const UVSD = join(repoRoot, 'dist', 'src', 'cli', 'uvsd.js');
const S = labSuffix('v');
const P = `uvs${S}`;
const NS_UVS = `${P}a`;
const NS_KA = `${P}b`;
const IF_UVS = `${P}a0`;
const IF_KA = `${P}b0`;
const ADDR_UVS = '10.79.0.1';
const ADDR_KA = '10.79.0.2';
const VIP = '10.79.0.100';
const VRID = 79;

/** Failover after a clean stop: keepalived/keepalived ~0.65 s. */
const CLEAN_STOP_BOUND_MS = 3000;
/** Failover after a kill: Master_Down_Interval ~3.6 s at priority 90. */
const KILL_BOUND_MS = 8000;
/** Election at start-up (a backup waits Master_Down_Interval before it claims). */
const ELECTION_BOUND_MS = 8000;

function whyNot(): string | null {
  const netns = cannotRunNetns();
  if (netns) return netns;
  if (spawnSync('keepalived', ['--version']).error) return 'keepalived is not installed (apt-get install keepalived)';
  if (spawnSync('test', ['-f', UVSD]).status !== 0) return `${UVSD} missing: run npm run build`;
  return null;
}
const why = whyNot();

const dir = mkdtempSync(join(tmpdir(), 'uvs-vrrp-interop-'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Proc {
  child: ChildProcess;
  log: string;
  name: string;
}

const running = new Set<Proc>();

function launch(name: string, ns: string, argv: string[]): Proc {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = { child, log: '', name };
  child.stdout.on('data', (d: Buffer) => (proc.log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (proc.log += d.toString()));
  running.add(proc);
  child.once('exit', () => running.delete(proc));
  return proc;
}

/** Signals a process and waits (bounded) for its exit; returns how long that took. */
async function stop(proc: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<number> {
  const t0 = Date.now();
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return 0;
  const exited = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
  return Date.now() - t0;
}

/** Kills whatever still runs in our namespaces (keepalived's VRRP child outlives a killed
 *  parent), then deletes them. */
function removeNamespaces(): void {
  for (const ns of namespacesWithPrefix(P)) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

function makePair(): void {
  removeNamespaces();
  const run = (...args: string[]): void => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  };
  run('netns', 'add', NS_UVS);
  run('netns', 'add', NS_KA);
  run('link', 'add', IF_UVS, 'netns', NS_UVS, 'type', 'veth', 'peer', 'name', IF_KA, 'netns', NS_KA);
  run('-n', NS_UVS, 'addr', 'add', `${ADDR_UVS}/24`, 'dev', IF_UVS);
  run('-n', NS_KA, 'addr', 'add', `${ADDR_KA}/24`, 'dev', IF_KA);
  for (const [ns, ifname] of [[NS_UVS, IF_UVS], [NS_KA, IF_KA]] as const) {
    run('-n', ns, 'link', 'set', 'lo', 'up');
    run('-n', ns, 'link', 'set', ifname, 'up');
  }
}

interface Side {
  version: 2 | 3;
  priority: number;
  pass?: string;
  unicast?: boolean;
  nopreempt?: boolean;
}

function conf(who: 'uvs' | 'ka', side: Side): string {
  const [ifname, self, peer] = who === 'uvs' ? [IF_UVS, ADDR_UVS, ADDR_KA] : [IF_KA, ADDR_KA, ADDR_UVS];
  const lines = [
    'global_defs {',
    `  router_id ${who}${S}`,
    `  vrrp_version ${side.version}`,
    '}',
    'vrrp_instance VI_1 {',
    '  state BACKUP',
    `  interface ${ifname}`,
    `  virtual_router_id ${VRID}`,
    `  priority ${side.priority}`,
    '  advert_int 1',
  ];
  if (side.nopreempt) lines.push('  nopreempt');
  if (side.version === 2 && side.pass !== undefined) lines.push('  authentication {', '    auth_type PASS', `    auth_pass ${side.pass}`, '  }');
  if (side.unicast) lines.push(`  unicast_src_ip ${self}`, '  unicast_peer {', `    ${peer}`, '  }');
  lines.push('  virtual_ipaddress {', `    ${VIP}/24`, '  }', '}', '');
  const file = join(dir, `${who}.conf`);
  writeFileSync(file, lines.join('\n'));
  return file;
}

async function startUvs(side: Side): Promise<Proc> {
  const file = conf('uvs', side);
  const proc = launch('uvsd', NS_UVS, [process.execPath, UVSD, '-n', '-l', '--io', 'none', '-f', file, '--socket', join(dir, 'uvsd.sock')]);
  const deadline = Date.now() + 15_000;
  while (!/vrrp: 1 instance\(s\) running/.test(proc.log)) {
    if (proc.child.exitCode !== null) throw new Error(`uvsd exited (${proc.child.exitCode}):\n${proc.log}`);
    if (Date.now() > deadline) throw new Error(`uvsd's VRRP did not start:\n${proc.log}`);
    await sleep(50);
  }
  return proc;
}

let kaRuns = 0;

function startKeepalived(side: Side): Proc {
  const file = conf('ka', side);
  // Per-instance pid files (/run is shared by every namespace), new for every start: keepalived
  // refuses to start while a pid file names a live process.
  const run = ++kaRuns;
  return launch('keepalived', NS_KA, ['keepalived', '-n', '-l', '-D', '-P', '-f', file, '-p', join(dir, `ka${run}.pid`), '-r', join(dir, `ka${run}-vrrp.pid`)]);
}

/** "10": only uvs holds the VIP, "01": only keepalived, "11": both, "00": none. */
function holders(): string {
  const has = (ns: string): string => (inNs(ns, 'ip', ['-4', '-o', 'addr', 'show']).stdout.includes(` ${VIP}/`) ? '1' : '0');
  return has(NS_UVS) + has(NS_KA);
}

async function waitHolders(want: string, withinMs: number, what: string, procs: Proc[]): Promise<number> {
  const t0 = Date.now();
  let got = holders();
  while (got !== want) {
    if (Date.now() - t0 > withinMs) {
      assert.fail(`${what}: VIP holders uvs/keepalived = ${got}, want ${want} within ${withinMs} ms\n` +
        procs.map((p) => `--- ${p.name}\n${p.log.split('\n').slice(-25).join('\n')}`).join('\n'));
    }
    await sleep(50);
    got = holders();
  }
  return Date.now() - t0;
}

/** Once settled, never more than one holder: sample both namespaces for `ms`. */
async function assertSingleHolder(want: string, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  let samples = 0;
  while (Date.now() < deadline) {
    const got = holders();
    assert.equal(got, want, `${what}: sample ${samples}: holders uvs/keepalived = ${got}, want ${want}`);
    samples++;
    await sleep(100);
  }
  // Each sample runs `ip` twice; on a loaded machine that is slow, so only a floor is asserted.
  assert.ok(samples >= Math.max(3, Math.floor(ms / 400)), `${what}: only ${samples} samples in ${ms} ms`);
}

/** One scenario in a fresh pair of namespaces, torn down whatever happens. */
async function scenario(body: () => Promise<void>): Promise<void> {
  makePair();
  try {
    await body();
  } finally {
    await Promise.all([...running].map((p) => stop(p, p.name === 'keepalived' ? 'SIGTERM' : 'SIGKILL')));
    removeNamespaces();
  }
}

/** uvs higher: elected; a clean stop hands the VIP over; back, it preempts. */
async function uvsMasterCycle(uvs: Side, ka: Side): Promise<void> {
  const k = startKeepalived(ka);
  let u = await startUvs(uvs);
  await waitHolders('10', ELECTION_BOUND_MS, 'uvs elected (higher priority)', [u, k]);
  await assertSingleHolder('10', 2000, 'uvs master');
  const exitMs = stop(u);
  const moved = await waitHolders('01', CLEAN_STOP_BOUND_MS, 'keepalived takes over after uvsd stops', [u, k]);
  assert.ok((await exitMs) < 3000, `uvsd took ${await exitMs} ms to exit on SIGTERM`);
  assert.match(u.log, /sent 0 priority/, 'uvsd sent its priority-0 advert');
  assert.ok(moved <= CLEAN_STOP_BOUND_MS);
  u = await startUvs(uvs);
  await waitHolders('10', ELECTION_BOUND_MS, 'uvs preempts when it returns', [u, k]);
  await assertSingleHolder('10', 1500, 'uvs master again');
  assert.doesNotMatch(u.log, /uvsd: Keepalived_vrrp/, `uvsd logged VRRP warnings:\n${u.log}`);
}

/** keepalived higher: elected, uvs backup; keepalived stops, uvs takes over; back, it preempts. */
async function kaMasterCycle(uvs: Side, ka: Side): Promise<void> {
  let k = startKeepalived(ka);
  const u = await startUvs(uvs);
  await waitHolders('01', ELECTION_BOUND_MS, 'keepalived elected (higher priority), uvs backup', [u, k]);
  await assertSingleHolder('01', 2000, 'keepalived master');
  await stop(k);
  await waitHolders('10', CLEAN_STOP_BOUND_MS, 'uvs takes over after keepalived stops', [u, k]);
  k = startKeepalived(ka);
  await waitHolders('01', ELECTION_BOUND_MS, 'keepalived preempts when it returns', [u, k]);
  await assertSingleHolder('01', 1500, 'keepalived master again');
  assert.match(u.log, /Entering BACKUP STATE/);
  assert.doesNotMatch(u.log, /uvsd: Keepalived_vrrp/, `uvsd logged VRRP warnings:\n${u.log}`);
}

test('VRRP interop with keepalived', { skip: why ?? false, timeout: 600_000 }, async (t) => {
  await t.test('v2 PASS: uvsd (100) master, keepalived (90) backup; clean stop, preempt', () =>
    scenario(() => uvsMasterCycle({ version: 2, priority: 100, pass: 'uvspw' }, { version: 2, priority: 90, pass: 'uvspw' })));

  await t.test('v2 PASS: keepalived (150) master, uvsd (90) backup; clean stop, preempt', () =>
    scenario(() => kaMasterCycle({ version: 2, priority: 90, pass: 'uvspw' }, { version: 2, priority: 150, pass: 'uvspw' })));

  await t.test('v3: uvsd master, keepalived backup', () =>
    scenario(() => uvsMasterCycle({ version: 3, priority: 100 }, { version: 3, priority: 90 })));

  await t.test('v3: keepalived master, uvsd backup', () =>
    scenario(() => kaMasterCycle({ version: 3, priority: 90 }, { version: 3, priority: 150 })));

  await t.test('v2 unicast peers: uvsd master, keepalived backup', () =>
    scenario(() => uvsMasterCycle({ version: 2, priority: 100, pass: 'uvspw', unicast: true }, { version: 2, priority: 90, pass: 'uvspw', unicast: true })));

  await t.test('v3 unicast peers: keepalived master, uvsd backup', () =>
    scenario(() => kaMasterCycle({ version: 3, priority: 90, unicast: true }, { version: 3, priority: 150, unicast: true })));

  await t.test('killed: SIGKILL on uvsd master; keepalived takes over after Master_Down_Interval; uvsd back purges the stale VIP and preempts', () =>
    scenario(async () => {
      const k = startKeepalived({ version: 2, priority: 90, pass: 'uvspw' });
      let u = await startUvs({ version: 2, priority: 100, pass: 'uvspw' });
      await waitHolders('10', ELECTION_BOUND_MS, 'uvs elected', [u, k]);
      await stop(u, 'SIGKILL');
      // No priority 0: the VIP stays behind on uvs's side, keepalived claims it after ~3.6 s.
      const moved = await waitHolders('11', KILL_BOUND_MS, 'keepalived takes over after uvsd is killed', [u, k]);
      assert.ok(moved > 2000, `keepalived claimed after ${moved} ms: sooner than Master_Down_Interval allows`);
      u = await startUvs({ version: 2, priority: 100, pass: 'uvspw' });
      await waitHolders('10', ELECTION_BOUND_MS + 2000, 'uvsd restarts, removes the stale VIP, preempts', [u, k]);
      await assertSingleHolder('10', 1500, 'uvs master after restart');
    }));

  await t.test('killed: SIGKILL on keepalived master; uvsd takes over after Master_Down_Interval', () =>
    scenario(async () => {
      const k = startKeepalived({ version: 3, priority: 150 });
      const u = await startUvs({ version: 3, priority: 90 });
      await waitHolders('01', ELECTION_BOUND_MS, 'keepalived elected', [u, k]);
      // The VRRP child sends the adverts. Its parent would respawn it if it died, and its own
      // death would make the child stop cleanly (PR_SET_PDEATHSIG → priority 0): freeze the
      // parent, kill the child, then the parent.
      const children = spawnSync('pgrep', ['-P', String(k.child.pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
      assert.ok(children.length > 0, 'keepalived has a VRRP child process');
      process.kill(k.child.pid!, 'SIGSTOP');
      for (const pid of children) process.kill(pid, 'SIGKILL');
      await stop(k, 'SIGKILL');
      const moved = await waitHolders('11', KILL_BOUND_MS, 'uvs takes over after keepalived is killed', [u, k]);
      assert.ok(moved > 2000, `uvs claimed after ${moved} ms: sooner than Master_Down_Interval allows`);
    }));

  await t.test('nopreempt on uvsd: the higher-priority uvsd stays backup while keepalived is master', () =>
    scenario(async () => {
      const k = startKeepalived({ version: 2, priority: 90, pass: 'uvspw' });
      await waitHolders('01', ELECTION_BOUND_MS, 'keepalived alone becomes master', [k]);
      const u = await startUvs({ version: 2, priority: 100, pass: 'uvspw', nopreempt: true });
      await assertSingleHolder('01', 5000, 'uvs (nopreempt) stays out');
      await stop(k);
      await waitHolders('10', CLEAN_STOP_BOUND_MS, 'uvs takes over once keepalived stops', [u, k]);
    }));

  await t.test('nopreempt on keepalived: the higher-priority keepalived stays backup while uvsd is master', () =>
    scenario(async () => {
      const u = await startUvs({ version: 2, priority: 90, pass: 'uvspw' });
      await waitHolders('10', ELECTION_BOUND_MS, 'uvs alone becomes master', [u]);
      const k = startKeepalived({ version: 2, priority: 150, pass: 'uvspw', nopreempt: true });
      await assertSingleHolder('10', 5000, 'keepalived (nopreempt) stays out');
      await stop(u);
      await waitHolders('01', CLEAN_STOP_BOUND_MS, 'keepalived takes over once uvsd stops', [u, k]);
    }));

  await t.test('SIGHUP: an unchanged instance keeps the VIP; a lowered priority hands it to keepalived', () =>
    scenario(async () => {
      const k = startKeepalived({ version: 2, priority: 90, pass: 'uvspw' });
      const u = await startUvs({ version: 2, priority: 100, pass: 'uvspw' });
      await waitHolders('10', ELECTION_BOUND_MS, 'uvs elected', [u, k]);
      const reloads = (): number => (u.log.match(/vrrp: configuration reloaded/g) ?? []).length;
      u.child.kill('SIGHUP'); // the same file again
      for (let i = 0; i < 50 && reloads() < 1; i++) await sleep(100);
      assert.equal(reloads(), 1, `no reload logged:\n${u.log}`);
      await assertSingleHolder('10', 2000, 'the unchanged instance is not disturbed by the reload');
      assert.equal((u.log.match(/Entering MASTER STATE/g) ?? []).length, 1, `the instance was restarted:\n${u.log}`);
      conf('uvs', { version: 2, priority: 80, pass: 'uvspw' });
      u.child.kill('SIGHUP');
      await waitHolders('01', ELECTION_BOUND_MS, 'keepalived (90) preempts uvsd reloaded at priority 80', [u, k]);
      assert.equal(reloads(), 2, `one reload per SIGHUP:\n${u.log}`);
    }));

  await t.test('wrong password: the advert is ignored and logged', () =>
    scenario(async () => {
      const k = startKeepalived({ version: 2, priority: 150, pass: 'otherpw' });
      const u = await startUvs({ version: 2, priority: 100, pass: 'uvspw' });
      // Each side drops the other's adverts, so each becomes master (keepalived does the same).
      await waitHolders('11', ELECTION_BOUND_MS, 'uvs did not obey the bad advert', [u, k]);
      const line = new RegExp(`received an invalid password from ${ADDR_KA.replace(/\./g, '\\.')}`);
      for (let i = 0; i < 50 && !line.test(u.log); i++) await sleep(100); // the next advert, within 5 s
      assert.match(u.log, line, `no log line:\n${u.log}`);
      await assertSingleHolder('11', 1500, 'uvs stays master despite the bad adverts');
    }));
});

after(async () => {
  await Promise.all([...running].map((p) => stop(p, 'SIGKILL')));
  if (!why) removeNamespaces();
  rmSync(dir, { recursive: true, force: true });
});
