// uvsd's control plane: the service model, the statistics, the control socket, config loading and
// the signals. The data plane and VRRP join here later (they attach a CounterSource, a ConnLister,
// and read the model's DestTable).

import { IpvsError, ServiceModel, applyChange, planReload } from '../service/model';
import type { ModelConfig, ServiceEntry } from '../service/model';
import { ESTIMATOR_PERIOD_MS, ESTIMATOR_SLICES, StatsBook } from '../service/stats';
import type { CounterSource } from '../service/stats';
import { NO_CONNECTIONS, type ConnLister } from '../service/conn-list';
import { existsSync } from 'node:fs';
import { loadKeepalivedConfig } from './config-loader';
import { defaultConfigId } from '../config/keepalived/index';
import type { LoadedConfig } from './config-loader';
import { ControlHandler } from './handler';
import type { DaemonInfo } from './protocol';
import { ControlServer } from './server';
import { resolveSocketPath } from '../runtime/paths';
import { defaultConnStatePath } from '../dataplane/conn-state';
import type { UvsdOptions } from './uvsd-options';
import { DataPlane } from '../dataplane/dataplane';
import { LinkWatcher } from '../dataplane/link-watch';
import { attachHealth, type HealthGlue } from './health';
import type { MetricsServer } from '../metrics/server';
import type { CheckSnapshot, MetricsSnapshot } from '../metrics/snapshot';
import { collectSnapshot } from './metrics-source';
import type { VrrpInstanceReport } from './vrrp';
import { attachVrrp } from './vrrp';
import { attachSync } from './sync';
import type { VrrpGlue, VrrpGlueOptions } from './vrrp';
import type { DaemonHost } from './host';
import type { Logger } from '../runtime/log';
import { Sysctls } from './sysctl';
import { SyncManager, type DestResolver } from '../sync/daemon';
import { SYNC_KNOBS } from '../sync/knobs';
import { connNowMs } from '../conn/table';

/** What ipvsadm prints in its header on a default kernel: IPVS 1.2.1, a 4096-bucket table. */
export const IPVS_VERSION = '1.2.1';
export const IPVS_CONN_TAB_SIZE = 4096;

/** What tests replace: the VRRP thread's io module and interface facts. */
export interface DaemonDeps {
  vrrp?: Omit<VrrpGlueOptions, 'log'>;
}

/** Real servers' listing entries built per turn after a change (a few ms at most). */
export const LISTING_WARM_DESTS = 4096;

export class Daemon implements DaemonHost {
  readonly model: ServiceModel;
  readonly stats = new StatsBook();
  readonly handler: ControlHandler;
  readonly server: ControlServer;
  /** The IPVS knobs (net.ipv4.vs.*): defaults, the flood options, --sysctl-file, uvsadm --sysctl. */
  readonly sysctls: Sysctls;
  private timer: NodeJS.Timeout | null = null;
  /** The listing's entries being built after a change, a slice a turn (warmListing). */
  private warming: NodeJS.Immediate | null = null;
  private stopping: Promise<void> | null = null;
  private readonly stopHooks: { name: string; run: () => void | Promise<void> }[] = [];
  private readonly configListeners: ((loaded: LoadedConfig) => void)[] = [];
  /** The configuration last loaded with -f (null without -f). */
  private config: LoadedConfig | null = null;
  /** Turns a configured table into the live one (the health checkers' decisions on top). */
  private liveView: ((configured: ModelConfig) => ModelConfig) | null = null;
  /** VRRP of the -f configuration (null without -f). */
  private vrrp: VrrpGlue | null = null;
  /** The health checkers of the -f configuration (null without -f, or with -P). */
  private health: HealthGlue | null = null;
  /** --metrics / --metrics-textfile (null without either). */
  private metrics: MetricsServer | null = null;
  /** The data plane (null with --io none) and the promise of its last apply. */
  private dataPlane: DataPlane | null = null;
  private lastApply: Promise<void> = Promise.resolve();
  /** The reload in progress (reloads queue behind it). */
  private reloading: Promise<void> | null = null;
  /** `uvsadm -L -c` reads this; the data plane replaces it once it runs. */
  private conns: ConnLister = NO_CONNECTIONS;
  /** Connection sync (--start-daemon, lvs_sync_daemon); null until the data plane runs. */
  private syncManager: SyncManager | null = null;
  /** Where a graceful stop saves the connections for the next uvsd (null: not at all). */
  private connStatePath: string | null;

  private constructor(readonly options: UvsdOptions, readonly socketPath: string, private readonly log: Logger) {
    this.model = new ServiceModel({ maxServices: options.svcMax, destCapacity: options.destMax });
    const d = options.connDefense;
    this.sysctls = new Sysctls({ connMax: options.connMax }, {
      drop_entry: d.dropEntry, drop_packet: d.dropPacket, secure_tcp: d.secureTcp, amemthresh: d.amemthresh, am_droprate: d.amDroprate,
    });
    const info: DaemonInfo = { version: IPVS_VERSION, connTableSize: IPVS_CONN_TAB_SIZE, pid: process.pid };
    this.handler = new ControlHandler(this.model, this.stats, info, {
      conns: () => this.conns,
      settle: () => this.lastApply,
      workers: () => this.dataPlane?.workerReports() ?? [],
      linkWatch: () => this.dataPlane?.linkWatchStats() ?? null,
      fastPath: () => this.dataPlane?.fastPathReport() ?? null,
      sysctls: this.sysctls,
      sync: () => this.syncManager,
      vrrp: () => this.vrrpReport(),
      checks: () => this.checkReport(),
    });
    this.server = new ControlServer(this.handler, log);
    this.model.onChange(() => this.warmListing());
    this.connStatePath = options.connState === '' ? null : (options.connState ?? defaultConnStatePath(socketPath));
  }

  /** The next stop does not save the connections (after a crash: start clean). */
  discardConnState(): void {
    this.connStatePath = null;
  }

  /** Loads the configuration (if any), then opens the control socket. */
  static async start(options: UvsdOptions, log: Logger, env: NodeJS.ProcessEnv = process.env, deps: DaemonDeps = {}): Promise<Daemon> {
    if (options.configFile && options.configDefault && !existsSync(options.configFile)) {
      // keepalived starts without its default file too, with nothing to run; so does uvsd (an
      // empty table; SIGHUP has no file to read), and the unit's ConditionFileNotEmpty keeps
      // systemd from starting it at all.
      log.warn(`configuration file ${options.configFile} does not exist`);
      log.warn('Warning - uvsd has no configuration to run');
      options = { ...options, configFile: null };
    }
    const daemon = new Daemon(options, resolveSocketPath(options.socket ?? undefined, env), log);
    // The health checkers hook themselves in (onConfig, setLiveView, onStop): nothing to keep.
    // keepalived's -P runs only VRRP, -C only the checkers (and so the table); both or neither: all.
    const both = options.vrrpOnly === options.checkOnly;
    if (options.configFile && (both || options.checkOnly)) daemon.health = attachHealth(daemon, log);
    // VRRP follows interface addresses through the daemon's one interface watch (with the real io;
    // a test's io brings its own watch or none).
    const vrrpWatch = deps.vrrp?.io ? {} : { watchInterfaces: (onChange: () => void) => daemon.interfaceWatch().subscribe(onChange) };
    if (options.configFile && (both || options.vrrpOnly)) daemon.vrrp = attachVrrp(daemon, log, { respawn: !options.dontRespawn, ...vrrpWatch, ...deps.vrrp });
    if (options.configFile) {
      const loaded = daemon.prepareConfig(options.configFile);
      await daemon.vrrp?.commit(loaded); // before start: only chosen as the file start() runs
      daemon.commitConfig(loaded);
    }
    if (options.sysctlFile) for (const note of daemon.sysctls.loadFile(options.sysctlFile)) log.info(note);
    await daemon.server.listen(daemon.socketPath);
    // The estimator's period in slices, so 100,000 real servers' counters are not read in one go.
    let slice = 0;
    daemon.timer = setInterval(() => {
      daemon.handler.tickSlice(slice);
      slice = (slice + 1) % ESTIMATOR_SLICES;
    }, ESTIMATOR_PERIOD_MS / ESTIMATOR_SLICES);
    daemon.timer.unref();
    if (options.metrics !== null || options.metricsTextfile !== null) {
      // Before the data plane and VRRP: a port in use stops the start before anything is changed.
      // Loaded only when asked for: prom-client takes a few hundred ms to load.
      const { MetricsServer } = await import('../metrics/server');
      const metrics = new MetricsServer({
        listen: options.metrics, textfileDir: options.metricsTextfile, log, collect: () => daemon.metricsSnapshot(),
      });
      try {
        await metrics.start();
      } catch (err) {
        await daemon.stop();
        throw err;
      }
      daemon.metrics = metrics;
      daemon.onStop('metrics', () => metrics.stop());
    }
    if (options.io !== 'none') {
      try {
        await daemon.startDataPlane();
      } catch (err) {
        await daemon.stop();
        throw err;
      }
    }
    // After the data plane, so VRRP's stop hook runs first on SIGTERM (priority 0 at once). A
    // VRRP thread that cannot start (no raw socket, no addon) stops the daemon, as keepalived exits.
    if (daemon.vrrp) {
      try {
        await daemon.vrrp.start();
      } catch (err) {
        await daemon.stop();
        throw err;
      }
    }
    log.info(`uvsd ${process.pid}: control socket ${daemon.socketPath}; ` +
      `${options.configFile ? `configuration ${options.configFile}` : 'empty table (no configuration)'}; ` +
      `io=${options.io} workers=${options.workers} conn-max=${options.connMax} svc-max=${options.svcMax} dest-max=${options.destMax}` +
      (options.ifaces.length ? ` iface=${options.ifaces.join(',')}` : ''));
    return daemon;
  }

  /** Reads and checks the file, and lets every subsystem check (and prepare) its part: throws,
   *  with nothing changed anywhere, when any part is wrong. Nothing runs it until commitConfig. */
  private prepareConfig(file: string): LoadedConfig {
    const loaded = loadKeepalivedConfig(file, undefined, this.options.configId ?? defaultConfigId(), true);
    // -P: VRRP only, so no virtual servers in the table (keepalived's checker process does not run).
    if (this.options.vrrpOnly && !this.options.checkOnly) loaded.model = { ...loaded.model, services: [] };
    // The table is checked on a scratch copy before any subsystem hears of the file, so a table
    // error cannot leave the checkers (or VRRP) on the new file and the table on the old one.
    planReload(this.model, loaded.model);
    for (const w of loaded.warnings) this.log.info(w);
    for (const listener of this.configListeners) listener(loaded);
    return loaded;
  }

  /** The file becomes the daemon's: the checkers take it (through the live view) and the table
   *  is brought to it by diff. */
  private commitConfig(loaded: LoadedConfig): void {
    const previous = this.config;
    this.config = loaded;
    try {
      this.applyConfig(loaded.model);
    } catch (err) {
      this.config = previous;
      throw err;
    }
  }

  /** Subsystems that read the rest of keepalived.conf (VRRP, checkers) hear of every (re)load. */
  onConfig(listener: (loaded: LoadedConfig) => void): void {
    this.configListeners.push(listener);
    if (this.config) listener(this.config);
  }

  /** Work to do on SIGTERM/SIGINT before the socket closes (VRRP priority-0 adverts, VIPs and the
   *  kernel guard removed, ...): run newest first, each one's failure logged, not fatal. */
  onStop(name: string, run: () => void | Promise<void>): void {
    this.stopHooks.push({ name, run });
  }

  /** Applies a configuration by diff: checked whole first, so a bad file changes nothing. The
   *  diff is between the live table and the live view of `next` (see setLiveView). */
  applyConfig(next: ModelConfig): void {
    const live = this.liveView ? this.liveView(next) : next;
    const changes = planReload(this.model, live);
    this.model.batch(() => {
      for (const change of changes) applyChange(this.model, change);
    });
  }

  /** The health checkers keep the configured table apart from the live one: a reload must not
   *  bring back a real server they hold down, nor take their decisions for configuration. */
  setLiveView(view: (configured: ModelConfig) => ModelConfig): void {
    this.liveView = view;
  }

  /**
   * SIGHUP: re-read the files (the IPVS knobs' --sysctl-file on its own) and apply the difference, all or nothing. Every part is checked
   * first (table on a scratch copy, checkers, VRRP conversion); then the VRRP thread takes its
   * part, and only once it has does the table follow (the thread is the one part that can still
   * refuse: a socket that will not open). A refusal anywhere leaves the services, the checkers and
   * VRRP as they were, logged with the file:line it concerns. Reloads run one after the other;
   * without VRRP the whole reload is done when this returns (the promise is already settled).
   */
  reload(): Promise<void> {
    const before = this.reloading;
    const run = before ? before.then(() => this.reloadNow()) : this.reloadNow();
    const tracked = run.finally(() => {
      if (this.reloading === tracked) this.reloading = null;
    });
    this.reloading = tracked;
    return tracked;
  }

  private async reloadNow(): Promise<void> {
    this.reloadSysctls();
    const file = this.options.configFile;
    if (!file) {
      this.log.info('SIGHUP: no configuration file to reload');
      return;
    }
    const refused = (err: unknown): void =>
      this.log.error(`reload of ${file} failed, the running table is unchanged: ${(err as Error).message}`);
    let loaded: LoadedConfig;
    try {
      loaded = this.prepareConfig(file);
    } catch (err) {
      refused(err);
      return;
    }
    const previous = this.config;
    if (this.vrrp) {
      try {
        await this.vrrp.commit(loaded);
      } catch (err) {
        refused(err);
        return;
      }
    }
    try {
      this.commitConfig(loaded);
    } catch (err) {
      // The table changed while VRRP took the file (uvsadm, a checker) and now refuses it: VRRP
      // goes back to the file the table still runs.
      refused(err);
      if (this.vrrp && previous) await this.revertVrrp(previous);
      return;
    }
    this.log.info(`reloaded ${file}`);
  }

  private async revertVrrp(previous: LoadedConfig): Promise<void> {
    try {
      for (const listener of this.configListeners) listener(previous);
      await this.vrrp?.commit(previous);
    } catch (err) {
      this.log.error(`VRRP could not go back to the running file: ${(err as Error).message}`);
    }
  }

  /** SIGHUP's part for --sysctl-file: a bad file changes no knob (runtime sets stay, sysctl.ts). */
  private reloadSysctls(): void {
    const file = this.options.sysctlFile;
    if (!file) return;
    try {
      for (const note of this.sysctls.loadFile(file)) this.log.info(note);
      this.log.info(`reloaded ${file}`);
    } catch (err) {
      this.log.error(`reload of ${file} failed, the IPVS knobs are unchanged: ${(err as Error).message}`);
    }
  }

  /**
   * The daemon's one interface watch (an `ip -o -4 monitor link address` child, link-watch.ts),
   * made at the first consumer's request: the data plane and the VRRP glue subscribe to it, so
   * the daemon runs one monitor, not one each. Stopped with the daemon, after its consumers (stop
   * hooks run newest first and this one is registered before them).
   */
  interfaceWatch(): LinkWatcher {
    if (this.linkWatcher === null) {
      const w = new LinkWatcher(null, this.log);
      this.linkWatcher = w;
      this.onStop('interface watch', () => w.stop());
    }
    return this.linkWatcher;
  }

  private linkWatcher: LinkWatcher | null = null;

  /** Starts the worker threads over the model's tables and follows every model change. */
  private async startDataPlane(): Promise<void> {
    const pcap = this.options.io === 'pcap';
    if (pcap && this.options.workers > 1) {
      this.log.info(`--io pcap: one packet loop on the main thread (the pcap addon loads in one thread); a worker count (${this.options.workers}) does not apply`);
    }
    const dp = new DataPlane({
      model: this.model,
      io: pcap ? 'pcap' : this.options.io === 'xdp' ? 'xdp' : 'ring',
      workers: pcap ? 1 : this.options.workers,
      fanout: this.options.fanout,
      xdpMode: this.options.xdpMode,
      fastPath: this.options.fastPath,
      fastPathMax: this.options.fastPathMax ?? undefined,
      fastPathEarly: this.options.fastPathEarly,
      fastPathSched: this.options.fastPathSched,
      busyPollUs: this.options.busyPollUs,
      busyPollMaxUs: this.options.busyPollMaxUs,
      ifaces: this.options.ifaces,
      connMax: this.options.connMax,
      serviceActive: (addr) => this.vrrp?.serviceActive(addr) ?? true,
      log: this.log,
      linkWatcher: this.interfaceWatch(),
    });
    // The data plane forwards TUN as IPIP only: GUE/GRE real servers are refused when added.
    this.model.destPolicy = (op, dest) => {
      const why = DataPlane.unsupportedDest(dest);
      if (why === null) return;
      this.log.error(why);
      throw new IpvsError(op, 'EINVAL', why);
    };
    this.model.onChange(() => {
      this.lastApply = dp.apply().catch((err: Error) => this.log.error(`data plane: ${err.message}`));
    });
    // The knobs live in the connection table's shared header: written before the workers start.
    this.sysctls.attach((cell, value) => dp.conns.setKnob(cell, value));
    // Registered before start, so a start that fails half-way still removes the guard.
    this.onStop('data plane', () => dp.stop({ connStatePath: this.connStatePath }));
    await dp.start();
    this.dataPlane = dp;
    this.syncManager = new SyncManager(dp.conns, modelDestResolver(this.model), connNowMs, this.log);
    // The sync_* knobs: their values now, and every change (uvsadm --sysctl, a reloaded file).
    for (const k of SYNC_KNOBS) this.syncManager.setKnob(k.name, this.sysctls.get(k.name));
    this.sysctls.onChange((name, value) => this.syncManager?.setKnob(name, value));
    // Registered after the data plane's hook, so it runs first: a master's last scan goes out.
    this.onStop('connection sync', () => this.syncManager?.close());
    // keepalived.conf's lvs_sync_daemon (now, and at every reload).
    attachSync(this, this.syncManager, this.vrrp, this.log);
    this.attachCounters(dp.counters);
    this.attachConnections(dp.connLister);
    // Restart without loss: the connections the previous uvsd saved come back (conn-state.ts).
    if (this.connStatePath) await dp.restoreConnState(this.connStatePath);
  }

  /** The data plane, once running, hands over its summed counters (for --stats/--rate). */
  attachCounters(source: CounterSource): void {
    this.stats.setSource(source);
  }

  /** The connection table, once running, answers `uvsadm -L -c`. */
  attachConnections(lister: ConnLister): void {
    this.conns = lister;
  }

  /** The connection-sync daemons (null with --io none). */
  get sync(): SyncManager | null {
    return this.syncManager;
  }

  /** VRRP instances as `uvsadm --vrrp` and the dump files show them (none without vrrp_instance). */
  vrrpReport(): Promise<VrrpInstanceReport[]> {
    return this.vrrp?.report() ?? Promise.resolve([]);
  }

  /** The checkers' view of each virtual server (none without checkers). */
  checkReport(): CheckSnapshot[] {
    const status = this.health?.service?.status() ?? [];
    return status.map((vs) => ({
      virtualServer: vs.label,
      quorumUp: vs.quorumUp,
      sorryActive: vs.sorryActive,
      servers: vs.servers.map((rs) => ({
        realServer: rs.label, alive: rs.alive, weight: rs.weight, checkers: rs.checkers.map((c) => ({ kind: c.kind, up: c.up })),
      })),
    }));
  }

  /** One scrape's figures (src/metrics). */
  metricsSnapshot(): Promise<MetricsSnapshot> {
    const dp = this.dataPlane;
    return collectSnapshot({
      model: this.model,
      stats: this.stats,
      workers: () => dp?.workerReports() ?? [],
      linkWatch: () => dp?.linkWatchStats() ?? null,
      conns: () => (dp ? { entries: dp.conns.count, capacity: dp.conns.capacity, refused: dp.conns.refused } : null),
      vrrp: () => this.vrrpReport(),
      checks: () => this.checkReport(),
    });
  }

  /** The metrics server, for tests that ask where it listens. */
  get metricsServer(): MetricsServer | null {
    return this.metrics;
  }

  /** The VRRP glue (null without -f or with -C). */
  get vrrpGlue(): VrrpGlue | null {
    return this.vrrp;
  }

  currentConfig(): LoadedConfig | null {
    return this.config;
  }

  /**
   * After a change, the model's listing entries (ServiceModel.list(), which every /metrics scrape
   * and listing reads) are built ahead, LISTING_WARM_DESTS real servers a turn, so that the first
   * scrape after a restore of 100,000 real servers does not build them all in one block.
   */
  private warmListing(): void {
    if (this.warming !== null || this.stopping) return;
    const step = (): void => {
      this.warming = this.model.warmListing(LISTING_WARM_DESTS) ? null : setImmediate(step);
    };
    this.warming = setImmediate(step);
  }

  reapplyDataPlane(): void {
    this.dataPlane?.apply().catch((err: Error) => this.log.error(`data plane after a VRRP change: ${err.message}`));
  }

  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = (async () => {
        if (this.timer) clearInterval(this.timer);
        this.timer = null;
        if (this.warming) clearImmediate(this.warming);
        this.warming = null;
        for (const hook of [...this.stopHooks].reverse()) {
          try {
            await hook.run();
          } catch (err) {
            this.log.error(`shutdown of ${hook.name} failed: ${(err as Error).message}`);
          }
        }
        await this.server.close();
      })();
    }
    return this.stopping;
  }
}

/**
 * Maps a synced entry to this director's real server (ip_vs_find_dest): VIP, port and protocol
 * name the service, RIP and port the destination. Kept per service and brought up to date with
 * the model's changes since the last lookup (ServiceModel.changedSince), so one `uvsadm -a` on a
 * table of 100,000 real servers does not rebuild the whole map on the next synced entry; many
 * changes (a restore, -C) rebuild it from the model's kept listing.
 */
export function modelDestResolver(model: ServiceModel): DestResolver {
  let generation = -1;
  /** "protocol|vaddr|vport" → the service's id and its real servers (RIP * 65536 + port → slot). */
  const services = new Map<string, { id: number; dests: Map<number, number> }>();
  /** Service id → its key in `services`. */
  const keys = new Map<number, string>();
  const add = (s: ServiceEntry): void => {
    if (s.fwmark !== 0 || s.af !== 4) return;
    const dests = new Map<number, number>();
    for (const d of s.dests) dests.set((d.addr >>> 0) * 65536 + d.port, d.slot);
    const key = `${s.protocol}|${s.addr >>> 0}|${s.port}`;
    services.set(key, { id: s.id, dests });
    keys.set(s.id, key);
  };
  const update = (): void => {
    const changed = generation < 0 ? null : model.changedSince(generation);
    generation = changed?.generation ?? model.generation;
    if (changed === null || changed.ids.length > RESOLVER_REBUILD_AT) {
      services.clear();
      keys.clear();
      for (const s of model.list()) add(s);
      return;
    }
    // All the old entries first: a service deleted and another added with its key in the same
    // window must not take the new one's entry with it.
    for (const id of changed.ids) {
      const key = keys.get(id);
      if (key === undefined) continue;
      keys.delete(id);
      if (services.get(key)?.id === id) services.delete(key);
    }
    for (const id of changed.ids) {
      const s = model.getById(id);
      if (s !== null) add(s);
    }
  };
  return (protocol, vaddr, vport, daddr, dport) => {
    if (generation !== model.generation) update();
    // A port is 16 bits (the key below holds RIP and port in one number).
    if (!(dport >= 0 && dport <= 0xffff)) return -1;
    return services.get(`${protocol}|${vaddr >>> 0}|${vport}`)?.dests.get((daddr >>> 0) * 65536 + dport) ?? -1;
  };
}

/** More changed services than this since the last lookup: the resolver rebuilds its map. */
const RESOLVER_REBUILD_AT = 256;
