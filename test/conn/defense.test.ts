// The connection table's flood defence (src/conn/defense.ts): drop_entry evicts cheap entries
// under pressure and never protected ones, drop_packet sheds new connections, secure_tcp
// switches to the kernel's tcp_states_dos table, and the knobs are validated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { ConnRef, ConnTable, CONN_ENTRY_BYTES, connTableBytes, SYNC_RECORD_CELLS } from '../../src/conn/table';
import { ConnFlag } from '../../src/sync/codec';
import { importSyncConn } from '../../src/sync/daemon';
import { ConnScheduler, ConnVerdict, type ConnService } from '../../src/conn/schedule';
import { EvictReason, getDefense, setDefense } from '../../src/conn/defense';
import { TcpState } from '../../src/conn/tcp-state';
import { TCP_ACK, TCP_SYN } from '../../src/packet/tcp';
import type { PacketKey } from '../../src/sched/scheduler';
import { addDest, ip, TestRoundRobin } from './helpers';

const TCP = 6;
const UDP = 17;
const VIP = ip('10.0.0.100');
const T0 = 1_000_000;

function lab(fwd: ForwardMethod, capacity = 64, proto = TCP) {
  const dests = new DestTable(8);
  const slot = addDest(dests, fwd === ForwardMethod.MASQ ? '10.0.1.1' : '10.0.1.2', 80, fwd);
  const table = new ConnTable(capacity, dests, { workerId: 0 });
  const evicted = [0, 0, 0, 0];
  table.evictionSink = { evicted: (r) => void evicted[r]!++ };
  const svc: ConnService = { protocol: proto, addr: VIP, port: 80, persistent: false, persistTimeoutMs: 0, netmask: 0xffffffff, onePacket: false, scheduler: new TestRoundRobin(dests, [slot]) };
  const sched = new ConnScheduler(table);
  const ref = new ConnRef();
  const key: PacketKey = { protocol: proto, saddr: 0, sport: 0, daddr: VIP, dport: 80 };
  /** A client packet; returns the verdict (ref describes the entry). */
  const client = (caddr: number, cport: number, flags: number, now: number, data = false): ConnVerdict => {
    key.protocol = proto;
    key.saddr = caddr;
    key.sport = cport;
    key.daddr = VIP;
    key.dport = 80;
    const v = sched.inPacket(svc, key, flags, now, ref);
    if (v === ConnVerdict.FORWARD && data) table.countData(ref.index);
    return v;
  };
  /** A NAT reply from the real server to caddr:cport. */
  const reply = (caddr: number, cport: number, flags: number, now: number): boolean => {
    key.protocol = proto;
    key.saddr = ip('10.0.1.1');
    key.sport = 80;
    key.daddr = caddr;
    key.dport = cport;
    const hit = sched.outPacket(key, flags, now, ref);
    if (hit) table.countReply(ref.index);
    return hit;
  };
  const find = (cport: number): number => {
    const e = table.list(T0).find((x) => x.cport === cport);
    return e ? e.state : -1;
  };
  return { table, sched, client, reply, evicted, find, slot };
}

const SYN = TCP_SYN;
const ACK = TCP_ACK;
const SYNACK = TCP_SYN | TCP_ACK;

test('80.125 bytes per entry, indexes and bitmap included; the defaults: drop_entry auto, amemthresh an eighth of the slots', () => {
  assert.equal(CONN_ENTRY_BYTES, 80.125);
  assert.equal(connTableBytes(1024) - connTableBytes(0), 1024 * CONN_ENTRY_BYTES);
  const { table } = lab(ForwardMethod.MASQ, 800);
  assert.deepEqual(getDefense(table), { dropEntry: 1, dropPacket: 0, secureTcp: 0, amemthresh: 100, amDroprate: 10 });
});

test('drop_entry: a spoofed SYN flood past the threshold is evicted, a real NAT connection that carried data stays', () => {
  const { table, client, reply, evicted } = lab(ForwardMethod.MASQ, 64);
  const real = ip('192.168.0.7');
  // A real client: handshake, a request, the answer (two replies).
  assert.equal(client(real, 40000, SYN, T0), ConnVerdict.FORWARD);
  assert.ok(reply(real, 40000, SYNACK, T0));
  client(real, 40000, ACK, T0);
  client(real, 40000, ACK, T0, true);
  assert.ok(reply(real, 40000, ACK, T0));
  // 63 spoofed SYNs fill the table.
  for (let i = 0; i < 63; i++) assert.equal(client(ip('172.16.0.0') + i, 1000 + i, SYN, T0 + 10), ConnVerdict.FORWARD);
  assert.equal(table.count, 64);
  assert.equal(client(ip('192.168.0.8'), 41000, SYN, T0 + 20), ConnVerdict.TABLE_FULL);
  // At a full table the SYN grace is 200 ms: nothing goes before.
  assert.equal(table.expire(T0 + 150, 1000), 0);
  const freed = table.expire(T0 + 300, 1000);
  assert.equal(freed, 63);
  assert.deepEqual(evicted, [63, 0, 0, 0]);
  assert.equal(table.count, 1, 'the real connection is protected');
  // A new real client gets in now.
  assert.equal(client(ip('192.168.0.8'), 41000, SYN, T0 + 400), ConnVerdict.FORWARD);
});

test('drop_entry: nothing is evicted without pressure (auto), or ever with drop_entry 0', () => {
  const a = lab(ForwardMethod.DROUTE, 64);
  for (let i = 0; i < 20; i++) a.client(ip('172.16.0.0') + i, 1000 + i, SYN, T0);
  assert.equal(a.table.expire(T0 + 10_000, 1000), 0, '20 of 64 used: above amemthresh (8) free');
  const b = lab(ForwardMethod.DROUTE, 64);
  setDefense(b.table, { dropEntry: 0 });
  for (let i = 0; i < 64; i++) b.client(ip('172.16.0.0') + i, 1000 + i, SYN, T0);
  assert.equal(b.table.expire(T0 + 10_000, 1000), 0);
  assert.equal(b.table.count, 64);
  // drop_entry 3: on without pressure, at the longest grace (2 s for SYN_RECV).
  const c = lab(ForwardMethod.DROUTE, 64);
  setDefense(c.table, { dropEntry: 3 });
  for (let i = 0; i < 4; i++) c.client(ip('172.16.0.0') + i, 1000 + i, SYN, T0);
  assert.equal(c.table.expire(T0 + 1_900, 1000), 0);
  assert.equal(c.table.expire(T0 + 2_100, 1000), 4);
});

test('drop_entry in DR: spoofed SYN-then-ACK entries (ESTABLISHED, no data) go; a client that sent two requests stays', () => {
  const { table, client, evicted } = lab(ForwardMethod.DROUTE, 64);
  const real = ip('192.168.0.7');
  client(real, 40000, SYN, T0);
  client(real, 40000, ACK, T0);
  client(real, 40000, ACK, T0, true);
  client(real, 40000, ACK, T0);
  client(real, 40000, ACK, T0, true);
  for (let i = 0; i < 60; i++) {
    client(ip('172.16.0.0') + i, 1000 + i, SYN, T0);
    client(ip('172.16.0.0') + i, 1000 + i, ACK, T0);
  }
  assert.equal(table.list(T0).filter((e) => e.state === TcpState.ESTABLISHED).length, 61);
  // 61 of 64: 3 free, amemthresh 8: pressure 3/8, the no-data grace 0.5 + 4.5 × 3/8 = 2.19 s.
  assert.equal(table.expire(T0 + 2_000, 1000), 0);
  assert.equal(table.expire(T0 + 2_300, 1000), 60);
  assert.deepEqual(evicted, [0, 0, 60, 0]);
  assert.equal(table.count, 1);
  // Idle for hours, it is still not evicted (it expires by its own timeout only).
  setDefense(table, { dropEntry: 3 });
  assert.equal(table.expire(T0 + 600_000, 1000), 0);
});

test('drop_entry: a spoofed UDP flood (one datagram each) goes first; a DR flow of 9 datagrams stays', () => {
  const { table, client, evicted } = lab(ForwardMethod.DROUTE, 64, UDP);
  const real = ip('192.168.0.7');
  for (let i = 0; i < 9; i++) client(real, 5000, 0, T0, true);
  for (let i = 0; i < 63; i++) client(ip('172.16.0.0') + i, 1000 + i, 0, T0, true);
  assert.equal(table.count, 64);
  assert.equal(table.expire(T0 + 250, 1000), 63);
  assert.deepEqual(evicted, [0, 63, 0, 0]);
  assert.equal(table.list(T0).length, 1);
});

test('drop_entry: an entry that keeps receiving packets is not evicted however cheap it looks', () => {
  const { table, client } = lab(ForwardMethod.DROUTE, 64);
  for (let i = 0; i < 64; i++) client(ip('172.16.0.0') + i, 1000 + i, SYN, T0);
  // One of them is retransmitting its SYN every 100 ms.
  for (let t = 100; t <= 1000; t += 100) client(ip('172.16.0.0'), 1000, SYN, T0 + t);
  assert.equal(table.expire(T0 + 1050, 1000), 63);
  assert.equal(table.list(T0).length, 1);
});

test('drop_packet: 3 drops one new connection in am_droprate; auto drops only under pressure, then amemthresh/(amemthresh-free)', () => {
  const a = lab(ForwardMethod.DROUTE, 64);
  setDefense(a.table, { dropPacket: 3, amDroprate: 4 });
  let dropped = 0;
  for (let i = 0; i < 40; i++) if (a.client(ip('172.16.0.0') + i, 1000 + i, SYN, T0) === ConnVerdict.DEFENSE_DROP) dropped++;
  assert.equal(dropped, 10);
  // Existing connections are never dropped by it.
  const live = a.table.list(T0)[0]!;
  assert.equal(a.client(live.caddr, live.cport, ACK, T0), ConnVerdict.FORWARD);

  const b = lab(ForwardMethod.DROUTE, 64);
  setDefense(b.table, { dropPacket: 1, dropEntry: 0, amemthresh: 16 });
  let i = 0;
  while (b.table.count < 48) assert.equal(b.client(ip('172.16.0.0') + i, 1000 + i++, SYN, T0), ConnVerdict.FORWARD);
  // 16 free = amemthresh: no pressure yet; from 15 free on, one in 16/(16-15) = 16 is dropped
  // (rising to every one as the table fills).
  let shed = 0;
  for (let k = 0; k < 8; k++) if (b.client(ip('172.17.0.0') + k, 2000 + k, SYN, T0) === ConnVerdict.DEFENSE_DROP) shed++;
  assert.ok(shed >= 1 && shed < 8, `shed ${shed} of 8`);
});

test('secure_tcp: in NAT a client ACK no longer completes the handshake; the real server\'s answer does', () => {
  const plain = lab(ForwardMethod.MASQ, 64);
  plain.client(ip('172.16.0.1'), 1000, SYN, T0);
  plain.client(ip('172.16.0.1'), 1000, ACK, T0);
  assert.equal(plain.find(1000), TcpState.ESTABLISHED, 'the normal table: a spoofed ACK establishes');

  const secure = lab(ForwardMethod.MASQ, 64);
  setDefense(secure.table, { secureTcp: 3 });
  secure.client(ip('172.16.0.1'), 1000, SYN, T0);
  secure.client(ip('172.16.0.1'), 1000, ACK, T0);
  assert.equal(secure.find(1000), TcpState.SYN_RECV, 'tcp_states_dos: INPUT ack in SYN_RECV stays');
  secure.reply(ip('172.16.0.1'), 1000, SYNACK, T0);
  assert.equal(secure.find(1000), TcpState.SYNACK);
  secure.reply(ip('172.16.0.1'), 1000, ACK, T0);
  assert.equal(secure.find(1000), TcpState.ESTABLISHED);
  // Auto (1): only under pressure.
  const auto = lab(ForwardMethod.MASQ, 64);
  setDefense(auto.table, { secureTcp: 1 });
  auto.client(ip('172.16.0.1'), 1000, SYN, T0);
  auto.client(ip('172.16.0.1'), 1000, ACK, T0);
  assert.equal(auto.find(1000), TcpState.ESTABLISHED);
});

test('setDefense: bad values are refused with the knob named, and change nothing', () => {
  const { table } = lab(ForwardMethod.MASQ, 64);
  const before = getDefense(table);
  assert.throws(() => setDefense(table, { dropEntry: 1, secureTcp: 4 }), /secureTcp: expected 0 \(off\), 1 or 2 \(auto\) or 3 \(always\), got 4/);
  assert.throws(() => setDefense(table, { amemthresh: 65 }), /amemthresh: expected free slots 0\.\.64/);
  assert.throws(() => setDefense(table, { amDroprate: 0 }), /am_droprate/);
  assert.deepEqual(getDefense(table), before);
  setDefense(table, { dropPacket: 2, amemthresh: 0 });
  assert.deepEqual(getDefense(table), { ...before, dropPacket: 2, amemthresh: 0 });
  void EvictReason.SYN;
});

/** 60 spoofed SYN-then-ACK pairs (ESTABLISHED, no client data) into a 64-slot DR table. */
function spoofSynAck(client: ReturnType<typeof lab>['client']): void {
  for (let i = 0; i < 60; i++) {
    client(ip('172.16.0.0') + i, 1000 + i, SYN, T0);
    client(ip('172.16.0.0') + i, 1000 + i, ACK, T0);
  }
}

test('drop_entry after a restart: a restored connection keeps its traffic counts and stays protected', () => {
  const before = lab(ForwardMethod.DROUTE, 64);
  const real = ip('192.168.0.7');
  before.client(real, 40000, SYN, T0);
  before.client(real, 40000, ACK, T0);
  before.client(real, 40000, ACK, T0, true);
  before.client(real, 40000, ACK, T0);
  before.client(real, 40000, ACK, T0, true);
  // The restart's round trip (src/dataplane/conn-state.ts): export, then import into a new table.
  const rec = new Int32Array(SYNC_RECORD_CELLS * 4);
  const { records } = before.table.exportBatch(0, rec, T0);
  assert.equal(records, 1);
  const after = lab(ForwardMethod.DROUTE, 64);
  assert.ok(after.table.importEntry(rec, 0, after.slot, T0) >= 0);
  spoofSynAck(after.client);
  assert.equal(after.table.expire(T0 + 2_300, 1000), 60, 'the spoofed entries go');
  setDefense(after.table, { dropEntry: 3 });
  assert.equal(after.table.expire(T0 + 600_000, 1000), 0, 'the restored connection is never evicted');
  assert.deepEqual(after.evicted, [0, 0, 60, 0]);
  assert.equal(after.find(40000), TcpState.ESTABLISHED);
});

test('drop_entry after a failover: a connection taken over by sync is judged as one with a little traffic, not as a spoofed SYN-then-ACK', () => {
  const conn = { af: 4 as const, protocol: TCP, flags: ConnFlag.DROUTE, state: TcpState.ESTABLISHED, cport: 40000, vport: 80, dport: 80, fwmark: 0, timeout: 0, caddr: ip('192.168.0.7'), vaddr: VIP, daddr: ip('10.0.1.2') };
  const rec = new Int32Array(SYNC_RECORD_CELLS);
  for (const credit of [3, 0]) {
    const b = lab(ForwardMethod.DROUTE, 64);
    // Credited with sync_threshold (3) packets and one of data: drop_entry's FEW class, whose
    // grace at this pressure (3 of 8 threshold slots free) is 5 + 55 × 3/8 = 25.6 s. Without the
    // credit (as before) it went with the spoofed entries, after the no-data grace of 2.19 s.
    assert.equal(importSyncConn(b.table, conn, () => b.slot, T0, rec, credit), '');
    spoofSynAck(b.client);
    assert.equal(b.table.expire(T0 + 2_300, 1000), credit > 0 ? 60 : 61, `credit ${credit}: at 2.3 s idle`);
    if (credit > 0) assert.equal(b.find(40000), TcpState.ESTABLISHED, 'still there after the spoofed ones went');
  }
});
