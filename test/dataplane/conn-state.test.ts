// The connection state file (restart without loss): layout round trip, time spent on disk taken
// off, refusals (corrupt, stale, foreign, future, other version), and the restorer binding
// records to real servers by address as their services appear.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnRef, ConnTable, StateFlag, SYNC_RECORD_CELLS } from '../../src/conn/table';
import {
  ConnRestorer, currentOrigin, ConnStateRefused, CONN_STATE_HEADER_BYTES, CONN_STATE_RECORD_BYTES, decodeConnState, defaultConnStatePath,
  encodeConnState, exportAll, takeConnStateFile, writeConnStateFile, type ConnStateOrigin,
} from '../../src/dataplane/conn-state';
import { ServiceModel, type DestConfig, type ServiceConfig } from '../../src/service/model';
import { ForwardMethod, DestField } from '../../src/tables/dest-table';
import { ipv4ToInt } from '../../src/packet/addr';

const TCP = 6;
const ORIGIN: ConnStateOrigin = { bootId: '0123456789abcdef0123456789abcdef', netnsCookie: '0000000000001234', netnsInode: 4026531840 };
const T0 = 1_800_000_000_000;
const ip = (s: string): number => ipv4ToInt(s);
const svc = (addr: string, port = 80): ServiceConfig => ({ fwmark: 0, af: 4, protocol: TCP, addr: ip(addr), port, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' });
const dest = (addr: string, port: number, fwd: ForwardMethod): DestConfig => ({ af: 4, addr: ip(addr), port, fwd, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 });

function source() {
  const model = new ServiceModel({ maxServices: 8, destCapacity: 70_000 });
  model.addService(svc('10.0.0.100'));
  const nat = model.addDest(svc('10.0.0.100'), dest('10.1.0.1', 8080, ForwardMethod.MASQ));
  const table = new ConnTable(1024, model.destTable, { workerId: 0 });
  const c = ip('192.168.1.9');
  const a = table.insert(TCP, c, 40000, ip('10.0.0.100'), 80, ip('10.1.0.1'), 8080, nat.slot, ForwardMethod.MASQ, 0, 1, 900_000, 0, -1);
  // The next hop toward the client, as the creating worker records it from the client's frame.
  const frame = Uint8Array.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0x99, 8, 0]);
  table.setClientHop(a, frame, 0, 1);
  table.insert(TCP, c, 40001, ip('10.0.0.100'), 80, ip('10.1.0.1'), 8080, nat.slot, ForwardMethod.MASQ, 0, StateFlag.INACTIVE | 5, 120_000, 0, -1);
  return { model, table };
}

test('state file: round trip, time on disk taken off, expired entries left out, next hops by ifindex', () => {
  const { table } = source();
  const { records, hops, count } = exportAll(table, 0);
  assert.equal(count, 2);
  const image = encodeConnState(records, count, T0, ORIGIN, 1234, hops, (i) => (i === 1 ? 7 : 0));
  assert.equal(image.length, CONN_STATE_HEADER_BYTES + 2 * CONN_STATE_RECORD_BYTES);
  // 100 s later: the TIME_WAIT-like one (120 s) has 20 s left, the other 800 s.
  const got = decodeConnState(image, T0 + 100_000, ORIGIN);
  assert.equal(got.count, 2);
  assert.equal(got.writerPid, 1234);
  const left = [0, 1].map((r) => got.records[r * SYNC_RECORD_CELLS + 7]!).sort((x, y) => x - y);
  assert.deepEqual(left, [20_000, 800_000]);
  assert.deepEqual([...got.hopIfindex].sort(), [0, 7]);
  // 200 s later only the long one is left.
  const later = decodeConnState(image, T0 + 200_000, ORIGIN);
  assert.equal(later.count, 1);
  assert.equal(later.expired, 1);
});

test('state file: corrupt, stale, foreign, future and other-version files are refused with the reason', () => {
  const { table } = source();
  const { records, count } = exportAll(table, 0);
  const image = encodeConnState(records, count, T0, ORIGIN);
  const refused = (buf: Buffer, origin: ConnStateOrigin, now: number, why: RegExp) =>
    assert.throws(() => decodeConnState(buf, now, origin), (e: unknown) => e instanceof ConnStateRefused && why.test(e.message));
  refused(Buffer.from('nonsense'), ORIGIN, T0, /bad magic/);
  const flipped = Buffer.from(image);
  flipped[CONN_STATE_HEADER_BYTES + 30]! ^= 1;
  refused(flipped, ORIGIN, T0, /checksum/);
  refused(image.subarray(0, image.length - 1), ORIGIN, T0, /truncated/);
  const v3 = Buffer.from(image);
  v3.writeUInt16LE(3, 8);
  refused(v3, ORIGIN, T0, /version 3/);
  refused(image, { ...ORIGIN, bootId: 'f'.repeat(32) }, T0, /stale: written before the last boot/);
  refused(image, { ...ORIGIN, netnsCookie: '0000000000001235' }, T0, /foreign: written in another network namespace/);
  refused(image, ORIGIN, T0 - 60_000, /in the future/);
  refused(image, ORIGIN, T0 + 30 * 86_400_000, /stale: written \d+ s ago/);
});

test('state file: written atomically, taken once; its default path sits beside the socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-cs-'));
  try {
    const path = join(dir, 'x.conns');
    assert.equal(takeConnStateFile(path), null);
    writeConnStateFile(path, Buffer.from('abc'));
    assert.equal(takeConnStateFile(path)!.toString(), 'abc');
    assert.equal(existsSync(path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(defaultConnStatePath('/run/uvs/4026531840.sock'), '/run/uvs/4026531840.conns');
  assert.equal(defaultConnStatePath('/tmp/ctl'), '/tmp/ctl.conns');
});

test('restorer: binds by address to the new slots as services appear; other forwarding refused; owners spread', () => {
  const { table } = source();
  const { records, hops, count } = exportAll(table, 0);
  const state = decodeConnState(encodeConnState(records, count, T0, ORIGIN, 1, hops, () => 7), T0 + 1000, ORIGIN);
  // The new daemon: another real server first, so the same address gets another slot; slots above 65,535.
  const model = new ServiceModel({ maxServices: 8, destCapacity: 70_000 });
  for (let i = 0; i < 66_000; i++) model.destTable.allocate();
  const conns = new ConnTable(1024, model.destTable, { workerId: 255 });
  const r = new ConnRestorer(state, conns, 2, model, T0 + 60_000, (ifindex) => (ifindex === 7 ? 1 : -1));
  assert.equal(r.importReady(5000), 0, 'no service yet');
  assert.equal(r.waiting, 2);
  model.addService(svc('10.0.0.100'));
  model.addDest(svc('10.0.0.100'), dest('10.1.0.2', 8080, ForwardMethod.MASQ));
  assert.equal(r.importReady(5000), 0, 'its real server not yet');
  const d = model.addDest(svc('10.0.0.100'), dest('10.1.0.1', 8080, ForwardMethod.MASQ));
  assert.ok(d.slot > 65_535);
  assert.equal(r.importReady(5000), 2);
  assert.equal(r.waiting, 0);
  const ref = new ConnRef();
  assert.ok(conns.lookupIn(TCP, ip('192.168.1.9'), 40000, ip('10.0.0.100'), 80, ref));
  assert.equal(ref.destSlot, d.slot);
  assert.ok(conns.lookupOut(TCP, ip('10.1.0.1'), 8080, ip('192.168.1.9'), 40000, ref), 'NAT replies find it');
  const owners = new Set(conns.list(5000).map((row) => row.owner));
  assert.deepEqual([...owners].sort(), [0, 1], 'owned by the workers, whose sweeps free them');
  assert.equal(model.destTable.load(d.slot, DestField.ACTIVE) + model.destTable.load(d.slot, DestField.INACTIVE), 2);
  // The NAT entry's next hop came back on data-plane interface 1.
  const frame = new Uint8Array(14);
  const withHop = conns.list(5000).find((row) => row.cport === 40000)!;
  assert.equal(conns.writeClientHop(withHop.index, conns.seqOf(withHop.index), frame, 0), 1);
  assert.deepEqual([...frame.subarray(0, 6)], [2, 0, 0, 0, 0, 0x99]);
  // A real server now reached another way: refused, not imported with the old method.
  const again = new ConnRestorer(state, new ConnTable(1024, model.destTable, { workerId: 255 }), 1, model, 0);
  model.editDest(svc('10.0.0.100'), dest('10.1.0.1', 8080, ForwardMethod.DROUTE));
  assert.equal(again.importReady(5000), 0);
  assert.equal(again.refused, 2);


});

test('state file: a namespace that got a dead namespace\'s inode refuses its file (the cookie differs); version 1 and no cookie are refused', () => {
  const { table } = source();
  const { records, count } = exportAll(table, 0);
  const image = encodeConnState(records, count, T0, ORIGIN);
  const refused = (buf: Buffer, origin: ConnStateOrigin, why: RegExp) =>
    assert.throws(() => decodeConnState(buf, T0 + 1000, origin), (e: unknown) => e instanceof ConnStateRefused && why.test(e.message));
  // Same boot, same inode number (the kernel reused it), another namespace: another cookie.
  refused(image, { ...ORIGIN, netnsCookie: '00000000000099aa' }, /foreign: written in another network namespace \(cookie 0000000000001234, inode 4026531840; this one: cookie 00000000000099aa, inode 4026531840\)/);
  // The cookie is what counts: the inode alone changing (a bind mount seen elsewhere) does not refuse.
  assert.equal(decodeConnState(image, T0 + 1000, { ...ORIGIN, netnsInode: 7 }).count, count);
  // A kernel without SO_NETNS_COOKIE: no file can be trusted.
  refused(image, { ...ORIGIN, netnsCookie: '', cookieError: 'getsockopt(SO_NETNS_COOKIE): ENOPROTOOPT' }, /cannot tell whether it was written in this network namespace: .*ENOPROTOOPT/);
  // A file written without a cookie (zeros) matches no namespace.
  refused(encodeConnState(records, count, T0, { ...ORIGIN, netnsCookie: '' }), ORIGIN, /foreign/);
  // The previous format: 64-byte header, inode only.
  const v1 = Buffer.alloc(64 + 96);
  v1.write('UVSCONNS', 0, 'latin1');
  v1.writeUInt16LE(1, 8);
  v1.writeUInt16LE(64, 10);
  v1.writeUInt16LE(96, 12);
  v1.writeUInt16LE(16, 14);
  v1.writeUInt32LE(1, 16);
  refused(v1, ORIGIN, /version 1, written by an older uvsd that named its network namespace only by the inode number/);
});

test('currentOrigin: the cookie from the addon (16 hex digits), or none with the reason', () => {
  assert.equal(currentOrigin(() => '00000000000000ab').netnsCookie, '00000000000000ab');
  const none = currentOrigin(() => {
    throw new Error('getsockopt(SO_NETNS_COOKIE): ENOPROTOOPT');
  });
  assert.equal(none.netnsCookie, '');
  assert.match(none.cookieError ?? '', /ENOPROTOOPT/);
  assert.equal(currentOrigin(() => 'junk').netnsCookie, '');
  assert.match(currentOrigin().bootId, /^[0-9a-f]{32}$/);
});
