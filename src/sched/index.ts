// The scheduler registry: ipvsadm's -s names to their factories.

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

const FACTORIES: readonly SchedulerFactory[] = [
  rrFactory, wrrFactory, lcFactory, wlcFactory, lblcFactory, lblcrFactory, dhFactory,
  shFactory, sedFactory, nqFactory, foFactory, ovfFactory, mhFactory, twosFactory,
];

/** Every scheduler name uvs knows, in the order ipvsadm's man page lists them. */
export const SCHEDULER_NAMES: readonly string[] = FACTORIES.map((f) => f.name);

/** ipvsadm's default scheduler (-s omitted). */
export const DEFAULT_SCHEDULER = 'wlc';

export class UnknownSchedulerError extends Error {
  readonly code = 'UVS_SCHED_UNKNOWN';
  constructor(readonly schedulerName: string) {
    super(`unknown scheduler "${schedulerName}"; known schedulers: ${SCHEDULER_NAMES.join(', ')}`);
    this.name = 'UnknownSchedulerError';
  }
}

/** The factory for ipvsadm scheduler `name`; throws UnknownSchedulerError listing the known ones. */
export function getSchedulerFactory(name: string): SchedulerFactory {
  for (const factory of FACTORIES) if (factory.name === name) return factory;
  throw new UnknownSchedulerError(name);
}

export type { PacketKey, Scheduler, SchedulerFactory } from './scheduler';
