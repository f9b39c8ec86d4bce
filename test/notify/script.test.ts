// Notify scripts: keepalived's command-line splitting, arguments of RS/VRRP notifies, no shell,
// script_user, bounded run time, and the script-security refusals (those need root to chown).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shellCommand, splitCommand } from '../../src/notify/command';
import { ScriptError, ScriptRunner, notifyVrrp } from '../../src/notify/script';
import { checkScriptSecurity, lookupUser, unsafeComponent } from '../../src/notify/security';
import { tempDir, writeScript } from '../check/helpers';

const dir = tempDir('notify');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;
const root = { scriptUser: { user: 'root' } };

test("splitCommand: keepalived's quoting and escapes", () => {
  assert.deepEqual(splitCommand('/bin/a b  c'), ['/bin/a', 'b', 'c']);
  assert.deepEqual(splitCommand(`/x ' spaces\\x20f\\x69le ' '"s p a c e "' SG1.low master`), ['/x', ' spaces file ', '"s p a c e "', 'SG1.low', 'master']);
  assert.deepEqual(splitCommand('abcd" efg h jkl "mnop'), ['abcd efg h jkl mnop']);
  assert.deepEqual(splitCommand('a\\tb \\101 \\cA'), ['a\tb', 'A', '\x01']);
  assert.throws(() => splitCommand("/bin/x 'open"), /unterminated ' quote opened at column 8/);
  assert.throws(() => splitCommand('   '), /empty command line/);
  assert.equal(shellCommand(['/bin/echo', "it's", 'a b']), `'/bin/echo' 'it'\\''s' 'a b'`);
  assert.equal(shellCommand(['</dev/tcp/10.0.0.1/80']), '</dev/tcp/10.0.0.1/80');
});

test('run: the command is executed without a shell; arguments arrive intact', async () => {
  const out = path.join(dir, 'argv.txt');
  const s = writeScript(dir, 'argv.sh', `#!/bin/sh\nfor a in "$@"; do printf '[%s]' "$a"; done > ${out}\n`);
  const runner = new ScriptRunner(root);
  const p = runner.prepare({ command: `${s} '$(touch ${dir}/pwned)' "a;b" *` });
  assert.equal(p.useShell, false);
  const o = await runner.run(p);
  assert.equal(o.exitCode, 0);
  assert.equal(fs.readFileSync(out, 'utf8'), `[$(touch ${dir}/pwned)][a;b][*]`);
  assert.equal(fs.existsSync(`${dir}/pwned`), false, 'no shell interpreted the words');
});

test('run: a shell file test "</dev/…" goes through /bin/sh as keepalived does', async () => {
  const runner = new ScriptRunner(root);
  const ok = runner.prepare({ command: '</dev/null' });
  assert.equal(ok.useShell, true);
  assert.equal((await runner.run(ok)).exitCode, 0);
  const missing = runner.prepare({ command: `<${dir}/does-not-exist` });
  assert.notEqual((await runner.run(missing)).exitCode, 0);
});

test('run: the environment loses IFS, LD_PRELOAD and LD_LIBRARY_PATH', async () => {
  const out = path.join(dir, 'env.txt');
  const s = writeScript(dir, 'env.sh', `#!/bin/sh\nenv > ${out}\n`);
  const runner = new ScriptRunner(root);
  await runner.run(runner.prepare({ command: s }), [], 5000, { LD_LIBRARY_PATH: '/evil', KEEP_ME: 'yes' });
  const env = fs.readFileSync(out, 'utf8');
  assert.match(env, /^KEEP_ME=yes$/m);
  assert.doesNotMatch(env, /^LD_LIBRARY_PATH=/m);
});

test('run: bounded run time — the script is killed at the timeout', async () => {
  const s = writeScript(dir, 'forever.sh', '#!/bin/sh\nsleep 30\n');
  const runner = new ScriptRunner(root);
  const started = Date.now();
  const o = await runner.run(runner.prepare({ command: s }), [], 200);
  assert.equal(o.timedOut, true);
  assert.equal(o.exitCode, null);
  assert.ok(Date.now() - started < 1500);
});

test('notifyVrrp: notify_master with no extra args, then notify with INSTANCE NAME STATE PRIORITY', async () => {
  const log = path.join(dir, 'vrrp.log');
  const s = writeScript(dir, 'vrrp.sh', `#!/bin/sh\necho "$*" >> ${log}\n`);
  const runner = new ScriptRunner(root);
  const scripts = { notifyMaster: runner.prepare({ command: `${s} became-master` }), notify: runner.prepare({ command: s }) };
  await notifyVrrp(runner, scripts, 'INSTANCE', 'VI_1', 'MASTER', 150);
  await notifyVrrp(runner, scripts, 'GROUP', 'VG_1', 'FAULT', 0);
  assert.deepEqual(fs.readFileSync(log, 'utf8').trim().split('\n'), ['became-master', 'INSTANCE VI_1 MASTER 150', 'GROUP VG_1 FAULT 0']);
});

test('script_user: the script runs with that uid', async (t) => {
  const nobody = lookupUser('nobody');
  if (!isRoot || !nobody) {
    t.skip('needs root and a "nobody" user');
    return;
  }
  const outDir = path.join(dir, 'shared');
  fs.mkdirSync(outDir, { mode: 0o777 });
  fs.chmodSync(outDir, 0o777);
  const s = writeScript(dir, 'whoami.sh', `#!/bin/sh\nid -u > ${outDir}/uid\n`);
  fs.chmodSync(dir, 0o755); // let nobody reach the script
  const runner = new ScriptRunner({ scriptUser: { user: 'nobody' } });
  const o = await runner.run(runner.prepare({ command: s }));
  assert.equal(o.exitCode, 0, o.output);
  assert.equal(fs.readFileSync(`${outDir}/uid`, 'utf8').trim(), String(nobody.uid));
});

test('security: a world-writable script is refused with enable_script_security, allowed (warned) without', (t) => {
  if (!isRoot) {
    t.skip('needs root: the rules apply to scripts run as root');
    return;
  }
  const s = writeScript(dir, 'loose.sh', '#!/bin/sh\nexit 0\n', 0o757);
  const strict = new ScriptRunner({ ...root, enableScriptSecurity: true });
  assert.throws(
    () => strict.prepare({ command: s }),
    (err: unknown) => err instanceof ScriptError && err.code === 'UVS_ERR_SCRIPT_REFUSED' && /Unsafe permissions.*writable by everyone/.test(err.message),
  );
  const lax = new ScriptRunner(root).prepare({ command: s });
  assert.match(lax.warnings.join(), /Unsafe permissions found for script/);
});

test('security: a script owned by a non-root user, or in a directory such a user can write, is refused', (t) => {
  if (!isRoot) {
    t.skip('needs root to chown');
    return;
  }
  const user = { name: 'root', uid: 0, gid: 0 };
  const owned = writeScript(dir, 'owned.sh', '#!/bin/sh\nexit 0\n');
  fs.chownSync(owned, 65534, 0);
  const v1 = checkScriptSecurity([owned], user, true);
  assert.equal(v1.runnable, false);
  assert.match(v1.messages.join(), /owned by uid 65534, not root/);

  const open = path.join(dir, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777); // world-writable, no sticky bit
  const inOpen = writeScript(open, 'x.sh', '#!/bin/sh\nexit 0\n');
  const v2 = checkScriptSecurity([inOpen], user, true);
  assert.equal(v2.runnable, false);
  assert.match(v2.messages.join(), /open is writable by everyone/);
  // With the sticky bit (like /tmp) the directory is acceptable.
  fs.chmodSync(open, 0o1777);
  assert.equal(unsafeComponent(inOpen), null);
  assert.equal(checkScriptSecurity([inOpen], user, true).runnable, true);

  // Run as a non-root user, no protection is needed (keepalived checks only root-run scripts).
  assert.equal(checkScriptSecurity([owned], { name: 'nobody', uid: 65534, gid: 65534 }, true).runnable, true);
});

test('security: not found, not executable, and PATH search', () => {
  const user = { name: 'root', uid: 0, gid: 0 };
  assert.match(checkScriptSecurity([`${dir}/nope.sh`], user, false).messages.join(), /cannot be accessed/);
  const plain = writeScript(dir, 'plain.txt', 'x', 0o644);
  assert.match(checkScriptSecurity([plain], user, false).messages.join(), /is not executable/);
  const found = checkScriptSecurity(['true'], user, false);
  assert.equal(found.runnable, true);
  assert.match(found.file ?? '', /\/true$/);
  assert.match(found.messages.join(), /resolved by path search/);
  assert.match(checkScriptSecurity(['no-such-command-uvs'], user, false).messages.join(), /Cannot find script no-such-command-uvs in path/);
});

test('enable_script_security without script_user and without a keepalived_script user: scripts are not run', (t) => {
  if (lookupUser('keepalived_script')) {
    t.skip('this machine has a keepalived_script user');
    return;
  }
  const s = writeScript(dir, 'ok-default.sh', '#!/bin/sh\nexit 0\n');
  assert.throws(() => new ScriptRunner({ enableScriptSecurity: true }).prepare({ command: s }), /unable to set default user keepalived_script/);
  // a user on the script itself is enough
  assert.equal(new ScriptRunner({ enableScriptSecurity: true }).prepare({ command: s, user: 'root' }).user.uid, 0);
  // without security the daemon's own user runs it
  assert.equal(new ScriptRunner({}).prepare({ command: s }).user.uid, process.getuid?.());
});
