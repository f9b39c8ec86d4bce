// The one interface every IPVS scheduler implements (src/sched/<name>.ts).
//
// A scheduler lives in two places at once: the control plane creates it and tells it when the
// service's real servers change (update), and each data-plane worker attaches to the same shared
// state and calls schedule() for the first packet of every new connection. Whatever must be
// global across workers (rr/wrr position, lblc assignments, lookup tables) lives in `shared`.

import type { DestTable } from '../tables/dest-table';

/** What a scheduler may look at in the first packet of a connection. A reusable object: the data
 *  plane fills one per worker and never allocates per packet. Addresses are IPv4 in host byte order
 *  (uint32), ports in host byte order. */
export interface PacketKey {
  protocol: number;
  saddr: number;
  sport: number;
  daddr: number;
  dport: number;
}

/** Scheduler flags (ipvsadm -b/--sched-flags), the kernel's IP_VS_SVC_F_SCHED* bits. */
export const enum SchedFlag {
  /** sh-fallback / mh-fallback / flag-1 */
  SCHED1 = 0x0008,
  /** sh-port / mh-port / flag-2 */
  SCHED2 = 0x0010,
  /** flag-3 */
  SCHED3 = 0x0020,
}

export interface Scheduler {
  /** ipvsadm's name: rr, wrr, lc, ... */
  readonly name: string;
  /** State shared with every worker; pass to the factory's `attach` in a worker thread. */
  readonly shared: SharedArrayBuffer;
  /** Control plane: the service's real servers changed (added, removed, weight or flags changed).
   *  `slots` are DestTable slots in the order the real servers were added (oldest first). IPVS adds
   *  each new real server at the HEAD of svc->destinations (list_add_rcu), so the schedulers walk
   *  `slots` from the end: the newest first, which decides ties and the rr/wrr/sh/dh/mh layouts. */
  update(slots: readonly number[]): void;
  /** Picks the DestTable slot for a new connection, or -1 when no real server is available
   *  (IPVS logs "no destination available" and the packet is dropped).
   *  `nowMs` is a monotonic clock in milliseconds (lblc/lblcr expiry). Must not allocate. */
  schedule(key: PacketKey, nowMs: number): number;
}

export interface SchedulerFactory {
  readonly name: string;
  /** Control plane: a new scheduler for a service with `maxDests` real servers at most. */
  create(dests: DestTable, flags: number, maxDests: number): Scheduler;
  /** Worker: the same scheduler over state created by `create` in another thread. */
  attach(dests: DestTable, flags: number, shared: SharedArrayBuffer): Scheduler;
}
