// src/control/vrrp.ts (the VRRP glue of uvsd) with the VRRP thread on the fake io module: a
// keepalived.conf in, the data plane's answer (serviceActive) and its re-applies out, notify
// scripts run with keepalived's arguments, vrrp_script results reaching the instance, a reload
// that keeps the running instance, and the shutdown sequence. No network; every wait is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BroadcastChannel } from 'node:worker_threads';
import { parseKeepalivedConfig } from '../../src/config/keepalived/parser';
import { fsReader } from '../../src/config/keepalived/reader';
import type { LoadedConfig } from '../../src/control/config-loader';
import type { DaemonHost } from '../../src/control/host';
import { ServiceModel } from '../../src/service/model';
import { VrrpGlue } from '../../src/control/vrrp';
import { inetAton } from '../../src/config/ipvsadm-addr';
import type { FakeIoCommand, FakeIoEvent } from './fake-io';
import { advert, receipt } from './fakes';
import { linesLogger } from '../../src/runtime/log';
import { smtpSink } from '../notify/smtp-sink';

async function waitFor(what: string, cond: () => boolean, timeoutMs = 4000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A DaemonHost that records what the glue asks of it. */
class FakeDaemon implements DaemonHost {
  readonly model = new ServiceModel();
  listeners: ((l: LoadedConfig) => void)[] = [];
  stops: { name: string; run: () => void | Promise<void> }[] = [];
  applies = 0;
  reapplyDataPlane(): void { this.applies++; }
  onConfig(l: (loaded: LoadedConfig) => void): void { this.listeners.push(l); }
  onStop(name: string, run: () => void | Promise<void>): void { this.stops.push({ name, run }); }
  setLiveView(): void {}
  currentConfig(): LoadedConfig | null { return this.config; }
  config: LoadedConfig | null = null;
  glue: VrrpGlue | null = null;
  /** As Daemon's reload: every listener hears of the file, VRRP commits it, then it becomes the
   *  configuration (`refuse`: another subsystem refused it, so VRRP never commits it). */
  async load(file: string, refuse = false): Promise<void> {
    const loaded = { file, keepalived: parseKeepalivedConfig(file, fsReader).model } as LoadedConfig;
    for (const l of this.listeners) l(loaded);
    if (refuse) return;
    await this.glue?.commit(loaded);
    this.config = loaded;
  }
  async stop(): Promise<void> {
    for (const h of [...this.stops].reverse()) await h.run();
  }
}

function conf(dir: string, vip: string, notifyScript: string): string {
  const file = join(dir, 'keepalived.conf');
  writeFileSync(file, `
global_defs {
  vrrp_version 3
}
vrrp_script chk {
  script "/bin/true"
  interval 0.2
  weight 20
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 0.1
  garp_master_delay 0
  virtual_ipaddress {
    ${vip}/32
  }
  track_script {
    chk
  }
  notify ${notifyScript}
}
`);
  return file;
}

test('uvsd VRRP glue: forwarding follows MASTER, notify scripts, track_script, reload, stop', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-vrrp-glue-'));
  const channelName = `uvs-vrrp-glue-${process.pid}-${Date.now()}`;
  const channel = new BroadcastChannel(channelName);
  const events: FakeIoEvent[] = [];
  channel.onmessage = (e) => events.push((e as { data: FakeIoEvent }).data);
  const notifyLog = join(dir, 'notify.log');
  const script = join(dir, 'notify.sh');
  writeFileSync(script, `#!/bin/sh\necho "$@" >> ${notifyLog}\n`);
  chmodSync(script, 0o755);
  const notified = (): string => { try { return readFileSync(notifyLog, 'utf8'); } catch { return ''; } };

  const daemon = new FakeDaemon();
  const logs: string[] = [];
  const glue = new VrrpGlue(daemon, {
    log: linesLogger(logs, 'ERROR '),
    io: { module: join(__dirname, 'fake-io.js'), options: { channel: channelName } },
    facts: () => ({ ifindex: () => 0, primaryAddress: () => '10.0.0.1' }),
  });
  daemon.glue = glue;
  const vip = inetAton('10.0.0.100')!;
  const other = inetAton('10.0.0.200')!;
  try {
    await daemon.load(conf(dir, '10.0.0.100', script));
    // Before VRRP has spoken: a managed VIP is not served, an unmanaged one is.
    assert.equal(glue.serviceActive(vip), false);
    assert.equal(glue.serviceActive(other), true);

    await glue.start();
    assert.deepEqual(daemon.stops.map((s) => s.name), ['vrrp']);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!logs.some((l) => l.includes('vrrp: configuration reloaded')), 'the first file is started, not reloaded');
    // track_script: /bin/true succeeds, the instance stops waiting for it; alone on the link it
    // becomes MASTER after Master_Down_Interval (3 × 0.1 s + skew).
    await waitFor('MASTER', () => glue.instanceStates().get('VI_1') === 'MASTER');
    assert.equal(glue.serviceActive(vip), true);
    assert.ok(daemon.applies >= 1, 'the data plane was re-applied');
    assert.ok(events.some((e) => e.kind === 'vip' && e.op === 'add' && e.address === '10.0.0.100'));
    // Effective priority 100 + weight 20 while chk succeeds.
    await waitFor('notify MASTER', () => notified().includes('INSTANCE VI_1 MASTER 120'));
    assert.match(notified(), /INSTANCE VI_1 BACKUP/);

    // A file the daemon refuses (another subsystem threw after this one prepared it) is not used.
    await daemon.load(conf(dir, '10.0.0.150', script), true);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(glue.serviceActive(inetAton('10.0.0.150')!), true, 'not managed: the refused file was not adopted');
    assert.equal(glue.serviceActive(vip), true);
    assert.ok(!logs.some((l) => l.includes('vrrp: configuration reloaded')));

    // A higher-priority master appears: BACKUP, and the data plane stops forwarding the VIP.
    const applies = daemon.applies;
    const inject = (): void => channel.postMessage({ kind: 'inject', advert: advert({ version: 3, priority: 200, advertIntCs: 10 }), receipt: receipt() } satisfies FakeIoCommand);
    inject();
    await waitFor('BACKUP', () => glue.instanceStates().get('VI_1') === 'BACKUP');
    assert.equal(glue.serviceActive(vip), false);
    assert.ok(daemon.applies > applies);
    // Keep the other master alive while the reload is checked.
    const keepAlive = setInterval(inject, 50);
    try {
      // Reload with another VIP: the instance is kept (still BACKUP), the old VIP is no longer
      // managed (served unconditionally), the new one is gated.
      const beforeReload = daemon.applies;
      await daemon.load(conf(dir, '10.0.0.200', script));
      await waitFor('reload', () => logs.some((l) => l.includes('vrrp: configuration reloaded')));
      assert.ok(daemon.applies > beforeReload, 'the managed VIPs changed: the data plane is re-applied');
      assert.equal(glue.instanceStates().get('VI_1'), 'BACKUP');
      assert.equal(glue.serviceActive(vip), true);
      assert.equal(glue.serviceActive(other), false);
    } finally {
      clearInterval(keepAlive);
    }
    // The other master goes silent: MASTER again, now for 10.0.0.200.
    await waitFor('MASTER again', () => glue.instanceStates().get('VI_1') === 'MASTER');
    assert.equal(glue.serviceActive(other), true);

    await daemon.stop();
    assert.ok(events.some((e) => e.kind === 'sent' && e.priority === 0), 'priority-0 advert on stop');
    assert.ok(events.some((e) => e.kind === 'vip' && e.op === 'remove' && e.address === '10.0.0.200'));
    await waitFor('closed', () => events.some((e) => e.kind === 'closed'));
    await waitFor('notify STOP', () => notified().includes('INSTANCE VI_1 STOP'));
    // The injected master's adverts name 10.0.0.100; one that crosses the reload to 10.0.0.200 is
    // rightly dropped as "not present in advert" (a warning). Nothing else may be logged as one.
    assert.deepEqual(logs.filter((l) => l.startsWith('ERROR') && !/VRID 51 not present in advert from 10\.0\.0\.3: 10\.0\.0\.200 - dropped/.test(l)), []);
  } finally {
    await daemon.stop().catch(() => undefined);
    channel.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uvsd VRRP glue: smtp_alert mails each new state with keepalived subjects', { timeout: 30_000 }, async () => {
  const sink = await smtpSink();
  const { port, subjects } = sink;
  const dir = mkdtempSync(join(tmpdir(), 'uvs-vrrp-glue-'));
  const channelName = `uvs-vrrp-glue-smtp-${process.pid}-${Date.now()}`;
  const daemon = new FakeDaemon();
  const logs: string[] = [];
  const glue = new VrrpGlue(daemon, {
    log: linesLogger(logs, 'ERROR '),
    io: { module: join(__dirname, 'fake-io.js'), options: { channel: channelName } },
    facts: () => ({ ifindex: () => 0, primaryAddress: () => '10.0.0.1' }),
  });
  daemon.glue = glue;
  try {
    const file = join(dir, 'keepalived.conf');
    writeFileSync(file, `
global_defs {
  router_id lb-test
  notification_email {
    ops@example.com
  }
  notification_email_from uvs@example.com
  smtp_server 127.0.0.1 ${port}
  smtp_connect_timeout 5
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 0.1
  version 3
  smtp_alert
  virtual_ipaddress {
    10.0.0.100/32
  }
}
`);
    await daemon.load(file);
    await glue.start();
    await waitFor('MASTER mail', () => subjects.includes('[lb-test] VRRP Instance VI_1 - Entering MASTER state'));
    assert.deepEqual(subjects, ['[lb-test] VRRP Instance VI_1 - Entering BACKUP state', '[lb-test] VRRP Instance VI_1 - Entering MASTER state']);
    await daemon.stop();
    await waitFor('STOP mail', () => subjects.length === 3);
    assert.equal(subjects[2], '[lb-test] VRRP Instance VI_1 - Stopping');
    assert.deepEqual(logs.filter((l) => l.startsWith('ERROR')), []);
  } finally {
    await daemon.stop().catch(() => undefined);
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uvsd VRRP glue: a failing track_script (weight 0) puts the instance in FAULT after `fall` runs, back after `rise`', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-vrrp-glue-'));
  const channelName = `uvs-vrrp-glue-track-${process.pid}-${Date.now()}`;
  const flag = join(dir, 'healthy');
  const check = join(dir, 'check.sh');
  writeFileSync(check, `#!/bin/sh\n[ -f ${flag} ]\n`);
  chmodSync(check, 0o755);
  writeFileSync(flag, '');
  const daemon = new FakeDaemon();
  const logs: string[] = [];
  const glue = new VrrpGlue(daemon, {
    log: linesLogger(logs, 'ERROR '),
    io: { module: join(__dirname, 'fake-io.js'), options: { channel: channelName } },
    facts: () => ({ ifindex: () => 0, primaryAddress: () => '10.0.0.1' }),
  });
  daemon.glue = glue;
  const vip = inetAton('10.0.0.100')!;
  try {
    const file = join(dir, 'keepalived.conf');
    writeFileSync(file, `
vrrp_script chk {
  script "${check}"
  interval 0.1
  fall 3
  rise 2
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 0.1
  version 3
  virtual_ipaddress {
    10.0.0.100/32
  }
  track_script {
    chk
  }
}
`);
    await daemon.load(file);
    await glue.start();
    await waitFor('MASTER', () => glue.instanceStates().get('VI_1') === 'MASTER');
    rmSync(flag);
    const failedAt = Date.now();
    await waitFor('FAULT', () => glue.instanceStates().get('VI_1') === 'FAULT');
    // fall 3 at interval 0.1 s: not before the third failed run.
    assert.ok(Date.now() - failedAt >= 200, `FAULT after ${Date.now() - failedAt} ms, before 3 failed runs`);
    assert.equal(glue.serviceActive(vip), false);
    writeFileSync(flag, '');
    await waitFor('MASTER again', () => glue.instanceStates().get('VI_1') === 'MASTER');
    assert.equal(glue.serviceActive(vip), true);
    assert.ok(logs.some((l) => l.includes('VRRP_Script(chk) failed')), logs.join('\n'));
  } finally {
    await daemon.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uvsd VRRP glue: the interface\'s primary address changes while running, and the adverts follow it at once', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-vrrp-primary-'));
  const channelName = `uvs-vrrp-primary-${process.pid}-${Date.now()}`;
  const channel = new BroadcastChannel(channelName);
  const events: FakeIoEvent[] = [];
  channel.onmessage = (e) => events.push((e as { data: FakeIoEvent }).data);
  let primary = '10.0.0.1';
  let interfacesChanged: (() => void) | null = null;
  let watchStopped = false;
  const daemon = new FakeDaemon();
  const logs: string[] = [];
  const glue = new VrrpGlue(daemon, {
    log: linesLogger(logs, 'ERROR '),
    io: { module: join(__dirname, 'fake-io.js'), options: { channel: channelName } },
    facts: () => ({ ifindex: () => 0, primaryAddress: () => primary }),
    // Stands in for the `ip monitor` watch: the test says when the interfaces changed.
    watchInterfaces: (onChange) => {
      interfacesChanged = onChange;
      return { stop: () => { watchStopped = true; } };
    },
  });
  daemon.glue = glue;
  const sources = (): Array<string | undefined> => events.filter((e) => e.kind === 'sent').map((e) => (e as { source?: string }).source);
  try {
    await daemon.load(conf(dir, '10.0.0.100', '/bin/true'));
    await glue.start();
    await waitFor('MASTER', () => glue.instanceStates().get('VI_1') === 'MASTER');
    await waitFor('an advert', () => sources().length > 0);
    assert.ok(sources().every((s) => s === '10.0.0.1'), sources().join(' '));
    const garps = events.filter((e) => e.kind === 'vip' && e.op === 'garp').length;

    // The address changes (ip addr del/add on eth0): the next events burst is reported.
    primary = '10.0.0.9';
    const before = sources().length;
    interfacesChanged!();
    await waitFor('an advert from the new address', () => sources().slice(before).includes('10.0.0.9'));
    const after = sources().slice(sources().lastIndexOf('10.0.0.1') + 1);
    await waitFor('three more adverts', () => sources().length >= before + 4);
    assert.ok(sources().slice(sources().indexOf('10.0.0.9')).every((s) => s === '10.0.0.9'), `no advert from the old address after the first from the new one: ${after.join(' ')}`);
    assert.equal(glue.instanceStates().get('VI_1'), 'MASTER', 'no state change');
    assert.equal(events.filter((e) => e.kind === 'vip' && e.op === 'garp').length, garps, 'no new gratuitous ARP');
    assert.ok(logs.some((l) => /\(VI_1\) primary address of eth0 is now 10\.0\.0\.9 \(was 10\.0\.0\.1\)/.test(l)), logs.join('\n'));

    // Another event with the address unchanged: nothing to do. A reload of the same file (the
    // facts now give the new address) finds the instance unchanged.
    interfacesChanged!();
    await daemon.load(conf(dir, '10.0.0.100', '/bin/true'));
    await waitFor('reloaded', () => logs.some((l) => l.includes('vrrp reload: 1 unchanged')));
    assert.equal(logs.filter((l) => l.includes('primary address of eth0 is now')).length, 1);
  } finally {
    await daemon.stop();
    channel.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(watchStopped, 'the interface watch is stopped with VRRP');
});
