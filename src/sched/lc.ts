// lc — Least-Connection (net/netfilter/ipvs/ip_vs_lc.c).
//
// Walks the list and keeps the first dest with the smallest ip_vs_dest_conn_overhead()
// (activeconns * 256 + inactconns); OVERLOADed and weight-0 (quiesced) dests are skipped. A tie
// keeps the earlier dest in the kernel's list order (the comparison is a strict "<").

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, type LayoutSpec } from './base';
import type { PacketKey, SchedulerFactory } from './scheduler';

const SPEC: LayoutSpec = { magic: 0x5c4e0003, halfExtra: 0, globalCells: 0 };

export class LeastConnectionScheduler extends BaseScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('lc', SPEC, dests, flags, shared, owner);
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
      for (let i = 0; i < n; i++) {
        const slot = cells[base + 1 + i]!;
        const cell = slot * DEST_SLOT_CELLS;
        if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) !== 0 || d[cell + DestField.WEIGHT]! === 0) continue;
        const doh = (d[cell + DestField.ACTIVE]! << 8) + d[cell + DestField.INACTIVE]!;
        if (least < 0 || doh < loh) {
          least = slot;
          loh = doh;
        }
      }
      if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return least;
    }
  }
}

export const lcFactory: SchedulerFactory = {
  name: 'lc',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new LeastConnectionScheduler(dests, flags, allocateShared('lc', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new LeastConnectionScheduler(dests, flags, shared, false),
};
