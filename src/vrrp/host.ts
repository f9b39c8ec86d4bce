// Main-thread side of the VRRP worker: starts it, forwards interface and track_script results
// in, and hands state changes, notify requests and logs out. The daemon connects onState to the
// data plane (forward a VIP's services only while its instance is MASTER) and the notifier to
// the script runner.
//
// A thread that dies unasked (a crash, an exception in its code) is noticed at once: keepalived's
// parent respawns a VRRP child that dies, and so does this host (unless `respawn` is off, which
// is keepalived's -R / --dont-respawn). Until the new thread runs, it fails safe: every instance
// that was MASTER is reported FAULT (so the data plane stops forwarding its VIPs) and its VIPs
// are removed from their interfaces, since no adverts defend them any more and a peer takes over.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { VrrpRuntimeConfig, validateRuntimeConfig } from './config';
import { HostToWorker, VrrpIoSpec, VrrpWorkerData, WorkerToHost } from './protocol';
import type { RouterStats } from './router';
import { Logger, Notifier, VirtualAddress, VrrpState } from './types';
import { UvsError } from '../runtime/errors';

export interface VrrpHostOptions {
  config: VrrpRuntimeConfig;
  io: VrrpIoSpec;
  notifier?: Notifier;
  logger?: Logger;
  onState?: (instance: string, state: VrrpState, previous: VrrpState, priority: number) => void;
  onGroupState?: (group: string, state: VrrpState) => void;
  /** Poll interface state in the worker (ms); 0 = the io or the main thread reports changes. */
  interfacePollMs?: number;
  /** How long start() waits for the worker to come up. */
  startTimeoutMs?: number;
  /** Respawn a thread that died unasked (keepalived does unless -R). Default true. */
  respawn?: boolean;
  /** First respawn delay; doubled for each death within a minute of the last, at most 30 s. Default 1000. */
  respawnDelayMs?: number;
  /** Removes the VIPs a dead thread left on their interfaces (default: `ip -4 addr del` each). */
  removeVips?: (vips: readonly VirtualAddress[]) => void;
}

/** `ip -4 addr del` of each VIP, synchronously (this runs once per thread death). */
function removeVipsWithIp(vips: readonly VirtualAddress[]): void {
  for (const vip of vips) spawnSync('ip', ['-4', 'addr', 'del', `${vip.address}/${vip.prefixLength}`, 'dev', vip.dev], { timeout: 5000 });
}

const MAX_RESPAWN_DELAY_MS = 30_000;

export class VrrpHostError extends UvsError {
  constructor(code: 'UVS_ERR_VRRP_START' | 'UVS_ERR_VRRP_STOPPED' | 'UVS_ERR_VRRP_RELOAD', message: string) {
    super(code, message);
  }
}

export class VrrpHost {
  /** Last state reported for each instance. */
  readonly states = new Map<string, VrrpState>();
  private worker: Worker;
  private readonly options: VrrpHostOptions;
  /** Threads started after the first died. */
  respawns = 0;
  private respawnDelay: number;
  private lastDeath = 0;
  private respawnTimer: NodeJS.Timeout | null = null;
  /** The first thread reported ready: from then on a death is respawned, not a failed start. */
  private started = false;
  private nextStatsId = 1;
  private readonly statsWaiters = new Map<number, (stats: RouterStats) => void>();
  private readonly reloadWaiters = new Map<number, (error: string | null) => void>();
  private exited = false;
  private exitPromise: Promise<void>;
  private stopRequested = false;
  private stoppedReported = false;
  private config: VrrpRuntimeConfig;

  private constructor(options: VrrpHostOptions, worker: Worker) {
    this.options = options;
    this.config = options.config;
    this.worker = worker;
    this.respawnDelay = options.respawnDelayMs ?? 1000;
    this.exitPromise = this.watchExit(worker);
  }

  /** True while a VRRP thread runs (false between a death and its respawn, and after stop). */
  get running(): boolean {
    return !this.exited;
  }

  private watchExit(worker: Worker): Promise<void> {
    return new Promise((resolve) => {
      worker.once('exit', (code) => {
        this.exited = true;
        resolve();
        if (!this.stopRequested && this.started && worker === this.worker) this.died(code);
      });
    });
  }

  private static spawn(options: VrrpHostOptions, config: VrrpRuntimeConfig): Worker {
    const data: VrrpWorkerData = {
      config,
      io: options.io,
      interfacePollMs: options.interfacePollMs ?? 0,
    };
    return new Worker(join(__dirname, 'thread.js'), { workerData: data });
  }

  /** The thread ended without being asked to: fail safe, then respawn it (unless told not to). */
  private died(code: number): void {
    const log = this.options.logger;
    const held: VirtualAddress[] = [];
    for (const c of this.config.instances) {
      const previous = this.states.get(c.name);
      if (previous === undefined || previous === 'FAULT') continue;
      this.states.set(c.name, 'FAULT');
      if (previous === 'MASTER') held.push(...c.virtualAddresses, ...c.excludedAddresses);
      this.options.onState?.(c.name, 'FAULT', previous, 0);
    }
    const respawn = this.options.respawn ?? true;
    log?.error(`vrrp thread exited unexpectedly (code ${code}); ${held.length} VIP(s) removed, ` +
      (respawn ? `respawning it in ${this.respawnDelay} ms` : 'not respawning it (respawn off)'));
    // Reject whatever waits on the dead thread.
    for (const waiter of this.reloadWaiters.values()) waiter('the vrrp thread died');
    this.reloadWaiters.clear();
    try {
      (this.options.removeVips ?? removeVipsWithIp)(held);
    } catch (err) {
      log?.error(`vrrp: removing the VIPs of the dead thread failed: ${(err as Error).message}`);
    }
    if (!respawn) return;
    const now = Date.now();
    // A thread that keeps dying is restarted less and less often.
    this.respawnDelay = now - this.lastDeath < 60_000 && this.lastDeath !== 0
      ? Math.min(this.respawnDelay * 2, MAX_RESPAWN_DELAY_MS)
      : (this.options.respawnDelayMs ?? 1000);
    this.lastDeath = now;
    this.respawnTimer = setTimeout(() => {
      this.respawnTimer = null;
      if (this.stopRequested) return;
      this.respawns++;
      const worker = VrrpHost.spawn(this.options, this.config);
      this.worker = worker;
      this.exited = false;
      this.stoppedReported = false;
      this.exitPromise = this.watchExit(worker);
      worker.on('message', (message: WorkerToHost) => this.handle(message));
      worker.on('error', (err) => log?.error(`vrrp thread error: ${err.message}`));
      log?.notice(`vrrp thread respawned (#${this.respawns})`);
    }, this.respawnDelay);
  }

  /** Starts the worker and resolves once every instance has been started. */
  static start(options: VrrpHostOptions): Promise<VrrpHost> {
    validateRuntimeConfig(options.config);
    const worker = VrrpHost.spawn(options, options.config);
    const host = new VrrpHost(options, worker);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(new VrrpHostError('UVS_ERR_VRRP_START', `vrrp thread did not start within ${options.startTimeoutMs ?? 5000} ms`));
      }, options.startTimeoutMs ?? 5000);
      worker.on('message', (message: WorkerToHost) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          host.started = true;
          resolve(host);
        } else if (message.type === 'fatal') {
          clearTimeout(timer);
          void worker.terminate();
          reject(new VrrpHostError('UVS_ERR_VRRP_START', `vrrp thread failed: ${message.message}`));
        } else {
          host.handle(message);
        }
      });
      worker.once('error', (err) => {
        clearTimeout(timer);
        reject(new VrrpHostError('UVS_ERR_VRRP_START', `vrrp thread crashed: ${err.message}`));
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new VrrpHostError('UVS_ERR_VRRP_START', `vrrp thread exited with code ${code} before it was ready`));
      });
    });
  }

  private handle(message: WorkerToHost): void {
    switch (message.type) {
      case 'state':
        this.states.set(message.instance, message.state);
        this.options.onState?.(message.instance, message.state, message.previous, message.priority);
        break;
      case 'group-state':
        this.options.onGroupState?.(message.group, message.state);
        break;
      case 'notify':
        this.options.notifier?.run(message.script, message.args);
        break;
      case 'log':
        this.options.logger?.[message.level](message.message);
        break;
      case 'stats': {
        const waiter = this.statsWaiters.get(message.id);
        this.statsWaiters.delete(message.id);
        waiter?.(message.stats);
        break;
      }
      case 'reloaded': {
        const waiter = this.reloadWaiters.get(message.id);
        this.reloadWaiters.delete(message.id);
        waiter?.(message.error);
        break;
      }
      case 'stopped':
        this.stoppedReported = true;
        break;
      case 'ready':
      case 'fatal':
        break;
    }
  }

  private send(message: HostToWorker): void {
    if (this.exited || this.stopRequested) {
      throw new VrrpHostError('UVS_ERR_VRRP_STOPPED', `vrrp thread is stopped; cannot send "${message.type}"`);
    }
    this.worker.postMessage(message);
  }

  /**
   * The virtual addresses this director holds right now: those of the instances whose last
   * reported state is MASTER. The data plane forwards a VIP's services only while it is here.
   */
  activeAddresses(): string[] {
    const out: string[] = [];
    for (const c of this.config.instances) {
      if (this.states.get(c.name) !== 'MASTER') continue;
      for (const v of c.virtualAddresses) out.push(v.address);
      for (const v of c.excludedAddresses) out.push(v.address);
    }
    return out;
  }

  setInterfaceState(name: string, up: boolean): void {
    this.send({ type: 'interface', name, up });
  }

  /** Instance `instance` sends its adverts from `address` from now on (its interface's new
   *  primary address); a respawned thread starts with it too. */
  setPrimaryAddress(instance: string, address: string): void {
    this.config = { ...this.config, instances: this.config.instances.map((c) => (c.name === instance ? { ...c, primaryAddress: address } : c)) };
    this.send({ type: 'primary', instance, address });
  }

  setScriptResult(name: string, ok: boolean): void {
    this.send({ type: 'script', name, ok });
  }

  stats(timeoutMs = 2000): Promise<RouterStats> {
    const id = this.nextStatsId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.statsWaiters.delete(id);
        reject(new VrrpHostError('UVS_ERR_VRRP_STOPPED', `vrrp thread did not answer a stats request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.statsWaiters.set(id, (stats) => {
        clearTimeout(timer);
        resolve(stats);
      });
      this.send({ type: 'stats', id });
    });
  }

  /**
   * SIGHUP: hands a new config to the worker, which diffs it against the running one. Rejects
   * (and the old config keeps running) when the worker refuses it.
   */
  async reload(config: VrrpRuntimeConfig, timeoutMs = 5000): Promise<void> {
    validateRuntimeConfig(config);
    const id = this.nextStatsId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reloadWaiters.delete(id);
        reject(new VrrpHostError('UVS_ERR_VRRP_RELOAD', `vrrp thread did not confirm the reload within ${timeoutMs} ms`));
      }, timeoutMs);
      this.reloadWaiters.set(id, (error) => {
        clearTimeout(timer);
        if (error === null) {
          this.config = config;
          resolve();
        }
        else reject(new VrrpHostError('UVS_ERR_VRRP_RELOAD', `vrrp reload refused: ${error}`));
      });
      this.send({ type: 'reload', id, config });
    });
  }

  /**
   * Shutdown: masters send priority 0 and remove their VIPs, notify_stop runs; the worker then
   * exits. If it does not within timeoutMs it is terminated. Resolves true for a clean stop.
   */
  async stop(timeoutMs = 3000): Promise<boolean> {
    if (this.respawnTimer !== null) {
      clearTimeout(this.respawnTimer);
      this.respawnTimer = null;
      this.stopRequested = true;
    }
    if (this.exited) return this.stoppedReported;
    if (!this.stopRequested) {
      this.stopRequested = true;
      this.worker.postMessage({ type: 'stop' } satisfies HostToWorker);
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const result = await Promise.race([this.exitPromise, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      this.options.logger?.warn(`vrrp thread did not exit within ${timeoutMs} ms; terminating it`);
      await this.worker.terminate();
      return false;
    }
    return this.stoppedReported;
  }
}
