// Every setting reloads: the checkers' script_user / enable_script_security (the script runner is
// rebuilt, and the MISC_CHECK scripts it prepared with it) and their SMTP settings (smtp_server,
// notification_email), and the VRRP glue's notify scripts and SMTP settings. The daemon runs
// in-process with --io none; VRRP on the fake io module; mail goes to local SMTP sinks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../src/control/daemon';
import { parseUvsdArgs } from '../../src/control/uvsd-options';
import { linesLogger } from '../../src/runtime/log';
import { smtpSink } from '../notify/smtp-sink';

async function waitFor(what: string, cond: () => boolean, log: string[], ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}\nlog:\n${log.join('\n')}`);
}

async function withDaemon(dir: string, conf: string, body: (daemon: Daemon, log: string[]) => Promise<void>, vrrp = false): Promise<void> {
  const log: string[] = [];
  const daemon = await Daemon.start(
    parseUvsdArgs(['--io', 'none', '--socket', join(dir, 'uvsd.sock'), '-f', conf]),
    linesLogger(log, 'E '),
    {},
    vrrp
      ? {
        vrrp: {
          io: { module: join(__dirname, '..', 'vrrp', 'fake-io.js'), options: { channel: `uvs-reload-settings-${process.pid}-${Date.now()}` } },
          facts: () => ({ ifindex: () => 0, primaryAddress: () => '10.0.0.1' }),
        },
      }
      : {},
  );
  try {
    await body(daemon, log);
  } finally {
    await daemon.stop();
  }
}

function checkerConf(dir: string, globals: string): string {
  return `global_defs {
  router_id reload-test
${globals}
}
virtual_server 10.0.0.1 80 {
  delay_loop 0.2
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 10.0.1.1 80 {
    weight 1
    MISC_CHECK {
      misc_path "${join(dir, 'rs.sh')}"
      misc_timeout 2
    }
  }
}
`;
}

const SECURE = '  script_user root\n  enable_script_security';

test('a reload that changes script_user runs the running MISC_CHECKs as the new user', { timeout: 30_000 }, async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root (scripts run as another user)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'uvs-reload-settings-'));
  try {
    chmodSync(dir, 0o755);
    const conf = join(dir, 'keepalived.conf');
    // Succeeds only as root: the real server is in while the check runs as root, out as nobody.
    writeFileSync(join(dir, 'rs.sh'), '#!/bin/sh\n[ "$(id -u)" = 0 ]\n', { mode: 0o755 });
    writeFileSync(conf, checkerConf(dir, SECURE));
    await withDaemon(dir, conf, async (daemon, log) => {
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(daemon.model.list()[0]?.dests.length, 1, log.join('\n'));
      writeFileSync(conf, checkerConf(dir, '  script_user nobody\n  enable_script_security'));
      await daemon.reload();
      assert.ok(log.some((l) => /^reloaded /.test(l)), log.join('\n'));
      await waitFor('the check to run as nobody (and fail)', () => daemon.model.list()[0]?.dests.length === 0, log);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reload that moves smtp_server sends the checkers\' next alerts to the new server', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-reload-settings-'));
  const a = await smtpSink();
  const b = await smtpSink();
  try {
    const conf = join(dir, 'keepalived.conf');
    const code = join(dir, 'rs.code');
    writeFileSync(code, '0');
    writeFileSync(join(dir, 'rs.sh'), `#!/bin/sh\nexit $(cat ${code})\n`, { mode: 0o755 });
    const mail = (port: number): string => `  notification_email {\n    ops@example.com\n  }\n  smtp_server 127.0.0.1 ${port}\n  smtp_connect_timeout 5`;
    writeFileSync(conf, checkerConf(dir, `${SECURE}\n${mail(a.port)}`));
    await withDaemon(dir, conf, async (daemon, log) => {
      writeFileSync(code, '1');
      await waitFor('DOWN mailed to the first server', () => a.subjects.some((s) => /DOWN/.test(s)), log);
      writeFileSync(conf, checkerConf(dir, `${SECURE}\n${mail(b.port)}`));
      await daemon.reload();
      assert.ok(log.some((l) => /^reloaded /.test(l)), log.join('\n'));
      writeFileSync(code, '0');
      await waitFor('UP mailed to the second server', () => b.subjects.some((s) => /UP/.test(s)), log);
      assert.ok(!a.subjects.some((s) => /UP/.test(s)), `the first server got: ${a.subjects.join(' | ')}`);
    });
  } finally {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function vrrpConf(dir: string, notify: string, port: number): string {
  return `global_defs {
  router_id reload-test
${SECURE}
  notification_email {
    ops@example.com
  }
  smtp_server 127.0.0.1 ${port}
  vrrp_version 3
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority ${port % 200 + 1}
  advert_int 0.1
  garp_master_delay 0
  smtp_alert
  notify ${join(dir, notify)}
  virtual_ipaddress {
    10.0.0.100/32
  }
}
`;
}

test('a reload that changes the notify script and smtp_server: the VRRP glue uses the new ones', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-reload-settings-'));
  const a = await smtpSink();
  const b = await smtpSink();
  try {
    for (const n of ['one', 'two']) {
      writeFileSync(join(dir, `${n}.sh`), `#!/bin/sh\necho "$@" >> ${join(dir, `${n}.log`)}\n`, { mode: 0o755 });
    }
    const notified = (n: string): string => { try { return readFileSync(join(dir, `${n}.log`), 'utf8'); } catch { return ''; } };
    const conf = join(dir, 'keepalived.conf');
    writeFileSync(conf, vrrpConf(dir, 'one.sh', a.port));
    await withDaemon(dir, conf, async (daemon, log) => {
      await waitFor('MASTER', () => daemon.vrrpGlue?.instanceStates().get('VI_1') === 'MASTER', log);
      await waitFor('notify one MASTER', () => notified('one').includes('INSTANCE VI_1 MASTER'), log);
      await waitFor('MASTER mail to the first server', () => a.subjects.some((s) => /MASTER/.test(s)), log);
      writeFileSync(conf, vrrpConf(dir, 'two.sh', b.port));
      await daemon.reload();
      assert.ok(log.some((l) => /^reloaded /.test(l)), log.join('\n'));
    }, true);
    // The stop (notify_stop, the "Stopping" mail) goes through the reloaded settings.
    await waitFor('notify two STOP', () => notified('two').includes('INSTANCE VI_1 STOP'), []);
    await waitFor('STOP mail to the second server', () => b.subjects.some((s) => /Stopping/.test(s)), []);
    assert.ok(!notified('one').includes('STOP'));
    assert.ok(!a.subjects.some((s) => /Stopping/.test(s)));
  } finally {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
