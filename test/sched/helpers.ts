// Test fixtures for the schedulers: a DestTable with named real servers, and a reusable packet key.
import { DestField, DestFlag, DestTable } from '../../src/tables/dest-table';
import type { PacketKey, Scheduler } from '../../src/sched/scheduler';

export interface ServerSpec {
  name: string;
  weight: number;
  active?: number;
  inactive?: number;
  overload?: boolean;
  addr?: number;
  port?: number;
}

export class Lab {
  readonly dests: DestTable;
  readonly slots = new Map<string, number>();
  readonly names = new Map<number, string>();

  constructor(capacity = 64, buffer?: SharedArrayBuffer) {
    this.dests = new DestTable(capacity, buffer);
  }

  /** Adds servers (in this order, as ipvsadm -a would) and returns their slots. */
  add(...servers: ServerSpec[]): number[] {
    return servers.map((s, i) => {
      const slot = this.dests.allocate();
      if (slot < 0) throw new Error('Lab: DestTable full');
      this.slots.set(s.name, slot);
      this.names.set(slot, s.name);
      this.dests.set(slot, DestField.ADDR, (s.addr ?? (0x0a000100 + slot + 1 + i * 0)) | 0);
      this.dests.set(slot, DestField.PORT, s.port ?? 80);
      this.set(s.name, s);
      return slot;
    });
  }

  set(name: string, s: Partial<ServerSpec>): void {
    const slot = this.slot(name);
    if (s.weight !== undefined) this.dests.set(slot, DestField.WEIGHT, s.weight);
    if (s.active !== undefined) Atomics.store(this.dests.cells, this.dests.base(slot) + DestField.ACTIVE, s.active);
    if (s.inactive !== undefined) Atomics.store(this.dests.cells, this.dests.base(slot) + DestField.INACTIVE, s.inactive);
    if (s.overload !== undefined) {
      const flags = this.dests.get(slot, DestField.FLAGS);
      this.dests.set(slot, DestField.FLAGS, s.overload ? flags | DestFlag.OVERLOAD : flags & ~DestFlag.OVERLOAD);
    }
  }

  /** Removes a real server from the table (after it left the service). */
  release(name: string): void {
    this.dests.release(this.slot(name));
    this.names.delete(this.slot(name));
    this.slots.delete(name);
  }

  slot(name: string): number {
    const slot = this.slots.get(name);
    if (slot === undefined) throw new Error(`Lab: no server ${name}`);
    return slot;
  }

  list(...names: string[]): number[] {
    return names.map((n) => this.slot(n));
  }

  name(slot: number): string {
    return slot < 0 ? '-' : (this.names.get(slot) ?? `#${slot}`);
  }

  /** `count` decisions as server names ('-' for none); with `connect`, each pick gains an active connection. */
  run(sched: Scheduler, count: number, opts: { key?: PacketKey; connect?: boolean; now?: number } = {}): string[] {
    const key = opts.key ?? packetKey();
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const slot = sched.schedule(key, opts.now ?? 0);
      out.push(this.name(slot));
      if (opts.connect && slot >= 0) this.dests.add(slot, DestField.ACTIVE, 1);
    }
    return out;
  }
}

export function packetKey(saddr = 0xc0a80001, daddr = 0x0a000001, sport = 40000, dport = 80, protocol = 6): PacketKey {
  return { protocol, saddr, sport, daddr, dport };
}

/** "A B A" → ['A', 'B', 'A'] */
export function seq(text: string): string[] {
  return text.trim().split(/\s+/);
}
