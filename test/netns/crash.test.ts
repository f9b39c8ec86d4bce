// A crash of uvsd (an exception nothing handled) leaves nothing behind: the kernel guard (its
// nftables table) is removed, the error is logged, and the exit status is non-zero (70) so
// systemd's Restart=on-failure starts a fresh uvsd. The crash is injected from outside the
// daemon's code: a --require preload throws from a SIGUSR2 handler on the main thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cannotRunNetns, inNs, labSuffix } from './helpers';
import { UVSADM, UVSD } from './uvsd-process';

const skip = cannotRunNetns();

test('an uncaught exception: uvsd logs it, removes its nftables guard and exits 70', { skip: skip ?? false, timeout: 60_000 }, async () => {
  const s = labSuffix('cr');
  const ns = `uvscr${s}`;
  const dir = mkdtempSync(join(tmpdir(), 'uvs-crash-'));
  const preload = join(dir, 'crash.js');
  writeFileSync(preload, "if (require('node:worker_threads').isMainThread) process.on('SIGUSR2', () => { throw new Error('injected crash'); });\n");
  spawnSync('ip', ['netns', 'add', ns]);
  try {
    assert.equal(inNs(ns, 'ip', ['link', 'add', `uvscr${s}a`, 'type', 'veth', 'peer', 'name', `uvscr${s}b`]).status, 0);
    inNs(ns, 'ip', ['addr', 'add', '10.88.0.1/24', 'dev', `uvscr${s}a`]);
    inNs(ns, 'ip', ['link', 'set', `uvscr${s}a`, 'up']);
    inNs(ns, 'ip', ['link', 'set', `uvscr${s}b`, 'up']);
    inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--require', preload, UVSD, '-n', '-l', '--no-config', '--iface', `uvscr${s}a`, '--workers', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    while (!/data plane: (\d+ worker|libpcap)/.test(log)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`uvsd did not come up:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(inNs(ns, process.execPath, [UVSADM, '-A', '-t', '10.88.0.100:80', '-s', 'rr']).status, 0);
    assert.equal(inNs(ns, process.execPath, [UVSADM, '-a', '-t', '10.88.0.100:80', '-r', '10.88.0.2:80', '-g']).status, 0);
    assert.equal(inNs(ns, 'nft', ['list', 'table', 'ip', 'uvs']).status, 0, 'the guard is installed');
    child.kill('SIGUSR2');
    const code = await exited;
    assert.equal(code, 70, log);
    assert.match(log, /fatal: uncaught exception: Error: injected crash/);
    assert.notEqual(inNs(ns, 'nft', ['list', 'table', 'ip', 'uvs']).status, 0, `the guard table is gone\n${log}`);
  } finally {
    spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean).forEach((pid) => spawnSync('kill', ['-9', pid]));
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
});
