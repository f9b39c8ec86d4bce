// All VRRP instances of one daemon: builds them from the runtime config, dispatches received
// adverts by VRID (RFC 3768 §7.1: "MUST verify that the VRID is configured on the receiving
// interface ... If not, the packet MUST be discarded"), keeps the current state of tracked
// interfaces and scripts, and runs the shutdown sequence.

import { VrrpRuntimeConfig, validateRuntimeConfig } from './config';
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
  readonly instances: VrrpInstance[] = [];
  readonly groups: SyncGroup[] = [];
  unknownVrid = 0;
  private readonly byVrid: (VrrpInstance[] | undefined)[] = new Array(256);
  private readonly interfaceState = new Map<string, boolean>();
  private readonly scriptState = new Map<string, boolean>();
  private readonly deps: RouterDeps;
  private socket: VrrpSocket | null = null;
  private started = false;

  constructor(config: VrrpRuntimeConfig, deps: RouterDeps) {
    validateRuntimeConfig(config);
    this.deps = deps;
    const socket: VrrpSocket = {
      // Instances are built before the socket exists; they send through this forwarder.
      send: (advert) => {
        if (this.socket !== null) this.socket.send(advert);
      },
      close: () => undefined,
    };
    const instanceDeps: InstanceDeps = {
      clock: deps.clock,
      socket,
      vips: deps.vips,
      notifier: deps.notifier,
      logger: deps.logger,
      observer: deps.observer,
      tracking: this,
    };
    for (const c of config.instances) {
      const inst = new VrrpInstance(c, instanceDeps);
      this.instances.push(inst);
      (this.byVrid[c.vrid] ??= []).push(inst);
    }
    for (const g of config.syncGroups) {
      const members = g.instances.map((n) => this.instance(n));
      this.groups.push(new SyncGroup(g, members, { notifier: deps.notifier, logger: deps.logger, observer: deps.observer }));
    }
  }

  instance(name: string): VrrpInstance {
    const found = this.instances.find((i) => i.name === name);
    if (found === undefined) throw new Error(`vrrp: no instance named ${name}`);
    return found;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.socket = this.deps.socketFactory(this, this.endpoints());
    for (const inst of this.instances) inst.refreshTracking();
    for (const g of this.groups) g.init();
    for (const inst of this.instances) inst.start();
  }

  /** The interfaces (and groups) the socket must listen on, one entry per interface. */
  endpoints(): SocketEndpoint[] {
    const out: SocketEndpoint[] = [];
    for (const inst of this.instances) {
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
    this.deps.logger.info(`Netlink reports ${name} ${up ? 'up' : 'down'}`);
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
