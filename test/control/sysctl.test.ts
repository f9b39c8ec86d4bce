// The IPVS knobs (src/conn/knobs.ts, src/control/sysctl.ts): the registry, the precedence of
// defaults < uvsd's flood options < --sysctl-file < uvsadm --sysctl, file:line errors, a bad
// value changing nothing, a knob reaching the connection table (sloppy_tcp lets a mid-flow ACK
// create an entry), and the whole path through uvsd: uvsadm --sysctl, SIGHUP reload.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KNOBS, findKnob, knobName } from '../../src/conn/knobs';
import { ConnRef, ConnTable, HeaderCell } from '../../src/conn/table';
import { ConnScheduler, ConnVerdict, type ConnService } from '../../src/conn/schedule';
import { IPVS_KNOBS, Sysctls, SysctlError, parseSysctlFile } from '../../src/control/sysctl';
import { SyncManager, SyncScanner } from '../../src/sync/daemon';
import { SYNC_KNOBS } from '../../src/sync/knobs';
import { TcpState } from '../../src/conn/tcp-state';
import { Daemon } from '../../src/control/daemon';
import { parseUvsdArgs } from '../../src/control/uvsd-options';
import { linesLogger } from '../../src/runtime/log';
import { TCP_ACK } from '../../src/packet/tcp';
import { DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { addDest, ip, TestRoundRobin } from '../conn/helpers';
import { uvsadm } from './helpers';

const CTX = { connMax: 800 };

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'uvs-sysctl-'));
}

test('registry: unique names, kernel defaults of ipvs-sysctl.rst, one header cell per data-plane knob', () => {
  const names = KNOBS.map((k) => k.name);
  assert.equal(new Set(names).size, names.length);
  const cells = KNOBS.filter((k) => k.cell !== undefined).map((k) => k.cell);
  assert.equal(new Set(cells).size, cells.length);
  const kernel = Object.fromEntries(KNOBS.map((k) => [k.name, k.kernelDefault]));
  assert.equal(kernel.sloppy_tcp, '0');
  assert.equal(kernel.conn_reuse_mode, '1');
  assert.equal(kernel.am_droprate, '10');
  assert.equal(kernel.amemthresh, '1024');
  assert.equal(kernel.pmtu_disc, '1');
  for (const k of KNOBS) {
    assert.ok(k.effect.length > 10, `${k.name} says what uvs does with it`);
    assert.doesNotThrow(() => k.parse(k.uvsDefault ? k.uvsDefault(CTX) : k.kernelDefault, CTX), k.name);
  }
  assert.equal(knobName('net.ipv4.vs.sloppy_tcp'), 'sloppy_tcp');
  assert.equal(knobName('net/ipv4/vs/sloppy_tcp'), 'sloppy_tcp');
  assert.equal(knobName('sloppy_tcp'), 'sloppy_tcp');
  assert.equal(knobName('a b'), null);
  assert.equal(findKnob('sloppy_tcp')!.cell, HeaderCell.SLOPPY_TCP);
});

test('precedence: default < flood option alias < file < runtime set; runtime sets survive a reload', () => {
  const dir = tmp();
  try {
    const file = join(dir, 'vs.conf');
    const s = new Sysctls(CTX, { drop_entry: 3, secure_tcp: undefined });
    assert.equal(s.get('drop_entry'), '3', 'the alias --drop-entry 3');
    assert.equal(s.get('net.ipv4.vs.drop_entry'), '3');
    assert.equal(s.get('amemthresh'), '100', 'uvs default: conn-max / 8');
    assert.equal(s.get('sloppy_tcp'), '0');
    writeFileSync(file, '# knobs\nnet.ipv4.vs.drop_entry = 2\n\n; another comment\nnet/ipv4/vs/sloppy_tcp=1\nnet.ipv4.ip_forward = 1\n');
    const notes = s.loadFile(file);
    assert.match(notes.join('\n'), /vs\.conf:6: net\.ipv4\.ip_forward is not an IPVS knob/);
    assert.equal(s.get('drop_entry'), '2');
    assert.equal(s.get('sloppy_tcp'), '1');
    assert.deepEqual(s.set('net.ipv4.vs.sloppy_tcp', '0'), { name: 'net.ipv4.vs.sloppy_tcp', value: '0' });
    // Reload: the runtime set stays (and is reported), the rest follows the file.
    writeFileSync(file, 'net.ipv4.vs.sloppy_tcp = 1\n');
    const again = s.loadFile(file);
    assert.match(again.join('\n'), /sloppy_tcp: .* says 1, the value set at run time \(uvsadm --sysctl\) stays: 0/);
    assert.equal(s.get('sloppy_tcp'), '0');
    assert.equal(s.get('drop_entry'), '3', 'a line removed from the file: back to the alias');
    const listed = s.list();
    assert.equal(listed.length, IPVS_KNOBS.length);
    assert.deepEqual(listed.map((v) => v.name), [...listed.map((v) => v.name)].sort(), 'sorted as sysctl -a');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad names and values are refused with what and where, and change nothing', () => {
  const dir = tmp();
  try {
    const s = new Sysctls(CTX);
    const before = JSON.stringify(s.list());
    assert.throws(() => s.set('net.ipv4.vs.nope', '1'), (e: Error) => e instanceof SysctlError && /net\.ipv4\.vs\.nope: no such IPVS knob/.test(e.message));
    assert.throws(() => s.set('drop_entry', '4'), /net\.ipv4\.vs\.drop_entry: 4 is out of range 0\.\.3/);
    assert.throws(() => s.set('sloppy_tcp', 'yes'), /net\.ipv4\.vs\.sloppy_tcp: "yes" is not an integer/);
    assert.throws(() => s.set('amemthresh', '801'), /amemthresh: 801 is out of range 0\.\.800/);
    assert.throws(() => s.set('am_droprate', '0'), /am_droprate: 0 is out of range/);
    const file = join(dir, 'bad.conf');
    writeFileSync(file, 'net.ipv4.vs.sloppy_tcp = 1\nnet.ipv4.vs.secure_tcp = 9\n');
    assert.throws(() => s.loadFile(file), /bad\.conf:2: net\.ipv4\.vs\.secure_tcp: 9 is out of range/);
    writeFileSync(file, 'net.ipv4.vs.sloppy_tcp = 1\nnet.ipv4.vs.sloppy_udp = 1\n');
    assert.throws(() => s.loadFile(file), /bad\.conf:2: net\.ipv4\.vs\.sloppy_udp: no such IPVS knob/);
    writeFileSync(file, 'net.ipv4.vs.sloppy_tcp 1\n');
    assert.throws(() => s.loadFile(file), /bad\.conf:1: "net\.ipv4\.vs\.sloppy_tcp 1" is not "key = value"/);
    assert.throws(() => s.loadFile(join(dir, 'missing.conf')), /missing\.conf: cannot read the sysctl file: ENOENT/);
    assert.equal(JSON.stringify(s.list()), before);
    assert.throws(() => new Sysctls(CTX, { amemthresh: 900 }), /amemthresh: 900 is out of range/);
    // sysctl.d's "-" prefix: an unknown key is not an error.
    assert.equal(parseSysctlFile('-net.ipv4.vs.sync_future = 1\nnet.ipv4.vs.conn_reuse_mode = 2\n', 'x', CTX).values.get('conn_reuse_mode'), '2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a knob reaches the connection table: sloppy_tcp=1 lets a mid-flow ACK create an entry', () => {
  const dests = new DestTable(8);
  const a = addDest(dests, '10.0.1.1', 80, ForwardMethod.DROUTE);
  const table = new ConnTable(256, dests, { workerId: 0 });
  const sched = new ConnScheduler(table);
  const svc: ConnService = {
    protocol: 6, addr: ip('10.0.0.100'), port: 80, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff,
    onePacket: false, scheduler: new TestRoundRobin(dests, [a]),
  };
  const s = new Sysctls({ connMax: 256 });
  const heard: string[] = [];
  s.onChange((name, value) => heard.push(`${name}=${value}`));
  s.attach((cell, value) => table.setKnob(cell, value));
  const out = new ConnRef();
  const k = { protocol: 6, saddr: ip('192.168.0.9'), sport: 4000, daddr: ip('10.0.0.100'), dport: 80 };
  assert.equal(sched.inPacket(svc, k, TCP_ACK, 1000, out), ConnVerdict.PASS, 'sloppy_tcp 0: an ACK without entry is not ours');
  s.set('sloppy_tcp', '1');
  assert.equal(table.knob(HeaderCell.SLOPPY_TCP), 1);
  assert.equal(sched.inPacket(svc, k, TCP_ACK, 1000, out), ConnVerdict.FORWARD);
  assert.equal(out.destSlot, a);
  s.set('drop_entry', '0');
  assert.equal(table.knob(HeaderCell.DROP_ENTRY), 0);
  assert.deepEqual(heard, ['sloppy_tcp=1', 'drop_entry=0']);
});

test('uvsd: --sysctl-file at start (file:line refusal), uvsadm --sysctl list/show/set, runtime sets kept across SIGHUP', async () => {
  const dir = tmp();
  const socket = join(dir, 'd.sock');
  const file = join(dir, 'ipvs.conf');
  const log: string[] = [];
  // sloppy_tcp = 2 is a valid BOOLEAN (the kernel's "not 0 = on"): uvsd starts.
  writeFileSync(file, 'net.ipv4.vs.sloppy_tcp = 2\n');
  const started = await Daemon.start(parseUvsdArgs(['--no-config', '--io', 'none', '--socket', join(dir, 'x.sock'), '--sysctl-file', file]), linesLogger(log, 'E '), {});
  assert.equal(started.sysctls.get('sloppy_tcp'), '2');
  await started.stop();
  writeFileSync(file, 'net.ipv4.vs.sloppy_tcp = 1\nnet.ipv4.vs.expire_nodest_conn = x\n');
  await assert.rejects(Daemon.start(parseUvsdArgs(['--no-config', '--io', 'none', '--socket', socket, '--sysctl-file', file]), linesLogger(log, 'E '), {}),
    /ipvs\.conf:2: net\.ipv4\.vs\.expire_nodest_conn: "x" is not an integer/);
  writeFileSync(file, 'net.ipv4.vs.sloppy_tcp = 1\n');
  const daemon = await Daemon.start(parseUvsdArgs(['--no-config', '--io', 'none', '--socket', socket, '--sysctl-file', file, '--drop-packet', '2']), linesLogger(log, 'E '), {});
  try {
    const lab = { socketPath: socket };
    const all = await uvsadm(lab, ['--sysctl']);
    assert.equal(all.status, 0);
    assert.match(all.stdout, /^net\.ipv4\.vs\.am_droprate = 10\n/);
    assert.match(all.stdout, /\nnet\.ipv4\.vs\.sloppy_tcp = 1\n/);
    assert.match(all.stdout, /\nnet\.ipv4\.vs\.drop_packet = 2\n/, '--drop-packet is an alias');
    assert.equal(all.stdout.trim().split('\n').length, IPVS_KNOBS.length);
    assert.deepEqual(await uvsadm(lab, ['--sysctl', 'net.ipv4.vs.conn_reuse_mode']), { status: 0, stdout: 'net.ipv4.vs.conn_reuse_mode = 1\n', stderr: '' });
    assert.deepEqual(await uvsadm(lab, ['--sysctl', 'net.ipv4.vs.sloppy_tcp=0']), { status: 0, stdout: 'net.ipv4.vs.sloppy_tcp = 0\n', stderr: '' });
    const bad = await uvsadm(lab, ['--sysctl', 'net.ipv4.vs.secure_tcp=5']);
    assert.equal(bad.status, 255);
    assert.match(bad.stderr, /^uvsadm: net\.ipv4\.vs\.secure_tcp: 5 is out of range 0\.\.3/);
    const unknown = await uvsadm(lab, ['--sysctl', 'net.ipv4.vs.sloppy']);
    assert.equal(unknown.status, 255);
    assert.match(unknown.stderr, /net\.ipv4\.vs\.sloppy: no such IPVS knob/);
    assert.equal((await uvsadm(lab, ['--sysctl', 'a', 'b'])).status, 2);
    // A knob of two numbers, in one (quoted) word, as `sysctl -w`.
    assert.deepEqual(await uvsadm(lab, ['--sysctl', 'net.ipv4.vs.sync_threshold=5 100']), { status: 0, stdout: 'net.ipv4.vs.sync_threshold = 5 100\n', stderr: '' });
    const badSync = await uvsadm(lab, ['--sysctl', 'net.ipv4.vs.sync_threshold=100']);
    assert.equal(badSync.status, 255);
    assert.match(badSync.stderr, /^uvsadm: net\.ipv4\.vs\.sync_threshold: "100": the threshold 100 must be below the period 100/);
    assert.equal((await uvsadm(lab, ['--sysctl', 'sync_threshold'])).stdout, 'net.ipv4.vs.sync_threshold = 5 100\n');
    // SIGHUP: the file is read again; the runtime set stays, a new line of the file applies.
    writeFileSync(file, 'net.ipv4.vs.sloppy_tcp = 1\nnet.ipv4.vs.expire_nodest_conn = 1\n');
    await daemon.reload();
    assert.equal((await uvsadm(lab, ['--sysctl', 'sloppy_tcp'])).stdout, 'net.ipv4.vs.sloppy_tcp = 0\n');
    assert.equal((await uvsadm(lab, ['--sysctl', 'expire_nodest_conn'])).stdout, 'net.ipv4.vs.expire_nodest_conn = 1\n');
    // A bad file at reload changes nothing.
    writeFileSync(file, 'net.ipv4.vs.expire_nodest_conn = 0\nnet.ipv4.vs.bogus = 1\n');
    await daemon.reload();
    assert.equal((await uvsadm(lab, ['--sysctl', 'expire_nodest_conn'])).stdout, 'net.ipv4.vs.expire_nodest_conn = 1\n');
    assert.match(log.join('\n'), /reload of .*ipvs\.conf failed, the IPVS knobs are unchanged: .*ipvs\.conf:2: net\.ipv4\.vs\.bogus: no such IPVS knob/);
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sync knobs: in the registry with the kernel\'s names, types and defaults', () => {
  for (const k of SYNC_KNOBS) {
    assert.equal(IPVS_KNOBS.filter((x) => x.name === k.name).length, 1, k.name);
    assert.ok(k.effect.length > 10, `${k.name} says what uvs does with it`);
    assert.doesNotThrow(() => k.parse(k.uvsDefault ? k.uvsDefault(CTX) : k.kernelDefault, CTX), k.name);
  }
  const s = new Sysctls(CTX);
  assert.deepEqual(
    ['sync_threshold', 'sync_refresh_period', 'sync_retries', 'sync_sock_size', 'sync_ports', 'sync_persist_mode', 'sync_version'].map((n) => s.get(n)),
    ['3 50', '0', '0', '0', '1', '0', '1'],
  );
  assert.equal(s.get('sync_qlen_max'), '16384', 'uvs\'s bound, the kernel\'s is memory-sized');
  assert.match(SYNC_KNOBS.find((k) => k.name === 'sync_ports')!.effect, /^accepted, no effect in uvs: /);
  assert.equal(SYNC_KNOBS.find((k) => k.name === 'sync_threshold')!.type, 'vector of 2 INTEGERs');
});

test('sync knobs: proc_do_sync_threshold\'s rules; one number keeps the period; bad values name the knob and change nothing', () => {
  const s = new Sysctls(CTX);
  const heard: string[] = [];
  s.onChange((name, value) => heard.push(`${name}=${value}`));
  assert.deepEqual(s.set('net.ipv4.vs.sync_threshold', '5 10'), { name: 'net.ipv4.vs.sync_threshold', value: '5 10' });
  assert.equal(s.set('sync_threshold', '7').value, '7 10', 'one number: the threshold, the period stays');
  assert.equal(s.set('sync_threshold', '9 0').value, '9 0', 'period 0: sync once');
  assert.equal(s.set('sync_threshold', '\t2   100 ').value, '2 100');
  heard.length = 0;
  const bad: [string, string, RegExp][] = [
    ['sync_threshold', '50 50', /^net\.ipv4\.vs\.sync_threshold: "50 50": the threshold 50 must be below the period 50/],
    ['sync_threshold', '100', /^net\.ipv4\.vs\.sync_threshold: "100": the threshold 100 must be below the period 100/],
    ['sync_threshold', '-1 50', /^net\.ipv4\.vs\.sync_threshold: .*must not be negative/],
    ['sync_threshold', '3 50 7', /^net\.ipv4\.vs\.sync_threshold: .*two integers at most/],
    ['sync_threshold', '3 x', /^net\.ipv4\.vs\.sync_threshold: "x" is not an integer/],
    ['sync_threshold', '', /^net\.ipv4\.vs\.sync_threshold: /],
    ['sync_retries', '4', /^net\.ipv4\.vs\.sync_retries: 4 is out of range 0\.\.3/],
    ['sync_refresh_period', '-1', /^net\.ipv4\.vs\.sync_refresh_period: -1 is out of range 0\.\./],
    ['sync_ports', '3', /^net\.ipv4\.vs\.sync_ports: 3 is not a power of two/],
    ['sync_ports', '0', /^net\.ipv4\.vs\.sync_ports: 0 is out of range/],
    ['sync_version', '0', /^net\.ipv4\.vs\.sync_version: 0 .*not spoken by uvs/],
    ['sync_version', '2', /^net\.ipv4\.vs\.sync_version: 2 is out of range 0\.\.1/],
    ['sync_qlen_max', '-5', /^net\.ipv4\.vs\.sync_qlen_max: "-5" is not an unsigned integer/],
    ['sync_qlen_max', '18446744073709551616', /^net\.ipv4\.vs\.sync_qlen_max: .*out of range/],
  ];
  for (const [name, value, message] of bad) {
    const before = s.get(name);
    assert.throws(() => s.set(name, value), (err: Error) => err instanceof SysctlError && message.test(err.message), `${name}=${value}`);
    assert.equal(s.get(name), before, `${name}=${value} changed nothing`);
  }
  assert.deepEqual(heard, [], 'no listener heard of a refused value');
  assert.equal(s.set('sync_qlen_max', '18446744073709551615').value, '18446744073709551615');
  // The file: one number takes the period of an earlier line, else the default's.
  assert.equal(parseSysctlFile('net.ipv4.vs.sync_threshold = 5\n', 'f', CTX).values.get('sync_threshold'), '5 50');
  assert.equal(parseSysctlFile('net.ipv4.vs.sync_threshold = 1 4\nnet.ipv4.vs.sync_threshold = 2\n', 'f', CTX).values.get('sync_threshold'), '2 4');
  assert.throws(() => parseSysctlFile('\nnet.ipv4.vs.sync_threshold = 60\n', 'f', CTX), /^SysctlError: f:2: net\.ipv4\.vs\.sync_threshold: "60": the threshold 60 must be below the period 50/);
});

test('sync knobs reach the running sync daemon: a changed sync_threshold changes when a connection is sent', () => {
  // As uvsd wires them (src/control/daemon.ts): the values at start, then every change.
  const dests = new DestTable(8);
  const rs = addDest(dests, '10.0.1.1', 80, ForwardMethod.DROUTE);
  const table = new ConnTable(64, dests, { workerId: 0 });
  const manager = new SyncManager(table, () => -1, () => 0, linesLogger([]));
  const s = new Sysctls(CTX);
  for (const k of SYNC_KNOBS) manager.setKnob(k.name, s.get(k.name));
  s.onChange((name, value) => manager.setKnob(name, value));
  const scan = new SyncScanner(table, manager.knobs);
  const e = table.insert(6, ip('1.1.1.1'), 40000, ip('10.0.0.100'), 80, ip('10.0.1.1'), 80, rs, ForwardMethod.DROUTE, 0, TcpState.ESTABLISHED, 900_000, 1000, -1);
  const sentAt: number[] = [];
  const run = (packets: number) => {
    for (let i = 0; i < packets; i++) {
      const count = table.countInPacket(e);
      if (scan.scan(1000).length > 0) sentAt.push(count);
    }
  };
  s.set('sync_threshold', '5 10');
  run(30);
  assert.deepEqual(sentAt, [5, 15, 25], 'threshold 5, period 10 (the default 3 50 would have sent at 3 only)');
  sentAt.length = 0;
  s.set('sync_threshold', '2 4'); // from 30 on: 34, 38, ...
  run(10);
  assert.deepEqual(sentAt, [34, 38]);
  sentAt.length = 0;
  assert.throws(() => s.set('sync_threshold', '4 4'));
  run(4);
  assert.deepEqual(sentAt, [42], 'a refused value left the daemon as it was');
});
