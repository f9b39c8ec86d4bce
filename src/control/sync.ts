// keepalived's lvs_sync_daemon over uvs's connection-sync daemons (src/sync): the glue between
// the configuration, VRRP and the SyncManager.
//
// As keepalived 2.2 does (vrrp.c, ipvs_syncd_master / ipvs_syncd_backup):
// - `lvs_sync_daemon IF INSTANCE ...`: the daemons follow that VRRP instance. MASTER stops the
//   sync backup and starts the sync master; any other state (BACKUP, FAULT, INIT at start) stops
//   the master and starts the backup; STOP (shutdown) stops both. The syncid defaults to the
//   instance's virtual_router_id.
// - `lvs_sync_daemon IF` without an instance: master and backup run together (each director
//   sends its connections and learns the others': the active-active case).
// - the deprecated per-instance `lvs_sync_daemon_interface IF` is `lvs_sync_daemon IF INSTANCE`.
// A reload that changes the line restarts the daemons the file started; daemons started by
// `uvsadm --start-daemon` are left alone (starting over one of them is refused with EEXIST,
// logged).

import type { LvsSyncDaemon, KeepalivedConfig } from '../config/keepalived/model';
import type { SyncDaemonOptions, SyncManager, SyncState } from '../sync/daemon';
import type { VrrpState } from '../vrrp/types';
import type { DaemonHost } from './host';
import type { VrrpGlue } from './vrrp';
import type { Logger } from '../runtime/log';

interface Desired {
  instance: string | null;
  options: SyncDaemonOptions;
}

/** The sync daemons keepalived.conf asks for (null: none). */
export function desiredSync(k: KeepalivedConfig): Desired | null {
  let l: LvsSyncDaemon | undefined = k.global.lvsSyncDaemon;
  if (!l) {
    const v = k.vrrpInstances.find((i) => i.lvsSyncDaemonInterface !== undefined);
    if (v) l = { interface: v.lvsSyncDaemonInterface!, vrrpInstance: v.name, fromInstance: true, loc: v.loc };
  }
  if (!l) return null;
  const instance = l.vrrpInstance ?? null;
  const vrid = instance === null ? undefined : k.vrrpInstances.find((i) => i.name === instance)?.virtualRouterId;
  return {
    instance,
    options: {
      mcastInterface: l.interface,
      syncId: l.syncId ?? vrid ?? 0,
      syncMaxlen: l.maxlen ?? 0,
      mcastGroup: l.group ?? '',
      mcastPort: l.port ?? 0,
      mcastTtl: l.ttl ?? 0,
    },
  };
}

export class SyncGlue {
  private desired: Desired | null = null;
  /** The daemons this glue started (and so may stop). */
  private readonly mine = new Set<SyncState>();

  constructor(private readonly sync: SyncManager, private readonly vrrp: VrrpGlue | null, private readonly log: Logger) {}

  /** A (re)loaded configuration. */
  configure(k: KeepalivedConfig): void {
    const next = desiredSync(k);
    if (JSON.stringify(next) === JSON.stringify(this.desired)) return;
    this.stopMine();
    this.desired = next;
    if (!next) return;
    if (next.instance === null) {
      this.run('master');
      this.run('backup');
    } else {
      this.follow(this.vrrp?.instanceStates().get(next.instance) ?? 'INIT');
    }
  }

  /** A VRRP instance changed state. */
  instanceState(instance: string, state: VrrpState): void {
    if (this.desired?.instance === instance) this.follow(state);
  }

  private follow(state: VrrpState): void {
    if (state === 'STOP') {
      this.stopMine();
    } else if (state === 'MASTER') {
      this.halt('backup');
      this.run('master');
    } else {
      this.halt('master');
      this.run('backup');
    }
  }

  private run(state: SyncState): void {
    if (this.mine.has(state) || !this.desired) return;
    try {
      this.sync.start(state, this.desired.options);
      this.mine.add(state);
    } catch (err) {
      this.log.error(`lvs_sync_daemon: cannot start the ${state} sync daemon on ${this.desired.options.mcastInterface}: ${(err as Error).message}`);
    }
  }

  private halt(state: SyncState): void {
    if (!this.mine.has(state)) return;
    this.mine.delete(state);
    try {
      this.sync.stop(state);
    } catch (err) {
      this.log.warn(`lvs_sync_daemon: stopping the ${state} sync daemon: ${(err as Error).message}`);
    }
  }

  stopMine(): void {
    this.halt('master');
    this.halt('backup');
  }
}

/** Hooks the glue into the daemon: the file's lvs_sync_daemon now and at every reload, VRRP's
 *  state changes, and shutdown. */
export function attachSync(daemon: DaemonHost, sync: SyncManager, vrrp: VrrpGlue | null, log: Logger): SyncGlue {
  const glue = new SyncGlue(sync, vrrp, log);
  vrrp?.onInstanceState((instance, state) => glue.instanceState(instance, state));
  daemon.onConfig((loaded) => glue.configure(loaded.keepalived));
  return glue;
}
