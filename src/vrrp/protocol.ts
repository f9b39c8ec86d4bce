// Messages between the main thread (host.ts) and the VRRP worker thread (thread.ts).
// Plain data only: they cross with structured clone.

import { VrrpRuntimeConfig } from './config';
import type { InterfaceWatcher, RouterStats } from './router';
import { Logger, VipManager, VrrpSocketFactory, VrrpState } from './types';
import type { LogLevel } from '../runtime/log';

/** How the worker gets its I/O: a module it loads itself (addons and sockets live in the worker). */
export interface VrrpIoSpec {
  /** Absolute path (or package name) of a module exporting `createVrrpIo`. */
  module: string;
  /** Passed to createVrrpIo unchanged; must be structured-cloneable. */
  options?: unknown;
}

export interface VrrpWorkerData {
  config: VrrpRuntimeConfig;
  io: VrrpIoSpec;
  /** Poll track_interface state every this many ms when the io has no watcher of its own (0 = never). */
  interfacePollMs: number;
}

/** What an io module builds inside the worker. */
export interface VrrpIo {
  socketFactory: VrrpSocketFactory;
  vips: VipManager;
  interfaces: InterfaceWatcher;
  /** Optional: report interface changes by itself (netlink, polling). */
  watchInterfaces?(onChange: (name: string, up: boolean) => void): void;
  close?(): void | Promise<void>;
}

export interface VrrpIoContext {
  logger: Logger;
}

export type CreateVrrpIo = (options: unknown, context: VrrpIoContext) => VrrpIo | Promise<VrrpIo>;

export type HostToWorker =
  | { type: 'interface'; name: string; up: boolean }
  | { type: 'script'; name: string; ok: boolean }
  | { type: 'stats'; id: number }
  | { type: 'reload'; id: number; config: VrrpRuntimeConfig }
  /** An instance's interface got a new primary IPv4 address: its adverts' source. */
  | { type: 'primary'; instance: string; address: string }
  | { type: 'stop' };

export type WorkerToHost =
  | { type: 'ready' }
  | { type: 'state'; instance: string; state: VrrpState; previous: VrrpState; priority: number }
  | { type: 'group-state'; group: string; state: VrrpState }
  | { type: 'notify'; script: string; args: string[] }
  | { type: 'log'; level: LogLevel; message: string }
  | { type: 'stats'; id: number; stats: RouterStats }
  | { type: 'reloaded'; id: number; error: string | null }
  | { type: 'stopped' }
  | { type: 'fatal'; message: string };
