// One VRRP instance: the state machine of RFC 3768 §6.4 (v2) and RFC 5798 §6.4 (v3), with the
// behaviour of keepalived 2.x where users rely on it (vrrp.c, vrrp_scheduler.c, vrrp_track.c).
// No I/O of its own: adverts go out through a VrrpSocket, VIPs through a VipManager, scripts
// through a Notifier, time through a Clock — all passed in.

import { checkAdvert } from './checks';
import { VrrpInstanceConfig, wantsMasterAtStart } from './config';
import { ipv4ToInt } from '../packet/addr';
import type { SyncGroup } from './sync-group';
import {
  AdvertReceipt,
  Clock,
  Logger,
  Notifier,
  PRIORITY_OWNER,
  PRIORITY_STOP,
  TimerId,
  TrackedObject,
  VRRP_TTL,
  VRRP_TYPE_ADVERTISEMENT,
  VipManager,
  VirtualAddress,
  VrrpAdvert,
  VrrpObserver,
  VrrpSocket,
  VrrpState,
  VrrpStats,
  emptyStats,
} from './types';

/** What the instance reads about the things it tracks; the router keeps the current values. */
export interface TrackingView {
  interfaceUp(name: string): boolean;
  /** undefined until the script has reported once. */
  scriptResult(name: string): boolean | undefined;
}

export interface InstanceDeps {
  clock: Clock;
  socket: VrrpSocket;
  vips: VipManager;
  notifier: Notifier;
  logger: Logger;
  observer: VrrpObserver;
  tracking: TrackingView;
}

interface TrackingSummary {
  /** Some unweighted tracked object is failing (or the primary interface is down). */
  faulted: boolean;
  /** Some tracked script has not reported yet (keepalived's num_script_init). */
  waiting: boolean;
  /** base priority plus the weights in effect (keepalived's total_priority). */
  total: number;
}

const NO_TIMER = 0;

/**
 * Skew_Time in ms, computed as keepalived does (integer microseconds):
 * v2 (RFC 3768 §6.1): (256 - Priority) / 256 seconds;
 * v3 (RFC 5798 §6.1): ((256 - Priority) * Master_Adver_Interval) / 256, the interval in centiseconds.
 */
export function skewTimeMs(version: number, priority: number, masterAdverIntMs: number): number {
  if (version === 3) {
    const cs = Math.round(masterAdverIntMs / 10);
    return Math.floor(((256 - priority) * cs * 625) / 16) / 1000;
  }
  return Math.floor(((256 - priority) * 1000000) / 256) / 1000;
}

/** Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time (RFC 3768 §6.1, RFC 5798 §6.1). */
export function masterDownIntervalMs(version: number, priority: number, masterAdverIntMs: number): number {
  return 3 * masterAdverIntMs + skewTimeMs(version, priority, masterAdverIntMs);
}

/** The weight a tracked object adds to the priority right now (keepalived vrrp_track.c semantics). */
function weightInEffect(t: TrackedObject, ok: boolean): number {
  // A positive weight is added while the object is OK, a negative one while it fails;
  // `reverse` swaps which condition counts.
  const good = t.reverse ? !ok : ok;
  if (t.weight > 0) return good ? t.weight : 0;
  return good ? 0 : t.weight;
}

export class VrrpInstance {
  /** Replaced (never changed in place) only by setPrimaryAddress; a reload makes a new instance. */
  private cfg: VrrpInstanceConfig;

  get config(): VrrpInstanceConfig {
    return this.cfg;
  }
  readonly stats: VrrpStats = emptyStats();
  state: VrrpState = 'INIT';
  /** The state this instance would be in disregarding its sync group (keepalived's wantstate). */
  wantState: VrrpState = 'BACKUP';
  basePriority: number;
  effectivePriority: number;
  /** Master_Adver_Interval: our own, or (v3, as backup) the one learned from the master's adverts. */
  masterAdverIntMs: number;
  /** Source address of the master we last accepted an advert from ('' = none). */
  masterAddress = '';
  masterPriority = 0;
  group: SyncGroup | null = null;
  /** This instance's own tracked objects say FAULT (as opposed to a fault forced by its sync group). */
  ownFault = false;

  private readonly deps: InstanceDeps;
  private timer: TimerId = NO_TIMER;
  private timerDeadline = 0;
  private garpDelayTimer: TimerId = NO_TIMER;
  private garpRefreshTimer: TimerId = NO_TIMER;
  /** keepalived preempt_time: when a lower-priority master may be preempted (0 = not started). */
  private preemptTime = 0;
  private vipsSet = false;
  private notifiesSent = false;
  private readonly onTimerBound = (): void => this.onTimer();
  private readonly onGarpDelayBound = (): void => this.onGarpDelay();
  private readonly onGarpRefreshBound = (): void => this.onGarpRefresh();

  constructor(config: VrrpInstanceConfig, deps: InstanceDeps) {
    this.cfg = config;
    this.deps = deps;
    this.basePriority = config.priority;
    this.effectivePriority = config.priority;
    this.masterAdverIntMs = config.advertIntMs;
    if (config.priority === PRIORITY_OWNER && (config.trackInterfaces.some((t) => t.weight) || config.trackScripts.some((t) => t.weight))) {
      deps.logger.warn(`(${config.name}) track weights are ignored: an address owner (priority 255) keeps its priority`);
    }
  }

  get name(): string {
    return this.config.name;
  }

  get vipsInstalled(): boolean {
    return this.vipsSet;
  }

  skewMs(): number {
    return skewTimeMs(this.config.version, this.effectivePriority, this.masterAdverIntMs);
  }

  masterDownMs(): number {
    return masterDownIntervalMs(this.config.version, this.effectivePriority, this.masterAdverIntMs);
  }

  /** When the running timer fires (clock ms), or NaN when none runs. */
  timerDue(): number {
    return this.timer === NO_TIMER ? Number.NaN : this.timerDeadline;
  }

  // ---- start-up: RFC 3768 §6.4.1 "Initialize", as keepalived's vrrp_init_state() does it ----

  /** Reads the tracked objects once (priority and own FAULT) without changing state; the router
   * calls it for every instance before sync groups decide their initial state. */
  refreshTracking(): boolean {
    const summary = this.summarize();
    this.applyPriority(summary.total);
    this.ownFault = summary.faulted;
    return summary.waiting;
  }

  /** Leaves INIT once every tracked script has reported; call again after script results arrive. */
  start(): void {
    if (this.state !== 'INIT') return;
    const waiting = this.refreshTracking();
    if (waiting) {
      // keepalived holds an instance whose scripts have not run yet out of the protocol.
      this.deps.logger.info(`(${this.name}) waiting for tracked scripts before starting`);
      return;
    }
    if (this.ownFault || (this.group !== null && this.group.anyMemberFaulted())) {
      this.wantState = 'FAULT';
      this.deps.logger.info(`(${this.name}) Entering FAULT STATE (init)`);
      this.setState('FAULT');
      this.group?.memberFaulted(this);
      return;
    }
    this.masterAdverIntMs = this.config.advertIntMs;
    // keepalived's preempt_delay counts "after startup or seeing a lower priority master": its
    // parser starts the delay when the daemon starts.
    if (this.config.preemptDelayMs > 0) this.preemptTime = this.deps.clock.now() + this.config.preemptDelayMs;
    if (this.basePriority === PRIORITY_OWNER) {
      // RFC 3768 §6.4.1: "If the Priority = 255 ... transition to the Master state". keepalived
      // does it by entering BACKUP silently with an immediately expiring timer; a 0 ms timer
      // lets every instance of the router start before any sync-group decision is taken.
      this.wantState = 'MASTER';
      if (this.group !== null) this.setState('BACKUP'); // a sync group may hold it in BACKUP a while
      else this.state = 'BACKUP';
      this.armTimer(0);
      return;
    }
    this.wantState = wantsMasterAtStart(this.config) ? 'MASTER' : 'BACKUP';
    this.deps.logger.info(`(${this.name}) Entering BACKUP STATE (init)`);
    this.setState('BACKUP');
    if (this.wantState === 'MASTER') {
      // keepalived quirk for `state MASTER` below 255: wait one advert interval plus the
      // minimum skew instead of Master_Down_Interval, then take over unless an advert of
      // higher or equal priority arrived meanwhile.
      this.armTimer(this.masterAdverIntMs + skewTimeMs(this.config.version, 255, this.masterAdverIntMs));
    } else {
      this.armTimer(this.masterDownMs());
    }
  }

  // ---- timers ----

  private onTimer(): void {
    this.timer = NO_TIMER;
    if (this.state === 'BACKUP') {
      // RFC 3768 §6.4.2: "If the Master_Down_timer fires ... Transition to the Master state".
      this.wantState = 'MASTER';
      this.gotoMaster();
    } else if (this.state === 'MASTER') {
      // RFC 3768 §6.4.3: "If the Adver_Timer fires: Send an ADVERTISEMENT; Reset the Adver_Timer".
      this.sendAdvert(this.effectivePriority);
      this.armTimer(this.config.advertIntMs);
    }
  }

  private armTimer(delayMs: number): void {
    if (this.timer !== NO_TIMER) this.deps.clock.clearTimer(this.timer);
    const delay = delayMs < 0 ? 0 : delayMs;
    this.timerDeadline = this.deps.clock.now() + delay;
    this.timer = this.deps.clock.setTimer(this.onTimerBound, delay);
  }

  private clearTimer(): void {
    if (this.timer !== NO_TIMER) this.deps.clock.clearTimer(this.timer);
    this.timer = NO_TIMER;
  }

  private clearGarpTimers(): void {
    if (this.garpDelayTimer !== NO_TIMER) this.deps.clock.clearTimer(this.garpDelayTimer);
    if (this.garpRefreshTimer !== NO_TIMER) this.deps.clock.clearTimer(this.garpRefreshTimer);
    this.garpDelayTimer = NO_TIMER;
    this.garpRefreshTimer = NO_TIMER;
  }

  private onGarpDelay(): void {
    this.garpDelayTimer = NO_TIMER;
    // keepalived vrrp_gratuitous_arp_thread: the second round, garp_master_delay after the first.
    this.sendGarps(this.config.garpMasterRepeat);
  }

  private onGarpRefresh(): void {
    this.garpRefreshTimer = this.deps.clock.setTimer(this.onGarpRefreshBound, this.config.garpMasterRefreshMs);
    this.sendGarps(this.config.garpMasterRefreshRepeat);
  }

  // ---- transitions ----

  /** keepalived vrrp_state_goto_master(): a sync group may hold us back until all members want MASTER. */
  gotoMaster(): void {
    if (this.group !== null && !this.group.canGotoMaster(this)) {
      this.wantState = 'MASTER';
      this.deps.logger.info(`(${this.name}) waiting for sync group ${this.group.name} before becoming MASTER`);
      this.armTimer(this.masterDownMs());
      return;
    }
    this.wantState = 'MASTER';
    // keepalived vrrp_state_master_tx(): the advert goes first, so the old master drops the
    // VIPs before our gratuitous ARPs arrive (RFC 3768 §6.4.2: send an ADVERTISEMENT, then
    // broadcast a gratuitous ARP for each address).
    this.sendAdvert(this.effectivePriority);
    this.becomeMaster();
    this.armTimer(this.config.advertIntMs);
    this.group?.memberBecameMaster(this);
  }

  private becomeMaster(): void {
    this.stats.becameMaster++;
    this.masterAdverIntMs = this.config.advertIntMs;
    this.masterAddress = '';
    this.deps.logger.info(`(${this.name}) Entering MASTER STATE`);
    for (const vip of this.config.virtualAddresses) this.deps.vips.add(vip);
    for (const vip of this.config.excludedAddresses) this.deps.vips.add(vip);
    this.vipsSet = true;
    this.sendGarps(this.config.garpMasterRepeat);
    this.clearGarpTimers();
    if (this.config.garpMasterDelayMs > 0) {
      this.garpDelayTimer = this.deps.clock.setTimer(this.onGarpDelayBound, this.config.garpMasterDelayMs);
    }
    if (this.config.garpMasterRefreshMs > 0) {
      this.garpRefreshTimer = this.deps.clock.setTimer(this.onGarpRefreshBound, this.config.garpMasterRefreshMs);
    }
    this.setState('MASTER');
  }

  /** keepalived vrrp_state_leave_master(): to BACKUP (outranked) or FAULT (tracking failed). */
  leaveMaster(to: 'BACKUP' | 'FAULT'): void {
    this.wantState = to;
    this.deps.logger.info(`(${this.name}) Entering ${to} STATE`);
    if (to === 'FAULT') {
      // Tell the backups at once instead of letting them wait out Master_Down_Interval.
      this.sendAdvert(PRIORITY_STOP);
    } else {
      this.preemptTime = 0;
    }
    this.releaseVips();
    this.stats.releasedMaster++;
    this.setState(to);
    if (to === 'BACKUP') this.armTimer(this.masterDownMs());
    else this.clearTimer();
    if (to === 'BACKUP') this.group?.memberBecameBackup(this);
  }

  private releaseVips(): void {
    this.clearGarpTimers();
    if (!this.vipsSet) return;
    for (const vip of this.config.virtualAddresses) this.deps.vips.remove(vip);
    for (const vip of this.config.excludedAddresses) this.deps.vips.remove(vip);
    this.vipsSet = false;
  }

  /** The sync group moves a BACKUP member to FAULT with it (keepalived vrrp_sync_fault()). */
  forceFault(): void {
    if (this.state === 'FAULT' || this.state === 'STOP' || this.state === 'INIT') return;
    if (this.state === 'MASTER') {
      this.leaveMaster('FAULT');
      return;
    }
    this.deps.logger.info(`(${this.name}) Entering FAULT STATE (sync group)`);
    this.clearTimer();
    this.setState('FAULT');
  }

  /** The sync group recovered: leave a FAULT forced on us (keepalived vrrp_sync_backup()). */
  leaveForcedFault(): void {
    if (this.state !== 'FAULT' || this.ownFault) return;
    this.enterBackupFromFault();
  }

  /** The sync group lost its MASTER: follow it to BACKUP. */
  followToBackup(): void {
    if (this.state === 'MASTER') this.leaveMaster('BACKUP');
  }

  private enterBackupFromFault(): void {
    // keepalived try_up_instance()/vrrp_state_leave_fault().
    this.masterAdverIntMs = this.config.advertIntMs;
    this.preemptTime = 0;
    if (this.basePriority === PRIORITY_OWNER) {
      this.wantState = 'MASTER';
      this.state = 'BACKUP';
      this.gotoMaster();
      return;
    }
    this.wantState = 'BACKUP';
    this.deps.logger.info(`(${this.name}) Entering BACKUP STATE`);
    this.setState('BACKUP');
    this.armTimer(this.masterDownMs());
  }

  private setState(state: VrrpState): void {
    const previous = this.state;
    this.state = state;
    this.sendNotifies();
    this.deps.observer.instanceState(this.name, state, previous, this.effectivePriority);
  }

  /** keepalived send_instance_notifies(), including its rule for sync-group members. */
  private sendNotifies(): void {
    if (this.notifiesSent && this.group !== null && this.group.state === this.state) return;
    this.notifiesSent = true;
    const scripts = this.config.notify;
    const specific =
      this.state === 'MASTER'
        ? scripts.master
        : this.state === 'BACKUP'
          ? scripts.backup
          : this.state === 'FAULT'
            ? scripts.fault
            : this.state === 'STOP'
              ? scripts.stop
              : undefined;
    if (specific) this.deps.notifier.run(specific, []);
    if (scripts.generic) {
      this.deps.notifier.run(scripts.generic, ['INSTANCE', this.name, this.state, String(this.effectivePriority)]);
    }
  }

  // ---- sending ----

  private sendAdvert(priority: number): void {
    const c = this.config;
    const destinations = c.unicastPeers.length ? c.unicastPeers : [c.multicastGroup];
    const addresses = c.virtualAddresses.map((v) => v.address);
    for (const destination of destinations) {
      this.deps.socket.send({
        version: c.version,
        type: VRRP_TYPE_ADVERTISEMENT,
        vrid: c.vrid,
        priority,
        advertIntCs: Math.round(c.advertIntMs / 10),
        authType: c.version === 2 ? c.authType : 0,
        authData: c.version === 2 ? c.authPass : '',
        addresses,
        interfaceName: c.interface,
        source: c.unicastSource ?? c.primaryAddress,
        destination,
        ttl: VRRP_TTL,
      });
    }
    this.stats.advertsSent++;
    if (priority === PRIORITY_STOP) this.stats.priorityZeroSent++;
  }

  private sendGarps(repeat: number): void {
    if (!this.vipsSet) return;
    for (let i = 0; i < repeat; i++) {
      // keepalived vrrp_send_link_update(): the excluded addresses are announced too.
      for (const vip of this.config.virtualAddresses) this.deps.vips.gratuitousArp(vip);
      for (const vip of this.config.excludedAddresses) this.deps.vips.gratuitousArp(vip);
    }
  }

  // ---- receiving ----

  receive(advert: VrrpAdvert, receipt: AdvertReceipt): void {
    // RFC 3768 §6.4.1: Initialize ignores adverts; keepalived reads none in FAULT either.
    if (this.state !== 'BACKUP' && this.state !== 'MASTER') return;
    const checkAddresses = !this.config.skipCheckAdvAddr || receipt.source !== this.masterAddress;
    const failure = checkAdvert(this.config, advert, receipt, checkAddresses);
    if (failure !== null) {
      this.stats[failure.reason]++;
      this.deps.logger.warn(`(${this.name}) ${failure.message} - dropped`);
      return;
    }
    this.stats.advertsReceived++;
    if (advert.priority === PRIORITY_STOP) this.stats.priorityZeroReceived++;
    if (this.state === 'BACKUP') this.receiveAsBackup(advert, receipt);
    else this.receiveAsMaster(advert, receipt);
  }

  /** RFC 3768 §6.4.2 / RFC 5798 §6.4.2 "If an ADVERTISEMENT is received", with keepalived's preempt_delay. */
  private receiveAsBackup(advert: VrrpAdvert, receipt: AdvertReceipt): void {
    const now = this.deps.clock.now();
    if (advert.priority === PRIORITY_STOP) {
      // "If the Priority in the ADVERTISEMENT is zero, then: Set the Master_Down_Timer to Skew_Time".
      this.deps.logger.info(`(${this.name}) Backup received priority 0 advertisement`);
      this.armTimer(this.skewMs());
      return;
    }
    const accept =
      !this.config.preempt ||
      advert.priority >= this.effectivePriority ||
      (this.config.preemptDelayMs > 0 && (this.preemptTime === 0 || this.preemptTime > now));
    if (!accept) {
      // "If Preempt_Mode is True and the Priority in the ADVERTISEMENT is less than the local
      // Priority, then: Discard the ADVERTISEMENT" — the Master_Down_Timer keeps running,
      // so we take over when it fires.
      this.masterAddress = receipt.source;
      this.deps.logger.info(
        `(${this.name}) received lower priority (${advert.priority}) advert from ${receipt.source} - discarding`,
      );
      return;
    }
    if (this.config.version === 3) {
      // RFC 5798 §6.4.2: "Set Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT".
      const learned = advert.advertIntCs * 10;
      if (learned !== this.masterAdverIntMs) {
        this.deps.logger.info(`(${this.name}) advertisement interval updated from ${this.masterAdverIntMs}ms to ${learned}ms by master`);
        this.masterAdverIntMs = learned;
      }
    }
    this.masterAddress = receipt.source;
    this.masterPriority = advert.priority;
    if (this.config.preemptDelayMs > 0) {
      if (advert.priority >= this.effectivePriority) {
        this.preemptTime = 0;
      } else if (this.preemptTime === 0) {
        // keepalived: the delay starts at the first lower-priority advert we see.
        this.deps.logger.info(`(${this.name}) start preempt delay (${this.config.preemptDelayMs / 1000}s)`);
        this.preemptTime = now + this.config.preemptDelayMs;
      }
    }
    this.wantState = 'BACKUP';
    // "Reset the Master_Down_Timer to Master_Down_Interval".
    this.armTimer(this.masterDownMs());
  }

  /** RFC 3768 §6.4.3 / RFC 5798 §6.4.3 "If an ADVERTISEMENT is received" while MASTER. */
  private receiveAsMaster(advert: VrrpAdvert, receipt: AdvertReceipt): void {
    if (advert.priority === PRIORITY_STOP) {
      // "If the Priority in the ADVERTISEMENT is zero, then: Send an ADVERTISEMENT; Reset the Adver_Timer".
      this.deps.logger.info(`(${this.name}) Master received priority 0 message`);
      this.sendAdvert(this.effectivePriority);
      this.armTimer(this.config.advertIntMs);
      return;
    }
    const ours = ipv4ToInt(this.config.unicastSource ?? this.config.primaryAddress);
    const theirs = ipv4ToInt(receipt.source);
    if (advert.priority === this.effectivePriority) {
      if (ours === theirs) {
        this.deps.logger.warn(`(${this.name}) WARNING - equal priority advert received from remote host with our IP address`);
      } else if (this.effectivePriority === PRIORITY_OWNER) {
        // Two owners on one VRID: keepalived reports it and steps down to 254 so one wins.
        this.deps.logger.warn(
          `(${this.name}) CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority`,
        );
        this.basePriority = PRIORITY_OWNER - 1;
        this.effectivePriority = PRIORITY_OWNER - 1;
      }
    }
    const higher =
      advert.priority > this.effectivePriority || (advert.priority === this.effectivePriority && theirs > ours);
    if (!higher) {
      // "Otherwise: Discard the ADVERTISEMENT". keepalived also answers with its own advert so
      // the lower-priority router (which may have just become master) steps back at once.
      this.deps.logger.info(
        `(${this.name}) Received advert from ${receipt.source} with lower priority ${advert.priority}, ours ${this.effectivePriority}${this.config.lowerPrioNoAdvert ? '' : ', forcing new election'}`,
      );
      if (!this.config.lowerPrioNoAdvert) this.sendAdvert(this.effectivePriority);
      return;
    }
    // "If the Priority in the ADVERTISEMENT is greater than the local Priority, or the Priority
    // in the ADVERTISEMENT is equal to the local Priority and the primary IP Address of the
    // sender is greater than the local primary IP Address, then: Cancel Adver_Timer; Set
    // Master_Down_Timer to Master_Down_Interval; Transition to the Backup state".
    this.deps.logger.info(
      advert.priority > this.effectivePriority
        ? `(${this.name}) Master received advert from ${receipt.source} with higher priority ${advert.priority}, ours ${this.effectivePriority}`
        : `(${this.name}) Master received advert from ${receipt.source} with same priority ${advert.priority} but higher IP address than ours`,
    );
    if (this.config.version === 3) this.masterAdverIntMs = advert.advertIntCs * 10;
    this.masterAddress = receipt.source;
    this.masterPriority = advert.priority;
    this.leaveMaster('BACKUP');
  }

  // ---- tracking ----

  private summarize(): TrackingSummary {
    const c = this.config;
    const view = this.deps.tracking;
    let faulted = !c.dontTrackPrimary && !view.interfaceUp(c.interface);
    let waiting = false;
    let total = this.basePriority;
    for (const t of c.trackInterfaces) {
      const up = view.interfaceUp(t.name);
      if (t.weight === 0) {
        if (t.reverse ? up : !up) faulted = true;
      } else {
        total += weightInEffect(t, up);
      }
    }
    for (const t of c.trackScripts) {
      const result = view.scriptResult(t.name);
      if (result === undefined) {
        waiting = true;
        continue;
      }
      if (t.weight === 0) {
        if (t.reverse ? result : !result) faulted = true;
      } else {
        total += weightInEffect(t, result);
      }
    }
    return { faulted, waiting, total };
  }

  /** keepalived vrrp_set_effective_priority(): clamp to 1..254; owners never change. */
  private applyPriority(total: number): void {
    if (this.basePriority === PRIORITY_OWNER) return;
    const next = total < 1 ? 1 : total >= PRIORITY_OWNER ? PRIORITY_OWNER - 1 : total;
    if (next === this.effectivePriority) return;
    this.deps.logger.info(`(${this.name}) Changing effective priority from ${this.effectivePriority} to ${next}`);
    const increasing = next > this.effectivePriority;
    const oldDown = this.masterDownMs();
    this.effectivePriority = next;
    if (this.state === 'BACKUP' && increasing && this.timer !== NO_TIMER) {
      // A shorter Skew_Time applies to the running Master_Down_Timer at once.
      const remaining = this.timerDeadline - this.deps.clock.now() - (oldDown - this.masterDownMs());
      this.armTimer(remaining);
    }
  }

  /** An interface or script this instance may track changed; re-evaluate priority and FAULT. */
  /**
   * The interface's primary IPv4 address changed while running (the glue follows `ip monitor`):
   * adverts go from the new one at once, and the RFC 5798 §6.4.3 tie-break compares it, as
   * keepalived's netlink reflector updates the interface's address in place. Nothing else
   * changes: no state change, no new GARP. Not for an instance with unicast_src_ip. Returns
   * whether the address changed.
   */
  setPrimaryAddress(address: string): boolean {
    if (this.cfg.unicastSource !== undefined || this.cfg.primaryAddress === address) return false;
    this.deps.logger.info(`(${this.name}) primary address of ${this.cfg.interface} is now ${address} (was ${this.cfg.primaryAddress}): adverts are sent from it`);
    this.cfg = { ...this.cfg, primaryAddress: address };
    return true;
  }

  trackingChanged(): void {
    if (this.state === 'STOP') return;
    if (this.state === 'INIT') {
      this.start();
      return;
    }
    const summary = this.summarize();
    this.applyPriority(summary.total);
    const wasFaulted = this.ownFault;
    this.ownFault = summary.faulted;
    if (summary.faulted && !wasFaulted) {
      // keepalived down_instance().
      this.wantState = 'FAULT';
      if (this.state === 'MASTER') this.leaveMaster('FAULT');
      else if (this.state !== 'FAULT') {
        this.deps.logger.info(`(${this.name}) Entering FAULT STATE`);
        this.clearTimer();
        this.setState('FAULT');
      }
      this.group?.memberFaulted(this);
    } else if (!summary.faulted && wasFaulted) {
      // keepalived try_up_instance(): a sync group stays in FAULT while any member is down.
      if (this.group !== null && this.group.anyMemberFaulted()) {
        this.wantState = 'BACKUP';
        return;
      }
      if (this.state === 'FAULT') this.enterBackupFromFault();
      this.group?.memberRecovered(this);
    }
  }

  // ---- reload (SIGHUP) ----

  /** Cancels every timer without sending anything: this object is being replaced by a reload. */
  detach(): void {
    this.clearTimer();
    this.clearGarpTimers();
  }

  /** A master whose instance disappears or changes identity on reload: priority 0, VIPs removed. */
  releaseForReload(): void {
    if (this.state === 'MASTER') {
      this.sendAdvert(PRIORITY_STOP);
      this.releaseVips();
      this.stats.releasedMaster++;
    }
    this.detach();
  }

  /**
   * Takes over from the instance of the same name in the previous config (keepalived keeps an
   * instance's state across a reload): a master stays master — VIPs diffed, not flapped — and
   * advertises at once with its new settings; a backup stays backup with a fresh
   * Master_Down_Timer. No notify runs unless the state changes.
   */
  adopt(previous: VrrpInstance): void {
    Object.assign(this.stats, previous.stats);
    this.notifiesSent = true;
    this.masterAddress = previous.masterAddress;
    this.masterPriority = previous.masterPriority;
    const waiting = this.refreshTracking();
    const healthy = !waiting && !this.ownFault && (this.group === null || !this.group.anyMemberFaulted());
    if (previous.state === 'MASTER' && healthy) {
      const key = (v: VirtualAddress): string => `${v.address}/${v.prefixLength} ${v.dev} ${v.label ?? ''} ${v.scope ?? ''} ${v.broadcast ?? ''}`;
      const wanted = new Set([...this.config.virtualAddresses, ...this.config.excludedAddresses].map(key));
      const had = new Set([...previous.config.virtualAddresses, ...previous.config.excludedAddresses].map(key));
      previous.detach();
      for (const v of [...previous.config.virtualAddresses, ...previous.config.excludedAddresses]) {
        if (!wanted.has(key(v))) this.deps.vips.remove(v);
      }
      for (const v of [...this.config.virtualAddresses, ...this.config.excludedAddresses]) {
        if (!had.has(key(v))) this.deps.vips.add(v);
      }
      this.vipsSet = true;
      this.state = 'MASTER';
      this.wantState = 'MASTER';
      this.masterAdverIntMs = this.config.advertIntMs;
      this.sendAdvert(this.effectivePriority);
      this.sendGarps(this.config.garpMasterRepeat);
      if (this.config.garpMasterRefreshMs > 0) {
        this.garpRefreshTimer = this.deps.clock.setTimer(this.onGarpRefreshBound, this.config.garpMasterRefreshMs);
      }
      this.armTimer(this.config.advertIntMs);
      return;
    }
    if (previous.state === 'BACKUP' && healthy) {
      previous.detach();
      this.state = 'BACKUP';
      this.wantState = 'BACKUP';
      this.masterAdverIntMs = this.config.version === 3 && previous.config.version === 3 ? previous.masterAdverIntMs : this.config.advertIntMs;
      this.armTimer(this.masterDownMs());
      return;
    }
    // Anything else starts afresh (a master that now has a fault says goodbye first).
    previous.releaseForReload();
    this.notifiesSent = false;
    this.state = 'INIT';
    this.start();
  }

  // ---- shutdown ----

  /** keepalived vrrp_shutdown: a master sends priority 0 and drops its VIPs; notify_stop runs. */
  stop(): void {
    if (this.state === 'STOP') return;
    this.clearTimer();
    if (this.state === 'MASTER') {
      // RFC 3768 §6.4.3: "If a Shutdown event is received, then: Cancel the Adver_Timer; Send an
      // ADVERTISEMENT with Priority = 0; Transition to the Initialize state".
      this.sendAdvert(PRIORITY_STOP);
      this.deps.logger.info(`(${this.name}) sent 0 priority`);
      this.releaseVips();
      this.stats.releasedMaster++;
    }
    this.clearGarpTimers();
    this.setState('STOP');
  }
}
