// Test helpers for the connection table: a small DestTable and a scheduler of our own written
// against the Scheduler interface (the real schedulers live in src/sched/).
import type { PacketKey, Scheduler } from '../../src/sched/scheduler';
import { DestField, DestFlag, DestTable, ForwardMethod } from '../../src/tables/dest-table';

export function ip(dotted: string): number {
  const p = dotted.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function addDest(d: DestTable, addr: string, port: number, forward: ForwardMethod, weight = 1): number {
  const slot = d.allocate();
  if (slot < 0) throw new Error('dest table full');
  d.set(slot, DestField.ADDR, ip(addr) | 0);
  d.set(slot, DestField.PORT, port);
  d.set(slot, DestField.WEIGHT, weight);
  d.set(slot, DestField.FWD, forward);
  return slot;
}

/** Round robin over `slots`, skipping weight 0 and OVERLOAD, like IPVS rr. Counts its calls. */
export class TestRoundRobin implements Scheduler {
  readonly name = 'test-rr';
  readonly shared = new SharedArrayBuffer(4);
  calls = 0;
  private slots: readonly number[] = [];
  private next = 0;
  constructor(private readonly dests: DestTable, slots: readonly number[]) {
    this.slots = slots;
  }
  update(slots: readonly number[]): void {
    this.slots = slots;
    this.next = 0;
  }
  schedule(_key: PacketKey, _nowMs: number): number {
    this.calls++;
    for (let n = 0; n < this.slots.length; n++) {
      const slot = this.slots[this.next]!;
      this.next = (this.next + 1) % this.slots.length;
      const flags = this.dests.get(slot, DestField.FLAGS);
      if ((flags & DestFlag.OVERLOAD) !== 0 || this.dests.get(slot, DestField.WEIGHT) === 0) continue;
      return slot;
    }
    return -1;
  }
}

export function counters(d: DestTable, slot: number): { active: number; inactive: number; persist: number } {
  return {
    active: d.load(slot, DestField.ACTIVE),
    inactive: d.load(slot, DestField.INACTIVE),
    persist: d.load(slot, DestField.PERSIST),
  };
}
