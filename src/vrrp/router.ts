// All VRRP instances of one daemon: builds them from the runtime config, dispatches received
// adverts by VRID (RFC 3768 §7.1: "MUST verify that the VRID is configured on the receiving
// interface ... If not, the packet MUST be discarded"), keeps the current state of tracked
// interfaces and scripts, and runs the shutdown sequence.

import { VrrpRuntimeConfig, isIPv4, validateRuntimeConfig } from './config';
import { InstanceDeps, TrackingView, VrrpInstance } from './instance';
import { SyncGroup } from './sync-group';
import {
  AdvertReceipt,
  AdvertSink,
  Clock,
  Logger,
  Notifier,
  SocketEndpoint,
  VipManager,
  VrrpAdvert,
  VrrpObserver,
  VrrpSocket,
  VrrpSocketFactory,
  VrrpStats,
} from './types';

/** JSON with sorted keys, so two configs compare by content whatever order their keys came in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** track_interface source: the current link state, then changes pushed to setInterfaceState(). */
export interface InterfaceWatcher {
  isUp(name: string): boolean;
}

export interface RouterDeps {
  clock: Clock;
  socketFactory: VrrpSocketFactory;
  vips: VipManager;
  notifier: Notifier;
  logger: Logger;
  observer: VrrpObserver;
  interfaces: InterfaceWatcher;
}

export interface RouterStats {
  /** Adverts for a VRID no instance here has (discarded, RFC 3768 §7.1). */
  unknownVrid: number;
  instances: Record<string, VrrpStats & { state: string; priority: number }>;
}

export class VrrpRouter implements AdvertSink, TrackingView {
  instances: VrrpInstance[] = [];
  groups: SyncGroup[] = [];
  unknownVrid = 0;
  private byVrid: (VrrpInstance[] | undefined)[] = new Array<VrrpInstance[] | undefined>(256);
  private readonly interfaceState = new Map<string, boolean>();
  private readonly scriptState = new Map<string, boolean>();
  private readonly deps: RouterDeps;
  private readonly instanceDeps: InstanceDeps;
  private socket: VrrpSocket | null = null;
  private socketEndpoints = '';
  private started = false;
  private config: VrrpRuntimeConfig;

  constructor(config: VrrpRuntimeConfig, deps: RouterDeps) {
    validateRuntimeConfig(config);
    this.deps = deps;
    this.config = config;
    const socket: VrrpSocket = {
      // Instances are built before the socket exists; they send through this forwarder.
      send: (advert) => {
        if (this.socket !== null) this.socket.send(advert);
      },
      close: () => undefined,
    };
    this.instanceDeps = {
      clock: deps.clock,
      socket,
      vips: deps.vips,
      notifier: deps.notifier,
      logger: deps.logger,
      observer: deps.observer,
      tracking: this,
    };
    this.instances = config.instances.map((c) => new VrrpInstance(c, this.instanceDeps));
    this.indexByVrid();
    this.groups = this.buildGroups(config);
  }

  private indexByVrid(): void {
    this.byVrid = new Array<VrrpInstance[] | undefined>(256);
    for (const inst of this.instances) (this.byVrid[inst.config.vrid] ??= []).push(inst);
  }

  private buildGroups(config: VrrpRuntimeConfig): SyncGroup[] {
    for (const inst of this.instances) inst.group = null;
    return config.syncGroups.map(
      (g) =>
        new SyncGroup(
          g,
          g.instances.map((n) => this.instance(n)),
          { notifier: this.deps.notifier, logger: this.deps.logger, observer: this.deps.observer },
        ),
    );
  }

  private openSocket(): void {
    this.swapSocket(this.socketFor(this.instances));
  }

  /** A socket for `instances` when they need other endpoints than the open one (null: keep it).
   *  Opened before anything else changes, so a socket that cannot open refuses a reload whole. */
  private socketFor(instances: VrrpInstance[]): { socket: VrrpSocket; key: string } | null {
    const endpoints = this.endpoints(instances);
    const key = JSON.stringify(endpoints);
    if (this.socket !== null && key === this.socketEndpoints) return null;
    return { socket: this.deps.socketFactory(this, endpoints), key };
  }

  private swapSocket(next: { socket: VrrpSocket; key: string } | null): void {
    if (next === null) return;
    if (this.socket !== null) this.socket.close();
    this.socket = next.socket;
    this.socketEndpoints = next.key;
  }

  /**
   * SIGHUP: apply a new config by diffing it against the running one, as keepalived's reload
   * does. Unchanged instances run on untouched; changed ones keep their state (a master stays
   * master, its VIPs diffed); instances that are gone stop (priority 0 if master); new ones start.
   * Changing an instance's VRID, interface or version counts as removing it and adding another.
   */
  /**
   * Instance `name` now sends from `address` (its interface's new primary IPv4 address; see
   * VrrpInstance.setPrimaryAddress). The running configuration follows, so a later reload with
   * the same address finds the instance unchanged. Throws for a bad name or address.
   */
  setPrimaryAddress(name: string, address: string): void {
    if (!isIPv4(address)) throw new Error(`vrrp: primary address "${address}" for ${name} is not an IPv4 address`);
    if (!this.instance(name).setPrimaryAddress(address)) return;
    this.config = { ...this.config, instances: this.config.instances.map((c) => (c.name === name ? { ...c, primaryAddress: address } : c)) };
  }

  reload(config: VrrpRuntimeConfig): void {
    validateRuntimeConfig(config);
    if (!this.started) {
      throw new Error('vrrp: reload() before start()');
    }
    const previous = new Map(this.instances.map((i) => [i.name, i]));
    const groupOf = (cfg: VrrpRuntimeConfig, name: string): string =>
      canonical(cfg.syncGroups.find((g) => g.instances.includes(name)) ?? null);
    const kept: VrrpInstance[] = [];
    const adopted: [VrrpInstance, VrrpInstance][] = [];
    const fresh: VrrpInstance[] = [];
    const restarted: VrrpInstance[] = [];
    const next: VrrpInstance[] = [];
    for (const c of config.instances) {
      const old = previous.get(c.name);
      previous.delete(c.name);
      if (old !== undefined && canonical(old.config) === canonical(c) && groupOf(this.config, c.name) === groupOf(config, c.name)) {
        kept.push(old);
        next.push(old);
        continue;
      }
      const inst = new VrrpInstance(c, this.instanceDeps);
      next.push(inst);
      const sameIdentity =
        old !== undefined && old.config.vrid === c.vrid && old.config.interface === c.interface && old.config.version === c.version;
      if (old !== undefined && sameIdentity) {
        adopted.push([inst, old]);
      } else {
        if (old !== undefined) restarted.push(old);
        fresh.push(inst);
      }
    }
    // Everything that can fail is done before anything changes: keepalived keeps running its old
    // configuration on a reload it cannot apply, and so does this thread (the host then keeps the
    // daemon's table on the old file too).
    const socket = this.socketFor(next);
    for (const old of restarted) {
      this.deps.logger.info(`(${old.name}) virtual_router_id, interface or version changed: restarting the instance`);
      old.releaseForReload();
    }
    // Instances no longer configured leave as on shutdown.
    for (const gone of previous.values()) {
      this.deps.logger.info(`(${gone.name}) removed from the configuration: stopping`);
      gone.stop();
    }
    const oldGroups = new Map(this.groups.map((g) => [g.name, g]));
    this.instances = next;
    this.indexByVrid();
    this.groups = this.buildGroups(config);
    this.config = config;
    this.swapSocket(socket);
    for (const [inst] of adopted) inst.refreshTracking();
    for (const inst of fresh) inst.refreshTracking();
    for (const g of this.groups) {
      const old = oldGroups.get(g.name);
      if (old !== undefined && old.state !== 'STOP') g.state = old.state;
      else g.init();
    }
    for (const [inst, old] of adopted) inst.adopt(old);
    for (const inst of kept) inst.trackingChanged();
    for (const inst of fresh) inst.start();
    this.deps.logger.info(
      `vrrp reload: ${kept.length} unchanged, ${adopted.length} updated, ${fresh.length} started, ${previous.size} stopped`,
    );
  }

  instance(name: string): VrrpInstance {
    const found = this.instances.find((i) => i.name === name);
    if (found === undefined) throw new Error(`vrrp: no instance named ${name}`);
    return found;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.openSocket();
    // keepalived removes the VIPs at start-up (vrrp_restore_interface in vrrp_init_state): after
    // a crash they may still sit on the interface, and only a master may hold them.
    if (this.deps.vips.purge !== undefined) {
      for (const inst of this.instances) {
        for (const v of inst.config.virtualAddresses) this.deps.vips.purge(v);
        for (const v of inst.config.excludedAddresses) this.deps.vips.purge(v);
      }
    }
    for (const inst of this.instances) inst.refreshTracking();
    for (const g of this.groups) g.init();
    for (const inst of this.instances) inst.start();
  }

  /** The interfaces (and groups) the socket must listen on, one entry per interface. */
  endpoints(instances: readonly VrrpInstance[] = this.instances): SocketEndpoint[] {
    const out: SocketEndpoint[] = [];
    for (const inst of instances) {
      const c = inst.config;
      const group = c.unicastPeers.length === 0 ? c.multicastGroup : undefined;
      const known = out.find((e) => e.interfaceName === c.interface);
      if (known === undefined) {
        out.push({ interfaceName: c.interface, ifindex: c.ifindex, multicastGroup: group, source: c.unicastSource ?? c.primaryAddress });
      } else if (known.multicastGroup === undefined && group !== undefined) {
        known.multicastGroup = group;
      }
    }
    return out;
  }

  // ---- TrackingView ----

  interfaceUp(name: string): boolean {
    let up = this.interfaceState.get(name);
    if (up === undefined) {
      up = this.deps.interfaces.isUp(name);
      this.interfaceState.set(name, up);
    }
    return up;
  }

  scriptResult(name: string): boolean | undefined {
    return this.scriptState.get(name);
  }

  setInterfaceState(name: string, up: boolean): void {
    if (this.interfaceState.get(name) === up) return;
    this.interfaceState.set(name, up);
    this.deps.logger.info(`Interface ${name} is ${up ? 'up' : 'down'}`);
    for (const inst of this.instances) {
      const c = inst.config;
      if (c.interface === name || c.trackInterfaces.some((t) => t.name === name)) inst.trackingChanged();
    }
  }

  setScriptResult(name: string, ok: boolean): void {
    if (this.scriptState.get(name) === ok) return;
    this.scriptState.set(name, ok);
    this.deps.logger.info(`VRRP_Script(${name}) ${ok ? 'succeeded' : 'failed'}`);
    for (const inst of this.instances) {
      if (inst.config.trackScripts.some((t) => t.name === name)) inst.trackingChanged();
    }
  }

  // ---- AdvertSink ----

  receive(advert: VrrpAdvert, receipt: AdvertReceipt): void {
    const candidates = advert.vrid >= 0 && advert.vrid < 256 ? this.byVrid[advert.vrid] : undefined;
    let target: VrrpInstance | undefined;
    if (candidates !== undefined) {
      for (const inst of candidates) {
        const c = inst.config;
        if (c.ifindex !== 0 && receipt.ifindex !== 0 && c.ifindex !== receipt.ifindex) continue;
        target = inst;
        // Same VRID on one link once for multicast and once for unicast peers: prefer the match.
        if (c.unicastPeers.includes(receipt.source) || c.unicastPeers.length === 0) break;
      }
    }
    if (target === undefined) {
      this.unknownVrid++;
      return;
    }
    target.receive(advert, receipt);
  }

  // ---- shutdown and status ----

  /** keepalived's shutdown: every master sends priority 0 and drops its VIPs; notify_stop runs. */
  stop(): void {
    for (const inst of this.instances) inst.stop();
    for (const g of this.groups) g.stop();
    if (this.socket !== null) this.socket.close();
    this.socket = null;
  }

  stats(): RouterStats {
    const instances: RouterStats['instances'] = {};
    for (const inst of this.instances) {
      instances[inst.name] = { ...inst.stats, state: inst.state, priority: inst.effectivePriority };
    }
    return { unknownVrid: this.unknownVrid, instances };
  }
}
