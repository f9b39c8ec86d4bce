// The glue between the VRRP thread (src/vrrp: VrrpHost) and the rest of uvsd, for a daemon started
// with -f keepalived.conf:
//
//   keepalived.conf ──(every load, Daemon.onConfig)──▶ vrrpFromKeepalived ──▶ VrrpHost start / reload
//   VrrpHost state changes ──▶ which VIPs this director is MASTER for ──▶ DataPlane.apply()
//                          ──▶ smtp_alert mails (keepalived's texts, one per new state)
//   VrrpHost notify requests ──▶ notify_master/backup/fault/stop/notify scripts (src/notify)
//   vrrp_script (track_script) ──▶ run here on their interval, rise/fall ──▶ VrrpHost.setScriptResult
//   SIGTERM (Daemon.onStop) ──▶ VrrpHost.stop(): priority-0 adverts, VIPs removed, notify_stop
//   interface watch (ip monitor) ──▶ an interface's new primary address ──▶ VrrpHost.setPrimaryAddress
//
// As keepalived's backup keeps its IPVS rules, the service table is the same on every director;
// what VRRP decides is only whether the data plane forwards a VIP's services (DataPlaneOptions
// .serviceActive): a VIP that no vrrp_instance manages is always served, a managed one only while
// its instance is MASTER.

import { execFileSync } from 'node:child_process';
import { inetAton } from '../config/ipvsadm-addr';
import type { KeepalivedConfig, NotifyScripts, ConfigScript, VrrpScript } from '../config/keepalived/model';
import type { ScriptSpec } from '../notify/script';
import { ScriptRunner } from '../notify/script';
import type { PreparedScript } from '../notify/script';
import { SmtpAlerter, alertForVrrp } from '../notify/smtp';
import { VrrpHost } from '../vrrp/host';
import { vrrpFromKeepalived } from '../vrrp/from-keepalived';
import type { InterfaceFacts } from '../vrrp/from-keepalived';
import { validateRuntimeConfig } from '../vrrp/config';
import type { VrrpInstanceConfig, VrrpRuntimeConfig } from '../vrrp/config';
import type { VrrpIoSpec } from '../vrrp/protocol';
import type { VrrpState, VrrpStats } from '../vrrp/types';
import type { LoadedConfig } from './config-loader';
import type { DaemonHost } from './host';
import { prefixed, type Logger } from '../runtime/log';
import { parseIpAddrJson, type InterfaceInfo } from '../dataplane/netinfo';
import { LinkWatcher } from '../dataplane/link-watch';

/** Bound on a notify script's run time (keepalived does not wait for them; we bound them). */
const NOTIFY_TIMEOUT_MS = 10_000;
/** How long shutdown waits for the VRRP thread: uvsd's hard exit deadline is 3 s. */
const STOP_TIMEOUT_MS = 2000;
/** How long shutdown waits for notify_stop scripts to have started and mails to have gone. */
const STOP_NOTIFY_WAIT_MS = 500;

export interface VrrpGlueOptions {
  log: Logger;
  /** The worker's io module (default: raw sockets, src/vrrp/raw-io). Tests pass a fake. */
  io?: VrrpIoSpec;
  /** Machine facts for vrrpFromKeepalived (default: `ip -j -4 addr`). */
  facts?: () => InterfaceFacts;
  /** Respawn a VRRP thread that dies (default true; keepalived's -R/--dont-respawn turns it off). */
  respawn?: boolean;
  /**
   * Interface changes: `onChange` after each burst of link/address events, until stop(). Default:
   * with the real io, an `ip -o -4 monitor link address` child (src/dataplane/link-watch.ts);
   * with a test's io, none.
   */
  watchInterfaces?: (onChange: () => void) => { stop(): void };
}

/** One vrrp_script: run every `interval`, rise/fall decide when its result changes. */
class TrackScript {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private ok: boolean | undefined;
  private streak = 0;

  constructor(
    readonly def: VrrpScript,
    private readonly prepared: PreparedScript,
    private readonly runner: ScriptRunner,
    private readonly report: (name: string, ok: boolean) => void,
  ) {}

  start(): void {
    // keepalived: init_fail starts the script in the failed state until it succeeds `rise` times.
    if (this.def.initFail) this.set(false);
    this.tick();
    this.timer = setInterval(() => this.tick(), Math.max(0.1, this.def.interval ?? 1) * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private set(ok: boolean): void {
    if (this.ok === ok) return;
    this.ok = ok;
    this.report(this.def.name, ok);
  }

  private tick(): void {
    if (this.running) return; // keepalived does not start a script while its last run goes on
    this.running = true;
    const timeoutMs = Math.max(0.1, this.def.timeout ?? this.def.interval ?? 1) * 1000;
    void this.runner.run(this.prepared, [], timeoutMs).then((outcome) => {
      this.running = false;
      if (this.timer === null) return;
      const success = !outcome.spawnError && !outcome.timedOut && outcome.exitCode === 0;
      if (this.ok === undefined) {
        this.set(success); // the first run decides, as keepalived's first result does
        return;
      }
      if (success === this.ok) {
        this.streak = 0;
        return;
      }
      this.streak++;
      if (this.streak >= Math.max(1, (success ? this.def.rise : this.def.fall) ?? 1)) {
        this.streak = 0;
        this.set(success);
      }
    });
  }
}

/** A configuration turned into what the glue runs. */
interface Prepared {
  /** Replaced (with its primary addresses) when an interface's primary address changes. */
  config: VrrpRuntimeConfig;
  model: KeepalivedConfig;
  /** Instances that send from their interface's primary address (no unicast_src_ip or
   *  mcast_src_ip): they follow it when it changes. */
  followPrimary: Set<string>;
  /** Every VIP (network order number) some instance manages. */
  managed: Set<number>;
  notifyScripts: Map<string, PreparedScript>;
  trackScripts: TrackScript[];
  runner: ScriptRunner;
  smtp: SmtpAlerter | undefined;
  /** Instances and groups whose transitions are mailed. */
  mailInstances: Set<string>;
  mailGroups: Set<string>;
}

/** One instance as `uvsadm --vrrp`, the dump files and the metrics show it (keepalived's
 *  vrrp_print / vrrp_json sections): its configuration, its state and the thread's counters. */
export interface VrrpInstanceReport {
  config: VrrpInstanceConfig;
  state: VrrpState;
  /** Priority advertised now (after track_interface / track_script weights). */
  effectivePriority: number;
  /** Wall-clock ms of the last state change reported; null before the first. */
  lastTransition: number | null;
  /** Transitions into each state since start. */
  transitions: Record<string, number>;
  /** The VRRP thread's counters; null when it did not answer (stopped, or busy past the deadline). */
  stats: VrrpStats | null;
}

export class VrrpGlue {
  private host: VrrpHost | null = null;
  private watcher: { stop(): void } | null = null;
  private current: Prepared | null = null;
  /** Prepared for a file the daemon is still loading (see adopt). */
  private loading: { loaded: LoadedConfig; next: Prepared } | null = null;
  /** The VIPs of the instances last reported MASTER. */
  private masterVips = new Set<number>();
  /** Start, reloads and stop run one after the other. */
  private chain: Promise<void> = Promise.resolve();
  private started = false;
  private stopped = false;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly lastMailed = new Map<string, VrrpState>();
  private readonly states = new Map<string, VrrpState>();
  private readonly stateListeners: ((instance: string, state: VrrpState) => void)[] = [];
  private readonly transitions = new Map<string, { at: number; into: Record<string, number> }>();

  constructor(private readonly daemon: DaemonHost, private readonly options: VrrpGlueOptions) {
    daemon.onConfig((loaded) => this.prepare(loaded));
  }

  /** DataPlaneOptions.serviceActive: may this director forward the services of `addr`? */
  serviceActive(addr: number): boolean {
    if (this.current === null || !this.current.managed.has(addr >>> 0)) return true;
    return this.masterVips.has(addr >>> 0);
  }

  /** The running VRRP thread (null without vrrp_instance, or before start). */
  get vrrp(): VrrpHost | null {
    return this.host;
  }

  /** Last reported state of each instance. */
  instanceStates(): ReadonlyMap<string, VrrpState> {
    return this.states;
  }

  /** Hears of every instance's state change (connection sync follows its instance's state). */
  onInstanceState(listener: (instance: string, state: VrrpState) => void): void {
    this.stateListeners.push(listener);
  }

  /** Every configured instance, in configuration order, with the VRRP thread's counters (asked
   *  for now; an instance of a thread that does not answer within 1 s has stats null). */
  async report(): Promise<VrrpInstanceReport[]> {
    const config = this.current?.config;
    if (!config) return [];
    let stats: Awaited<ReturnType<VrrpHost['stats']>> | null = null;
    if (this.host) {
      try {
        stats = await this.host.stats(1000);
      } catch {
        stats = null;
      }
    }
    return config.instances.map((c) => {
      const s = stats?.instances[c.name];
      const t = this.transitions.get(c.name);
      let counters: VrrpStats | null = null;
      if (s) {
        const { state: _state, priority: _priority, ...rest } = s;
        counters = rest;
      }
      return {
        config: c,
        state: (s?.state as VrrpState | undefined) ?? this.states.get(c.name) ?? 'INIT',
        effectivePriority: s?.priority ?? c.priority,
        lastTransition: t?.at ?? null,
        transitions: { ...(t?.into ?? {}) },
        stats: counters,
      };
    });
  }

  /**
   * Starts the VRRP thread for the configuration loaded so far; called once the data plane runs,
   * so the stop hook registered here runs before the data plane's (hooks run newest first): the
   * priority-0 adverts go out first, and the backup takes over while this one still cleans up.
   */
  start(): Promise<void> {
    if (this.started) return this.chain;
    this.started = true;
    this.daemon.onStop('vrrp', () => this.stop());
    const watch = this.options.watchInterfaces ?? (this.options.io ? null : (onChange: () => void) => {
      const w = new LinkWatcher(onChange, this.options.log);
      w.start();
      return w;
    });
    this.watcher = watch?.(() => this.followPrimaryAddresses()) ?? null;
    // Unlike a reload (logged, the running instances kept), a failed first start is the caller's:
    // uvsd exits rather than run a director that never takes part in the election.
    const first = this.chain.then(() => this.apply(this.current));
    this.chain = first.catch(() => undefined);
    return first;
  }

  // ---- (re)load -----------------------------------------------------------------------------

  /** Daemon.onConfig: maps the VRRP part of the file and checks it as the VRRP thread will
   *  (throwing, so the load fails with nothing changed, when it is wrong); commit() runs it. */
  private prepare(loaded: LoadedConfig): void {
    const model = loaded.keepalived;
    const mapping = vrrpFromKeepalived(model, (this.options.facts ?? (() => ipFacts(model)))());
    try {
      validateRuntimeConfig(mapping.config);
    } catch (err) {
      throw new Error(located(loaded, (err as Error).message), { cause: err });
    }
    for (const w of mapping.warnings) this.options.log.info(w);
    const runner = new ScriptRunner({
      ...(model.global.scriptUser ? { scriptUser: { user: model.global.scriptUser.user, group: model.global.scriptUser.group } } : {}),
      enableScriptSecurity: model.global.enableScriptSecurity,
    });
    const next: Prepared = {
      config: mapping.config,
      model,
      followPrimary: new Set(model.vrrpInstances.filter((i) => !i.unicastSrcIp && !i.mcastSrcIp).map((i) => i.name)),
      managed: managedAddresses(mapping.config),
      notifyScripts: this.prepareNotifies(model, runner),
      trackScripts: [],
      runner,
      smtp: undefined,
      mailInstances: new Set(),
      mailGroups: new Set(),
    };
    for (const name of mapping.trackedScripts) {
      const def = model.vrrpScripts.find((s) => s.name === name);
      if (!def?.script) {
        this.options.log.error(`vrrp_script ${name} has no script - instances tracking it wait for a result that never comes`);
        continue;
      }
      try {
        const prepared = runner.prepare(specOf(def.script, def.user, def.group));
        next.trackScripts.push(new TrackScript(def, prepared, runner, (n, ok) => this.scriptResult(n, ok)));
      } catch (err) {
        this.options.log.error(`vrrp_script ${name}: ${(err as Error).message}`);
      }
    }
    this.prepareMail(model, next);
    // A file prepared and never committed (the daemon refused it after this listener): dropped.
    this.loading?.next.smtp?.close();
    this.loading = { loaded, next };
  }

  /**
   * Runs the file last prepared (the daemon calls this once every other subsystem has accepted
   * it, BEFORE it commits the table): before start it only becomes the file start() runs; later
   * the VRRP thread reloads it. Rejects, with the running instances, scripts and mail settings
   * untouched, when the thread refuses it; the message names the file:line it concerns.
   */
  async commit(loaded: LoadedConfig): Promise<void> {
    const loading = this.loading;
    if (loading === null || loading.loaded !== loaded) throw new Error(`vrrp: ${loaded.file} was not prepared`);
    this.loading = null;
    if (!this.started) {
      if (this.current?.smtp !== loading.next.smtp) this.current?.smtp?.close();
      this.current = loading.next;
      return;
    }
    const previous = this.current;
    const next = loading.next;
    const run = this.chain.then(() => this.apply(next, previous));
    this.chain = run.catch(() => undefined);
    try {
      await run;
    } catch (err) {
      next.smtp?.close();
      throw new Error(located(loaded, (err as Error).message), { cause: err });
    }
  }

  /** notify_* scripts prepared (split, security-checked) once per load, keyed by the command
   *  string the VRRP thread sends back. */
  private prepareNotifies(model: KeepalivedConfig, runner: ScriptRunner): Map<string, PreparedScript> {
    const out = new Map<string, PreparedScript>();
    const add = (n: NotifyScripts): void => {
      for (const spec of [n.master, n.backup, n.fault, n.stop, n.any]) {
        if (spec === undefined || out.has(spec.command)) continue;
        try {
          const prepared = runner.prepare(specOf(spec));
          for (const w of prepared.warnings) this.options.log.info(w);
          out.set(spec.command, prepared);
        } catch (err) {
          this.options.log.error(`vrrp notify: ${(err as Error).message}`);
        }
      }
    };
    for (const inst of model.vrrpInstances) add(inst.notify);
    for (const group of model.vrrpSyncGroups) add(group.notify);
    return out;
  }

  /** smtp_alert: keepalived mails an instance's transitions unless its sync group mails them. */
  private prepareMail(model: KeepalivedConfig, next: Prepared): void {
    const g = model.global;
    if (!g.smtpServer || g.notificationEmail.length === 0) return;
    const dflt = g.smtpAlertVrrp ?? g.smtpAlert ?? false;
    for (const group of model.vrrpSyncGroups) if (group.smtpAlert ?? dflt) next.mailGroups.add(group.name);
    for (const inst of model.vrrpInstances) {
      const group = model.vrrpSyncGroups.find((sg) => sg.group.some((m) => m.name === inst.name));
      if ((inst.smtpAlert ?? dflt) && !(group && next.mailGroups.has(group.name))) next.mailInstances.add(inst.name);
    }
    if (next.mailGroups.size + next.mailInstances.size === 0) return;
    next.smtp = new SmtpAlerter({
      smtpServer: { host: g.smtpServer.host, port: g.smtpServer.port },
      notificationEmail: g.notificationEmail,
      ...(g.notificationEmailFrom !== undefined ? { notificationEmailFrom: g.notificationEmailFrom } : {}),
      ...(g.smtpHeloName !== undefined ? { smtpHeloName: g.smtpHeloName } : {}),
      ...(g.smtpConnectTimeout !== undefined ? { smtpConnectTimeout: g.smtpConnectTimeout } : {}),
      ...(g.routerId !== undefined ? { routerId: g.routerId } : {}),
    });
  }

  /** Brings the VRRP thread to `next`: started, reloaded by diff, or stopped when it has no
   *  instance left. `next` becomes the current file only once the thread has taken it; until
   *  then (and when it refuses) `previous` runs on, with its track scripts and mail settings. */
  private async apply(next: Prepared | null, previous: Prepared | null = null): Promise<void> {
    if (this.stopped) return;
    const retire = (): void => {
      this.current = next;
      for (const t of previous?.trackScripts ?? []) t.stop();
      if (previous?.smtp && previous.smtp !== next?.smtp) previous.smtp.close();
    };
    if (next === null || next.config.instances.length === 0) {
      retire();
      if (this.host) {
        // keepalived on a reload without instances: they stop (priority 0, VIPs removed).
        await this.host.stop(STOP_TIMEOUT_MS);
        this.host = null;
        this.states.clear();
      }
      this.refreshForwarding(true);
      return;
    }
    if (this.host === null) {
      this.host = await VrrpHost.start({
        config: next.config,
        io: this.options.io ?? { module: require.resolve('../vrrp/raw-io') },
        notifier: { run: (script, args) => this.notify(script, args) },
        logger: prefixed(this.options.log, 'Keepalived_vrrp: '),
        onState: (instance, state) => this.instanceState(instance, state),
        onGroupState: (group, state) => this.groupState(group, state),
        respawn: this.options.respawn ?? true,
      });
      retire();
      this.options.log.info(`vrrp: ${next.config.instances.length} instance(s) running: ${next.config.instances.map((i) => i.name).join(', ')}`);
    } else {
      await this.host.reload(next.config);
      retire();
      for (const name of [...this.states.keys()]) {
        if (!next.config.instances.some((i) => i.name === name)) this.states.delete(name);
      }
      this.options.log.info('vrrp: configuration reloaded');
    }
    for (const t of next.trackScripts) t.start();
    // A VIP that left (or joined) VRRP's management changes the data plane's answer too.
    this.refreshForwarding(previous === null || !sameSet(previous.managed, next.managed));
  }

  /**
   * The interfaces changed: an instance that sends from its interface's primary IPv4 address
   * follows a new one at once (keepalived's netlink reflector updates the address it sends from;
   * without this the adverts would keep the old source until a restart). The address is picked
   * as at a load (ipFacts: the first primary one that is not a VIP); an interface left without
   * any keeps the old one. Serialised with the (re)loads.
   */
  private followPrimaryAddresses(): void {
    const run = this.chain.then(() => {
      const cur = this.current;
      const host = this.host;
      if (this.stopped || cur === null || host === null) return;
      const facts = (this.options.facts ?? (() => ipFacts(cur.model)))();
      const moved = new Map<string, string>();
      for (const c of cur.config.instances) {
        if (!cur.followPrimary.has(c.name)) continue;
        const address = facts.primaryAddress(c.interface);
        if (address === null || address === c.primaryAddress) continue;
        host.setPrimaryAddress(c.name, address);
        moved.set(c.name, address);
      }
      if (moved.size === 0) return;
      cur.config = { ...cur.config, instances: cur.config.instances.map((c) => (moved.has(c.name) ? { ...c, primaryAddress: moved.get(c.name)! } : c)) };
    });
    this.chain = run.catch((err: Error) => this.options.log.warn(`vrrp: following the interfaces' addresses: ${err.message}`));
  }

  // ---- from the VRRP thread -------------------------------------------------------------------

  private instanceState(instance: string, state: VrrpState): void {
    if (this.states.get(instance) !== state) {
      const t = this.transitions.get(instance) ?? { at: 0, into: {} };
      t.at = Date.now();
      t.into[state] = (t.into[state] ?? 0) + 1;
      this.transitions.set(instance, t);
    }
    this.states.set(instance, state);
    this.refreshForwarding();
    for (const listener of this.stateListeners) listener(instance, state);
    if (this.current?.mailInstances.has(instance)) this.mail('INSTANCE', instance, state);
  }

  private groupState(group: string, state: VrrpState): void {
    if (this.current?.mailGroups.has(group)) this.mail('GROUP', group, state);
  }

  /** Recomputes the VIPs this director is MASTER for; re-applies the data plane on a change. */
  private refreshForwarding(force = false): void {
    const vips = new Set<number>();
    for (const inst of this.current?.config.instances ?? []) {
      if (this.states.get(inst.name) !== 'MASTER') continue;
      for (const v of [...inst.virtualAddresses, ...inst.excludedAddresses]) {
        const n = inetAton(v.address);
        if (n !== null) vips.add(n >>> 0);
      }
    }
    if (!force && sameSet(vips, this.masterVips)) return;
    this.masterVips = vips;
    this.daemon.reapplyDataPlane();
  }

  private notify(command: string, args: readonly string[]): void {
    const prepared = this.current?.notifyScripts.get(command);
    if (!prepared || !this.current) return; // refused at load (logged then) or from an older file
    const job = this.current.runner.run(prepared, args, NOTIFY_TIMEOUT_MS).then((o) => {
      if (o.spawnError || o.timedOut || o.exitCode !== 0) {
        this.options.log.error(`vrrp notify "${command}${args.length ? ` ${args.join(' ')}` : ''}": ` +
          `${o.spawnError ?? (o.timedOut ? 'timed out' : `exit ${o.exitCode ?? o.signal}`)}`);
      }
    });
    this.track(job);
  }

  /** keepalived mails a state only when it differs from the last one mailed for that name. */
  private mail(kind: 'INSTANCE' | 'GROUP', name: string, state: VrrpState): void {
    const smtp = this.current?.smtp;
    if (!smtp || state === 'INIT') return;
    const key = `${kind} ${name}`;
    if (this.lastMailed.get(key) === state) return;
    this.lastMailed.set(key, state);
    const job = smtp.send(alertForVrrp(smtp.routerId, kind, name, state)).then((o) => {
      if (!o.ok) this.options.log.error(o.message);
    });
    this.track(job);
  }

  private track(job: Promise<unknown>): void {
    this.pending.add(job);
    void job.finally(() => this.pending.delete(job));
  }

  private scriptResult(name: string, ok: boolean): void {
    try {
      this.host?.setScriptResult(name, ok);
    } catch {
      // The thread is stopping: results no longer matter.
    }
  }

  // ---- shutdown -------------------------------------------------------------------------------

  private async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.stop();
    this.watcher = null;
    for (const t of this.current?.trackScripts ?? []) t.stop();
    await this.chain;
    const host = this.host;
    this.host = null;
    if (host) {
      const clean = await host.stop(STOP_TIMEOUT_MS);
      if (!clean) this.options.log.error('vrrp: the VRRP thread did not stop cleanly; its VIPs may be left behind');
    }
    // notify_stop and the STOP mails were queued as the thread stopped: let them get going.
    if (this.pending.size) {
      await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => setTimeout(r, STOP_NOTIFY_WAIT_MS).unref())]);
    }
    this.current?.smtp?.close();
  }
}

/**
 * A VRRP refusal at the file:line of the vrrp_instance it concerns: the one it names, else the
 * one whose source address or interface it names; the file alone when none matches.
 */
function located(loaded: LoadedConfig, message: string): string {
  const has = (word: string | undefined): boolean =>
    word !== undefined && new RegExp(`(^|[^\\w.])${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\w.])`).test(message);
  const insts = loaded.keepalived.vrrpInstances;
  const inst = insts.find((i) => has(i.name)) ??
    insts.find((i) => has(i.unicastSrcIp?.text) || has(i.mcastSrcIp?.text)) ??
    insts.find((i) => has(i.interface));
  if (inst === undefined) return `${loaded.file}: ${message}`;
  return `${inst.loc.file}:${inst.loc.line}: vrrp_instance ${inst.name}: ${message}`;
}

function specOf(spec: ConfigScript, user?: string, group?: string): ScriptSpec {
  const out: ScriptSpec = { command: spec.command, argv: spec.argv };
  const u = spec.user ?? user;
  const g = spec.group ?? group;
  if (u !== undefined) out.user = u;
  if (g !== undefined) out.group = g;
  return out;
}

function managedAddresses(config: VrrpRuntimeConfig): Set<number> {
  const out = new Set<number>();
  for (const inst of config.instances) {
    for (const v of [...inst.virtualAddresses, ...inst.excludedAddresses]) {
      const n = inetAton(v.address);
      if (n !== null) out.add(n >>> 0);
    }
  }
  return out;
}

function sameSet(a: Set<number>, b: Set<number>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/**
 * The machine's interfaces as vrrpFromKeepalived needs them, from one `ip -j -4 addr show`. The
 * primary address skips the configured VIPs: after a crash a VIP may still sit on the interface
 * (the VRRP thread purges it at start) and must not become the source of our adverts.
 */
export function ipFacts(model: KeepalivedConfig, ipCommand = 'ip'): InterfaceFacts {
  let links: InterfaceInfo[] = [];
  try {
    // Synchronous: a (re)load is checked whole, in one turn, before anything changes (bounded: 5 s).
    links = parseIpAddrJson(execFileSync(ipCommand, ['-j', '-4', 'addr', 'show'], { encoding: 'utf8', timeout: 5000 }));
  } catch {
    links = []; // interfaces unknown: from-keepalived asks for unicast_src_ip and says so
  }
  const vips = new Set<string>();
  for (const inst of model.vrrpInstances) {
    for (const v of [...inst.virtualIpaddress, ...inst.virtualIpaddressExcluded]) vips.add(v.address.text);
  }
  return {
    ifindex: (name) => links.find((l) => l.ifname === name)?.ifindex ?? 0,
    primaryAddress: (name) => {
      const addrs = links.find((l) => l.ifname === name)?.addrs ?? [];
      const own = addrs.filter((a) => !vips.has(a.addr));
      return (own.find((a) => !a.secondary) ?? own[0])?.addr ?? null;
    },
  };
}

/** VRRP for a daemon started with -f: attach before the configuration is first read. */
export function attachVrrp(daemon: DaemonHost, log: Logger, options: Omit<VrrpGlueOptions, 'log'> = {}): VrrpGlue {
  return new VrrpGlue(daemon, { ...options, log });
}
