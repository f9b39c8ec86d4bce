// vrrp_sync_group: instances that move together, as keepalived's vrrp_sync.c does it.
// - FAULT: one member failing puts every member in FAULT (a master among them sends priority 0).
// - MASTER: a member becomes master only when every member wants to (each one's own
//   Master_Down_Timer fired, or it is an owner) — "prefer backup state to avoid thrashing" —
//   and then all members become master together.
// - BACKUP: a master outranked on one VRID takes every member back to BACKUP.
// Group notify scripts get "GROUP" NAME STATE 0, as keepalived's notify_group_exec() passes.

import type { VrrpInstance } from './instance';
import { VrrpSyncGroupConfig } from './config';
import { Logger, Notifier, VrrpObserver, VrrpState } from './types';

export interface SyncGroupDeps {
  notifier: Notifier;
  logger: Logger;
  observer: VrrpObserver;
}

export class SyncGroup {
  readonly config: VrrpSyncGroupConfig;
  readonly members: VrrpInstance[];
  state: VrrpState = 'INIT';
  private transition: VrrpState | null = null;
  private readonly deps: SyncGroupDeps;

  constructor(config: VrrpSyncGroupConfig, members: VrrpInstance[], deps: SyncGroupDeps) {
    this.config = config;
    this.members = members;
    this.deps = deps;
    if (members.length === 1) {
      deps.logger.warn(`Sync group ${config.name} has only 1 virtual router(s) - this probably isn't what you want`);
    }
    for (const m of members) m.group = this;
  }

  get name(): string {
    return this.config.name;
  }

  /** Before the members start: FAULT if any member's own tracking fails, else BACKUP (vrrp_init_state). */
  init(): void {
    this.setState(this.anyMemberFaulted() ? 'FAULT' : 'BACKUP');
  }

  anyMemberFaulted(): boolean {
    for (const m of this.members) if (m.ownFault) return true;
    return false;
  }

  /** keepalived vrrp_sync_can_goto_master(). */
  canGotoMaster(candidate: VrrpInstance): boolean {
    if (this.state === 'MASTER' || this.transition === 'MASTER') return true;
    for (const m of this.members) {
      if (m !== candidate && m.wantState !== 'MASTER') return false;
    }
    return true;
  }

  /** keepalived vrrp_sync_master(). */
  memberBecameMaster(trigger: VrrpInstance): void {
    if (this.state === 'MASTER' || this.transition !== null) return;
    this.deps.logger.info(`VRRP_Group(${this.name}) Syncing instances to MASTER state`);
    this.transition = 'MASTER';
    for (const m of this.members) {
      if (m !== trigger && m.state !== 'MASTER') {
        m.wantState = 'MASTER';
        m.gotoMaster();
      }
    }
    this.transition = null;
    this.setState('MASTER');
  }

  /** keepalived vrrp_sync_backup(). */
  memberBecameBackup(trigger: VrrpInstance): void {
    if (this.state === 'BACKUP' || this.transition !== null) return;
    this.deps.logger.info(`VRRP_Group(${this.name}) Syncing instances to BACKUP state`);
    this.transition = 'BACKUP';
    for (const m of this.members) {
      if (m !== trigger) m.followToBackup();
    }
    this.transition = null;
    this.setState('BACKUP');
  }

  /** keepalived vrrp_sync_fault(). */
  memberFaulted(trigger: VrrpInstance): void {
    if (this.state === 'FAULT' || this.transition !== null) return;
    this.deps.logger.info(`VRRP_Group(${this.name}) Syncing instances to FAULT state`);
    this.transition = 'FAULT';
    for (const m of this.members) {
      if (m !== trigger) m.forceFault();
    }
    this.transition = null;
    this.setState('FAULT');
  }

  /** The last failing member recovered: every member leaves FAULT for BACKUP. */
  memberRecovered(trigger: VrrpInstance): void {
    if (this.state !== 'FAULT' || this.transition !== null) return;
    this.deps.logger.info(`VRRP_Group(${this.name}) Leaving FAULT state`);
    this.transition = 'BACKUP';
    for (const m of this.members) {
      if (m !== trigger) m.leaveForcedFault();
    }
    this.transition = null;
    this.setState(trigger.state === 'MASTER' ? 'MASTER' : 'BACKUP');
  }

  stop(): void {
    if (this.state !== 'STOP') this.setState('STOP');
  }

  private setState(state: VrrpState): void {
    this.state = state;
    const scripts = this.config.notify;
    const specific =
      state === 'MASTER'
        ? scripts.master
        : state === 'BACKUP'
          ? scripts.backup
          : state === 'FAULT'
            ? scripts.fault
            : state === 'STOP'
              ? scripts.stop
              : undefined;
    if (specific) this.deps.notifier.run(specific, []);
    if (scripts.generic) this.deps.notifier.run(scripts.generic, ['GROUP', this.name, state, '0']);
    this.deps.observer.groupState(this.name, state);
  }
}
