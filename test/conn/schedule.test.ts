import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PacketKey } from '../../src/sched/scheduler';
import { DestField, DestFlag, DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { ConnRef, ConnTable, EntryCell, StateFlag } from '../../src/conn/table';
import { ConnScheduler, ConnVerdict, getKnobs, setKnobs, type ConnService } from '../../src/conn/schedule';
import { TcpState } from '../../src/conn/tcp-state';
import { templateKey, TemplateKey } from '../../src/conn/persistence';
import { addDest, counters, ip, TestRoundRobin } from './helpers';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/packet/tcp';

const TCP = 6;
const UDP = 17;
const VIP = ip('10.0.0.100');
const T0 = 7_000_000;
const { SYN, ACK, FIN, RST } = { SYN: TCP_SYN, ACK: TCP_ACK, FIN: TCP_FIN, RST: TCP_RST };

function setup(forward = ForwardMethod.MASQ, opts: Partial<ConnService> = {}, capacity = 256) {
  const dests = new DestTable(8);
  const a = addDest(dests, '10.0.1.1', 8080, forward);
  const b = addDest(dests, '10.0.1.2', 8080, forward);
  const rr = new TestRoundRobin(dests, [a, b]);
  const table = new ConnTable(capacity, dests, { workerId: 0 });
  const sched = new ConnScheduler(table);
  const svc: ConnService = {
    protocol: TCP,
    addr: VIP,
    port: 80,
    persistent: false,
    persistTimeoutMs: 0,
    netmask: 0xffffffff,
    onePacket: false,
    scheduler: rr,
    ...opts,
  };
  return { dests, a, b, rr, table, sched, svc };
}

function key(saddr: string, sport: number, dport = 80, protocol = TCP): PacketKey {
  return { protocol, saddr: ip(saddr), sport, daddr: VIP, dport };
}

test('a SYN schedules once; later packets and NAT replies find the same entry', () => {
  const { sched, svc, rr, table, a, dests } = setup();
  const out = new ConnRef();
  const k = key('192.168.0.1', 5000);
  assert.equal(sched.inPacket(svc, k, SYN, T0, out), ConnVerdict.FORWARD);
  assert.equal(rr.calls, 1);
  assert.equal(out.destSlot, a);
  assert.equal(out.daddr, ip('10.0.1.1'));
  assert.equal(out.dport, 8080);
  assert.equal(table.field(out.index, EntryCell.STATE) & 0xff, TcpState.SYN_RECV);
  const first = out.index;
  assert.equal(sched.inPacket(svc, k, ACK, T0 + 1, out), ConnVerdict.FORWARD);
  assert.equal(out.index, first);
  assert.equal(rr.calls, 1);
  assert.deepEqual(counters(dests, a), { active: 1, inactive: 0, persist: 0 });
  // The reply from 10.0.1.1:8080 to the client.
  const reply: PacketKey = { protocol: TCP, saddr: ip('10.0.1.1'), sport: 8080, daddr: ip('192.168.0.1'), dport: 5000 };
  assert.equal(sched.outPacket(reply, FIN | ACK, T0 + 2, out), true);
  assert.equal(out.index, first);
  assert.equal(table.field(first, EntryCell.STATE) & 0xff, TcpState.FIN_WAIT);
  assert.deepEqual(counters(dests, a), { active: 0, inactive: 1, persist: 0 });
  // A port that is not the service's is not scheduled by a non-persistent service.
  assert.equal(sched.inPacket(svc, key('192.168.0.1', 5001, 81), SYN, T0, out), ConnVerdict.WRONG_PORT);
});

test('sloppy_tcp: 0 lets only a SYN create an entry, 1 any packet but a RST', () => {
  const { sched, svc, rr, table } = setup();
  const out = new ConnRef();
  assert.deepEqual(getKnobs(table), { sloppyTcp: 0, expireNodestConn: 0, expireQuiescentTemplate: 0, connReuseMode: 1 });
  assert.equal(sched.inPacket(svc, key('192.168.0.2', 6000), ACK, T0, out), ConnVerdict.PASS);
  assert.equal(sched.inPacket(svc, key('192.168.0.2', 6000), FIN | ACK, T0, out), ConnVerdict.PASS);
  assert.equal(rr.calls, 0);
  setKnobs(table, { sloppyTcp: 1 });
  assert.equal(sched.inPacket(svc, key('192.168.0.2', 6001), RST, T0, out), ConnVerdict.PASS);
  assert.equal(sched.inPacket(svc, key('192.168.0.2', 6000), ACK, T0, out), ConnVerdict.FORWARD);
  assert.equal(rr.calls, 1);
  // Picked up mid-stream: an ACK in NONE is ESTABLISHED.
  assert.equal(table.field(out.index, EntryCell.STATE) & 0xff, TcpState.ESTABLISHED);
  assert.throws(() => setKnobs(table, { sloppyTcp: 7 }), /sloppyTcp/);
  // UDP needs no SYN.
  const u = setup(ForwardMethod.MASQ, { protocol: UDP, port: 53 });
  assert.equal(u.sched.inPacket(u.svc, key('192.168.0.3', 7000, 53, UDP), 0, T0, out), ConnVerdict.FORWARD);
  assert.equal(u.table.remainingMs(out.index, T0), 300_000);
});

test('conn_reuse_mode 1: a SYN hitting TIME_WAIT or CLOSE is scheduled anew; 0 reuses the entry', () => {
  for (const mode of [1, 0]) {
    const { sched, svc, rr, table, a, b, dests } = setup();
    setKnobs(table, { connReuseMode: mode });
    const out = new ConnRef();
    const k = key('192.168.0.4', 7000);
    sched.inPacket(svc, k, SYN, T0, out);
    sched.inPacket(svc, k, ACK, T0, out);
    sched.inPacket(svc, k, FIN | ACK, T0, out);
    sched.outPacket({ protocol: TCP, saddr: ip('10.0.1.1'), sport: 8080, daddr: k.saddr, dport: 7000 }, FIN | ACK, T0, out);
    assert.equal(table.field(out.index, EntryCell.STATE) & 0xff, TcpState.TIME_WAIT);
    const old = out.index;
    assert.equal(sched.inPacket(svc, k, SYN, T0 + 5, out), ConnVerdict.FORWARD);
    if (mode === 1) {
      assert.equal(rr.calls, 2, 'rescheduled');
      assert.notEqual(out.index, old);
      assert.equal(out.destSlot, b, 'the next real server in rr order');
      assert.equal(table.field(out.index, EntryCell.STATE) & 0xff, TcpState.SYN_RECV);
      // The old entry is unreachable and freed by the next sweep.
      assert.equal(table.expire(T0 + 5, 256), 1);
      assert.equal(table.count, 1);
      assert.deepEqual(counters(dests, a), { active: 0, inactive: 0, persist: 0 });
    } else {
      assert.equal(rr.calls, 1, 'reused');
      assert.equal(out.index, old);
      assert.equal(table.field(out.index, EntryCell.STATE) & 0xff, TcpState.SYN_RECV);
    }
  }
});

test('conn_reuse_mode bit 2: DR entries in FIN_WAIT are rescheduled too', () => {
  for (const mode of [1, 3]) {
    const { sched, svc, rr, table } = setup(ForwardMethod.DROUTE);
    setKnobs(table, { connReuseMode: mode });
    const out = new ConnRef();
    const k = key('192.168.0.5', 7100);
    sched.inPacket(svc, k, SYN, T0, out);
    sched.inPacket(svc, k, ACK, T0, out);
    sched.inPacket(svc, k, FIN | ACK, T0, out);
    assert.equal(table.field(out.index, EntryCell.STATE) & 0xff, TcpState.FIN_WAIT);
    assert.ok(table.field(out.index, EntryCell.STATE) & StateFlag.NOOUTPUT);
    sched.inPacket(svc, k, SYN, T0 + 1, out);
    assert.equal(rr.calls, mode === 3 ? 2 : 1, `mode ${mode}`);
  }
});

test('expire_nodest_conn: packets for a removed real server are dropped; with 1 the entry goes at once', () => {
  for (const knob of [0, 1]) {
    const { sched, svc, table, a, dests } = setup();
    setKnobs(table, { expireNodestConn: knob });
    const out = new ConnRef();
    const k = key('192.168.0.6', 7200);
    sched.inPacket(svc, k, SYN, T0, out);
    sched.inPacket(svc, k, ACK, T0, out);
    // The control plane deletes the real server while the connection lives.
    dests.set(a, DestField.FLAGS, dests.get(a, DestField.FLAGS) & ~DestFlag.AVAILABLE);
    assert.equal(sched.inPacket(svc, k, ACK, T0 + 1, out), ConnVerdict.DEST_UNAVAILABLE);
    const probe = new ConnRef();
    assert.equal(table.lookupIn(TCP, k.saddr, 7200, VIP, 80, probe), knob === 0, `knob ${knob}`);
    assert.equal(table.expire(T0 + 1, 256), knob === 1 ? 1 : 0);
  }
});

test('expire_nodest_conn: a SYN reusing an entry of a weight-0 server is rescheduled', () => {
  const { sched, svc, rr, table, a, dests } = setup();
  setKnobs(table, { expireNodestConn: 1, connReuseMode: 0 });
  const out = new ConnRef();
  const k = key('192.168.0.7', 7300);
  sched.inPacket(svc, k, SYN, T0, out);
  sched.inPacket(svc, k, ACK, T0, out);
  dests.set(a, DestField.WEIGHT, 0);
  sched.inPacket(svc, k, SYN, T0 + 1, out);
  assert.equal(rr.calls, 2);
  assert.notEqual(out.destSlot, a);
});

test('persistence -p: the same client goes to the same real server; templates count in PERSIST', () => {
  const { sched, svc, rr, table, a, b, dests } = setup(ForwardMethod.MASQ, { persistent: true, persistTimeoutMs: 360_000 });
  const out = new ConnRef();
  assert.equal(sched.inPacket(svc, key('192.168.1.1', 1000), SYN, T0, out), ConnVerdict.FORWARD);
  assert.equal(out.destSlot, a);
  for (let p = 1001; p < 1010; p++) {
    assert.equal(sched.inPacket(svc, key('192.168.1.1', p), SYN, T0 + p, out), ConnVerdict.FORWARD);
    assert.equal(out.destSlot, a, `client port ${p}`);
  }
  assert.equal(rr.calls, 1);
  assert.equal(sched.inPacket(svc, key('192.168.1.2', 1000), SYN, T0, out), ConnVerdict.FORWARD);
  assert.equal(out.destSlot, b, 'another client is scheduled');
  assert.equal(rr.calls, 2);
  assert.equal(dests.load(a, DestField.PERSIST), 1);
  assert.equal(dests.load(b, DestField.PERSIST), 1);
  assert.equal(dests.load(a, DestField.INACTIVE), 10);
  const tpl = table.list(T0).filter((r) => r.template);
  assert.equal(tpl.length, 2);
  const t = tpl.find((r) => r.daddr === ip('10.0.1.1'))!;
  assert.equal(t.cport, 0);
  assert.equal(t.vport, 80);
  assert.equal(t.dport, 8080);
  assert.equal(t.control, 10);
});

test('persistence -M: the client network shares one template', () => {
  const { sched, svc, rr } = setup(ForwardMethod.MASQ, { persistent: true, persistTimeoutMs: 360_000, netmask: ip('255.255.255.0') });
  const out = new ConnRef();
  sched.inPacket(svc, key('172.20.5.1', 1000), SYN, T0, out);
  const first = out.destSlot;
  sched.inPacket(svc, key('172.20.5.200', 1000), SYN, T0, out);
  assert.equal(out.destSlot, first);
  assert.equal(rr.calls, 1);
  sched.inPacket(svc, key('172.20.6.1', 1000), SYN, T0, out);
  assert.notEqual(out.destSlot, first);
  assert.equal(rr.calls, 2);
});

test('template expiry: after the connections and the persistence timeout, the client is scheduled anew', () => {
  const { sched, svc, rr, table, a, b, dests } = setup(ForwardMethod.MASQ, { persistent: true, persistTimeoutMs: 60_000 });
  const out = new ConnRef();
  sched.inPacket(svc, key('192.168.2.1', 1000), SYN, T0, out); // SYN_RECV, 60 s
  assert.equal(out.destSlot, a);
  // Another client takes the next rr turn so the first one would move if rescheduled.
  // Reuse within the timeout re-arms the template.
  sched.inPacket(svc, key('192.168.2.1', 1001), SYN, T0 + 30_000, out);
  assert.equal(out.destSlot, a);
  assert.equal(rr.calls, 1);
  // Both connections expire (SYN_RECV 60 s); the template was re-armed at +30 s, so it is due
  // at +90 s too. If the sweep meets it before its last connection it waits 60 s more
  // (expire_later), as the kernel's timer would.
  assert.equal(table.expire(T0 + 60_000, 256), 1);
  assert.equal(table.lookupTemplate(TCP, ip('192.168.2.1'), 0, VIP, 80, out), true);
  const freed = table.expire(T0 + 90_000, 256);
  assert.ok(freed >= 1);
  if (freed === 1) assert.equal(table.expire(T0 + 150_000, 256), 1);
  assert.equal(table.count, 0);
  assert.deepEqual(counters(dests, a), { active: 0, inactive: 0, persist: 0 });
  sched.inPacket(svc, key('192.168.2.1', 1002), SYN, T0 + 100_000, out);
  assert.equal(rr.calls, 2);
  assert.equal(out.destSlot, b);
});

test('expire_quiescent_template: with 0 a weight-0 server keeps its clients, with 1 they move', () => {
  for (const knob of [0, 1]) {
    const { sched, svc, rr, table, a, dests } = setup(ForwardMethod.MASQ, { persistent: true, persistTimeoutMs: 360_000 });
    setKnobs(table, { expireQuiescentTemplate: knob });
    const out = new ConnRef();
    sched.inPacket(svc, key('192.168.3.1', 1000), SYN, T0, out);
    assert.equal(out.destSlot, a);
    dests.set(a, DestField.WEIGHT, 0); // quiesced
    sched.inPacket(svc, key('192.168.3.1', 1001), SYN, T0 + 1, out);
    if (knob === 0) {
      assert.equal(out.destSlot, a, 'template still used');
      assert.equal(rr.calls, 1);
    } else {
      assert.notEqual(out.destSlot, a, 'template invalidated, client rescheduled');
      assert.equal(rr.calls, 2);
      // The old template still controls the first connection, so it stays until that goes.
      assert.equal(dests.load(a, DestField.PERSIST), 1);
    }
  }
});

test('a template whose real server was deleted is not used', () => {
  const { sched, svc, rr, a, dests } = setup(ForwardMethod.MASQ, { persistent: true, persistTimeoutMs: 360_000 });
  const out = new ConnRef();
  sched.inPacket(svc, key('192.168.4.1', 1000), SYN, T0, out);
  dests.set(a, DestField.FLAGS, dests.get(a, DestField.FLAGS) & ~DestFlag.AVAILABLE);
  rr.update([1]);
  sched.inPacket(svc, key('192.168.4.1', 1001), SYN, T0, out);
  assert.equal(rr.calls, 2);
  assert.equal(out.destSlot, 1);
});

test('template keys: FTP and port-zero services leave the ports out', () => {
  const k = new TemplateKey();
  templateKey(TCP, ip('1.2.3.4'), VIP, 443, 443, ip('255.255.0.0'), k);
  assert.deepEqual({ ...k }, { protocol: TCP, caddr: ip('1.2.0.0') | 0, vaddr: VIP | 0, vport: 443, keepsPort: true });
  templateKey(TCP, ip('1.2.3.4'), VIP, 21, 21, 0xffffffff, k);
  assert.equal(k.vport, 0);
  assert.equal(k.keepsPort, false);
  templateKey(TCP, ip('1.2.3.4'), VIP, 8443, 0, 0xffffffff, k);
  assert.equal(k.vport, 0);
  // Port-zero persistent service: connections keep their own port, the template has none.
  const { sched, svc, table } = setup(ForwardMethod.DROUTE, { persistent: true, persistTimeoutMs: 360_000, port: 0 });
  const dests = table.dests;
  dests.set(0, DestField.PORT, 0);
  dests.set(1, DestField.PORT, 0);
  const out = new ConnRef();
  assert.equal(sched.inPacket(svc, key('192.168.5.1', 1000, 8443), SYN, T0, out), ConnVerdict.FORWARD);
  assert.equal(out.dport, 8443);
  sched.inPacket(svc, key('192.168.5.1', 1001, 9000), SYN, T0, out);
  assert.equal(out.dport, 9000);
  const tpl = table.list(T0).filter((r) => r.template);
  assert.equal(tpl.length, 1);
  assert.equal(tpl[0]!.vport, 0);
  assert.equal(tpl[0]!.dport, 0);
});

test('a full table: TABLE_FULL, counted, existing connections unaffected', () => {
  const { sched, svc, table } = setup(ForwardMethod.MASQ, {}, 2);
  const out = new ConnRef();
  assert.equal(sched.inPacket(svc, key('192.168.6.1', 1), SYN, T0, out), ConnVerdict.FORWARD);
  assert.equal(sched.inPacket(svc, key('192.168.6.1', 2), SYN, T0, out), ConnVerdict.FORWARD);
  assert.equal(sched.inPacket(svc, key('192.168.6.1', 3), SYN, T0, out), ConnVerdict.TABLE_FULL);
  assert.equal(table.refused, 1);
  assert.equal(sched.inPacket(svc, key('192.168.6.1', 1), ACK, T0, out), ConnVerdict.FORWARD);
  assert.equal(sched.inPacket(svc, key('192.168.6.1', 2), ACK, T0, out), ConnVerdict.FORWARD);
});

test('no real server available: NO_DEST, nothing created', () => {
  const { sched, svc, table, rr } = setup();
  rr.update([]);
  const out = new ConnRef();
  assert.equal(sched.inPacket(svc, key('192.168.7.1', 1), SYN, T0, out), ConnVerdict.NO_DEST);
  assert.equal(table.count, 0);
});

test('expire_nodest_conn: the sweep also drops the entries of a removed real server without waiting for a packet', () => {
  for (const knob of [0, 1]) {
    const { sched, svc, table, a, dests } = setup();
    setKnobs(table, { expireNodestConn: knob });
    const out = new ConnRef();
    for (let p = 0; p < 5; p++) {
      sched.inPacket(svc, key('192.168.9.1', 100 + p), SYN, T0, out);
      sched.inPacket(svc, key('192.168.9.1', 100 + p), ACK, T0, out);
    }
    assert.equal(dests.load(a, DestField.ACTIVE), 3, 'rr: 3 of 5 on the first server');
    dests.set(a, DestField.FLAGS, dests.get(a, DestField.FLAGS) & ~DestFlag.AVAILABLE);
    assert.equal(table.expire(T0 + 1, 256), knob === 1 ? 3 : 0, `knob ${knob}`);
    assert.equal(table.count, knob === 1 ? 2 : 5);
  }
});

test('one-packet scheduling (-o): each UDP datagram is scheduled and its entry expires at once', () => {
  const { sched, svc, rr, table } = setup(ForwardMethod.MASQ, { protocol: UDP, port: 53, onePacket: true });
  const out = new ConnRef();
  assert.equal(sched.inPacket(svc, key('192.168.8.1', 5353, 53, UDP), 0, T0, out), ConnVerdict.FORWARD);
  assert.equal(sched.created, true);
  assert.equal(table.remainingMs(out.index, T0), 0);
  // Never hashed (ip_vs_conn_hash skips one-packet entries): the next datagram is scheduled
  // again even before the sweep frees the first entry.
  assert.equal(sched.inPacket(svc, key('192.168.8.1', 5353, 53, UDP), 0, T0 + 1, out), ConnVerdict.FORWARD);
  assert.equal(rr.calls, 2, 'scheduled again');
  assert.equal(table.count, 2);
  assert.equal(table.expire(T0 + 1, 256), 2);
  assert.equal(table.count, 0);
  assert.equal(table.indexStats().forward.used, 0);
  // Without -o the same datagrams share one entry for the UDP timeout.
  const plain = setup(ForwardMethod.MASQ, { protocol: UDP, port: 53 });
  plain.sched.inPacket(plain.svc, key('192.168.8.1', 5353, 53, UDP), 0, T0, out);
  assert.equal(plain.sched.inPacket(plain.svc, key('192.168.8.1', 5353, 53, UDP), 0, T0 + 1, out), ConnVerdict.FORWARD);
  assert.equal(plain.sched.created, false);
  assert.equal(plain.rr.calls, 1);
});
