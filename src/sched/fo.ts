// fo — Weighted Fail Over (net/netfilter/ipvs/ip_vs_fo.c).
//
// The dest with the highest weight that is not OVERLOADed; a later dest must be strictly heavier to
// win, so among equal weights the first in list order is used. Weight 0 never wins (hw starts at 0).

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, type LayoutSpec } from './base';
import type { PacketKey, SchedulerFactory } from './scheduler';

const SPEC: LayoutSpec = { magic: 0x5c4e000b, halfExtra: 0, globalCells: 0 };

export class FailOverScheduler extends BaseScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('fo', SPEC, dests, flags, shared, owner);
  }

  schedule(_key: PacketKey, _nowMs: number): number {
    const cells = this.cells;
    const d = this.d;
    for (let attempt = 0; ; attempt++) {
      const gen = Atomics.load(cells, Header.GEN);
      const base = this.halfBase(gen);
      const n = cells[base]!;
      let best = -1;
      let hw = 0;
      for (let i = 0; i < n; i++) {
        const slot = cells[base + 1 + i]!;
        const cell = slot * DEST_SLOT_CELLS;
        const w = d[cell + DestField.WEIGHT]!;
        if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) === 0 && w > hw) {
          best = slot;
          hw = w;
        }
      }
      if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return best;
    }
  }
}

export const foFactory: SchedulerFactory = {
  name: 'fo',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new FailOverScheduler(dests, flags, allocateShared('fo', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new FailOverScheduler(dests, flags, shared, false),
};
