// IPVS's TCP connection states (net/netfilter/ipvs/ip_vs_proto_tcp.c), UDP's single state,
// and the `ipvsadm --set tcp tcpfin udp` timeouts.
//
// IPVS does not track TCP sequence numbers: it moves a connection between states by the flags
// of each packet (tcp_state_idx: RST, else SYN, else FIN, else ACK) and its direction, using
// one of three tables: INPUT (client → director), OUTPUT (real server → client, seen in NAT)
// and INPUT-ONLY, used while the entry has IP_VS_CONN_F_NOOUTPUT (DR and TUN: the replies
// bypass the director, so it must guess the end of a connection from the client's packets
// alone). The first output packet clears NOOUTPUT. The tables below are the kernel's
// (post-sloppy_tcp, where an ACK in NONE means ESTABLISHED); while secure_tcp is on
// (defense.ts) the kernel's tcp_states_dos replaces them.

import { ConnTable, ConnRef, EntryCell, HeaderCell, Meta, StateFlag, UDP_TIMEOUT_SLOT } from './table';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../packet/tcp';
import { IPPROTO_TCP, IPPROTO_UDP } from '../packet/ipv4';

export const enum TcpState {
  NONE = 0,
  ESTABLISHED = 1,
  SYN_SENT = 2,
  SYN_RECV = 3,
  FIN_WAIT = 4,
  TIME_WAIT = 5,
  CLOSE = 6,
  CLOSE_WAIT = 7,
  LAST_ACK = 8,
  LISTEN = 9,
  SYNACK = 10,
}
export const TCP_STATE_COUNT = 11;

/** State names as `ipvsadm -lc` prints them (tcp_state_name_table). */
export const TCP_STATE_NAMES: readonly string[] = [
  'NONE',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'SYNACK',
];

/** Name of a connection's state for listings: TCP names, "UDP" for UDP (udp_state_name_table),
 *  "NONE" for templates (their state stays 0). */
export function connStateName(protocol: number, state: number, template: boolean): string {
  if (template) return 'NONE';
  if (protocol === IPPROTO_TCP) return TCP_STATE_NAMES[state] ?? 'ERR!';
  if (protocol === IPPROTO_UDP) return 'UDP';
  return 'NONE';
}

/** Packet direction, IPVS IP_VS_DIR_INPUT / IP_VS_DIR_OUTPUT. */
export const enum ConnDir {
  INPUT = 0,
  OUTPUT = 1,
}

// Table rows: [offset + flagRow] where offset is 0 (INPUT), 4 (OUTPUT), 8 (INPUT-ONLY) and
// flagRow is 0 syn, 1 fin, 2 ack, 3 rst. Columns: the current state, NONE..SYNACK.
const ES = TcpState.ESTABLISHED;
const SS = TcpState.SYN_SENT;
const SR = TcpState.SYN_RECV;
const FW = TcpState.FIN_WAIT;
const TW = TcpState.TIME_WAIT;
const CL = TcpState.CLOSE;
const CW = TcpState.CLOSE_WAIT;
const LA = TcpState.LAST_ACK;
const LI = TcpState.LISTEN;
const SA = TcpState.SYNACK;

const DIR_INPUT = 0;
const DIR_OUTPUT = 4;
const DIR_INPUT_ONLY = 8;

/** tcp_states_dos[] of ip_vs_proto_tcp.c (secure_tcp on), flattened like TCP_NEXT. The changes:
 *  INPUT — a client's ACK leaves SYN_RECV as it is (only the real server's answer, seen in NAT,
 *  completes the handshake: OUTPUT SYN in SYN_RECV gives SYNACK, then its ACK ESTABLISHED), a SYN
 *  or FIN in SYNACK stays; INPUT-ONLY — a SYN opens in SYNACK. */
const TCP_NEXT_DOS = Uint8Array.from([
  // INPUT
  /* syn */ SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA,
  /* fin */ CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA,
  /* ack */ ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA,
  /* rst */ CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL,
  // OUTPUT
  /* syn */ SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA,
  /* fin */ TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW,
  /* ack */ ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES,
  /* rst */ CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL,
  // INPUT-ONLY
  /* syn */ SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA,
  /* fin */ CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW,
  /* ack */ ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES,
  /* rst */ CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL,
]);

/** tcp_states[] of ip_vs_proto_tcp.c, flattened: TCP_NEXT[(row) * 11 + state]. */
const TCP_NEXT = Uint8Array.from([
  // INPUT
  /* syn */ SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR,
  /* fin */ CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW,
  /* ack */ ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES,
  /* rst */ CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR,
  // OUTPUT
  /* syn */ SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR,
  /* fin */ TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW,
  /* ack */ ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES,
  /* rst */ CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL,
  // INPUT-ONLY
  /* syn */ SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR,
  /* fin */ CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW,
  /* ack */ ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES,
  /* rst */ CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL,
]);

/** tcp_state_idx: RST wins, then SYN, FIN, ACK; -1 for none of them. */
export function tcpFlagRow(tcpFlags: number): number {
  if (tcpFlags & TCP_RST) return 3;
  if (tcpFlags & TCP_SYN) return 0;
  if (tcpFlags & TCP_FIN) return 1;
  if (tcpFlags & TCP_ACK) return 2;
  return -1;
}

/**
 * The pure transition of set_tcp_state. `stateCell` is the entry's STATE cell (state plus
 * StateFlag bits); returns the new STATE cell, NOOUTPUT cleared by an output packet, INACTIVE
 * not yet adjusted (tcpApplyState does that with the counters). A packet with none of
 * SYN/FIN/ACK/RST moves the connection to CLOSE, as the kernel's default does.
 */
export function tcpNextStateCell(stateCell: number, dir: ConnDir, tcpFlags: number, secure = false): number {
  let off = dir === ConnDir.OUTPUT ? DIR_OUTPUT : DIR_INPUT;
  let cell = stateCell;
  if (cell & StateFlag.NOOUTPUT) {
    if (off === DIR_OUTPUT) cell &= ~StateFlag.NOOUTPUT;
    else off = DIR_INPUT_ONLY;
  }
  const row = tcpFlagRow(tcpFlags);
  const cur = cell & StateFlag.STATE_MASK;
  const next = row < 0 ? TcpState.CLOSE : (secure ? TCP_NEXT_DOS : TCP_NEXT)[(off + row) * TCP_STATE_COUNT + (cur < TCP_STATE_COUNT ? cur : 0)]!;
  return (cell & ~StateFlag.STATE_MASK) | next;
}

/**
 * IPVS tcp_state_transition for entry `ref` (from a lookup) on a packet with `tcpFlags` in
 * direction `dir`, then ip_vs_conn_put's re-arm of the expiry. Any worker may call it. Moves
 * the connection between its destination's ACTIVE and INACTIVE counters exactly where the
 * kernel does: it is active while ESTABLISHED, inactive in every other state.
 * Returns the new protocol state, or -1 if the entry was freed meanwhile.
 */
export function tcpStateTransition(table: ConnTable, ref: ConnRef, dir: ConnDir, tcpFlags: number, nowMs: number): number {
  const index = ref.index;
  const cur = table.field(index, EntryCell.STATE);
  // secure_tcp (defense.ts): one header load when off.
  const secure = table.cells[HeaderCell.SECURE_TCP] !== 0 && table.defenseOn(HeaderCell.SECURE_TCP);
  const predicted = tcpNextStateCell(cur, dir, tcpFlags, secure);
  if (predicted === cur) {
    // The common case (data in ESTABLISHED): the state stays. set_tcp_state still reloads
    // cp->timeout from the timeout table on every packet, so an `ipvsadm --set` reaches
    // established connections at their next packet; that rare change takes the lock.
    const state = cur & StateFlag.STATE_MASK;
    const t = table.timeoutMs(state);
    if (table.field(index, EntryCell.TIMEOUT) === t) {
      table.touch(index, nowMs);
      return state;
    }
  }
  if (!table.lockEntry(index, ref.seq)) return -1;
  // Re-read under the lock: another worker may have moved it meanwhile.
  const old = table.field(index, EntryCell.STATE);
  let next = tcpNextStateCell(old, dir, tcpFlags, secure);
  const newState = next & StateFlag.STATE_MASK;
  if (newState !== (old & StateFlag.STATE_MASK) && ref.destSlot >= 0) {
    if ((old & StateFlag.INACTIVE) === 0 && newState !== TcpState.ESTABLISHED) {
      table.moveActivity(ref.destSlot, false);
      next |= StateFlag.INACTIVE;
    } else if ((old & StateFlag.INACTIVE) !== 0 && newState === TcpState.ESTABLISHED) {
      table.moveActivity(ref.destSlot, true);
      next &= ~StateFlag.INACTIVE;
    }
  }
  table.setStateCell(index, next);
  // cp->timeout = timeout_table[new_state], re-armed by ip_vs_conn_put.
  table.setTimeout(index, table.timeoutMs(newState), nowMs);
  table.unlockEntry(index, ref.seq);
  ref.state = next;
  return newState;
}

/** IPVS udp_state_transition: UDP has one state; every packet re-arms the UDP timeout. */
export function udpStateTransition(table: ConnTable, ref: ConnRef, nowMs: number): void {
  // ip_vs_conn_put: a one-packet (ipvsadm -o) entry expires at once.
  const t = (ref.meta & Meta.ONE_PACKET) !== 0 ? 0 : table.timeoutMs(UDP_TIMEOUT_SLOT);
  if (table.field(ref.index, EntryCell.TIMEOUT) !== t) {
    if (!table.lockEntry(ref.index, ref.seq)) return;
    table.setTimeout(ref.index, t, nowMs);
    table.unlockEntry(ref.index, ref.seq);
    return;
  }
  table.touch(ref.index, nowMs);
}

/** `ipvsadm --set tcp tcpfin udp` (ip_vs_set_timeout): seconds; 0 leaves a value unchanged.
 *  tcp is ESTABLISHED's timeout, tcpfin FIN_WAIT's, udp UDP's. New values apply to each
 *  connection at its next state change, as in the kernel. */
export function setTimeouts(table: ConnTable, tcpSec: number, tcpfinSec: number, udpSec: number): void {
  for (const [name, v] of [['tcp', tcpSec], ['tcpfin', tcpfinSec], ['udp', udpSec]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff / 1000) {
      throw new RangeError(`--set: ${name} timeout must be a whole number of seconds in 0..${Math.floor(0x7fffffff / 1000)}, got ${v}`);
    }
  }
  if (tcpSec) table.setTimeoutMs(TcpState.ESTABLISHED, tcpSec * 1000);
  if (tcpfinSec) table.setTimeoutMs(TcpState.FIN_WAIT, tcpfinSec * 1000);
  if (udpSec) table.setTimeoutMs(UDP_TIMEOUT_SLOT, udpSec * 1000);
}

/** `ipvsadm -L --timeout`: "Timeout (tcp tcpfin udp): 900 120 300". */
export function getTimeouts(table: ConnTable): { tcp: number; tcpfin: number; udp: number } {
  return {
    tcp: Math.floor(table.timeoutMs(TcpState.ESTABLISHED) / 1000),
    tcpfin: Math.floor(table.timeoutMs(TcpState.FIN_WAIT) / 1000),
    udp: Math.floor(table.timeoutMs(UDP_TIMEOUT_SLOT) / 1000),
  };
}

/** Whether a connection in this STATE cell counts as active (for tests and listings). */
export function isActiveState(stateCell: number): boolean {
  return (stateCell & StateFlag.INACTIVE) === 0;
}
