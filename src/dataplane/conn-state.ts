// The connection table handed from one uvsd to the next on the same director (restart, upgrade):
// issue 15, "restart and upgrade without loss". Kernel IPVS keeps its table across a keepalived
// restart; uvs keeps it in the daemon's memory, so a graceful stop writes the live entries to a
// state file and the next start imports those whose virtual service and real server exist again.
//
// What is written: ConnTable.exportBatch's records (key, real server address and port, state,
// time left, timeout), every address in a 16-byte field (IPv4 in the first 4 bytes, network
// order; room for IPv6 later), nothing that is local to one daemon's memory (DestTable slots,
// worker ids, entry numbers, the NAT next hop's interface number): the importer binds each entry
// to its own real server by address, as ip_vs_proc_conn does for a sync message. A NAT entry's
// next hop toward the client (the MACs of the client's first frame) is kept, with the kernel's
// index of its interface, since the next uvsd runs on the same director: without it a reply to
// an on-link client would have no next hop (client-hops.ts covers only clients behind a
// gateway). An entry whose interface is gone uses that route fallback, like a synced one.
//
// File layout (little endian), version 2:
//   header, 72 bytes:
//     0  "UVSCONNS"                     8  u16 version (2)       10 u16 header bytes (72)
//     12 u16 record bytes (96)         14 u16 address bytes (16) 16 u32 records
//     20 u32 FNV-1a of the records     24 f64 wall clock at save (ms since the epoch)
//     32 16 bytes: the kernel's boot id (/proc/sys/kernel/random/boot_id)
//     48 f64 network namespace inode (for the log only: the kernel reuses it)
//     56 u32 writer pid                60 u32 reserved (0)
//     64 8 bytes: the network namespace's cookie (SO_NETNS_COOKIE, big endian)
//   records, 96 bytes each:
//     0  u32 META (protocol, family, template, forwarding method, NO_CPORT, ONE_PACKET)
//     4  u32 STATE (protocol state | INACTIVE | NOOUTPUT)
//     8  u32 ms left when saved           12 u32 timeout ms
//     16 u16 cport  18 u16 vport  20 u16 dport  22 u16 reserved
//     24 caddr[16]  40 vaddr[16]  56 daddr[16]
//     72 next hop toward the client: u32 HOP_A, HOP_B, HOP_C (ConnTable's cells: the client-side
//        MAC, then ours), 84 u32 kernel ifindex of its interface (0: no next hop), 88 8 reserved
//
// A file is refused (and ignored, with one log line saying why) when its magic, version, sizes or
// checksum are wrong (corrupt or not ours), when it was written before the last boot (stale: the
// connections died with the machine) or in another network namespace (foreign), or when it is
// older than the longest timeout. It is removed once read, so it is never imported twice.
//
// Which namespace: the boot id and the namespace's cookie together. The default path is named by
// the namespace's inode (/run/uvs/<inode>.conns, beside the control socket), and the kernel
// reuses inode numbers: a namespace created after another one was deleted may get its number and
// find the dead namespace's file at its own path. The cookie is drawn from a counter once per
// namespace and never reused within a boot (net_alloc_cookie), so boot id + cookie name one
// namespace for good. Version 1 files recorded only the inode: they are refused, as is any file
// when this kernel gives no cookie (before Linux 5.14; the addon missing): without it a file from
// a dead namespace cannot be told from ours, and a wrong restore is worse than none.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { ConnTable, HOP_CELLS, SYNC_RECORD_CELLS, SyncCell, Meta, MAX_TIMEOUT_MS, Traffic } from '../conn/table';
import type { ServiceEntry, ServiceModel } from '../service/model';
import { loadNative } from '../native/addon';

export const CONN_STATE_MAGIC = 'UVSCONNS';
export const CONN_STATE_VERSION = 2;
export const CONN_STATE_HEADER_BYTES = 72;
export const CONN_STATE_RECORD_BYTES = 96;
const ADDR_BYTES = 16;

/** Where the writer ran: a file from another boot or namespace is not for us. */
export interface ConnStateOrigin {
  /** /proc/sys/kernel/random/boot_id as 32 hex digits (dashes removed). */
  bootId: string;
  /** The network namespace's cookie (SO_NETNS_COOKIE) as 16 hex digits; '' when the kernel
   *  (before 5.14) or a missing addon cannot tell it. */
  netnsCookie: string;
  /** The namespace's inode: only for the log lines (the kernel reuses it). */
  netnsInode: number;
  /** Why netnsCookie is '' (for the refusal's log line). */
  cookieError?: string;
}

export function currentOrigin(cookie: () => string = () => loadNative().netnsCookie()): ConnStateOrigin {
  const read = (): string => {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '');
    } catch {
      return '';
    }
  };
  const inode = (): number => {
    try {
      return statSync('/proc/self/ns/net').ino;
    } catch {
      return 0;
    }
  };
  let netnsCookie: string;
  let cookieError: string | undefined;
  try {
    netnsCookie = cookie();
    if (!/^[0-9a-f]{16}$/.test(netnsCookie)) throw new Error(`unexpected value '${netnsCookie}'`);
  } catch (err) {
    netnsCookie = '';
    cookieError = (err as Error).message;
  }
  const bootId = read();
  return { bootId: /^[0-9a-f]{32}$/.test(bootId) ? bootId : '0'.repeat(32), netnsCookie, netnsInode: inode(), ...(cookieError ? { cookieError } : {}) };
}

/** The default state file: beside the control socket (/run/uvs/<netns inode>.conns). */
export function defaultConnStatePath(socketPath: string): string {
  return socketPath.endsWith('.sock') ? `${socketPath.slice(0, -5)}.conns` : `${socketPath}.conns`;
}

function fnv1a(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** Serialises `count` exported records (SYNC_RECORD_CELLS cells each) into a state file image. */
export function encodeConnState(records: Int32Array, count: number, savedAtMs: number, origin: ConnStateOrigin, pid = process.pid, hops: Int32Array | null = null, hopIfindex: ((dataPlaneIndex: number) => number) | null = null): Buffer {
  const buf = Buffer.alloc(CONN_STATE_HEADER_BYTES + count * CONN_STATE_RECORD_BYTES);
  buf.write(CONN_STATE_MAGIC, 0, 'latin1');
  buf.writeUInt16LE(CONN_STATE_VERSION, 8);
  buf.writeUInt16LE(CONN_STATE_HEADER_BYTES, 10);
  buf.writeUInt16LE(CONN_STATE_RECORD_BYTES, 12);
  buf.writeUInt16LE(ADDR_BYTES, 14);
  buf.writeUInt32LE(count, 16);
  buf.writeDoubleLE(savedAtMs, 24);
  Buffer.from(origin.bootId, 'hex').copy(buf, 32, 0, 16);
  buf.writeDoubleLE(origin.netnsInode, 48);
  buf.writeUInt32LE(pid >>> 0, 56);
  // No cookie: zeros, which no namespace has (the counter starts at 1), so no reader accepts it.
  if (origin.netnsCookie) Buffer.from(origin.netnsCookie, 'hex').copy(buf, 64, 0, 8);
  for (let r = 0; r < count; r++) {
    const i = r * SYNC_RECORD_CELLS;
    const o = CONN_STATE_HEADER_BYTES + r * CONN_STATE_RECORD_BYTES;
    const ports = records[i + SyncCell.PORTS]!;
    buf.writeUInt32LE(records[i + SyncCell.META]! >>> 0, o);
    buf.writeUInt32LE(records[i + SyncCell.STATE]! >>> 0, o + 4);
    buf.writeUInt32LE(records[i + SyncCell.REMAINING_MS]! >>> 0, o + 8);
    buf.writeUInt32LE(records[i + SyncCell.TIMEOUT_MS]! >>> 0, o + 12);
    buf.writeUInt16LE(ports >>> 16, o + 16);
    buf.writeUInt16LE(ports & 0xffff, o + 18);
    buf.writeUInt16LE(records[i + SyncCell.DPORT]! & 0xffff, o + 20);
    buf.writeUInt32BE(records[i + SyncCell.CADDR]! >>> 0, o + 24);
    buf.writeUInt32BE(records[i + SyncCell.VADDR]! >>> 0, o + 40);
    buf.writeUInt32BE(records[i + SyncCell.DADDR]! >>> 0, o + 56);
    if (hops !== null && (hops[r * HOP_CELLS + 3]! & Traffic.HOP_VALID) !== 0) {
      const ifindex = hopIfindex?.((hops[r * HOP_CELLS + 3]! & Traffic.HOP_IF_MASK) >>> Traffic.HOP_IF_SHIFT) ?? 0;
      if (ifindex > 0) {
        buf.writeInt32LE(hops[r * HOP_CELLS]!, o + 72);
        buf.writeInt32LE(hops[r * HOP_CELLS + 1]!, o + 76);
        buf.writeInt32LE(hops[r * HOP_CELLS + 2]!, o + 80);
        buf.writeUInt32LE(ifindex, o + 84);
      }
    }
  }
  buf.writeUInt32LE(fnv1a(buf, CONN_STATE_HEADER_BYTES, buf.length), 20);
  return buf;
}

export class ConnStateRefused extends Error {}

export interface DecodedConnState {
  /** Records in ConnTable.importEntry's format, REMAINING_MS already reduced by the time the
   *  file spent on disk; entries that expired meanwhile are left out. */
  records: Int32Array;
  count: number;
  /** Per record, HOP_CELLS cells for ConnTable.setClientHopCells (HOP_VALID set when the entry
   *  had a next hop toward the client)... */
  hops: Int32Array;
  /** ...and the kernel ifindex of its interface (0: none). */
  hopIfindex: Int32Array;
  /** Entries left out because they expired while no uvsd ran. */
  expired: number;
  savedAtMs: number;
  writerPid: number;
}

/** Reads a state file image; throws ConnStateRefused with the reason when it is not usable here. */
export function decodeConnState(buf: Uint8Array, nowMs: number, origin: ConnStateOrigin): DecodedConnState {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < CONN_STATE_HEADER_BYTES || b.toString('latin1', 0, 8) !== CONN_STATE_MAGIC) {
    throw new ConnStateRefused('not a uvs connection state file (bad magic)');
  }
  const version = b.readUInt16LE(8);
  if (version === 1) {
    throw new ConnStateRefused('version 1, written by an older uvsd that named its network namespace only by the inode number, ' +
      `which the kernel reuses: it may come from another, deleted namespace (this uvsd reads version ${CONN_STATE_VERSION})`);
  }
  if (version !== CONN_STATE_VERSION) throw new ConnStateRefused(`version ${version}, this uvsd reads version ${CONN_STATE_VERSION}`);
  if (b.readUInt16LE(10) !== CONN_STATE_HEADER_BYTES || b.readUInt16LE(12) !== CONN_STATE_RECORD_BYTES || b.readUInt16LE(14) !== ADDR_BYTES) {
    throw new ConnStateRefused(`unexpected layout (header ${b.readUInt16LE(10)}, record ${b.readUInt16LE(12)}, address ${b.readUInt16LE(14)} bytes)`);
  }
  const count = b.readUInt32LE(16);
  if (b.length !== CONN_STATE_HEADER_BYTES + count * CONN_STATE_RECORD_BYTES) {
    throw new ConnStateRefused(`truncated or padded: ${b.length} bytes for ${count} records`);
  }
  if (fnv1a(b, CONN_STATE_HEADER_BYTES, b.length) !== b.readUInt32LE(20)) throw new ConnStateRefused('checksum mismatch (corrupt)');
  const bootId = b.toString('hex', 32, 48);
  if (bootId !== origin.bootId) throw new ConnStateRefused(`stale: written before the last boot (boot id ${bootId}, now ${origin.bootId})`);
  if (!origin.netnsCookie) {
    throw new ConnStateRefused(`cannot tell whether it was written in this network namespace: no namespace cookie (SO_NETNS_COOKIE needs Linux 5.14): ${origin.cookieError ?? 'unknown'}`);
  }
  const cookie = b.toString('hex', 64, 72);
  if (cookie !== origin.netnsCookie) {
    throw new ConnStateRefused(`foreign: written in another network namespace (cookie ${cookie}, inode ${b.readDoubleLE(48)}; this one: cookie ${origin.netnsCookie}, inode ${origin.netnsInode})`);
  }
  const savedAtMs = b.readDoubleLE(24);
  const elapsed = nowMs - savedAtMs;
  if (!Number.isFinite(elapsed) || elapsed < -1000) throw new ConnStateRefused(`written in the future (${new Date(savedAtMs).toISOString()})`);
  if (elapsed > MAX_TIMEOUT_MS) throw new ConnStateRefused(`stale: written ${Math.round(elapsed / 1000)} s ago, longer than any timeout`);
  const records = new Int32Array(count * SYNC_RECORD_CELLS);
  const hops = new Int32Array(count * HOP_CELLS);
  const hopIfindex = new Int32Array(count);
  let kept = 0;
  let expired = 0;
  const gone = Math.max(0, Math.round(elapsed));
  for (let r = 0; r < count; r++) {
    const o = CONN_STATE_HEADER_BYTES + r * CONN_STATE_RECORD_BYTES;
    const meta = b.readUInt32LE(o) | 0;
    const family = (meta & Meta.FAMILY_MASK) >>> Meta.FAMILY_SHIFT;
    if (family !== 0) throw new ConnStateRefused(`record ${r}: address family ${family} is not supported by this uvsd`);
    for (const at of [o + 28, o + 44, o + 60]) {
      if (b.readUInt32LE(at) !== 0 || b.readUInt32LE(at + 4) !== 0 || b.readUInt32LE(at + 8) !== 0) {
        throw new ConnStateRefused(`record ${r}: an IPv4 record with bytes in the upper part of an address`);
      }
    }
    const remaining = b.readUInt32LE(o + 8);
    if (remaining <= gone) {
      expired++;
      continue;
    }
    const i = kept * SYNC_RECORD_CELLS;
    records[i + SyncCell.META] = meta;
    records[i + SyncCell.STATE] = b.readUInt32LE(o + 4) | 0;
    records[i + SyncCell.REMAINING_MS] = remaining - gone;
    records[i + SyncCell.TIMEOUT_MS] = Math.min(b.readUInt32LE(o + 12), MAX_TIMEOUT_MS);
    records[i + SyncCell.PORTS] = ((b.readUInt16LE(o + 16) << 16) | b.readUInt16LE(o + 18)) | 0;
    records[i + SyncCell.DPORT] = b.readUInt16LE(o + 20);
    records[i + SyncCell.CADDR] = b.readUInt32BE(o + 24) | 0;
    records[i + SyncCell.VADDR] = b.readUInt32BE(o + 40) | 0;
    records[i + SyncCell.DADDR] = b.readUInt32BE(o + 56) | 0;
    const ifindex = b.readUInt32LE(o + 84);
    if (ifindex > 0) {
      hops[kept * HOP_CELLS] = b.readInt32LE(o + 72);
      hops[kept * HOP_CELLS + 1] = b.readInt32LE(o + 76);
      hops[kept * HOP_CELLS + 2] = b.readInt32LE(o + 80);
      hops[kept * HOP_CELLS + 3] = Traffic.HOP_VALID;
      hopIfindex[kept] = ifindex;
    }
    kept++;
  }
  return {
    records: records.subarray(0, kept * SYNC_RECORD_CELLS), count: kept, expired, savedAtMs, writerPid: b.readUInt32LE(56),
    hops: hops.subarray(0, kept * HOP_CELLS), hopIfindex: hopIfindex.subarray(0, kept),
  };
}

/** Writes the image atomically (temporary file, fsync, rename), readable by root only. */
export function writeConnStateFile(path: string, image: Buffer): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, image);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Reads and removes the state file; null when there is none. */
export function takeConnStateFile(path: string): Buffer | null {
  let image: Buffer;
  try {
    image = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  rmSync(path, { force: true });
  return image;
}

/** Service and real server of one record, found by address in the model (null: not there). */
export interface ImportTarget {
  /** The DestTable slot of the record's real server in its service. */
  destSlot: number;
}

/**
 * Imports restored records into the live table as their virtual services and real servers appear:
 * at start (a -f configuration is loaded by then) and again after each model change (services
 * added with uvsadm after the start), until every record found a home or `deadlineMs` passed.
 * Each imported entry is owned by one of the workers in turn, whose expiry sweep frees it.
 */
export class ConnRestorer {
  private pending: Int32Array;
  private hops: Int32Array;
  private hopIfindex: Int32Array;
  private count: number;
  private readonly tables: ConnTable[];
  imported = 0;
  /** Refused on import: the real server's forwarding method changed, or the table was full. */
  refused = 0;

  constructor(
    restored: DecodedConnState,
    conns: ConnTable,
    workers: number,
    private readonly model: ServiceModel,
    readonly deadlineMs: number,
    /** The data-plane index of a kernel ifindex, or -1 when uvs does not capture on it. */
    private readonly ifaceOf: (ifindex: number) => number = () => -1,
  ) {
    this.pending = restored.records.slice();
    this.hops = restored.hops.slice();
    this.hopIfindex = restored.hopIfindex.slice();
    this.count = restored.count;
    // One view per worker id over the shared table: insert() writes the owner from its view's id.
    this.tables = [];
    for (let id = 0; id < Math.max(1, workers); id++) {
      this.tables.push(new ConnTable(conns.capacity, conns.dests, { workerId: id, buffer: conns.buffer }));
    }
  }

  get waiting(): number {
    return this.count;
  }

  /** Imports every pending record whose service and real server exist now; keeps the others. */
  importReady(nowMs: number): number {
    const services = new Map<string, ServiceEntry | null>();
    const find = (protocol: number, addr: number, port: number): ServiceEntry | null => {
      const k = `${protocol}/${addr}/${port}`;
      let s = services.get(k);
      if (s === undefined) {
        const key = { fwmark: 0, af: 4 as const, protocol, addr, port };
        s = this.model.has(key) ? this.model.get(key) : null;
        services.set(k, s);
      }
      return s;
    };
    const rec = this.pending;
    let keep = 0;
    let done = 0;
    for (let r = 0; r < this.count; r++) {
      const o = r * SYNC_RECORD_CELLS;
      const meta = rec[o + SyncCell.META]!;
      const proto = meta & Meta.PROTO_MASK;
      const vaddr = rec[o + SyncCell.VADDR]! >>> 0;
      const vport = rec[o + SyncCell.PORTS]! & 0xffff;
      // __ip_vs_service_find: the service on the port, else a persistent port-zero one.
      const svc = find(proto, vaddr, vport) ?? find(proto, vaddr, 0);
      const daddr = rec[o + SyncCell.DADDR]! >>> 0;
      const dport = rec[o + SyncCell.DPORT]! & 0xffff;
      const dest = svc?.dests.find((d) => d.addr === daddr && d.port === dport);
      if (!dest) {
        if (keep !== r) {
          rec.copyWithin(keep * SYNC_RECORD_CELLS, o, o + SYNC_RECORD_CELLS);
          this.hops.copyWithin(keep * HOP_CELLS, r * HOP_CELLS, (r + 1) * HOP_CELLS);
          this.hopIfindex[keep] = this.hopIfindex[r]!;
        }
        keep++;
        continue;
      }
      if (dest.fwd !== (meta & Meta.FWD_MASK) >>> Meta.FWD_SHIFT) {
        // The real server is now reached another way: the old entry would rewrite wrongly.
        this.refused++;
        continue;
      }
      const table = this.tables[(this.imported + done) % this.tables.length]!;
      const index = table.importEntry(rec, o, dest.slot, nowMs);
      if (index < 0) {
        this.refused++;
        continue;
      }
      done++;
      if (this.hopIfindex[r]! > 0) table.setClientHopCells(index, this.hops, r * HOP_CELLS, this.ifaceOf(this.hopIfindex[r]!));
    }
    this.count = keep;
    this.imported += done;
    return done;
  }

  /** Gives up on what is still pending (the deadline passed); returns how many. */
  dropPending(): number {
    const n = this.count;
    this.count = 0;
    return n;
  }
}

/** Exports every live entry of `conns` into records (importEntry's format). */
export function exportAll(conns: ConnTable, nowMs: number): { records: Int32Array; hops: Int32Array; count: number } {
  const CHUNK = 4096;
  const chunk = new Int32Array(CHUNK * SYNC_RECORD_CELLS);
  const chunkHops = new Int32Array(CHUNK * HOP_CELLS);
  let room = Math.max(16, conns.count + 64);
  let out = new Int32Array(room * SYNC_RECORD_CELLS);
  let hops = new Int32Array(room * HOP_CELLS);
  let count = 0;
  let cursor = 0;
  while (cursor >= 0) {
    const { next, records } = conns.exportWithHops(cursor, chunk, chunkHops, nowMs);
    if (records > 0) {
      if (count + records > room) {
        room = Math.max(room * 2, count + records);
        const bigger = new Int32Array(room * SYNC_RECORD_CELLS);
        bigger.set(out.subarray(0, count * SYNC_RECORD_CELLS));
        out = bigger;
        const biggerHops = new Int32Array(room * HOP_CELLS);
        biggerHops.set(hops.subarray(0, count * HOP_CELLS));
        hops = biggerHops;
      }
      out.set(chunk.subarray(0, records * SYNC_RECORD_CELLS), count * SYNC_RECORD_CELLS);
      hops.set(chunkHops.subarray(0, records * HOP_CELLS), count * HOP_CELLS);
      count += records;
    }
    cursor = next;
  }
  return { records: out, hops, count };
}
