// wlc — Weighted Least-Connection (net/netfilter/ipvs/ip_vs_wlc.c), IPVS's default scheduler.
//
// The first dest that is not OVERLOADed and has weight > 0 becomes `least`; the rest of the list
// (OVERLOADed ones skipped) replaces it when loh * dest.weight > doh * least.weight, i.e.
// doh/dw < loh/lw compared by cross-multiplication (the kernel uses __s64; these products stay far
// below 2^53). A weight-0 dest can never win that comparison, and a tie keeps the earlier dest.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, type LayoutSpec } from './base';
import type { PacketKey, SchedulerFactory } from './scheduler';

const SPEC: LayoutSpec = { magic: 0x5c4e0004, halfExtra: 0, globalCells: 0 };

/** The wlc walk over list half `base`, shared with lblc/lblcr (__ip_vs_lblc_schedule is the same). */
export function weightedLeastConnection(cells: Int32Array, base: number, d: Int32Array): number {
  const n = cells[base]!;
  let least = -1;
  let loh = 0;
  let lw = 0;
  let i = 0;
  for (; i < n; i++) {
    const slot = cells[base + 1 + i]!;
    const cell = slot * DEST_SLOT_CELLS;
    if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) === 0 && d[cell + DestField.WEIGHT]! > 0) {
      least = slot;
      lw = d[cell + DestField.WEIGHT]!;
      loh = (d[cell + DestField.ACTIVE]! << 8) + d[cell + DestField.INACTIVE]!;
      break;
    }
  }
  if (least < 0) return -1;
  for (i++; i < n; i++) {
    const slot = cells[base + 1 + i]!;
    const cell = slot * DEST_SLOT_CELLS;
    if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) !== 0) continue;
    const dw = d[cell + DestField.WEIGHT]!;
    const doh = (d[cell + DestField.ACTIVE]! << 8) + d[cell + DestField.INACTIVE]!;
    if (loh * dw > doh * lw) {
      least = slot;
      loh = doh;
      lw = dw;
    }
  }
  return least;
}

export class WeightedLeastConnectionScheduler extends BaseScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('wlc', SPEC, dests, flags, shared, owner);
  }

  schedule(_key: PacketKey, _nowMs: number): number {
    const cells = this.cells;
    for (let attempt = 0; ; attempt++) {
      const gen = Atomics.load(cells, Header.GEN);
      const least = weightedLeastConnection(cells, this.halfBase(gen), this.d);
      if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return least;
    }
  }
}

export const wlcFactory: SchedulerFactory = {
  name: 'wlc',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new WeightedLeastConnectionScheduler(dests, flags, allocateShared('wlc', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new WeightedLeastConnectionScheduler(dests, flags, shared, false),
};
