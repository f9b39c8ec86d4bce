// Where a NAT reply goes on the wire: the next hop toward the client.
//
// IPVS hands a NAT reply to the director's own routing (ip_vs_out → ip_route_me_harder →
// neighbour of the route's gateway, or the client itself when on-link). uvs learns the same
// answer from the client's own packets: the frame a client's packet arrived in was sent by the
// next hop toward that client (the client itself on-link, else the router in front of it), to the
// director's MAC on the interface that route uses. So each NAT packet from a client records
// (client address → its frame's source MAC, destination MAC, ingress interface), and a reply to
// that client leaves with the two MACs swapped on that interface. This is the route toward the
// client as long as routing is symmetric, which a director in front of its clients has by design;
// an asymmetric set-up (client packets in on one interface, the route back out on another) is not
// covered (README.md, "Known limits").
//
// The table is shared by every worker (a reply may be received by any of them): a direct-mapped
// array of 32-byte records in a SharedArrayBuffer, each guarded by a sequence lock:
//   [0..4)  seq (Int32, odd while a writer is inside)
//   [4..8)  client address (host order)
//   [8..14) client-side next-hop MAC        [14..20) director's MAC on that interface
//   [20]    egress interface index            [21]     1 = valid
// Writers take the lock with compareExchange and skip learning when another holds it (the next
// packet learns again); readers retry once and report a miss rather than wait. A record only
// changes when its content differs, so a steady flow writes nothing.

export const CLIENT_HOP_RECORD_BYTES = 32;
const SEQ = 0;
/** Byte offset of the client address; as a word index: ADDR_WORD. */
const ADDR_WORD = 1;
const NEXT_MAC = 8;
const OWN_MAC = 14;
const EGRESS = 20;
const VALID = 21;

export class ClientHopTable {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  private readonly bytes: Uint8Array;
  private readonly words: Int32Array;
  private readonly mask: number;

  /** `capacity` is rounded up to a power of two (direct mapping by hash & mask). */
  constructor(capacity = 16384, buffer?: SharedArrayBuffer) {
    let n = 1;
    while (n < capacity) n *= 2;
    const size = n * CLIENT_HOP_RECORD_BYTES;
    if (buffer && buffer.byteLength !== size) {
      throw new RangeError(`ClientHopTable: buffer is ${buffer.byteLength} bytes, expected ${size} for ${n} records`);
    }
    this.capacity = n;
    this.mask = n - 1;
    this.buffer = buffer ?? new SharedArrayBuffer(size);
    this.bytes = new Uint8Array(this.buffer);
    this.words = new Int32Array(this.buffer);
  }

  private slotOf(addr: number): number {
    // Fibonacci hashing of the address: clients of one subnet spread over the table.
    return (Math.imul(addr | 0, 0x9e3779b1) >>> 16) & this.mask;
  }

  /**
   * Records that packets from `addr` arrive in frames from the MAC at frame[l2 + 6] to the MAC at
   * frame[l2] on interface `ingress`. Cheap when nothing changed (compares, writes nothing).
   */
  learn(addr: number, frame: Uint8Array, l2: number, ingress: number): void {
    const slot = this.slotOf(addr);
    const b = this.bytes;
    const base = slot * CLIENT_HOP_RECORD_BYTES;
    const w = base >>> 2;
    if (b[base + VALID] === 1 && this.words[w + ADDR_WORD] === (addr | 0) && b[base + EGRESS] === ingress && this.sameMacs(base, frame, l2)) return;
    const seq = Atomics.load(this.words, w + SEQ);
    if ((seq & 1) !== 0 || Atomics.compareExchange(this.words, w + SEQ, seq, seq + 1) !== seq) return;
    this.words[w + ADDR_WORD] = addr | 0;
    for (let i = 0; i < 6; i++) {
      b[base + NEXT_MAC + i] = frame[l2 + 6 + i]!; // the frame's source: next hop toward the client
      b[base + OWN_MAC + i] = frame[l2 + i]!; // the frame's destination: our MAC on that interface
    }
    b[base + EGRESS] = ingress;
    b[base + VALID] = 1;
    Atomics.store(this.words, w + SEQ, seq + 2);
  }

  private sameMacs(base: number, frame: Uint8Array, l2: number): boolean {
    const b = this.bytes;
    for (let i = 0; i < 6; i++) {
      if (b[base + NEXT_MAC + i] !== frame[l2 + 6 + i] || b[base + OWN_MAC + i] !== frame[l2 + i]) return false;
    }
    return true;
  }

  /**
   * Writes the Ethernet destination and source for a packet to `addr` at frame[l2..l2+12) and
   * returns the egress interface index, or -1 when the client's next hop is not known.
   */
  writeMacs(addr: number, frame: Uint8Array, l2: number): number {
    const slot = this.slotOf(addr);
    const b = this.bytes;
    const base = slot * CLIENT_HOP_RECORD_BYTES;
    const w = base >>> 2;
    for (let attempt = 0; attempt < 2; attempt++) {
      const s1 = Atomics.load(this.words, w + SEQ);
      if ((s1 & 1) !== 0) continue;
      if (b[base + VALID] !== 1 || this.words[w + ADDR_WORD] !== (addr | 0)) return -1;
      for (let i = 0; i < 6; i++) {
        frame[l2 + i] = b[base + NEXT_MAC + i]!;
        frame[l2 + 6 + i] = b[base + OWN_MAC + i]!;
      }
      const egress = b[base + EGRESS]!;
      if (Atomics.load(this.words, w + SEQ) === s1) return egress;
    }
    return -1;
  }

  /** The egress interface toward `addr`, or -1 when unknown (no MACs written). */
  egressOf(addr: number): number {
    const slot = this.slotOf(addr);
    const b = this.bytes;
    const base = slot * CLIENT_HOP_RECORD_BYTES;
    const w = base >>> 2;
    const s1 = Atomics.load(this.words, w + SEQ);
    if ((s1 & 1) !== 0 || b[base + VALID] !== 1 || this.words[w + ADDR_WORD] !== (addr | 0)) return -1;
    const egress = b[base + EGRESS]!;
    return Atomics.load(this.words, w + SEQ) === s1 ? egress : -1;
  }

  /** The record of `addr` as text (listings, tests), or null. */
  describe(addr: number): { nextHopMac: string; ownMac: string; egress: number } | null {
    const frame = new Uint8Array(12);
    const egress = this.writeMacs(addr, frame, 0);
    if (egress < 0) return null;
    const hex = (from: number): string => Array.from(frame.subarray(from, from + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
    return { nextHopMac: hex(0), ownMac: hex(6), egress };
  }
}
