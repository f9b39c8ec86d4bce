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
