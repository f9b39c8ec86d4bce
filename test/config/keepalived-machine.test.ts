// linuxMachine reads this machine: no root needed, nothing is changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linuxMachine } from '../../src/config/keepalived';

test('linuxMachine: interfaces from /sys/class/net with the loopback flag', () => {
  const m = linuxMachine();
  assert.deepEqual(m.getInterface('lo'), { name: 'lo', loopback: true });
  assert.equal(m.getInterface('uvsnosuchif0'), null);
  assert.equal(m.getInterface('../lo'), null, 'names with a slash are not paths into sysfs');
  assert.equal(m.getInterface(''), null);
});

test('linuxMachine: programs through PATH like execvp, users from /etc/passwd', () => {
  const m = linuxMachine({ PATH: '/usr/bin:/bin' });
  assert.match(m.findExecutable('sh') ?? '', /\/sh$/);
  assert.equal(m.findExecutable('/bin/sh'), '/bin/sh');
  assert.equal(m.findExecutable('uvs-no-such-program'), null);
  assert.equal(m.findExecutable('/etc/passwd'), null, 'not executable');
  assert.equal(m.findExecutable('/etc'), null, 'a directory is not a program');
  assert.equal(m.userExists('root'), true);
  assert.equal(m.userExists('uvs-no-such-user'), false);
});
