// dh — Destination Hashing (net/netfilter/ipvs/ip_vs_dh.c).
//
// A 256-bucket table (IP_VS_DH_TAB_SIZE) filled by ip_vs_dh_reassign with the dests in list order,
// one bucket each, round and round — weights play no part. The key is the packet's destination
// address: (ntohl(daddr) * 2654435761) & 255. A bucket whose dest has weight <= 0 or is
// OVERLOADed gives no destination (dh has no fallback).

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, type LayoutSpec } from './base';
import { multiplicativeHash } from './hash';
import type { PacketKey, SchedulerFactory } from './scheduler';

export const DH_TAB_SIZE = 256;
const DH_TAB_MASK = DH_TAB_SIZE - 1;
const SPEC: LayoutSpec = { magic: 0x5c4e0008, halfExtra: DH_TAB_SIZE, globalCells: 0 };

/** The bucket layout of ip_vs_dh_reassign (-1 = empty). */
export function dhBuckets(order: readonly number[]): Int32Array {
  const table = new Int32Array(DH_TAB_SIZE).fill(-1);
  if (order.length === 0) return table;
  for (let i = 0; i < DH_TAB_SIZE; i++) table[i] = order[i % order.length]!;
  return table;
}

export function dhHashKey(addr: number): number {
  return multiplicativeHash(addr, DH_TAB_MASK);
}

export class DestinationHashingScheduler extends BaseScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('dh', SPEC, dests, flags, shared, owner);
    if (owner) this.fillExtra(-1);
  }

  schedule(key: PacketKey, _nowMs: number): number {
    const cells = this.cells;
    const d = this.d;
    const bucket = dhHashKey(key.daddr | 0);
    for (let attempt = 0; ; attempt++) {
      const gen = Atomics.load(cells, Header.GEN);
      const slot = cells[this.extraBase(gen) + bucket]!;
      let result = -1;
      if (slot >= 0) {
        const cell = slot * DEST_SLOT_CELLS;
        if (d[cell + DestField.WEIGHT]! > 0 && (d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) === 0) result = slot;
      }
      if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return result;
    }
  }

  protected override fillHalf(gen: number, order: readonly number[]): void {
    this.cells.set(dhBuckets(order), this.extraBase(gen));
  }
}

export const dhFactory: SchedulerFactory = {
  name: 'dh',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new DestinationHashingScheduler(dests, flags, allocateShared('dh', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new DestinationHashingScheduler(dests, flags, shared, false),
};
