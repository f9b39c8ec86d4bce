// The -R batch on the control socket, packed: one binary record per command, base64 inside the
// JSON request line (protocol.ts, `{ type: 'batch', packed }`). A restore of 10,000 services × 10
// real servers is 110,000 commands: as JSON objects that was 23 MB to write and to parse, and
// 330,000 objects kept alive on both sides; packed it is about 4.5 MB of bytes (6 MB of base64),
// and uvsd decodes each command as it applies it, so no command outlives its turn.
//
// Record layout (little-endian; every command starts with its op byte):
//   service key  fwmark u32, af u8, protocol u8, port u16, addr (4 bytes for af 4, 16 for af 6)
//   service      key, flags u32, timeout u32, netmask u32, scheduler str, peName str
//   dest         af u8, addr (4|16), port u16, fwd u8, tunType u8, tunPort u16, tunFlags u16,
//                weight u32, uThreshold u32, lThreshold u32
//   str          u8 length in UTF-16 code units, then u16 per unit (exact for any JS string)
//   timeouts     tcp u32, tcpFin u32, udp u32
// An address of family 6 has 16 bytes on the wire, so IPv6 real servers and services fit
// without a new version; today's model keeps an IPv4 number only (0 for an IPv6 literal, which
// the model refuses with EOPNOTSUPP), carried in the last 4 of those bytes.

import type { IpvsadmCommand } from '../config/ipvsadm-args';
import type { DestConfig, ServiceConfig, ServiceKey } from '../service/model';

/** The `format` of a packed batch; a daemon refuses a format it does not know. */
export const PACKED_BATCH_FORMAT = 'uvs-batch/1';

const enum Op {
  ADD_SERVICE = 1,
  EDIT_SERVICE = 2,
  DELETE_SERVICE = 3,
  FLUSH = 4,
  ADD_DEST = 5,
  EDIT_DEST = 6,
  DELETE_DEST = 7,
  ZERO_ONE = 8,
  ZERO_ALL = 9,
  SET_TIMEOUTS = 10,
}

/** A batch's commands, visited in order (an array, or a packed batch decoded as it goes). */
export interface BatchSource {
  readonly count: number;
  forEach(visit: (c: IpvsadmCommand, index: number) => void): void;
}

export function arrayBatch(commands: readonly IpvsadmCommand[]): BatchSource {
  return { count: commands.length, forEach: (visit) => commands.forEach((c, i) => visit(c, i)) };
}

/** A malformed packed batch (a client bug or a version mismatch): answered as a protocol error. */
export class PackedBatchError extends Error {}

/** Builds a packed batch one command at a time; the buffer grows by doubling. */
export class BatchEncoder {
  private buf = Buffer.allocUnsafe(1 << 16);
  private pos = 0;
  count = 0;

  add(c: IpvsadmCommand): void {
    // The longest fixed record is about 60 bytes; a service's names reserve their own room.
    this.reserve(128);
    switch (c.cmd) {
      case 'add-service':
      case 'edit-service':
        this.u8(c.cmd === 'add-service' ? Op.ADD_SERVICE : Op.EDIT_SERVICE);
        this.service(c.service);
        break;
      case 'delete-service':
        this.u8(Op.DELETE_SERVICE);
        this.key(c.service);
        break;
      case 'flush':
        this.u8(Op.FLUSH);
        break;
      case 'add-dest':
      case 'edit-dest':
      case 'delete-dest':
        this.u8(c.cmd === 'add-dest' ? Op.ADD_DEST : c.cmd === 'edit-dest' ? Op.EDIT_DEST : Op.DELETE_DEST);
        this.key(c.service);
        this.dest(c.dest);
        break;
      case 'zero':
        if (c.service === null) {
          this.u8(Op.ZERO_ALL);
        } else {
          this.u8(Op.ZERO_ONE);
          this.key(c.service);
        }
        break;
      case 'set-timeouts':
        this.u8(Op.SET_TIMEOUTS);
        this.u32(c.timeouts.tcp);
        this.u32(c.timeouts.tcpFin);
        this.u32(c.timeouts.udp);
        break;
      default:
        throw new RangeError(`batch: "${c.cmd}" is not a table change`);
    }
    this.count++;
  }

  /** The packed bytes, base64 (what the request line carries). */
  base64(): string {
    return this.buf.toString('base64', 0, this.pos);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private u8(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`batch: ${v} does not fit a byte`);
    this.buf[this.pos++] = v;
  }

  private u16(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`batch: ${v} does not fit 16 bits`);
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
  }

  private u32(v: number): void {
    // Addresses and masks are kept unsigned, but a signed 32-bit spelling is the same bits.
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw new RangeError(`batch: ${v} does not fit 32 bits`);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  private str(s: string): void {
    this.u8(s.length);
    for (let i = 0; i < s.length; i++) this.u16(s.charCodeAt(i));
  }

  private addr(af: number, addr: number): void {
    this.u8(af);
    if (af === 6) {
      this.buf.fill(0, this.pos, this.pos + 12);
      this.pos += 12;
    } else if (af !== 4) {
      throw new RangeError(`batch: address family ${af}`);
    }
    this.u32(addr);
  }

  private key(k: ServiceKey): void {
    this.u32(k.fwmark);
    this.u8(k.protocol);
    this.u16(k.port);
    this.addr(k.af, k.addr);
  }

  private service(s: ServiceConfig): void {
    this.reserve(64 + 2 * (s.scheduler.length + s.peName.length));
    this.key(s);
    this.u32(s.flags);
    this.u32(s.timeout);
    this.u32(s.netmask);
    this.str(s.scheduler);
    this.str(s.peName);
  }

  private dest(d: DestConfig): void {
    this.addr(d.af, d.addr);
    this.u16(d.port);
    this.u8(d.fwd);
    this.u8(d.tunType);
    this.u16(d.tunPort);
    this.u16(d.tunFlags);
    this.u32(d.weight);
    this.u32(d.uThreshold);
    this.u32(d.lThreshold);
  }
}

/**
 * A packed batch as a BatchSource: each visit decodes the commands anew, one at a time. A run of
 * commands on the same service (a service's real servers) shares one key object; the model
 * copies what it keeps, so nobody holds on to it.
 */
export class PackedBatch implements BatchSource {
  readonly count: number;
  private readonly buf: Buffer;
  private pos = 0;
  private lastKey: ServiceKey | null = null;
  private lastKeyAt = -1;
  private lastKeyLen = 0;

  constructor(base64: string, count: number) {
    this.buf = Buffer.from(base64, 'base64');
    this.count = count;
  }

  /** Visits the commands in order. Malformed bytes, or fewer or more commands than `count`, throw
   *  PackedBatchError when reached: the first visit (uvsd's check copy) finds them before
   *  anything live is changed. */
  forEach(visit: (c: IpvsadmCommand, index: number) => void): void {
    this.pos = 0;
    this.lastKey = null;
    let i = 0;
    for (; this.pos < this.buf.length; i++) {
      if (i === this.count) throw new PackedBatchError(`packed batch: more than the ${this.count} commands the request says`);
      visit(this.command(), i);
    }
    if (i !== this.count) throw new PackedBatchError(`packed batch: ${i} commands, the request says ${this.count}`);
  }

  private command(): IpvsadmCommand {
    const op = this.u8();
    switch (op) {
      case Op.ADD_SERVICE: return { cmd: 'add-service', service: this.service() };
      case Op.EDIT_SERVICE: return { cmd: 'edit-service', service: this.service() };
      case Op.DELETE_SERVICE: return { cmd: 'delete-service', service: this.sharedKey() };
      case Op.FLUSH: return { cmd: 'flush' };
      case Op.ADD_DEST: return { cmd: 'add-dest', service: this.sharedKey(), dest: this.dest() };
      case Op.EDIT_DEST: return { cmd: 'edit-dest', service: this.sharedKey(), dest: this.dest() };
      case Op.DELETE_DEST: return { cmd: 'delete-dest', service: this.sharedKey(), dest: this.dest() };
      case Op.ZERO_ONE: return { cmd: 'zero', service: this.sharedKey() };
      case Op.ZERO_ALL: return { cmd: 'zero', service: null };
      case Op.SET_TIMEOUTS: return { cmd: 'set-timeouts', timeouts: { tcp: this.u32(), tcpFin: this.u32(), udp: this.u32() } };
      default: throw new PackedBatchError(`packed batch: unknown command ${op} at byte ${this.pos - 1}`);
    }
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new PackedBatchError(`packed batch: truncated at byte ${this.pos}`);
  }

  private u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  private u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  private u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  private str(): string {
    const n = this.u8();
    this.need(2 * n);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.u16());
    return s;
  }

  private af(): 4 | 6 {
    const af = this.u8();
    if (af !== 4 && af !== 6) throw new PackedBatchError(`packed batch: address family ${af} at byte ${this.pos - 1}`);
    if (af === 6) {
      this.need(12);
      this.pos += 12;
    }
    return af;
  }

  private key(): ServiceKey {
    const fwmark = this.u32();
    const protocol = this.u8();
    const port = this.u16();
    const af = this.af();
    return { fwmark, af, protocol, addr: this.u32(), port };
  }

  /** The key, or the previous command's key object when the bytes are the same. */
  private sharedKey(): ServiceKey {
    const at = this.pos;
    const key = this.key();
    const len = this.pos - at;
    const prev = this.lastKey;
    if (prev !== null && len === this.lastKeyLen && this.sameBytes(this.lastKeyAt, at, len)) return prev;
    this.lastKey = key;
    this.lastKeyAt = at;
    this.lastKeyLen = len;
    return key;
  }

  private sameBytes(a: number, b: number, len: number): boolean {
    const buf = this.buf;
    for (let i = 0; i < len; i++) if (buf[a + i] !== buf[b + i]) return false;
    return true;
  }

  private service(): ServiceConfig {
    const k = this.key();
    return {
      fwmark: k.fwmark, af: k.af, protocol: k.protocol, addr: k.addr, port: k.port,
      flags: this.u32(), timeout: this.u32(), netmask: this.u32(), scheduler: this.str(), peName: this.str(),
    };
  }

  private dest(): DestConfig {
    const af = this.af();
    const addr = this.u32();
    const port = this.u16();
    const fwd = this.u8();
    const tunType = this.u8();
    const tunPort = this.u16();
    const tunFlags = this.u16();
    return { af, addr, port, fwd, weight: this.u32(), uThreshold: this.u32(), lThreshold: this.u32(), tunType, tunPort, tunFlags };
  }
}
