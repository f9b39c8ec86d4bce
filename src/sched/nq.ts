// nq — Never Queue (net/netfilter/ipvs/ip_vs_nq.c).
//
// Walks the list skipping OVERLOADed and weight-0 dests; the first one with no active connection
// is returned at once (an idle server beats a fast one); otherwise the sed choice: overhead
// activeconns + 1, replaced when loh * dw > doh * lw, ties keep the earlier dest.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, type LayoutSpec } from './base';
import type { PacketKey, SchedulerFactory } from './scheduler';

const SPEC: LayoutSpec = { magic: 0x5c4e0006, halfExtra: 0, globalCells: 0 };

export class NeverQueueScheduler extends BaseScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('nq', SPEC, dests, flags, shared, owner);
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
      for (let i = 0; i < n; i++) {
        const slot = cells[base + 1 + i]!;
        const cell = slot * DEST_SLOT_CELLS;
        const dw = d[cell + DestField.WEIGHT]!;
        if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) !== 0 || dw === 0) continue;
        const active = d[cell + DestField.ACTIVE]!;
        if (active === 0) {
          least = slot;
          break;
        }
        const doh = active + 1;
        if (least < 0 || loh * dw > doh * lw) {
          least = slot;
          loh = doh;
          lw = dw;
        }
      }
      if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return least;
    }
  }
}

export const nqFactory: SchedulerFactory = {
  name: 'nq',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new NeverQueueScheduler(dests, flags, allocateShared('nq', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new NeverQueueScheduler(dests, flags, shared, false),
};
