// Where a frame for a real server goes on the wire: the next-hop MAC, the director's own MAC on
// the egress interface, which egress interface, its MTU and (TUN) the director's address toward
// the real server. One 32-byte record per DestTable slot in a SharedArrayBuffer: the control plane
// fills it from the kernel's routes and neighbour table (netinfo.ts) and refreshes it; workers read
// it per packet with no lookup beyond the slot index.

export const NEXT_HOP_RECORD_BYTES = 32;

/** Byte offsets inside a record. */
export const enum NextHopField {
  /** 6 bytes: the next hop's MAC (the real server itself when on-link). */
  DST_MAC = 0,
  /** 6 bytes: the director's MAC on the egress interface. */
  SRC_MAC = 6,
  /** NextHopFlag bits. */
  FLAGS = 12,
  /** Index of the egress interface in the data plane's interface list. */
  EGRESS = 13,
  /** 2 bytes big-endian: the egress interface's MTU. */
  MTU = 14,
  /** 4 bytes big-endian: the director's IPv4 address toward the real server (TUN's outer source). */
  SRC_ADDR = 16,
}

export const enum NextHopFlag {
  /** The record is complete: MACs known. */
  VALID = 1 << 0,
  /** The real server is reached through a router, not on the director's L2 (DR cannot work). */
  VIA_GATEWAY = 1 << 1,
}

export interface NextHopInfo {
  dstMac: string;
  srcMac: string;
  egress: number;
  mtu: number;
  srcAddr: number;
  viaGateway: boolean;
}

export class NextHopTable {
  readonly buffer: SharedArrayBuffer;
  readonly bytes: Uint8Array;
  readonly capacity: number;

  /** Control plane: called after set/copy/clear changed a slot's record (the fast path mirrors
   *  the records it forwards with, fast-path.ts). */
  onChange: ((slot: number) => void) | null = null;

  constructor(capacity: number, buffer?: SharedArrayBuffer) {
    const size = capacity * NEXT_HOP_RECORD_BYTES;
    if (buffer && buffer.byteLength !== size) {
      throw new RangeError(`NextHopTable: buffer is ${buffer.byteLength} bytes, expected ${size} for ${capacity} slots`);
    }
    this.capacity = capacity;
    this.buffer = buffer ?? new SharedArrayBuffer(size);
    this.bytes = new Uint8Array(this.buffer);
  }

  /** Control plane: fills the record of `slot`. The flags byte is written last so a worker that
   *  sees VALID sees the MACs too (x86 keeps stores in order; Atomics.store makes it explicit). */
  set(slot: number, info: NextHopInfo): void {
    const b = this.bytes;
    const base = slot * NEXT_HOP_RECORD_BYTES;
    Atomics.store(b, base + NextHopField.FLAGS, 0);
    writeMac(b, base + NextHopField.DST_MAC, info.dstMac);
    writeMac(b, base + NextHopField.SRC_MAC, info.srcMac);
    b[base + NextHopField.EGRESS] = info.egress;
    b[base + NextHopField.MTU] = (info.mtu >>> 8) & 0xff;
    b[base + NextHopField.MTU + 1] = info.mtu & 0xff;
    const a = info.srcAddr >>> 0;
    b[base + NextHopField.SRC_ADDR] = a >>> 24;
    b[base + NextHopField.SRC_ADDR + 1] = (a >>> 16) & 0xff;
    b[base + NextHopField.SRC_ADDR + 2] = (a >>> 8) & 0xff;
    b[base + NextHopField.SRC_ADDR + 3] = a & 0xff;
    Atomics.store(b, base + NextHopField.FLAGS, NextHopFlag.VALID | (info.viaGateway ? NextHopFlag.VIA_GATEWAY : 0));
    this.onChange?.(slot);
  }

  /** Control plane: makes `slot`'s record a copy of `from`'s (many services share a real
   *  server's address: one parse of the MACs, then byte copies). Flags last, as set() does. */
  copy(from: number, slot: number): void {
    const b = this.bytes;
    const src = from * NEXT_HOP_RECORD_BYTES;
    const base = slot * NEXT_HOP_RECORD_BYTES;
    Atomics.store(b, base + NextHopField.FLAGS, 0);
    b.copyWithin(base, src, src + NEXT_HOP_RECORD_BYTES);
    Atomics.store(b, base + NextHopField.FLAGS, Atomics.load(b, src + NextHopField.FLAGS));
    this.onChange?.(slot);
  }

  clear(slot: number): void {
    Atomics.store(this.bytes, slot * NEXT_HOP_RECORD_BYTES + NextHopField.FLAGS, 0);
    this.onChange?.(slot);
  }

  flags(slot: number): number {
    return Atomics.load(this.bytes, slot * NEXT_HOP_RECORD_BYTES + NextHopField.FLAGS);
  }

  egress(slot: number): number {
    return this.bytes[slot * NEXT_HOP_RECORD_BYTES + NextHopField.EGRESS]!;
  }

  mtu(slot: number): number {
    const base = slot * NEXT_HOP_RECORD_BYTES + NextHopField.MTU;
    return (this.bytes[base]! << 8) | this.bytes[base + 1]!;
  }

  srcAddr(slot: number): number {
    const b = this.bytes;
    const base = slot * NEXT_HOP_RECORD_BYTES + NextHopField.SRC_ADDR;
    return ((b[base]! << 24) | (b[base + 1]! << 16) | (b[base + 2]! << 8) | b[base + 3]!) >>> 0;
  }

  /** Copies the record's two MACs over the frame's Ethernet destination and source. */
  writeMacs(slot: number, frame: Uint8Array, l2: number): void {
    // A plain loop: subarray() would allocate a view per packet.
    const b = this.bytes;
    const base = slot * NEXT_HOP_RECORD_BYTES;
    for (let i = 0; i < 12; i++) frame[l2 + i] = b[base + i]!;
  }

  /** The MACs as text, for listings and errors. */
  macs(slot: number): { dst: string; src: string } {
    const base = slot * NEXT_HOP_RECORD_BYTES;
    return { dst: macText(this.bytes, base), src: macText(this.bytes, base + 6) };
  }
}

function writeMac(b: Uint8Array, off: number, mac: string): void {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new RangeError(`NextHopTable: bad MAC "${mac}"`);
  for (let i = 0; i < 6; i++) b[off + i] = parseInt(parts[i]!, 16);
}

function macText(b: Uint8Array, off: number): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(b[off + i]!.toString(16).padStart(2, '0'));
  return out.join(':');
}
