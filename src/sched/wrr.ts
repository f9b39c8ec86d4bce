// wrr — Weighted Round-Robin (net/netfilter/ipvs/ip_vs_wrr.c).
//
// The kernel's mark: cl (last chosen entry or head), cw (current weight), mw (max weight - (di - 1)),
// di (gcd of the positive weights). Each decision walks on from cl for a dest not OVERLOADed with
// weight >= cw; at the end of the list cw drops by di, and below 1 it restarts at mw. The "last pass"
// (cw <= di) checks every dest for weight >= 1 and stops at the entry it started from, so an
// all-overloaded service ends the walk. ip_vs_wrr_dest_changed (add/del/upd) sets cl = head,
// recomputes di/mw, and keeps cw unless it is above mw or 0 (then mw) or rounds it to k*di + 1.
//
// Shared state: one 32-bit cell (tag | cw | position + 1) advanced with compareExchange, so workers
// interleave into one director's sequence; mw/di live in the list half they belong to.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, MAX_WEIGHT, allocateShared, type LayoutSpec } from './base';
import { gcd } from './hash';
import type { PacketKey, SchedulerFactory } from './scheduler';

const SPEC: LayoutSpec = { magic: 0x5c4e0002, halfExtra: 2, globalCells: 1 };
/** See rr.ts: bounds starvation only. */
const CAS_RETRIES = 1 << 20;
const enum Extra {
  MW = 0,
  DI = 1,
}
const CW_BITS = 16;

function positionBits(maxDests: number): number {
  return 32 - Math.clz32(maxDests);
}

export class WeightedRoundRobinScheduler extends BaseScheduler {
  private readonly posBits: number;
  private readonly posMask: number;
  private readonly tagShift: number;

  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('wrr', SPEC, dests, flags, shared, owner);
    this.posBits = positionBits(this.maxDests);
    this.posMask = (1 << this.posBits) - 1;
    this.tagShift = this.posBits + CW_BITS;
  }

  schedule(_key: PacketKey, _nowMs: number): number {
    const cells = this.cells;
    const d = this.d;
    const at = this.globalBase;
    const posBits = this.posBits;
    let result = -1;
    for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
      const mark = cells[at]!; // validated by the compareExchange below
      const tag = mark >>> this.tagShift;
      const ext = this.extraBase(tag);
      const mw = cells[ext + Extra.MW]!;
      const di = cells[ext + Extra.DI]!;
      // No available dests (all weights 0): the kernel returns before touching the mark.
      if (mw <= 0 || di <= 0) return -1;
      const base = this.halfBase(tag);
      const n = cells[base]!;
      let cw = (mark >>> posBits) & 0xffff;
      const last = (mark & this.posMask) - 1;
      let pos = last;
      let stop = -2;
      let lastPass = false;
      let restarted = false;
      result = -1;
      search: for (;;) {
        for (let i = pos + 1; i < n; i++) {
          const slot = cells[base + 1 + i]!;
          const cell = slot * DEST_SLOT_CELLS;
          if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) === 0 && d[cell + DestField.WEIGHT]! >= cw) {
            result = slot;
            pos = i;
            break search;
          }
          if (i === stop) {
            pos = i; // err_over: the mark stays on `stop`
            break search;
          }
        }
        pos = -1; // walked back to the head
        cw -= di;
        if (cw <= 0) {
          cw = mw;
          // Either the last pass (w >= 1) already covered everything, or the walk started at the head.
          if (lastPass || last === -1) break search;
          restarted = true;
        }
        lastPass = cw <= di;
        if (lastPass && restarted && last !== -1) stop = last;
      }
      const next = (mark & ~((1 << this.tagShift) - 1)) | (cw << posBits) | (pos + 1);
      if (Atomics.compareExchange(cells, at, mark, next) === mark) return result;
    }
    return result;
  }

  protected override validate(order: readonly number[]): void {
    for (const slot of order) {
      const w = this.dests.get(slot, DestField.WEIGHT);
      if (w < 0 || w > MAX_WEIGHT) throw new RangeError(`wrr: slot ${slot} has weight ${w}, outside ipvsadm's 0..${MAX_WEIGHT}`);
    }
  }

  protected override fillHalf(gen: number, order: readonly number[]): void {
    const { di, mw } = this.mark(order);
    const ext = this.extraBase(gen);
    this.cells[ext + Extra.DI] = di;
    this.cells[ext + Extra.MW] = mw;
  }

  /** di (ip_vs_wrr_gcd_weight: gcd of the positive weights, 1 when none) and mw for a list. */
  private mark(list: readonly number[]): { di: number; mw: number } {
    let di = 0;
    let max = 0;
    for (const slot of list) {
      const w = this.dests.get(slot, DestField.WEIGHT);
      if (w > 0) di = di > 0 ? gcd(w, di) : w;
      if (w > max) max = w;
    }
    if (di === 0) di = 1;
    return { di, mw: max - (di - 1) };
  }

  /** ip_vs_wrr_dest_changed's rule for cw, given the list's di and mw. */
  private static adjust(cw: number, di: number, mw: number): number {
    if (cw > mw || cw === 0) return mw;
    if (di > 1) return Math.floor(cw / di) * di + 1;
    return cw;
  }

  protected override afterSwap(gen: number, order: readonly number[], previous: readonly number[]): void {
    // The kernel never sees a batch: every ipvsadm -a/-d/-e (and every keepalived netlink call)
    // runs dest_changed once, on the list as it is at that moment. Replay the batch that way —
    // removals, then each new server in the order it was added, then the final list — so cw ends
    // where the kernel's would (e.g. servers added one by one leave cw at 1, not at mw).
    const present = new Set(order);
    const before = new Set(previous);
    const steps: (readonly number[])[] = [];
    let list = previous.filter((slot) => present.has(slot));
    if (list.length !== previous.length) steps.push(list);
    const added = order.filter((slot) => !before.has(slot)).reverse(); // oldest first
    for (const slot of added) {
      list = [slot, ...list];
      steps.push(list);
    }
    steps.push(order);
    const tag = gen & ((1 << (32 - this.tagShift)) - 1);
    const at = this.globalBase;
    for (;;) {
      const mark = Atomics.load(this.cells, at);
      let cw = (mark >>> this.posBits) & 0xffff;
      for (const step of steps) {
        const { di, mw } = this.mark(step);
        cw = WeightedRoundRobinScheduler.adjust(cw, di, mw);
      }
      if (cw < 0) cw = 0;
      // cl = head: position 0.
      const next = (tag << this.tagShift) | (cw << this.posBits);
      if (Atomics.compareExchange(this.cells, at, mark, next) === mark) return;
    }
  }
}

export const wrrFactory: SchedulerFactory = {
  name: 'wrr',
  create(dests: DestTable, flags: number, maxDests: number) {
    if (positionBits(maxDests) > 32 - CW_BITS - 1) {
      throw new RangeError(`wrr: maxDests ${maxDests} is too large (at most ${(1 << 15) - 1}) to pack the mark in 32 bits`);
    }
    return new WeightedRoundRobinScheduler(dests, flags, allocateShared('wrr', maxDests, SPEC), true);
  },
  attach(dests: DestTable, flags: number, shared: SharedArrayBuffer) {
    return new WeightedRoundRobinScheduler(dests, flags, shared, false);
  },
};
