// Where a NAT reply goes on the wire when its connection entry does not say: the fallback next
// hop toward a client, by route.
//
// The exact answer is kept with each connection (ConnTable.setClientHop): the worker that
// creates a NAT entry records the interface and the source MAC of the client's frame that
// created it, and replies of that connection leave that way. Nothing a later frame says changes
// it, so spoofed sources and colliding client addresses cannot misdirect a real client's replies.
// This is the route back to the client as long as routing is symmetric, which a director in front
// of its clients has by design; an asymmetric set-up (client packets in on one interface, the
// route back out on another) is not covered (README.md, "Known limits").
// (Before, a table learned from every client frame, last writer wins, served every reply: a
// spoofed frame from another MAC or interface with a real client's address redirected that
// client's replies.)
//
// Entries created without a frame (connection sync from another director, issue 13) have no
// next hop. For them IPVS would route the reply (ip_vs_out → ip_route_me_harder → neighbour of
// the route's gateway). This table is that route lookup, resolved ahead by the control plane:
// the director's IPv4 routes through a gateway on an interface uvs captures on (the default route
// included), each with the gateway's MAC from the kernel's neighbour table, our MAC on that
// interface and the interface's data-plane index, sorted longest prefix first. A worker takes the
// first route that contains the client. Clients on a directly connected network (no gateway)
// have no entry here: their own MAC is known only from their own frames, so a reply of a synced
// entry toward an on-link client is dropped (NO_CLIENT_HOP); the client's next connection, created
// here, carries its hop. src/dataplane/client-routes.ts fills the table.
//
// Layout (SharedArrayBuffer): a 32-byte header, then `capacity` 32-byte records:
//   header: [0..4) version (odd while the control plane rewrites), [4..8) record count
//   record: [0..4) prefix (host order), [4..8) mask, [8..14) gateway MAC, [14..20) our MAC,
//           [20] egress interface index
// Readers copy what they need between two equal, even loads of the version; the control plane
// rewrites the whole table rarely (every few seconds at most, and only when it changed).


export const CLIENT_HOP_RECORD_BYTES = 32;
const HEADER_BYTES = 32;
const VERSION_WORD = 0;
const COUNT_WORD = 1;
const PREFIX = 0;
const MASK = 4;
const NEXT_MAC = 8;
const OWN_MAC = 14;
const EGRESS = 20;

/** One resolved route toward clients. */
export interface ClientRoute {
  /** Network address, host order. */
  prefix: number;
  /** Prefix length, 0 (default route) .. 32. */
  prefixLen: number;
  /** The gateway's MAC: the next hop toward every client of this network. */
  nextHopMac: string;
  /** The director's MAC on the egress interface. */
  ownMac: string;
  /** Data-plane index of the egress interface. */
  egress: number;
}

export class ClientHopTable {
  readonly buffer: SharedArrayBuffer;
  /** Routes it can hold. */
  readonly capacity: number;
  private readonly bytes: Uint8Array;
  private readonly words: Int32Array;

  constructor(capacity = 256, buffer?: SharedArrayBuffer) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ClientHopTable: capacity must be a positive integer, got ${capacity}`);
    const size = HEADER_BYTES + capacity * CLIENT_HOP_RECORD_BYTES;
    if (buffer && buffer.byteLength !== size) {
      throw new RangeError(`ClientHopTable: buffer is ${buffer.byteLength} bytes, expected ${size} for ${capacity} routes`);
    }
    this.capacity = capacity;
    this.buffer = buffer ?? new SharedArrayBuffer(size);
    this.bytes = new Uint8Array(this.buffer);
    this.words = new Int32Array(this.buffer);
  }

  /** Routes held now. */
  get count(): number {
    return Atomics.load(this.words, COUNT_WORD);
  }

  /**
   * Control plane: replaces every route. Sorted here longest prefix first, so the first match is
   * the longest. Throws (changing nothing) when there are more than `capacity` or one is bad.
   */
  setRoutes(routes: readonly ClientRoute[]): void {
    if (routes.length > this.capacity) throw new RangeError(`ClientHopTable: ${routes.length} routes, room for ${this.capacity}`);
    const sorted = [...routes].sort((a, b) => b.prefixLen - a.prefixLen);
    const macs = sorted.map((r) => {
      if (!Number.isInteger(r.prefixLen) || r.prefixLen < 0 || r.prefixLen > 32) throw new RangeError(`ClientHopTable: bad prefix length ${r.prefixLen}`);
      if (!Number.isInteger(r.egress) || r.egress < 0 || r.egress > 255) throw new RangeError(`ClientHopTable: bad egress interface index ${r.egress}`);
      return [parseMac(r.nextHopMac), parseMac(r.ownMac)] as const;
    });
    const w = this.words;
    const b = this.bytes;
    const v = Atomics.add(w, VERSION_WORD, 1) + 1; // odd: readers retry
    sorted.forEach((r, i) => {
      const base = HEADER_BYTES + i * CLIENT_HOP_RECORD_BYTES;
      const mask = r.prefixLen === 0 ? 0 : (0xffffffff << (32 - r.prefixLen)) | 0;
      w[(base + PREFIX) >>> 2] = (r.prefix & mask) | 0;
      w[(base + MASK) >>> 2] = mask;
      b.set(macs[i]![0], base + NEXT_MAC);
      b.set(macs[i]![1], base + OWN_MAC);
      b[base + EGRESS] = r.egress;
    });
    Atomics.store(w, COUNT_WORD, sorted.length);
    Atomics.store(w, VERSION_WORD, v + 1);
  }

  /** Data path: the record index of the longest route containing `addr`, or -1. */
  private find(addr: number): number {
    const w = this.words;
    const n = Atomics.load(w, COUNT_WORD);
    for (let i = 0; i < n; i++) {
      const base = (HEADER_BYTES + i * CLIENT_HOP_RECORD_BYTES) >>> 2;
      if ((addr & w[base + 1]!) === w[base]) return i;
    }
    return -1;
  }

  /**
   * Writes the Ethernet destination and source for a packet to client `addr` at
   * frame[l2..l2+12) and returns the egress interface index, or -1 (frame untouched) when no
   * route through a resolved gateway contains it.
   */
  writeMacs(addr: number, frame: Uint8Array, l2: number): number {
    const w = this.words;
    const b = this.bytes;
    for (let attempt = 0; attempt < 4; attempt++) {
      const v1 = Atomics.load(w, VERSION_WORD);
      if ((v1 & 1) !== 0) continue;
      const i = this.find(addr | 0);
      if (i < 0) {
        if (Atomics.load(w, VERSION_WORD) === v1) return -1;
        continue;
      }
      const base = HEADER_BYTES + i * CLIENT_HOP_RECORD_BYTES;
      const egress = b[base + EGRESS]!;
      // A rewrite during the copy is caught by the second version load and retried.
      for (let k = 0; k < 12; k++) frame[l2 + k] = b[base + NEXT_MAC + k]!;
      if (Atomics.load(w, VERSION_WORD) === v1) return egress;
    }
    return -1;
  }

  /** The egress interface toward `addr`, or -1 when no route contains it. */
  egressOf(addr: number): number {
    const w = this.words;
    for (let attempt = 0; attempt < 4; attempt++) {
      const v1 = Atomics.load(w, VERSION_WORD);
      if ((v1 & 1) !== 0) continue;
      const i = this.find(addr | 0);
      const egress = i < 0 ? -1 : this.bytes[HEADER_BYTES + i * CLIENT_HOP_RECORD_BYTES + EGRESS]!;
      if (Atomics.load(w, VERSION_WORD) === v1) return egress;
    }
    return -1;
  }

  /** The route used for `addr`, as text (listings, tests), or null. */
  describe(addr: number): { nextHopMac: string; ownMac: string; egress: number } | null {
    const frame = new Uint8Array(12);
    const egress = this.writeMacs(addr, frame, 0);
    if (egress < 0) return null;
    const hex = (from: number): string => Array.from(frame.subarray(from, from + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
    return { nextHopMac: hex(0), ownMac: hex(6), egress };
  }
}

function parseMac(mac: string): Uint8Array {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new RangeError(`ClientHopTable: bad MAC "${mac}"`);
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}
