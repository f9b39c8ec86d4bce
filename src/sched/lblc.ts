// lblc — Locality-Based Least-Connection (net/netfilter/ipvs/ip_vs_lblc.c).
//
// Keyed on the packet's DESTINATION address (cache clusters: one cache server per site):
//   entry = table[daddr]; if present, lastuse = now, and its dest is used when it is AVAILABLE,
//   has weight > 0 and is not "overloaded" (activeconns > weight while some dest has
//   activeconns * 2 < weight) — note: the cached dest's OVERLOAD flag is not consulted, as in the
//   kernel. Otherwise the wlc choice is made and stored (ip_vs_lblc_new replaces the entry's dest).
// Entries expire as described in locality.ts; update() also drops entries of removed servers.

import type { DestTable } from '../tables/dest-table';
import { allocateShared, type LayoutSpec } from './base';
import { Entry, LocalityScheduler, localityGlobalCells } from './locality';
import type { PacketKey, SchedulerFactory } from './scheduler';

const DEST = Entry.PAYLOAD;
const ENTRY_CELLS = Entry.PAYLOAD + 1;
const SPEC: LayoutSpec = { magic: 0x5c4e0009, halfExtra: 0, globalCells: localityGlobalCells(ENTRY_CELLS) };

export class LocalityLeastConnectionScheduler extends LocalityScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('lblc', SPEC, ENTRY_CELLS, dests, flags, shared, owner);
  }

  schedule(key: PacketKey, nowMs: number): number {
    const now = nowMs | 0;
    this.maybeExpire(now);
    const addr = key.daddr | 0;
    const cells = this.cells;
    const index = this.find(addr);
    if (index >= 0) {
      const e = this.entry(index);
      // "We only hold a read lock, but this is atomic": a plain store, and none when unchanged,
      // so workers hitting the same entry do not keep stealing its cache line.
      if (cells[e + Entry.LASTUSE] !== now) cells[e + Entry.LASTUSE] = now;
      const dest = cells[e + DEST]!;
      if (this.available(dest) && this.weightOf(dest) > 0 && !this.localityOverloaded(dest)) return dest;
    }
    const dest = this.leastLoaded();
    if (dest < 0) return -1;
    this.lock();
    const found = this.find(addr);
    if (found >= 0) {
      // ip_vs_lblc_new: same dest keeps the entry; another one replaces it (fresh lastuse).
      const e = this.entry(found);
      if (cells[e + DEST] !== dest) {
        Atomics.store(cells, e + DEST, dest);
        Atomics.store(cells, e + Entry.LASTUSE, now);
      }
    } else {
      const free = this.freeFor(addr);
      if (free >= 0) {
        const e = this.entry(free);
        cells[e + Entry.KEY] = addr;
        cells[e + Entry.LASTUSE] = now;
        cells[e + DEST] = dest;
        this.publish(free);
      }
    }
    this.unlock();
    return dest;
  }

  /** The cached real server for destination address `daddr`, or -1 (tests, uvsadm). */
  lookup(daddr: number): number {
    const index = this.find(daddr | 0);
    return index < 0 ? -1 : this.cells[this.entry(index) + DEST]!;
  }

  protected override afterSwap(_gen: number, order: readonly number[]): void {
    const present = new Set(order);
    this.lock();
    this.forEachEntry((index) => {
      if (present.has(this.cells[this.entry(index) + DEST]!)) return false;
      this.remove(index);
      return true;
    });
    this.unlock();
  }
}

export const lblcFactory: SchedulerFactory = {
  name: 'lblc',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new LocalityLeastConnectionScheduler(dests, flags, allocateShared('lblc', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new LocalityLeastConnectionScheduler(dests, flags, shared, false),
};
