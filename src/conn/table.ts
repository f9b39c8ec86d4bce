// The connection table: IPVS's ip_vs_conn_tab rebuilt in one SharedArrayBuffer that every
// data-plane worker maps, so that a NAT reply arriving on any worker finds the entry the
// client's first packet created on another.
//
// Memory layout (Int32 cells, one SharedArrayBuffer):
//
//   [ header: HEADER_CELLS ][ entries: capacity × ENTRY_CELLS ][ forward index ][ reply index ]
//   [ taken bitmap: capacity / 32 ]
//
// - An entry is 16 cells (64 bytes: one cache line, the entries start on a line boundary), the
//   fields of struct ip_vs_conn that the data path needs (see EntryCell), key included, plus
//   the next hop toward the client (NAT replies) and the traffic figures the flood defence
//   judges entries by. No allocation per connection.
// - Entries are placed by hash: a new entry takes the slot its forward key's hash predicts
//   (slot = home bucket / 2, see predictedSlot) or its buddy in the same aligned 128-byte pair
//   when one is free, which it is for most entries (all of them in an empty table, 2 in 3 when
//   a table fills to the brim: 1 - load² on arrival), and any free slot otherwise (the first clear bit of the taken bitmap after this thread's own
//   cursor, so workers do not chase one shared free-list head). A lookup therefore loads the
//   home bucket and the predicted entry lines at the same time, independent loads: when the
//   bucket names a predicted slot, which is the common case, the hit costs one DRAM round
//   trip instead of two dependent ones. Entries never move once placed (ConnRef.index, the
//   templates' links and the reply index rely on that).
// - Two open-addressing indexes with linear probing, each 2 × capacity int32 buckets
//   (16 bytes per entry for the two), so a full table runs at load factor 0.5.
//   Total: 64 + 16 + 1/8 = 80.125 bytes per entry, indexes and bitmap included.
//   - forward index, key (protocol, template bit, caddr, cport, vaddr, vport): ip_vs_conn_in_get
//     and ip_vs_ct_in_get;
//   - reply index, key (protocol, daddr, dport, caddr, cport): ip_vs_conn_out_get, for NAT
//     replies from the real server. Only MASQ entries that are not templates are in it.
//   A bucket holds 0 (empty) or (tag << 24) | (entry + 1). The home bucket comes from the high
//   bits of the 32-bit hash (multiply-shift range reduction), the tag is its low 8 bits, so a
//   probe that meets another key's bucket usually does not touch that entry's memory. Hence
//   the capacity limit MAX_CAPACITY (24 bits of entry number).
//
// IPv6 plan: META has a 2-bit address family (0 = IPv4, the only one written today). IPv6
// entries will take a pair of consecutive slots (the second holding the three upper words of
// caddr, vaddr and daddr), allocated together from a separate pair free list; the hash will
// fold all four words of each address and the key compare will check the second slot only when
// the family says IPv6. The index encoding and the concurrency rules below do not change.
//
// Concurrency model (workers are threads of one process; all share this buffer):
//
// 1. Readers (lookups, every packet) take no lock. They load a bucket, then (Atomics.load) the
//    entry's SEQ word, compare the key, copy what they need into a caller-owned ConnRef and
//    load SEQ again: SEQ carries a generation that changes whenever the slot is freed or
//    reused, so a reader never takes a half-written or recycled entry for a live one. The
//    bucket load is a plain one (an Atomics.load costs ~10 ns here): the SEQ load's address
//    depends on the bucket's value, so neither the compiler nor the CPU (x86-64 or arm64)
//    can perform it first, and the writer stored SEQ before the bucket.
// 2. The immutable part of an entry (key, destination, forwarding method, owner) is written
//    once by the worker that creates it, before the entry is published in the indexes, and
//    never changes while it is live. Its slot is freed only by that worker (its owner), in its
//    expiry sweep, like IPVS's per-connection timer firing on one CPU. Any worker may mark an
//    entry DEAD (expire_now, an invalid template): lookups skip it at once, and its owner
//    frees it at its next sweep. A worker that replaces a dead one takes its worker id, or a
//    live worker adopts the dead one's entries (adopt()); otherwise they are never freed.
// 3. The mutable part (STATE word, EXPIRES, TIMEOUT) follows packets of both directions, which
//    may arrive on any worker. STATE changes (and the ACTIVE/INACTIVE counter moves they
//    imply) are made under the entry's own lock: the BUSY bit of SEQ taken with
//    Atomics.compareExchange, as IPVS takes cp->lock in tcp_state_transition. The per-packet
//    expiry refresh is a single Atomics.store. Template reference counts (CONTROL of a
//    template, IPVS's n_control) are raised under the template's entry lock (holdTemplate),
//    so an owner can never free a template that a new connection is being linked to, and
//    lowered with Atomics.sub.
// 4. The indexes change only on connection creation and deletion, never per packet, under one
//    table-wide spin lock (Atomics.compareExchange on H_LOCK). Insertion writes the entry
//    first and then stores the bucket (Atomics.store), so a reader that sees the bucket sees
//    the entry. Deletion uses backward-shift deletion, not tombstones: tombstones never go away
//    on their own under churn, and a table that runs for months would fill with them and make
//    every miss a full scan. Backward shift can make a concurrent reader miss a key that is
//    being moved past it, and a bucket it empties can take a new entry behind a reader; so a
//    deletion bumps H_VERSION to odd before it touches the index and to even after, and a
//    reader that misses confirms the miss by probing again between two equal, even loads of
//    H_VERSION. Hits need no confirmation: a bucket value is always
//    a real entry, checked by its SEQ. So the common case (a hit) costs no extra shared load.
//    (test/conn/workers.test.ts shows the race is real: without the confirmation, lookups
//    from one thread miss keys that another thread's deletions are shifting.)
//    Both locks spin briefly (their holders keep them for a few dozen stores), then sleep in
//    50 µs Atomics.wait steps, since a holder may be preempted when threads outnumber cores.
//    A lock held for 5 s (lockGiveUpMs) belongs to a thread that died (a worker terminated
//    mid-operation): it is taken over and counted (LOCK_TAKEOVERS), so one dead worker never
//    stops the others. What it left half done is at worst a duplicated or missing bucket,
//    which lookups tolerate and deletions repair (INDEX_REPAIRS).
//
// Times are milliseconds on one clock shared by all threads (connNowMs), stored modulo 2^32 and
// compared by signed difference, so they wrap safely; every timeout is clamped below 2^31 ms
// (24.8 days).

import { performance } from 'node:perf_hooks';
import { DEST_SLOT_CELLS, DestField, DestFlag, ForwardMethod, type DestTable } from '../tables/dest-table';
import { UvsError } from '../runtime/errors';
import { defaultDefense, evictReason, type EvictionSink } from './defense';

/** Errors of the connection table, with a stable code: UVS_CONN_BUFFER (attaching to a buffer
 *  that holds no table of that size), UVS_CONN_OWNER (removing another worker's entry).
 *  Argument errors are RangeErrors. The data path never throws: see takeovers/repairs. */
export class ConnTableError extends UvsError {
  constructor(code: 'UVS_ERR_CONN_BUFFER' | 'UVS_ERR_CONN_OWNER', message: string) {
    super(code, message);
  }
}

/** Header cells. LOCK and VERSION sit on their own 64-byte lines: both are written from any
 *  worker, and VERSION is read on every confirmed miss. */
export const enum HeaderCell {
  LOCK = 0,
  VERSION = 16,
  MAGIC = 32,
  CAPACITY = 33,
  BUCKETS = 34,
  /** Live entries. */
  COUNT = 35,
  /** Slots [0, BUMP) have been used at least once (walks stop there); the rest never were. */
  BUMP = 37,
  /** New connections refused because the table was full. */
  REFUSED = 38,
  SEED = 39,
  /** IPVS sysctls (net.ipv4.vs.*), shared so that every worker sees a change at once. */
  SLOPPY_TCP = 40,
  EXPIRE_NODEST_CONN = 41,
  EXPIRE_QUIESCENT_TEMPLATE = 42,
  CONN_REUSE_MODE = 43,
  /** Timeouts in ms: TCP states 0..10 at TIMEOUTS + state, UDP at TIMEOUTS + UDP_TIMEOUT_SLOT. */
  TIMEOUTS = 44,
  /** Locks taken over from a holder that kept them past lockGiveUpMs (it died). */
  LOCK_TAKEOVERS = 56,
  /** Deletions that did not find their entry in an index (left behind by a thread that died
   *  inside an index change); the deletion goes on. */
  INDEX_REPAIRS = 57,
  /** Flood defence knobs (defense.ts): net.ipv4.vs.drop_entry, drop_packet, secure_tcp,
   *  amemthresh (here: free slots), am_droprate. */
  DROP_ENTRY = 58,
  DROP_PACKET = 59,
  SECURE_TCP = 60,
  AMEMTHRESH = 61,
  AM_DROPRATE = 62,
}
export const UDP_TIMEOUT_SLOT = 11;
export const HEADER_CELLS = 64;
const MAGIC = 0x75767363; // "uvsc"

/** Cells of one entry. */
export const enum EntryCell {
  /** bit 0 BUSY (entry lock), bit 1 LIVE, bits 2.. generation (changes on free and reuse). */
  SEQ = 0,
  /** Immutable: Meta bits (protocol, family, template, forwarding method, owner worker). */
  META = 1,
  CADDR = 2,
  VADDR = 3,
  /** cport << 16 | vport. */
  PORTS = 4,
  DADDR = 5,
  /** dport << 16 | DestTable slot bits 0..15 (the slot's bits 16..23 are META's DEST_HI; the
   *  whole slot is NO_DEST = none). */
  DPORT_DEST = 6,
  /** Mutable under the entry lock: protocol state | StateFlag bits. */
  STATE = 7,
  /** When the entry expires, ms modulo 2^32. */
  EXPIRES = 8,
  /** Current timeout in ms (IPVS cp->timeout), re-armed on each packet. */
  TIMEOUT = 9,
  /** Normal entry: its template + 1 (0 = none, IPVS cp->control).
   *  Template: how many entries it controls (IPVS n_control), changed with Atomics.add. */
  CONTROL = 10,
  /** Packets seen in the client's direction (IPVS in_pkts, for the sync threshold later). */
  IN_PKTS = 11,
  /** The next hop toward the client (NAT replies), written once by the creating worker from the
   *  frame of the client's first packet: HOP_A = its source MAC bytes 0..3 (the client itself
   *  on-link, else the router in front of it), HOP_B = source MAC bytes 4..5 << 16 | destination
   *  MAC (the director's own on that interface) bytes 0..1, HOP_C = destination MAC bytes 2..5.
   *  Valid only when TRAFFIC has HOP_VALID. */
  HOP_A = 12,
  HOP_B = 13,
  HOP_C = 14,
  /** Traffic bits (Traffic): client packets with payload and replies, both saturating at 255,
   *  the ingress interface of the client's first packet and HOP_VALID. */
  TRAFFIC = 15,
}
export const ENTRY_CELLS = 16;

/**
 * What the connection table asks of the in-kernel fast path about an OFFLOADED entry (the
 * implementation is src/dataplane/fast-path.ts's FastFlows; every thread that expires or frees
 * entries has one when the fast path is on).
 */
export interface ConnOffloadHook {
  /** Milliseconds since the fast path forwarded a packet of entry `index`, or -1 when the fast
   *  path does not hold it (then the entry expires by its own clock). Afterwards `inPackets` is
   *  the flow's in_pkts counting the fast path's packets. */
  idleMs(table: ConnTable, index: number, counted?: boolean): number;
  readonly inPackets: number;
  /** Entry `index` is being freed (its key still readable): take it out of the fast path. */
  removed(table: ConnTable, index: number): void;
}

/** Bits of the TRAFFIC cell. The counters saturate, so once an entry has carried real traffic
 *  the data path stops writing them (a load, no store, per packet). */
export const enum Traffic {
  /** Client → server packets that carried payload (TCP/UDP data), 0..255. */
  DATA_MASK = 0xff,
  /** Server → client packets seen (NAT replies), 0..255. */
  REPLY_SHIFT = 8,
  REPLY_MASK = 0xff00,
  REPLY_ONE = 0x100,
  /** Data-plane index of the interface the client's first packet came in on. */
  HOP_IF_SHIFT = 16,
  HOP_IF_MASK = 0xff0000,
  /** HOP_A..HOP_C and HOP_IF hold the next hop toward the client. */
  HOP_VALID = 0x1000000,
  /** The flow is in the in-kernel fast path (src/dataplane/fast-path.ts): its packets may never
   *  reach user space, so expiry asks the fast path when it last saw one (ConnOffloadHook) and
   *  freeing the entry takes it out of the fast path. Set and cleared with Atomics.or/and. */
  OFFLOADED = 0x2000000,
  /** The flow left the fast path (a SYN, FIN or RST, a super-frame) or could not enter it (map
   *  full): it is never offloaded again. */
  NO_FAST = 0x4000000,
}

/** META bits. */
export const enum Meta {
  PROTO_MASK = 0xff,
  /** Address family: 0 = IPv4 (the only one today), 1 = IPv6 (planned). */
  FAMILY_SHIFT = 8,
  FAMILY_MASK = 0x300,
  /** IPVS IP_VS_CONN_F_TEMPLATE: a persistence template. */
  TEMPLATE = 0x400,
  /** The bits that are part of the forward key. */
  KEY_MASK = 0x7ff,
  /** ForwardMethod (IP_VS_CONN_F_FWD_MASK) in bits 11..12. */
  FWD_SHIFT = 11,
  FWD_MASK = 0x1800,
  /** IPVS IP_VS_CONN_F_NO_CPORT. */
  NO_CPORT = 0x2000,
  /** IPVS IP_VS_CONN_F_ONE_PACKET (ops): UDP entries that expire after one packet. */
  ONE_PACKET = 0x4000,
  OWNER_SHIFT = 16,
  OWNER_MASK = 0xff0000,
  /** Bits 16..23 of the DestTable slot (its bits 0..15 are in DPORT_DEST): immutable like the
   *  rest of META, so a 24-bit slot costs no cell and no extra load (META is read with the key). */
  DEST_HI_SHIFT = 24,
}

/** Flag bits of the STATE cell above the protocol state (bits 0..7). */
export const enum StateFlag {
  STATE_MASK = 0xff,
  /** IPVS IP_VS_CONN_F_INACTIVE: counted in the destination's INACTIVE, not ACTIVE. */
  INACTIVE = 0x100,
  /** IPVS IP_VS_CONN_F_NOOUTPUT: no reply seen (DR/TUN see none): the input-only TCP table. */
  NOOUTPUT = 0x200,
  /** Unreachable for lookups (IPVS unhashes an invalid template, expire_now): freed by the
   *  owner's sweep as soon as nothing refers to it. */
  DEAD = 0x400,
}

const SEQ_BUSY = 1;
const SEQ_LIVE = 2;
const SEQ_GEN_STEP = 4;

/** Lock waits: spin this many times, then sleep 50 µs per try (Atomics.wait). */
const SPINS_BEFORE_SLEEP = 64;
/** A lock held this long means its holder died (default of ConnTableOptions.lockGiveUpMs). */
const LOCK_GIVE_UP_MS = 5_000;

/** Entry numbers occupy 24 bits of a bucket. */
export const MAX_CAPACITY = 0xfffffd;
/** The DestTable slot of an entry without a destination: slots are 24 bits (DPORT_DEST's low
 *  16 and META's DEST_HI 8), so a DestTable may have up to NO_DEST (16,777,215) slots. */
export const NO_DEST = 0xffffff;
/** META bits that are local to this table (owner, real-server slot): not exported. */
const META_LOCAL = Meta.OWNER_MASK | (0xff << Meta.DEST_HI_SHIFT);

/** The DestTable slot (or NO_DEST) of an entry from its META and DPORT_DEST cells. */
export function entryDestSlot(meta: number, dportDest: number): number {
  return ((meta >>> Meta.DEST_HI_SHIFT) << 16) | (dportDest & 0xffff);
}
const IDX_MASK = 0xffffff;
/** IPVS expire_later: an expired template that still controls entries waits 60 s more. */
const EXPIRE_LATER_MS = 60_000;
/** Timeouts are stored as int32 ms and compared by signed difference. */
export const MAX_TIMEOUT_MS = 0x7fffffff;

/** Lookup result, filled in place (no allocation per packet). */
export class ConnRef {
  index = -1;
  /** SEQ at lookup time: pass back to the lock so a recycled slot is never changed. */
  seq = 0;
  meta = 0;
  daddr = 0;
  dport = 0;
  destSlot = -1;
  /** STATE cell at lookup time (protocol state | StateFlag). */
  state = 0;
  /** Normal entry: template + 1; template: n_control. */
  control = 0;
}

/** The blocks of ConnLookupBatch.io, `size` cells each, in this order (the native batched lookup,
 *  native/src/conn-lookup.cc IoField, reads the keys and writes the results by these numbers). */
export const enum BatchField {
  PROTO = 0,
  CADDR,
  CPORT,
  VADDR,
  VPORT,
  INDEX,
  SEQ,
  DADDR,
  DPORT,
  DEST_SLOT,
  STATE,
  META,
  CONTROL,
  HASH,
  WARM,
  COUNT,
}

/**
 * The native batched lookup (the addon's connLookupBatch): the same answers as lookupInBatch's
 * and lookupOutBatch's JS passes, with the misses of a batch overlapped by software prefetch.
 * Writes INDEX -1 for a miss, -2 for a miss the table's VERSION did not confirm; returns hits.
 */
export type ConnBatchLookup = (cells: Int32Array, io: Int32Array, n: number, reply: boolean) => number;

/** Keys in and results out of ConnTable.lookupInBatch, one slot per packet of a batch. All
 *  arrays are views of one Int32Array, `io` (BatchField blocks), so a native lookup takes the
 *  whole batch as one argument. */
export class ConnLookupBatch {
  readonly size: number;
  readonly io: Int32Array;
  readonly proto: Int32Array;
  readonly caddr: Int32Array;
  readonly cport: Int32Array;
  readonly vaddr: Int32Array;
  readonly vport: Int32Array;
  /** Entry number, or -1 for a miss. */
  readonly index: Int32Array;
  readonly seq: Int32Array;
  readonly daddr: Int32Array;
  readonly dport: Int32Array;
  readonly destSlot: Int32Array;
  readonly state: Int32Array;
  readonly meta: Int32Array;
  readonly control: Int32Array;
  /** Scratch of the warming passes. */
  readonly hash: Int32Array;
  readonly warm: Int32Array;
  readonly ref = new ConnRef();
  sink = 0;
  /** Set by the last lookup: true after lookupOutBatch (reply index), false after lookupInBatch. */
  reply = false;
  /** The table's `published` count (this thread's index insertions) when the batch was looked
   *  up: while it has not changed, the batch's misses still stand (ConnTable.batchResult). */
  published = -1;
  constructor(size: number) {
    if (!Number.isInteger(size) || size <= 0) throw new RangeError(`ConnLookupBatch: size must be a positive integer, got ${size}`);
    this.size = size;
    this.io = new Int32Array(size * BatchField.COUNT);
    const a = (f: BatchField): Int32Array => this.io.subarray(f * size, (f + 1) * size);
    this.proto = a(BatchField.PROTO);
    this.caddr = a(BatchField.CADDR);
    this.cport = a(BatchField.CPORT);
    this.vaddr = a(BatchField.VADDR);
    this.vport = a(BatchField.VPORT);
    this.index = a(BatchField.INDEX);
    this.seq = a(BatchField.SEQ);
    this.daddr = a(BatchField.DADDR);
    this.dport = a(BatchField.DPORT);
    this.destSlot = a(BatchField.DEST_SLOT);
    this.state = a(BatchField.STATE);
    this.meta = a(BatchField.META);
    this.control = a(BatchField.CONTROL);
    this.hash = a(BatchField.HASH);
    this.warm = a(BatchField.WARM);
  }
}

/** One live entry as `uvsadm -c` lists it (control plane, allocates). */
export interface ConnListing {
  index: number;
  protocol: number;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  daddr: number;
  dport: number;
  destSlot: number;
  /** Protocol state number (TcpState for TCP). */
  state: number;
  /** ms until it expires (0 when overdue). */
  expiresMs: number;
  template: boolean;
  forward: ForwardMethod;
  owner: number;
  inactive: boolean;
  /** Template: entries it controls; normal entry: 1 when controlled by a template. */
  control: number;
}

/** This thread's time origin (fixed per thread). `performance` is imported, not the global: the
 *  global is an accessor property, so each use of it paid a getter call (about 20 ns per read,
 *  several reads per batch on the worker's hot path). */
const TIME_ORIGIN = performance.timeOrigin;

/** The clock every thread must use for table times: performance.now() alone differs per
 *  worker (each has its own time origin). Milliseconds, fractional. */
export function connNowMs(): number {
  return TIME_ORIGIN + performance.now();
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Slot `i` of `batch` takes the hit in `ref`. */
function storeResult(batch: ConnLookupBatch, i: number, ref: ConnRef): void {
  batch.index[i] = ref.index;
  batch.seq[i] = ref.seq;
  batch.daddr[i] = ref.daddr;
  batch.dport[i] = ref.dport;
  batch.destSlot[i] = ref.destSlot;
  batch.state[i] = ref.state;
  batch.meta[i] = ref.meta;
  batch.control[i] = ref.control;
}

/** Bytes per entry, indexes included: a 64-byte entry, two 8-byte bucket pairs and one bit of
 *  the taken bitmap. */
export const CONN_ENTRY_BYTES = (ENTRY_CELLS + 4) * 4 + 1 / 8;

/** Bytes of the SharedArrayBuffer for `capacity` entries. */
export function connTableBytes(capacity: number): number {
  return (HEADER_CELLS + capacity * ENTRY_CELLS + 4 * capacity + Math.ceil(capacity / 32)) * 4;
}

/** IPVS's default TCP timeouts (ip_vs_proto_tcp.c tcp_timeouts) and UDP's, in ms. */
export const DEFAULT_TIMEOUTS_MS: readonly number[] = [
  2_000, // NONE
  900_000, // ESTABLISHED
  120_000, // SYN_SENT
  60_000, // SYN_RECV
  120_000, // FIN_WAIT
  120_000, // TIME_WAIT
  10_000, // CLOSE
  60_000, // CLOSE_WAIT
  30_000, // LAST_ACK
  120_000, // LISTEN
  120_000, // SYNACK
  300_000, // UDP (ip_vs_proto_udp.c udp_timeouts[IP_VS_UDP_S_NORMAL])
];

export interface ConnTableOptions {
  /** This thread's worker id, 0..255: the owner written into entries it creates. */
  workerId: number;
  /** Attach to a table created elsewhere (another thread). */
  buffer?: SharedArrayBuffer;
  /** Hash seed of a new table (tests and benchmarks that need one layout); random otherwise. */
  seed?: number;
  /** `buffer` is new and zero-filled (for example memory the native addon allocated and
   *  advised for huge pages): create the table in it instead of attaching to it. */
  fresh?: boolean;
  /** A lock held longer than this (ms) is taken over: its holder died (a worker terminated
   *  inside a few stores). Default 5000. */
  lockGiveUpMs?: number;
  /** The addon's connLookupBatch: lookupInBatch and lookupOutBatch use it instead of their JS
   *  passes (the data-plane workers pass it; without it the JS passes run). */
  batchLookup?: ConnBatchLookup | null;
}

export class ConnTable {
  readonly capacity: number;
  readonly buckets: number;
  readonly buffer: SharedArrayBuffer;
  readonly workerId: number;
  readonly dests: DestTable;
  /** All cells; header at 0. */
  readonly cells: Int32Array;
  private readonly entryBase: number;
  private readonly fwdBase: number;
  private readonly replyBase: number;
  /** Bit i of the bitmap at takenBase: entry slot i holds a live entry (or is being filled).
   *  Changed only under the table lock. */
  private readonly takenBase: number;
  /** Where this thread looks for a free slot when the predicted one is taken (per thread). */
  private allocCursor = 0;
  private readonly seed: number;
  /** buckets / 2^32: a hash maps to bucket floor(h * scale) (Lemire's multiply-shift range
   *  reduction; the exact product never reaches `buckets`). It uses the high bits of the hash,
   *  so the bucket tag takes the low 8. */
  private readonly scale: number;
  /** Lookups of this thread whose first probe missed a key a concurrent deletion was shifting,
   *  and that the confirming probe found (observability of the race the VERSION word closes). */
  recoveredMisses = 0;
  /** Where the warming loads go, so the compiler keeps them. */
  warmSink = 0;
  /** Index insertions (new entries, imports) made through this object, i.e. by this thread:
   *  a batch looked up before the last one may hold misses that are hits now (batchResult). */
  published = 0;
  /** Lookup scratch for the table's own use (template uniqueness). */
  private readonly scratch = new ConnRef();
  private readonly lockGiveUpMs: number;
  /** Sweep position of this worker (entries), per thread. */
  private sweepCursor = 0;
  /** Where this thread's drop_entry evictions are counted (the worker's counters), or null. */
  evictionSink: EvictionSink | null = null;
  /** The in-kernel fast path, when on: asked before an OFFLOADED entry expires, told when one is freed. */
  offloadHook: ConnOffloadHook | null = null;
  /** Entries this thread evicted (drop_entry), all reasons. */
  evictions = 0;
  /** The native batched lookup (ConnTableOptions.batchLookup), or null for the JS passes. */
  batchLookup: ConnBatchLookup | null;
  /** drop_packet's countdown (IPVS drop_counter), per thread. */
  private dropCounter = 0;

  constructor(capacity: number, dests: DestTable, options: ConnTableOptions) {
    if (!Number.isInteger(capacity) || capacity <= 0 || capacity > MAX_CAPACITY) {
      throw new RangeError(`ConnTable: capacity (--conn-max) must be an integer in 1..${MAX_CAPACITY}, got ${capacity}`);
    }
    const { workerId } = options;
    if (!Number.isInteger(workerId) || workerId < 0 || workerId > 255) {
      throw new RangeError(`ConnTable: workerId must be an integer in 0..255, got ${workerId}`);
    }
    if (dests.capacity > NO_DEST) {
      throw new RangeError(`ConnTable: entries keep a real server in 24 bits, so the DestTable may have at most ${NO_DEST} slots, not ${dests.capacity}`);
    }
    const bytes = connTableBytes(capacity);
    if (options.buffer && options.buffer.byteLength !== bytes) {
      throw new RangeError(`ConnTable: buffer is ${options.buffer.byteLength} bytes, expected ${bytes} for capacity ${capacity}`);
    }
    this.capacity = capacity;
    this.buckets = 2 * capacity;
    this.scale = this.buckets / 0x100000000;
    this.workerId = workerId;
    this.dests = dests;
    this.buffer = options.buffer ?? new SharedArrayBuffer(bytes);
    this.cells = new Int32Array(this.buffer);
    this.entryBase = HEADER_CELLS;
    this.fwdBase = HEADER_CELLS + capacity * ENTRY_CELLS;
    this.replyBase = this.fwdBase + this.buckets;
    this.takenBase = this.replyBase + this.buckets;
    const c = this.cells;
    if (options.buffer && !options.fresh) {
      if (c[HeaderCell.MAGIC] !== MAGIC || c[HeaderCell.CAPACITY] !== capacity) {
        throw new ConnTableError('UVS_ERR_CONN_BUFFER', `ConnTable: buffer does not hold a connection table of capacity ${capacity}`);
      }
    } else {
      c[HeaderCell.CAPACITY] = capacity;
      c[HeaderCell.BUCKETS] = this.buckets;
      c[HeaderCell.SEED] = options.seed ?? (Math.random() * 0x100000000) | 0;
      c[HeaderCell.CONN_REUSE_MODE] = 1;
      for (let i = 0; i < DEFAULT_TIMEOUTS_MS.length; i++) c[HeaderCell.TIMEOUTS + i] = DEFAULT_TIMEOUTS_MS[i]!;
      const d = defaultDefense(capacity);
      c[HeaderCell.DROP_ENTRY] = d.dropEntry;
      c[HeaderCell.DROP_PACKET] = d.dropPacket;
      c[HeaderCell.SECURE_TCP] = d.secureTcp;
      c[HeaderCell.AMEMTHRESH] = d.amemthresh;
      c[HeaderCell.AM_DROPRATE] = d.amDroprate;
      // The bits past the last slot read as taken, so the free-slot search never returns them.
      if ((capacity & 31) !== 0) c[this.takenBase + (capacity >>> 5)] = -1 << (capacity & 31);
      Atomics.store(c, HeaderCell.MAGIC, MAGIC);
    }
    this.seed = c[HeaderCell.SEED]!;
    this.lockGiveUpMs = options.lockGiveUpMs ?? LOCK_GIVE_UP_MS;
    this.batchLookup = options.batchLookup ?? null;
    // Each worker starts its sweep at a different place so they do not walk in lockstep.
    this.sweepCursor = (workerId * 7919) % capacity;
    this.allocCursor = Math.floor((workerId * capacity) / 256) >>> 5;
  }

  // ---- knobs and counters ------------------------------------------------------------------

  get count(): number {
    return Atomics.load(this.cells, HeaderCell.COUNT);
  }
  get refused(): number {
    return Atomics.load(this.cells, HeaderCell.REFUSED);
  }
  /** Locks taken over from dead holders. */
  get lockTakeovers(): number {
    return Atomics.load(this.cells, HeaderCell.LOCK_TAKEOVERS);
  }
  /** Deletions that found their entry missing from an index (after a dead holder). */
  get indexRepairs(): number {
    return Atomics.load(this.cells, HeaderCell.INDEX_REPAIRS);
  }
  /** Counts a new connection that could not be created (full table). */
  countRefused(): void {
    Atomics.add(this.cells, HeaderCell.REFUSED, 1);
  }
  /** Fewer than AMEMTHRESH slots free: the table is under pressure (the kernel's nomem:
   *  availmem < amemthresh). */
  underPressure(): boolean {
    const c = this.cells;
    return this.capacity - Atomics.load(c, HeaderCell.COUNT) < c[HeaderCell.AMEMTHRESH]!;
  }

  /** Whether a defence knob (DROP_ENTRY, DROP_PACKET, SECURE_TCP) is on now: 3 always, 1 and 2
   *  while the table is under pressure (update_defense_level's modes), 0 never. */
  defenseOn(cell: HeaderCell): boolean {
    const mode = this.cells[cell]!;
    if (mode === 0) return false;
    return mode === 3 || this.underPressure();
  }

  /** IPVS ip_vs_todrop for a new connection: true when drop_packet says to drop this one (one in
   *  `rate`: amemthresh / (amemthresh − free) under pressure, am_droprate when always on). */
  dropPacketNow(): boolean {
    const c = this.cells;
    const mode = c[HeaderCell.DROP_PACKET]!;
    if (mode === 0) return false;
    let rate: number;
    if (mode === 3) {
      rate = c[HeaderCell.AM_DROPRATE]!;
    } else {
      const thresh = c[HeaderCell.AMEMTHRESH]!;
      const free = this.capacity - Atomics.load(c, HeaderCell.COUNT);
      if (free >= thresh) return false;
      rate = Math.floor(thresh / (thresh - free));
    }
    if (rate <= 0) return false;
    if (--this.dropCounter > 0) return false;
    this.dropCounter = rate;
    return true;
  }

  knob(cell: HeaderCell): number {
    return Atomics.load(this.cells, cell);
  }
  setKnob(cell: HeaderCell, value: number): void {
    Atomics.store(this.cells, cell, value | 0);
  }
  /** Timeout of TCP state `slot` (0..10) or UDP (UDP_TIMEOUT_SLOT), in ms. */
  timeoutMs(slot: number): number {
    return Atomics.load(this.cells, HeaderCell.TIMEOUTS + slot);
  }
  setTimeoutMs(slot: number, ms: number): void {
    if (slot < 0 || slot > UDP_TIMEOUT_SLOT) throw new RangeError(`ConnTable.setTimeoutMs: no timeout slot ${slot}`);
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`ConnTable.setTimeoutMs: timeout must be >= 0 ms, got ${ms}`);
    Atomics.store(this.cells, HeaderCell.TIMEOUTS + slot, Math.min(Math.round(ms), MAX_TIMEOUT_MS));
  }

  // ---- entry field access ------------------------------------------------------------------

  /** First cell of entry `index`. */
  base(index: number): number {
    return this.entryBase + index * ENTRY_CELLS;
  }
  field(index: number, cell: EntryCell): number {
    return this.cells[this.entryBase + index * ENTRY_CELLS + cell]!;
  }
  /** ms left before entry `index` expires (negative when overdue). */
  remainingMs(index: number, nowMs: number): number {
    return (Atomics.load(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.EXPIRES) - (nowMs | 0)) | 0;
  }
  isLive(index: number): boolean {
    return (Atomics.load(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.SEQ) & SEQ_LIVE) !== 0;
  }

  // ---- hashing -----------------------------------------------------------------------------

  private hashForward(keyMeta: number, caddr: number, ports: number, vaddr: number): number {
    let h = mix(this.seed ^ keyMeta, caddr);
    h = mix(h, vaddr);
    h = mix(h, ports);
    return finish(h ^ 12);
  }

  private hashReply(proto: number, daddr: number, ports: number, caddr: number): number {
    let h = mix(~this.seed ^ proto, daddr);
    h = mix(h, caddr);
    h = mix(h, ports);
    return finish(h ^ 12);
  }

  // ---- lookups (any thread, lock-free) -----------------------------------------------------

  /** IPVS ip_vs_conn_in_get: the entry of a packet from the client (caddr:cport → vaddr:vport).
   *  Templates are not found here. Fills `out` and returns true on a hit. */
  lookupIn(proto: number, caddr: number, cport: number, vaddr: number, vport: number, out: ConnRef): boolean {
    return this.lookupForward(proto & Meta.PROTO_MASK, caddr, cport, vaddr, vport, out);
  }

  /** IPVS ip_vs_ct_in_get: a persistence template with this key (cport is 0 for templates). */
  lookupTemplate(proto: number, caddr: number, cport: number, vaddr: number, vport: number, out: ConnRef): boolean {
    return this.lookupForward((proto & Meta.PROTO_MASK) | Meta.TEMPLATE, caddr, cport, vaddr, vport, out);
  }

  private lookupForward(keyMeta: number, caddr: number, cport: number, vaddr: number, vport: number, out: ConnRef): boolean {
    const ports = ((cport << 16) | (vport & 0xffff)) | 0;
    caddr |= 0;
    vaddr |= 0;
    const h = this.hashForward(keyMeta, caddr, ports, vaddr);
    // Load the predicted entry line alongside the bucket (independent loads, overlapped by the
    // CPU): when the bucket names that slot, the probe's entry reads hit the cache.
    this.warmSink ^= this.cells[this.entryBase + (((h >>> 0) * this.scale) >>> 1) * ENTRY_CELLS + EntryCell.CADDR]!;
    if (this.probeForward(h, keyMeta, caddr, ports, vaddr, out)) return true;
    return this.confirmMiss(h, keyMeta, caddr, ports, vaddr, out, true);
  }

  /** IPVS ip_vs_conn_out_get: the NAT entry of a reply from the real server
   *  (daddr:dport → caddr:cport). */
  lookupOut(proto: number, daddr: number, dport: number, caddr: number, cport: number, out: ConnRef): boolean {
    const ports = ((dport << 16) | (cport & 0xffff)) | 0;
    proto &= Meta.PROTO_MASK;
    daddr |= 0;
    caddr |= 0;
    const h = this.hashReply(proto, daddr, ports, caddr);
    if (this.probeReply(h, proto, daddr, ports, caddr, out)) return true;
    return this.confirmMiss(h, proto, daddr, ports, caddr, out, false);
  }

  /** A miss may be false while a deletion changes the index: probe again between two equal,
   *  even loads of VERSION. Waits out a deletion in progress (its thread may have been
   *  preempted holding VERSION odd: more threads than cores), sleeping 50 µs at a time after
   *  a short spin, but boundedly: after 2^16 rounds (seconds) it reports the miss rather
   *  than stall the worker for ever. */
  private confirmMiss(h: number, k0: number, a: number, ports: number, b: number, out: ConnRef, forward: boolean): boolean {
    const c = this.cells;
    for (let round = 0; round < 1 << 16; round++) {
      const v1 = Atomics.load(c, HeaderCell.VERSION);
      if ((v1 & 1) !== 0) {
        if (round >= SPINS_BEFORE_SLEEP) Atomics.wait(c, HeaderCell.VERSION, v1, 0.05);
        continue;
      }
      const hit = forward ? this.probeForward(h, k0, a, ports, b, out) : this.probeReply(h, k0, a, ports, b, out);
      if (hit) {
        this.recoveredMisses++;
        return true;
      }
      if (Atomics.load(c, HeaderCell.VERSION) === v1) return false;
    }
    return false;
  }

  /**
   * lookupIn for a batch of packets (the data plane handles packets in batches). At 1 M
   * entries a lookup's bucket and entry are DRAM misses; one packet at a time they are paid
   * one after the other. Here a first pass computes every hash, a second loads every home
   * bucket and predicted entry line (placement by hash, see the file header), all
   * independent loads the CPU overlaps, and a third loads the entries the buckets name that
   * were not the predicted ones (again independent of each other); the last pass is the
   * ordinary probe, on warm lines. Inputs and outputs are the typed arrays of `batch`;
   * returns the number of hits.
   */
  lookupInBatch(batch: ConnLookupBatch, n: number): number {
    if (this.batchLookup !== null) return this.lookupBatchNative(batch, n, false);
    const c = this.cells;
    const m = Math.min(n, batch.size);
    const { proto, caddr, cport, vaddr, vport, hash, warm } = batch;
    batch.reply = false;
    batch.published = this.published;
    const ib = this.fwdBase;
    const eb = this.entryBase;
    const scale = this.scale;
    for (let i = 0; i < m; i++) {
      const ports = ((cport[i]! << 16) | (vport[i]! & 0xffff)) | 0;
      hash[i] = this.hashForward(proto[i]! & Meta.PROTO_MASK, caddr[i]!, ports, vaddr[i]!);
    }
    let sink = 0;
    // Short loop bodies: many loads in flight at once.
    for (let i = 0; i < m; i++) {
      const b = ((hash[i]! >>> 0) * scale) | 0;
      warm[i] = c[ib + b]!;
      const p = eb + ((b >>> 1) & ~1) * ENTRY_CELLS + EntryCell.CADDR;
      sink ^= c[p]! ^ c[p + ENTRY_CELLS]!;
    }
    for (let i = 0; i < m; i++) {
      const v = warm[i]!;
      const h = hash[i]!;
      // Only the entry the probe will compare (same tag), unless it was a predicted one.
      if (v !== 0 && v >>> 24 === (h & 0xff) && ((v & IDX_MASK) - 1) >>> 1 !== (((h >>> 0) * scale) | 0) >>> 2) {
        sink ^= c[eb + ((v & IDX_MASK) - 1) * ENTRY_CELLS + EntryCell.CADDR]!;
      }
    }
    const ref = batch.ref;
    batch.sink = sink; // keeps the warming loads from being optimised away
    let hits = 0;
    for (let i = 0; i < m; i++) {
      const keyMeta = proto[i]! & Meta.PROTO_MASK;
      const ports = ((cport[i]! << 16) | (vport[i]! & 0xffff)) | 0;
      const h = hash[i]!;
      const hit =
        this.probeForward(h, keyMeta, caddr[i]!, ports, vaddr[i]!, ref) ||
        this.confirmMiss(h, keyMeta, caddr[i]!, ports, vaddr[i]!, ref, true);
      if (hit) {
        hits++;
        storeResult(batch, i, ref);
      } else {
        batch.index[i] = -1;
      }
    }
    return hits;
  }

  /**
   * lookupOut for a batch of NAT replies, warmed like lookupInBatch. The batch's caddr/cport
   * hold the reply's source (the real server: daddr:dport of the entry) and vaddr/vport its
   * destination (the client: caddr:cport of the entry), i.e. the packet's own addresses in order.
   */
  lookupOutBatch(batch: ConnLookupBatch, n: number): number {
    if (this.batchLookup !== null) return this.lookupBatchNative(batch, n, true);
    const c = this.cells;
    const m = Math.min(n, batch.size);
    const { proto, caddr, cport, vaddr, vport, hash, warm } = batch;
    batch.reply = true;
    batch.published = this.published;
    const ib = this.replyBase;
    for (let i = 0; i < m; i++) {
      const ports = ((cport[i]! << 16) | (vport[i]! & 0xffff)) | 0;
      const h = this.hashReply(proto[i]! & Meta.PROTO_MASK, caddr[i]!, ports, vaddr[i]!);
      hash[i] = h;
      warm[i] = c[ib + (((h >>> 0) * this.scale) | 0)]!;
    }
    let sink = 0;
    for (let i = 0; i < m; i++) {
      const v = warm[i]!;
      // Only the entry the probe will compare: same tag as the packet's hash.
      if (v !== 0 && v >>> 24 === (hash[i]! & 0xff)) sink ^= c[this.entryBase + ((v & IDX_MASK) - 1) * ENTRY_CELLS + EntryCell.CADDR]!;
    }
    batch.sink = sink;
    const ref = batch.ref;
    let hits = 0;
    for (let i = 0; i < m; i++) {
      const p = proto[i]! & Meta.PROTO_MASK;
      const ports = ((cport[i]! << 16) | (vport[i]! & 0xffff)) | 0;
      const h = hash[i]!;
      const hit = this.probeReply(h, p, caddr[i]!, ports, vaddr[i]!, ref) || this.confirmMiss(h, p, caddr[i]!, ports, vaddr[i]!, ref, false);
      if (hit) {
        hits++;
        storeResult(batch, i, ref);
      } else {
        batch.index[i] = -1;
      }
    }
    return hits;
  }

  /**
   * lookupInBatch (reply false) or lookupOutBatch (reply true) through the addon's
   * connLookupBatch: the same passes with software prefetch, so the misses of the whole batch
   * are in flight at once. Its misses are confirmed as a batch (VERSION even and unchanged
   * across it); those it could not confirm (-2) are looked up again here, one at a time, with
   * confirmMiss's waits.
   */
  private lookupBatchNative(batch: ConnLookupBatch, n: number, reply: boolean): number {
    const m = Math.min(n, batch.size);
    batch.reply = reply;
    batch.published = this.published;
    let hits = this.batchLookup!(this.cells, batch.io, m, reply);
    if (hits === m) return hits;
    const { index, proto, caddr, cport, vaddr, vport, ref } = batch;
    for (let i = 0; i < m; i++) {
      if (index[i] !== -2) continue;
      const hit = reply
        ? this.lookupOut(proto[i]!, caddr[i]!, cport[i]!, vaddr[i]!, vport[i]!, ref)
        : this.lookupIn(proto[i]!, caddr[i]!, cport[i]!, vaddr[i]!, vport[i]!, ref);
      if (hit) {
        hits++;
        storeResult(batch, i, ref);
      } else {
        index[i] = -1;
      }
    }
    return hits;
  }

  /**
   * Slot `i` of the last lookupInBatch / lookupOutBatch of `batch`, as a lookup made now would
   * give it: fills `out` and returns true on a hit. Between the batched lookup and the use of
   * one of its results, the frames before it in the batch were processed and may have changed
   * the table, so a result is taken only when it still holds:
   *   - a hit is re-read from its entry (warm in the cache): same generation (SEQ), live, not
   *     DEAD; its mutable cells (STATE, CONTROL) are read now, so a state change an earlier
   *     frame made (FIN, RST) is seen. An entry that died meanwhile (port reuse's expire_now,
   *     expire_nodest_conn) or was recycled is looked up again;
   *   - a miss stands while this thread has published no entry since the batch was looked up
   *     (`published`); otherwise (the first frame of a new flow created its entry, and this may
   *     be the flow's second frame) it is looked up again.
   * Entries are freed only by their owner's sweep, never inside a batch of this thread; what
   * other threads change meanwhile is the same race a lookup made a few microseconds earlier
   * would see (the table's concurrency rules above).
   */
  batchResult(batch: ConnLookupBatch, i: number, out: ConnRef): boolean {
    const index = batch.index[i]!;
    if (index >= 0) {
      if (this.reload(index, batch.seq[i]!, out)) return true;
    } else if (batch.published === this.published) {
      return false;
    }
    return batch.reply
      ? this.lookupOut(batch.proto[i]!, batch.caddr[i]!, batch.cport[i]!, batch.vaddr[i]!, batch.vport[i]!, out)
      : this.lookupIn(batch.proto[i]!, batch.caddr[i]!, batch.cport[i]!, batch.vaddr[i]!, batch.vport[i]!, out);
  }

  /** Entry `index` into `out` as a lookup would find it, if it is still generation `seq`
   *  (seqOf), live and not DEAD. Any thread. */
  refAt(index: number, seq: number, out: ConnRef): boolean {
    return this.reload(index, seq, out);
  }

  /** Raises the TRAFFIC counters of entry `index` to at least `data` client packets with payload
   *  and `replies` replies (what the fast path forwarded, which the data path never counted). */
  raiseTraffic(index: number, data: number, replies: number): void {
    const c = this.cells;
    const at = this.entryBase + index * ENTRY_CELLS + EntryCell.TRAFFIC;
    const d = Math.min(data, 255);
    const r = Math.min(replies, 255);
    for (let tries = 0; tries < 4; tries++) {
      const t = Atomics.load(c, at);
      let n = t;
      if ((n & Traffic.DATA_MASK) < d) n = (n & ~Traffic.DATA_MASK) | d;
      if ((n & Traffic.REPLY_MASK) >>> Traffic.REPLY_SHIFT < r) n = (n & ~Traffic.REPLY_MASK) | (r << Traffic.REPLY_SHIFT);
      if (n === t || Atomics.compareExchange(c, at, t, n) === t) return;
    }
  }

  /** Entry `index` as a lookup would find it, if it is still generation `seq`, live and not DEAD. */
  private reload(index: number, seq: number, out: ConnRef): boolean {
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    const s1 = Atomics.load(c, e + EntryCell.SEQ);
    if ((s1 | SEQ_BUSY) !== (seq | SEQ_BUSY) || (s1 & SEQ_LIVE) === 0) return false;
    const state = c[e + EntryCell.STATE]!;
    if ((state & StateFlag.DEAD) !== 0) return false;
    this.fill(out, e, index + 1, state);
    if ((Atomics.load(c, e + EntryCell.SEQ) | SEQ_BUSY) !== (s1 | SEQ_BUSY)) return false;
    out.seq = s1 & ~SEQ_BUSY;
    return true;
  }

  private probeForward(h: number, keyMeta: number, caddr: number, ports: number, vaddr: number, out: ConnRef): boolean {
    const c = this.cells;
    const nb = this.buckets;
    const ib = this.fwdBase;
    const tag = h & 0xff;
    let b = ((h >>> 0) * this.scale) | 0;
    for (let n = 0; n < nb; n++) {
      const v = c[ib + b]!;
      if (v === 0) return false;
      if (v >>> 24 === tag) {
        const e = this.entryBase + ((v & IDX_MASK) - 1) * ENTRY_CELLS;
        const s1 = Atomics.load(c, e + EntryCell.SEQ);
        if (
          (s1 & SEQ_LIVE) !== 0 &&
          (c[e + EntryCell.META]! & Meta.KEY_MASK) === keyMeta &&
          c[e + EntryCell.CADDR] === caddr &&
          c[e + EntryCell.PORTS] === ports &&
          c[e + EntryCell.VADDR] === vaddr
        ) {
          const state = c[e + EntryCell.STATE]!;
          if ((state & StateFlag.DEAD) === 0) {
            this.fill(out, e, v, state);
            if ((Atomics.load(c, e + EntryCell.SEQ) | SEQ_BUSY) === (s1 | SEQ_BUSY)) {
              out.seq = s1 & ~SEQ_BUSY;
              return true;
            }
          }
        }
      }
      if (++b === nb) b = 0;
    }
    return false;
  }

  private probeReply(h: number, proto: number, daddr: number, ports: number, caddr: number, out: ConnRef): boolean {
    const c = this.cells;
    const nb = this.buckets;
    const ib = this.replyBase;
    const tag = h & 0xff;
    let b = ((h >>> 0) * this.scale) | 0;
    for (let n = 0; n < nb; n++) {
      const v = c[ib + b]!;
      if (v === 0) return false;
      if (v >>> 24 === tag) {
        const e = this.entryBase + ((v & IDX_MASK) - 1) * ENTRY_CELLS;
        const s1 = Atomics.load(c, e + EntryCell.SEQ);
        if (
          (s1 & SEQ_LIVE) !== 0 &&
          (c[e + EntryCell.META]! & Meta.PROTO_MASK) === proto &&
          c[e + EntryCell.DADDR] === daddr &&
          c[e + EntryCell.CADDR] === caddr &&
          ((c[e + EntryCell.DPORT_DEST]! & 0xffff0000) | (c[e + EntryCell.PORTS]! >>> 16)) === ports
        ) {
          const state = c[e + EntryCell.STATE]!;
          if ((state & StateFlag.DEAD) === 0) {
            this.fill(out, e, v, state);
            if ((Atomics.load(c, e + EntryCell.SEQ) | SEQ_BUSY) === (s1 | SEQ_BUSY)) {
              out.seq = s1 & ~SEQ_BUSY;
              return true;
            }
          }
        }
      }
      if (++b === nb) b = 0;
    }
    return false;
  }

  private fill(out: ConnRef, e: number, bucket: number, state: number): void {
    const c = this.cells;
    out.index = (bucket & IDX_MASK) - 1;
    const meta = c[e + EntryCell.META]!;
    out.meta = meta;
    out.daddr = c[e + EntryCell.DADDR]! >>> 0;
    const dd = c[e + EntryCell.DPORT_DEST]!;
    out.dport = dd >>> 16;
    const slot = entryDestSlot(meta, dd);
    out.destSlot = slot === NO_DEST ? -1 : slot;
    out.state = state;
    out.control = c[e + EntryCell.CONTROL]!;
  }

  // ---- the entry lock (state changes, from any worker) -------------------------------------

  /** Takes entry `index`'s lock if it is still the entry `seq` names (same generation, live).
   *  Returns false when the slot was freed or reused meanwhile. Spins (holders keep it for a
   *  few stores only), then sleeps in short waits. */
  lockEntry(index: number, seq: number): boolean {
    const c = this.cells;
    const at = this.entryBase + index * ENTRY_CELLS + EntryCell.SEQ;
    const expected = (seq & ~SEQ_BUSY) | SEQ_LIVE;
    let giveUpAt = 0;
    for (let spin = 0; ; spin++) {
      const old = Atomics.compareExchange(c, at, expected, expected | SEQ_BUSY);
      if (old === expected) return true;
      if ((old & ~SEQ_BUSY) !== expected) return false;
      if (spin >= SPINS_BEFORE_SLEEP) {
        giveUpAt = this.pause(at, old, giveUpAt, spin);
        // Its holder died: take the lock over as it is (the entry's cells are whole words).
        if (giveUpAt < 0 && Atomics.compareExchange(c, at, old, expected | SEQ_BUSY) === old) {
          Atomics.add(c, HeaderCell.LOCK_TAKEOVERS, 1);
          return true;
        }
        if (giveUpAt < 0) giveUpAt = 0;
      }
    }
  }

  /** Waits a little for a lock holder that is not running (more threads than cores: it may
   *  have been preempted inside its few stores). Returns the time to give up at, or -1 once
   *  it has passed: then the holder is dead (terminated mid-operation), and the caller takes
   *  the lock over rather than stall its worker for ever. */
  private pause(at: number, observed: number, giveUpAt: number, spin: number): number {
    Atomics.wait(this.cells, at, observed, 0.05);
    if ((spin & 63) !== 0) return giveUpAt;
    const now = Date.now();
    if (giveUpAt === 0) return now + this.lockGiveUpMs;
    return now > giveUpAt ? -1 : giveUpAt;
  }


  unlockEntry(index: number, seq: number): void {
    Atomics.store(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.SEQ, (seq & ~SEQ_BUSY) | SEQ_LIVE);
  }

  /** Current SEQ of an entry (for lockEntry), without the BUSY bit. */
  seqOf(index: number): number {
    return Atomics.load(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.SEQ) & ~SEQ_BUSY;
  }

  /** Writes the STATE cell; caller holds the entry lock. */
  setStateCell(index: number, state: number): void {
    Atomics.store(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.STATE, state);
  }

  /** IPVS ip_vs_conn_put: re-arms the expiry to now + the entry's current timeout. One store,
   *  lock-free: any worker may call it per packet. */
  touch(index: number, nowMs: number): void {
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    Atomics.store(c, e + EntryCell.EXPIRES, ((nowMs | 0) + c[e + EntryCell.TIMEOUT]!) | 0);
  }

  /** Sets the timeout (and re-arms the expiry); caller holds the entry lock. */
  setTimeout(index: number, timeoutMs: number, nowMs: number): void {
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    const t = Math.min(Math.max(0, Math.round(timeoutMs)), MAX_TIMEOUT_MS);
    Atomics.store(c, e + EntryCell.TIMEOUT, t);
    Atomics.store(c, e + EntryCell.EXPIRES, ((nowMs | 0) + t) | 0);
  }

  /** What `-L -c` shows as an entry's expiry: for an OFFLOADED one, counted from the last packet the
   *  fast path forwarded (its own clock stops while user space sees none), one syscall. */
  private listedRemainingMs(index: number, nowMs: number, foldPackets = false): number {
    const own = Math.max(0, this.remainingMs(index, nowMs));
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    const hook = this.offloadHook;
    if (hook === null || (Atomics.load(c, e + EntryCell.TRAFFIC) & Traffic.OFFLOADED) === 0) return own;
    const idle = hook.idleMs(this, index, false);
    if (idle < 0) return own;
    if (foldPackets) {
      // Raise in_pkts to what the flow carried (workers only ever add to it).
      const want = hook.inPackets | 0;
      for (let cur = Atomics.load(c, e + EntryCell.IN_PKTS); ((want - cur) | 0) > 0; cur = Atomics.load(c, e + EntryCell.IN_PKTS)) {
        if (Atomics.compareExchange(c, e + EntryCell.IN_PKTS, cur, want) === cur) break;
      }
    }
    return Math.max(own, Math.round(Atomics.load(c, e + EntryCell.TIMEOUT) - idle));
  }

  /** Counts a packet in the client's direction (IPVS in_pkts). */
  countInPacket(index: number): number {
    return Atomics.add(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.IN_PKTS, 1) + 1;
  }

  /** Counts a client packet that carried payload (saturating at 255; no store once there).
   *  Any worker, lock-free: a CAS lost to another worker's count is simply not retried. */
  countData(index: number): void {
    const c = this.cells;
    const at = this.entryBase + index * ENTRY_CELLS + EntryCell.TRAFFIC;
    const t = c[at]!;
    if ((t & Traffic.DATA_MASK) !== Traffic.DATA_MASK) Atomics.compareExchange(c, at, t, t + 1);
  }

  /** Sets TRAFFIC bits (Traffic.OFFLOADED, NO_FAST); returns the cell as it was. Any thread. */
  orTraffic(index: number, bits: number): number {
    return Atomics.or(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.TRAFFIC, bits);
  }

  /** Clears TRAFFIC bits; returns the cell as it was. Any thread. */
  clearTraffic(index: number, bits: number): number {
    return Atomics.and(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.TRAFFIC, ~bits);
  }

  /** Counts a reply from the real server (NAT), saturating at 255, like countData. */
  countReply(index: number): void {
    const c = this.cells;
    const at = this.entryBase + index * ENTRY_CELLS + EntryCell.TRAFFIC;
    const t = c[at]!;
    if ((t & Traffic.REPLY_MASK) !== Traffic.REPLY_MASK) Atomics.compareExchange(c, at, t, t + Traffic.REPLY_ONE);
  }

  /**
   * Records the next hop toward the client of entry `index`, which this worker has just
   * created: the frame of the client's first packet (Ethernet header at frame[l2]) came from
   * that next hop to our MAC on interface `ingress`. Only the creator calls it, once, so the
   * answer is exact per connection: later frames (spoofed sources, a colliding client address
   * on another interface) never change it. The MACs are stored before HOP_VALID is set (one
   * Atomics.or), so a reader that sees HOP_VALID sees them.
   */
  setClientHop(index: number, frame: Uint8Array, l2: number, ingress: number): void {
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    // Frame bytes 0..5 are the destination (our MAC), 6..11 the source (the next hop).
    c[e + EntryCell.HOP_A] = (frame[l2 + 6]! << 24) | (frame[l2 + 7]! << 16) | (frame[l2 + 8]! << 8) | frame[l2 + 9]!;
    c[e + EntryCell.HOP_B] = (frame[l2 + 10]! << 24) | (frame[l2 + 11]! << 16) | (frame[l2]! << 8) | frame[l2 + 1]!;
    c[e + EntryCell.HOP_C] = (frame[l2 + 2]! << 24) | (frame[l2 + 3]! << 16) | (frame[l2 + 4]! << 8) | frame[l2 + 5]!;
    Atomics.or(c, e + EntryCell.TRAFFIC, Traffic.HOP_VALID | ((ingress << Traffic.HOP_IF_SHIFT) & Traffic.HOP_IF_MASK));
  }

  /** Gives entry `index` a next hop toward the client exported with exportWithHops (HOP_CELLS
   *  cells at hops[at]), on data-plane interface `ingress` (which may differ from the exported
   *  one's number). No-op when the exported entry had none. */
  setClientHopCells(index: number, hops: Int32Array, at: number, ingress: number): void {
    if ((hops[at + 3]! & Traffic.HOP_VALID) === 0 || ingress < 0) return;
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    c[e + EntryCell.HOP_A] = hops[at]!;
    c[e + EntryCell.HOP_B] = hops[at + 1]!;
    c[e + EntryCell.HOP_C] = hops[at + 2]!;
    Atomics.or(c, e + EntryCell.TRAFFIC, Traffic.HOP_VALID | ((ingress << Traffic.HOP_IF_SHIFT) & Traffic.HOP_IF_MASK));
  }

  /** The interface toward the client of entry `index` (generation `seq`), or -1 when the entry
   *  has no next hop (created by connection sync) or is no longer `seq`. */
  clientHopEgress(index: number, seq: number): number {
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    const t = Atomics.load(c, e + EntryCell.TRAFFIC);
    if ((t & Traffic.HOP_VALID) === 0) return -1;
    if ((Atomics.load(c, e + EntryCell.SEQ) | SEQ_BUSY) !== (seq | SEQ_BUSY)) return -1;
    return (t & Traffic.HOP_IF_MASK) >>> Traffic.HOP_IF_SHIFT;
  }

  /**
   * Writes the Ethernet destination (the next hop toward the client) and source (our MAC on
   * that interface) of entry `index` at frame[l2..l2+12) and returns the egress interface, or
   * -1 (frame untouched) when the entry has no next hop or is no longer generation `seq`.
   */
  writeClientHop(index: number, seq: number, frame: Uint8Array, l2: number): number {
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    const t = Atomics.load(c, e + EntryCell.TRAFFIC);
    if ((t & Traffic.HOP_VALID) === 0) return -1;
    const a = c[e + EntryCell.HOP_A]!;
    const b = c[e + EntryCell.HOP_B]!;
    const d = c[e + EntryCell.HOP_C]!;
    // The slot was freed and maybe reused while we read: do not trust what we read.
    if ((Atomics.load(c, e + EntryCell.SEQ) | SEQ_BUSY) !== (seq | SEQ_BUSY)) return -1;
    // Destination: the next hop toward the client; source: our MAC on that interface.
    frame[l2] = a >>> 24;
    frame[l2 + 1] = (a >>> 16) & 0xff;
    frame[l2 + 2] = (a >>> 8) & 0xff;
    frame[l2 + 3] = a & 0xff;
    frame[l2 + 4] = b >>> 24;
    frame[l2 + 5] = (b >>> 16) & 0xff;
    frame[l2 + 6] = (b >>> 8) & 0xff;
    frame[l2 + 7] = b & 0xff;
    frame[l2 + 8] = d >>> 24;
    frame[l2 + 9] = (d >>> 16) & 0xff;
    frame[l2 + 10] = (d >>> 8) & 0xff;
    frame[l2 + 11] = d & 0xff;
    return (t & Traffic.HOP_IF_MASK) >>> Traffic.HOP_IF_SHIFT;
  }

  /** IPVS ip_vs_conn_expire_now: makes the entry unreachable for lookups at once and due for
   *  the owner's sweep. Any worker may call it. Returns false if the slot is no longer `seq`. */
  expireNow(index: number, seq: number, nowMs: number): boolean {
    if (!this.lockEntry(index, seq)) return false;
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    Atomics.store(c, e + EntryCell.STATE, c[e + EntryCell.STATE]! | StateFlag.DEAD);
    Atomics.store(c, e + EntryCell.EXPIRES, nowMs | 0);
    this.unlockEntry(index, seq);
    return true;
  }

  /** IPVS ip_vs_check_template's invalidation: unreachable for lookups from now on (the kernel
   *  rehashes it under ports 0xffff). Being unreachable, it is freed by the owner's next sweep
   *  once it controls nothing. Returns false if the slot is no longer `seq`. */
  invalidate(index: number, seq: number): boolean {
    if (!this.lockEntry(index, seq)) return false;
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    Atomics.store(c, e + EntryCell.STATE, c[e + EntryCell.STATE]! | StateFlag.DEAD);
    this.unlockEntry(index, seq);
    return true;
  }

  /** IPVS ip_vs_control_add, first half: counts one more entry controlled by template
   *  `index` (generation `seq`), under the template's lock so that its owner cannot be freeing
   *  it at the same moment. Returns false when the template is gone (schedule anew). */
  holdTemplate(index: number, seq: number): boolean {
    if (!this.lockEntry(index, seq)) return false;
    Atomics.add(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.CONTROL, 1);
    this.unlockEntry(index, seq);
    return true;
  }

  /** Undoes holdTemplate when the controlled entry could not be created. */
  releaseTemplate(index: number): void {
    Atomics.sub(this.cells, this.entryBase + index * ENTRY_CELLS + EntryCell.CONTROL, 1);
  }

  // ---- the table lock (index changes) ------------------------------------------------------

  private lockTable(): void {
    const c = this.cells;
    let giveUpAt = 0;
    for (let spin = 0; ; spin++) {
      if (Atomics.compareExchange(c, HeaderCell.LOCK, 0, 1) === 0) return;
      if (spin >= SPINS_BEFORE_SLEEP) {
        giveUpAt = this.pause(HeaderCell.LOCK, 1, giveUpAt, spin);
        if (giveUpAt < 0) {
          // Its holder died inside an index change: take the lock over. A deletion it left
          // half done leaves VERSION odd; make it even so readers trust their misses again.
          Atomics.add(c, HeaderCell.LOCK_TAKEOVERS, 1);
          if ((Atomics.load(c, HeaderCell.VERSION) & 1) !== 0) Atomics.add(c, HeaderCell.VERSION, 1);
          return;
        }
      }
    }
  }


  private unlockTable(): void {
    Atomics.store(this.cells, HeaderCell.LOCK, 0);
  }

  // ---- insertion (the creating worker) -----------------------------------------------------

  /**
   * IPVS ip_vs_conn_new + ip_vs_bind_dest + ip_vs_control_add: creates an entry owned by this
   * worker, counts it on its destination, links it to its template, publishes it in the
   * indexes. Returns the entry number, or -1 when the table is full (counted in REFUSED;
   * nothing else changes).
   *
   * `meta`: Meta.TEMPLATE / Meta.NO_CPORT / Meta.ONE_PACKET bits (protocol, forwarding method
   * and owner are filled in here). `state`: initial STATE cell (state | StateFlag bits).
   * `controlTemplate`: the template entry controlling it, or -1; the caller must hold it
   * (holdTemplate) before, so that it cannot be freed in between.
   *
   * Templates are unique: when another worker published a usable template with the same key
   * since our lookup, that one is returned instead of a new one (check its destination). The
   * kernel has this race between CPUs and lets two templates live; we close it because it is
   * cheap here (the check runs under the table lock, only when a template is created).
   */
  insert(
    proto: number,
    caddr: number,
    cport: number,
    vaddr: number,
    vport: number,
    daddr: number,
    dport: number,
    destSlot: number,
    forward: ForwardMethod,
    meta: number,
    state: number,
    timeoutMs: number,
    nowMs: number,
    controlTemplate: number,
  ): number {
    const c = this.cells;
    const slot = destSlot < 0 ? NO_DEST : destSlot & NO_DEST;
    const fullMeta =
      (proto & Meta.PROTO_MASK) |
      (meta & (Meta.TEMPLATE | Meta.NO_CPORT | Meta.ONE_PACKET)) |
      ((forward << Meta.FWD_SHIFT) & Meta.FWD_MASK) |
      (this.workerId << Meta.OWNER_SHIFT) |
      ((slot >>> 16) << Meta.DEST_HI_SHIFT);
    const ports = ((cport << 16) | (vport & 0xffff)) | 0;
    const t = Math.min(Math.max(0, Math.round(timeoutMs)), MAX_TIMEOUT_MS);
    const isTemplate = (meta & Meta.TEMPLATE) !== 0;
    // IPVS never hashes one-packet entries (ip_vs_conn_hash): every datagram is scheduled.
    const hashed = (meta & Meta.ONE_PACKET) === 0;
    const inReply = hashed && !isTemplate && forward === ForwardMethod.MASQ;
    const hf = this.hashForward(fullMeta & Meta.KEY_MASK, caddr | 0, ports, vaddr | 0);
    const hr = inReply ? this.hashReply(proto & Meta.PROTO_MASK, daddr | 0, ((dport << 16) | (cport & 0xffff)) | 0, caddr | 0) : 0;

    this.lockTable();
    if (isTemplate && this.probeForward(hf, fullMeta & Meta.KEY_MASK, caddr | 0, ports, vaddr | 0, this.scratch)) {
      this.unlockTable();
      return this.scratch.index;
    }
    if (c[HeaderCell.COUNT]! >= this.capacity) {
      this.unlockTable();
      Atomics.add(c, HeaderCell.REFUSED, 1);
      return -1;
    }
    const index = this.takeSlot(((hf >>> 0) * this.scale) >>> 1);
    if (index >= c[HeaderCell.BUMP]!) c[HeaderCell.BUMP] = index + 1;
    const e = this.entryBase + index * ENTRY_CELLS;
    // Readers that still hold a bucket of this slot's previous life see LIVE clear until the
    // final SEQ store, and a new generation after it.
    const gen = c[e + EntryCell.SEQ]! & ~(SEQ_BUSY | SEQ_LIVE);
    c[e + EntryCell.META] = fullMeta;
    c[e + EntryCell.CADDR] = caddr;
    c[e + EntryCell.VADDR] = vaddr;
    c[e + EntryCell.PORTS] = ports;
    c[e + EntryCell.DADDR] = daddr;
    c[e + EntryCell.DPORT_DEST] = ((dport << 16) | (slot & 0xffff)) | 0;
    c[e + EntryCell.STATE] = state;
    c[e + EntryCell.TIMEOUT] = t;
    c[e + EntryCell.EXPIRES] = ((nowMs | 0) + t) | 0;
    c[e + EntryCell.CONTROL] = isTemplate ? 0 : controlTemplate + 1;
    c[e + EntryCell.IN_PKTS] = 0;
    c[e + EntryCell.TRAFFIC] = 0;
    Atomics.store(c, e + EntryCell.SEQ, gen | SEQ_LIVE);
    if (hashed) this.publish(this.fwdBase, hf, index);
    if (inReply) this.publish(this.replyBase, hr, index);
    c[HeaderCell.COUNT] = c[HeaderCell.COUNT]! + 1;
    this.unlockTable();

    if (destSlot >= 0) this.bindDest(destSlot, isTemplate, (state & StateFlag.INACTIVE) !== 0);
    return index;
  }

  /** Marks a free entry slot taken and returns it: `predicted` when it is free (the lookups
   *  warm that line with the home bucket), else the first free one after this thread's cursor.
   *  Table lock held and COUNT < capacity, so a free slot exists. */
  private takeSlot(predicted: number): number {
    const c = this.cells;
    const tb = this.takenBase;
    // The predicted slot, else its buddy in the same aligned 128-byte pair (the lookups warm
    // both; they share one bitmap word).
    const pw = tb + (predicted >>> 5);
    const taken = c[pw]!;
    const pbit = 1 << (predicted & 31);
    if ((taken & pbit) === 0) {
      c[pw] = taken | pbit;
      return predicted;
    }
    const bbit = 1 << ((predicted ^ 1) & 31);
    if ((taken & bbit) === 0 && (predicted ^ 1) < this.capacity) {
      c[pw] = taken | bbit;
      return predicted ^ 1;
    }
    const words = (this.capacity + 31) >>> 5;
    let w = this.allocCursor;
    if (w >= words) w = 0;
    for (let n = 0; n <= words; n++) {
      const v = c[tb + w]!;
      if (v !== -1) {
        const low = ~v & (v + 1); // lowest clear bit
        c[tb + w] = v | low;
        this.allocCursor = w;
        return (w << 5) | (31 - Math.clz32(low));
      }
      if (++w === words) w = 0;
    }
    throw new RangeError('ConnTable: the taken bitmap has no free slot though COUNT < capacity');
  }

  /** The entry slot a forward hash predicts: its home bucket / 2 (there are 2 × capacity
   *  buckets), so the prediction needs no extra arithmetic beyond the bucket's. */
  predictedSlot(h: number): number {
    return ((h >>> 0) * this.scale) >>> 1;
  }

  /** Stores the bucket of entry `index` in the first empty bucket of its probe sequence.
   *  Table lock held; the table is never more than half full, so an empty bucket exists. */
  private publish(base: number, h: number, index: number): void {
    const c = this.cells;
    const nb = this.buckets;
    let b = ((h >>> 0) * this.scale) | 0;
    while (c[base + b] !== 0) if (++b === nb) b = 0;
    Atomics.store(c, base + b, ((h & 0xff) << 24) | (index + 1));
    this.published++;
  }

  /** Home bucket of the entry in bucket value `v` of the given index (re-hashed from its key). */
  private homeOf(forward: boolean, v: number): number {
    const c = this.cells;
    const e = this.entryBase + ((v & IDX_MASK) - 1) * ENTRY_CELLS;
    const meta = c[e + EntryCell.META]!;
    const h = forward
      ? this.hashForward(meta & Meta.KEY_MASK, c[e + EntryCell.CADDR]!, c[e + EntryCell.PORTS]!, c[e + EntryCell.VADDR]!)
      : this.hashReply(
          meta & Meta.PROTO_MASK,
          c[e + EntryCell.DADDR]!,
          ((c[e + EntryCell.DPORT_DEST]! & 0xffff0000) | (c[e + EntryCell.PORTS]! >>> 16)) | 0,
          c[e + EntryCell.CADDR]!,
        );
    return ((h >>> 0) * this.scale) | 0;
  }

  /** Removes entry `index` from one index by backward-shift deletion. Table lock held. */
  private unpublish(forward: boolean, index: number): void {
    const c = this.cells;
    const nb = this.buckets;
    const base = forward ? this.fwdBase : this.replyBase;
    let i = this.homeOf(forward, (index + 1) | 0);
    // Find the bucket that holds this entry. It is missing only if a thread died between
    // creating the entry and publishing it: nothing to remove then.
    for (let n = 0; ; n++) {
      const v = c[base + i]!;
      if ((v & IDX_MASK) === index + 1) break;
      if (v === 0 || n >= nb) {
        Atomics.add(c, HeaderCell.INDEX_REPAIRS, 1);
        return;
      }
      if (++i === nb) i = 0;
    }
    // Every deletion bumps VERSION, even one that moves nothing: emptying a bucket lets a new
    // entry be stored in it, behind a reader that has already passed it.
    Atomics.add(c, HeaderCell.VERSION, 1); // odd: readers distrust their misses
    let j = i;
    for (;;) {
      if (++j === nb) j = 0;
      const v = c[base + j]!;
      if (v === 0) break;
      const home = this.homeOf(forward, v);
      // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
      if ((j - home + nb) % nb >= (j - i + nb) % nb) {
        Atomics.store(c, base + i, v);
        i = j;
      }
    }
    Atomics.store(c, base + i, 0);
    Atomics.add(c, HeaderCell.VERSION, 1); // even again
  }

  // ---- destination counters (ip_vs_bind_dest / ip_vs_unbind_dest) --------------------------

  private bindDest(slot: number, template: boolean, inactive: boolean): void {
    const d = this.dests;
    if (template) d.add(slot, DestField.PERSIST, 1);
    else d.add(slot, inactive ? DestField.INACTIVE : DestField.ACTIVE, 1);
    const upper = d.get(slot, DestField.U_THRESHOLD);
    if (upper !== 0 && d.load(slot, DestField.ACTIVE) + d.load(slot, DestField.INACTIVE) >= upper) {
      Atomics.or(d.cells, d.base(slot) + DestField.FLAGS, DestFlag.OVERLOAD);
    }
  }

  private unbindDest(slot: number, template: boolean, inactive: boolean): void {
    const d = this.dests;
    if (template) d.add(slot, DestField.PERSIST, -1);
    else d.add(slot, inactive ? DestField.INACTIVE : DestField.ACTIVE, -1);
    clearOverload(d, slot);
  }

  /** Moves one connection between ACTIVE and INACTIVE of its destination (set_tcp_state). */
  moveActivity(slot: number, toActive: boolean): void {
    if (slot < 0) return;
    this.dests.add(slot, DestField.ACTIVE, toActive ? 1 : -1);
    this.dests.add(slot, DestField.INACTIVE, toActive ? -1 : 1);
  }

  // ---- expiry (the owner) ------------------------------------------------------------------

  /**
   * IPVS's per-connection timers as an incremental sweep: looks at `budget` entry slots from
   * where this worker stopped last time and frees those it owns that have expired. Bounded
   * work per call, so the worker loop never stalls. Returns how many entries were freed.
   */
  expire(nowMs: number, budget: number): number {
    const c = this.cells;
    const used = Atomics.load(c, HeaderCell.BUMP);
    if (used === 0) return 0;
    const now = nowMs | 0;
    const me = this.workerId;
    let freed = 0;
    let idx = this.sweepCursor;
    if (idx >= used) idx = 0;
    const steps = Math.min(budget, used);
    // expire_nodest_conn also drops, in the background, the entries of a real server that was
    // removed (Linux ≥ 5.9, ip_vs_expire_nodest_conn_flush), not only when a packet comes.
    const nodest = Atomics.load(c, HeaderCell.EXPIRE_NODEST_CONN) !== 0;
    const dcells = this.dests.cells;
    // drop_entry (defense.ts): under pressure, cheap entries go before their timeouts say.
    const thresh = c[HeaderCell.AMEMTHRESH]!;
    const free = this.capacity - Atomics.load(c, HeaderCell.COUNT);
    const dropMode = c[HeaderCell.DROP_ENTRY]!;
    const dropEntry = dropMode === 3 || (dropMode !== 0 && free < thresh);
    const pressure = thresh > 0 ? Math.min(1000, Math.max(0, Math.floor((free * 1000) / thresh))) : 0;
    const tb = this.takenBase;
    for (let k = 0; k < steps; k++) {
      // Placement by hash scatters entries over the whole table: 32 free slots (a clear bitmap
      // word) cost one step, so a sparse table is swept round as fast as a dense prefix was.
      if ((idx & 31) === 0 && c[tb + (idx >>> 5)] === 0) {
        idx += 32;
        if (idx >= used) idx = 0;
        continue;
      }
      const e = this.entryBase + idx * ENTRY_CELLS;
      const seq = Atomics.load(c, e + EntryCell.SEQ);
      if ((seq & SEQ_LIVE) !== 0 && ((c[e + EntryCell.META]! & Meta.OWNER_MASK) >>> Meta.OWNER_SHIFT) === me) {
        let due = ((now - Atomics.load(c, e + EntryCell.EXPIRES)) | 0) >= 0 || (c[e + EntryCell.STATE]! & StateFlag.DEAD) !== 0;
        if (!due && nodest) {
          const slot = entryDestSlot(c[e + EntryCell.META]!, c[e + EntryCell.DPORT_DEST]!);
          if (slot !== NO_DEST && (Atomics.load(dcells, slot * DEST_SLOT_CELLS + DestField.FLAGS) & DestFlag.AVAILABLE) === 0) {
            due = this.expireNow(idx, seq & ~SEQ_BUSY, now);
          }
        }
        if (due && this.offloadHook !== null && (Atomics.load(c, e + EntryCell.TRAFFIC) & Traffic.OFFLOADED) !== 0 &&
            (c[e + EntryCell.STATE]! & StateFlag.DEAD) === 0) {
          // Its packets go through the kernel: the entry lives as long as they keep coming.
          const idle = this.offloadHook.idleMs(this, idx, true);
          const timeout = Atomics.load(c, e + EntryCell.TIMEOUT);
          if (idle >= 0 && idle < timeout) {
            Atomics.store(c, e + EntryCell.EXPIRES, (now + Math.ceil(timeout - idle)) | 0);
            due = false;
          }
        }
        if (due) {
          if (this.expireEntry(idx, seq & ~SEQ_BUSY, now)) freed++;
        } else if (dropEntry) {
          const reason = evictReason(c, e, now, pressure);
          if (reason >= 0 && this.evictEntry(idx, seq & ~SEQ_BUSY, now, pressure, reason)) {
            freed++;
            this.evictions++;
            if (this.evictionSink !== null) this.evictionSink.evicted(reason);
          }
        }
      }
      if (++idx >= used) idx = 0;
    }
    this.sweepCursor = idx;
    return freed;
  }

  /**
   * Takes over the entries of worker `deadWorker` (a worker that crashed and will not come
   * back under its id), `budget` slots per call from `cursor`; returns the next cursor, or -1
   * when the walk is done. Only the owner bits of META change (one store under the entry
   * lock); the key bits readers compare are untouched.
   */
  adopt(deadWorker: number, cursor: number, budget: number): number {
    const c = this.cells;
    const used = Atomics.load(c, HeaderCell.BUMP);
    let index = Math.max(0, cursor);
    const end = Math.min(used, index + budget);
    for (; index < end; index++) {
      const e = this.entryBase + index * ENTRY_CELLS;
      const seq = Atomics.load(c, e + EntryCell.SEQ);
      if ((seq & SEQ_LIVE) === 0) continue;
      if (((c[e + EntryCell.META]! & Meta.OWNER_MASK) >>> Meta.OWNER_SHIFT) !== deadWorker) continue;
      if (!this.lockEntry(index, seq & ~SEQ_BUSY)) continue;
      Atomics.store(c, e + EntryCell.META, (c[e + EntryCell.META]! & ~Meta.OWNER_MASK) | (this.workerId << Meta.OWNER_SHIFT));
      this.unlockEntry(index, seq & ~SEQ_BUSY);
    }
    return index >= used ? -1 : index;
  }

  /** drop_entry's eviction of one entry this worker owns: judged again under its lock (a packet
   *  on another worker may have moved it meanwhile), then freed. Returns true when freed. */
  private evictEntry(index: number, seq: number, now: number, pressure: number, reason: number): boolean {
    if (!this.lockEntry(index, seq)) return false;
    if (evictReason(this.cells, this.entryBase + index * ENTRY_CELLS, now, pressure) !== reason) {
      this.unlockEntry(index, seq);
      return false;
    }
    this.freeLocked(index, seq);
    return true;
  }

  /** IPVS ip_vs_conn_expire for one entry this worker owns. Returns true when freed. */
  private expireEntry(index: number, seq: number, now: number): boolean {
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    if (!this.lockEntry(index, seq)) return false;
    // A packet on another worker may have re-armed it since we looked. A DEAD entry is
    // unreachable already: nothing but its controlled entries keeps it.
    if (((now - Atomics.load(c, e + EntryCell.EXPIRES)) | 0) < 0 && (c[e + EntryCell.STATE]! & StateFlag.DEAD) === 0) {
      this.unlockEntry(index, seq);
      return false;
    }
    const meta = c[e + EntryCell.META]!;
    const isTemplate = (meta & Meta.TEMPLATE) !== 0;
    if (isTemplate && Atomics.load(c, e + EntryCell.CONTROL) > 0) {
      // "do I control anybody?": try again in 60 s (expire_later).
      Atomics.store(c, e + EntryCell.TIMEOUT, EXPIRE_LATER_MS);
      Atomics.store(c, e + EntryCell.EXPIRES, (now + EXPIRE_LATER_MS) | 0);
      this.unlockEntry(index, seq);
      return false;
    }
    this.freeLocked(index, seq);
    return true;
  }

  /**
   * Deletes entry `index` now (ipvsadm -C, ip_vs_conn_flush; benchmarks). Owner only, like
   * expiry. A template that still controls entries is kept. Returns true when freed.
   */
  remove(index: number, seq: number): boolean {
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    if (((c[e + EntryCell.META]! & Meta.OWNER_MASK) >>> Meta.OWNER_SHIFT) !== this.workerId) {
      throw new ConnTableError('UVS_ERR_CONN_OWNER', `ConnTable.remove: entry ${index} belongs to worker ${(c[e + EntryCell.META]! & Meta.OWNER_MASK) >>> Meta.OWNER_SHIFT}, not ${this.workerId}`);
    }
    if (!this.lockEntry(index, seq)) return false;
    if ((c[e + EntryCell.META]! & Meta.TEMPLATE) !== 0 && Atomics.load(c, e + EntryCell.CONTROL) > 0) {
      this.unlockEntry(index, seq);
      return false;
    }
    this.freeLocked(index, seq);
    return true;
  }

  /** Unhashes, unbinds and frees an entry whose lock the caller holds. */
  private freeLocked(index: number, seq: number): void {
    const c = this.cells;
    const e = this.entryBase + index * ENTRY_CELLS;
    const meta = c[e + EntryCell.META]!;
    const isTemplate = (meta & Meta.TEMPLATE) !== 0;
    const state = c[e + EntryCell.STATE]!;
    const dd = c[e + EntryCell.DPORT_DEST]!;
    const control = c[e + EntryCell.CONTROL]!;
    const hashed = (meta & Meta.ONE_PACKET) === 0;
    const inReply = hashed && !isTemplate && ((meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT) === ForwardMethod.MASQ;
    // Out of the fast path first, while the key is still this entry's (outside the table lock: a syscall).
    if ((Atomics.load(c, e + EntryCell.TRAFFIC) & Traffic.OFFLOADED) !== 0 && this.offloadHook !== null) this.offloadHook.removed(this, index);

    this.lockTable();
    if (hashed) this.unpublish(true, index);
    if (inReply) this.unpublish(false, index);
    // Free: LIVE cleared, generation advanced, BUSY released, in one store.
    Atomics.store(c, e + EntryCell.SEQ, ((seq & ~(SEQ_BUSY | SEQ_LIVE)) + SEQ_GEN_STEP) | 0);
    c[this.takenBase + (index >>> 5)] = c[this.takenBase + (index >>> 5)]! & ~(1 << (index & 31));
    c[HeaderCell.COUNT] = c[HeaderCell.COUNT]! - 1;
    this.unlockTable();

    if (!isTemplate && control > 0) {
      Atomics.sub(c, this.entryBase + (control - 1) * ENTRY_CELLS + EntryCell.CONTROL, 1);
    }
    const slot = entryDestSlot(meta, dd);
    if (slot !== NO_DEST) this.unbindDest(slot, isTemplate, (state & StateFlag.INACTIVE) !== 0);
  }

  // ---- listing (control plane) -------------------------------------------------------------

  /** Every live entry, for `uvsadm -c` / `-lc`. Allocates; not for the data path. */
  list(nowMs: number): ConnListing[] {
    const out: ConnListing[] = [];
    let cursor = 0;
    while (cursor >= 0) cursor = this.listFrom(cursor, 4096, nowMs, out);
    return out;
  }

  /**
   * One piece of the listing, for a listing streamed in chunks (`uvsadm -L -c` on a big table):
   * appends to `out` at most `maxRows` live entries from entry `cursor` on, looking at no more
   * than 8 × maxRows entry slots, and returns the cursor to continue from, or -1 at the end.
   * Between calls the workers go on: an entry created or freed meanwhile may or may not be
   * listed, as with the kernel's /proc/net/ip_vs_conn read in pieces. Allocates; control plane.
   */
  listFrom(cursor: number, maxRows: number, nowMs: number, out: ConnListing[]): number {
    const c = this.cells;
    const used = Atomics.load(c, HeaderCell.BUMP);
    const scanEnd = Math.min(used, cursor + 8 * Math.max(1, maxRows));
    let rows = 0;
    let index = cursor;
    for (; index < scanEnd && rows < maxRows; index++) {
      const e = this.entryBase + index * ENTRY_CELLS;
      const s1 = Atomics.load(c, e + EntryCell.SEQ);
      if ((s1 & SEQ_LIVE) === 0) continue;
      const meta = c[e + EntryCell.META]!;
      const ports = c[e + EntryCell.PORTS]!;
      const dd = c[e + EntryCell.DPORT_DEST]!;
      const state = c[e + EntryCell.STATE]!;
      if (state & StateFlag.DEAD) continue;
      const template = (meta & Meta.TEMPLATE) !== 0;
      const row: ConnListing = {
        index,
        protocol: meta & Meta.PROTO_MASK,
        caddr: c[e + EntryCell.CADDR]! >>> 0,
        cport: ports >>> 16,
        vaddr: c[e + EntryCell.VADDR]! >>> 0,
        vport: ports & 0xffff,
        daddr: c[e + EntryCell.DADDR]! >>> 0,
        dport: dd >>> 16,
        destSlot: entryDestSlot(meta, dd) === NO_DEST ? -1 : entryDestSlot(meta, dd),
        state: state & StateFlag.STATE_MASK,
        expiresMs: this.listedRemainingMs(index, nowMs),
        template,
        forward: (meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT,
        owner: (meta & Meta.OWNER_MASK) >>> Meta.OWNER_SHIFT,
        inactive: (state & StateFlag.INACTIVE) !== 0,
        control: template ? Atomics.load(c, e + EntryCell.CONTROL) : c[e + EntryCell.CONTROL]! > 0 ? 1 : 0,
      };
      if ((Atomics.load(c, e + EntryCell.SEQ) | SEQ_BUSY) !== (s1 | SEQ_BUSY)) continue; // freed meanwhile
      out.push(row);
      rows++;
    }
    return index >= used ? -1 : index;
  }

  /** Live entries, and how many of them sit in the slot pair their forward key predicts (tests
   *  and benchmarks: those lookups overlap the bucket's and the entry's misses). */
  placementStats(): { live: number; predicted: number } {
    const c = this.cells;
    const used = Atomics.load(c, HeaderCell.BUMP);
    let live = 0;
    let predicted = 0;
    for (let index = 0; index < used; index++) {
      const e = this.entryBase + index * ENTRY_CELLS;
      if ((Atomics.load(c, e + EntryCell.SEQ) & SEQ_LIVE) === 0) continue;
      live++;
      const meta = c[e + EntryCell.META]!;
      const h = this.hashForward(meta & Meta.KEY_MASK, c[e + EntryCell.CADDR]!, c[e + EntryCell.PORTS]!, c[e + EntryCell.VADDR]!);
      if (this.predictedSlot(h) >>> 1 === index >>> 1) predicted++;
    }
    return { live, predicted };
  }

  /** Shape of the indexes (control plane, tests, benchmarks): occupied buckets, the longest
   *  distance of a bucket from its home, and how many entries wrapped past the last bucket. */
  indexStats(): { forward: IndexStats; reply: IndexStats } {
    const one = (forward: boolean): IndexStats => {
      const c = this.cells;
      const base = forward ? this.fwdBase : this.replyBase;
      const nb = this.buckets;
      const s: IndexStats = { used: 0, maxDisplacement: 0, wrapped: 0 };
      for (let b = 0; b < nb; b++) {
        const v = Atomics.load(c, base + b);
        if (v === 0) continue;
        s.used++;
        const home = this.homeOf(forward, v);
        const dist = (b - home + nb) % nb;
        if (dist > s.maxDisplacement) s.maxDisplacement = dist;
        if (b < home) s.wrapped++;
      }
      return s;
    };
    return { forward: one(true), reply: one(false) };
  }

  // ---- connection sync (src/sync: ip_vs_sync) ------------------------------------------------

  /**
   * Serialises live entries into `out` (SYNC_RECORD_CELLS cells each), starting at entry
   * `cursor`. Returns the cursor to pass next time, or -1 when the walk is complete. Templates
   * and normal entries alike; the template link is not carried (IPVS sync does not carry it
   * either: the backup rebuilds templates from their own records). The owner is not carried.
   */
  exportBatch(cursor: number, out: Int32Array, nowMs: number): { next: number; records: number } {
    return this.exportWithHops(cursor, out, null, nowMs);
  }

  /**
   * exportBatch that also copies each record's next hop toward the client (NAT entries) into
   * `hops`, HOP_CELLS cells per record: HOP_A, HOP_B, HOP_C and the TRAFFIC cell's HOP_VALID and
   * interface bits (0 when the entry has none). For a restart on the same director, where the
   * MACs and interfaces are still the same (src/dataplane/conn-state.ts); sync does not carry it.
   */
  exportWithHops(cursor: number, out: Int32Array, hops: Int32Array | null, nowMs: number): { next: number; records: number } {
    const c = this.cells;
    const used = Atomics.load(c, HeaderCell.BUMP);
    const room = Math.floor(out.length / SYNC_RECORD_CELLS);
    let records = 0;
    let index = Math.max(0, cursor);
    for (; index < used && records < room; index++) {
      const e = this.entryBase + index * ENTRY_CELLS;
      const s1 = Atomics.load(c, e + EntryCell.SEQ);
      if ((s1 & SEQ_LIVE) === 0) continue;
      const state = c[e + EntryCell.STATE]!;
      if (state & StateFlag.DEAD) continue;
      const o = records * SYNC_RECORD_CELLS;
      out[o + SyncCell.META] = c[e + EntryCell.META]! & ~META_LOCAL;
      out[o + SyncCell.CADDR] = c[e + EntryCell.CADDR]!;
      out[o + SyncCell.VADDR] = c[e + EntryCell.VADDR]!;
      out[o + SyncCell.PORTS] = c[e + EntryCell.PORTS]!;
      out[o + SyncCell.DADDR] = c[e + EntryCell.DADDR]!;
      out[o + SyncCell.DPORT] = c[e + EntryCell.DPORT_DEST]! >>> 16;
      out[o + SyncCell.STATE] = state & ~StateFlag.DEAD;
      // An offloaded entry: its time left and in_pkts counting what the fast path forwarded (so
      // that connection sync resends it every sync_period packets, and a restart keeps it).
      out[o + SyncCell.REMAINING_MS] = this.listedRemainingMs(index, nowMs, true);
      out[o + SyncCell.TIMEOUT_MS] = c[e + EntryCell.TIMEOUT]!;
      out[o + SyncCell.TRAFFIC] = Atomics.load(c, e + EntryCell.TRAFFIC) & (Traffic.DATA_MASK | Traffic.REPLY_MASK);
      out[o + SyncCell.IN_PKTS] = Atomics.load(c, e + EntryCell.IN_PKTS);
      out[o + SyncCell.INDEX] = index;
      out[o + SyncCell.GENERATION] = s1 & ~SEQ_BUSY;
      out[o + SyncCell.CONTROL] = (c[e + EntryCell.META]! & Meta.TEMPLATE) === 0 ? c[e + EntryCell.CONTROL]! : 0;
      if (hops !== null) {
        const h = records * HOP_CELLS;
        const t = Atomics.load(c, e + EntryCell.TRAFFIC);
        hops[h] = c[e + EntryCell.HOP_A]!;
        hops[h + 1] = c[e + EntryCell.HOP_B]!;
        hops[h + 2] = c[e + EntryCell.HOP_C]!;
        hops[h + 3] = t & (Traffic.HOP_VALID | Traffic.HOP_IF_MASK);
      }
      if ((Atomics.load(c, e + EntryCell.SEQ) | SEQ_BUSY) !== (s1 | SEQ_BUSY)) continue; // freed meanwhile: drop it
      records++;
    }
    return { next: index >= used ? -1 : index, records };
  }

  /**
   * Creates an entry from one exported record (at `offset` in `rec`), owned by this worker and
   * bound to DestTable slot `destSlot` (the caller resolves daddr:dport to a slot of this
   * director, as ip_vs_try_bind_dest does; -1 for none). A new entry takes the record's IN_PKTS
   * and TRAFFIC counts. An entry already present with the same key is updated instead (state,
   * timeout, expiry; its own counts kept). Returns the entry number or -1 (full).
   */
  importEntry(rec: Int32Array, offset: number, destSlot: number, nowMs: number): number {
    if (offset < 0 || offset + SYNC_RECORD_CELLS > rec.length) {
      throw new RangeError(`ConnTable.importEntry: record at ${offset} runs past the buffer (${rec.length} cells)`);
    }
    const meta = rec[offset + SyncCell.META]!;
    const ports = rec[offset + SyncCell.PORTS]!;
    const family = (meta & Meta.FAMILY_MASK) >>> Meta.FAMILY_SHIFT;
    if (family !== 0) throw new RangeError(`ConnTable.importEntry: address family ${family} is not supported yet`);
    const remaining = rec[offset + SyncCell.REMAINING_MS]!;
    const state = rec[offset + SyncCell.STATE]! & ~StateFlag.DEAD;
    // Already known (a later sync message about the same connection): update it in place, as
    // ip_vs_proc_conn does, moving it between ACTIVE and INACTIVE if its activity changed.
    const known = this.scratch;
    if (
      this.lookupForward(meta & Meta.KEY_MASK, rec[offset + SyncCell.CADDR]!, ports >>> 16, rec[offset + SyncCell.VADDR]!, ports & 0xffff, known) &&
      this.lockEntry(known.index, known.seq)
    ) {
      const c = this.cells;
      const e = this.entryBase + known.index * ENTRY_CELLS;
      const old = c[e + EntryCell.STATE]!;
      if ((meta & Meta.TEMPLATE) === 0 && ((old ^ state) & StateFlag.INACTIVE) !== 0) {
        this.moveActivity(known.destSlot, (state & StateFlag.INACTIVE) === 0);
      }
      Atomics.store(c, e + EntryCell.STATE, state);
      Atomics.store(c, e + EntryCell.TIMEOUT, Math.min(Math.max(0, rec[offset + SyncCell.TIMEOUT_MS]!), MAX_TIMEOUT_MS));
      Atomics.store(c, e + EntryCell.EXPIRES, ((nowMs | 0) + remaining) | 0);
      this.unlockEntry(known.index, known.seq);
      return known.index;
    }
    const index = this.insert(
      meta & Meta.PROTO_MASK,
      rec[offset + SyncCell.CADDR]!,
      ports >>> 16,
      rec[offset + SyncCell.VADDR]!,
      ports & 0xffff,
      rec[offset + SyncCell.DADDR]!,
      rec[offset + SyncCell.DPORT]! & 0xffff,
      destSlot,
      (meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT,
      meta & ~META_LOCAL,
      state,
      rec[offset + SyncCell.TIMEOUT_MS]!,
      nowMs,
      -1,
    );
    if (index >= 0) {
      const e = this.entryBase + index * ENTRY_CELLS;
      Atomics.store(this.cells, e + EntryCell.EXPIRES, ((nowMs | 0) + remaining) | 0);
      // What the entry had carried, so the flood defence judges it as before the restart (or, for
      // connection sync, by what the master must have seen): an established connection imported
      // with no counts looked like a spoofed SYN-then-ACK and was evicted within seconds.
      Atomics.store(this.cells, e + EntryCell.IN_PKTS, Math.max(0, rec[offset + SyncCell.IN_PKTS]!));
      Atomics.or(this.cells, e + EntryCell.TRAFFIC, rec[offset + SyncCell.TRAFFIC]! & (Traffic.DATA_MASK | Traffic.REPLY_MASK));
    }
    return index;
  }
}

export interface IndexStats {
  used: number;
  maxDisplacement: number;
  wrapped: number;
}

/** One exported entry. */
export const enum SyncCell {
  META = 0,
  CADDR = 1,
  VADDR = 2,
  PORTS = 3,
  DADDR = 4,
  DPORT = 5,
  STATE = 6,
  REMAINING_MS = 7,
  TIMEOUT_MS = 8,
  /** The entry's traffic counts: the TRAFFIC cell's DATA and REPLY bits (never its next-hop
   *  bits), which the flood defence judges an entry by (defense.ts). 0 in files written before
   *  it was carried, where this cell was reserved and always 0. */
  TRAFFIC = 9,
  /** What the sync master's change scan (src/sync/daemon.ts) needs besides the entry itself;
   *  importEntry takes only IN_PKTS, as the new entry's count of packets seen in the client's
   *  direction (IPVS in_pkts; connection sync credits what the master must have seen). */
  IN_PKTS = 10,
  /** The entry number, and its slot generation (changes when the slot is freed or reused), so
   *  the scan tells a new connection in a recycled slot from the one it saw before. */
  INDEX = 11,
  GENERATION = 12,
  /** Normal entry: its template's entry number + 1 (0 = none); template: 0. */
  CONTROL = 13,
}
export const SYNC_RECORD_CELLS = 14;
/** Cells per record of exportWithHops' `hops`. */
export const HOP_CELLS = 4;

/**
 * The OVERLOAD clearing rule of IPVS ip_vs_unbind_dest: below -y when it is set; otherwise
 * below 3/4 of -x (totalconns * 4 < u_threshold * 3); with no thresholds, never overloaded.
 * totalconns is ACTIVE + INACTIVE (ip_vs_dest_totalconns; templates do not count).
 */
export function clearOverload(d: DestTable, slot: number): void {
  const lower = d.get(slot, DestField.L_THRESHOLD);
  const upper = d.get(slot, DestField.U_THRESHOLD);
  const total = d.load(slot, DestField.ACTIVE) + d.load(slot, DestField.INACTIVE);
  const flagsAt = d.base(slot) + DestField.FLAGS;
  if (lower !== 0) {
    if (total < lower) Atomics.and(d.cells, flagsAt, ~DestFlag.OVERLOAD);
  } else if (upper !== 0) {
    if (total * 4 < upper * 3) Atomics.and(d.cells, flagsAt, ~DestFlag.OVERLOAD);
  } else {
    Atomics.and(d.cells, flagsAt, ~DestFlag.OVERLOAD);
  }
}

