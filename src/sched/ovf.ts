// ovf — Overflow-connection (net/netfilter/ipvs/ip_vs_ovf.c).
//
// The heaviest dest whose active connections do not exceed its weight: OVERLOADed dests, weight 0
// and activeconns > weight are skipped; among the rest a strictly higher weight wins, so equal
// weights keep the first in list order. Traffic "overflows" to the next weight once the first fills.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, type LayoutSpec } from './base';
import type { PacketKey, SchedulerFactory } from './scheduler';

const SPEC: LayoutSpec = { magic: 0x5c4e000c, halfExtra: 0, globalCells: 0 };

export class OverflowScheduler extends BaseScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('ovf', SPEC, dests, flags, shared, owner);
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
        if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) !== 0 || d[cell + DestField.ACTIVE]! > w || w === 0) continue;
        if (best < 0 || w > hw) {
          best = slot;
          hw = w;
        }
      }
      if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return best;
    }
  }
}

export const ovfFactory: SchedulerFactory = {
  name: 'ovf',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new OverflowScheduler(dests, flags, allocateShared('ovf', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new OverflowScheduler(dests, flags, shared, false),
};
