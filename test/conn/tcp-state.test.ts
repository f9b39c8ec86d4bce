import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DestField, DestFlag, DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { ConnRef, ConnTable, EntryCell, StateFlag } from '../../src/conn/table';
import {
  ConnDir,
  connStateName,
  getTimeouts,
  setTimeouts,
  TCP_STATE_NAMES,
  tcpNextStateCell,
  TcpState,
  tcpStateTransition,
  udpStateTransition,
} from '../../src/conn/tcp-state';
import { addDest, counters, ip } from './helpers';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/packet/tcp';

const TCP = 6;
const UDP = 17;
const T0 = 50_000_000;
const { SYN, ACK, FIN, RST } = { SYN: TCP_SYN, ACK: TCP_ACK, FIN: TCP_FIN, RST: TCP_RST };

function setup(forward: ForwardMethod, uThreshold = 0, lThreshold = 0) {
  const dests = new DestTable(4);
  const slot = addDest(dests, '10.0.1.1', 80, forward);
  dests.set(slot, DestField.U_THRESHOLD, uThreshold);
  dests.set(slot, DestField.L_THRESHOLD, lThreshold);
  const table = new ConnTable(64, dests, { workerId: 0 });
  return { dests, slot, table };
}

function newConn(table: ConnTable, slot: number, forward: ForwardMethod, cport: number, proto = TCP): ConnRef {
  const state = StateFlag.INACTIVE | (forward === ForwardMethod.MASQ ? 0 : StateFlag.NOOUTPUT);
  const index = table.insert(proto, ip('192.168.1.10'), cport, ip('10.0.0.100'), 80, ip('10.0.1.1'), 80, slot, forward, 0, state, 3_000, T0, -1);
  assert.ok(index >= 0);
  const ref = new ConnRef();
  assert.ok(table.lookupIn(proto, ip('192.168.1.10'), cport, ip('10.0.0.100'), 80, ref));
  return ref;
}

interface Step {
  dir: ConnDir;
  flags: number;
  state: string;
  timeoutS: number;
  active: number;
}

function run(table: ConnTable, dests: DestTable, slot: number, ref: ConnRef, steps: Step[]): void {
  let now = T0;
  for (const [i, s] of steps.entries()) {
    now += 1_000;
    tcpStateTransition(table, ref, s.dir, s.flags, now);
    const cell = table.field(ref.index, EntryCell.STATE);
    const where = `step ${i} (${s.dir === ConnDir.INPUT ? 'in' : 'out'} flags 0x${s.flags.toString(16)})`;
    assert.equal(TCP_STATE_NAMES[cell & StateFlag.STATE_MASK], s.state, where);
    assert.equal(table.remainingMs(ref.index, now), s.timeoutS * 1000, `${where}: timeout`);
    assert.equal(dests.load(slot, DestField.ACTIVE), s.active, `${where}: ACTIVE`);
    assert.equal(dests.load(slot, DestField.INACTIVE), 1 - s.active, `${where}: INACTIVE`);
    assert.equal((cell & StateFlag.INACTIVE) === 0, s.active === 1, `${where}: INACTIVE flag`);
  }
}

test('NAT flow, both directions: handshake, data, close from the client', () => {
  const { table, dests, slot } = setup(ForwardMethod.MASQ);
  const ref = newConn(table, slot, ForwardMethod.MASQ, 40000);
  const I = ConnDir.INPUT;
  const O = ConnDir.OUTPUT;
  run(table, dests, slot, ref, [
    { dir: I, flags: SYN, state: 'SYN_RECV', timeoutS: 60, active: 0 },
    { dir: O, flags: SYN | ACK, state: 'SYN_RECV', timeoutS: 60, active: 0 },
    { dir: I, flags: ACK, state: 'ESTABLISHED', timeoutS: 900, active: 1 },
    { dir: O, flags: ACK, state: 'ESTABLISHED', timeoutS: 900, active: 1 },
    { dir: I, flags: FIN | ACK, state: 'CLOSE_WAIT', timeoutS: 60, active: 0 },
    { dir: O, flags: ACK, state: 'CLOSE_WAIT', timeoutS: 60, active: 0 },
    { dir: O, flags: FIN | ACK, state: 'TIME_WAIT', timeoutS: 120, active: 0 },
    { dir: I, flags: ACK, state: 'TIME_WAIT', timeoutS: 120, active: 0 },
  ]);
});

test('NAT flow: the server closes first, then a reset', () => {
  const { table, dests, slot } = setup(ForwardMethod.MASQ);
  const ref = newConn(table, slot, ForwardMethod.MASQ, 40001);
  const I = ConnDir.INPUT;
  const O = ConnDir.OUTPUT;
  run(table, dests, slot, ref, [
    { dir: I, flags: SYN, state: 'SYN_RECV', timeoutS: 60, active: 0 },
    { dir: I, flags: ACK, state: 'ESTABLISHED', timeoutS: 900, active: 1 },
    { dir: O, flags: FIN | ACK, state: 'FIN_WAIT', timeoutS: 120, active: 0 },
    { dir: I, flags: ACK, state: 'FIN_WAIT', timeoutS: 120, active: 0 },
    { dir: I, flags: FIN | ACK, state: 'TIME_WAIT', timeoutS: 120, active: 0 },
    { dir: I, flags: RST, state: 'CLOSE', timeoutS: 10, active: 0 },
  ]);
});

test('DR flow uses the input-only table until a reply is seen', () => {
  const { table, dests, slot } = setup(ForwardMethod.DROUTE);
  const ref = newConn(table, slot, ForwardMethod.DROUTE, 40002);
  const I = ConnDir.INPUT;
  run(table, dests, slot, ref, [
    { dir: I, flags: SYN, state: 'SYN_RECV', timeoutS: 60, active: 0 },
    { dir: I, flags: ACK, state: 'ESTABLISHED', timeoutS: 900, active: 1 },
    { dir: I, flags: ACK, state: 'ESTABLISHED', timeoutS: 900, active: 1 },
    // Input-only: the client's FIN means FIN_WAIT (the full input table would say CLOSE_WAIT).
    { dir: I, flags: FIN | ACK, state: 'FIN_WAIT', timeoutS: 120, active: 0 },
    { dir: I, flags: ACK, state: 'FIN_WAIT', timeoutS: 120, active: 0 },
    { dir: I, flags: RST, state: 'CLOSE', timeoutS: 10, active: 0 },
  ]);
  assert.ok(table.field(ref.index, EntryCell.STATE) & StateFlag.NOOUTPUT);
});

test('input-only differences from the input table, and an output packet clears NOOUTPUT', () => {
  const es = TcpState.ESTABLISHED;
  assert.equal(tcpNextStateCell(es, ConnDir.INPUT, FIN) & 0xff, TcpState.CLOSE_WAIT);
  assert.equal(tcpNextStateCell(es | StateFlag.NOOUTPUT, ConnDir.INPUT, FIN) & 0xff, TcpState.FIN_WAIT);
  assert.equal(tcpNextStateCell(TcpState.SYNACK | StateFlag.NOOUTPUT, ConnDir.INPUT, RST) & 0xff, TcpState.CLOSE);
  assert.equal(tcpNextStateCell(TcpState.SYNACK, ConnDir.INPUT, RST) & 0xff, TcpState.SYN_RECV);
  const afterReply = tcpNextStateCell(es | StateFlag.NOOUTPUT | StateFlag.INACTIVE, ConnDir.OUTPUT, ACK);
  assert.equal(afterReply & StateFlag.NOOUTPUT, 0);
  assert.equal(afterReply & StateFlag.INACTIVE, StateFlag.INACTIVE, 'INACTIVE is left to the caller');
  // RST wins over SYN; a segment with none of SYN/FIN/ACK/RST closes.
  assert.equal(tcpNextStateCell(es, ConnDir.INPUT, SYN | RST) & 0xff, TcpState.CLOSE);
  assert.equal(tcpNextStateCell(es, ConnDir.INPUT, 0x08 /* PSH only */) & 0xff, TcpState.CLOSE);
  // sloppy pickup: an ACK in NONE is ESTABLISHED (INPUT and INPUT-ONLY tables).
  assert.equal(tcpNextStateCell(TcpState.NONE, ConnDir.INPUT, ACK) & 0xff, TcpState.ESTABLISHED);
  assert.equal(tcpNextStateCell(TcpState.NONE | StateFlag.NOOUTPUT, ConnDir.INPUT, ACK) & 0xff, TcpState.ESTABLISHED);
  // Output SYN on NONE: SYN_SENT (a real server opening, active FTP).
  assert.equal(tcpNextStateCell(TcpState.NONE, ConnDir.OUTPUT, SYN) & 0xff, TcpState.SYN_SENT);
});

test('--set tcp tcpfin udp: 0 leaves a value, new values apply from the next packet', () => {
  const { table, dests, slot } = setup(ForwardMethod.MASQ);
  assert.deepEqual(getTimeouts(table), { tcp: 900, tcpfin: 120, udp: 300 });
  const ref = newConn(table, slot, ForwardMethod.MASQ, 40003);
  tcpStateTransition(table, ref, ConnDir.INPUT, SYN, T0);
  tcpStateTransition(table, ref, ConnDir.INPUT, ACK, T0);
  assert.equal(table.remainingMs(ref.index, T0), 900_000);
  setTimeouts(table, 100, 0, 50);
  assert.deepEqual(getTimeouts(table), { tcp: 100, tcpfin: 120, udp: 50 });
  // Same state: set_tcp_state reloads the timeout from the table on every packet.
  assert.equal(table.remainingMs(ref.index, T0 + 1), 899_999, 'not before a packet');
  tcpStateTransition(table, ref, ConnDir.INPUT, ACK, T0 + 1);
  assert.equal(table.remainingMs(ref.index, T0 + 1), 100_000);
  assert.deepEqual(counters(dests, slot), { active: 1, inactive: 0, persist: 0 });
  tcpStateTransition(table, ref, ConnDir.OUTPUT, FIN, T0 + 2);
  assert.equal(table.remainingMs(ref.index, T0 + 2), 120_000);
  setTimeouts(table, 0, 7, 0);
  assert.deepEqual(getTimeouts(table), { tcp: 100, tcpfin: 7, udp: 50 });
  assert.throws(() => setTimeouts(table, -1, 0, 0), /tcp timeout/);
  assert.throws(() => setTimeouts(table, 0, 1.5, 0), /tcpfin timeout/);
  const u = newConn(table, slot, ForwardMethod.MASQ, 40004, UDP);
  udpStateTransition(table, u, T0 + 10);
  assert.equal(table.remainingMs(u.index, T0 + 10), 50_000);
});

test('state names as ipvsadm -lc prints them', () => {
  assert.equal(connStateName(TCP, TcpState.SYNACK, false), 'SYNACK');
  assert.equal(connStateName(TCP, TcpState.ESTABLISHED, false), 'ESTABLISHED');
  assert.equal(connStateName(UDP, 0, false), 'UDP');
  assert.equal(connStateName(TCP, 0, true), 'NONE');
});

test('thresholds: -x sets OVERLOAD when bound connections reach it, 3/4 of it clears it', () => {
  const { table, dests, slot } = setup(ForwardMethod.MASQ, 4);
  const refs: ConnRef[] = [];
  for (let i = 0; i < 3; i++) refs.push(newConn(table, slot, ForwardMethod.MASQ, 41000 + i));
  assert.equal(dests.get(slot, DestField.FLAGS) & DestFlag.OVERLOAD, 0);
  refs.push(newConn(table, slot, ForwardMethod.MASQ, 41003));
  assert.equal(dests.get(slot, DestField.FLAGS) & DestFlag.OVERLOAD, DestFlag.OVERLOAD, '4 >= u_threshold 4');
  // Free one: 3 * 4 < 4 * 3 is false, still overloaded.
  table.expireNow(refs[0]!.index, refs[0]!.seq, T0);
  assert.equal(table.expire(T0, 64), 1);
  assert.equal(dests.get(slot, DestField.FLAGS) & DestFlag.OVERLOAD, DestFlag.OVERLOAD);
  table.expireNow(refs[1]!.index, refs[1]!.seq, T0);
  assert.equal(table.expire(T0, 64), 1);
  assert.equal(dests.get(slot, DestField.FLAGS) & DestFlag.OVERLOAD, 0, '2 * 4 < 4 * 3 clears');
});

test('thresholds: -y is the clearing bound when set', () => {
  const { table, dests, slot } = setup(ForwardMethod.MASQ, 3, 1);
  const refs = [0, 1, 2].map((i) => newConn(table, slot, ForwardMethod.MASQ, 42000 + i));
  assert.equal(dests.get(slot, DestField.FLAGS) & DestFlag.OVERLOAD, DestFlag.OVERLOAD);
  for (const [i, r] of refs.entries()) {
    table.expireNow(r.index, r.seq, T0);
    assert.equal(table.expire(T0, 64), 1);
    const over = (dests.get(slot, DestField.FLAGS) & DestFlag.OVERLOAD) !== 0;
    assert.equal(over, i < 2, `after freeing ${i + 1}: total ${2 - i}`);
  }
  assert.deepEqual(counters(dests, slot), { active: 0, inactive: 0, persist: 0 });
});

test('active connections are unbound from ACTIVE when they expire', () => {
  const { table, dests, slot } = setup(ForwardMethod.MASQ);
  const ref = newConn(table, slot, ForwardMethod.MASQ, 43000);
  tcpStateTransition(table, ref, ConnDir.INPUT, SYN, T0);
  tcpStateTransition(table, ref, ConnDir.INPUT, ACK, T0);
  assert.deepEqual(counters(dests, slot), { active: 1, inactive: 0, persist: 0 });
  assert.equal(table.expire(T0 + 900_000, 64), 1);
  assert.deepEqual(counters(dests, slot), { active: 0, inactive: 0, persist: 0 });
});
