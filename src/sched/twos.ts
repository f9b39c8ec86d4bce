// twos — Power of Two Choices (net/netfilter/ipvs/ip_vs_twos.c).
//
// total = sum of the weights of the dests not OVERLOADed with weight > 0; two random numbers in
// [0, total] (u32 % (total + 1)); walking the list, each is decreased by every eligible weight and
// the dest at which it reaches <= 0 is that choice. choice2 wins when weight2 * overhead1 >
// weight1 * overhead2 (overhead = activeconns * 256 + inactconns), otherwise choice1.
//
// The kernel draws get_random_u32() % (total + 1). Here the default source is a per-thread
// xorshift128 generator seeded from crypto (Math.random allocates a heap number per call in V8,
// which schedule() must not); tests inject a `RandomU32` source to replay exact sequences.

import { DEST_SLOT_CELLS, DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { BaseScheduler, Header, READ_RETRIES, allocateShared, type LayoutSpec } from './base';
import type { PacketKey, SchedulerFactory } from './scheduler';
import { randomFillSync } from 'node:crypto';

const SPEC: LayoutSpec = { magic: 0x5c4e000e, halfExtra: 0, globalCells: 0 };

/** Returns a uniformly distributed integer in [0, 2^32). */
export type RandomU32 = () => number;

/** xorshift128 state (Marsaglia 2003), one per thread (module instance). */
const xorshift = randomFillSync(new Uint32Array(4));
if ((xorshift[0]! | xorshift[1]! | xorshift[2]! | xorshift[3]!) === 0) xorshift[0] = 1;

/** A uniform draw in [0, bound) from xorshift128 (bound <= 2^31), u32 % bound like the kernel. */
function drawBelow(bound: number): number {
  let t = xorshift[3]!;
  const s = xorshift[0]!;
  xorshift[3] = xorshift[2]!;
  xorshift[2] = xorshift[1]!;
  xorshift[1] = s;
  t ^= t << 11;
  t ^= t >>> 8;
  const next = (t ^ s ^ (s >>> 19)) >>> 0;
  xorshift[0] = next;
  return next % bound;
}

export class PowerOfTwoScheduler extends BaseScheduler {
  private readonly random: RandomU32 | null;

  constructor(dests: DestTable, flags: number, shared: SharedArrayBuffer, owner: boolean, random: RandomU32 | null) {
    super('twos', SPEC, dests, flags, shared, owner);
    this.random = random;
  }

  schedule(_key: PacketKey, _nowMs: number): number {
    const cells = this.cells;
    const d = this.d;
    for (let attempt = 0; ; attempt++) {
      const gen = Atomics.load(cells, Header.GEN);
      const base = this.halfBase(gen);
      const n = cells[base]!;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const cell = cells[base + 1 + i]! * DEST_SLOT_CELLS;
        const w = d[cell + DestField.WEIGHT]!;
        if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) === 0 && w > 0) total += w;
      }
      if (total === 0) {
        if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return -1;
        continue;
      }
      // "Add 1 to total_weight so that the random weights are inclusive from 0 to total_weight".
      total += 1;
      const random = this.random;
      let r1 = random === null ? drawBelow(total) : (random() >>> 0) % total;
      let r2 = random === null ? drawBelow(total) : (random() >>> 0) % total;
      let choice1 = -1;
      let choice2 = -1;
      let w1 = -1;
      let w2 = -1;
      let oh1 = 0;
      let oh2 = 0;
      for (let i = 0; i < n; i++) {
        const slot = cells[base + 1 + i]!;
        const cell = slot * DEST_SLOT_CELLS;
        if ((d[cell + DestField.FLAGS]! & DestFlag.OVERLOAD) !== 0) continue;
        const w = d[cell + DestField.WEIGHT]!;
        if (w <= 0) continue;
        r1 -= w;
        r2 -= w;
        if (r1 <= 0 && w1 === -1) {
          choice1 = slot;
          w1 = w;
          oh1 = (d[cell + DestField.ACTIVE]! << 8) + d[cell + DestField.INACTIVE]!;
        }
        if (r2 <= 0 && w2 === -1) {
          choice2 = slot;
          w2 = w;
          oh2 = (d[cell + DestField.ACTIVE]! << 8) + d[cell + DestField.INACTIVE]!;
        }
        if (w1 !== -1 && w2 !== -1) break;
      }
      let result = choice1;
      if (choice2 >= 0 && w2 * oh1 > w1 * oh2) result = choice2;
      if (attempt >= READ_RETRIES || cells[Header.GEN] === gen) return result;
    }
  }
}

/** A twos factory drawing from `random` (tests pass a scripted source); xorshift128 when omitted. */
export function makeTwosFactory(random: RandomU32 | null = null): SchedulerFactory {
  return {
    name: 'twos',
    create: (dests: DestTable, flags: number, maxDests: number) =>
      new PowerOfTwoScheduler(dests, flags, allocateShared('twos', maxDests, SPEC), true, random),
    attach: (dests: DestTable, flags: number, shared: SharedArrayBuffer) => new PowerOfTwoScheduler(dests, flags, shared, false, random),
  };
}

export const twosFactory: SchedulerFactory = makeTwosFactory();
