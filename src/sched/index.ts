// The scheduler registry: ipvsadm's -s names to their factories.
//
// Shared memory per service (the `shared` buffer): two copies of the slot list (4 bytes per
// maxDests each) plus sh/dh 2 × 256 cells, mh 2 × 4093 cells, lblc 512 KiB and lblcr 1.7 MiB
// (fixed tables of 32768 destination addresses), rr/wrr one cursor cell.

import { dhFactory } from './dh';
import { foFactory } from './fo';
import { lblcFactory } from './lblc';
import { lblcrFactory } from './lblcr';
import { lcFactory } from './lc';
import { mhFactory } from './mh';
import { nqFactory } from './nq';
import { ovfFactory } from './ovf';
import { rrFactory } from './rr';
import type { SchedulerFactory } from './scheduler';
import { sedFactory } from './sed';
import { shFactory } from './sh';
import { twosFactory } from './twos';
import { wlcFactory } from './wlc';
import { wrrFactory } from './wrr';
import { UvsError } from '../runtime/errors';

const FACTORIES: readonly SchedulerFactory[] = [
  rrFactory, wrrFactory, lcFactory, wlcFactory, lblcFactory, lblcrFactory, dhFactory,
  shFactory, sedFactory, nqFactory, foFactory, ovfFactory, mhFactory, twosFactory,
];

/** Every scheduler name uvs knows, in the order ipvsadm's man page lists them. */
export const SCHEDULER_NAMES: readonly string[] = FACTORIES.map((f) => f.name);

/** ipvsadm's default scheduler (-s omitted). */
export const DEFAULT_SCHEDULER = 'wlc';

export class UnknownSchedulerError extends UvsError {
  constructor(readonly schedulerName: string) {
    super('UVS_ERR_UNKNOWN_SCHEDULER', `unknown scheduler "${schedulerName}"; known schedulers: ${SCHEDULER_NAMES.join(', ')}`);
  }
}

/** The factory for ipvsadm scheduler `name`; throws UnknownSchedulerError listing the known ones. */
export function getSchedulerFactory(name: string): SchedulerFactory {
  for (const factory of FACTORIES) if (factory.name === name) return factory;
  throw new UnknownSchedulerError(name);
}

export type { PacketKey, Scheduler, SchedulerFactory } from './scheduler';
