// The compiled service table that data-plane workers read.
//
// The control plane keeps a readable model of virtual services (model.ts); every change compiles
// it into a ServiceSnapshot: one SharedArrayBuffer holding the services' fixed fields and an
// open-addressing index from (protocol, VIP, port) to the service's stable slot. The snapshot is
// immutable once built; a change builds a new one with a higher generation and hands it to the
// workers, which switch between two batches. Numbers only: no strings, no objects per lookup.
//
// Service slots are stable ids like real servers' DestTable slots: per-worker counters and
// connection entries refer to services by slot, so a slot keeps its meaning across snapshots.

/** Cells of one service in the services region. */
export const enum SvcField {
  /** SvcFlag bits; 0 = slot unused. */
  FLAGS = 0,
  /** IP protocol number (6, 17), or 0 for a firewall-mark service. */
  PROTOCOL = 1,
  /** Virtual IPv4 address, host order (int32; read with >>> 0). */
  ADDR = 2,
  PORT = 3,
  FWMARK = 4,
  /** Persistence timeout in seconds (ipvsadm -p); 0 when not persistent. */
  PERSIST_TIMEOUT = 5,
  /** Persistence netmask (ipvsadm -M), host order. */
  NETMASK = 6,
  /** Index of the service's scheduler in the snapshot's scheduler list. */
  SCHED_INDEX = 7,
  /** Scheduler flags (-b). */
  SCHED_FLAGS = 8,
  /** Number of real servers at compile time (0: new connections cannot be scheduled). */
  DEST_COUNT = 9,
}

export const SVC_CELLS = 10;

export const enum SvcFlag {
  IN_USE = 1 << 0,
  PERSISTENT = 1 << 1,
  /** One-packet scheduling (ipvsadm -o, UDP only). */
  ONE_PACKET = 1 << 2,
  /** The VIP's VRRP instance is master (or the service has no VRRP): forward. */
  ACTIVE = 1 << 3,
}

const HEADER_CELLS = 4;
const H_GEN = 0;
const H_CAPACITY = 1;
const H_INDEX_SIZE = 2;
const H_COUNT = 3;

/** What the control plane compiles from its model for one service. */
export interface CompiledService {
  slot: number;
  protocol: number;
  addr: number;
  port: number;
  fwmark: number;
  persistTimeout: number;
  netmask: number;
  schedIndex: number;
  schedFlags: number;
  destCount: number;
  onePacket: boolean;
  active: boolean;
}

/** Hash input standing for "any port" in the address index (no real port is this large). */
const ADDR_ONLY_PORT = 0x10000;

function indexHash(protocol: number, addr: number, port: number): number {
  // Multiplicative mixing of the three keys (Knuth's 2654435761); all int32 arithmetic.
  let h = Math.imul(addr ^ (port << 16) ^ protocol, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

function writeService(cells: Int32Array, base: number, s: CompiledService): void {
  cells[base + SvcField.FLAGS] =
    SvcFlag.IN_USE |
    (s.persistTimeout > 0 ? SvcFlag.PERSISTENT : 0) |
    (s.onePacket ? SvcFlag.ONE_PACKET : 0) |
    (s.active ? SvcFlag.ACTIVE : 0);
  cells[base + SvcField.PROTOCOL] = s.protocol;
  cells[base + SvcField.ADDR] = s.addr | 0;
  cells[base + SvcField.PORT] = s.port;
  cells[base + SvcField.FWMARK] = s.fwmark;
  cells[base + SvcField.PERSIST_TIMEOUT] = s.persistTimeout;
  cells[base + SvcField.NETMASK] = s.netmask | 0;
  cells[base + SvcField.SCHED_INDEX] = s.schedIndex;
  cells[base + SvcField.SCHED_FLAGS] = s.schedFlags;
  cells[base + SvcField.DEST_COUNT] = s.destCount;
}

export class ServiceSnapshot {
  readonly buffer: SharedArrayBuffer;
  readonly cells: Int32Array;
  readonly generation: number;
  /** Maximum number of service slots. */
  readonly capacity: number;
  private readonly indexSize: number;
  private readonly indexMask: number;
  private readonly indexBase: number;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.cells = new Int32Array(buffer);
    this.generation = this.cells[H_GEN]!;
    this.capacity = this.cells[H_CAPACITY]!;
    this.indexSize = this.cells[H_INDEX_SIZE]!;
    this.indexMask = this.indexSize - 1;
    this.indexBase = HEADER_CELLS + this.capacity * SVC_CELLS;
  }

  /** Worker side: a view over a snapshot built elsewhere. */
  static attach(buffer: SharedArrayBuffer): ServiceSnapshot {
    return new ServiceSnapshot(buffer);
  }

  /** Control plane: compiles `services` (slots below `capacity`) into a new snapshot. */
  static build(generation: number, capacity: number, services: readonly CompiledService[]): ServiceSnapshot {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new RangeError(`ServiceSnapshot: bad capacity ${capacity}`);
    // Index at most half full so probe sequences stay short.
    let indexSize = 16;
    while (indexSize < capacity * 2) indexSize *= 2;
    // Two indexes of the same size: (protocol, address, port) → service, and (protocol, address)
    // → any service on that address (fragments carry no port, yet must be recognised).
    const buffer = new SharedArrayBuffer((HEADER_CELLS + capacity * SVC_CELLS + 2 * indexSize) * 4);
    const cells = new Int32Array(buffer);
    cells[H_GEN] = generation;
    cells[H_CAPACITY] = capacity;
    cells[H_INDEX_SIZE] = indexSize;
    cells[H_COUNT] = services.length;
    const indexBase = HEADER_CELLS + capacity * SVC_CELLS;
    for (const s of services) {
      if (!Number.isInteger(s.slot) || s.slot < 0 || s.slot >= capacity) {
        throw new RangeError(`ServiceSnapshot: service slot ${s.slot} outside 0..${capacity - 1}`);
      }
      const base = HEADER_CELLS + s.slot * SVC_CELLS;
      if (cells[base + SvcField.FLAGS] !== 0) throw new RangeError(`ServiceSnapshot: service slot ${s.slot} used twice`);
      writeService(cells, base, s);
      // Firewall-mark services are listed but cannot be matched on the wire (docs/architecture.md, "Firewall-mark services"): the
      // AF_PACKET tap runs before netfilter sets marks. They stay out of the index.
      if (s.protocol === 0) continue;
      const addrBase = indexBase + indexSize;
      let j = indexHash(s.protocol, s.addr | 0, ADDR_ONLY_PORT) & (indexSize - 1);
      for (;;) {
        const cur = cells[addrBase + j]!;
        if (cur === 0) {
          cells[addrBase + j] = s.slot + 1;
          break;
        }
        const other = HEADER_CELLS + (cur - 1) * SVC_CELLS;
        if (cells[other + SvcField.PROTOCOL] === s.protocol && cells[other + SvcField.ADDR] === (s.addr | 0)) break;
        j = (j + 1) & (indexSize - 1);
      }
      let i = indexHash(s.protocol, s.addr | 0, s.port) & (indexSize - 1);
      for (;;) {
        const cur = cells[indexBase + i]!;
        if (cur === 0) {
          cells[indexBase + i] = s.slot + 1;
          break;
        }
        const other = HEADER_CELLS + (cur - 1) * SVC_CELLS;
        if (cells[other + SvcField.PROTOCOL] === s.protocol && cells[other + SvcField.ADDR] === (s.addr | 0) && cells[other + SvcField.PORT] === s.port) {
          throw new RangeError(`ServiceSnapshot: two services with protocol ${s.protocol}, address ${s.addr >>> 0}, port ${s.port}`);
        }
        i = (i + 1) & (indexSize - 1);
      }
    }
    return new ServiceSnapshot(buffer);
  }

  /**
   * Control plane: a new snapshot that is `prev` with some slots changed — O(changes) instead of
   * build()'s O(services), so one change on a table of 10,000 services stays cheap. `set`: the
   * services (new or changed) to write; `clear`: slots that hold no service any more; `count`:
   * the number of services afterwards; `slotsAt(protocol, addr)`: the slots that hold a
   * service on that address after the change (the address index keeps one of them).
   * Index entries are removed with backward-shift deletion (linear probing stays tombstone-free,
   * so lookups cost the same as in a freshly built snapshot).
   */
  static patch(prev: ServiceSnapshot, generation: number, set: readonly CompiledService[], clear: readonly number[], count: number,
    slotsAt: (protocol: number, addr: number) => Iterable<number>): ServiceSnapshot {
    const buffer = new SharedArrayBuffer(prev.buffer.byteLength);
    const cells = new Int32Array(buffer);
    cells.set(prev.cells);
    cells[H_GEN] = generation;
    cells[H_COUNT] = count;
    const capacity = prev.capacity;
    const size = prev.indexSize;
    const mask = size - 1;
    const exactBase = HEADER_CELLS + capacity * SVC_CELLS;
    const addrBase = exactBase + size;
    const cellBase = (slot: number): number => HEADER_CELLS + slot * SVC_CELLS;
    const exactHome = (entry: number): number => {
      const b = cellBase(entry - 1);
      return indexHash(cells[b + SvcField.PROTOCOL]!, cells[b + SvcField.ADDR]!, cells[b + SvcField.PORT]!) & mask;
    };
    const addrHome = (entry: number): number => {
      const b = cellBase(entry - 1);
      return indexHash(cells[b + SvcField.PROTOCOL]!, cells[b + SvcField.ADDR]!, ADDR_ONLY_PORT) & mask;
    };
    // Linear probing's deletion without tombstones (Knuth 6.4, algorithm R): later entries of the
    // cluster move back into the hole unless their home lies cyclically in (hole, position].
    const remove = (base: number, at: number, home: (entry: number) => number): void => {
      let hole = at;
      let j = at;
      for (;;) {
        j = (j + 1) & mask;
        const e = cells[base + j]!;
        if (e === 0) break;
        const k = home(e);
        const stays = hole <= j ? hole < k && k <= j : hole < k || k <= j;
        if (!stays) {
          cells[base + hole] = e;
          hole = j;
        }
      }
      cells[base + hole] = 0;
    };
    const changing = new Set<number>();
    for (const s of set) changing.add(s.slot);
    for (const slot of clear) changing.add(slot);
    const addrPairs = new Map<string, { protocol: number; addr: number }>();
    // 1. Every changing slot's entries come out while all cells still hold the old keys.
    for (const slot of changing) {
      if (!Number.isInteger(slot) || slot < 0 || slot >= capacity) throw new RangeError(`ServiceSnapshot.patch: service slot ${slot} outside 0..${capacity - 1}`);
      const b = cellBase(slot);
      if (cells[b + SvcField.FLAGS] === 0 || cells[b + SvcField.PROTOCOL] === 0) continue;
      const protocol = cells[b + SvcField.PROTOCOL]!;
      const addr = cells[b + SvcField.ADDR]!;
      for (let i = indexHash(protocol, addr, cells[b + SvcField.PORT]!) & mask; cells[exactBase + i] !== 0; i = (i + 1) & mask) {
        if (cells[exactBase + i] === slot + 1) {
          remove(exactBase, i, exactHome);
          break;
        }
      }
      addrPairs.set(`${protocol}/${addr}`, { protocol, addr });
    }
    // The address index's entry for a changing slot's address goes too (re-added below).
    for (const { protocol, addr } of addrPairs.values()) {
      for (let i = indexHash(protocol, addr, ADDR_ONLY_PORT) & mask; cells[addrBase + i] !== 0; i = (i + 1) & mask) {
        const b = cellBase(cells[addrBase + i]! - 1);
        if (cells[b + SvcField.PROTOCOL] === protocol && cells[b + SvcField.ADDR] === addr) {
          remove(addrBase, i, addrHome);
          break;
        }
      }
    }
    // 2. New cells, and their exact entries.
    for (const slot of clear) cells.fill(0, cellBase(slot), cellBase(slot) + SVC_CELLS);
    for (const s of set) {
      const b = cellBase(s.slot);
      cells.fill(0, b, b + SVC_CELLS);
      writeService(cells, b, s);
      if (s.protocol === 0) continue;
      let i = indexHash(s.protocol, s.addr | 0, s.port) & mask;
      for (; cells[exactBase + i] !== 0; i = (i + 1) & mask) {
        const o = cellBase(cells[exactBase + i]! - 1);
        if (cells[o + SvcField.PROTOCOL] === s.protocol && cells[o + SvcField.ADDR] === (s.addr | 0) && cells[o + SvcField.PORT] === s.port) {
          throw new RangeError(`ServiceSnapshot: two services with protocol ${s.protocol}, address ${s.addr >>> 0}, port ${s.port}`);
        }
      }
      cells[exactBase + i] = s.slot + 1;
      addrPairs.set(`${s.protocol}/${s.addr | 0}`, { protocol: s.protocol, addr: s.addr | 0 });
    }
    // 3. One address entry per address that still has a service.
    for (const { protocol, addr } of addrPairs.values()) {
      let holder = -1;
      for (const slot of slotsAt(protocol, addr)) {
        const b = cellBase(slot);
        if (cells[b + SvcField.FLAGS] !== 0 && cells[b + SvcField.PROTOCOL] === protocol && cells[b + SvcField.ADDR] === addr) {
          holder = slot;
          break;
        }
      }
      if (holder < 0) continue;
      let i = indexHash(protocol, addr, ADDR_ONLY_PORT) & mask;
      let present = false;
      for (; cells[addrBase + i] !== 0; i = (i + 1) & mask) {
        const b = cellBase(cells[addrBase + i]! - 1);
        if (cells[b + SvcField.PROTOCOL] === protocol && cells[b + SvcField.ADDR] === addr) {
          present = true;
          break;
        }
      }
      if (!present) cells[addrBase + i] = holder + 1;
    }
    return new ServiceSnapshot(buffer);
  }

  /** Control plane: sets or clears the ACTIVE flag of a slot (VRRP), on a snapshot not yet sent. */
  setActive(slot: number, active: boolean): void {
    const at = HEADER_CELLS + slot * SVC_CELLS + SvcField.FLAGS;
    const f = this.cells[at]!;
    if (f === 0) return;
    this.cells[at] = active ? f | SvcFlag.ACTIVE : f & ~SvcFlag.ACTIVE;
  }

  get count(): number {
    return this.cells[H_COUNT]!;
  }

  /** The service slot for a packet to addr:port over protocol, or -1. Hot path: no allocation. */
  lookup(protocol: number, addr: number, port: number): number {
    const cells = this.cells;
    const a = addr | 0;
    let i = indexHash(protocol, a, port) & this.indexMask;
    for (;;) {
      const cur = cells[this.indexBase + i]!;
      if (cur === 0) return -1;
      const base = HEADER_CELLS + (cur - 1) * SVC_CELLS;
      if (cells[base + SvcField.ADDR] === a && cells[base + SvcField.PORT] === port && cells[base + SvcField.PROTOCOL] === protocol) {
        return cur - 1;
      }
      i = (i + 1) & this.indexMask;
    }
  }

  /** True when some service of `protocol` has the virtual address `addr` (any port). Hot path. */
  hasAddress(protocol: number, addr: number): boolean {
    const cells = this.cells;
    const a = addr | 0;
    const base = this.indexBase + this.indexSize;
    let i = indexHash(protocol, a, ADDR_ONLY_PORT) & this.indexMask;
    for (;;) {
      const cur = cells[base + i]!;
      if (cur === 0) return false;
      const svc = HEADER_CELLS + (cur - 1) * SVC_CELLS;
      if (cells[svc + SvcField.ADDR] === a && cells[svc + SvcField.PROTOCOL] === protocol) return true;
      i = (i + 1) & this.indexMask;
    }
  }

  /** The distinct virtual addresses of matchable services: the BPF filter and the kernel guard
   *  are built from them. Control plane only. */
  addresses(): number[] {
    const out = new Set<number>();
    for (let slot = 0; slot < this.capacity; slot++) {
      const base = HEADER_CELLS + slot * SVC_CELLS;
      if (this.cells[base + SvcField.FLAGS] !== 0 && this.cells[base + SvcField.PROTOCOL] !== 0) out.add(this.cells[base + SvcField.ADDR]! >>> 0);
    }
    return [...out];
  }

  get(slot: number, field: SvcField): number {
    return this.cells[HEADER_CELLS + slot * SVC_CELLS + field]!;
  }

  flags(slot: number): number {
    return this.cells[HEADER_CELLS + slot * SVC_CELLS + SvcField.FLAGS]!;
  }
}
