// The shared-memory skeleton every scheduler here is built on.
//
// IPVS walks `svc->destinations`, a list that ip_vs_ctl.c grows with list_add_rcu() at its HEAD:
// the most recently added real server is visited first. update() receives the service's slots in
// the order they were added (src/sched/scheduler.ts) and stores them reversed, so every walk here
// visits them in the kernel's order; that order decides ties (wlc, sed, ...) and the rr/wrr
// sequence, and the bucket layout of sh/dh/mh.
//
// Layout of `shared` (Int32Array cells):
//   header   [MAGIC, GEN, MAX_DESTS, HALF_CELLS, GLOBAL_CELLS, 0, 0, 0]
//   half 0   [COUNT, slot × MAX_DESTS, per-scheduler extra (tables) ...]
//   half 1   same
//   global   per-scheduler cells that live across updates (rr/wrr cursor, lblc tables)
// The control plane writes the half that is not current, then bumps GEN (Atomics.store), so a
// worker reading half (GEN & 1) never sees it being written — unless two updates land inside one
// decision, which readers detect by reading GEN again and retrying (a seqlock over two buffers).
// Readers take GEN with Atomics.load (ordering: the half's cells are read after it) and re-check
// it with a plain read: Atomics.load is a ~10 ns call in Node 20, and the re-check only guards
// against two control-plane updates inside one decision.

import { DEST_SLOT_CELLS, DestField, type DestTable } from '../tables/dest-table';
import type { PacketKey, Scheduler } from './scheduler';

export const enum Header {
  MAGIC = 0,
  GEN = 1,
  MAX_DESTS = 2,
  HALF_CELLS = 3,
  GLOBAL_CELLS = 4,
  SIZE = 8,
}

/** How many times a reader retries when the control plane swapped the list under it. */
export const READ_RETRIES = 8;

/** ipvsadm accepts weights 0..65535; rr/wrr pack positions and weights into one 32-bit cell. */
export const MAX_WEIGHT = 65535;

export interface LayoutSpec {
  /** Distinguishes schedulers, so attaching wlc to an rr buffer fails loudly. */
  magic: number;
  /** Cells per half after the list (lookup tables). */
  halfExtra: number;
  /** Cells kept across updates. */
  globalCells: number;
}

export function halfCells(maxDests: number, spec: LayoutSpec): number {
  return 1 + maxDests + spec.halfExtra;
}

/** A fresh, zeroed shared buffer with the header filled in. */
export function allocateShared(name: string, maxDests: number, spec: LayoutSpec): SharedArrayBuffer {
  if (!Number.isInteger(maxDests) || maxDests < 1 || maxDests > 1 << 20) {
    throw new RangeError(`${name}: maxDests must be an integer in 1..${1 << 20}, got ${maxDests}`);
  }
  const half = halfCells(maxDests, spec);
  const total = Header.SIZE + 2 * half + spec.globalCells;
  const shared = new SharedArrayBuffer(total * 4);
  const cells = new Int32Array(shared);
  cells[Header.MAGIC] = spec.magic;
  cells[Header.MAX_DESTS] = maxDests;
  cells[Header.HALF_CELLS] = half;
  cells[Header.GLOBAL_CELLS] = spec.globalCells;
  return shared;
}

export abstract class BaseScheduler implements Scheduler {
  readonly name: string;
  readonly shared: SharedArrayBuffer;
  readonly flags: number;
  protected readonly dests: DestTable;
  protected readonly cells: Int32Array;
  /** The DestTable's cells, read directly on the hot path. */
  protected readonly d: Int32Array;
  protected readonly maxDests: number;
  protected readonly halfSize: number;
  protected readonly globalBase: number;
  /** Control plane only (null in attached instances): the list in kernel order, newest first. */
  protected order: number[] | null;

  /** `owner`: true for the instance made by create (control plane), false for attach (workers). */
  protected constructor(name: string, spec: LayoutSpec, dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    this.name = name;
    this.shared = shared;
    this.flags = flags | 0;
    this.dests = dests;
    this.d = dests.cells;
    const cells = new Int32Array(shared);
    if (cells.length < Header.SIZE || cells[Header.MAGIC] !== spec.magic) {
      throw new TypeError(`${name}: attach: the shared buffer was not made by the ${name} scheduler (magic ${cells[Header.MAGIC]}, want ${spec.magic})`);
    }
    this.cells = cells;
    this.maxDests = cells[Header.MAX_DESTS]!;
    this.halfSize = cells[Header.HALF_CELLS]!;
    this.globalBase = Header.SIZE + 2 * this.halfSize;
    if (this.halfSize !== halfCells(this.maxDests, spec) || cells[Header.GLOBAL_CELLS] !== spec.globalCells ||
        cells.length !== this.globalBase + spec.globalCells) {
      throw new TypeError(`${name}: attach: the shared buffer's layout does not match this version of the scheduler`);
    }
    this.order = owner ? [] : null;
  }

  /** First cell of half `h` (its COUNT cell; the list follows, then the extra cells). */
  protected halfBase(gen: number): number {
    return Header.SIZE + (gen & 1) * this.halfSize;
  }

  /** Sets the extra cells of both halves to `value` (lookup tables start as "no dest", -1). */
  protected fillExtra(value: number): void {
    for (let gen = 0; gen < 2; gen++) {
      const start = this.extraBase(gen);
      this.cells.fill(value, start, this.halfBase(gen) + this.halfSize);
    }
  }

  /** First extra cell of the half of generation `gen`. */
  protected extraBase(gen: number): number {
    return Header.SIZE + (gen & 1) * this.halfSize + 1 + this.maxDests;
  }

  update(slots: readonly number[]): void {
    const previous = this.order;
    if (previous === null) {
      throw new Error(`${this.name}: update() belongs to the control-plane instance made by create(), not to one made by attach()`);
    }
    if (slots.length > this.maxDests) {
      throw new RangeError(`${this.name}: update: ${slots.length} real servers, but the scheduler was created for at most ${this.maxDests}`);
    }
    const seen = new Set<number>();
    for (const slot of slots) {
      if (!Number.isInteger(slot) || slot < 0 || slot >= this.dests.capacity) {
        throw new RangeError(`${this.name}: update: slot ${slot} is outside the DestTable (capacity ${this.dests.capacity})`);
      }
      if (!this.dests.inUse(slot)) throw new RangeError(`${this.name}: update: slot ${slot} holds no real server`);
      if (seen.has(slot)) throw new RangeError(`${this.name}: update: slot ${slot} is listed twice`);
      seen.add(slot);
    }
    const order = slots.slice().reverse();
    this.validate(order);
    const gen = Atomics.load(this.cells, Header.GEN);
    const next = (gen + 1) | 0;
    const base = this.halfBase(next);
    this.cells[base] = order.length;
    for (let i = 0; i < order.length; i++) this.cells[base + 1 + i] = order[i]!;
    this.fillHalf(next, order, previous);
    Atomics.store(this.cells, Header.GEN, next);
    this.order = order;
    this.afterSwap(next, order, previous);
  }

  /** Control plane: refuse a list this scheduler cannot represent (before anything is written). */
  protected validate(_order: readonly number[]): void {}

  /** Control plane: fill the extra cells of the half of generation `gen` (lookup tables). */
  protected fillHalf(_gen: number, _order: readonly number[], _previous: readonly number[]): void {}

  /** Control plane: after the new half became current (rr/wrr move their cursor, lblc purges). */
  protected afterSwap(_gen: number, _order: readonly number[], _previous: readonly number[]): void {}

  abstract schedule(key: PacketKey, nowMs: number): number;

  // --- small readers of the DestTable (inlined by V8; no allocation) ---
  // Counters are read with plain element loads: the kernel's atomic_read() is a plain load too,
  // element reads of a shared Int32Array are tear-free, and a slightly stale count is what the
  // kernel's schedulers see as well. (Atomics.load costs ~10 ns each here, which made lc/wlc
  // walks of 1000 servers ten times slower.)

  protected weightOf(slot: number): number {
    return this.d[slot * DEST_SLOT_CELLS + DestField.WEIGHT]!;
  }

  /** ip_vs_dest_conn_overhead(): activeconns * 256 + inactconns. */
  protected overheadOf(slot: number): number {
    const base = slot * DEST_SLOT_CELLS;
    return (this.d[base + DestField.ACTIVE]! << 8) + this.d[base + DestField.INACTIVE]!;
  }
}

/** Weight of every slot in `order` read from the DestTable (control plane). */
export function weightsOf(dests: DestTable, order: readonly number[]): number[] {
  return order.map((slot) => dests.get(slot, DestField.WEIGHT));
}
