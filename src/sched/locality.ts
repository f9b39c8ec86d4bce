// The shared table behind lblc and lblcr: destination address -> real server (set), with the
// kernel's expiry, in the scheduler's SharedArrayBuffer so that every worker sees one table.
//
// Kernel (ip_vs_lblc.c / ip_vs_lblcr.c): a hash table of 2^10 chained buckets, entries allocated on
// demand, a timer every CHECK_EXPIRE_INTERVAL (60 s) that
//   - every COUNT_FOR_FULL_EXPIRATION-th (30th) run without garbage collection does a full check,
//     dropping entries unused for sysctl lblc(r)_expiration (24 h by default);
//   - otherwise, when there are more than max_size (16 × 1024) entries, drops entries unused for
//     ENTRY_TIMEOUT (6 min), up to (entries - max_size) × 4/3 of them (at most max_size / 2),
//     bucket by bucket from a rover.
// Here: fixed capacity (2 × max_size) open addressing with linear probing, keyed on the uint32
// address; "buckets" of the sweep are runs of SWEEP_CHUNK cells. Readers probe without locks
// (a slot is published by an Atomics.store of its STATE after its other cells are written);
// writers hold a tiny spin lock, as the kernel holds svc->sched_lock. Deletion shifts later entries
// back (no tombstones), so probes stay short. A reader racing with a writer can miss an entry for
// one decision; it then schedules afresh, as the kernel does for an entry it cannot see yet. When
// the table is full no entry is created and the chosen server is used anyway (the kernel's
// kmalloc-failure path). The expiry runs lazily inside schedule(): the worker whose decision
// finds the 60 s period over wins a compareExchange and runs it.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, type LayoutSpec } from './base';
import { hash32 } from './hash';
import { weightedLeastConnection } from './wlc';

export const CHECK_EXPIRE_INTERVAL_MS = 60_000;
export const ENTRY_TIMEOUT_MS = 6 * 60_000;
export const DEFAULT_EXPIRATION_MS = 24 * 60 * 60_000;
export const COUNT_FOR_FULL_EXPIRATION = 30;
/** The kernel's max_size: IP_VS_LBLC_TAB_SIZE * 16. */
export const LOCALITY_MAX_SIZE = 1024 * 16;
export const LOCALITY_TABLE_BITS = 15;
export const LOCALITY_CAPACITY = 1 << LOCALITY_TABLE_BITS;
const MASK = LOCALITY_CAPACITY - 1;
const SWEEP_CHUNK = 32;
const LOCK_SPIN_LIMIT = 1 << 27;

export const enum Global {
  LOCK = 0,
  ENTRIES = 1,
  ROVER = 2,
  COUNTER = 3,
  NEXT_CHECK = 4,
  ARMED = 5,
  /** sysctl lblc_expiration / lblcr_expiration in ms. */
  EXPIRATION = 6,
  TABLE = 8,
}

/** First cells of every entry; schedulers append their payload. */
export const enum Entry {
  STATE = 0,
  KEY = 1,
  LASTUSE = 2,
  PAYLOAD = 3,
}

const EMPTY = 0;
const USED = 1;

export function localityGlobalCells(entryCells: number): number {
  return Global.TABLE + LOCALITY_CAPACITY * entryCells;
}

/** wrapping "a is before b" on int32 millisecond stamps, like the kernel's time_before on jiffies. */
export function timeBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export abstract class LocalityScheduler extends BaseScheduler {
  protected readonly entryCells: number;
  protected readonly table: number;

  protected constructor(name: string, spec: LayoutSpec, entryCells: number, dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super(name, spec, dests, flags, shared, owner);
    this.entryCells = entryCells;
    this.table = this.globalBase + Global.TABLE;
    if (owner) {
      this.cells[this.globalBase + Global.COUNTER] = 1;
      this.cells[this.globalBase + Global.EXPIRATION] = DEFAULT_EXPIRATION_MS;
    }
  }

  /** The sysctl lblc_expiration / lblcr_expiration (ms); any thread. */
  setExpiration(ms: number): void {
    if (!Number.isInteger(ms) || ms < 1000 || ms > 0x7fffffff) throw new RangeError(`${this.name}: expiration must be 1000..${0x7fffffff} ms, got ${ms}`);
    Atomics.store(this.cells, this.globalBase + Global.EXPIRATION, ms);
  }

  /** Number of entries in the table (tests, stats). */
  entryCount(): number {
    return Atomics.load(this.cells, this.globalBase + Global.ENTRIES);
  }

  protected lock(): void {
    const at = this.globalBase + Global.LOCK;
    // Critical sections are a probe or a chunk of the sweep: spin. The bound (well over a second
    // of spinning) only matters if a worker was terminated while holding the lock; the table
    // then carries on rather than hanging every worker.
    for (let spins = 0; spins < LOCK_SPIN_LIMIT; spins++) {
      if (Atomics.compareExchange(this.cells, at, 0, 1) === 0) return;
    }
    Atomics.store(this.cells, at, 1);
  }

  protected unlock(): void {
    Atomics.store(this.cells, this.globalBase + Global.LOCK, 0);
  }

  /** First cell of entry `index`. */
  protected entry(index: number): number {
    return this.table + index * this.entryCells;
  }

  /** Lock-free lookup: the entry index holding `key`, or -1. */
  protected find(key: number): number {
    const cells = this.cells;
    let i = hash32(key, LOCALITY_TABLE_BITS);
    for (let probes = 0; probes < LOCALITY_CAPACITY; probes++) {
      const e = this.table + i * this.entryCells;
      if (Atomics.load(cells, e + Entry.STATE) === EMPTY) return -1;
      if (cells[e + Entry.KEY] === key) return i;
      i = (i + 1) & MASK;
    }
    return -1;
  }

  /** Under the lock: index of the first empty entry on `key`'s probe path, or -1 if full. */
  protected freeFor(key: number): number {
    let i = hash32(key, LOCALITY_TABLE_BITS);
    for (let probes = 0; probes < LOCALITY_CAPACITY; probes++) {
      if (this.cells[this.table + i * this.entryCells + Entry.STATE] === EMPTY) return i;
      i = (i + 1) & MASK;
    }
    return -1;
  }

  /** Under the lock: publishes entry `index` (its other cells already written). */
  protected publish(index: number): void {
    Atomics.store(this.cells, this.entry(index) + Entry.STATE, USED);
    Atomics.add(this.cells, this.globalBase + Global.ENTRIES, 1);
  }

  /** Under the lock: deletes entry `index`, shifting later entries of the run back. */
  protected remove(index: number): void {
    const cells = this.cells;
    const size = this.entryCells;
    let hole = index;
    Atomics.store(cells, this.entry(hole) + Entry.STATE, EMPTY);
    let j = hole;
    for (let probes = 0; probes < LOCALITY_CAPACITY; probes++) {
      j = (j + 1) & MASK;
      const ej = this.entry(j);
      if (cells[ej + Entry.STATE] === EMPTY) break;
      const home = hash32(cells[ej + Entry.KEY]!, LOCALITY_TABLE_BITS);
      // Entry j may stay if its home lies cyclically in (hole, j].
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      const eh = this.entry(hole);
      for (let c = 1; c < size; c++) cells[eh + c] = cells[ej + c]!;
      Atomics.store(cells, eh + Entry.STATE, USED);
      Atomics.store(cells, ej + Entry.STATE, EMPTY);
      hole = j;
    }
    Atomics.sub(cells, this.globalBase + Global.ENTRIES, 1);
  }

  /** The wlc choice over the current list (__ip_vs_lblc_schedule / __ip_vs_lblcr_schedule). */
  protected leastLoaded(): number {
    for (let attempt = 0; ; attempt++) {
      const gen = Atomics.load(this.cells, Header.GEN);
      const least = weightedLeastConnection(this.cells, this.halfBase(gen), this.d);
      if (attempt >= READ_RETRIES || this.cells[Header.GEN] === gen) return least;
    }
  }

  /** is_overloaded() of lblc/lblcr: more active connections than weight, while some dest of the
   *  service (any, even quiesced) has fewer than half its weight. */
  protected localityOverloaded(slot: number): boolean {
    const d = this.d;
    const cell = slot * DEST_SLOT_CELLS;
    if (d[cell + DestField.ACTIVE]! <= d[cell + DestField.WEIGHT]!) return false;
    const base = this.halfBase(Atomics.load(this.cells, Header.GEN));
    const n = this.cells[base]!;
    for (let i = 0; i < n; i++) {
      const other = this.cells[base + 1 + i]! * DEST_SLOT_CELLS;
      if (d[other + DestField.ACTIVE]! * 2 < d[other + DestField.WEIGHT]!) return true;
    }
    return false;
  }

  /** IP_VS_DEST_F_AVAILABLE (and the slot still holding a real server). */
  protected available(slot: number): boolean {
    const flags = this.d[slot * DEST_SLOT_CELLS + DestField.FLAGS]!;
    return (flags & (DestFlag.IN_USE | DestFlag.AVAILABLE)) === (DestFlag.IN_USE | DestFlag.AVAILABLE);
  }

  /** Runs the periodic expiry when its 60 s period is over; called at the top of schedule(). */
  protected maybeExpire(now: number): void {
    const cells = this.cells;
    const g = this.globalBase;
    if (cells[g + Global.ARMED] === 0) {
      // The kernel arms its timer at init_service; here at the first decision.
      if (Atomics.compareExchange(cells, g + Global.ARMED, 0, 1) === 0) Atomics.store(cells, g + Global.NEXT_CHECK, (now + CHECK_EXPIRE_INTERVAL_MS) | 0);
      return;
    }
    const next = cells[g + Global.NEXT_CHECK]!; // plain read; the compareExchange decides
    if (timeBefore(now, next)) return;
    if (Atomics.compareExchange(cells, g + Global.NEXT_CHECK, next, (now + CHECK_EXPIRE_INTERVAL_MS) | 0) !== next) return;
    this.checkExpire(now);
  }

  /** ip_vs_lblc_check_expire / ip_vs_lblcr_check_expire (one runner at a time). */
  checkExpire(now: number): void {
    const cells = this.cells;
    const g = this.globalBase;
    const counter = cells[g + Global.COUNTER]!;
    if (counter % COUNT_FOR_FULL_EXPIRATION === 0) {
      this.sweep(now, Atomics.load(cells, g + Global.EXPIRATION), true, 0);
      cells[g + Global.COUNTER] = 1;
      return;
    }
    const entries = Atomics.load(cells, g + Global.ENTRIES);
    if (entries <= LOCALITY_MAX_SIZE) {
      cells[g + Global.COUNTER] = counter + 1;
      return;
    }
    let goal = Math.floor(((entries - LOCALITY_MAX_SIZE) * 4) / 3);
    if (goal > LOCALITY_MAX_SIZE / 2) goal = LOCALITY_MAX_SIZE / 2;
    this.sweep(now, ENTRY_TIMEOUT_MS, false, goal);
  }

  /** Drops entries unused for `timeout` ms, chunk by chunk from the rover; unless `full`, stops
   *  after the chunk in which `goal` entries have gone. */
  private sweep(now: number, timeout: number, full: boolean, goal: number): void {
    const cells = this.cells;
    const g = this.globalBase;
    const chunks = LOCALITY_CAPACITY / SWEEP_CHUNK;
    let chunk = cells[g + Global.ROVER]!;
    for (let n = 0; n < chunks; n++) {
      chunk = (chunk + 1) % chunks;
      this.lock();
      const start = chunk * SWEEP_CHUNK;
      for (let i = start, guard = 0; i < start + SWEEP_CHUNK && guard < 2 * SWEEP_CHUNK; guard++) {
        const e = this.entry(i);
        if (cells[e + Entry.STATE] === USED && !timeBefore(now, (cells[e + Entry.LASTUSE]! + timeout) | 0)) {
          this.remove(i); // a later entry may have moved into i: look at i again
          goal--;
        } else {
          i++;
        }
      }
      this.unlock();
      if (!full && goal <= 0) break;
    }
    cells[g + Global.ROVER] = chunk;
  }

  /** Under the lock, every used entry index (control plane purge). */
  protected forEachEntry(fn: (index: number) => boolean): void {
    for (let i = 0; i < LOCALITY_CAPACITY; ) {
      const e = this.entry(i);
      if (this.cells[e + Entry.STATE] === USED && fn(i)) continue; // fn removed i: look again
      i++;
    }
  }
}
