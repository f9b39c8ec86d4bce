// mh — Maglev Hashing (net/netfilter/ipvs/ip_vs_mh.c; Eisenbud et al., NSDI '16, section 3.4).
//
// Lookup table of IP_VS_MH_TAB_SIZE = primes[CONFIG_IP_VS_MH_TAB_INDEX - 8] = 4093 entries (default
// index 12). Each dest gets offset = hsiphash(addr + port, hash1) % M and skip =
// hsiphash(addr + port, hash2) % (M - 1) + 1, keys fixed by generate_hash_secret (2654435761 and
// 2654446892 in both words), so every director computes the same table. ip_vs_mh_populate walks
// the list round and round; each dest claims `turns` consecutive preferred free positions, where
// turns = (last_weight / gcd) >> rshift, or 1 for a positive weight that shifts to 0; rshift keeps
// max_weight / gcd within IP_VS_MH_TAB_BITS (6) bits. Dests with turns 0 take no position.
//
// last_weight is the latest non-zero weight (ip_vs_ctl.c __ip_vs_update_dest): quiescing a server
// (weight 0) keeps its positions, so the table does not move; the lookup then finds the dest
// unavailable (weight <= 0 or OVERLOAD) and gives no destination, or with mh-fallback
// (SchedFlag.SCHED1) probes hsiphash(addr + port + roffset) for roffset = ihash, ihash + 1, ...
// mh-port (SchedFlag.SCHED2) adds the source port for TCP/UDP/SCTP.
//
// One difference from the kernel, for directors that run side by side (ECMP, README "Scale-out
// with ECMP"): the kernel permutes the dests in the order of the service's dest list, i.e. the
// order they were added, so two directors given the same servers in another order (or one whose
// checker removed a server and added it back at the end of the list) build different tables and
// send a flow to different servers. uvs builds the table from the dests sorted by (address,
// port): the table depends only on the set of servers and their weights. mhLookup itself keeps
// the kernel's list-order walk (its tests replay the kernel's sequences); the scheduler sorts.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, type LayoutSpec } from './base';
import { fls, gcd, hasPorts } from './hash';
import { SchedFlag, type PacketKey, type SchedulerFactory } from './scheduler';
import { hsiphashBits } from './siphash';

export const MH_TAB_SIZE = 4093;
export const MH_TAB_BITS = 6;
/** generate_hash_secret(): both 64-bit words of each key hold this value (upper halves 0). */
export const MH_HASH1 = 2654435761;
export const MH_HASH2 = 2654446892;
const SPEC: LayoutSpec = { magic: 0x5c4e000d, halfExtra: MH_TAB_SIZE, globalCells: 0 };

/** ip_vs_mh_hashkey for IPv4 reduced mod `modulus`: hsiphash of the u32 (offset + port + addr),
 *  taken as unsigned, % modulus — here so that no uint32 crosses a call boundary. */
export function mhHashKey(addr: number, port: number, secret: number, offset: number, modulus: number): number {
  return (hsiphashBits((offset + port + addr) | 0, secret | 0, 0, secret | 0, 0) >>> 0) % modulus;
}

export interface MhDest {
  slot: number;
  addr: number;
  port: number;
  lastWeight: number;
}

/** The lookup table ip_vs_mh_permutate + ip_vs_mh_populate build for dests in list order
 *  (-1 = no dest, when no dest has a positive last_weight). Control plane. */
export function mhLookup(destList: readonly MhDest[]): Int32Array {
  const M = MH_TAB_SIZE;
  const table = new Int32Array(M).fill(-1);
  let g = 0;
  let maxWeight = 0;
  for (const dest of destList) {
    if (dest.lastWeight > 0) g = g > 0 ? gcd(dest.lastWeight, g) : dest.lastWeight;
    if (dest.lastWeight > maxWeight) maxWeight = dest.lastWeight;
  }
  if (g < 1) return table;
  const shift = fls(Math.floor(maxWeight / g)) - MH_TAB_BITS;
  const rshift = shift >= 0 ? shift : 0;
  const count = destList.length;
  const perm = new Int32Array(count);
  const skip = new Int32Array(count);
  const turns = new Int32Array(count);
  destList.forEach((dest, i) => {
    perm[i] = mhHashKey(dest.addr, dest.port, MH_HASH1, 0, M);
    skip[i] = mhHashKey(dest.addr, dest.port, MH_HASH2, 0, M - 1) + 1;
    const lw = dest.lastWeight;
    turns[i] = Math.floor(lw / g) >> rshift || (lw !== 0 ? 1 : 0);
  });
  const taken = new Uint8Array(M);
  let filled = 0;
  let dtCount = 0;
  while (filled < M) {
    let p = 0;
    while (p < count) {
      if (turns[p]! < 1) {
        p++;
        continue;
      }
      let c = perm[p]!;
      while (taken[c]) {
        perm[p] = perm[p]! + skip[p]!;
        if (perm[p]! >= M) perm[p] = perm[p]! - M;
        c = perm[p]!;
      }
      taken[c] = 1;
      table[c] = destList[p]!.slot;
      if (++filled === M) return table;
      if (++dtCount >= turns[p]!) {
        dtCount = 0;
        p++;
      }
    }
  }
  return table;
}

export class MaglevHashingScheduler extends BaseScheduler {
  /** Control plane: latest non-zero weight per slot (the kernel's dest->last_weight). */
  private readonly lastWeight = new Map<number, number>();

  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean) {
    super('mh', SPEC, dests, flags, shared, owner);
    if (owner) this.fillExtra(-1);
  }

  schedule(key: PacketKey, _nowMs: number): number {
    const cells = this.cells;
    const d = this.d;
    const addr = key.saddr | 0; // int32 bits: V8 keeps them unboxed
    const port = (this.flags & SchedFlag.SCHED2) !== 0 && hasPorts(key.protocol) ? key.sport & 0xffff : 0;
    const ihash = mhHashKey(addr, port, MH_HASH1, 0, MH_TAB_SIZE);
    for (let attempt = 0; ; attempt++) {
      const gen = Atomics.load(cells, Header.GEN);
      const table = this.extraBase(gen);
      let slot = cells[table + ihash]!;
      let result = -1;
      if (slot >= 0) {
        let cell = slot * DEST_SLOT_CELLS;
        if (d[cell + DestField.WEIGHT]! > 0 && (d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) === 0) {
          result = slot;
        } else if ((this.flags & SchedFlag.SCHED1) !== 0) {
          for (let offset = 0; offset < MH_TAB_SIZE; offset++) {
            const roffset = (offset + ihash) % MH_TAB_SIZE;
            slot = cells[table + mhHashKey(addr, port, MH_HASH1, roffset, MH_TAB_SIZE)]!;
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

  protected override validate(order: readonly number[]): void {
    if (order.length > MH_TAB_SIZE) throw new RangeError(`mh: ${order.length} real servers exceed the lookup table size ${MH_TAB_SIZE}`);
  }

  protected override fillHalf(gen: number, order: readonly number[], previous: readonly number[]): void {
    const before = new Set(previous);
    const present = new Set(order);
    for (const slot of [...this.lastWeight.keys()]) if (!present.has(slot)) this.lastWeight.delete(slot);
    const list: MhDest[] = order.map((slot) => {
      const weight = this.dests.get(slot, DestField.WEIGHT);
      // "keep the last_weight with latest non-0 weight": set on add, and on every non-zero change.
      if (!before.has(slot) || weight !== 0 || !this.lastWeight.has(slot)) this.lastWeight.set(slot, weight);
      return { slot, addr: this.dests.addr(slot), port: this.dests.get(slot, DestField.PORT) & 0xffff, lastWeight: this.lastWeight.get(slot)! };
    });
    // Sorted by (address, port), not in the order added: see the file header.
    list.sort((a, b) => (a.addr >>> 0) - (b.addr >>> 0) || a.port - b.port);
    this.cells.set(mhLookup(list), this.extraBase(gen));
  }
}

export const mhFactory: SchedulerFactory = {
  name: 'mh',
  create: (dests: DestTable, flags: number, maxDests: number) =>
    new MaglevHashingScheduler(dests, flags, allocateShared('mh', maxDests, SPEC), true),
  attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new MaglevHashingScheduler(dests, flags, shared, false),
};
