// The shared table of real servers ("destinations" in IPVS's words).
//
// One slot per real server, in an Int32Array over a SharedArrayBuffer so that the
// control plane, the schedulers and every data-plane worker read the same cells.
// A slot index is the real server's stable id: it does not change while the real
// server exists, whatever else is added or removed (reload diffs rely on it).
//
// Writers:
//   - the control plane writes the configuration cells (addr, port, weight, thresholds,
//     flags) with plain stores and bumps GEN afterwards;
//   - the connection table changes ACTIVE / INACTIVE / PERSIST with Atomics.add, from any
//     worker, because the schedulers (lc, wlc, sed, nq, ...) must see one director's counts.

/** Cell offsets inside one slot. */
export const enum DestField {
  /** DestFlag bits. */
  FLAGS = 0,
  /** IPv4 address, host byte order, stored as int32 (use `>>> 0` to read it back). */
  ADDR = 1,
  /** TCP/UDP port, host byte order (0 for firewall-mark services' "any port"). */
  PORT = 2,
  /** Scheduling weight, 0..65535 in ipvsadm; 0 means quiesced. */
  WEIGHT = 3,
  /** Active connections (IPVS: activeconns, TCP ESTABLISHED). */
  ACTIVE = 4,
  /** Inactive connections (IPVS: inactconns, every other state). */
  INACTIVE = 5,
  /** Persistence templates pointing at this server (IPVS: persistconns). */
  PERSIST = 6,
  /** Upper connection threshold, 0 = none (ipvsadm -x). */
  U_THRESHOLD = 7,
  /** Lower connection threshold, 0 = none (ipvsadm -y). */
  L_THRESHOLD = 8,
  /** Forwarding method: ForwardMethod. */
  FWD = 9,
  /** Index of the owning virtual service in the service table. */
  SERVICE = 10,
  /** Incremented by the control plane after each change of this slot. */
  GEN = 11,
}

export const DEST_SLOT_CELLS = 12;

export const enum DestFlag {
  /** The slot holds a real server. */
  IN_USE = 1 << 0,
  /** IPVS's IP_VS_DEST_F_AVAILABLE: the server may take new connections (cleared when deleted
   *  while connections still point at it). */
  AVAILABLE = 1 << 1,
  /** IPVS's IP_VS_DEST_F_OVERLOAD: set by the -x/-y thresholds logic. */
  OVERLOAD = 1 << 2,
}

/** ipvsadm's forwarding methods, numbered as IP_VS_CONN_F_* in the kernel (low bits). */
export const enum ForwardMethod {
  MASQ = 0,
  LOCAL = 1,
  TUNNEL = 2,
  DROUTE = 3,
}

export class DestTable {
  readonly capacity: number;
  readonly cells: Int32Array;
  readonly buffer: SharedArrayBuffer;
  /** Every slot below this one is in use (control plane): allocate() starts here, so filling a
   *  table of n slots costs O(n), not O(n²). */
  private freeHint = 0;
  /** Slots in use (control plane's count: allocate and release keep it). */
  private used = 0;

  /** Pass `buffer` to attach to a table created elsewhere (a worker thread). */
  constructor(capacity: number, buffer?: SharedArrayBuffer) {
    if (!Number.isInteger(capacity) || capacity <= 0) {
      throw new RangeError(`DestTable: capacity must be a positive integer, got ${capacity}`);
    }
    const bytes = capacity * DEST_SLOT_CELLS * 4;
    if (buffer && buffer.byteLength !== bytes) {
      throw new RangeError(`DestTable: buffer is ${buffer.byteLength} bytes, expected ${bytes} for ${capacity} slots`);
    }
    this.capacity = capacity;
    this.buffer = buffer ?? new SharedArrayBuffer(bytes);
    this.cells = new Int32Array(this.buffer);
  }

  /** First cell of slot `slot`. */
  base(slot: number): number {
    return slot * DEST_SLOT_CELLS;
  }

  get(slot: number, field: DestField): number {
    return this.cells[slot * DEST_SLOT_CELLS + field]!;
  }

  /** Control-plane store of a configuration cell. */
  set(slot: number, field: DestField, value: number): void {
    this.cells[slot * DEST_SLOT_CELLS + field] = value;
  }

  /** Atomic counter read (ACTIVE, INACTIVE, PERSIST). */
  load(slot: number, field: DestField): number {
    return Atomics.load(this.cells, slot * DEST_SLOT_CELLS + field);
  }

  /** Atomic counter change from any thread; returns the new value. */
  add(slot: number, field: DestField, delta: number): number {
    return Atomics.add(this.cells, slot * DEST_SLOT_CELLS + field, delta) + delta;
  }

  /** Sets and clears FLAGS bits atomically: the connection table flips OVERLOAD from any worker
   *  (Atomics.or/and), so the control plane must not read-modify-write the cell with plain stores. */
  updateFlags(slot: number, set: number, clear: number): void {
    const at = slot * DEST_SLOT_CELLS + DestField.FLAGS;
    if (clear !== 0) Atomics.and(this.cells, at, ~clear);
    if (set !== 0) Atomics.or(this.cells, at, set);
  }

  addr(slot: number): number {
    return this.cells[slot * DEST_SLOT_CELLS + DestField.ADDR]! >>> 0;
  }

  inUse(slot: number): boolean {
    return (this.cells[slot * DEST_SLOT_CELLS + DestField.FLAGS]! & DestFlag.IN_USE) !== 0;
  }

  /** Slots free for allocate() (control plane; a table attached in a worker does not count). */
  get free(): number {
    return this.capacity - this.used;
  }

  /** A free slot index, or -1 when the table is full. Control plane only. */
  allocate(): number {
    for (let slot = this.freeHint; slot < this.capacity; slot++) {
      if (!this.inUse(slot)) {
        const base = slot * DEST_SLOT_CELLS;
        // Cell by cell: fill() on a shared array costs a builtin call, and -R of 100,000 real
        // servers allocates 100,000 slots.
        for (let i = 0; i < DEST_SLOT_CELLS; i++) this.cells[base + i] = 0;
        this.cells[base + DestField.FLAGS] = DestFlag.IN_USE | DestFlag.AVAILABLE;
        this.freeHint = slot + 1;
        this.used++;
        return slot;
      }
    }
    this.freeHint = this.capacity;
    return -1;
  }

  /** Marks the slot unused. Only once no connection refers to it any more. */
  release(slot: number): void {
    const base = slot * DEST_SLOT_CELLS;
    if (this.inUse(slot)) this.used--;
    Atomics.store(this.cells, base + DestField.FLAGS, 0);
    Atomics.add(this.cells, base + DestField.GEN, 1);
    if (slot < this.freeHint) this.freeHint = slot;
  }
}
