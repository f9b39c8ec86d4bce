// The snapshot message → the per-slot ConnService array a Pipeline runs on. Shared by the ring
// workers (worker.ts) and the pcap backend (pcap-loop.ts): both receive the same message from the
// DataPlane and must build the same services, with schedulers attached to the shared state the
// control plane created (so every backend and worker schedules as one director).

import type { DestTable } from '../tables/dest-table';
import type { ServiceSnapshot } from '../service/snapshot';
import type { ConnService } from '../conn/schedule';
import { getSchedulerFactory } from '../sched/index';
import type { WorkerService } from './worker';

/** One ConnService per service slot of `snapshot` (null where the slot holds no service). */
export function attachConnServices(snapshot: ServiceSnapshot, services: readonly WorkerService[], dests: DestTable): (ConnService | null)[] {
  const out: (ConnService | null)[] = new Array<ConnService | null>(snapshot.capacity).fill(null);
  for (const s of services) {
    const scheduler = getSchedulerFactory(s.scheduler.name).attach(dests, s.scheduler.flags, s.scheduler.shared);
    out[s.slot] = {
      protocol: s.protocol, addr: s.addr, port: s.port, persistent: s.persistent,
      persistTimeoutMs: s.persistTimeoutMs, netmask: s.netmask, onePacket: s.onePacket, scheduler,
    };
  }
  return out;
}

/** The per-slot services a backend runs on, kept across snapshots: a snapshot message carries
 *  either all services (`full`: a worker's first, or after a restart) or only the slots that
 *  changed since generation `base` (`removed`: slots that hold no service any more), so a change
 *  to one service of 10,000 costs one scheduler attach, not 10,000. */
export class ConnServiceSet {
  private services: (ConnService | null)[] = [];
  private generation = -1;

  constructor(private readonly dests: DestTable) {}

  /**
   * Applies a snapshot message and returns the array for Pipeline.setSnapshot, or null when the
   * message is a delta on a generation this set does not have (a restarted worker gets a full
   * one next). Runs between batches, so the pipeline sees the old services or the new ones.
   */
  apply(snapshot: ServiceSnapshot, msg: { services: readonly WorkerService[]; removed?: readonly number[]; full?: boolean; base?: number }): (ConnService | null)[] | null {
    if (msg.full !== false || this.services.length !== snapshot.capacity) {
      if (msg.full === false) return null;
      this.services = attachConnServices(snapshot, msg.services, this.dests);
    } else {
      if (msg.base !== this.generation) return null;
      for (const slot of msg.removed ?? []) this.services[slot] = null;
      for (const s of msg.services) {
        const scheduler = getSchedulerFactory(s.scheduler.name).attach(this.dests, s.scheduler.flags, s.scheduler.shared);
        this.services[s.slot] = {
          protocol: s.protocol, addr: s.addr, port: s.port, persistent: s.persistent,
          persistTimeoutMs: s.persistTimeoutMs, netmask: s.netmask, onePacket: s.onePacket, scheduler,
        };
      }
    }
    this.generation = snapshot.generation;
    return this.services;
  }
}
