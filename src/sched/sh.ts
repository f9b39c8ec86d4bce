// sh — Source Hashing (net/netfilter/ipvs/ip_vs_sh.c).
//
// A 256-bucket table (IP_VS_SH_TAB_SIZE, CONFIG_IP_VS_SH_TAB_BITS = 8) filled by ip_vs_sh_reassign:
// walking the list round and round, each dest takes `weight` consecutive buckets (a weight-0 dest
// still takes one: "++d_count >= weight" moves on after the first). The key is
// hash_32(ntohs(port) + ntohl(saddr), 8), port being the source port only with sh-port
// (SchedFlag.SCHED2) for TCP/UDP/SCTP, else 0. A bucket whose dest has weight <= 0 or is
// OVERLOADed gives no destination — unless sh-fallback (SchedFlag.SCHED1): then
// ip_vs_sh_get_fallback tries offsets 0..255 from the original bucket, each looked up as
// (roffset + hash) & 255 with roffset = (offset + ihash) % 256, taking the first available dest.
//
// The table is rebuilt by update() into the list half being prepared, so workers switch to it
// atomically with the list.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, weightsOf, type LayoutSpec } from './base';
import { hash32, hasPorts } from './hash';
import { SchedFlag, type PacketKey, type SchedulerFactory } from './scheduler';

export const SH_TAB_BITS = 8;
export const SH_TAB_SIZE = 1 << SH_TAB_BITS;
const SH_TAB_MASK = SH_TAB_SIZE - 1;
const SPEC: LayoutSpec = { magic: 0x5c4e0007, halfExtra: SH_TAB_SIZE, globalCells: 0 };

/** The bucket layout of ip_vs_sh_reassign for dests in list order with these weights (-1 = empty). */
export function shBuckets(order: readonly number[], weights: readonly number[]): Int32Array {
  const table = new Int32Array(SH_TAB_SIZE).fill(-1);
  if (order.length === 0) return table;
  let p = 0;
  let count = 0;
  for (let i = 0; i < SH_TAB_SIZE; i++) {
    table[i] = order[p]!;
    if (++count >= weights[p]!) {
      p = (p + 1) % order.length;
      count = 0;
    }
  }
  return table;
}

/** ip_vs_sh_hashkey for IPv4 (addr and port in host order, offset added before the mask). */
export function shHashKey(addr: number, port: number, offset: number): number {
  return (offset + hash32((port + addr) | 0, SH_TAB_BITS)) & SH_TAB_MASK;
}

export class SourceHashingScheduler extends BaseScheduler {
  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('sh', SPEC, dests, flags, shared, owner);
    if (owner) this.fillExtra(-1);
  }

  schedule(key: PacketKey, _nowMs: number): number {
    const cells = this.cells;
    const d = this.d;
    const addr = key.saddr | 0; // int32 bits: V8 keeps them unboxed
    const port = (this.flags & SchedFlag.SCHED2) !== 0 && hasPorts(key.protocol) ? key.sport & 0xffff : 0;
    for (let attempt = 0; ; attempt++) {
      const gen = Atomics.load(cells, Header.GEN);
      const table = this.extraBase(gen);
      const ihash = shHashKey(addr, port, 0);
      let slot = cells[table + ihash]!;
      let result = -1;
      if (slot >= 0) {
        let cell = slot * DEST_SLOT_CELLS;
        if (d[cell + DestField.WEIGHT]! > 0 && (d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) === 0) {
          result = slot;
        } else if ((this.flags & SchedFlag.SCHED1) !== 0) {
          for (let offset = 0; offset < SH_TAB_SIZE; offset++) {
            const roffset = (offset + ihash) & SH_TAB_MASK;
            slot = cells[table + shHashKey(addr, port, roffset)]!;
            if (slot < 0) break;
            cell = slot * DEST_SLOT_CELLS;
            if (d[cell + DestField.WEIGHT]! > 0 && (d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) === 0) {
              result = slot;
              break;
            }
          }
        }
      }
      if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return result;
    }
  }

  protected override fillHalf(gen: number, order: readonly number[]): void {
    this.cells.set(shBuckets(order, weightsOf(this.dests, order)), this.extraBase(gen));
  }
}

export const shFactory: SchedulerFactory = {
  name: 'sh',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new SourceHashingScheduler(dests, flags, allocateShared('sh', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new SourceHashingScheduler(dests, flags, shared, false),
};
