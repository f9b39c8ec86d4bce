// rr — Round-Robin (net/netfilter/ipvs/ip_vs_rr.c).
//
// The kernel keeps svc->sched_data pointing at the last chosen list entry (or the list head) and, on
// each new connection, walks on from there, wrapping once, to the first real server that is not
// OVERLOADed and has weight > 0. ip_vs_rr_del_dest moves the cursor to the previous entry when the
// entry it points at is removed, so the walk continues with the removed server's successor.
//
// Here the cursor is one shared 32-bit cell: (generation tag << 24) | (position + 1), 0 = head.
// Workers advance it with compareExchange, so any number of them produce one director's sequence.
// The tag names the half (list version) the position refers to; update() rewrites the cell with the
// new tag in one compareExchange, so a worker that decided on the old list fails its exchange and
// decides again on the new one.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, allocateShared, type LayoutSpec } from './base';
import type { PacketKey, SchedulerFactory } from './scheduler';

const SPEC: LayoutSpec = { magic: 0x5c4e0001, halfExtra: 0, globalCells: 1 };
/** Exchanges a decision may lose before it gives up advancing the shared cursor (and returns its
 *  pick anyway). Each lost exchange means another worker advanced, so this only bounds starvation;
 *  a small bound is not enough: a worker still running unoptimized code loses most races against
 *  an optimized one (measured: dozens of 64-try give-ups in 120 000 decisions). */
const CAS_RETRIES = 1 << 20;
const POS_MASK = 0xffffff;

export class RoundRobinScheduler extends BaseScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('rr', SPEC, dests, flags, shared, owner);
  }

  schedule(_key: PacketKey, _nowMs: number): number {
    const cells = this.cells;
    const d = this.d;
    const at = this.globalBase;
    let found = -1;
    for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
      // A plain read: the compareExchange below validates it.
      const cursor = cells[at]!;
      const base = this.halfBase(cursor >>> 24);
      const n = cells[base]!;
      let i = (cursor & POS_MASK) - 1;
      found = -1;
      // One full circle starting after the cursor (the kernel's two passes: rest of the list,
      // then from the head up to and including the last chosen entry).
      for (let k = 0; k < n; k++) {
        i++;
        if (i >= n) i = 0;
        const slot = cells[base + 1 + i]!;
        const cell = slot * DEST_SLOT_CELLS;
        if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) === 0 && d[cell + DestField.WEIGHT]! > 0) {
          found = slot;
          break;
        }
      }
      // No destination: the kernel leaves the cursor where it was.
      if (found < 0) return -1;
      if (Atomics.compareExchange(cells, at, cursor, (cursor & ~POS_MASK) | (i + 1)) === cursor) return found;
    }
    return found;
  }

  protected override afterSwap(gen: number, order: readonly number[], previous: readonly number[]): void {
    const index = new Map<number, number>();
    order.forEach((slot, i) => index.set(slot, i));
    const at = this.globalBase;
    for (;;) {
      const cursor = Atomics.load(this.cells, at);
      let oldPos = (cursor & POS_MASK) - 1;
      if (oldPos >= previous.length) oldPos = -1;
      // ip_vs_rr_del_dest: a removed entry hands the cursor to its predecessor (repeatedly, when
      // several were removed); entries added at the head do not move it.
      let newPos = -1;
      for (let p = oldPos; p >= 0; p--) {
        const at2 = index.get(previous[p]!);
        if (at2 !== undefined) {
          newPos = at2;
          break;
        }
      }
      const next = ((gen & 0xff) << 24) | (newPos + 1);
      if (Atomics.compareExchange(this.cells, at, cursor, next) === cursor) return;
    }
  }
}

export const rrFactory: SchedulerFactory = {
  name: 'rr',
  create(dests: DestTable, flags: number, maxDests: number) {
    if (maxDests >= POS_MASK) throw new RangeError(`rr: maxDests ${maxDests} does not fit the 24-bit cursor`);
    return new RoundRobinScheduler(dests, flags, allocateShared('rr', maxDests, SPEC), true);
  },
  attach(dests: DestTable, flags: number, shared: SharedArrayBuffer) {
    return new RoundRobinScheduler(dests, flags, shared, false);
  },
};
