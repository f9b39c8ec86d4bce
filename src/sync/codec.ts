// The IPVS connection-sync protocol, version 1, as the kernel speaks it on the wire
// (net/netfilter/ipvs/ip_vs_sync.c): the codec only, pure bytes in and out, so a uvs director
// and a kernel IPVS director can in principle sync with each other.
//
// A message (one UDP datagram to 224.0.0.81:8848) is a header, struct ip_vs_sync_mesg:
//
//    0        1        2        3
//   +--------+--------+--------+--------+
//   |   0    | syncid |   size (be16)   |   reserved must be 0 (a version-0 receiver reads it
//   +--------+--------+--------+--------+   as nr_conns and so ignores the message)
//   |nr_conns|version |  spare (0)      |   version = 1
//   +--------+--------+--------+--------+
//
// followed by nr_conns entries, each starting on a 4-byte boundary (the kernel pads the previous
// entry with zeros). An IPv4 entry is struct ip_vs_sync_v4, 36 bytes, all fields big-endian:
//
//   type(1)=0 protocol(1) ver_size(2: version in the top 4 bits, 0; entry size in the low 12)
//   flags(4: IP_VS_CONN_F_*, HASHED cleared) state(2) cport(2) vport(2) dport(2)
//   fwmark(4) timeout(4: seconds) caddr(4) vaddr(4) daddr(4)
//
// then options (type, length, data): SEQ_DATA (1, 24 bytes: in_seq and out_seq, each init_seq,
// delta, previous_delta) when the flags have IP_VS_CONN_F_SEQ_MASK, PE_DATA (2) and PE_NAME (3)
// for a persistence engine (sip). An option type with IPVS_OPT_F_PARAM (64) may be skipped by a
// receiver that does not know it; any other unknown option makes the entry unusable.
// struct ip_vs_sync_v6 (type bit 0 = STYPE_F_INET6) has the same fields with 16-byte addresses,
// 72 bytes: its layout is defined here and decoded up to the addresses, then skipped (counted),
// as a kernel without CONFIG_IP_VS_IPV6 does, until uvs serves IPv6.
//
// Decoding follows ip_vs_process_message / ip_vs_proc_sync_conn: an error in the message's
// framing drops the whole message (DecodeError, naming the field); an entry that is well framed
// but unusable (unknown protocol, bad state, IPv6, an unknown mandatory option) is skipped alone
// and reported with its reason.

/** Default multicast group (IP_VS_SYNC_GROUP) and port (IP_VS_SYNC_PORT). */
export const SYNC_GROUP = '224.0.0.81';
export const SYNC_PORT = 8848;
export const SYNC_TTL = 1;
/** SYNC_PROTO_VER. */
export const SYNC_PROTO_VER = 1;

export const SYNC_MESG_HEADER_BYTES = 8;
/** The version-0 header is 4 bytes; shorter datagrams are not messages at all. */
export const SYNC_MESG_V0_HEADER_BYTES = 4;
export const SYNC_V4_BYTES = 36;
export const SYNC_V6_BYTES = 72;
/** IP + UDP headers, subtracted from the MTU to get the default maxlen. */
export const SYNC_IPV4_UDP_OVERHEAD = 28;

/** Bits of the type byte. */
export const STYPE_F_INET6 = 1;
/** ver_size: version in bits 12..15, size in bits 0..11. */
export const SVER_SHIFT = 12;
export const SVER_MASK = 0x0fff;

export const IPVS_OPT_SEQ_DATA = 1;
export const IPVS_OPT_PE_DATA = 2;
export const IPVS_OPT_PE_NAME = 3;
export const IPVS_OPT_PARAM = 7;
/** An option type with this bit may be ignored by a receiver that does not know it. */
export const IPVS_OPT_F_PARAM = 1 << (IPVS_OPT_PARAM - 1);
/** struct ip_vs_sync_conn_options: two struct ip_vs_seq of three __u32. */
export const SEQ_OPTION_BYTES = 24;
/** IP_VS_PEDATA_MAXLEN, IP_VS_PENAME_MAXLEN. */
export const PE_DATA_MAXLEN = 255;
export const PE_NAME_MAXLEN = 16;

/** IP_VS_CONN_F_* (include/uapi/linux/ip_vs.h). */
export const enum ConnFlag {
  FWD_MASK = 0x0007,
  MASQ = 0x0000,
  LOCALNODE = 0x0001,
  TUNNEL = 0x0002,
  DROUTE = 0x0003,
  BYPASS = 0x0004,
  SYNC = 0x0020,
  HASHED = 0x0040,
  NOOUTPUT = 0x0080,
  INACTIVE = 0x0100,
  OUT_SEQ = 0x0200,
  IN_SEQ = 0x0400,
  SEQ_MASK = 0x0600,
  NO_CPORT = 0x0800,
  TEMPLATE = 0x1000,
  ONE_PACKET = 0x2000,
}
/** IP_VS_CONN_F_BACKUP_MASK: the flags a backup takes from a message. */
export const CONN_F_BACKUP_MASK = ConnFlag.FWD_MASK | ConnFlag.NOOUTPUT | ConnFlag.INACTIVE | ConnFlag.SEQ_MASK | ConnFlag.NO_CPORT | ConnFlag.TEMPLATE;

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
/** States per protocol (IP_VS_TCP_S_LAST, IP_VS_UDP_S_LAST); SCTP is not served by uvs. */
const PROTOCOL_STATES: ReadonlyMap<number, number> = new Map([[IPPROTO_TCP, 11], [IPPROTO_UDP, 1]]);
/** IP_VS_CTPL_S_LAST: a template's states (NONE, ASSURED). */
const TEMPLATE_STATES = 2;

export interface SeqData {
  initSeq: number;
  delta: number;
  previousDelta: number;
}

/** One connection of a sync message (IPv4; `af` leaves room for IPv6). Addresses are host-order
 *  unsigned numbers, as everywhere in uvs. */
export interface SyncConn {
  af: 4;
  protocol: number;
  /** IP_VS_CONN_F_* bits. */
  flags: number;
  state: number;
  cport: number;
  vport: number;
  dport: number;
  fwmark: number;
  /** Seconds (cp->timeout / HZ). */
  timeout: number;
  caddr: number;
  vaddr: number;
  daddr: number;
  /** IPVS_OPT_SEQ_DATA: in_seq then out_seq. */
  seq?: { in: SeqData; out: SeqData };
  /** IPVS_OPT_PE_DATA and IPVS_OPT_PE_NAME (a persistence engine's key, e.g. sip's Call-ID). */
  peData?: Uint8Array;
  peName?: string;
}

/** A framing error: the whole message is dropped (the kernel's "Dropping buffer"). */
export class SyncDecodeError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'SyncDecodeError';
  }
}

export interface DecodedMessage {
  syncid: number;
  conns: SyncConn[];
  /** Entries that were well framed but not usable, with the reason. */
  skipped: { index: number; reason: string }[];
}

/** The encoded size of one entry, options included, without the padding after it. */
export function syncConnBytes(c: SyncConn): number {
  let len = SYNC_V4_BYTES;
  if (c.flags & ConnFlag.SEQ_MASK) len += 2 + SEQ_OPTION_BYTES;
  if (c.peData && c.peData.length > 0) {
    len += 2 + c.peData.length;
    if (c.peName) len += 2 + Buffer.byteLength(c.peName, 'latin1');
  }
  return len;
}

/**
 * Builds messages the way ip_vs_sync_conn fills a sync buffer: a header, then entries each
 * padded to 4 bytes, until the next one would pass `maxlen`. Control plane; one buffer reused.
 */
export class SyncMessageWriter {
  private readonly buf: Buffer;
  private used = SYNC_MESG_HEADER_BYTES;
  private count = 0;

  constructor(readonly maxlen: number, readonly syncid: number) {
    if (!Number.isInteger(maxlen) || maxlen < SYNC_MESG_HEADER_BYTES + SYNC_V4_BYTES || maxlen > 65535) {
      throw new RangeError(`sync maxlen must be ${SYNC_MESG_HEADER_BYTES + SYNC_V4_BYTES}..65535 bytes, got ${maxlen}`);
    }
    if (!Number.isInteger(syncid) || syncid < 0 || syncid > 255) throw new RangeError(`syncid must be 0..255, got ${syncid}`);
    this.buf = Buffer.alloc(maxlen);
  }

  get conns(): number {
    return this.count;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  /** Appends one entry; false (nothing written) when it does not fit or the count is at 255. */
  add(c: SyncConn): boolean {
    const len = syncConnBytes(c);
    const pad = (4 - (this.used & 3)) & 3;
    if (this.count === 255 || this.used + pad + len > this.maxlen) return false;
    if (len > SVER_MASK) throw new RangeError(`sync entry of ${len} bytes does not fit ver_size`);
    const b = this.buf;
    b.fill(0, this.used, this.used + pad);
    let p = this.used + pad;
    b[p] = 0; // type: IPv4
    b[p + 1] = c.protocol;
    b.writeUInt16BE(len & SVER_MASK, p + 2); // version 0 of the entry format
    b.writeUInt32BE((c.flags & ~ConnFlag.HASHED) >>> 0, p + 4);
    b.writeUInt16BE(c.state, p + 8);
    b.writeUInt16BE(c.cport, p + 10);
    b.writeUInt16BE(c.vport, p + 12);
    b.writeUInt16BE(c.dport, p + 14);
    b.writeUInt32BE(c.fwmark >>> 0, p + 16);
    b.writeUInt32BE(c.timeout >>> 0, p + 20);
    b.writeUInt32BE(c.caddr >>> 0, p + 24);
    b.writeUInt32BE(c.vaddr >>> 0, p + 28);
    b.writeUInt32BE(c.daddr >>> 0, p + 32);
    p += SYNC_V4_BYTES;
    if (c.flags & ConnFlag.SEQ_MASK) {
      b[p++] = IPVS_OPT_SEQ_DATA;
      b[p++] = SEQ_OPTION_BYTES;
      const s = c.seq ?? { in: ZERO_SEQ, out: ZERO_SEQ };
      for (const q of [s.in, s.out]) {
        b.writeUInt32BE(q.initSeq >>> 0, p);
        b.writeUInt32BE(q.delta >>> 0, p + 4);
        b.writeUInt32BE(q.previousDelta >>> 0, p + 8);
        p += 12;
      }
    }
    if (c.peData && c.peData.length > 0) {
      b[p++] = IPVS_OPT_PE_DATA;
      b[p++] = c.peData.length;
      b.set(c.peData, p);
      p += c.peData.length;
      if (c.peName) {
        const name = Buffer.from(c.peName, 'latin1');
        b[p++] = IPVS_OPT_PE_NAME;
        b[p++] = name.length;
        name.copy(b, p);
        p += name.length;
      }
    }
    this.used = p;
    this.count++;
    return true;
  }

  /** The message so far (a copy), with its header written. */
  finish(): Buffer {
    const b = this.buf;
    b[0] = 0;
    b[1] = this.syncid;
    b.writeUInt16BE(this.used, 2);
    b[4] = this.count;
    b[5] = SYNC_PROTO_VER;
    b.writeUInt16BE(0, 6);
    return Buffer.from(b.subarray(0, this.used));
  }

  reset(): void {
    this.used = SYNC_MESG_HEADER_BYTES;
    this.count = 0;
  }
}

const ZERO_SEQ: SeqData = { initSeq: 0, delta: 0, previousDelta: 0 };

/** Encodes `conns` into as many messages of at most `maxlen` bytes as they need. */
export function encodeSyncMessages(conns: readonly SyncConn[], syncid: number, maxlen: number): Buffer[] {
  const w = new SyncMessageWriter(maxlen, syncid);
  const out: Buffer[] = [];
  for (const c of conns) {
    if (w.add(c)) continue;
    if (w.empty) throw new RangeError(`a sync entry of ${syncConnBytes(c)} bytes does not fit a ${maxlen}-byte message`);
    out.push(w.finish());
    w.reset();
    w.add(c);
  }
  if (!w.empty) out.push(w.finish());
  return out;
}

/**
 * Decodes one datagram. `syncid` 0 accepts every syncid (the kernel's backup with syncid 0);
 * another value drops messages of other syncids (returns null, as the kernel ignores them).
 * Throws SyncDecodeError when the message is malformed.
 */
export function decodeSyncMessage(msg: Uint8Array, syncid = 0): DecodedMessage | null {
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  if (b.length < SYNC_MESG_V0_HEADER_BYTES) throw new SyncDecodeError('header', `message of ${b.length} bytes is shorter than a sync header`);
  const size = b.readUInt16BE(2);
  if (size !== b.length) throw new SyncDecodeError('size', `header says ${size} bytes, the datagram has ${b.length}`);
  const id = b[1]!;
  if (syncid !== 0 && id !== syncid) return null;
  if (b.length < SYNC_MESG_HEADER_BYTES) throw new SyncDecodeError('header', `message of ${b.length} bytes is shorter than the version-1 header (8)`);
  const reserved = b[0]!;
  const version = b[5]!;
  const spare = b.readUInt16BE(6);
  if (version !== SYNC_PROTO_VER || reserved !== 0 || spare !== 0) {
    // The kernel reads such a message as version 0 (the original format); uvs speaks version 1 only.
    const why = version !== SYNC_PROTO_VER ? `version ${version}` : reserved !== 0 ? `reserved byte ${reserved}` : `spare ${spare}`;
    throw new SyncDecodeError(version !== SYNC_PROTO_VER ? 'version' : reserved !== 0 ? 'reserved' : 'spare', `${why}: not a version-1 message (version 0 is not supported)`);
  }
  const nr = b[4]!;
  const out: DecodedMessage = { syncid: id, conns: [], skipped: [] };
  let next = SYNC_MESG_HEADER_BYTES;
  for (let i = 0; i < nr; i++) {
    const p = next;
    if (p + SYNC_V4_BYTES > b.length) throw new SyncDecodeError(`conn[${i}]`, `entry at byte ${p} runs past the message (${b.length} bytes)`);
    const verSize = b.readUInt16BE(p + 2);
    const entrySize = verSize & SVER_MASK;
    const end = p + entrySize;
    if (end > b.length) throw new SyncDecodeError(`conn[${i}].size`, `entry of ${entrySize} bytes at byte ${p} runs past the message (${b.length} bytes)`);
    if (verSize >> SVER_SHIFT) throw new SyncDecodeError(`conn[${i}].version`, `unknown entry version ${verSize >> SVER_SHIFT}`);
    const r = decodeConn(b, p, end, i);
    if (typeof r === 'string') out.skipped.push({ index: i, reason: r });
    else out.conns.push(r);
    next = p + ((entrySize + 3) & ~3);
  }
  return out;
}

/** One entry: a SyncConn, a reason string (skipped alone), or a throw (drop the message). */
function decodeConn(b: Buffer, p: number, end: number, i: number): SyncConn | string {
  const type = b[p]!;
  let o: number;
  let v6 = false;
  if (type & STYPE_F_INET6) {
    v6 = true;
    o = p + SYNC_V6_BYTES;
  } else if (type === 0) {
    o = p + SYNC_V4_BYTES;
  } else {
    throw new SyncDecodeError(`conn[${i}].type`, `unknown entry type ${type}`);
  }
  if (o > end) throw new SyncDecodeError(`conn[${i}].size`, `entry of ${end - p} bytes is shorter than its fixed part (${o - p})`);
  let seq: SyncConn['seq'];
  let peData: Uint8Array | undefined;
  let peName: string | undefined;
  let unknown = '';
  while (o < end) {
    if (o + 2 > end) throw new SyncDecodeError(`conn[${i}].option`, `option header at byte ${o} runs past the entry`);
    const ptype = b[o]!;
    const plen = b[o + 1]!;
    o += 2;
    if (plen === 0 || o + plen > end) throw new SyncDecodeError(`conn[${i}].option`, `option ${ptype} of length ${plen} at byte ${o - 2} is empty or runs past the entry`);
    switch (ptype & ~IPVS_OPT_F_PARAM) {
      case IPVS_OPT_SEQ_DATA: {
        if (plen !== SEQ_OPTION_BYTES) throw new SyncDecodeError(`conn[${i}].seq_data`, `length ${plen}, expected ${SEQ_OPTION_BYTES}`);
        if (seq) throw new SyncDecodeError(`conn[${i}].seq_data`, 'found twice');
        const rd = (k: number): SeqData => ({ initSeq: b.readUInt32BE(k), delta: b.readUInt32BE(k + 4), previousDelta: b.readUInt32BE(k + 8) });
        seq = { in: rd(o), out: rd(o + 12) };
        break;
      }
      case IPVS_OPT_PE_DATA:
        if (peData) throw new SyncDecodeError(`conn[${i}].pe_data`, 'found twice');
        peData = new Uint8Array(b.subarray(o, o + plen));
        break;
      case IPVS_OPT_PE_NAME:
        if (plen > PE_NAME_MAXLEN) throw new SyncDecodeError(`conn[${i}].pe_name`, `length ${plen} is above ${PE_NAME_MAXLEN}`);
        if (peName !== undefined) throw new SyncDecodeError(`conn[${i}].pe_name`, 'found twice');
        peName = b.toString('latin1', o, o + plen);
        break;
      default:
        if (!(ptype & IPVS_OPT_F_PARAM) && !unknown) unknown = `unknown mandatory option ${ptype & ~IPVS_OPT_F_PARAM}`;
    }
    o += plen;
  }
  if (unknown) return unknown;
  if (v6) return 'IPv6 entry (uvs serves IPv4 only)';
  const protocol = b[p + 1]!;
  const flags = b.readUInt32BE(p + 4);
  let state = b.readUInt16BE(p + 8);
  if (flags & ConnFlag.TEMPLATE) {
    if (state >= TEMPLATE_STATES) state = 0; // ip_vs_proc_sync_conn: a template's state is not used
  } else {
    const states = PROTOCOL_STATES.get(protocol);
    if (states === undefined) return `unsupported protocol ${protocol}`;
    if (state >= states) return `invalid ${protocol === IPPROTO_TCP ? 'TCP' : 'UDP'} state ${state}`;
  }
  if (peData && peName === undefined) return 'persistence-engine data without an engine name';
  const c: SyncConn = {
    af: 4,
    protocol,
    flags,
    state,
    cport: b.readUInt16BE(p + 10),
    vport: b.readUInt16BE(p + 12),
    dport: b.readUInt16BE(p + 14),
    fwmark: b.readUInt32BE(p + 16),
    timeout: b.readUInt32BE(p + 20),
    caddr: b.readUInt32BE(p + 24),
    vaddr: b.readUInt32BE(p + 28),
    daddr: b.readUInt32BE(p + 32),
  };
  if (seq) c.seq = seq;
  if (peData) c.peData = peData;
  if (peName !== undefined) c.peName = peName;
  return c;
}
