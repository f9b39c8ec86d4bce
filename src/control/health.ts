// The glue between the health checkers (src/check: HealthService = CheckRunner + Notifier) and the
// daemon's service model. keepalived's checkers call ipvs_cmd() directly; here they only decide,
// and this file turns their decisions into model changes, which the data plane applies like any
// uvsadm command.
//
// Two tables are kept apart:
// - the CONFIGURED table: what keepalived.conf says (LoadedConfig.model). Only a (re)load changes it.
// - the LIVE table (the ServiceModel): the configured one with the checkers' view on top — real
//   servers they hold down left out (or at weight 0 under inhibit_on_failure), misc_dynamic
//   weights, the sorry server while quorum is lost.
// A reload diffs the live table against live(new configured table), computed with the checkers'
// CURRENT state, so a real server its checker holds down is not resurrected, and a checker's
// decision is never mistaken for a configuration change. A checker's pool change between reloads
// touches only the services of its virtual_server, and only their real servers.
//
// Ids: the runner matches real servers across reloads by id + address:port, and the notifier keys
// its scripts by id. Positional ids would shift when a real server is removed in front of others
// (and restart their checkers), so ids here are given once per virtual_server / real_server
// identity and kept for the daemon's life. The data plane's own stable id, the DestTable slot,
// follows from the diff: a real server left in place by the diff keeps its slot and connections.

import { checkConfigFromModel } from '../check/from-config';
import type { CheckConfig } from '../check/from-config';
import type { CheckEvent, PoolDest } from '../check/runner';
import { HealthService } from '../check/service';
import { inetAton } from '../config/ipvsadm-addr';
import type { VirtualServer } from '../config/keepalived/index';
import { ForwardMethod } from '../tables/dest-table';
import { TunnelType, applyChange, diffConfigs, serviceKeyString } from '../service/model';
import type { DestConfig, ModelChange, ModelConfig, ModelServiceConfig } from '../service/model';
import { forwardMethod } from './config-loader';
import type { LoadedConfig } from './config-loader';
import type { DaemonHost } from './host';
import type { Logger } from '../runtime/log';
import { checkDetailLine, keepalivedCheckLines } from '../check/log-text';

/** A loaded configuration with the stable ids its virtual and real servers got. */
interface Adopted {
  loaded: LoadedConfig;
  /** Checker id of keepalived virtual_server i. */
  vsIds: number[];
  /** Checker id of real_server k of virtual_server i. */
  rsIds: number[][];
}

/** keepalived's identity of a virtual_server: what a reload matches it by. */
function vsIdentity(vs: VirtualServer): string {
  const key = vs.key;
  if (key.kind === 'fwmark') return `fwmark ${key.mark}`;
  if (key.kind === 'group') return `group ${key.name} ${vs.protocol ?? 'TCP'}`;
  return `${vs.protocol ?? 'TCP'} ${key.address.text}:${key.port}`;
}

function vsPort(vs: VirtualServer): number {
  return vs.key.kind === 'ip' ? vs.key.port : 0;
}

function onlyDestChanges(changes: ModelChange[]): ModelChange[] {
  return changes.filter((c) => c.kind === 'add-dest' || c.kind === 'edit-dest' || c.kind === 'delete-dest');
}

export interface HealthGlueOptions {
  log: Logger;
  /** Bound on notify scripts' run time (ms). */
  scriptTimeoutMs?: number;
}

export class HealthGlue {
  private health: HealthService | null = null;
  /** The configuration the live table follows. */
  private current: Adopted | null = null;
  /** A configuration heard of (onConfig) and not applied yet; `config` is null when the
   *  checkers already run it (the first load). */
  private pending: { adopted: Adopted; config: CheckConfig | null } | null = null;
  /** The latest pool of each checker virtual server, by its id. */
  private readonly pools = new Map<number, PoolDest[]>();
  private readonly vsIdOf = new Map<string, number>();
  private readonly rsIdOf = new Map<string, number>();
  private nextId = 0;
  /** Pool events only record (no table change) while a (re)load is being prepared or on stop. */
  private deferPools = false;
  private stopped = false;

  constructor(private readonly daemon: DaemonHost, private readonly options: HealthGlueOptions) {
    daemon.setLiveView((configured) => this.liveView(configured));
    daemon.onConfig((loaded) => this.prepare(loaded));
    daemon.onStop('health checks', () => this.stop());
  }

  /** The running checkers' view (null before the first configuration). */
  get service(): HealthService | null {
    return this.health;
  }

  // ---- (re)load -----------------------------------------------------------------------------

  /** A new configuration heard of (onConfig). The first one starts the checkers; a later one is
   *  only checked here (throws, changing nothing, when a checker cannot be built) and applied in
   *  liveView(), once every subsystem has accepted the file and the daemon applies its table. */
  private prepare(loaded: LoadedConfig): void {
    const adopted = this.assignIds(loaded);
    const config = this.checkConfig(adopted);
    if (this.health === null) {
      this.deferPools = true;
      try {
        const health = HealthService.fromConfig(config, {
          onPool: (vsId, dests) => this.onPool(vsId, dests),
          onEvent: (e) => this.logEvent(e),
          log: this.options.log,
          scriptTimeoutMs: this.options.scriptTimeoutMs,
        });
        // start() publishes every virtual server's first pool (alpha servers out, quorum and
        // sorry server decided) before the table is first written: nothing flaps at start.
        health.start();
        this.health = health;
      } finally {
        this.deferPools = false;
      }
      this.pending = { adopted, config: null };
      return;
    }
    this.health.validate(config);
    this.pending = { adopted, config };
  }

  /** Reconfigures the running checkers; their pool changes are recorded, not applied: the
   *  daemon's diff right after applies them with the rest of the file. */
  private commit(config: CheckConfig, adopted: Adopted): void {
    this.deferPools = true;
    try {
      this.health!.reloadConfig(config);
    } finally {
      this.deferPools = false;
    }
    const ids = new Set(adopted.vsIds);
    for (const id of [...this.pools.keys()]) if (!ids.has(id)) this.pools.delete(id);
  }

  /** Gives every virtual and real server its id: the same one as in earlier loads when its
   *  identity (protocol, address, port) is the same. */
  private assignIds(loaded: LoadedConfig): Adopted {
    const vsIds: number[] = [];
    const rsIds: number[][] = [];
    const taken = new Set<number>();
    const idFor = (map: Map<string, number>, key: string): number => {
      let id = map.get(key);
      // A duplicate in one file (the validator reports it) gets its own id, not a shared one.
      if (id === undefined || taken.has(id)) {
        id = this.nextId++;
        if (!map.has(key)) map.set(key, id);
      }
      taken.add(id);
      return id;
    };
    for (const vs of loaded.keepalived.virtualServers) {
      const vsKey = vsIdentity(vs);
      vsIds.push(idFor(this.vsIdOf, vsKey));
      rsIds.push(vs.realServers.map((rs) => idFor(this.rsIdOf, `${vsKey} ${rs.address.text}:${rs.port ?? vsPort(vs)}`)));
    }
    return { loaded, vsIds, rsIds };
  }

  private checkConfig(adopted: Adopted): CheckConfig {
    const config = checkConfigFromModel(adopted.loaded.keepalived);
    // checkConfigFromModel maps virtual_servers and real_servers one for one, in order.
    config.virtualServers.forEach((vs, i) => {
      vs.id = adopted.vsIds[i]!;
      vs.realServers.forEach((rs, k) => (rs.id = adopted.rsIds[i]![k]!));
    });
    return config;
  }

  // ---- configured → live ----------------------------------------------------------------------

  /** Daemon.applyConfig's view: the table to have for `configured`. A configuration that did not
   *  come through onConfig (a test's, an ipvsadm-style one) passes unchanged. */
  private liveView(configured: ModelConfig): ModelConfig {
    const pending = this.pending;
    if (pending && pending.adopted.loaded.model === configured) {
      this.pending = null;
      if (pending.config) this.commit(pending.config, pending.adopted);
      this.current = pending.adopted;
    }
    if (!this.current || this.current.loaded.model !== configured) return configured;
    return { ...configured, services: configured.services.map((s, i) => this.liveService(this.current!, s, i)) };
  }

  /** One configured service with its checker's pool applied. */
  private liveService(adopted: Adopted, configured: ModelServiceConfig, index: number): ModelServiceConfig {
    const origin = adopted.loaded.origins[index];
    if (!origin) return configured;
    const pool = this.pools.get(adopted.vsIds[origin.vs]!);
    if (!pool) return configured;
    const weights = new Map<number, number>();
    for (const d of pool) if (!d.sorry) weights.set(d.rsId, d.weight);
    const rsIds = adopted.rsIds[origin.vs]!;
    const dests: DestConfig[] = [];
    configured.dests.forEach((d, j) => {
      const weight = weights.get(rsIds[origin.rs[j]!]!);
      if (weight !== undefined) dests.push(weight === d.weight ? d : { ...d, weight });
    });
    const sorry = pool.find((d) => d.sorry);
    if (sorry) {
      const vs = adopted.loaded.keepalived.virtualServers[origin.vs]!;
      const dest = this.sorryDest(vs, configured, sorry);
      if (dest && !dests.some((d) => d.addr === dest.addr && d.port === dest.port)) dests.push(dest);
    }
    return { ...configured, dests };
  }

  /** keepalived's sorry_server as a real server of the service: the virtual server's forwarding
   *  method unless sorry_server_lvs_method says otherwise; DR and TUN keep the service port. */
  private sorryDest(vs: VirtualServer, service: ModelServiceConfig, sorry: PoolDest): DestConfig | null {
    const addr = inetAton(sorry.address);
    if (addr === null) return null; // IPv6 sorry server: not served, as IPv6 real servers
    const fwd = forwardMethod(vs.sorryServerLvsMethod ?? vs.forwarding);
    return {
      af: 4,
      addr,
      port: fwd === ForwardMethod.MASQ || service.fwmark !== 0 ? sorry.port : service.port,
      fwd,
      weight: sorry.weight,
      uThreshold: 0,
      lThreshold: 0,
      tunType: TunnelType.IPIP,
      tunPort: 0,
      tunFlags: 0,
    };
  }

  // ---- checker decisions → table ----------------------------------------------------------------

  private onPool(vsId: number, dests: PoolDest[]): void {
    this.pools.set(vsId, dests);
    if (this.deferPools || this.stopped || !this.current) return;
    const adopted = this.current;
    const vsIndex = adopted.vsIds.indexOf(vsId);
    if (vsIndex < 0) return;
    const configured = adopted.loaded.model;
    const targets: ModelServiceConfig[] = [];
    configured.services.forEach((s, i) => {
      if (adopted.loaded.origins[i]?.vs === vsIndex) targets.push(this.liveService(adopted, s, i));
    });
    // Only the services this virtual server made, and only those still in the table (uvsadm may
    // have deleted one): their real servers are brought to the checker's view, nothing else.
    const live = this.daemon.model.exportConfig();
    const liveKeys = new Set(live.services.map((s) => serviceKeyString(s)));
    const targetKeys = new Set(targets.map((s) => serviceKeyString(s)));
    const from: ModelConfig = { ...live, services: live.services.filter((s) => targetKeys.has(serviceKeyString(s))) };
    const to: ModelConfig = { ...live, services: targets.filter((s) => liveKeys.has(serviceKeyString(s))) };
    // A real server added by hand (uvsadm -a) to a configured service is not the checkers' to
    // remove: deletions are limited to the configured real servers and the sorry server.
    const managed = new Set<string>();
    const vs = adopted.loaded.keepalived.virtualServers[vsIndex]!;
    configured.services.forEach((s, i) => {
      if (adopted.loaded.origins[i]?.vs !== vsIndex) return;
      const key = serviceKeyString(s);
      for (const d of s.dests) managed.add(`${key} ${d.addr >>> 0}:${d.port}`);
      const sorry = vs.sorryServer
        ? this.sorryDest(vs, s, { rsId: -1, address: vs.sorryServer.address.text, port: vs.sorryServer.port ?? vsPort(vs), weight: 0, sorry: true })
        : null;
      if (sorry) managed.add(`${key} ${sorry.addr >>> 0}:${sorry.port}`);
    });
    const changes = onlyDestChanges(diffConfigs(from, to)).filter(
      (c) => c.kind !== 'delete-dest' || managed.has(`${serviceKeyString(c.service)} ${c.dest.addr >>> 0}:${c.dest.port}`),
    );
    for (const change of changes) {
      try {
        applyChange(this.daemon.model, change);
      } catch (err) {
        this.options.log.error(`health check: ${change.kind}: ${(err as Error).message}`);
      }
    }
  }

  /** keepalived's log lines for checker results and the table changes they make (check/log-text.ts),
   *  under keepalived's checker ident so syslog filters on Keepalived_healthcheckers keep working. */
  private logEvent(e: CheckEvent): void {
    for (const line of keepalivedCheckLines(e)) this.options.log.info(`Keepalived_healthcheckers: ${line}`);
    const detail = checkDetailLine(e);
    if (detail !== null) this.options.log.debug(`Keepalived_healthcheckers: ${detail}`);
  }

  private async stop(): Promise<void> {
    // The pools stop() empties are keepalived's clean-up of its IPVS entries; the daemon is
    // going away with its table, so they are not applied.
    this.stopped = true;
    await this.health?.stop();
  }
}

/** Health checks for a daemon started with -f: attach before the configuration is first read. */
export function attachHealth(daemon: DaemonHost, log: Logger, scriptTimeoutMs?: number): HealthGlue {
  return new HealthGlue(daemon, { log, scriptTimeoutMs });
}
