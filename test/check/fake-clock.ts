// A fake Clock for stepping the runner: timers fire only when the test advances time, in due
// order, and the microtasks they start (async checks that resolve at once) run before the next.
import type { Clock, TimerId } from '../../src/runtime/clock';

interface Timer {
  id: number;
  due: number;
  fn: () => void;
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

export class FakeClock implements Clock {
  private t = 0;
  private nextId = 1;
  private timers: Timer[] = [];

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): TimerId {
    const timer = { id: this.nextId++, due: this.t + Math.max(0, ms), fn };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimer(handle: TimerId): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  random(): number {
    return 0;
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Advances to now+ms, firing due timers one at a time (bounded: at most 10 000 firings). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await flush();
    for (let fired = 0; fired < 10_000; fired++) {
      this.timers.sort((a, b) => a.due - b.due || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.due > end) break;
      this.timers.shift();
      this.t = next.due;
      next.fn();
      await flush();
    }
    this.t = end;
  }
}
