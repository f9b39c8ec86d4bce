// The one clock interface of uvs. Everything that schedules (the VRRP state machine, the health
// check runner) takes a Clock, so tests drive it step by step with a fake clock and the real one
// is used only in the daemon. Time is monotonic milliseconds (performance.now()): a wall-clock
// step must never trigger a VRRP election or a burst of checks.

import { performance } from 'node:perf_hooks';

export type TimerId = number;

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Calls `callback` once after `delayMs` (negative counts as 0). */
  setTimer(callback: () => void, delayMs: number): TimerId;
  /** Cancels a pending timer; an unknown or fired id is ignored. */
  clearTimer(id: TimerId): void;
  /** Uniform in [0, 1): randomised first delays (checkers' warmup). */
  random(): number;
}

export interface RealClockOptions {
  /** Timers do not keep the process alive (health checks during shutdown). Default false. */
  unref?: boolean;
}

/** Node timers on performance.now(). */
export class RealClock implements Clock {
  private nextId = 1;
  private readonly timers = new Map<TimerId, NodeJS.Timeout>();

  constructor(private readonly options: RealClockOptions = {}) {}

  now(): number {
    return performance.now();
  }

  setTimer(callback: () => void, delayMs: number): TimerId {
    const id = this.nextId++;
    const handle = setTimeout(() => {
      this.timers.delete(id);
      callback();
    }, Math.max(0, delayMs));
    if (this.options.unref === true) handle.unref();
    this.timers.set(id, handle);
    return id;
  }

  clearTimer(id: TimerId): void {
    const handle = this.timers.get(id);
    if (handle !== undefined) clearTimeout(handle);
    this.timers.delete(id);
  }

  random(): number {
    return Math.random();
  }

  /** Timers still pending (a clean shutdown leaves none). */
  pending(): number {
    return this.timers.size;
  }
}
