// lblcr — Locality-Based Least-Connection with Replication (net/netfilter/ipvs/ip_vs_lblcr.c).
//
// Each destination address maps to a SET of real servers:
//   entry present: lastuse = now; dest = weighted least-connection member (ip_vs_dest_set_min:
//     OVERLOADed members skipped, must be AVAILABLE with weight > 0); if the set has more than one
//     member and was not modified for lblcr_expiration (24 h), its weighted most-loaded member
//     (ip_vs_dest_set_max) is dropped; if dest is missing or "overloaded" (activeconns > weight
//     while some dest has activeconns * 2 < weight), the service-wide wlc choice is made and
//     added to the set.
//   no entry: the wlc choice, stored as a one-member set.
// Members are kept newest first, as list_add_rcu() inserts them, which decides ties. A set holds
// at most SET_CAPACITY members here; inserting into a full set is skipped like the kernel's
// failed kmalloc (the chosen server is still used).

import type { DestTable } from '../tables/dest-table';
import { DEST_SLOT_CELLS, DestField, DestFlag } from '../tables/dest-table';
import { allocateShared, type LayoutSpec } from './base';
import { Entry, Global, LocalityScheduler, localityGlobalCells, timeBefore } from './locality';
import type { PacketKey, SchedulerFactory } from './scheduler';

export const SET_CAPACITY = 8;
const LASTMOD = Entry.PAYLOAD;
const SIZE = Entry.PAYLOAD + 1;
const MEMBERS = Entry.PAYLOAD + 2;
const ENTRY_CELLS = MEMBERS + SET_CAPACITY;
const SPEC: LayoutSpec = { magic: 0x5c4e000a, halfExtra: 0, globalCells: localityGlobalCells(ENTRY_CELLS) };

export class LocalityReplicationScheduler extends LocalityScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('lblcr', SPEC, ENTRY_CELLS, dests, flags, shared, owner);
  }

  schedule(key: PacketKey, nowMs: number): number {
    const now = nowMs | 0;
    this.maybeExpire(now);
    const addr = key.daddr | 0;
    const cells = this.cells;
    const index = this.find(addr);
    if (index >= 0) {
      const e = this.entry(index);
      if (cells[e + Entry.LASTUSE] !== now) cells[e + Entry.LASTUSE] = now;
      let dest = this.setMin(e);
      const expiration = cells[this.globalBase + Global.EXPIRATION]!;
      if (cells[e + SIZE]! > 1 && timeBefore((cells[e + LASTMOD]! + expiration) | 0, now)) {
        this.lock();
        const again = this.find(addr);
        if (again >= 0) {
          const locked = this.entry(again);
          if (cells[locked + SIZE]! > 1) {
            const most = this.setMax(locked);
            if (most >= 0) this.setErase(locked, most, now);
          }
        }
        this.unlock();
      }
      if (dest >= 0 && !this.localityOverloaded(dest)) return dest;
      dest = this.leastLoaded();
      if (dest < 0) return -1;
      this.store(addr, dest, now);
      return dest;
    }
    const dest = this.leastLoaded();
    if (dest < 0) return -1;
    this.store(addr, dest, now);
    return dest;
  }

  /** The members of the set for `daddr`, newest first (tests, uvsadm); empty when none. */
  members(daddr: number): number[] {
    const index = this.find(daddr | 0);
    if (index < 0) return [];
    const e = this.entry(index);
    const out: number[] = [];
    for (let i = 0; i < this.cells[e + SIZE]!; i++) out.push(this.cells[e + MEMBERS + i]!);
    return out;
  }

  /** ip_vs_lblcr_new: create the entry with {dest}, or add dest to the existing set. */
  private store(addr: number, dest: number, now: number): void {
    const cells = this.cells;
    this.lock();
    const found = this.find(addr);
    if (found >= 0) {
      this.setInsert(this.entry(found), dest, now);
    } else {
      const free = this.freeFor(addr);
      if (free >= 0) {
        const e = this.entry(free);
        cells[e + Entry.KEY] = addr;
        cells[e + Entry.LASTUSE] = now;
        cells[e + LASTMOD] = now;
        cells[e + SIZE] = 1;
        cells[e + MEMBERS] = dest;
        this.publish(free);
      }
    }
    this.unlock();
  }

  /** ip_vs_dest_set_min: weighted least-connection member, or -1. Lock-free. */
  private setMin(e: number): number {
    const cells = this.cells;
    const d = this.d;
    let size = cells[e + SIZE]!;
    if (size > SET_CAPACITY) size = SET_CAPACITY;
    let least = -1;
    let loh = 0;
    let lw = 0;
    let i = 0;
    for (; i < size; i++) {
      const slot = cells[e + MEMBERS + i]!;
      const cell = slot * DEST_SLOT_CELLS;
      if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) !== 0) continue;
      if (d[cell + DestField.WEIGHT]! > 0 && this.available(slot)) {
        least = slot;
        lw = d[cell + DestField.WEIGHT]!;
        loh = this.overheadOf(slot);
        break;
      }
    }
    if (least < 0) return -1;
    for (i++; i < size; i++) {
      const slot = cells[e + MEMBERS + i]!;
      const cell = slot * DEST_SLOT_CELLS;
      if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) !== 0) continue;
      const dw = d[cell + DestField.WEIGHT]!;
      const doh = this.overheadOf(slot);
      if (loh * dw > doh * lw && this.available(slot)) {
        least = slot;
        loh = doh;
        lw = dw;
      }
    }
    return least;
  }

  /** ip_vs_dest_set_max: weighted most-connection member with weight > 0, or -1. Under the lock. */
  private setMax(e: number): number {
    const cells = this.cells;
    const size = cells[e + SIZE]!;
    let most = -1;
    let moh = 0;
    let mw = 0;
    let i = 0;
    for (; i < size; i++) {
      const slot = cells[e + MEMBERS + i]!;
      if (this.weightOf(slot) > 0) {
        most = slot;
        mw = this.weightOf(slot);
        moh = this.overheadOf(slot);
        break;
      }
    }
    if (most < 0) return -1;
    for (i++; i < size; i++) {
      const slot = cells[e + MEMBERS + i]!;
      const dw = this.weightOf(slot);
      const doh = this.overheadOf(slot);
      if (moh * dw < doh * mw && dw > 0) {
        most = slot;
        moh = doh;
        mw = dw;
      }
    }
    return most;
  }

  /** ip_vs_dest_set_insert(check = true): newest first; a full set is left as it is. Under the lock. */
  private setInsert(e: number, dest: number, now: number): void {
    const cells = this.cells;
    const size = cells[e + SIZE]!;
    for (let i = 0; i < size; i++) if (cells[e + MEMBERS + i] === dest) return;
    if (size >= SET_CAPACITY) return;
    for (let i = size; i > 0; i--) cells[e + MEMBERS + i] = cells[e + MEMBERS + i - 1]!;
    cells[e + MEMBERS] = dest;
    cells[e + SIZE] = size + 1;
    cells[e + LASTMOD] = now;
  }

  /** ip_vs_dest_set_erase. Under the lock. */
  private setErase(e: number, dest: number, now: number): void {
    const cells = this.cells;
    const size = cells[e + SIZE]!;
    for (let i = 0; i < size; i++) {
      if (cells[e + MEMBERS + i] !== dest) continue;
      for (let j = i; j < size - 1; j++) cells[e + MEMBERS + j] = cells[e + MEMBERS + j + 1]!;
      cells[e + SIZE] = size - 1;
      cells[e + LASTMOD] = now;
      return;
    }
  }

  protected override afterSwap(_gen: number, order: readonly number[]): void {
    // Removed servers leave every set (the kernel keeps them until erased but skips them as not
    // AVAILABLE; their slots may be reused here, so they must go).
    const present = new Set(order);
    const cells = this.cells;
    this.lock();
    this.forEachEntry((index) => {
      const e = this.entry(index);
      let size = cells[e + SIZE]!;
      for (let i = 0; i < size; ) {
        if (present.has(cells[e + MEMBERS + i]!)) {
          i++;
          continue;
        }
        for (let j = i; j < size - 1; j++) cells[e + MEMBERS + j] = cells[e + MEMBERS + j + 1]!;
        size--;
      }
      cells[e + SIZE] = size;
      return false;
    });
    this.unlock();
  }
}

export const lblcrFactory: SchedulerFactory = {
  name: 'lblcr',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new LocalityReplicationScheduler(dests, flags, allocateShared('lblcr', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new LocalityReplicationScheduler(dests, flags, shared, false),
};
