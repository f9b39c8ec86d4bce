// systemd/uvsd.service: systemd-analyze verify accepts it (with ExecStart pointed at this
// checkout's bin/uvsd, as systemd/install.sh does for the installed one), and it says what the
// README promises: Type=notify, ExecReload HUP, Restart=on-failure, keepalived's environment
// files, a bounded capability set. Skipped where systemd-analyze is not installed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(__dirname, '..', '..', '..');
const unit = readFileSync(join(root, 'systemd', 'uvsd.service'), 'utf8');
const haveAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

test('uvsd.service passes systemd-analyze verify', { skip: haveAnalyze ? false : 'systemd-analyze is not installed (apt-get install systemd)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-unit-'));
  try {
    const file = join(dir, 'uvsd.service');
    const local = unit.replace('ExecStart=/usr/bin/uvsd ', `ExecStart=${join(root, 'bin', 'uvsd')} `);
    writeFileSync(file, local);
    // --man=no: the man pages are checked by the man test, not installed on this machine.
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /uvsd\.service/, r.stderr);
    // A broken unit is refused, so the check above can fail.
    writeFileSync(file, local.replace('ExecReload=/bin/kill', 'ExecReload=kill-that-is-not-there'));
    const bad = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(bad.status, 0, bad.stderr);
    assert.match(bad.stderr, /kill-that-is-not-there/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uvsd.service: notify, HUP reload, restart on failure, environment files, capabilities', () => {
  const has = (line: string): void => assert.ok(unit.split('\n').includes(line), `missing: ${line}`);
  has('Type=notify');
  has('ExecReload=/bin/kill -HUP $MAINPID');
  has('Restart=on-failure');
  has('EnvironmentFile=-/etc/default/uvsd');
  has('EnvironmentFile=-/etc/sysconfig/uvsd');
  has('ExecStart=/usr/bin/uvsd --dont-fork $DAEMON_ARGS $UVSD_OPTIONS');
  has('ConditionFileNotEmpty=/etc/keepalived/keepalived.conf');
  const caps = /^CapabilityBoundingSet=(.*)$/m.exec(unit)![1]!.split(' ');
  assert.deepEqual(caps.sort(), ['CAP_DAC_READ_SEARCH', 'CAP_KILL', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID']);
});
