// The sync master's change scan (the kernel's ip_vs_sync_conn_needed rules applied to what
// changed between two looks at the shared table) and the backup's import, without sockets: the
// master's messages are decoded and imported into a second table as a backup would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DestField, DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { ConnRef, ConnTable, Meta, StateFlag } from '../../src/conn/table';
import { TcpState } from '../../src/conn/tcp-state';
import { ConnFlag, decodeSyncMessage, encodeSyncMessages } from '../../src/sync/codec';
import { importSyncConn, resolveOptions, SyncBackup, SyncManager, SyncScanner, SyncError, type SyncInterface } from '../../src/sync/daemon';
import { addDest, ip } from '../conn/helpers';
import { SYNC_RECORD_CELLS } from '../../src/conn/table';
import { applySyncKnob, defaultSyncTunables } from '../../src/sync/knobs';

const TCP = 6;
const UDP = 17;
const NOW = 1_000_000;
const VIP = ip('10.0.0.100');

function director() {
  const dests = new DestTable(16);
  const rs1 = addDest(dests, '10.0.1.1', 80, ForwardMethod.DROUTE);
  const rs2 = addDest(dests, '10.0.1.2', 80, ForwardMethod.DROUTE);
  const table = new ConnTable(256, dests, { workerId: 0 });
  return { dests, rs1, rs2, table };
}

function bump(table: ConnTable, index: number, n: number): void {
  for (let i = 0; i < n; i++) table.countInPacket(index);
}

test('sync scan: TCP syncs at in_pkts 3 then every 50 in ESTABLISHED, at once on FIN_WAIT; not in SYN_RECV', () => {
  const { table, rs1 } = director();
  const scan = new SyncScanner(table);
  const e = table.insert(TCP, ip('1.1.1.1'), 40000, VIP, 80, ip('10.0.1.1'), 80, rs1, ForwardMethod.DROUTE, 0, TcpState.SYN_RECV | StateFlag.INACTIVE, 60_000, NOW, -1);
  bump(table, e, 1);
  assert.deepEqual(scan.scan(NOW), [], 'SYN_RECV is never synced');
  // ESTABLISHED with 2 packets: not yet (pkts % 50 != 3)
  const ref = new ConnRef();
  assert.ok(table.lookupIn(TCP, ip('1.1.1.1'), 40000, VIP, 80, ref));
  assert.ok(table.lockEntry(ref.index, ref.seq));
  table.setStateCell(ref.index, TcpState.ESTABLISHED);
  table.unlockEntry(ref.index, ref.seq);
  bump(table, e, 1);
  assert.deepEqual(scan.scan(NOW), []);
  bump(table, e, 1); // 3
  const first = scan.scan(NOW);
  assert.equal(first.length, 1);
  assert.equal(first[0]!.state, TcpState.ESTABLISHED);
  assert.equal(first[0]!.flags, ConnFlag.DROUTE);
  assert.equal(first[0]!.cport, 40000);
  bump(table, e, 49); // 52: not past 53
  assert.deepEqual(scan.scan(NOW), []);
  bump(table, e, 1); // 53
  assert.equal(scan.scan(NOW).length, 1);
  bump(table, e, 120); // 173: crossed 103 and 153 since the last look: one entry
  assert.equal(scan.scan(NOW).length, 1);
  assert.ok(table.lockEntry(ref.index, ref.seq));
  table.setStateCell(ref.index, TcpState.FIN_WAIT);
  table.unlockEntry(ref.index, ref.seq);
  const fin = scan.scan(NOW);
  assert.equal(fin.length, 1);
  assert.equal(fin[0]!.state, TcpState.FIN_WAIT);
  assert.deepEqual(scan.scan(NOW), [], 'sent once per change');
});

test('sync scan: a template goes with the connection it controls; UDP by packet count', () => {
  const { table, rs2 } = director();
  const scan = new SyncScanner(table);
  const t = table.insert(TCP, ip('1.1.1.0'), 0, VIP, 80, ip('10.0.1.2'), 80, rs2, ForwardMethod.DROUTE, Meta.TEMPLATE, 0, 360_000, NOW, -1);
  const c = table.insert(TCP, ip('1.1.1.7'), 5555, VIP, 80, ip('10.0.1.2'), 80, rs2, ForwardMethod.DROUTE, 0, TcpState.ESTABLISHED, 900_000, NOW, t);
  const u = table.insert(UDP, ip('1.1.1.8'), 53, VIP, 53, ip('10.0.1.2'), 53, rs2, ForwardMethod.DROUTE, 0, 0, 300_000, NOW, -1);
  assert.deepEqual(scan.scan(NOW), [], 'nothing past the threshold yet');
  bump(table, c, 3);
  bump(table, u, 3);
  const out = scan.scan(NOW);
  assert.equal(out.length, 3);
  const tpl = out.find((x) => x.flags & ConnFlag.TEMPLATE)!;
  assert.equal(tpl.cport, 0);
  assert.equal(tpl.timeout, 360);
  assert.equal(out.find((x) => x.protocol === UDP)!.timeout, 300);
  assert.equal(out.find((x) => x.protocol === TCP && !(x.flags & ConnFlag.TEMPLATE))!.timeout, 900);

  // The backup: decode what went on the wire, import, look up.
  const b = director();
  const backup = new ConnTable(256, b.dests, { workerId: 255 });
  const rec = new Int32Array(SYNC_RECORD_CELLS);
  const resolve = (_p: number, _v: number, _vp: number, daddr: number) => (daddr === ip('10.0.1.2') ? b.rs2 : daddr === ip('10.0.1.1') ? b.rs1 : -1);
  for (const m of encodeSyncMessages(out, 0, 1472)) {
    for (const sc of decodeSyncMessage(m)!.conns) assert.equal(importSyncConn(backup, sc, resolve, NOW + 5, rec), '');
  }
  const ref = new ConnRef();
  assert.ok(backup.lookupIn(TCP, ip('1.1.1.7'), 5555, VIP, 80, ref));
  assert.equal(ref.destSlot, b.rs2);
  assert.equal((ref.meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT, ForwardMethod.DROUTE);
  assert.ok(backup.lookupTemplate(TCP, ip('1.1.1.0'), 0, VIP, 80, ref), 'the persistence template is there');
  assert.equal(ref.destSlot, b.rs2);
  assert.equal(b.dests.load(b.rs2, DestField.ACTIVE), 2, 'TCP ESTABLISHED and UDP count as active');
  assert.equal(b.dests.load(b.rs2, DestField.PERSIST), 1);
  const listed = backup.list(NOW + 5).find((r) => r.cport === 5555)!;
  assert.ok(listed.expiresMs > 899_000 && listed.expiresMs <= 900_000, 'the timeout as sent');
  // The owner (the main thread) frees it once the timeout passes.
  assert.equal(backup.expire(NOW + 5 + 900_001, 1000), 3);
});

test('sync import: unknown real server stays unbound; bypass refused; timeout 0 takes the state timeout', () => {
  const b = director();
  const rec = new Int32Array(SYNC_RECORD_CELLS);
  const base = { af: 4 as const, protocol: TCP, flags: ConnFlag.DROUTE, state: TcpState.FIN_WAIT, cport: 1, vport: 80, dport: 80, fwmark: 0, timeout: 0, caddr: ip('2.2.2.2'), vaddr: VIP, daddr: ip('10.9.9.9') };
  assert.equal(importSyncConn(b.table, base, () => -1, NOW, rec), '');
  const row = b.table.list(NOW)[0]!;
  assert.equal(row.destSlot, -1);
  assert.equal(row.expiresMs, 120_000, 'FIN_WAIT timeout');
  assert.match(importSyncConn(b.table, { ...base, cport: 2, flags: ConnFlag.BYPASS }, () => -1, NOW, rec), /bypass/);
});

test('sync options: the kernel fills in group, port, ttl and maxlen (master 1472 always, backup from the MTU)', () => {
  const eth: SyncInterface = { name: 'eth0', address: '10.0.0.1', mtu: 9000 };
  const none = { mcastInterface: 'eth0', syncId: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 };
  assert.deepEqual(resolveOptions('master', none, eth), { state: 'master', mcastInterface: 'eth0', syncId: 0, syncMaxlen: 1472, mcastGroup: '224.0.0.81', mcastPort: 8848, mcastTtl: 1 });
  assert.equal(resolveOptions('backup', none, eth).syncMaxlen, 8972);
  assert.equal(resolveOptions('backup', none, { ...eth, mtu: 1400 }).syncMaxlen, 1472);
  assert.equal(resolveOptions('backup', { ...none, syncMaxlen: 100 }, eth).syncMaxlen, 1024);
  assert.equal(resolveOptions('master', { ...none, syncMaxlen: 100, mcastGroup: '239.1.2.3', mcastPort: 9000, mcastTtl: 3, syncId: 9 }, eth).syncMaxlen, 100);
  assert.throws(() => resolveOptions('master', { ...none, mcastGroup: '10.1.1.1' }, eth), SyncError);
});

test('sync manager: EEXIST, ESRCH, ENODEV as the kernel answers', () => {
  const { table } = director();
  const m = new SyncManager(table, () => -1, () => NOW, { debug() {}, info() {}, notice() {}, warn() {}, error() {} }, (name) => {
    throw new SyncError('ENODEV', `Unknown mcast interface: ${name}`);
  });
  assert.throws(() => m.start('master', { mcastInterface: 'nosuch', syncId: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 }), (e: unknown) => e instanceof SyncError && e.errno === 'ENODEV');
  assert.throws(() => m.stop('backup'), (e: unknown) => e instanceof SyncError && e.errno === 'ESRCH');
  assert.deepEqual(m.list(), []);
});

test('sync backup: a bad message is dropped whole and counted by field; another syncid is ignored; a good one imports', () => {
  const b = director();
  const backup = new ConnTable(256, b.dests, { workerId: 255 });
  const info = resolveOptions('backup', { mcastInterface: 'eth0', syncId: 7, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 }, { name: 'eth0', address: '192.0.2.1', mtu: 1500 });
  const warned: string[] = [];
  const log = { error() {}, warn: (m: string) => warned.push(m), notice() {}, info() {}, debug() {} };
  const d = new SyncBackup(info, { name: 'eth0', address: '192.0.2.1', mtu: 1500 }, backup, () => b.rs1, () => NOW, log);
  const conn = { af: 4 as const, protocol: TCP, flags: ConnFlag.DROUTE, state: TcpState.ESTABLISHED, cport: 7000, vport: 80, dport: 80, fwmark: 0, timeout: 900, caddr: ip('3.3.3.3'), vaddr: VIP, daddr: ip('10.0.1.1') };
  const [good] = encodeSyncMessages([conn], 7, 1472);
  const bad = Buffer.from(good!);
  bad[5] = 0; // version 0
  d.receive(bad);
  const short = Buffer.from(good!.subarray(0, 20));
  d.receive(short);
  d.receive(encodeSyncMessages([conn], 8, 1472)[0]!); // syncid 8: not ours
  assert.equal(backup.count, 0);
  assert.deepEqual([...d.counters.dropped], [['version', 1], ['size', 1]]);
  assert.match(warned[0]!, /message dropped \(version, 1 so far\)/);
  d.receive(good!);
  assert.equal(backup.count, 1);
  assert.equal(d.counters.conns, 1);
  assert.equal(d.counters.messages, 1);
});

test('sync import: an active entry to another real server replaces ours (port reuse); an inactive one is ignored', () => {
  const b = director();
  const rec = new Int32Array(SYNC_RECORD_CELLS);
  const slotOf = (_p: number, _v: number, _vp: number, daddr: number) => (daddr === ip('10.0.1.1') ? b.rs1 : b.rs2);
  const base = { af: 4 as const, protocol: TCP, flags: ConnFlag.DROUTE, state: TcpState.ESTABLISHED, cport: 9, vport: 80, dport: 80, fwmark: 0, timeout: 900, caddr: ip('4.4.4.4'), vaddr: VIP, daddr: ip('10.0.1.1') };
  assert.equal(importSyncConn(b.table, base, slotOf, NOW, rec), '');
  // The expiration message of the old connection, after the master moved the port: ignored.
  assert.match(importSyncConn(b.table, { ...base, daddr: ip('10.0.1.2'), flags: ConnFlag.DROUTE | ConnFlag.INACTIVE, state: TcpState.CLOSE }, slotOf, NOW, rec), /already replaced/);
  const ref = new ConnRef();
  assert.ok(b.table.lookupIn(TCP, ip('4.4.4.4'), 9, VIP, 80, ref));
  assert.equal(ref.destSlot, b.rs1);
  // An active one to rs2: ours goes, the new one is looked up from now on.
  assert.equal(importSyncConn(b.table, { ...base, daddr: ip('10.0.1.2') }, slotOf, NOW, rec), '');
  assert.ok(b.table.lookupIn(TCP, ip('4.4.4.4'), 9, VIP, 80, ref));
  assert.equal(ref.destSlot, b.rs2);
});

test('sync scan follows its knobs: sync_refresh_period with sync_retries, threshold period 0, sync_persist_mode', () => {
  const { table, rs1, rs2 } = director();
  const knobs = defaultSyncTunables();
  const scan = new SyncScanner(table, knobs);
  assert.ok(applySyncKnob(knobs, 'sync_threshold', '3 0'));
  const e = table.insert(TCP, ip('1.1.1.1'), 40000, VIP, 80, ip('10.0.1.1'), 80, rs1, ForwardMethod.DROUTE, 0, TcpState.ESTABLISHED, 900_000, NOW, -1);
  bump(table, e, 3);
  assert.equal(scan.scan(NOW).length, 1, 'at the threshold');
  bump(table, e, 100);
  assert.deepEqual(scan.scan(NOW), [], 'period 0 and no refresh period: once');
  // A refresh period of 30 s (below half the 900 s timeout): sent again when 30 s have passed and
  // a packet came, not before; with one retry, once more 30/8 s after a send.
  applySyncKnob(knobs, 'sync_refresh_period', '30');
  bump(table, e, 1);
  assert.equal(scan.scan(NOW).length, 1, 'first look with a refresh period: nothing recorded yet, sent');
  bump(table, e, 1);
  assert.deepEqual(scan.scan(NOW + 1_000), [], 'too soon, no retries');
  bump(table, e, 1);
  assert.equal(scan.scan(NOW + 30_000).length, 1, 'refresh period passed');
  assert.deepEqual(scan.scan(NOW + 60_000), [], 'no packet since: nothing to refresh (period 0)');
  applySyncKnob(knobs, 'sync_retries', '1');
  bump(table, e, 1);
  assert.equal(scan.scan(NOW + 60_000).length, 1);
  bump(table, e, 1);
  assert.deepEqual(scan.scan(NOW + 63_000), [], 'a retry waits 30/8 s');
  bump(table, e, 1);
  assert.equal(scan.scan(NOW + 64_000).length, 1, 'the one retry');
  bump(table, e, 1);
  assert.deepEqual(scan.scan(NOW + 69_000), [], 'retries used up');
  // A state change is sent at once, whatever the refresh period says.
  const ref = new ConnRef();
  assert.ok(table.lookupIn(TCP, ip('1.1.1.1'), 40000, VIP, 80, ref));
  assert.ok(table.lockEntry(ref.index, ref.seq));
  table.setStateCell(ref.index, TcpState.FIN_WAIT);
  table.unlockEntry(ref.index, ref.seq);
  assert.equal(scan.scan(NOW + 69_500)[0]!.state, TcpState.FIN_WAIT);

  // sync_persist_mode: the template goes, the connection it controls does not.
  const knobs2 = defaultSyncTunables();
  applySyncKnob(knobs2, 'sync_persist_mode', '1');
  const scan2 = new SyncScanner(table, knobs2);
  scan2.scan(NOW);
  const t = table.insert(TCP, ip('1.1.2.0'), 0, VIP, 80, ip('10.0.1.2'), 80, rs2, ForwardMethod.DROUTE, Meta.TEMPLATE, 0, 360_000, NOW, -1);
  const c = table.insert(TCP, ip('1.1.2.7'), 5555, VIP, 80, ip('10.0.1.2'), 80, rs2, ForwardMethod.DROUTE, 0, TcpState.ESTABLISHED, 900_000, NOW, t);
  bump(table, c, 3);
  const out = scan2.scan(NOW);
  assert.equal(out.length, 1);
  assert.ok(out[0]!.flags & ConnFlag.TEMPLATE, 'only the template');
  applySyncKnob(knobs2, 'sync_persist_mode', '0');
  bump(table, c, 50);
  assert.equal(scan2.scan(NOW).length, 2, 'mode 0: the connection and its template');
});
