// Link state from a sysfs-shaped directory (a temporary one here, /sys/class/net for real).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SysfsInterfaceWatcher, linkIsUp } from '../../src/vrrp/sysfs-interfaces';

function link(root: string, name: string, flags: string, oper: string): void {
  mkdirSync(join(root, name), { recursive: true });
  writeFileSync(join(root, name, 'flags'), `${flags}\n`);
  writeFileSync(join(root, name, 'operstate'), `${oper}\n`);
}

test('IFF_UP and operstate decide; loopback-style "unknown" counts as up; missing is down', () => {
  const root = mkdtempSync(join(tmpdir(), 'uvs-sysfs-'));
  try {
    link(root, 'eth0', '0x1003', 'up');
    link(root, 'lo', '0x9', 'unknown');
    link(root, 'eth1', '0x1002', 'down');
    link(root, 'eth2', '0x1003', 'lowerlayerdown');
    assert.equal(linkIsUp('eth0', root), true);
    assert.equal(linkIsUp('lo', root), true);
    assert.equal(linkIsUp('eth1', root), false);
    assert.equal(linkIsUp('eth2', root), false);
    assert.equal(linkIsUp('nope', root), false);
    assert.equal(linkIsUp('../etc', root), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the watcher reports a change of an interface it was asked about', async () => {
  const root = mkdtempSync(join(tmpdir(), 'uvs-sysfs-'));
  const watcher = new SysfsInterfaceWatcher(root);
  try {
    link(root, 'eth0', '0x1003', 'up');
    assert.equal(watcher.isUp('eth0'), true);
    const changes: [string, boolean][] = [];
    watcher.watch(10, (name, up) => changes.push([name, up]));
    link(root, 'eth0', '0x1002', 'down');
    for (let i = 0; i < 200 && changes.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(changes, [['eth0', false]]);
  } finally {
    watcher.stop();
    rmSync(root, { recursive: true, force: true });
  }
});
