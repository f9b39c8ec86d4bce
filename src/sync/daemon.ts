// IPVS connection synchronisation (net/netfilter/ipvs/ip_vs_sync.c) over uvs's shared
// connection table: the master tells the backups about its connections with version-1 messages
// (codec.ts) to a multicast group, the backups create the same entries, so that after a VRRP
// failover the new master forwards the old master's connections instead of dropping them (uvs
// schedules only on a SYN).
//
// How the master learns of changes without touching the packet path: the kernel calls
// ip_vs_sync_conn from ip_vs_in for every packet; uvs's workers only do what they did before
// (count in_pkts, move the state under the entry lock), and the main thread scans the shared
// table every SCAN_INTERVAL_MS with ConnTable.exportBatch, a bounded number of slots per tick,
// comparing each entry with what it last sent (typed arrays indexed by entry number: the slot
// generation, the state and the in_pkts count). The kernel's rules, applied to what changed since
// the previous look (ip_vs_sync_conn_needed), with the sync knobs in force (src/sync/knobs.ts,
// read at every scan, so `uvsadm --sysctl` changes apply from the next one):
//   - TCP is synced only in ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT and TIME_WAIT; a change to
//     a state other than ESTABLISHED is sent at once;
//   - ESTABLISHED (and UDP) are sent when in_pkts passes sync_threshold and then every
//     sync_period packets (pkts % sync_period == sync_threshold): a scan sends an entry when such
//     a count lies between what it saw last and what it sees now; with sync_period 0, once;
//   - sync_refresh_period > 0: besides that, an entry is sent again only when its expiry moved by
//     that much (or half its timeout, if less) since its last send, or as one of sync_retries
//     resends sync_refresh_period/8 apart; with sync_period 0 any new packet may then trigger it
//     (the kernel's sync_endtime, kept per entry in two more arrays allocated on first use);
//   - a template is sent whenever a connection it controls is sent (ip_vs_sync_conn's `control`
//     loop), so a persistent client keeps its real server on the backup (the kernel considers
//     it at every packet of such a connection; uvs at most once per scan), subject to
//     sync_refresh_period too; with sync_persist_mode, only the template is sent;
//   - an entry the scan meets for the first time with in_pkts already past the threshold (the
//     master just started) is sent at once, where the kernel waits for its next period.
// Removals are not sent (neither does the kernel): the backup's entry expires with the timeout
// the master sent, counted from the last message about it.
//
// The backup decodes each datagram, maps the entry to a real server of this director (VIP, port
// and protocol → service, RIP and port → destination: the `resolveDest` callback) and imports it
// with ConnTable.importEntry, owned by the main thread, whose expiry sweep frees it
// (`expireImported`). A NAT entry arrives without the client's next hop: its replies use the
// client-route fallback (src/tables/client-hops.ts). A bad message is dropped whole and counted
// by reason; a single unusable entry is skipped and counted.

import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import { ConnRef, ConnTable, Meta, StateFlag, SyncCell, SYNC_RECORD_CELLS } from '../conn/table';
import type { Logger } from '../runtime/log';
import {
  ConnFlag,
  decodeSyncMessage,
  SYNC_GROUP,
  SYNC_IPV4_UDP_OVERHEAD,
  SYNC_MESG_HEADER_BYTES,
  SYNC_PORT,
  SYNC_TTL,
  SYNC_V4_BYTES,
  SyncDecodeError,
  SyncMessageWriter,
  type SyncConn,
} from './codec';
import { applySyncKnob, defaultSyncTunables, type SyncTunables } from './knobs';

export type SyncState = 'master' | 'backup';

/** What `ipvsadm --start-daemon` passes (struct ipvs_sync_daemon_cfg); 0/'' = the kernel's default. */
export interface SyncDaemonOptions {
  mcastInterface: string;
  syncId: number;
  syncMaxlen: number;
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
}

/** A running daemon's configuration with the kernel's defaults filled in (what -L --daemon shows). */
export interface SyncDaemonInfo extends SyncDaemonOptions {
  state: SyncState;
}

/** Why start/stop was refused, as the kernel answers (start_sync_thread / stop_sync_thread). */
export class SyncError extends Error {
  constructor(readonly errno: 'EEXIST' | 'ESRCH' | 'ENODEV' | 'EINVAL', message: string) {
    super(message);
    this.name = 'SyncError';
  }
}

/** The main thread scans this often (the kernel flushes a partly filled buffer after 2 s). */
export const SCAN_INTERVAL_MS = 200;
/** Entry slots looked at per scan tick: bounds the main thread's work (~65 k slots in a few ms). */
export const SCAN_SLOTS_PER_TICK = 65_536;
/** Messages one tick may send; what does not fit waits for the next tick, up to sync_qlen_max
 *  messages' worth of entries. */
export const MAX_MESSAGES_PER_SCAN = 256;
/** The main thread sweeps the entries it imported this often. */
const EXPIRE_INTERVAL_MS = 500;
const EXPIRE_BUDGET = 65_536;

/** TCP states in which a connection is synced (ip_vs_sync_conn_needed). */
const TCP_SYNC_STATES = (1 << 1) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 5); // ESTABLISHED FIN_WAIT CLOSE CLOSE_WAIT TIME_WAIT
const TCP_ESTABLISHED = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
/** ConnTable timeout slot of UDP (conn/table.ts UDP_TIMEOUT_SLOT). */
const UDP_TIMEOUT_SLOT = 11;
/** A template with no timeout in its message lives 3 minutes (ip_vs_proc_conn). */
const TEMPLATE_DEFAULT_TIMEOUT_MS = 180_000;

/** The interface facts a daemon needs: its IPv4 address (bind, multicast membership) and MTU. */
export interface SyncInterface {
  name: string;
  address: string;
  mtu: number;
}

/** Looks the interface up in this network namespace; throws SyncError ENODEV as the kernel does. */
export function lookupInterface(name: string): SyncInterface {
  const addrs = networkInterfaces()[name];
  if (!addrs) throw new SyncError('ENODEV', `Unknown mcast interface: ${name}`);
  const v4 = addrs.find((a) => a.family === 'IPv4');
  if (!v4) throw new SyncError('ENODEV', `mcast interface ${name} has no IPv4 address (the sync socket binds to it)`);
  let mtu = 1500;
  try {
    mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim()) || 1500;
  } catch {
    // no sysfs (tests): Ethernet's
  }
  return { name, address: v4.address, mtu };
}

/**
 * The kernel's defaults (start_sync_thread): group 224.0.0.81, port 8848, TTL 1; maxlen from
 * the MTU less the IP and UDP headers, where a master always takes 1500 (its messages must reach
 * any backup) and a backup its interface's MTU clamped to 1500..65535; a given maxlen is clamped
 * to 1 (master) or 1024 (backup) .. 65535 − 28.
 */
export function resolveOptions(state: SyncState, o: SyncDaemonOptions, iface: SyncInterface): SyncDaemonInfo {
  const mtu = state === 'backup' ? Math.min(Math.max(iface.mtu, 1500), 65535) : 1500;
  const minMtu = state === 'backup' ? 1024 : 1;
  let maxlen = o.syncMaxlen ? Math.min(Math.max(o.syncMaxlen, minMtu), 65535 - SYNC_IPV4_UDP_OVERHEAD) : mtu - SYNC_IPV4_UDP_OVERHEAD;
  // A message must hold its header and one entry: below that the kernel's master would allocate
  // a bigger buffer per entry anyway (ip_vs_sync_buff_create takes the max).
  if (state === 'master') maxlen = Math.max(maxlen, SYNC_MESG_HEADER_BYTES + SYNC_V4_BYTES);
  const group = o.mcastGroup || SYNC_GROUP;
  if (o.mcastGroup) {
    const first = Number(group.split('.')[0]);
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(group) || first < 224 || first > 239) {
      throw new SyncError('EINVAL', `mcast group ${group} is not an IPv4 multicast address (uvs syncs over IPv4 only)`);
    }
  }
  return {
    state,
    mcastInterface: iface.name,
    syncId: o.syncId,
    syncMaxlen: maxlen,
    mcastGroup: group,
    mcastPort: o.mcastPort || SYNC_PORT,
    mcastTtl: o.mcastTtl || SYNC_TTL,
  };
}

/** Counters of one daemon (shown by the log and the tests). */
export interface SyncCounters {
  messages: number;
  conns: number;
  /** Backup: messages dropped whole, by reason ("size", "version", ...). */
  dropped: Map<string, number>;
  /** Backup: entries skipped alone (unusable, no such service). Master: entries dropped because
   *  more were waiting than sync_qlen_max messages hold. */
  skipped: number;
  /** Backup: entries the table had no room for. */
  full: number;
  /** Master: sends that failed. */
  sendErrors: number;
}

function newCounters(): SyncCounters {
  return { messages: 0, conns: 0, dropped: new Map(), skipped: 0, full: 0, sendErrors: 0 };
}

/** The master's scan: which entries to send, as SyncConns. Pure over a ConnTable (tests drive it). */
export class SyncScanner {
  // 9 bytes per entry slot of the table, allocated when a master starts (44 MB at uvsd's default
  // --conn-max with 24 GiB of memory).
  private readonly seenGen: Int32Array;
  private readonly seenState: Uint8Array;
  private readonly seenPkts: Int32Array;
  // sync_refresh_period's bookkeeping (the kernel's cp->sync_endtime: the expiry time the last
  // send announced, and the resends since), 9 more bytes per slot, allocated when the knob is
  // first set above 0.
  private sentEnd: Float64Array | null = null;
  private sentTries: Uint8Array | null = null;
  private readonly rec = new Int32Array(SYNC_RECORD_CELLS * 1024);
  private readonly one = new Int32Array(SYNC_RECORD_CELLS);
  private cursor = 0;
  /** Templates already sent in this tick (entry numbers). */
  private readonly sentTemplates = new Set<number>();

  /** `knobs`: the sync knobs in force, read at every scan (the SyncManager's, shared). */
  constructor(
    private readonly conns: ConnTable,
    private readonly knobs: SyncTunables = defaultSyncTunables(),
  ) {
    this.seenGen = new Int32Array(conns.capacity);
    this.seenState = new Uint8Array(conns.capacity);
    this.seenPkts = new Int32Array(conns.capacity);
  }

  /** Looks at up to `slots` entry slots from where the last call stopped; returns what to send. */
  scan(nowMs: number, slots = SCAN_SLOTS_PER_TICK): SyncConn[] {
    const out: SyncConn[] = [];
    this.sentTemplates.clear();
    if (this.knobs.refreshMs > 0 && !this.sentEnd) {
      this.sentEnd = new Float64Array(this.conns.capacity);
      this.sentTries = new Uint8Array(this.conns.capacity);
    }
    let looked = 0;
    while (looked < slots) {
      const start = this.cursor;
      const { next, records } = this.conns.exportBatch(start, this.rec, nowMs);
      for (let r = 0; r < records; r++) this.consider(this.rec, r * SYNC_RECORD_CELLS, nowMs, out);
      const end = next < 0 ? this.conns.capacity : next;
      looked += Math.max(1, end - start);
      if (next < 0) {
        this.cursor = 0;
        break;
      }
      this.cursor = next;
    }
    return out;
  }

  private consider(rec: Int32Array, o: number, nowMs: number, out: SyncConn[]): void {
    const index = rec[o + SyncCell.INDEX]!;
    const gen = rec[o + SyncCell.GENERATION]! | 1; // never 0, so 0 means "never seen"
    const meta = rec[o + SyncCell.META]!;
    const stateCell = rec[o + SyncCell.STATE]!;
    const pkts = rec[o + SyncCell.IN_PKTS]!;
    const fresh = this.seenGen[index] !== gen;
    const lastState = fresh ? -1 : this.seenState[index]!;
    const lastPkts = fresh ? 0 : this.seenPkts[index]!;
    this.seenGen[index] = gen;
    this.seenPkts[index] = pkts;
    if (fresh && this.sentEnd) {
      // A new entry in this slot: never sent (the kernel starts sync_endtime at creation, far
      // enough from now + timeout to let the first send through).
      this.sentEnd[index] = 0;
      this.sentTries![index] = 0;
    }
    if (meta & Meta.TEMPLATE) return; // sent with the connections it controls
    const proto = meta & Meta.PROTO_MASK;
    const state = stateCell & StateFlag.STATE_MASK;
    let forced = false;
    if (proto === IPPROTO_TCP) {
      if ((TCP_SYNC_STATES & (1 << state)) === 0) {
        this.seenState[index] = state;
        return;
      }
      if (state !== lastState && state !== TCP_ESTABLISHED) forced = true;
    } else if (proto !== IPPROTO_UDP) {
      return;
    }
    const timeoutMs = rec[o + SyncCell.TIMEOUT_MS]! >>> 0;
    if (!this.due(index, nowMs, timeoutMs, forced, false, lastPkts, pkts)) return; // like the kernel, old_state moves only when it sends
    this.seenState[index] = state;
    const control = rec[o + SyncCell.CONTROL]!;
    // sync_persist_mode: a connection under a persistence template is not sent (the kernel's
    // in_persistence); its template still is, when the connection would have been.
    if (control <= 0 || this.knobs.persistMode === 0) out.push(toSyncConn(rec, o));
    if (control > 0 && !this.sentTemplates.has(control - 1)) {
      this.sentTemplates.add(control - 1);
      const t = this.template(control - 1, nowMs);
      if (t) out.push(t);
    }
  }

  /**
   * ip_vs_sync_conn_needed past the state rules: whether entry `index` is sent now, and if so its
   * send recorded for sync_refresh_period. `forced`: a state change sent at once; `template`: a
   * template, which has no packet rule (the kernel skips it for templates).
   */
  private due(index: number, nowMs: number, timeoutMs: number, forced: boolean, template: boolean, lastPkts: number, pkts: number): boolean {
    const k = this.knobs;
    const end = nowMs + timeoutMs; // the expiry this send announces (the kernel's n)
    let tries = 0;
    if (!forced) {
      if (k.refreshMs > 0 && this.sentEnd) {
        const orig = this.sentEnd[index]!;
        // Too soon after the last send: only a resend, sync_refresh_period/8 after it, while
        // sync_retries allows.
        if (Math.abs(end - orig) < Math.min(k.refreshMs, Math.max(timeoutMs / 2, 10_000))) {
          const done = this.sentTries![index]!;
          if (done >= k.retries) return false;
          if (nowMs < orig - timeoutMs + k.refreshMs / 8) return false;
          tries = done + 1;
        }
      }
      if (!template) {
        if (k.period > 0 || k.refreshMs <= 0) {
          if (!this.crossed(lastPkts, pkts)) return false;
        } else if (pkts === lastPkts) {
          return false; // period 0 with a refresh period: the kernel looks at each packet, none came
        }
      }
    }
    if (this.sentEnd) {
      this.sentEnd[index] = end;
      this.sentTries![index] = tries;
    }
    return true;
  }

  /** Whether some count threshold + k × period lies in (last, now]; with period 0, whether the
   *  count reached the threshold since the last look (sent once). */
  private crossed(last: number, now: number): boolean {
    const { threshold, period } = this.knobs;
    if (now < threshold) return false;
    if (last < threshold) return true;
    if (period <= 0) return false;
    return Math.floor((now - threshold) / period) > Math.floor((last - threshold) / period);
  }

  private template(index: number, nowMs: number): SyncConn | null {
    const { records } = this.conns.exportBatch(index, this.one, nowMs);
    if (records !== 1 || this.one[SyncCell.INDEX] !== index || (this.one[SyncCell.META]! & Meta.TEMPLATE) === 0) return null;
    const gen = this.one[SyncCell.GENERATION]! | 1;
    if (this.seenGen[index] !== gen) {
      // Not looked at yet by this scan: a new template in this slot, never sent.
      this.seenGen[index] = gen;
      this.seenPkts[index] = this.one[SyncCell.IN_PKTS]!;
      if (this.sentEnd) {
        this.sentEnd[index] = 0;
        this.sentTries![index] = 0;
      }
    }
    if (!this.due(index, nowMs, this.one[SyncCell.TIMEOUT_MS]! >>> 0, false, true, 0, 0)) return null;
    return toSyncConn(this.one, 0);
  }
}

/** An exported record as a version-1 entry: flags from the forwarding method, template and state
 *  bits; the timeout is the entry's current one in seconds (cp->timeout / HZ). */
export function toSyncConn(rec: Int32Array, o: number): SyncConn {
  const meta = rec[o + SyncCell.META]!;
  const stateCell = rec[o + SyncCell.STATE]!;
  let flags = (meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT;
  if (meta & Meta.TEMPLATE) flags |= ConnFlag.TEMPLATE;
  if (meta & Meta.NO_CPORT) flags |= ConnFlag.NO_CPORT;
  if (stateCell & StateFlag.INACTIVE) flags |= ConnFlag.INACTIVE;
  if (stateCell & StateFlag.NOOUTPUT) flags |= ConnFlag.NOOUTPUT;
  const ports = rec[o + SyncCell.PORTS]!;
  return {
    af: 4,
    protocol: meta & Meta.PROTO_MASK,
    flags,
    state: stateCell & StateFlag.STATE_MASK,
    cport: ports >>> 16,
    vport: ports & 0xffff,
    dport: rec[o + SyncCell.DPORT]! & 0xffff,
    fwmark: 0,
    timeout: Math.floor((rec[o + SyncCell.TIMEOUT_MS]! >>> 0) / 1000),
    caddr: rec[o + SyncCell.CADDR]! >>> 0,
    vaddr: rec[o + SyncCell.VADDR]! >>> 0,
    daddr: rec[o + SyncCell.DADDR]! >>> 0,
  };
}

/** VIP, port and protocol → service, RIP and port → its DestTable slot on this director; -1 when
 *  this director has no such real server (the entry is kept unbound, as ip_vs_proc_conn does). */
export type DestResolver = (protocol: number, vaddr: number, vport: number, daddr: number, dport: number) => number;

const known = new ConnRef();

/**
 * The backup's import: one decoded entry into the table. Returns '' when imported, else why not.
 * Timeouts as sent (seconds; 0 = the protocol's timeout for the state, 3 minutes for a template).
 *
 * The message carries no packet counts, yet the flood defence (src/conn/defense.ts) judges an
 * entry by them: with none, every established connection taken over in a failover looked like a
 * spoofed SYN-then-ACK (TCP ESTABLISHED without client data), the first to be evicted under a
 * flood. A new entry is credited with what the master must have seen to send it: `creditPkts`
 * client packets (sync_threshold, 3 by default: a handshake's SYN and ACK and one more), and a
 * TCP one that arrives ESTABLISHED with one packet of client data. It is then judged like a
 * connection with a little traffic (drop_entry's FEW class, not NODATA), and becomes protected
 * as soon as its own packets through this director add up (defense.ts).
 */
export function importSyncConn(conns: ConnTable, c: SyncConn, resolveDest: DestResolver, nowMs: number, rec: Int32Array, creditPkts = 0): string {
  const fwd = c.flags & ConnFlag.FWD_MASK;
  if (fwd > ConnFlag.DROUTE) return `forwarding method ${fwd} (bypass) is not served by uvs`;
  if (c.fwmark !== 0 && (c.flags & ConnFlag.TEMPLATE) !== 0 && c.vport === 0 && c.vaddr === 0) return 'firewall-mark template (uvs has no fwmark classifier)';
  const template = (c.flags & ConnFlag.TEMPLATE) !== 0;
  let meta = c.protocol | (fwd << Meta.FWD_SHIFT);
  if (template) meta |= Meta.TEMPLATE;
  if (c.flags & ConnFlag.NO_CPORT) meta |= Meta.NO_CPORT;
  let state = c.state;
  if (!template && (c.flags & ConnFlag.INACTIVE)) state |= StateFlag.INACTIVE;
  if (c.flags & ConnFlag.NOOUTPUT) state |= StateFlag.NOOUTPUT;
  let timeoutMs: number;
  if (c.timeout > 0) timeoutMs = Math.min(c.timeout, 0x7fffffff / 1000) * 1000;
  else if (template) timeoutMs = TEMPLATE_DEFAULT_TIMEOUT_MS;
  else timeoutMs = conns.timeoutMs(c.protocol === IPPROTO_UDP ? UDP_TIMEOUT_SLOT : c.state);
  if (!template && conns.lookupIn(c.protocol, c.caddr, c.cport, c.vaddr, c.vport, known) &&
      ((known.daddr >>> 0) !== (c.daddr >>> 0) || known.dport !== c.dport)) {
    // ip_vs_proc_conn: the master has since given this client port to another real server (port
    // reuse). An active entry replaces ours; an inactive one is the expiration message of the
    // connection that was replaced, and is ignored.
    if (c.flags & ConnFlag.INACTIVE) return 'expiration message of a connection already replaced';
    conns.expireNow(known.index, known.seq, nowMs);
  }
  rec.fill(0);
  rec[SyncCell.META] = meta;
  rec[SyncCell.CADDR] = c.caddr | 0;
  rec[SyncCell.VADDR] = c.vaddr | 0;
  rec[SyncCell.PORTS] = (c.cport << 16) | c.vport;
  rec[SyncCell.DADDR] = c.daddr | 0;
  rec[SyncCell.DPORT] = c.dport;
  rec[SyncCell.STATE] = state;
  rec[SyncCell.REMAINING_MS] = timeoutMs | 0;
  rec[SyncCell.TIMEOUT_MS] = timeoutMs | 0;
  if (!template) {
    rec[SyncCell.IN_PKTS] = Math.max(0, creditPkts | 0);
    if (c.protocol === IPPROTO_TCP && c.state === TCP_ESTABLISHED && creditPkts > 0) rec[SyncCell.TRAFFIC] = 1;
  }
  const slot = resolveDest(c.protocol, c.vaddr, c.vport, c.daddr, c.dport);
  return conns.importEntry(rec, 0, slot, nowMs) >= 0 ? '' : 'connection table full';
}

/** One running daemon, master or backup. */
export interface SyncRunner {
  readonly info: SyncDaemonInfo;
  readonly counters: SyncCounters;
  start(): void;
  stop(): void;
}

/** Master: scans and multicasts. */
export class SyncMaster implements SyncRunner {
  readonly counters = newCounters();
  private readonly scanner: SyncScanner;
  private readonly writer: SyncMessageWriter;
  private socket: Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ready = false;
  /** Entries found but not sent yet (a scan found more than one tick may send). */
  private pending: SyncConn[] = [];

  constructor(
    readonly info: SyncDaemonInfo,
    private readonly iface: SyncInterface,
    conns: ConnTable,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly knobs: SyncTunables = defaultSyncTunables(),
  ) {
    this.scanner = new SyncScanner(conns, knobs);
    this.writer = new SyncMessageWriter(info.syncMaxlen, info.syncId);
  }

  start(): void {
    // make_send_sock: bound to the interface's address, multicast out of it, no loopback, TTL;
    // sync_sock_size, when set, as its send buffer (set_sock_size).
    const s = createSocket({ type: 'udp4', reuseAddr: true, ...(this.knobs.sockSize > 0 ? { sendBufferSize: this.knobs.sockSize } : {}) });
    this.socket = s;
    s.on('error', (err) => this.log.error(`sync master: ${err.message}`));
    s.bind(0, this.iface.address, () => {
      try {
        s.setMulticastInterface(this.iface.address);
        s.setMulticastTTL(this.info.mcastTtl);
        s.setMulticastLoopback(false);
        this.ready = true;
      } catch (err) {
        this.log.error(`sync master: ${(err as Error).message}`);
      }
    });
    this.timer = setInterval(() => this.tick(), SCAN_INTERVAL_MS);
    this.log.info(`sync thread started: state = MASTER, mcast_ifn = ${this.info.mcastInterface}, syncid = ${this.info.syncId}, id = 0`);
  }

  /** One scan; sends what it found, at most MAX_MESSAGES_PER_SCAN messages: the rest waits for
   *  the next tick (up to sync_qlen_max messages' worth of entries; past that the oldest are
   *  dropped and counted). */
  tick(): void {
    if (!this.ready || !this.socket) return;
    const scanned = this.scanner.scan(this.now());
    const found = this.pending.length > 0 ? this.pending.concat(scanned) : scanned;
    this.pending = [];
    let sent = 0;
    for (let i = 0; i < found.length; i++) {
      const c = found[i]!;
      if (this.writer.add(c)) continue;
      this.flush();
      if (++sent >= MAX_MESSAGES_PER_SCAN) {
        this.pending = found.slice(i);
        break;
      }
      this.writer.add(c);
    }
    if (!this.writer.empty) this.flush();
    const maxPending = this.knobs.qlenMax * Math.max(1, Math.floor((this.info.syncMaxlen - SYNC_MESG_HEADER_BYTES) / SYNC_V4_BYTES));
    if (this.pending.length > maxPending) {
      this.counters.skipped += this.pending.length - maxPending;
      this.pending = this.pending.slice(this.pending.length - maxPending);
    }
  }

  private flush(): void {
    const msg = this.writer.finish();
    const n = this.writer.conns;
    this.writer.reset();
    this.socket!.send(msg, this.info.mcastPort, this.info.mcastGroup, (err) => {
      if (err) {
        this.counters.sendErrors++;
        if (this.counters.sendErrors === 1 || this.counters.sendErrors % 1000 === 0) this.log.warn(`sync master: send failed (${this.counters.sendErrors} so far): ${err.message}`);
      }
    });
    this.counters.messages++;
    this.counters.conns += n;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // The kernel drops what is queued when the master stops; a last scan sends what changed.
    try {
      this.tick();
    } catch {
      // closing anyway
    }
    this.socket?.close();
    this.socket = null;
    this.log.info(`stopping master sync thread ${process.pid} ...`);
  }
}

/** Backup: joins the group, imports what arrives. */
export class SyncBackup implements SyncRunner {
  readonly counters = newCounters();
  private socket: Socket | null = null;
  private readonly rec = new Int32Array(SYNC_RECORD_CELLS);

  constructor(
    readonly info: SyncDaemonInfo,
    private readonly iface: SyncInterface,
    private readonly conns: ConnTable,
    private readonly resolveDest: DestResolver,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly knobs: SyncTunables = defaultSyncTunables(),
  ) {}

  start(): void {
    // make_receive_sock: reusable, bound to the group and port, member of the group on the
    // interface; sync_sock_size, when set, as its receive buffer (else 1 MiB: the main thread
    // may be busy for a while, the messages wait in the socket).
    const s = createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: this.knobs.sockSize > 0 ? this.knobs.sockSize : 1 << 20 });
    this.socket = s;
    s.on('error', (err) => this.log.error(`sync backup: ${err.message}`));
    s.on('message', (msg) => this.receive(msg));
    s.bind(this.info.mcastPort, this.info.mcastGroup, () => {
      try {
        s.addMembership(this.info.mcastGroup, this.iface.address);
      } catch (err) {
        this.log.error(`sync backup: joining ${this.info.mcastGroup} on ${this.iface.name}: ${(err as Error).message}`);
      }
    });
    this.log.info(`sync thread started: state = BACKUP, mcast_ifn = ${this.info.mcastInterface}, syncid = ${this.info.syncId}, id = 0`);
  }

  /** One datagram (ip_vs_process_message). */
  receive(msg: Buffer): void {
    if (msg.length > this.info.syncMaxlen) {
      // The kernel reads at most sync_maxlen bytes, so the size check fails for longer ones.
      this.drop('size', `message of ${msg.length} bytes is longer than maxlen ${this.info.syncMaxlen}`);
      return;
    }
    let d;
    try {
      d = decodeSyncMessage(msg, this.info.syncId);
    } catch (err) {
      if (err instanceof SyncDecodeError) {
        this.drop(err.field.replace(/^conn\[\d+\]\.?/, 'conn.') || 'conn', err.message);
        return;
      }
      throw err;
    }
    if (d === null) return; // another syncid: ignored, as the kernel does
    this.counters.messages++;
    this.counters.skipped += d.skipped.length;
    const now = this.now();
    for (const c of d.conns) {
      const why = importSyncConn(this.conns, c, this.resolveDest, now, this.rec, this.knobs.threshold);
      if (why === '') this.counters.conns++;
      else if (why === 'connection table full') this.counters.full++;
      else this.counters.skipped++;
    }
  }

  private drop(reason: string, detail: string): void {
    const n = (this.counters.dropped.get(reason) ?? 0) + 1;
    this.counters.dropped.set(reason, n);
    if (n === 1 || n % 1000 === 0) this.log.warn(`sync backup: message dropped (${reason}, ${n} so far): ${detail}`);
  }

  stop(): void {
    this.socket?.close();
    this.socket = null;
    this.log.info(`stopping backup sync thread ${process.pid} ...`);
  }
}

/**
 * Both daemons of one director (`--start-daemon master|backup`, `--stop-daemon`), and the sweep
 * that frees the entries the backup imported (owned by the main thread's table view).
 */
export class SyncManager {
  private master: SyncRunner | null = null;
  private backup: SyncRunner | null = null;
  private sweep: NodeJS.Timeout | null = null;
  /** The sync knobs in force (net.ipv4.vs.sync_*), shared with the running daemons. */
  readonly knobs: SyncTunables = defaultSyncTunables();

  constructor(
    private readonly conns: ConnTable,
    private readonly resolveDest: DestResolver,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly iface: (name: string) => SyncInterface = lookupInterface,
    /** Creates a daemon; tests pass one without sockets. */
    private readonly create: (info: SyncDaemonInfo, iface: SyncInterface) => SyncRunner = (info, iface) =>
      info.state === 'master'
        ? new SyncMaster(info, iface, this.conns, this.now, this.log, this.knobs)
        : new SyncBackup(info, iface, this.conns, this.resolveDest, this.now, this.log, this.knobs),
  ) {}

  /** A sync knob's value in force (checked by the registry, src/sync/knobs.ts): the master's scan
   *  follows it from its next tick; sync_sock_size applies to the next daemon started. Other
   *  knobs are ignored. */
  setKnob(name: string, value: string): void {
    applySyncKnob(this.knobs, name, value);
  }

  /** start_sync_thread: EEXIST when that daemon runs, ENODEV for an unknown interface. */
  start(state: SyncState, o: SyncDaemonOptions): SyncDaemonInfo {
    if (state === 'master' ? this.master : this.backup) throw new SyncError('EEXIST', `${state} sync daemon already runs`);
    if (!o.mcastInterface) throw new SyncError('EINVAL', 'no mcast interface');
    const iface = this.iface(o.mcastInterface);
    const info = resolveOptions(state, o, iface);
    const runner = this.create(info, iface);
    runner.start();
    if (state === 'master') {
      this.master = runner;
    } else {
      this.backup = runner;
      if (!this.sweep) {
        // Imported entries are freed by their owner, this thread: the sweep runs from the first
        // backup start on (entries outlive a stopped backup, as in the kernel).
        this.sweep = setInterval(() => this.conns.expire(this.now(), EXPIRE_BUDGET), EXPIRE_INTERVAL_MS);
        this.sweep.unref();
      }
    }
    return info;
  }

  /** stop_sync_thread: ESRCH when that daemon does not run. */
  stop(state: SyncState): void {
    const d = state === 'master' ? this.master : this.backup;
    if (!d) throw new SyncError('ESRCH', `no ${state} sync daemon runs`);
    d.stop();
    if (state === 'master') this.master = null;
    else this.backup = null;
  }

  running(state: SyncState): boolean {
    return (state === 'master' ? this.master : this.backup) !== null;
  }

  /** What -L --daemon lists: master first, then backup. */
  list(): SyncDaemonInfo[] {
    const out: SyncDaemonInfo[] = [];
    if (this.master) out.push(this.master.info);
    if (this.backup) out.push(this.backup.info);
    return out;
  }

  counters(state: SyncState): SyncCounters | null {
    return (state === 'master' ? this.master : this.backup)?.counters ?? null;
  }

  /** Shutdown: both daemons, and the sweep. */
  close(): void {
    if (this.master) this.stop('master');
    if (this.backup) this.stop('backup');
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
  }
}
