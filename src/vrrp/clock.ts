// The real Clock: monotonic milliseconds (performance.now(), immune to wall-clock steps, which
// must never trigger an election) and Node timers.

import { performance } from 'node:perf_hooks';
import { Clock, TimerId } from './types';

export class RealClock implements Clock {
  private nextId = 1;
  private readonly timers = new Map<TimerId, NodeJS.Timeout>();

  now(): number {
    return performance.now();
  }

  setTimer(callback: () => void, delayMs: number): TimerId {
    const id = this.nextId++;
    const handle = setTimeout(() => {
      this.timers.delete(id);
      callback();
    }, Math.max(0, delayMs));
    this.timers.set(id, handle);
    return id;
  }

  clearTimer(id: TimerId): void {
    const handle = this.timers.get(id);
    if (handle !== undefined) clearTimeout(handle);
    this.timers.delete(id);
  }

  /** Timers still pending (a clean shutdown leaves none). */
  pending(): number {
    return this.timers.size;
  }
}
