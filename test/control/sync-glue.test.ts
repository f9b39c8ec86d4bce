// keepalived's lvs_sync_daemon over the sync daemons: which daemons run for a configuration and
// how they follow their VRRP instance (keepalived 2.2's ipvs_syncd_master / ipvs_syncd_backup).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryReader, parseKeepalivedConfig } from '../../src/config/keepalived';
import { desiredSync, SyncGlue } from '../../src/control/sync';
import { SyncManager, type SyncDaemonInfo } from '../../src/sync/daemon';
import { ConnTable } from '../../src/conn/table';
import { DestTable } from '../../src/tables/dest-table';
import type { VrrpGlue } from '../../src/control/vrrp';
import type { Logger } from '../../src/runtime/log';

const MAIN = '/etc/keepalived/keepalived.conf';
const lines: string[] = [];
const LOG: Logger = { error: (m) => lines.push(m), warn: (m) => lines.push(m), notice() {}, info() {}, debug() {} };

function config(text: string) {
  return parseKeepalivedConfig(MAIN, memoryReader({ [MAIN]: text }), { configId: 'uvs' }).model;
}

const INSTANCE = (extra = '') => `vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n 10.0.0.100\n }\n${extra}}\n`;

function manager(): SyncManager {
  return new SyncManager(new ConnTable(64, new DestTable(8), { workerId: 255 }), () => -1, () => 0, LOG,
    (name) => ({ name, address: '192.0.2.1', mtu: 1500 }),
    (info) => ({ info, counters: { messages: 0, conns: 0, dropped: new Map(), skipped: 0, full: 0, sendErrors: 0 }, start() {}, stop() {} }));
}

const states = (m: SyncManager) => m.list().map((d: SyncDaemonInfo) => `${d.state}:${d.mcastInterface}:${d.syncId}`);

test('lvs_sync_daemon with an instance: syncid defaults to its virtual_router_id; backup until MASTER, then master', () => {
  const k = config(`global_defs {\n lvs_sync_daemon eth1 VI_1\n}\n${INSTANCE()}`);
  assert.deepEqual(desiredSync(k)?.options, { mcastInterface: 'eth1', syncId: 51, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 });
  const m = manager();
  const vrrpStates = new Map<string, string>();
  const glue = new SyncGlue(m, { instanceStates: () => vrrpStates } as unknown as VrrpGlue, LOG);
  glue.configure(k);
  assert.deepEqual(states(m), ['backup:eth1:51']);
  glue.instanceState('VI_2', 'MASTER');
  assert.deepEqual(states(m), ['backup:eth1:51'], 'another instance does not matter');
  glue.instanceState('VI_1', 'MASTER');
  assert.deepEqual(states(m), ['master:eth1:51']);
  glue.instanceState('VI_1', 'FAULT');
  assert.deepEqual(states(m), ['backup:eth1:51']);
  glue.instanceState('VI_1', 'STOP');
  assert.deepEqual(states(m), []);
});

test('lvs_sync_daemon without an instance runs master and backup together; a reload restarts; uvsadm daemons stay', () => {
  const m = manager();
  const glue = new SyncGlue(m, null, LOG);
  glue.configure(config(`global_defs {\n lvs_sync_daemon eth1 id 9 ttl 2\n}\n`));
  assert.deepEqual(states(m), ['master:eth1:9', 'backup:eth1:9']);
  assert.equal(m.list()[0]!.mcastTtl, 2);
  glue.configure(config(`global_defs {\n lvs_sync_daemon eth2 id 9\n}\n`));
  assert.deepEqual(states(m), ['master:eth2:9', 'backup:eth2:9']);
  glue.configure(config(''));
  assert.deepEqual(states(m), []);
  // A daemon started with uvsadm is not the file's: the file's start is refused (logged), and
  // removing the line leaves it running.
  m.start('master', { mcastInterface: 'eth3', syncId: 1, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 });
  lines.length = 0;
  glue.configure(config(`global_defs {\n lvs_sync_daemon eth1\n}\n`));
  assert.match(lines.join('\n'), /cannot start the master sync daemon on eth1: master sync daemon already runs/);
  glue.configure(config(''));
  assert.deepEqual(states(m), ['master:eth3:1']);
});

test('the deprecated per-instance lvs_sync_daemon_interface follows that instance', () => {
  const k = config(INSTANCE(' lvs_sync_daemon_interface eth1\n'));
  assert.deepEqual(desiredSync(k), { instance: 'VI_1', options: { mcastInterface: 'eth1', syncId: 51, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 } });
});
