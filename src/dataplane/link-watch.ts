// Interfaces that come and go: uvsd follows rtnetlink's link and IPv4 address notifications
// (RTMGRP_LINK, RTMGRP_IPV4_IFADDR, what keepalived's "Netlink Reflector" listens to) through one
// long-lived `ip -o -4 monitor link address` child: each line is one notification. The lines are
// not interpreted beyond their form (the data plane re-reads the interfaces whole, see
// DataPlane.relink); a burst (an interface brought up with its addresses) is folded into one
// re-evaluation after DEBOUNCE_MS. Lines of another form are counted and ignored. The child is
// restarted with a growing delay if it dies; stop() ends it.
//
// One watcher serves the whole daemon: uvsd (src/control/daemon.ts) owns it, and the data plane
// (DataPlane.relink) and the VRRP glue (an interface's new primary address) subscribe to it, so
// one `ip monitor` child runs, not one per consumer. Each burst calls every subscriber once.
//
// Why a child and not a netlink socket in the addon: a socket would need a new native binding and
// a message parser on the main thread for a few events a day; the child costs one process and
// hands over lines that `ip` has already parsed and validated.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Logger } from '../runtime/log';

/** Notifications closer together than this make one re-evaluation. */
export const DEBOUNCE_MS = 150;
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;

/** `ip -o monitor` lines: "N: ifname…" (a link or an address of it), "Deleted N: ifname…". */
const LINE = /^(Deleted )?\d+: \S+/;

/**
 * The monitor, under util-linux's `setpriv --pdeathsig KILL` where it exists: the kernel kills it
 * when uvsd dies, even by SIGKILL. Without that, an orphaned `ip monitor` lives on until its next
 * write hits the closed pipe, and holds its network namespace (and the namespace's devices) alive.
 */
function defaultCommand(): string[] {
  const monitor = ['ip', '-o', '-4', 'monitor', 'link', 'address'];
  return existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--', ...monitor] : monitor;
}

export interface LinkWatchStats {
  /** Notifications seen. */
  events: number;
  /** Lines not of the form `ip -o monitor` prints (ignored). */
  bad: number;
  /** Times the monitor child was restarted. */
  restarts: number;
  /** Re-evaluations of the interfaces it asked for (DataPlane.relink; a burst of events makes one,
   *  whatever the number of subscribers told of it). */
  relinks: number;
}

export class LinkWatcher {
  readonly stats: LinkWatchStats = { events: 0, bad: 0, restarts: 0, relinks: 0 };
  private child: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private delay = RESTART_MIN_MS;
  private partial = '';
  private readonly subscribers = new Set<() => void>();

  /** `onChange` (may be null): a first subscriber; subscribe() adds others. */
  constructor(
    onChange: (() => void) | null,
    private readonly log: Logger,
    private readonly command: readonly string[] = defaultCommand(),
  ) {
    if (onChange) this.subscribers.add(onChange);
  }

  /** `onChange` after each burst of notifications from now on (the watcher is started if it is
   *  not yet); the handle's stop() ends the subscription only, the owner's stop() the child. */
  subscribe(onChange: () => void): { stop(): void } {
    // A wrapper per subscription: the same function subscribed twice is told twice.
    const call = (): void => onChange();
    this.subscribers.add(call);
    this.start();
    return { stop: () => void this.subscribers.delete(call) };
  }

  /** Subscribers now (the owner's view; tests). */
  get subscriberCount(): number {
    return this.subscribers.size;
  }

  start(): void {
    if (this.stopped || this.child) return;
    const [cmd, ...args] = this.command;
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child = child;
    const startedAt = Date.now();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => this.feed(chunk));
    child.on('error', (err) => this.log.warn(`interface watch: ${cmd}: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      this.partial = '';
      if (this.stopped) return;
      if (Date.now() - startedAt > RESTART_MAX_MS) this.delay = RESTART_MIN_MS;
      this.log.warn(`interface watch: ${cmd} ended (${signal ?? `exit ${code}`}); restarting in ${this.delay} ms`);
      this.stats.restarts++;
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        this.start();
        // Changes while it was down are picked up by one re-evaluation.
        this.schedule();
      }, this.delay);
      this.restartTimer.unref();
      this.delay = Math.min(RESTART_MAX_MS, this.delay * 2);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.timer = this.restartTimer = null;
    const child = this.child;
    this.child = null;
    child?.kill();
  }

  /** Splits the child's output into lines (bounded: a line longer than 64 KiB is dropped). */
  private feed(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    if (this.partial.length > 65536) {
      this.stats.bad++;
      this.partial = '';
    }
    for (const line of lines) {
      if (line === '') continue;
      if (!LINE.test(line)) {
        this.stats.bad++;
        continue;
      }
      this.stats.events++;
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.stats.relinks++;
      for (const fn of [...this.subscribers]) {
        // One consumer's failure does not keep the others from hearing of the change.
        try {
          fn();
        } catch (err) {
          this.log.error(`interface watch: a consumer failed: ${(err as Error).message}`);
        }
      }
    }, DEBOUNCE_MS);
    this.timer.unref();
  }
}
