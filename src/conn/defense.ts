// Flood defence of the connection table: IPVS's drop_entry, drop_packet and secure_tcp
// (net/netfilter/ipvs/ip_vs_ctl.c update_defense_level, ip_vs_conn.c ip_vs_random_dropentry,
// ip_vs_proto_tcp.c tcp_states_dos), rebuilt for a table of fixed capacity.
//
// Why it differs from IPVS. The kernel's table has no cap: it grows until memory runs short,
// and a once-a-second timer then switches the defences on when free memory falls below
// `amemthresh` pages. uvs's table has a fixed number of slots (--conn-max), so "memory" here is
// the table: it is under pressure when fewer than `amemthresh` slots are free. Every worker checks
// that on each step of its expiry sweep (a load of COUNT), so the defence reacts within one
// sweep instead of one second. A full table refuses new connections (CONN_TABLE_FULL), which is
// exactly what a spoofed SYN or UDP flood aims at; so drop_entry defaults to 1 (auto) here, not 0
// as in the kernel.
//
// The knobs (one settings object, ConnDefense, kept in the table's shared header so a change by
// the control plane reaches every worker at once), with the kernel's values:
//   drop_entry   0 off · 1 auto: on while under pressure · 2 = 1 (the kernel's "auto, now on";
//                here the state is recomputed on every sweep step) · 3 always on.
//                On: each worker's sweep evicts cheap entries it owns (below). Default 1.
//   drop_packet  0 off · 1/2 auto · 3 always. On: one new connection in `rate` is dropped
//                before scheduling (ip_vs_todrop; counted as DROP_PACKET), rate =
//                amemthresh / (amemthresh − free slots) under pressure, am_droprate when 3.
//                Default 0, as in the kernel: it drops legitimate connections as readily as
//                spoofed ones.
//   secure_tcp   0 off · 1/2 auto · 3 always. On: TCP moves by the kernel's tcp_states_dos table
//                (tcp-state.ts): in NAT a client's ACK no longer makes SYN_RECV ESTABLISHED, only
//                the real server's answer does. Default 0.
//   amemthresh   free slots below which the table is under pressure. Default capacity / 8.
//   am_droprate  drop_packet's rate when drop_packet is 3. Default 10 (the kernel's).
//
// What is cheap: drop_entry evicts an entry that is idle (no packet in either direction) for
// longer than its class's grace, and never a protected one. The grace shrinks linearly from
// its upper bound when the pressure starts (amemthresh slots free) to its lower bound when the
// table is full, so the harder the flood presses, the sooner its entries go. Classes, cheapest
// first (grace at full table … at the threshold):
//   SYN     TCP handshake never completed (NONE, SYN_RECV, SYNACK, SYN_SENT, LISTEN)  0.2 … 2 s
//           A real handshake completes in one round trip; the kernel drops these at once.
//   UDP     UDP that saw one packet and no reply                                        0.2 … 2 s
//           UDP with more packets, not protected                                         5 … 60 s
//   NODATA  TCP ESTABLISHED that never carried client data: what a spoofed SYN then ACK
//           leaves in every mode (IPVS tracks flags, not sequence numbers)              0.5 … 5 s
//   FEW     TCP closing (FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK)               1 … 10 s
//           TCP ESTABLISHED with client data, not protected (IPVS: in_pkts ≤ 8, 60 s)    5 … 60 s
// Protected (never evicted by drop_entry; they still expire by their timeouts):
//   NAT (both directions seen): TCP ESTABLISHED with client data and at least two replies (a
//     blind spoofer's ACK and data are answered by the real server with a RST, which moves the
//     entry to CLOSE, so it cannot get here); UDP with a reply and two client datagrams.
//   DR/TUN (the client's direction only, so nothing proves the client sees the replies): TCP
//     ESTABLISHED with two client data packets and four packets in all; UDP with more than
//     8 datagrams (the kernel's in_pkts bound). A blind attacker can reach this by sending
//     several packets per fake connection; the defence then costs it that many times more
//     packets per slot, and nothing better is possible without seeing the replies.
// Stricter than drop_entry: the kernel evicts an ESTABLISHED connection that carried ≤ 8
// client packets once it idles 60 s, whatever it carried; an idle keep-alive connection with
// one answered request is dropped. Here a connection that carried data both ways (NAT) or two
// requests (DR/TUN) is never evicted, and no entry is evicted while packets keep arriving
// within its grace. Templates are never evicted (the kernel drops only those that control
// nothing; here they are few, one per client network).

import { ForwardMethod } from '../tables/dest-table';
import { EntryCell, HeaderCell, Meta, StateFlag, Traffic, type ConnTable } from './table';

/** The defence knobs (IPVS sysctl names in the comments). */
export interface ConnDefense {
  /** net.ipv4.vs.drop_entry, 0..3. */
  dropEntry: number;
  /** net.ipv4.vs.drop_packet, 0..3. */
  dropPacket: number;
  /** net.ipv4.vs.secure_tcp, 0..3. */
  secureTcp: number;
  /** net.ipv4.vs.amemthresh's equivalent: free table slots below which the table is under pressure. */
  amemthresh: number;
  /** net.ipv4.vs.am_droprate: drop_packet's 1/rate when drop_packet is 3. */
  amDroprate: number;
}

/** Why drop_entry evicted an entry (WorkerStat.EVICT_SYN + reason). */
export const enum EvictReason {
  SYN = 0,
  UDP = 1,
  NODATA = 2,
  FEW = 3,
}
export const EVICT_REASON_COUNT = 4;
export const EVICT_REASON_NAMES: readonly string[] = ['evict_syn', 'evict_udp', 'evict_nodata', 'evict_few'];

/** Where a worker counts its evictions (WorkerCounters implements it). */
export interface EvictionSink {
  evicted(reason: number): void;
}

/** The default amemthresh for a table of `capacity` slots: an eighth of it, at least 1. */
export function defaultAmemthresh(capacity: number): number {
  return Math.max(1, Math.floor(capacity / 8));
}

/** The defaults a new table starts with (amemthresh depends on its capacity). */
export function defaultDefense(capacity: number): ConnDefense {
  return { dropEntry: 1, dropPacket: 0, secureTcp: 0, amemthresh: defaultAmemthresh(capacity), amDroprate: 10 };
}

const CELLS: [keyof ConnDefense, HeaderCell][] = [
  ['dropEntry', HeaderCell.DROP_ENTRY],
  ['dropPacket', HeaderCell.DROP_PACKET],
  ['secureTcp', HeaderCell.SECURE_TCP],
  ['amemthresh', HeaderCell.AMEMTHRESH],
  ['amDroprate', HeaderCell.AM_DROPRATE],
];

/** Sets some of the knobs; checks them all first, so a bad value changes nothing. */
export function setDefense(table: ConnTable, knobs: Partial<ConnDefense>): void {
  for (const [name] of CELLS) {
    const v = knobs[name];
    if (v === undefined) continue;
    if (name === 'amemthresh') {
      if (!Number.isInteger(v) || v < 0 || v > table.capacity) {
        throw new RangeError(`conn defence amemthresh: expected free slots 0..${table.capacity} (the table's capacity), got ${v}`);
      }
    } else if (name === 'amDroprate') {
      if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) throw new RangeError(`conn defence am_droprate: expected an integer >= 1, got ${v}`);
    } else if (!Number.isInteger(v) || v < 0 || v > 3) {
      throw new RangeError(`conn defence ${name}: expected 0 (off), 1 or 2 (auto) or 3 (always), got ${v}`);
    }
  }
  for (const [name, cell] of CELLS) {
    const v = knobs[name];
    if (v !== undefined) table.setKnob(cell, v);
  }
}

export function getDefense(table: ConnTable): ConnDefense {
  return {
    dropEntry: table.knob(HeaderCell.DROP_ENTRY),
    dropPacket: table.knob(HeaderCell.DROP_PACKET),
    secureTcp: table.knob(HeaderCell.SECURE_TCP),
    amemthresh: table.knob(HeaderCell.AMEMTHRESH),
    amDroprate: table.knob(HeaderCell.AM_DROPRATE),
  };
}

// Grace bounds in ms: MIN at a full table, MAX at the threshold.
const SYN_GRACE_MIN = 200;
const SYN_GRACE_MAX = 2_000;
const UDP1_GRACE_MIN = 200;
const UDP1_GRACE_MAX = 2_000;
const UDP_GRACE_MIN = 5_000;
const UDP_GRACE_MAX = 60_000;
const NODATA_GRACE_MIN = 500;
const NODATA_GRACE_MAX = 5_000;
const CLOSING_GRACE_MIN = 1_000;
const CLOSING_GRACE_MAX = 10_000;
const FEW_GRACE_MIN = 5_000;
const FEW_GRACE_MAX = 60_000;

// TCP states (tcp-state.ts TcpState; numbers to keep this file free of an import cycle).
const S_NONE = 0;
const S_ESTABLISHED = 1;
const S_SYN_SENT = 2;
const S_SYN_RECV = 3;
const S_LISTEN = 9;
const S_SYNACK = 10;
const TCP = 6;
const UDP = 17;

/**
 * drop_entry's judgement of one live entry at cells[e..] (the sweep of its owner): the
 * EvictReason to evict it for, or -1 to keep it. `u` is the pressure, 0 (table full) .. 1000
 * (at the threshold, or drop_entry forced on without pressure).
 */
export function evictReason(c: Int32Array, e: number, now: number, u: number): number {
  const meta = c[e + EntryCell.META]!;
  if ((meta & Meta.TEMPLATE) !== 0) return -1;
  const state = c[e + EntryCell.STATE]!;
  if ((state & StateFlag.DEAD) !== 0) return -1;
  // ms since the last packet: the expiry is re-armed to now + timeout by every packet.
  const idle = (now - ((c[e + EntryCell.EXPIRES]! - c[e + EntryCell.TIMEOUT]!) | 0)) | 0;
  const traffic = c[e + EntryCell.TRAFFIC]!;
  const data = traffic & Traffic.DATA_MASK;
  const replies = (traffic & Traffic.REPLY_MASK) >>> Traffic.REPLY_SHIFT;
  const inPkts = c[e + EntryCell.IN_PKTS]!;
  const nat = ((meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT) === ForwardMethod.MASQ;
  const proto = meta & Meta.PROTO_MASK;
  let reason: number;
  let lo: number;
  let hi: number;
  if (proto === TCP) {
    const s = state & StateFlag.STATE_MASK;
    if (s === S_ESTABLISHED) {
      if (nat ? data >= 1 && replies >= 2 : data >= 2 && inPkts >= 4) return -1;
      reason = data === 0 ? EvictReason.NODATA : EvictReason.FEW;
      lo = data === 0 ? NODATA_GRACE_MIN : FEW_GRACE_MIN;
      hi = data === 0 ? NODATA_GRACE_MAX : FEW_GRACE_MAX;
    } else if (s === S_SYN_RECV || s === S_SYNACK || s === S_NONE || s === S_SYN_SENT || s === S_LISTEN) {
      reason = EvictReason.SYN;
      lo = SYN_GRACE_MIN;
      hi = SYN_GRACE_MAX;
    } else {
      reason = EvictReason.FEW;
      lo = CLOSING_GRACE_MIN;
      hi = CLOSING_GRACE_MAX;
    }
  } else if (proto === UDP) {
    if (nat ? replies >= 1 && inPkts >= 2 : inPkts > 8) return -1;
    reason = EvictReason.UDP;
    const one = inPkts <= 1 && replies === 0;
    lo = one ? UDP1_GRACE_MIN : UDP_GRACE_MIN;
    hi = one ? UDP1_GRACE_MAX : UDP_GRACE_MAX;
  } else {
    return -1;
  }
  const grace = (lo + ((hi - lo) * u) / 1000) | 0;
  return idle >= grace ? reason : -1;
}
