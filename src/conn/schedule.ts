// The connection part of IPVS's packet path (ip_vs_core.c): for a packet from a client to a
// virtual service, find its entry or schedule a new one (ip_vs_in, ip_vs_schedule,
// ip_vs_sched_persist, tcp_conn_schedule), applying sloppy_tcp, conn_reuse_mode,
// expire_nodest_conn and expire_quiescent_template; for a reply from a NAT real server, find
// the entry (ip_vs_out). Both then run the protocol's state transition and re-arm the expiry.
//
// Nothing here allocates per packet: the caller passes a reusable PacketKey and ConnRef.

import type { PacketKey, Scheduler } from '../sched/scheduler';
import { DestField, DestFlag, ForwardMethod, type DestTable } from '../tables/dest-table';
import { checkTemplate, TemplateKey, templateKey } from './persistence';
import { ConnRef, EntryCell, HeaderCell, Meta, NO_DEST, StateFlag, Traffic, entryDestSlot, type ConnTable } from './table';
import { ConnDir, TcpState, tcpStateTransition, udpStateTransition } from './tcp-state';
import { TCP_RST, TCP_SYN } from '../packet/tcp';
import { IPPROTO_TCP, IPPROTO_UDP } from '../packet/ipv4';

/** What the connection table needs to know of a virtual service. */
export interface ConnService {
  /** IPPROTO_TCP or IPPROTO_UDP. */
  protocol: number;
  /** Virtual address, host order. */
  addr: number;
  /** Virtual port; 0 = a port-zero service (all ports), which IPVS allows only persistent. */
  port: number;
  /** ipvsadm -p given. */
  persistent: boolean;
  /** ipvsadm -p timeout, in ms. */
  persistTimeoutMs: number;
  /** ipvsadm -M netmask, host order (0xffffffff by default). */
  netmask: number;
  /** ipvsadm -o (one-packet scheduling, UDP only). */
  onePacket: boolean;
  scheduler: Scheduler;
}

export const enum ConnVerdict {
  /** Forward the packet with `out` (an existing entry, or the one just created). */
  FORWARD = 0,
  /** No entry, and this packet may not create one (TCP without SYN while sloppy_tcp is 0, a
   *  RST, another protocol): IPVS lets it continue (NF_ACCEPT); for uvs it is not ours. */
  PASS = 1,
  /** The scheduler found no real server (ip_vs_leave: drop, ICMP later). */
  NO_DEST = 2,
  /** The connection table is full: refused and counted. */
  TABLE_FULL = 3,
  /** The entry's real server is not available any more: drop (and with expire_nodest_conn,
   *  the entry is expired at once). */
  DEST_UNAVAILABLE = 4,
  /** A packet to a non-persistent service on a port that is not its port. */
  WRONG_PORT = 5,
  /** drop_packet (defense.ts) dropped this new connection: the table is under pressure. */
  DEFENSE_DROP = 6,
}

/** The sysctls that shape this path, with IPVS's defaults. Stored in the table's header, so a
 *  change made by the control plane reaches every worker. */
export interface ConnKnobs {
  sloppyTcp: number;
  expireNodestConn: number;
  expireQuiescentTemplate: number;
  connReuseMode: number;
}
export const DEFAULT_KNOBS: Readonly<ConnKnobs> = { sloppyTcp: 0, expireNodestConn: 0, expireQuiescentTemplate: 0, connReuseMode: 1 };

export function setKnobs(table: ConnTable, knobs: Partial<ConnKnobs>): void {
  const cells: [keyof ConnKnobs, HeaderCell][] = [
    ['sloppyTcp', HeaderCell.SLOPPY_TCP],
    ['expireNodestConn', HeaderCell.EXPIRE_NODEST_CONN],
    ['expireQuiescentTemplate', HeaderCell.EXPIRE_QUIESCENT_TEMPLATE],
    ['connReuseMode', HeaderCell.CONN_REUSE_MODE],
  ];
  for (const [name, cell] of cells) {
    const v = knobs[name];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 0 || v > 3) throw new RangeError(`conn knob ${name}: expected an integer 0..3, got ${v}`);
    table.setKnob(cell, v);
  }
}

export function getKnobs(table: ConnTable): ConnKnobs {
  return {
    sloppyTcp: table.knob(HeaderCell.SLOPPY_TCP),
    expireNodestConn: table.knob(HeaderCell.EXPIRE_NODEST_CONN),
    expireQuiescentTemplate: table.knob(HeaderCell.EXPIRE_QUIESCENT_TEMPLATE),
    connReuseMode: table.knob(HeaderCell.CONN_REUSE_MODE),
  };
}

/** IPVS's timeout of a connection before its first state transition (ip_vs_conn_new). */
const INITIAL_TIMEOUT_MS = 3_000;

/**
 * IPVS is_new_conn_expected (Linux ≥ 5.16, where the caller checks cp->control): may a new SYN
 * that hits this entry start a new connection? TCP entries in TIME_WAIT or CLOSE, and with
 * conn_reuse_mode bit 2, input-only entries (DR/TUN) in FIN_WAIT.
 */
export function isNewConnExpected(protocol: number, stateCell: number, connReuseMode: number): boolean {
  if (protocol !== IPPROTO_TCP) return false;
  const state = stateCell & StateFlag.STATE_MASK;
  return (
    state === TcpState.TIME_WAIT ||
    state === TcpState.CLOSE ||
    ((connReuseMode & 2) !== 0 && state === TcpState.FIN_WAIT && (stateCell & StateFlag.NOOUTPUT) !== 0)
  );
}

/** One per worker: holds the scratch objects so the per-packet calls allocate nothing. */
export class ConnScheduler {
  readonly table: ConnTable;
  readonly dests: DestTable;
  private readonly tplKey = new TemplateKey();
  private readonly tplRef = new ConnRef();
  /** Whether the last inPacket() created the entry (a new connection for the counters). */
  created = false;

  constructor(table: ConnTable) {
    this.table = table;
    this.dests = table.dests;
  }

  /**
   * ip_vs_in for a packet from a client (key.saddr:sport → key.daddr:dport) to service `svc`.
   * `tcpFlags` is byte 13 of the TCP header (ignored for UDP). On FORWARD, `out` describes the
   * entry (destination, forwarding method) and the input state transition has been applied.
   */
  inPacket(svc: ConnService, key: PacketKey, tcpFlags: number, nowMs: number, out: ConnRef): ConnVerdict {
    const hit = this.table.lookupIn(key.protocol, key.saddr, key.sport, key.daddr, key.dport, out);
    return this.inPacketFound(svc, key, tcpFlags, nowMs, out, hit);
  }

  /**
   * inPacket after the caller looked `key` up itself: `hit` and `out` are what lookupIn gave,
   * or ConnTable.batchResult for a lookup made with the pipeline's batch (the data plane's
   * path: the whole batch's lookups overlap their cache misses, see src/conn/README.md).
   */
  inPacketFound(svc: ConnService, key: PacketKey, tcpFlags: number, nowMs: number, out: ConnRef, hit: boolean): ConnVerdict {
    const table = this.table;
    const proto = key.protocol;
    this.created = false;

    // Port reuse: a new connection (SYN) that hits an old entry nobody controls.
    if (hit && proto === IPPROTO_TCP && (tcpFlags & TCP_SYN) !== 0 && out.control === 0) {
      let resched: boolean;
      if (
        table.knob(HeaderCell.EXPIRE_NODEST_CONN) !== 0 &&
        out.destSlot >= 0 &&
        this.dests.get(out.destSlot, DestField.WEIGHT) === 0
      ) {
        resched = true;
      } else {
        const mode = table.knob(HeaderCell.CONN_REUSE_MODE);
        // Entries here are never templates, so they control nothing (n_control is 0).
        resched = mode !== 0 && isNewConnExpected(proto, out.state, mode);
      }
      if (resched) {
        table.expireNow(out.index, out.seq, nowMs);
        hit = false;
      }
    }

    if (!hit) {
      if (proto === IPPROTO_TCP) {
        // tcp_conn_schedule: only a SYN (or anything, with sloppy_tcp) and never a RST.
        if ((tcpFlags & TCP_RST) !== 0) return ConnVerdict.PASS;
        if ((tcpFlags & TCP_SYN) === 0 && table.knob(HeaderCell.SLOPPY_TCP) === 0) return ConnVerdict.PASS;
      } else if (proto !== IPPROTO_UDP) {
        return ConnVerdict.PASS;
      }
      // ip_vs_todrop, checked by tcp/udp_conn_schedule before scheduling.
      if (table.dropPacketNow()) return ConnVerdict.DEFENSE_DROP;
      const verdict = this.schedule(svc, key, nowMs, out);
      if (verdict !== ConnVerdict.FORWARD) return verdict;
    }

    // The real server was removed while the connection lived.
    if (out.destSlot >= 0) {
      const flags = Atomics.load(this.dests.cells, this.dests.base(out.destSlot) + DestField.FLAGS);
      if ((flags & DestFlag.AVAILABLE) === 0) {
        if (table.knob(HeaderCell.EXPIRE_NODEST_CONN) !== 0) table.expireNow(out.index, out.seq, nowMs);
        return ConnVerdict.DEST_UNAVAILABLE;
      }
    }

    table.countInPacket(out.index);
    if (proto === IPPROTO_TCP) tcpStateTransition(table, out, ConnDir.INPUT, tcpFlags, nowMs);
    else udpStateTransition(table, out, nowMs);
    return ConnVerdict.FORWARD;
  }

  /**
   * ip_vs_out for a reply from a real server (key.saddr:sport = daddr:dport of the entry,
   * key.daddr:dport = the client). Finds only NAT entries. On a hit, applies the output state
   * transition and returns true; the caller rewrites the source to the entry's vaddr:vport
   * (table.field(out.index, EntryCell.VADDR), and the low 16 bits of EntryCell.PORTS).
   */
  outPacket(key: PacketKey, tcpFlags: number, nowMs: number, out: ConnRef): boolean {
    return this.outPacketFound(key, tcpFlags, nowMs, out, this.table.lookupOut(key.protocol, key.saddr, key.sport, key.daddr, key.dport, out));
  }

  /** outPacket after the caller's own lookupOut of `key` (or ConnTable.batchResult): `hit`, `out`. */
  outPacketFound(key: PacketKey, tcpFlags: number, nowMs: number, out: ConnRef, hit: boolean): boolean {
    const table = this.table;
    if (!hit) return false;
    if (key.protocol === IPPROTO_TCP) tcpStateTransition(table, out, ConnDir.OUTPUT, tcpFlags, nowMs);
    else udpStateTransition(table, out, nowMs);
    return true;
  }

  /**
   * A connection the in-kernel fast path scheduled itself (src/dataplane/fast-path.ts, "New
   * connections scheduled in the kernel"): its SYN (`key`) went to real server `slot`. Creates
   * the entry as schedule() and inPacketFound() would have for that SYN. An older entry of the
   * tuple (a client reusing its port: TIME_WAIT, or a DR/TUN FIN_WAIT that IPVS would have
   * taken the SYN on) is expired first: the SYN went to the kernel's choice, and the rest of the
   * connection must follow it. Its keys are not the old entry's any more, so its expiry leaves
   * them alone.
   */
  adopt(svc: ConnService, key: PacketKey, slot: number, nowMs: number, out: ConnRef): ConnVerdict {
    const table = this.table;
    this.created = false;
    if (table.lookupIn(key.protocol, key.saddr, key.sport, key.daddr, key.dport, out)) {
      table.clearTraffic(out.index, Traffic.OFFLOADED);
      table.expireNow(out.index, out.seq, nowMs);
    }
    if ((Atomics.load(this.dests.cells, this.dests.base(slot) + DestField.FLAGS) & DestFlag.AVAILABLE) === 0) return ConnVerdict.DEST_UNAVAILABLE;
    const destPort = this.dests.get(slot, DestField.PORT);
    const verdict = this.createConn(svc, key, slot, destPort !== 0 ? destPort : key.dport, -1, nowMs, out);
    if (verdict !== ConnVerdict.FORWARD) return verdict;
    table.countInPacket(out.index);
    tcpStateTransition(table, out, ConnDir.INPUT, TCP_SYN, nowMs);
    return ConnVerdict.FORWARD;
  }

  /** ip_vs_schedule: a new entry for the first packet of a connection. */
  schedule(svc: ConnService, key: PacketKey, nowMs: number, out: ConnRef): ConnVerdict {
    if (svc.persistent) return this.schedulePersist(svc, key, nowMs, out);
    if (key.dport !== svc.port) return ConnVerdict.WRONG_PORT;
    const slot = svc.scheduler.schedule(key, nowMs);
    if (slot < 0) return ConnVerdict.NO_DEST;
    const d = this.dests;
    const destPort = d.get(slot, DestField.PORT);
    return this.createConn(svc, key, slot, destPort !== 0 ? destPort : key.dport, -1, nowMs, out);
  }

  /** ip_vs_sched_persist: reuse the client network's template, or schedule and create one. */
  private schedulePersist(svc: ConnService, key: PacketKey, nowMs: number, out: ConnRef): ConnVerdict {
    const table = this.table;
    const d = this.dests;
    const tk = templateKey(key.protocol, key.saddr, key.daddr, key.dport, svc.port, svc.netmask, this.tplKey);
    const tpl = this.tplRef;
    let slot: number;
    let tplIndex: number;
    if (
      table.lookupTemplate(tk.protocol, tk.caddr, 0, tk.vaddr, tk.vport, tpl) &&
      checkTemplate(table, d, tpl) &&
      table.holdTemplate(tpl.index, tpl.seq)
    ) {
      slot = tpl.destSlot;
      tplIndex = tpl.index;
      // ip_vs_conn_put(ct): each use re-arms the template.
      table.touch(tplIndex, nowMs);
    } else {
      slot = svc.scheduler.schedule(key, nowMs);
      if (slot < 0) return ConnVerdict.NO_DEST;
      const tplDport = tk.keepsPort ? d.get(slot, DestField.PORT) : 0;
      const forward = d.get(slot, DestField.FWD) as ForwardMethod;
      tplIndex = table.insert(
        tk.protocol,
        tk.caddr,
        0,
        tk.vaddr,
        tk.vport,
        d.addr(slot),
        tplDport,
        slot,
        forward,
        Meta.TEMPLATE,
        StateFlag.INACTIVE,
        svc.persistTimeoutMs,
        nowMs,
        -1,
      );
      if (tplIndex < 0) return ConnVerdict.TABLE_FULL;
      // Another worker may have created the client network's template meanwhile: use its
      // real server, so the network stays on one server.
      const tplSlot = entryDestSlot(table.field(tplIndex, EntryCell.META), table.field(tplIndex, EntryCell.DPORT_DEST));
      if (tplSlot !== NO_DEST) slot = tplSlot;
      // Ours (this thread owns it, no sweep can run meanwhile) or another's: hold it either way.
      if (!table.holdTemplate(tplIndex, table.seqOf(tplIndex))) return ConnVerdict.NO_DEST;
    }
    const destPort = d.get(slot, DestField.PORT);
    const dport = key.dport === svc.port && destPort !== 0 ? destPort : key.dport;
    const verdict = this.createConn(svc, key, slot, dport, tplIndex, nowMs, out);
    if (verdict !== ConnVerdict.FORWARD) table.releaseTemplate(tplIndex);
    return verdict;
  }

  private createConn(svc: ConnService, key: PacketKey, slot: number, dport: number, tplIndex: number, nowMs: number, out: ConnRef): ConnVerdict {
    const table = this.table;
    const d = this.dests;
    const forward = d.get(slot, DestField.FWD) as ForwardMethod;
    // ip_vs_bind_dest: every new entry starts INACTIVE; without NAT no reply will be seen.
    const state = StateFlag.INACTIVE | (forward !== ForwardMethod.MASQ ? StateFlag.NOOUTPUT : 0);
    const meta = svc.onePacket && key.protocol === IPPROTO_UDP ? Meta.ONE_PACKET : 0;
    const index = table.insert(
      key.protocol,
      key.saddr,
      key.sport,
      key.daddr,
      key.dport,
      d.addr(slot),
      dport,
      slot,
      forward,
      meta,
      state,
      INITIAL_TIMEOUT_MS,
      nowMs,
      tplIndex,
    );
    if (index < 0) return ConnVerdict.TABLE_FULL;
    this.created = true;
    out.index = index;
    out.seq = table.seqOf(index);
    out.meta = table.field(index, EntryCell.META);
    out.daddr = d.addr(slot);
    out.dport = dport;
    out.destSlot = slot;
    out.state = state;
    out.control = tplIndex + 1;
    return ConnVerdict.FORWARD;
  }
}
