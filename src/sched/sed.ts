// sed — Shortest Expected Delay (net/netfilter/ipvs/ip_vs_sed.c).
//
// Like wlc but the overhead is activeconns + 1 (the incoming job counted, inactive ignored):
// the first dest not OVERLOADed with weight > 0 starts as `least`; later non-OVERLOADed dests
// replace it when loh * dw > doh * lw. Ties keep the earlier dest.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, type LayoutSpec } from './base';
import type { PacketKey, SchedulerFactory } from './scheduler';

const SPEC: LayoutSpec = { magic: 0x5c4e0005, halfExtra: 0, globalCells: 0 };

export class ShortestExpectedDelayScheduler extends BaseScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('sed', SPEC, dests, flags, shared, owner);
  }

  schedule(_key: PacketKey, _nowMs: number): number {
    const cells = this.cells;
    const d = this.d;
    for (let attempt = 0; ; attempt++) {
      const gen = Atomics.load(cells, Header.GEN);
      const base = this.halfBase(gen);
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
          loh = d[cell + DestField.ACTIVE]! + 1;
          break;
        }
      }
      if (least >= 0) {
        for (i++; i < n; i++) {
          const slot = cells[base + 1 + i]!;
          const cell = slot * DEST_SLOT_CELLS;
          if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) !== 0) continue;
          const dw = d[cell + DestField.WEIGHT]!;
          const doh = d[cell + DestField.ACTIVE]! + 1;
          if (loh * dw > doh * lw) {
            least = slot;
            loh = doh;
            lw = dw;
          }
        }
      }
      if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return least;
    }
  }
}

export const sedFactory: SchedulerFactory = {
  name: 'sed',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new ShortestExpectedDelayScheduler(dests, flags, allocateShared('sed', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new ShortestExpectedDelayScheduler(dests, flags, shared, false),
};
