// The VRRP worker thread with a fake io module: real timers (VRRPv3, advert_int 0.1 s, so a
// takeover happens in ~0.36 s), the message protocol in both directions, and the shutdown
// sequence. Every wait is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BroadcastChannel } from 'node:worker_threads';
import { instanceConfig } from '../../src/vrrp/config';
import { VrrpHost, VrrpHostError } from '../../src/vrrp/host';
import { VrrpState } from '../../src/vrrp/types';
import { FakeIoCommand, FakeIoEvent } from './fake-io';
import { advert, config, receipt } from './fakes';
import { linesLogger } from '../../src/runtime/log';

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('the worker runs an instance on real timers, reports states and notifies, and shuts down cleanly', async () => {
  const name = `uvs-vrrp-test-${process.pid}-${Date.now()}`;
  const channel = new BroadcastChannel(name);
  const events: FakeIoEvent[] = [];
  channel.onmessage = (e) => events.push((e as { data: FakeIoEvent }).data);
  const states: [string, VrrpState, VrrpState, number][] = [];
  const notifies: [string, string[]][] = [];
  const logs: string[] = [];
  let host: VrrpHost | undefined;
  try {
    host = await VrrpHost.start({
      config: {
        instances: [
          instanceConfig(config({ version: 3, advertIntMs: 100, garpMasterDelayMs: 0, notify: { generic: '/n', master: '/nm' } })),
        ],
        syncGroups: [],
      },
      io: { module: join(__dirname, 'fake-io.js'), options: { channel: name } },
      notifier: { run: (script, args) => notifies.push([script, [...args]]) },
      logger: linesLogger(logs),
      onState: (instance, state, previous, priority) => states.push([instance, state, previous, priority]),
    });
    const h = host;
    await waitFor('MASTER', () => h.states.get('VI_1') === 'MASTER');
    assert.deepEqual(states.slice(0, 2), [
      ['VI_1', 'BACKUP', 'INIT', 100],
      ['VI_1', 'MASTER', 'BACKUP', 100],
    ]);
    await waitFor('3 adverts', () => events.filter((e) => e.kind === 'sent').length >= 3);
    const sent = events.filter((e): e is Extract<FakeIoEvent, { kind: 'sent' }> => e.kind === 'sent');
    assert.ok(sent.every((s) => s.priority === 100 && s.advertIntCs === 10 && s.destination === '224.0.0.18'));
    assert.ok(events.some((e) => e.kind === 'vip' && e.op === 'add' && e.address === '10.0.0.100'));
    assert.equal(events.filter((e) => e.kind === 'vip' && e.op === 'garp').length, 5);
    assert.deepEqual(notifies.slice(0, 3), [
      ['/n', ['INSTANCE', 'VI_1', 'BACKUP', '100']],
      ['/nm', []],
      ['/n', ['INSTANCE', 'VI_1', 'MASTER', '100']],
    ]);

    // SIGHUP with a new priority: stays MASTER, advertises the new priority.
    await h.reload({
      instances: [
        instanceConfig(config({ version: 3, advertIntMs: 100, priority: 120, garpMasterDelayMs: 0, notify: { generic: '/n', master: '/nm' } })),
      ],
      syncGroups: [],
    });
    const reloadedAt = events.length;
    await waitFor('an advert with priority 120', () => events.slice(reloadedAt).some((e) => e.kind === 'sent' && e.priority === 120));
    assert.equal(h.states.get('VI_1'), 'MASTER');
    assert.deepEqual(h.activeAddresses(), ['10.0.0.100']);
    await assert.rejects(
      h.reload({ instances: [instanceConfig(config()), instanceConfig(config({ name: 'X' }))], syncGroups: [] }),
      /already used on eth0/,
    );

    // A higher-priority master appears: back to BACKUP, VIP removed.
    const inject: FakeIoCommand = { kind: 'inject', advert: advert({ version: 3, priority: 200, advertIntCs: 10 }), receipt: receipt() };
    channel.postMessage(inject);
    await waitFor('BACKUP', () => h.states.get('VI_1') === 'BACKUP');
    await waitFor('VIP removal', () => events.some((e) => e.kind === 'vip' && e.op === 'remove'));
    assert.deepEqual(h.activeAddresses(), []);
    const stats = await h.stats();
    assert.equal(stats.instances.VI_1?.advertsReceived, 1);
    assert.equal(stats.instances.VI_1?.state, 'BACKUP');

    // Interface state from the main thread.
    h.setInterfaceState('eth0', false);
    await waitFor('FAULT', () => h.states.get('VI_1') === 'FAULT');
    h.setInterfaceState('eth0', true);
    await waitFor('BACKUP again', () => h.states.get('VI_1') === 'BACKUP');
    await waitFor('MASTER again', () => h.states.get('VI_1') === 'MASTER');

    // Shutdown: priority 0 advert, VIP removed, notify STOP, the worker exits.
    const removalsBefore = events.filter((e) => e.kind === 'vip' && e.op === 'remove').length;
    const started = Date.now();
    assert.equal(await h.stop(), true);
    assert.ok(Date.now() - started < 2000, 'prompt exit');
    await waitFor('closed', () => events.some((e) => e.kind === 'closed'));
    const lastSent = events.filter((e): e is Extract<FakeIoEvent, { kind: 'sent' }> => e.kind === 'sent').at(-1);
    assert.equal(lastSent?.priority, 0);
    assert.equal(events.filter((e) => e.kind === 'vip' && e.op === 'remove').length, removalsBefore + 1);
    assert.deepEqual(notifies.at(-1), ['/n', ['INSTANCE', 'VI_1', 'STOP', '120']]);
    assert.throws(() => h.setScriptResult('x', true), VrrpHostError);
  } finally {
    await host?.stop();
    channel.close();
  }
});

test('a missing io module fails start() with a message naming it', async () => {
  await assert.rejects(
    VrrpHost.start({
      config: { instances: [instanceConfig(config())], syncGroups: [] },
      io: { module: join(__dirname, 'no-such-io.js') },
    }),
    (err: unknown) => err instanceof VrrpHostError && err.code === 'UVS_ERR_VRRP_START' && /no-such-io\.js/.test(err.message),
  );
});

test('an interface down at start: the worker starts the instance in FAULT', async () => {
  const name = `uvs-vrrp-test2-${process.pid}-${Date.now()}`;
  const channel = new BroadcastChannel(name);
  let host: VrrpHost | undefined;
  try {
    host = await VrrpHost.start({
      config: { instances: [instanceConfig(config({ version: 3, advertIntMs: 100 }))], syncGroups: [] },
      io: { module: join(__dirname, 'fake-io.js'), options: { channel: name, down: ['eth0'] } },
    });
    assert.equal(host.states.get('VI_1'), 'FAULT');
  } finally {
    await host?.stop();
    channel.close();
  }
});

// keepalived's parent respawns a VRRP child that dies; uvsd respawns its VRRP thread. Meanwhile
// it fails safe: nothing may keep forwarding for, or holding, VIPs whose adverts stopped.
test('a VRRP thread that dies is noticed: MASTER is left, the VIPs removed, the thread respawned', async () => {
  const name = `uvs-vrrp-crash-${process.pid}-${Date.now()}`;
  const channel = new BroadcastChannel(name);
  const events: FakeIoEvent[] = [];
  channel.onmessage = (e) => events.push((e as { data: FakeIoEvent }).data);
  const states: [string, VrrpState, VrrpState][] = [];
  const removed: string[] = [];
  const logs: string[] = [];
  let host: VrrpHost | undefined;
  try {
    host = await VrrpHost.start({
      config: { instances: [instanceConfig(config({ version: 3, advertIntMs: 100, garpMasterDelayMs: 0 }))], syncGroups: [] },
      io: { module: join(__dirname, 'fake-io.js'), options: { channel: name } },
      logger: linesLogger(logs, 'E '),
      onState: (instance, state, previous) => states.push([instance, state, previous]),
      removeVips: (vips) => removed.push(...vips.map((v) => v.address)),
      respawnDelayMs: 100,
    });
    const h = host;
    await waitFor('MASTER', () => h.states.get('VI_1') === 'MASTER');
    assert.deepEqual(h.activeAddresses(), ['10.0.0.100']);
    channel.postMessage({ kind: 'crash' } satisfies FakeIoCommand);
    await waitFor('fail-safe', () => removed.includes('10.0.0.100'));
    assert.notEqual(h.states.get('VI_1'), 'MASTER', 'no longer MASTER while no thread sends adverts');
    assert.deepEqual(h.activeAddresses(), [], 'the data plane stops forwarding the VIP');
    assert.ok(states.some(([i, s, p]) => i === 'VI_1' && s === 'FAULT' && p === 'MASTER'), JSON.stringify(states));
    assert.ok(logs.some((l) => /^E vrrp thread exited unexpectedly \(code 7\)/.test(l)), logs.join('\n'));
    // Respawned: it runs the same configuration and, alone on the link, becomes MASTER again.
    await waitFor('MASTER again', () => h.states.get('VI_1') === 'MASTER', 5000);
    assert.equal(h.respawns, 1);
    const stopped = await h.stop();
    assert.equal(stopped, true, 'the respawned thread stops cleanly');
  } finally {
    await host?.stop().catch(() => undefined);
    channel.close();
  }
});

test('with respawn off (keepalived -R), a dead VRRP thread is not restarted, and still fails safe', async () => {
  const name = `uvs-vrrp-crash-nr-${process.pid}-${Date.now()}`;
  const channel = new BroadcastChannel(name);
  const removed: string[] = [];
  let host: VrrpHost | undefined;
  try {
    host = await VrrpHost.start({
      config: { instances: [instanceConfig(config({ version: 3, advertIntMs: 100, garpMasterDelayMs: 0 }))], syncGroups: [] },
      io: { module: join(__dirname, 'fake-io.js'), options: { channel: name } },
      removeVips: (vips) => removed.push(...vips.map((v) => v.address)),
      respawn: false,
    });
    const h = host;
    await waitFor('MASTER', () => h.states.get('VI_1') === 'MASTER');
    channel.postMessage({ kind: 'crash' } satisfies FakeIoCommand);
    await waitFor('fail-safe', () => removed.includes('10.0.0.100'));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.respawns, 0);
    assert.equal(h.running, false);
  } finally {
    await host?.stop().catch(() => undefined);
    channel.close();
  }
});
