// End to end on loopback: a real TCP server checked by the runner (real clock, short delays);
// stopping it takes the real server down, its notify_down script runs, and an SMTP alert with
// keepalived's subject and body reaches an SMTP server the test runs (npm smtp-server).
// Starting it again brings the server back with notify_up and an UP mail.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { CheckRunner } from '../../src/check/runner';
import type { CheckEvent } from '../../src/check/runner';
import type { VirtualServerOptions } from '../../src/check/types';
import { Notifier } from '../../src/check/notifier';
import type { NotifyRecord } from '../../src/check/notifier';
import { ScriptRunner } from '../../src/notify/script';
import { SmtpAlerter, alertForVrrp } from '../../src/notify/smtp';
import { alertForEvent } from '../../src/check/notifier';
import { listen, tempDir, writeScript } from '../check/helpers';

interface Mail {
  from: string;
  to: string[];
  helo: string;
  data: string;
}

async function smtpSink(): Promise<{ port: number; mails: Mail[]; close: () => void }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, cb) {
      let data = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => (data += d));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          helo: session.hostNameAppearsAs,
          // unfold long header lines (RFC 5322 §2.2.3) so tests read them whole
          data: data.replace(/\r\n[ \t]+/g, ' '),
        });
        cb();
      });
    },
  });
  server.on('error', () => undefined);
  const port = await listen(server.server);
  return { port, mails, close: () => server.close() };
}

async function waitFor(what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const dir = tempDir('alert');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('keepalived subjects and bodies for real server, quorum and VRRP alerts', () => {
  const vs: VirtualServerOptions = { id: 1, address: '10.0.0.100', port: 80, quorum: 2, hysteresis: 1, realServers: [] };
  const rs = { id: 7, address: '10.0.0.7', port: 8080, checkers: [] };
  const down: CheckEvent = { type: 'rs-down', vs, rs, inhibit: false, checker: 'HTTP_GET', trail: ['status 500 not in status_code 200-299'], initial: false, stopping: false };
  const a = alertForEvent(down, 'LVS1')!;
  assert.equal(a.subject, '[LVS1] Realserver [10.0.0.7]:8080 of virtual server [10.0.0.100]:80 - DOWN');
  assert.equal(a.body.split('\r\n')[0], '=> HTTP_GET CHECK failed on service <=');
  const lost = alertForEvent({ type: 'quorum-lost', vs, weightSum: 0, threshold: 1, init: false, stopping: false, sorrySwitched: true }, 'LVS1')!;
  assert.deepEqual(lost, { subject: '[LVS1] Virtualserver [10.0.0.100]:80 - DOWN', body: '=> Lost quorum 2+1=1 <= 0 <=' });
  assert.equal(alertForEvent({ ...down, initial: true }, 'LVS1'), null);
  assert.deepEqual(alertForVrrp('LVS1', 'INSTANCE', 'VI_1', 'MASTER'), { subject: '[LVS1] VRRP Instance VI_1 - Entering MASTER state', body: '=> VRRP Instance is now owning VRRP VIPs <=' });
  assert.deepEqual(alertForVrrp('LVS1', 'INSTANCE', 'VI_1', 'BACKUP').body, '=> VRRP Instance is no longer owning VRRP VIPs <=');
  assert.deepEqual(alertForVrrp('LVS1', 'GROUP', 'VG', 'STOP'), { subject: '[LVS1] VRRP Group VG - Stopping', body: '=> All VRRP group instances are now stopping <=' });
});

test('a stopped server goes down after retry: notify_down runs and a DOWN mail arrives; restarted, it comes back', async () => {
  const sink = await smtpSink();
  let tcp = net.createServer((c) => c.destroy());
  const port = await listen(tcp);
  const log = path.join(dir, 'notify.log');
  const notify = writeScript(dir, 'notify.sh', `#!/bin/sh\necho "$*" >> ${log}\n`);
  const vs: VirtualServerOptions = {
    id: 1,
    address: '10.0.0.100',
    port: 80,
    delayLoop: 0.1,
    warmup: 0,
    retry: 2,
    delayBeforeRetry: 0.05,
    realServers: [
      {
        id: 1,
        address: '127.0.0.1',
        port,
        notifyUp: { command: `${notify} rs1 UP` },
        notifyDown: { command: `${notify} rs1 DOWN` },
        checkers: [{ kind: 'TCP_CHECK', connectTimeout: 0.5 }],
      },
    ],
  };
  const scripts = new ScriptRunner({ scriptUser: { user: 'root' } });
  const runner = new CheckRunner([vs], { checkerContext: { scripts } });
  const smtp = new SmtpAlerter({
    smtpServer: { host: '127.0.0.1', port: sink.port },
    notificationEmail: ['ops@example.test', 'Oncall <oncall@example.test>'],
    notificationEmailFrom: 'uvs@example.test',
    smtpHeloName: 'director1',
    routerId: 'uvs-test',
    smtpConnectTimeout: 5,
  });
  const records: NotifyRecord[] = [];
  const notifier = new Notifier([vs], { scripts, smtp }, (r) => records.push(r));
  assert.deepEqual(notifier.problems, []);
  notifier.attach(runner);
  const checks: boolean[] = [];
  runner.on('event', (e) => e.type === 'check' && checks.push(e.result.ok));
  try {
    runner.start();
    await waitFor('first successful check', () => checks.includes(true));
    await new Promise<void>((r) => tcp.close(() => r()));
    await waitFor('DOWN mail', () => sink.mails.length >= 1);
    // down only after 1 + retry consecutive failures
    const firstFail = checks.indexOf(false);
    assert.deepEqual(checks.slice(firstFail, firstFail + 3), [false, false, false]);
    const mail = sink.mails[0]!;
    assert.match(mail.data, new RegExp(`^Subject: \\[uvs-test\\] Realserver \\[127\\.0\\.0\\.1\\]:${port} of virtual server \\[10\\.0\\.0\\.100\\]:80 - DOWN`, 'm'));
    assert.match(mail.data, /^X-Mailer: Keepalived/m);
    assert.match(mail.data, /=> TCP CHECK failed on service <=/);
    assert.match(mail.data, /ECONNREFUSED/);
    assert.equal(mail.from, 'uvs@example.test');
    assert.deepEqual(mail.to, ['ops@example.test', 'oncall@example.test']);
    assert.equal(mail.helo, 'director1');
    await notifier.idle();
    assert.deepEqual(fs.readFileSync(log, 'utf8').trim().split('\n'), ['rs1 DOWN']);

    tcp = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => tcp.listen(port, '127.0.0.1', () => r()));
    await waitFor('UP mail', () => sink.mails.length >= 2);
    assert.match(sink.mails[1]!.data, /^Subject: .* - UP/m);
    assert.match(sink.mails[1]!.data, /=> TCP CHECK succeed on service <=/);
    await notifier.idle();
    assert.deepEqual(fs.readFileSync(log, 'utf8').trim().split('\n'), ['rs1 DOWN', 'rs1 UP']);
    assert.ok(records.every((r) => r.mail?.outcome.ok !== false));
  } finally {
    await runner.stop();
    await notifier.idle();
    smtp.close();
    tcp.close();
    sink.close();
  }
});

test('an unreachable SMTP server is reported, never thrown', async () => {
  const probe = net.createServer();
  const port = await listen(probe);
  await new Promise<void>((r) => probe.close(() => r()));
  const smtp = new SmtpAlerter({ smtpServer: { host: '127.0.0.1', port }, notificationEmail: ['a@b.test'], smtpConnectTimeout: 2 });
  const o = await smtp.send({ subject: 's', body: 'b' });
  assert.equal(o.ok, false);
  assert.match(o.message, new RegExp(`127\\.0\\.0\\.1:${port} failed: .*ECONNREFUSED`));
  smtp.close();
});

test('Notifier reports a refused notify script at start and does not run it', (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root: security applies to root-run scripts');
    return;
  }
  const loose = writeScript(dir, 'loose-notify.sh', '#!/bin/sh\nexit 0\n', 0o777);
  const vs: VirtualServerOptions = {
    id: 1,
    address: '10.0.0.100',
    port: 80,
    realServers: [{ id: 1, address: '127.0.0.1', port: 1, notifyDown: { command: loose }, checkers: [] }],
  };
  const notifier = new Notifier([vs], { scripts: new ScriptRunner({ scriptUser: { user: 'root' }, enableScriptSecurity: true }) });
  assert.equal(notifier.problems.length, 1);
  assert.match(notifier.problems[0]!, /refused: Unsafe permissions/);
});
