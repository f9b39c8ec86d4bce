// The in-kernel fast path for established DR, NAT and TUN flows (uvsd --fast-path, on by default
// with --io ring and --io xdp).
//
// Why: on this kind of machine the copy of every packet to user space and back bounds what any
// user-space path forwards: 0.4-0.55x kernel forwarding in 64-byte packets per second, at 2-3x its
// CPU per packet (native/README.md, "An in-kernel fast path, measured"). Once a flow is
// established, all uvs DR does to its packets is rewrite both MACs and decrement the TTL: the
// XDP program does that too (native/src/xdp.cc FastPathBlock), so user space decides and the
// kernel carries out. NAT also rewrites an address, a port and two checksums in each direction:
// the XDP program finds and marks the frame, and a tc ingress program does the rewrite with the
// kernel's checksum helpers (native/src/fast-path.cc explains why it takes two programs). TUN puts
// an outer IPv4 header in front: marked by the XDP program after an MTU check, added by the same
// tc program, which leaves the inner packet's checksum state as it was.
//
// Division of work:
//   - User space schedules every new flow, follows every state change and owns the connection
//     entry, as before. A DR, NAT or TUN flow is offered to the fast path (FastFlows.seen) once it
//     has carried FAST_MIN_PACKETS packets from the client, is not a DR super-frame flow (nor a
//     TUN flow that sent a packet in outer fragments), and for TCP is ESTABLISHED with client
//     data seen: a spoofed SYN, or a spoofed SYN-then-ACK pair, never
//     gets there (they are the flood defence's cheap entries, src/conn/defense.ts). The entry gets
//     Traffic.OFFLOADED and the flow's key goes into the kernel's `fast` map with its DestTable
//     slot. A NAT connection puts two keys: the client's direction (rewritten to the real server)
//     and the reply's (rewritten back to the virtual service, sent out by the next hop toward the
//     client that the entry keeps, exactly as user space sends replies: client-hops.ts), and only
//     while that hop's interface has the largest captured MTU. A TUN flow's key carries the real
//     server's address and the director's address toward it (the outer header's).
//   - The kernel forwards the flow's packets with the record of that slot in `hops` (both MACs,
//     egress ifindex), which the control plane mirrors from the next-hop table (FastPath.syncSlot):
//     a record is usable only while its real server is AVAILABLE, DR or NAT, on-link with a known
//     MAC, on an egress whose MTU is no smaller than any captured interface's, and its service
//     active (this director holds the VIP, when VRRP manages it). A TUN server may be behind a
//     router (its MACs are as good); the program checks each frame against the egress MTU with
//     the outer header, and a super-frame's segments shrink by it. A change of next hop or a
//     removed real server changes the record at once, for every flow of that slot.
//   - A TCP SYN, FIN or RST in either direction (of a flow not tracked, below), a DR
//     super-frame, or a TUN frame without DF that would not fit the egress with the outer
//     header, goes to user space (the program demotes
//     the flow), which applies the state change (or sends the frame in outer fragments), deletes
//     the keys and marks the entry NO_FAST. Anything else the program declines (TTL <= 1, a record
//     not usable, an IPv4 header with options for NAT and TUN, a TUN frame with DF too big for the
//     tunnel, which user space answers with "fragmentation needed") goes to user space for that
//     packet only. NAT's and TUN's super-frames stay in the kernel: the tc program rewrites a GSO
//     frame whole, or makes it an IPIP GSO frame.
//   - Expiry: the owner's sweep, meeting an OFFLOADED entry that looks due, asks the kernel how
//     long ago it forwarded the flow's last packet (ConnOffloadHook.idleMs; for NAT the later of
//     both directions) and re-arms the entry for the rest of its timeout instead. One syscall per
//     key per timeout (900 s for TCP ESTABLISHED, 300 s for UDP), not per packet.
//   - Every path that frees an entry (expiry, drop_entry, -C, expire_nodest_conn) deletes the keys
//     first (ConnTable.freeLocked calls ConnOffloadHook.removed).
//   - Statistics: the program counts packets and bytes per real server in the hops records (NAT
//     replies apart, as out_pkts/out_bytes); the control plane folds what they gained into a
//     counter set beside the workers' (FastPath.fold), so --stats, --rate and the conns counters
//     stay whole. It also counts each flow's packets: an export of the table (connection sync's
//     scan, the state saved for a restart, -L -c) raises the entry's in_pkts to the flow's true
//     count and its time left to the kernel's last packet, so the sync master still resends a
//     busy offloaded flow every sync_period packets and the backup's copy does not expire under it.
//
// Whole connections in the kernel (uvsd --fast-path-early on; off by default): a TCP connection is
// offered at its first SYN, as soon as user space has scheduled it, with FAST_TRACK in both
// keys' values. The program then keeps the rest of the connection: the real server's SYN-ACK and
// any retransmitted SYN, the handshake's ACK, the data, and the FINs, which it records in the
// value (FAST_FIN) instead of demoting the flow; a RST still demotes it, and so does a SYN after
// its direction's FIN (a new connection on the port of a closed one, which user space schedules
// again). User space reads a tracked flow back (poll(): one lookup per key) 200 ms after the
// offer and then at doubling intervals up to 12.8 s, for as long as it is open:
//   - the handshake is applied to the entry as user space would have seen it (SYN_RECV to
//     ESTABLISHED, so the real server's active connections count it), and the packets the kernel
//     forwarded count as data and replies for the flood defence; a connection with nothing after
//     its handshake 1.4 s after its SYN (what a spoofed SYN-then-ACK pair leaves) is taken back,
//     so such a flood holds no keys of the kernel's map for ESTABLISHED's 15 minutes;
//   - no packet from the client since the SYN at the first read-back (a spoofed source, or a
//     client slower than 200 ms): the flow is taken back and goes on in user space, where the
//     flood defence sees a SYN_RECV entry as before. When more than half of 64 first read-backs
//     find their SYN unanswered (a spoofed SYN flood), offers stop for 1 s, so a flood costs no
//     map updates; the table's pressure (amemthresh) stops them as well;
//   - each FIN is applied through the state table (the real server's as OUTPUT, the client's as
//     INPUT), and once the connection is closed (both FINs for NAT; the client's for DR and TUN,
//     which see no replies) the keys are deleted: the entry stays in FIN_WAIT, CLOSE_WAIT or
//     TIME_WAIT for its timeout, and the last ACKs, a client reusing the port, and anything late
//     come to user space as for any entry. A SYN or RST the program hands back first brings the
//     entry up to date (the pipeline calls refresh()), so a reused port is scheduled anew.
// A short connection (HTTP with `Connection: close`) then costs user space its SYN and two or
// three map calls instead of its nine or ten packets. What it changes for the schedulers: between
// the SYN and the first read-back an entry counts as inactive, where IPVS counts it active from
// the handshake's ACK (lc, wlc and the others weigh inactive connections too, by 1 against 256).
//
// New connections scheduled in the kernel (uvsd --fast-path-sched on, with --fast-path-early on;
// off by default). What early mode leaves in user space is each connection's SYN, and on this
// kind of VM that SYN's wake-up of a sleeping worker (an IPI and a VM exit, about 30-50 µs of
// machine time) is most of what separates uvs from nftables DNAT for short connections
// (native/README.md, "Whole connections in the kernel"). So the XDP program schedules the SYN
// itself where the choice does not depend on live counts:
//   - User space lays out, per eligible service (schedCycle: TCP, rr or wrr, DR or NAT servers, no
//     persistence, thresholds, one-packet scheduling or fwmark), one round of the scheduler's
//     choices in the `svc` map (FastPath.syncService, at every apply that touches the service;
//     a server that is not available, or has weight 0, is not in it).
//   - A bare SYN that misses the fast map, to such a service, takes the round's next entry (an
//     atomic fetch-and-add of its cursor). If that server's hops record forwards, the program
//     puts the connection's keys exactly as FastFlows.seen would at the SYN (FAST_TRACK; NAT: the
//     reply's too, with the SYN's MACs and ingress as the hop toward the client), forwards the
//     SYN as a hit, and writes a record to the `events` ring. Anything it declines (martian
//     source, TTL, IP options, a real server that does not forward now, a full map, a full ring,
//     a pause) goes to user space, which schedules the SYN as before; the program keeps its own
//     position in the round, apart from user space's.
//   - The workers read the ring at the start of every turn and every sweep, and when it wakes
//     them: the program wakes its reader at most every 4 ms (or when 85 records wait), so a
//     connection is entered within a few milliseconds at low rates and at most 250 wake-ups a
//     second are spent at high ones. For each record Pipeline.adoptScheduled creates the entry
//     as toService would have for the SYN (ConnScheduler.adopt: SYN_RECV, the real server, the
//     connection counts, a NAT entry's hop), and from then on the connection is an early-offered
//     one: read back, closed, taken back. A record user space cannot take (the service gone or
//     inactive, the server no longer available, a full table) has its keys deleted. An older
//     entry of the same tuple (a client reusing its port) gives way: the SYN went to the
//     kernel's choice.
//   - Floods: the first read-back's unanswered SYNs pause the program's scheduling for a second
//     (ctl's pausedUntil) as they pause the offers, and so does table pressure, checked whenever
//     records are entered; paused, the SYNs meet the flood defence in user space.
// Costs per short connection: no frame through user space; two map updates by the program, a
// record, one or two read-backs (one lookup per key) and one delete per key by the worker.

// With --io ring the programs are attached only while a DR, NAT or TUN real server is configured
// (DataPlane.syncFastPrograms): a generic-mode program runs for every frame the interface
// receives, and the kernel copies a frame that lacks XDP's headroom or is not linear (a GSO
// super-frame) first; without such a server that work buys nothing.
//
// What stays in user space: fragments, ICMP, flows of DR super-frames (bulk TCP through generic
// XDP on veth arrives as GSO aggregates, which a redirect from XDP cannot carry), NAT and TUN
// where the tc program cannot be attached (tcx needs Linux 6.6; uvsd warns), and every flow while
// the fast path is off. Frames the fast path forwards skip the director's egress qdisc (DR:
// generic XDP's redirect, like AF_XDP's; NAT and TUN: tc's redirect from ingress goes straight to
// the device), and tcpdump on the director shows a NAT or TUN frame once, on its way in, with the
// mark as its destination MAC.

import type { FastEventsReader, FastPathMaps, NativeAddon } from '../native/addon';
import { ConnRef, connNowMs, EntryCell, Meta, StateFlag, Traffic, type ConnOffloadHook, type ConnTable } from '../conn/table';
import { ConnDir, TcpState, tcpStateTransition } from '../conn/tcp-state';
import { DestField, DestFlag, ForwardMethod, type DestTable } from '../tables/dest-table';
import { NEXT_HOP_RECORD_BYTES, NextHopFlag, type NextHopTable } from '../tables/next-hop';
import { Stat, STAT_CELLS, WorkerCounters, WorkerStat, type CounterLayout } from './counters';
import { IPPROTO_TCP } from '../packet/ipv4';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../packet/tcp';

/** Client packets a flow carries through user space before it is offered to the fast path
 *  (a TCP connection offered at its SYN, FastFlows' `track`, is not counted this way). */
export const FAST_MIN_PACKETS = 8;
/** Value flags (native/src/fast-path.h): the flow's FINs stay in the kernel, which records them. */
export const FAST_TRACK = 2;
export const FAST_FIN = 4;
/** A tracked flow is read back this long after its offer, then at doubling intervals up to
 *  CHECK_FIRST_MS << (CHECK_LEVELS - 1) (12.8 s), and from then on at that interval. */
const CHECK_FIRST_MS = 200;
const CHECK_LEVELS = 7;
/** Flows each level holds; a flow that finds its level full is no longer read back (its close
 *  is then found when the sweep meets it idle, as for a flow whose FIN the director missed). */
const CHECK_SLOTS = 16384;
/** Flows read back per poll at most (each costs one or two map lookups). */
const CHECK_BUDGET = 2048;
/** Offers stop for EARLY_PAUSE_MS when more than half of EARLY_WINDOW first read-backs found a
 *  SYN unanswered. */
const EARLY_WINDOW = 64;
/** A tracked connection with nothing after its handshake at this read-back level (1.4 s after
 *  its SYN) goes back to user space (FastFlows.refresh). */
const IDLE_HANDSHAKE_LEVEL = 2;
const EARLY_PAUSE_MS = 1000;
/** Flows the fast path holds at most when nothing says otherwise (uvsd --fast-path-max; at most
 *  --conn-max). The kernel allocates an element per flow offloaded (about 100 bytes with its hash
 *  overhead) as flows come, but the hash's bucket array up front: 16 bytes per entry of the
 *  maximum rounded up to a power of two, 16 MiB here (measured as the map's memlock in
 *  /proc/PID/fdinfo: 134,218,624 bytes when the default was --conn-max, 4.9 M on a 24 GiB
 *  machine). Flows past the maximum stay in user space (counted as refused). */
export const FAST_ENTRIES_DEFAULT = 1 << 20;
/** Bytes of a hops record (native/src/fast-path.cc). */
export const FAST_HOP_BYTES = 48;
const HOP_IFINDEX = 12;
const HOP_PACKETS = 16;
const HOP_BYTES = 24;
const HOP_OUT_PACKETS = 32;
const HOP_OUT_BYTES = 40;
/** TCP FIN | SYN | RST. */
const TCP_CHANGE = TCP_FIN | TCP_SYN | TCP_RST;
/** FastPath.folded's cells per slot: in packets, in bytes, out packets, out bytes. */
const FOLDED_CELLS = 4;

/** The forwarding methods the fast path carries: DR (MACs only), NAT and TUN (with the tc program). */
export function fastMethod(fwd: number): boolean {
  return fwd === ForwardMethod.DROUTE || fwd === ForwardMethod.MASQ || fwd === ForwardMethod.TUNNEL;
}

/** What FastFlows.seen offers a flow as (the map value's kind for the client's direction). */
export const enum FastKind {
  DR = 0,
  NAT = 1,
  TUN = 3,
}
/** How stale the folded statistics may be when somebody reads them. */
const FOLD_MAX_AGE_MS = 100;

/**
 * The fast path as one thread sees it: offers flows, takes them back, and answers the connection
 * table's questions (ConnOffloadHook). Workers have one each; so does the control plane, whose
 * table frees entries too. One syscall per call, never per packet.
 */
export class FastFlows implements ConnOffloadHook {
  /** Counted here when there are no worker counters (the control plane's instance). */
  offloads = 0;
  left = 0;
  refused = 0;
  kept = 0;

  /** Tracked flows waiting to be read back: per level, a ring of (index, generation, due ms). */
  private readonly checks: Int32Array[] = [];
  private readonly heads = new Int32Array(CHECK_LEVELS);
  private readonly sizes = new Int32Array(CHECK_LEVELS);
  private readonly ref = new ConnRef();
  private readonly inStat = new Float64Array(3);
  private readonly outStat = new Float64Array(3);
  /** The connection table's clock (connNowMs); tests set their own. */
  clock: () => number = connNowMs;

  /**
   * `replyEgress`: per data-plane interface (the index a NAT entry's client hop holds), the
   * ifindex its replies may leave by in the kernel, 0 where they may not (an MTU below the largest
   * captured one: a frame the program redirects there could be too long). Empty (the control
   * plane's instance): no NAT offers. `track` (uvsd --fast-path-early): a TCP connection is
   * offered at its SYN and its FINs stay in the kernel ("Whole connections in the kernel"
   * above); without it a flow is offered after FAST_MIN_PACKETS packets with data and taken back
   * by its first SYN, FIN or RST.
   */
  constructor(private readonly native: NativeAddon, readonly fd: number, private readonly counters: WorkerCounters | null = null,
    private readonly replyEgress: readonly number[] = [], readonly track = false) {
    if (track) for (let l = 0; l < CHECK_LEVELS; l++) this.checks.push(new Int32Array(CHECK_SLOTS * 3));
  }

  /**
   * A packet of DR, NAT or TUN entry `index` from the client that user space has just forwarded
   * (the pipeline, after the rewrite). Offers the flow when it qualifies; takes it back on a SYN,
   * FIN or RST or a DR super-frame. `superFrame`: the frame was a GSO aggregate. `kind` NAT: the
   * real server is `daddr`:`dport` (the key's daddr:dport are the VIP's). `kind` TUN: the outer
   * header goes from `tunSource` to `tunRip` (the real server).
   */
  seen(conns: ConnTable, index: number, protocol: number, saddr: number, sport: number, daddr: number, dport: number,
    destSlot: number, tcpFlags: number, superFrame: boolean, kind: FastKind = FastKind.DR, tunRip = 0, tunSource = 0): void {
    const nat = kind === FastKind.NAT;
    const t = conns.field(index, EntryCell.TRAFFIC);
    // NAT's and TUN's super-frames go through the kernel like any other frame (the tc program
    // rewrites or encapsulates them whole); DR's cannot.
    if (kind !== FastKind.DR) superFrame = false;
    if ((t & Traffic.OFFLOADED) !== 0) {
      // In the fast path, yet here: the packet the program declined. A state change or a
      // super-frame takes the flow back for good; anything else (TTL, a record not usable, frames
      // queued before the offer) was a one-off.
      if ((tcpFlags & TCP_CHANGE) !== 0 || superFrame) this.leave(conns, index);
      return;
    }
    if ((t & Traffic.NO_FAST) !== 0) return;
    if (superFrame) {
      // A flow of aggregates stays on the ring (the program cannot redirect them): one path, one order.
      conns.orTraffic(index, Traffic.NO_FAST);
      return;
    }
    // Tracked ("Whole connections in the kernel"): a TCP connection at its first SYN, while the
    // table is not under pressure and SYNs are not going unanswered (earlyOk).
    const early = (tcpFlags & TCP_CHANGE) === TCP_SYN && this.track && protocol === IPPROTO_TCP &&
      conns.field(index, EntryCell.IN_PKTS) === 1 && this.earlyOk(conns);
    if (!early) {
      if ((tcpFlags & TCP_CHANGE) !== 0 || conns.field(index, EntryCell.IN_PKTS) < FAST_MIN_PACKETS) return;
      if (protocol === IPPROTO_TCP) {
        if ((conns.field(index, EntryCell.STATE) & StateFlag.STATE_MASK) !== TcpState.ESTABLISHED) return;
        if ((t & Traffic.DATA_MASK) === 0) return;
      }
    }
    const seq = early ? conns.seqOf(index) : 0;
    const flags = early ? FAST_TRACK : 0;
    let egress = 0;
    if (nat) {
      // The replies leave by the client's own hop (kept with the entry), on an interface the
      // kernel may redirect to.
      if ((t & Traffic.HOP_VALID) === 0) return;
      egress = this.replyEgress[(t & Traffic.HOP_IF_MASK) >>> Traffic.HOP_IF_SHIFT] ?? 0;
      if (egress === 0) return;
    }
    // One thread wins the offer (two workers may see the flow's packets at once).
    if ((conns.orTraffic(index, Traffic.OFFLOADED) & (Traffic.OFFLOADED | Traffic.NO_FAST)) !== 0) return;
    const base = conns.field(index, EntryCell.IN_PKTS) >>> 0;
    let err: number;
    if (nat) {
      err = this.native.fastPutNat(this.fd, protocol, saddr, sport, conns.field(index, EntryCell.VADDR) >>> 0, conns.field(index, EntryCell.PORTS) & 0xffff,
        daddr, dport, destSlot, base, conns.field(index, EntryCell.HOP_A), conns.field(index, EntryCell.HOP_B), conns.field(index, EntryCell.HOP_C), egress, flags);
    } else if (kind === FastKind.TUN) {
      err = this.native.fastPutTun(this.fd, protocol, saddr, sport, daddr, dport, destSlot, base, tunRip, tunSource, flags);
    } else {
      err = this.native.fastPut(this.fd, protocol, saddr, sport, daddr, dport, destSlot, base, flags);
    }
    if (err !== 0) {
      conns.clearTraffic(index, Traffic.OFFLOADED);
      conns.orTraffic(index, Traffic.NO_FAST);
      this.count(WorkerStat.FAST_REFUSED);
      return;
    }
    this.count(WorkerStat.FAST_OFFLOADS);
    if (early) this.enqueue(0, index, seq, (this.clock() | 0) + CHECK_FIRST_MS);
  }

  /** Kernel scheduling (attachSched): the events ring's reader and the control cell. */
  private events: FastEventsReader | null = null;
  private ctl: BigUint64Array | null = null;

  /** Kernel scheduling (uvsd --fast-path-sched): this thread reads the events ring and pauses
   *  the program's scheduling with the offers (earlyOk). */
  attachSched(events: FastEventsReader, ctl: BigUint64Array): void {
    this.events = events;
    this.ctl = ctl;
  }

  /** Reads records of the events ring into `out` (FAST_EVENT_CELLS each); 0 without kernel scheduling. */
  readEvents(out: Int32Array): number {
    return this.events !== null ? this.events.read(out) : 0;
  }

  /**
   * A connection the program scheduled, whose entry `index` the pipeline has just created: tracked
   * from here as one offered at its SYN (its keys are in the map already).
   */
  adopted(conns: ConnTable, index: number, nowMs: number): void {
    conns.orTraffic(index, Traffic.OFFLOADED);
    this.count(WorkerStat.FAST_OFFLOADS);
    this.count(WorkerStat.FAST_SCHEDULED);
    this.enqueue(0, index, conns.seqOf(index), (nowMs | 0) + CHECK_FIRST_MS);
  }

  /** A connection the program scheduled that user space does not take: its keys come out (NAT:
   *  both), and its next packets come to user space, which schedules or drops them itself. */
  refuseScheduled(protocol: number, saddr: number, sport: number, daddr: number, dport: number, nat: boolean, rip: number, rport: number): void {
    this.native.fastDelete(this.fd, protocol, saddr, sport, daddr, dport);
    if (nat) this.native.fastDelete(this.fd, protocol, rip, rport, saddr, sport);
    this.count(WorkerStat.FAST_SCHED_DROPPED);
  }

  /** Before records are entered: table pressure (or no room to read them back) pauses the
   *  program's scheduling, so that new connections meet the flood defence in user space. */
  schedCheck(conns: ConnTable): void {
    if (this.sizes[0]! >= CHECK_SLOTS || conns.underPressure()) this.pauseKernel();
  }

  /** Kernel scheduling stops for EARLY_PAUSE_MS too (the program reads pausedUntil). */
  private pauseKernel(): void {
    const ctl = this.ctl;
    if (ctl === null) return;
    const until = process.hrtime.bigint() + BigInt(EARLY_PAUSE_MS) * 1000000n;
    if (until > Atomics.load(ctl, FastCtl.PAUSED_UNTIL)) Atomics.store(ctl, FastCtl.PAUSED_UNTIL, until);
  }

  /** Puts a tracked flow on level `level`'s ring; false when the ring is full. */
  private enqueue(level: number, index: number, seq: number, due: number): boolean {
    const size = this.sizes[level]!;
    if (size >= CHECK_SLOTS) return false;
    const q = this.checks[level]!;
    const at = ((this.heads[level]! + size) % CHECK_SLOTS) * 3;
    q[at] = index;
    q[at + 1] = seq;
    q[at + 2] = due | 0;
    this.sizes[level] = size + 1;
    return true;
  }

  /**
   * Whether a SYN may be offered now: the table is not under pressure, the first read-back
   * level has room, and no SYN flood is under way: when most of the SYNs offered lately were
   * never answered by the client's ACK (spoofed sources), offers stop for EARLY_PAUSE_MS, so a
   * flood costs no map updates (the flood defence, src/conn/defense.ts, then sees only
   * user-space entries, as without this).
   */
  private earlyOk(conns: ConnTable): boolean {
    if (this.sizes[0]! >= CHECK_SLOTS || conns.underPressure()) {
      this.pauseKernel();
      return false;
    }
    if (this.pausedUntil !== 0) {
      if ((((this.clock() | 0) - this.pausedUntil) | 0) < 0) return false;
      this.pausedUntil = 0;
    }
    return true;
  }

  /** Read-backs of the first level lately, and those that found no ACK after the SYN. */
  private firstChecks = 0;
  private unanswered = 0;
  private pausedUntil = 0;
  /** SYNs taken back unanswered (a flood pauses offers). */
  unansweredSyns = 0;

  private firstCheck(answered: boolean, now: number): void {
    this.firstChecks++;
    if (!answered) {
      this.unanswered++;
      this.unansweredSyns++;
    }
    if (this.firstChecks < EARLY_WINDOW) return;
    if (this.unanswered * 2 > this.firstChecks) {
      this.pausedUntil = (now + EARLY_PAUSE_MS) | 0 || 1;
      this.pauseKernel();
    }
    this.firstChecks = 0;
    this.unanswered = 0;
  }

  /** Tracked flows waiting to be read back (every level). */
  get tracked(): number {
    let n = 0;
    for (let l = 0; l < CHECK_LEVELS; l++) n += this.sizes[l]!;
    return n;
  }

  /**
   * Reads back the tracked flows that are due (the owner's turns and sweeps call it; at most
   * CHECK_BUDGET flows per call): a flow the kernel saw close is taken back with its state moved
   * as its FINs would have moved it; an open one is read again later. Returns the flows read.
   */
  poll(conns: ConnTable, nowMs: number): number {
    if (!this.track) return 0;
    const now = nowMs | 0;
    let done = 0;
    for (let l = 0; l < CHECK_LEVELS && done < CHECK_BUDGET; l++) {
      const q = this.checks[l]!;
      while (this.sizes[l]! > 0 && done < CHECK_BUDGET) {
        const at = this.heads[l]! * 3;
        if (((now - q[at + 2]!) | 0) < 0) break;
        const index = q[at]!;
        const seq = q[at + 1]!;
        this.heads[l] = (this.heads[l]! + 1) % CHECK_SLOTS;
        this.sizes[l] = this.sizes[l]! - 1;
        done++;
        if (this.refresh(conns, index, seq, now, l)) {
          const next = Math.min(l + 1, CHECK_LEVELS - 1);
          this.enqueue(next, index, seq, now + (CHECK_FIRST_MS << next));
        }
      }
    }
    return done;
  }

  /**
   * Brings entry `index` (generation `seq`) up to date with what the kernel forwarded of a
   * tracked flow: its data and reply counts (for the flood defence), and each direction's FIN
   * through the state table as if user space had seen it. A connection closed in the kernel
   * (both FINs for NAT; the client's for DR and TUN, which see no replies) is taken back: its
   * keys are deleted and its last packets come to user space in the state its FINs left it.
   * A connection whose client sent nothing after the handshake's ACK by the read-back of level
   * IDLE_HANDSHAKE_LEVEL (1.4 s after its SYN; for NAT, the server nothing after its SYN-ACK
   * either) is taken back as well: a spoofed SYN-then-ACK pair looks like that, and in user
   * space the flood defence sees it as the ESTABLISHED entry without data it is, where it would
   * otherwise hold a key of the kernel's map for ESTABLISHED's timeout.
   * Returns whether the flow is still tracked and open. `level`: the read-back's level (poll);
   * -1 when the pipeline calls it, before a SYN or RST of an offloaded flow is applied (a client
   * reusing the port of a closed one).
   */
  refresh(conns: ConnTable, index: number, seq: number, nowMs: number, level = -1): boolean {
    const first = level === 0;
    const ref = this.ref;
    if (!conns.refAt(index, seq, ref)) return false;
    if ((conns.field(index, EntryCell.TRAFFIC) & Traffic.OFFLOADED) === 0) return false;
    const protocol = ref.meta & Meta.PROTO_MASK;
    if (protocol !== IPPROTO_TCP) return false;
    const ports = conns.field(index, EntryCell.PORTS);
    const caddr = conns.field(index, EntryCell.CADDR);
    if (this.native.fastIdle(this.fd, protocol, caddr, ports >>> 16, conns.field(index, EntryCell.VADDR), ports & 0xffff, this.inStat) < 0) return false;
    const inFlags = this.inStat[2]!;
    if ((inFlags & FAST_TRACK) === 0) return false;
    const nat = isNat(conns, index);
    let outFlags = 0;
    let replies = 0;
    if (nat && this.native.fastIdle(this.fd, protocol, conns.field(index, EntryCell.DADDR), conns.field(index, EntryCell.DPORT_DEST) >>> 16,
      caddr, ports >>> 16, this.outStat) >= 0) {
      outFlags = this.outStat[2]!;
      replies = this.outStat[1]!;
    }
    // Client packets after the SYN (the handshake's ACK is the first), replies from the server.
    const forwarded = this.inStat[1]!;
    if ((ref.state & StateFlag.STATE_MASK) === TcpState.SYN_RECV) {
      if (forwarded === 0) {
        // No ACK since the SYN: a spoofed source, or a client slower than the read-back. The
        // connection goes on in user space, where the flood defence sees it.
        if (first) this.firstCheck(false, nowMs);
        this.leave(conns, index);
        return false;
      }
      if (first) this.firstCheck(true, nowMs);
      // The handshake, as user space would have seen it: the SYN-ACK (NAT), the client's ACK.
      if (nat && replies > 0 && tcpStateTransition(conns, ref, ConnDir.OUTPUT, TCP_SYN | TCP_ACK, nowMs) < 0) return false;
      if (tcpStateTransition(conns, ref, ConnDir.INPUT, TCP_ACK, nowMs) < 0) return false;
    } else if (first) {
      this.firstCheck(true, nowMs);
    }
    // Data beyond the handshake's ACK, and replies beyond the SYN-ACK, for the flood defence.
    if (forwarded > 1 || replies > 0) conns.raiseTraffic(index, forwarded > 1 ? 1 : 0, replies);
    if (level >= IDLE_HANDSHAKE_LEVEL && forwarded <= 1 && replies <= 1) {
      this.leave(conns, index);
      return false;
    }
    const finIn = (inFlags & FAST_FIN) !== 0;
    const finOut = (outFlags & FAST_FIN) !== 0;
    if (!finIn && !finOut) return true;
    if (finOut && tcpStateTransition(conns, ref, ConnDir.OUTPUT, TCP_FIN | TCP_ACK, nowMs) < 0) return false;
    if (finIn && tcpStateTransition(conns, ref, ConnDir.INPUT, TCP_FIN | TCP_ACK, nowMs) < 0) return false;
    if (nat ? finIn && finOut : finIn) {
      this.leave(conns, index);
      return false;
    }
    return true;
  }

  /**
   * A frame of entry `index` that the fast path cannot carry and user space did not forward whole
   * (TUN: too big for the tunnel without DF, sent in fragments): the flow stays in user space
   * from now on, taken back if it was offloaded (the program has demoted it already).
   */
  keepHere(conns: ConnTable, index: number): void {
    if ((conns.field(index, EntryCell.TRAFFIC) & Traffic.OFFLOADED) !== 0) this.leave(conns, index);
    else conns.orTraffic(index, Traffic.NO_FAST);
  }

  /**
   * A reply of NAT entry `index` that user space has just forwarded: the program declined it.
   * A SYN, FIN or RST takes the connection back, as from the client's side.
   */
  seenReply(conns: ConnTable, index: number, tcpFlags: number): void {
    if ((conns.field(index, EntryCell.TRAFFIC) & Traffic.OFFLOADED) === 0) return;
    if ((tcpFlags & TCP_CHANGE) !== 0) this.leave(conns, index);
  }

  private leave(conns: ConnTable, index: number): void {
    conns.orTraffic(index, Traffic.NO_FAST);
    // One thread takes it back (another worker may be doing the same with the flow's next packet).
    if ((conns.clearTraffic(index, Traffic.OFFLOADED) & Traffic.OFFLOADED) === 0) return;
    this.deleteKeys(conns, index);
    this.count(WorkerStat.FAST_LEFT);
  }

  /** Both keys of entry `index` (the reply's only for NAT) out of the kernel's map. */
  private deleteKeys(table: ConnTable, index: number): void {
    const ports = table.field(index, EntryCell.PORTS);
    this.native.fastDelete(this.fd, table.field(index, EntryCell.META) & Meta.PROTO_MASK, table.field(index, EntryCell.CADDR),
      ports >>> 16, table.field(index, EntryCell.VADDR), ports & 0xffff);
    if (isNat(table, index)) this.deleteReplyKey(table, index);
  }

  /** A NAT entry's reply key: real server -> client. */
  private deleteReplyKey(table: ConnTable, index: number): void {
    this.native.fastDelete(this.fd, table.field(index, EntryCell.META) & Meta.PROTO_MASK, table.field(index, EntryCell.DADDR),
      table.field(index, EntryCell.DPORT_DEST) >>> 16, table.field(index, EntryCell.CADDR), table.field(index, EntryCell.PORTS) >>> 16);
  }

  /** After idleMs: the flow's in_pkts with the fast path's packets (base + forwarded). */
  inPackets = 0;
  private readonly stat = new Float64Array(2);

  /** `counted`: the sweep's question (an expiry put off is counted); false: a listing's or an export's. */
  idleMs(table: ConnTable, index: number, counted = true): number {
    const ports = table.field(index, EntryCell.PORTS);
    const protocol = table.field(index, EntryCell.META) & Meta.PROTO_MASK;
    let idle = this.native.fastIdle(this.fd, protocol, table.field(index, EntryCell.CADDR),
      ports >>> 16, table.field(index, EntryCell.VADDR), ports & 0xffff, this.stat);
    this.inPackets = idle >= 0 ? this.stat[0]! + this.stat[1]! : 0;
    if (idle >= 0 && isNat(table, index)) {
      // A NAT connection lives while either direction moves, as IPVS's timer does.
      const reply = this.native.fastIdle(this.fd, protocol, table.field(index, EntryCell.DADDR),
        table.field(index, EntryCell.DPORT_DEST) >>> 16, table.field(index, EntryCell.CADDR), ports >>> 16);
      if (reply >= 0 && reply < idle) idle = reply;
    }
    if (counted && idle >= 0 && idle < table.field(index, EntryCell.TIMEOUT)) this.count(WorkerStat.FAST_KEPT);
    return idle;
  }

  removed(table: ConnTable, index: number): void {
    this.deleteKeys(table, index);
    table.clearTraffic(index, Traffic.OFFLOADED);
    this.count(WorkerStat.FAST_LEFT);
  }

  private count(stat: WorkerStat): void {
    if (this.counters !== null) {
      this.counters.add(stat, 1);
      return;
    }
    if (stat === WorkerStat.FAST_OFFLOADS) this.offloads++;
    else if (stat === WorkerStat.FAST_LEFT) this.left++;
    else if (stat === WorkerStat.FAST_REFUSED) this.refused++;
    else this.kept++;
  }
}

function isNat(table: ConnTable, index: number): boolean {
  return ((table.field(index, EntryCell.META) & Meta.FWD_MASK) >>> Meta.FWD_SHIFT) === ForwardMethod.MASQ;
}

/** The fast path in `uvsadm --dataplane`: flows offloaded, taken back (or freed), refused by a
 *  full map, expiries put off; packets forwarded in the kernel; the map's size. */
export interface FastPathReport {
  max: number;
  packets: number;
  offloads: number;
  left: number;
  refused: number;
  kept: number;
  /** Kernel scheduling (absent: off): services in the map; connections the program scheduled,
   *  could not put (key exists, map full), lost (events ring full); entries user space created
   *  for them, and those it could not take. */
  sched?: { services: number; scheduled: number; refused: number; lost: number; adopted: number; dropped: number };
}

/** Entries of a kernel-scheduled service's cycle at most (native/src/fast-path.h kSchedSlots). */
export const SCHED_SLOTS = 255;
/** Cells per cycle entry given to fastSvcPut: destSlot, kind, real server address, port. */
const SCHED_CELLS = 4;
/** Cells per record fastEvents' read() gives (native/src/fast-path.h kEventCells). */
export const FAST_EVENT_CELLS = 12;
/** The control cell's words (u64 index into a BigUint64Array over ctl). */
export const enum FastCtl {
  PAUSED_UNTIL = 0,
  SCHEDULED = 1,
  REFUSED = 2,
  LOST = 3,
  /** The program's last wake-up of the events' reader (ktime ns). */
  LAST_WAKE = 4,
}

/** What schedCycle needs of a service (a ServiceEntry of the model). */
export interface SchedService {
  protocol: number;
  port: number;
  fwmark: number;
  flags: number;
  scheduler: string;
  /** Real servers, newest first (the model's order). */
  dests: readonly { slot: number; addr: number; port: number; fwd: number; uThreshold: number; lThreshold: number }[];
}

function gcdOf(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * Kernel scheduling ("New connections scheduled in the kernel" above): one round of the service's
 * choices into `out` (SCHED_CELLS cells per entry: destSlot, kind, address, port), returned as
 * the entry count; 0 when the service is not scheduled in the kernel. Eligible: a TCP service on
 * a port (no fwmark, no persistence, no one-packet scheduling), scheduler rr or wrr, whose real
 * servers with a weight are all DR or NAT, available, and without connection thresholds (-x/-y:
 * those depend on live counts). The round is what ip_vs_rr_schedule / ip_vs_wrr_schedule walk
 * over the service's list, newest server first as the kernel keeps it (rr: each server with a
 * weight once; wrr: from the largest weight down by their gcd, each server whose weight reaches
 * the current one), so the kernel's choices keep rr's and wrr's proportions and order exactly;
 * the program keeps its own position in the round, apart from user space's (which schedules what
 * the program declines).
 */
export function schedCycle(svc: SchedService, dests: DestTable, persistentFlag: number, onePacketFlag: number, out: Int32Array): number {
  if (svc.protocol !== IPPROTO_TCP || svc.fwmark !== 0 || svc.port === 0 || (svc.flags & (persistentFlag | onePacketFlag)) !== 0) return 0;
  if (svc.scheduler !== 'rr' && svc.scheduler !== 'wrr') return 0;
  const list: { slot: number; weight: number; kind: number; addr: number; port: number }[] = [];
  // The model's order (newest first) is the kernel's list, which rr and wrr walk.
  for (const d of svc.dests) {
    const weight = dests.get(d.slot, DestField.WEIGHT);
    if (weight <= 0) continue;
    if (d.uThreshold !== 0 || d.lThreshold !== 0) return 0;
    if ((dests.get(d.slot, DestField.FLAGS) & DestFlag.AVAILABLE) === 0) continue;
    if (d.fwd === ForwardMethod.DROUTE) list.push({ slot: d.slot, weight, kind: FastKind.DR, addr: d.addr, port: svc.port });
    else if (d.fwd === ForwardMethod.MASQ) list.push({ slot: d.slot, weight, kind: FastKind.NAT, addr: d.addr, port: d.port !== 0 ? d.port : svc.port });
    else return 0;
  }
  if (list.length === 0) return 0;
  const order: number[] = [];
  if (svc.scheduler === 'rr') {
    for (let i = 0; i < list.length; i++) order.push(i);
  } else {
    let di = 0;
    let mw = 0;
    for (const d of list) {
      di = gcdOf(d.weight, di);
      mw = Math.max(mw, d.weight);
    }
    let total = 0;
    for (const d of list) total += d.weight / di;
    if (total > SCHED_SLOTS) return 0;
    // ip_vs_wrr: cw from mw = max - (di - 1) down by di while positive; each server whose weight
    // reaches cw, in list order.
    for (let cw = mw - (di - 1); cw > 0; cw -= di) for (let i = 0; i < list.length; i++) if (list[i]!.weight >= cw) order.push(i);
  }
  if (order.length > SCHED_SLOTS) return 0;
  for (let k = 0; k < order.length; k++) {
    const d = list[order[k]!]!;
    const at = k * SCHED_CELLS;
    out[at] = d.slot;
    out[at + 1] = d.kind;
    out[at + 2] = d.addr | 0;
    out[at + 3] = d.port;
  }
  return order.length;
}

/** Where a DestTable slot's frames leave, for FastPath.syncSlot. */
export interface FastEgress {
  /** ifindex of data-plane interface `egress` (0: none). */
  ifindex(egress: number): number;
  /** The largest MTU among the captured interfaces: a frame the program accepts is at most that. */
  maxMtu(): number;
  /** Whether service `id` (DestField.SERVICE) forwards now (false: VRRP backup for its VIP). */
  serviceActive(id: number): boolean;
}

/**
 * The control plane's part: the maps, the hops mirror of the next-hop table, and the statistics
 * fold. Main thread only.
 */
export class FastPath {
  readonly maps: FastPathMaps;
  readonly entries: number;
  /** The fast path's traffic in the layout of a worker's counters (services, real servers),
   *  read by the CounterSum with the workers' own. */
  readonly counters: WorkerCounters;
  /** The control plane's own FastFlows (its ConnTable frees entries too). */
  readonly flows: FastFlows;
  private readonly hops: Uint8Array;
  private readonly words: Uint32Array;
  private readonly slots: number;
  /** Per slot: packets and bytes of the record already folded into `counters`, in, then out. */
  private readonly folded: Float64Array;
  private foldedAt = -Infinity;

  /** Kernel scheduling's control cell (null: off). */
  readonly ctl: BigUint64Array | null = null;
  /** Kernel scheduling: what each service's cycle in the map is, by service id (its key and
   *  entries, to write only what changed). */
  private readonly cycles = new Map<number, { protocol: number; addr: number; port: number; sig: string }>();
  private readonly cycleCells = new Int32Array(SCHED_SLOTS * SCHED_CELLS);
  private readonly native: NativeAddon;

  /** `sched`: with kernel scheduling (uvsd --fast-path-sched) for up to `services` services. */
  constructor(native: NativeAddon, layout: CounterLayout, entries = FAST_ENTRIES_DEFAULT, sched: { services: number } | null = null) {
    this.native = native;
    this.slots = layout.maxDests;
    this.entries = entries;
    this.maps = native.fastPathMaps({ entries, slots: this.slots, ...(sched !== null ? { sched } : {}) });
    this.hops = new Uint8Array(this.maps.hops);
    this.words = new Uint32Array(this.maps.hops);
    this.folded = new Float64Array(this.slots * FOLDED_CELLS);
    this.counters = new WorkerCounters(layout);
    this.flows = new FastFlows(native, this.maps.fastFd);
    if (this.maps.ctl !== undefined) this.ctl = new BigUint64Array(this.maps.ctl);
  }

  /** What xdpAttach needs to put the fast path into an interface's program. */
  get fds(): { fastFd: number; hopsFd: number; svcFd?: number; ctlFd?: number; eventsFd?: number } {
    const m = this.maps;
    return m.svcFd !== undefined ? { fastFd: m.fastFd, hopsFd: m.hopsFd, svcFd: m.svcFd, ctlFd: m.ctlFd!, eventsFd: m.eventsFd! } : { fastFd: m.fastFd, hopsFd: m.hopsFd };
  }

  /**
   * Kernel scheduling: makes service `id`'s cycle in the map what schedCycle says of `svc` now
   * (removed when `svc` is undefined or not eligible). One map update per service that changed.
   */
  syncService(id: number, svc: (SchedService & { addr: number }) | undefined, dests: DestTable, persistentFlag: number, onePacketFlag: number): void {
    const fd = this.maps.svcFd;
    if (fd === undefined) return;
    const had = this.cycles.get(id);
    const count = svc !== undefined ? schedCycle(svc, dests, persistentFlag, onePacketFlag, this.cycleCells) : 0;
    const sig = count > 0 ? `${svc!.protocol}/${svc!.addr}/${svc!.port}:${this.cycleCells.subarray(0, count * SCHED_CELLS).join(',')}` : '';
    if (had !== undefined && had.sig === sig) return;
    if (had !== undefined && (count === 0 || had.protocol !== svc!.protocol || had.addr !== svc!.addr || had.port !== svc!.port)) {
      this.native.fastSvcDelete(fd, had.protocol, had.addr, had.port);
    }
    this.cycles.delete(id);
    if (count === 0) return;
    if (this.native.fastSvcPut(fd, svc!.protocol, svc!.addr, svc!.port, id, this.cycleCells, count) === 0) {
      this.cycles.set(id, { protocol: svc!.protocol, addr: svc!.addr, port: svc!.port, sig });
    }
  }

  /** Services whose new connections the kernel schedules now. */
  get scheduledServices(): number {
    return this.cycles.size;
  }

  /**
   * Makes slot `slot`'s record say what user space would do with the slot's DR frames: both MACs
   * and the egress ifindex when the program may forward for it, ifindex 0 (decline) otherwise.
   */
  syncSlot(slot: number, dests: DestTable, nextHops: NextHopTable, egress: FastEgress): void {
    if (slot < 0 || slot >= this.slots) return;
    const w = (slot * FAST_HOP_BYTES + HOP_IFINDEX) >>> 2;
    let ifindex = 0;
    const flags = dests.get(slot, DestField.FLAGS);
    const fwd = dests.get(slot, DestField.FWD);
    if ((flags & (DestFlag.IN_USE | DestFlag.AVAILABLE)) === (DestFlag.IN_USE | DestFlag.AVAILABLE) &&
        fastMethod(fwd) && egress.serviceActive(dests.get(slot, DestField.SERVICE))) {
      const hop = nextHops.flags(slot);
      // On an egress whose MTU is no smaller than any captured interface's, so that any frame
      // (or GSO segment) the program takes fits it; DR and NAT also on-link. TUN is routed (a
      // gateway's MACs are as good); the program checks each frame against the egress MTU with
      // the outer header (bpf_check_mtu), and a super-frame's segments shrink by that header.
      const tun = fwd === ForwardMethod.TUNNEL;
      if ((hop & NextHopFlag.VALID) !== 0 && (tun || (hop & NextHopFlag.VIA_GATEWAY) === 0) && nextHops.mtu(slot) >= egress.maxMtu()) {
        ifindex = egress.ifindex(nextHops.egress(slot));
      }
    }
    // Declined while the MACs change, then the ifindex last: the program reads them unlocked.
    Atomics.store(this.words, w, 0);
    if (ifindex === 0) return;
    const src = slot * NEXT_HOP_RECORD_BYTES;
    this.hops.set(nextHops.bytes.subarray(src, src + 12), slot * FAST_HOP_BYTES);
    Atomics.store(this.words, w, ifindex);
  }

  /** syncSlot for every slot (start, interfaces changed, the periodic check). */
  syncAll(dests: DestTable, nextHops: NextHopTable, egress: FastEgress): void {
    for (let slot = 0; slot < this.slots; slot++) {
      if (dests.get(slot, DestField.FLAGS) !== 0 || this.words[(slot * FAST_HOP_BYTES + HOP_IFINDEX) >>> 2] !== 0) {
        this.syncSlot(slot, dests, nextHops, egress);
      }
    }
  }

  /** The record's ifindex (0: the program declines the slot's frames). */
  ifindexOf(slot: number): number {
    return this.words[(slot * FAST_HOP_BYTES + HOP_IFINDEX) >>> 2]!;
  }

  /** Packets the program forwarded for `slot` since start. */
  packets(slot: number): number {
    return this.u64(slot * FAST_HOP_BYTES + HOP_PACKETS);
  }

  /** Folds what the records gained since the last fold into `counters`: each real server and its
   *  service (IPVS counts a packet in both). Skipped when the last fold is fresher than
   *  FOLD_MAX_AGE_MS, unless `force`. */
  fold(dests: DestTable, force = false): void {
    const now = performance.now();
    if (!force && now - this.foldedAt < FOLD_MAX_AGE_MS) return;
    this.foldedAt = now;
    const c = this.counters.cells;
    const destBase = this.counters.destBase;
    for (let slot = 0; slot < this.slots; slot++) {
      const at = slot * FAST_HOP_BYTES;
      const w = (at + HOP_PACKETS) >>> 2;
      const wo = (at + HOP_OUT_PACKETS) >>> 2;
      if ((this.words[w]! | this.words[w + 1]! | this.words[wo]! | this.words[wo + 1]!) === 0) continue;
      const f = slot * FOLDED_CELLS;
      const pin = this.u64(at + HOP_PACKETS);
      const pout = this.u64(at + HOP_OUT_PACKETS);
      const dpIn = pin - this.folded[f]!;
      const dpOut = pout - this.folded[f + 2]!;
      if (dpIn <= 0 && dpOut <= 0) continue;
      const bin = this.u64(at + HOP_BYTES);
      const bout = this.u64(at + HOP_OUT_BYTES);
      const dbIn = bin - this.folded[f + 1]!;
      const dbOut = bout - this.folded[f + 3]!;
      this.folded[f] = pin;
      this.folded[f + 1] = bin;
      this.folded[f + 2] = pout;
      this.folded[f + 3] = bout;
      const d = destBase + slot * STAT_CELLS;
      c[d + Stat.INPKTS]! += dpIn;
      c[d + Stat.INBYTES]! += dbIn;
      c[d + Stat.OUTPKTS]! += dpOut;
      c[d + Stat.OUTBYTES]! += dbOut;
      const s = dests.get(slot, DestField.SERVICE) * STAT_CELLS;
      if (s >= 0 && s < destBase) {
        c[s + Stat.INPKTS]! += dpIn;
        c[s + Stat.INBYTES]! += dbIn;
        c[s + Stat.OUTPKTS]! += dpOut;
        c[s + Stat.OUTBYTES]! += dbOut;
      }
    }
  }

  /** Packets the program forwarded, all real servers, both directions. */
  totalPackets(): number {
    let n = 0;
    for (let slot = 0; slot < this.slots; slot++) n += this.folded[slot * FOLDED_CELLS]! + this.folded[slot * FOLDED_CELLS + 2]!;
    return n;
  }

  close(): void {
    this.maps.close();
  }

  /** A u64 the program adds to atomically, read as two words without allocating: the high word
   *  is read again to catch a carry between the two loads. */
  private u64(byteOffset: number): number {
    const i = byteOffset >>> 2;
    for (;;) {
      const hi = Atomics.load(this.words, i + 1);
      const lo = Atomics.load(this.words, i);
      if (Atomics.load(this.words, i + 1) === hi) return hi * 4294967296 + lo;
    }
  }
}
