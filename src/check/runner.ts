// The health-check runner: keepalived's checker state machine (check_api.c, ipwrapper.c), one
// loop per checker, per real server, per virtual server. It decides; it does not touch the data
// plane. Its output is a stream of events the daemon applies to the IPVS model and the notifier
// turns into scripts and mails:
//   rs-up / rs-down        a real server became alive / dead (inhibit: keep it listed, weight 0)
//   rs-weight              its effective weight changed (MISC_CHECK misc_dynamic)
//   quorum-gained / -lost  the virtual server's live weight crossed quorum ± hysteresis
//   pool                   the complete set of destinations the virtual server should now have
//   check                  every single check result, with its message trail (for logs)
//
// The rules, as keepalived applies them:
// - A checker runs every delay_loop. When it fails while up, it is retried `retry` times, each
//   after delay_before_retry; only when all retries fail does it go down. A failure while down
//   changes nothing. A success resets the retry count; a success while down brings it up.
// - A real server is alive when none of its checkers is down (num_failed_checkers == 0).
// - alpha: the checker starts down, so the server stays out of the pool until its first success.
//   A first failure under alpha runs notify_down (an rs-down event with initial=true).
// - inhibit_on_failure: a dead server stays in the pool with weight 0 instead of being removed.
// - quorum: weight_sum = sum of the effective weights of live servers. Quorum is lost when it is
//   up and weight_sum is 0 or < quorum - hysteresis, gained when it is down and weight_sum >=
//   quorum + hysteresis. At start, quorum is up iff weight_sum >= quorum + hysteresis.
// - sorry_server: while quorum is lost, the live servers leave the pool and the sorry server is
//   the only destination; when quorum is regained it leaves and the live servers come back.
// - omega: on stop, live servers are reported down (their notify_down runs) and the quorum
//   goes down (quorum_down runs). Without omega, stopping notifies nothing.
// Checks are async with their own timeouts and never overlap for one checker: the next one is
// scheduled when the previous result is in. Timers come from an injectable Clock.
import { EventEmitter } from 'node:events';
import type { Checker, CheckResult, CheckTarget } from './checker';
import { formatEndpoint } from './checker';
import { RealClock, type Clock, type TimerId } from '../runtime/clock';
import type { CheckerContext } from './index';
import { createChecker } from './index';
import type { CheckerKind, CheckerOptions, RealServerOptions, VirtualServerOptions } from './types';
import { CHECK_DEFAULTS, defaultDelayBeforeRetry, defaultRetry } from './types';

export interface RealServerRef {
  vsId: number;
  rsId: number;
  /** keepalived's FMT_RS: "[10.0.0.2]:80". */
  label: string;
}

export interface PoolDest {
  /** The real server's id, or -1 for the sorry server. */
  rsId: number;
  address: string;
  port: number;
  weight: number;
  sorry: boolean;
}

export type CheckEvent =
  | {
      type: 'rs-up';
      vs: VirtualServerOptions;
      rs: RealServerOptions;
      weight: number;
      /** The checker whose success completed the recovery; null when a reload removed the failing one. */
      checker: CheckerKind | null;
      trail: string[];
    }
  | {
      type: 'rs-down';
      vs: VirtualServerOptions;
      rs: RealServerOptions;
      /** inhibit_on_failure: listed with weight 0 rather than removed. */
      inhibit: boolean;
      checker: CheckerKind | null;
      trail: string[];
      /** First check under alpha failed: the server was never up; only notify_down runs. */
      initial: boolean;
      /** Reported by stop() under omega. */
      stopping: boolean;
    }
  | { type: 'rs-weight'; vs: VirtualServerOptions; rs: RealServerOptions; weight: number; previous: number; alive: boolean }
  | {
      type: 'quorum-gained' | 'quorum-lost';
      vs: VirtualServerOptions;
      weightSum: number;
      threshold: number;
      init: boolean;
      stopping: boolean;
      /** The sorry server was switched in (quorum-lost) or out (quorum-gained). */
      sorrySwitched: boolean;
    }
  | { type: 'pool'; vs: VirtualServerOptions; dests: PoolDest[] }
  | { type: 'check'; vs: VirtualServerOptions; rs: RealServerOptions; checker: CheckerKind; index: number; result: CheckResult };

export interface RunnerOptions {
  clock?: Clock;
  /** Context for building checkers (script runner for MISC_CHECK). */
  checkerContext: Omit<CheckerContext, 'virtualhost' | 'delayLoop'>;
  /** Replaces createChecker, for tests that script check results. */
  makeChecker?: (options: CheckerOptions, ctx: CheckerContext) => Checker;
}

interface CheckerState {
  readonly checker: Checker;
  readonly kind: CheckerKind;
  /** The options as configured (compared on reload to decide whether the checker changed). */
  readonly config: string;
  index: number;
  readonly delayLoopMs: number;
  readonly retry: number;
  readonly delayBeforeRetryMs: number;
  readonly warmupMs: number;
  isUp: boolean;
  hasRun: boolean;
  retryIt: number;
  /** misc_dynamic contribution: requested weight - configured weight. */
  weightDelta: number;
  timer: TimerId | null;
  abort: AbortController | null;
  lastResult: CheckResult | null;
  /** Removed by a reload: its loop ends and its results are ignored. */
  retired: boolean;
}

// Real and virtual server states are mutated in place on reload, so the loops of unchanged
// checkers (whose timers hold these objects) carry on undisturbed.
interface RealServerState {
  opts: RealServerOptions;
  readonly target: CheckTarget;
  configuredWeight: number;
  inhibit: boolean;
  alive: boolean;
  numFailed: number;
  checkers: CheckerState[];
}

interface VirtualServerState {
  opts: VirtualServerOptions;
  quorum: number;
  hysteresis: number;
  quorumUp: boolean;
  sorryActive: boolean;
  servers: RealServerState[];
}

export interface RealServerStatus {
  rsId: number;
  label: string;
  alive: boolean;
  weight: number;
  checkers: Array<{ kind: CheckerKind; up: boolean; retries: number; lastTrail: string[] }>;
}

/** Options as a comparable string (Buffers as hex), to tell a changed checker on reload. */
function configKey(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? `hex:${Buffer.from((v as { data: number[] }).data).toString('hex')}` : v));
}

export class CheckRunner extends EventEmitter<{ event: [CheckEvent] }> {
  private readonly clock: Clock;
  private services: VirtualServerState[] = [];
  private running = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** What checkers are built with; reconfigure may replace it (counted by contextGeneration). */
  private context: RunnerOptions['checkerContext'];
  private contextGeneration = 0;

  constructor(
    virtualServers: readonly VirtualServerOptions[],
    private readonly options: RunnerOptions,
  ) {
    super();
    this.clock = options.clock ?? new RealClock({ unref: true });
    this.context = options.checkerContext;
    for (const vs of virtualServers) this.services.push(this.buildVs(vs));
  }

  private buildChecker(vs: VirtualServerOptions, rs: RealServerOptions, ck: CheckerOptions, index: number, initial: boolean): CheckerState {
    const make = this.options.makeChecker ?? createChecker;
    // Inheritance: checker keyword, else real server's, else virtual server's, else default.
    const delayLoop = ck.delayLoop ?? rs.delayLoop ?? vs.delayLoop ?? CHECK_DEFAULTS.delayLoop;
    const connectTimeout = 'connectTimeout' in ck && ck.connectTimeout !== undefined ? ck.connectTimeout : (rs.connectTimeout ?? vs.connectTimeout);
    const merged = (ck.kind === 'MISC_CHECK' ? ck : { ...ck, connectTimeout }) as CheckerOptions;
    const virtualhost = rs.virtualhost ?? vs.virtualhost;
    let checker: Checker;
    try {
      checker = make(merged, { ...this.context, virtualhost, delayLoop });
    } catch (err) {
      // Say which checker of which server, so the config error can be found.
      throw new Error(
        `${ck.loc ? `${ck.loc}: ` : ''}virtual_server ${formatEndpoint(vs.address, vs.port)} real_server ${formatEndpoint(rs.address, rs.port)} ${ck.kind} #${index + 1}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    // A checker added by a reload to an existing server starts up, so the server is not
    // disturbed; alpha applies at start (keepalived: no instant re-add/removal on reload).
    const alpha = initial && (ck.alpha ?? rs.alpha ?? vs.alpha ?? false);
    const warmup = ck.warmup ?? rs.warmup ?? vs.warmup ?? delayLoop;
    return {
      checker,
      kind: ck.kind,
      // A MISC_CHECK's script was prepared with the script runner (script_user, security): a new
      // one rebuilds it, so a reload's script settings apply to running checkers too.
      config: configKey([{ ...merged, loc: undefined }, virtualhost, delayLoop, rs.retry, rs.delayBeforeRetry, vs.retry, vs.delayBeforeRetry,
        ck.kind === 'MISC_CHECK' ? this.contextGeneration : 0]),
      index,
      delayLoopMs: delayLoop * 1000,
      retry: ck.retry ?? rs.retry ?? vs.retry ?? defaultRetry(ck.kind),
      delayBeforeRetryMs: (ck.delayBeforeRetry ?? rs.delayBeforeRetry ?? vs.delayBeforeRetry ?? defaultDelayBeforeRetry(ck.kind, delayLoop)) * 1000,
      warmupMs: warmup * 1000,
      isUp: !alpha,
      hasRun: false,
      retryIt: 0,
      weightDelta: 0,
      timer: null,
      abort: null,
      lastResult: null,
      retired: false,
    };
  }

  private buildRs(vs: VirtualServerOptions, rs: RealServerOptions): RealServerState {
    const state: RealServerState = {
      opts: rs,
      target: { address: rs.address, port: rs.port },
      configuredWeight: rs.weight ?? CHECK_DEFAULTS.weight,
      inhibit: rs.inhibitOnFailure ?? vs.inhibitOnFailure ?? false,
      alive: false,
      numFailed: 0,
      checkers: rs.checkers.map((ck, index) => this.buildChecker(vs, rs, ck, index, true)),
    };
    state.numFailed = state.checkers.filter((c) => !c.isUp).length;
    // init_service_rs: a server with no failed checker (no alpha) starts alive, in the pool.
    state.alive = state.numFailed === 0;
    return state;
  }

  private buildVs(vs: VirtualServerOptions): VirtualServerState {
    const state: VirtualServerState = {
      opts: vs,
      quorum: vs.quorum ?? CHECK_DEFAULTS.quorum,
      hysteresis: vs.hysteresis ?? CHECK_DEFAULTS.hysteresis,
      quorumUp: false,
      sorryActive: false,
      servers: vs.realServers.map((rs) => this.buildRs(vs, rs)),
    };
    // set_quorum_states: quorum starts up iff weight_sum >= quorum + hysteresis.
    state.quorumUp = this.weightSum(state) >= state.quorum + state.hysteresis;
    return state;
  }

  private retireChecker(ck: CheckerState): void {
    ck.retired = true;
    if (ck.timer !== null) this.clock.clearTimer(ck.timer);
    ck.timer = null;
    ck.abort?.abort(new Error('checker removed by reload'));
  }

  /**
   * Applies a new configuration without disturbing what did not change (SIGHUP reload): a
   * virtual server is matched by id and address:port, a real server by id and address:port, a
   * checker by position and identical options. Matched checkers keep their state, timers and
   * retry counts; matched servers keep alive/dead; a changed weight applies at once (rs-weight,
   * pool); removed servers and checkers stop; new ones start as at start-up. Quorum is then
   * re-evaluated as keepalived does on reload, and a pool event is emitted only for virtual
   * servers whose pool changed (or that were added or removed).
   */
  reconfigure(virtualServers: readonly VirtualServerOptions[], checkerContext?: RunnerOptions['checkerContext']): void {
    if (checkerContext === undefined || checkerContext === this.context) {
      this.reconfigureWith(virtualServers);
      return;
    }
    // A new context (script settings changed): its checkers are built with it, and on failure
    // the old one stays, with everything else.
    const [context, generation] = [this.context, this.contextGeneration];
    this.context = checkerContext;
    this.contextGeneration++;
    try {
      this.reconfigureWith(virtualServers);
    } catch (err) {
      [this.context, this.contextGeneration] = [context, generation];
      throw err;
    }
  }

  private reconfigureWith(virtualServers: readonly VirtualServerOptions[]): void {
    // Build everything new first, so a bad checker (e.g. a refused script) throws before any
    // running state is touched and the old configuration keeps running.
    const previous = new Map(this.services.map((v) => [v.opts.id, v]));
    const plans: Array<{ opts: VirtualServerOptions; prev: VirtualServerState | undefined; fresh: VirtualServerState | null; rsPlans: Array<{ opts: RealServerOptions; prev: RealServerState | undefined; fresh: RealServerState | null; checkers: Array<CheckerState | null> }> }> = [];
    for (const opts of virtualServers) {
      const old = previous.get(opts.id);
      const prev = old && old.opts.address === opts.address && old.opts.port === opts.port ? old : undefined;
      if (!prev) {
        plans.push({ opts, prev: undefined, fresh: this.buildVs(opts), rsPlans: [] });
        continue;
      }
      const rsPlans = opts.realServers.map((rsOpts) => {
        const prevRs = prev.servers.find((r) => r.opts.id === rsOpts.id && r.opts.address === rsOpts.address && r.opts.port === rsOpts.port);
        if (!prevRs) return { opts: rsOpts, prev: undefined, fresh: this.buildRs(opts, rsOpts), checkers: [] };
        const checkers = rsOpts.checkers.map((ck, index) => {
          const candidate = this.buildChecker(opts, rsOpts, ck, index, false);
          const same = prevRs.checkers[index];
          return same && same.config === candidate.config ? null : candidate; // null: keep the old one
        });
        return { opts: rsOpts, prev: prevRs, fresh: null, checkers };
      });
      plans.push({ opts, prev, fresh: null, rsPlans });
    }

    const kept = new Set<VirtualServerState>();
    const next: VirtualServerState[] = [];
    for (const plan of plans) {
      if (plan.fresh) {
        next.push(plan.fresh);
        if (this.running) this.startVs(plan.fresh);
        continue;
      }
      const vs = plan.prev!;
      kept.add(vs);
      const poolBefore = configKey(this.computePool(vs));
      vs.opts = plan.opts;
      vs.quorum = plan.opts.quorum ?? CHECK_DEFAULTS.quorum;
      vs.hysteresis = plan.opts.hysteresis ?? CHECK_DEFAULTS.hysteresis;
      if (!plan.opts.sorryServer) vs.sorryActive = false;
      const servers: RealServerState[] = [];
      const keptRs = new Set<RealServerState>();
      for (const rp of plan.rsPlans) {
        if (rp.fresh) {
          servers.push(rp.fresh);
          if (this.running) for (const ck of rp.fresh.checkers) this.schedule(vs, rp.fresh, ck, this.warmupDelay(ck));
          continue;
        }
        const rs = rp.prev!;
        keptRs.add(rs);
        const weightBefore = this.effectiveWeight(rs);
        rs.opts = rp.opts;
        rs.configuredWeight = rp.opts.weight ?? CHECK_DEFAULTS.weight;
        rs.inhibit = rp.opts.inhibitOnFailure ?? plan.opts.inhibitOnFailure ?? false;
        const checkers: CheckerState[] = [];
        rp.checkers.forEach((fresh, index) => {
          const old = rs.checkers[index]!;
          if (fresh === null) {
            checkers.push(old);
            return;
          }
          if (old) this.retireChecker(old);
          checkers.push(fresh);
          if (this.running) this.schedule(vs, rs, fresh, this.warmupDelay(fresh));
        });
        for (const old of rs.checkers.slice(rp.checkers.length)) this.retireChecker(old);
        rs.checkers = checkers;
        rs.numFailed = checkers.filter((c) => !c.isUp).length;
        const weightAfter = this.effectiveWeight(rs);
        if (weightAfter !== weightBefore)
          this.emitEvent({ type: 'rs-weight', vs: vs.opts, rs: rs.opts, weight: weightAfter, previous: weightBefore, alive: rs.alive });
        // A removed checker may have been the only failing one: the server comes back.
        if (!rs.alive && rs.numFailed === 0) {
          rs.alive = true;
          this.emitEvent({ type: 'rs-up', vs: vs.opts, rs: rs.opts, weight: weightAfter, checker: null, trail: ['failing checker removed by reload'] });
        }
        servers.push(rs);
      }
      for (const rs of vs.servers) if (!keptRs.has(rs)) for (const ck of rs.checkers) this.retireChecker(ck);
      vs.servers = servers;
      this.updateQuorum(vs, true);
      if (configKey(this.computePool(vs)) !== poolBefore) this.emitPool(vs);
      next.push(vs);
    }
    for (const old of this.services) {
      if (kept.has(old)) continue;
      for (const rs of old.servers) for (const ck of rs.checkers) this.retireChecker(ck);
      this.emitEvent({ type: 'pool', vs: old.opts, dests: [] });
    }
    this.services = next;
  }

  private warmupDelay(ck: CheckerState): number {
    return ck.warmupMs > 0 ? Math.floor(this.clock.random() * ck.warmupMs) : 0;
  }

  private startVs(vs: VirtualServerState): void {
    this.updateQuorum(vs, true);
    this.emitPool(vs);
    for (const rs of vs.servers) for (const ck of rs.checkers) this.schedule(vs, rs, ck, this.warmupDelay(ck));
  }

  /** Starts every checker loop and publishes the initial pool of each virtual server. */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const vs of this.services) this.startVs(vs);
  }

  /**
   * Stops every loop, aborts checks in flight and waits for them, then applies keepalived's
   * shutdown: every virtual server's pool is emptied, and under omega the live servers are
   * reported down and quorum lost (so notify_down and quorum_down run).
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const vs of this.services)
      for (const rs of vs.servers)
        for (const ck of rs.checkers) {
          if (ck.timer !== null) this.clock.clearTimer(ck.timer);
          ck.timer = null;
          ck.abort?.abort(new Error('runner stopping'));
        }
    await Promise.allSettled([...this.inFlight]);
    for (const vs of this.services) {
      const omega = vs.opts.omega ?? false;
      for (const rs of vs.servers) {
        if (!rs.alive) continue;
        rs.alive = false;
        if (omega) this.emitEvent({ type: 'rs-down', vs: vs.opts, rs: rs.opts, inhibit: false, checker: null, trail: ['shutting down'], initial: false, stopping: true });
      }
      const threshold = vs.quorum - vs.hysteresis;
      vs.quorumUp = false;
      vs.sorryActive = false;
      if (omega)
        this.emitEvent({ type: 'quorum-lost', vs: vs.opts, weightSum: 0, threshold, init: false, stopping: true, sorrySwitched: false });
      this.emitEvent({ type: 'pool', vs: vs.opts, dests: [] });
    }
  }

  /** The current view, for status output (uvsadm, logs). */
  status(): Array<{ vsId: number; label: string; quorumUp: boolean; sorryActive: boolean; servers: RealServerStatus[] }> {
    return this.services.map((vs) => ({
      vsId: vs.opts.id,
      label: formatEndpoint(vs.opts.address, vs.opts.port),
      quorumUp: vs.quorumUp,
      sorryActive: vs.sorryActive,
      servers: vs.servers.map((rs) => ({
        rsId: rs.opts.id,
        label: formatEndpoint(rs.opts.address, rs.opts.port),
        alive: rs.alive,
        weight: this.effectiveWeight(rs),
        checkers: rs.checkers.map((ck) => ({ kind: ck.kind, up: ck.isUp, retries: ck.retryIt, lastTrail: ck.lastResult?.trail ?? [] })),
      })),
    }));
  }

  /** The destinations virtual server `vsId` should have now. */
  pool(vsId: number): PoolDest[] {
    const vs = this.services.find((v) => v.opts.id === vsId);
    if (!vs) throw new Error(`CheckRunner.pool: no virtual server with id ${vsId}`);
    return this.computePool(vs);
  }

  // ---- the loop -------------------------------------------------------------------------------

  private schedule(vs: VirtualServerState, rs: RealServerState, ck: CheckerState, delayMs: number): void {
    if (!this.running || ck.retired) return;
    ck.timer = this.clock.setTimer(() => {
      ck.timer = null;
      const p = this.runOnce(vs, rs, ck);
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    }, delayMs);
  }

  private async runOnce(vs: VirtualServerState, rs: RealServerState, ck: CheckerState): Promise<void> {
    if (!this.running || ck.retired) return;
    ck.abort = new AbortController();
    let result: CheckResult;
    try {
      result = await ck.checker.check(rs.target, ck.abort.signal);
    } catch (err) {
      // Checkers do not throw; if one does, it is a failed check, not a dead runner.
      result = { ok: false, trail: [`checker threw: ${(err as Error).message}`], elapsedMs: 0 };
    }
    ck.abort = null;
    if (!this.running || ck.retired) return;
    ck.lastResult = result;
    this.emitEvent({ type: 'check', vs: vs.opts, rs: rs.opts, checker: ck.kind, index: ck.index, result });
    this.schedule(vs, rs, ck, this.apply(vs, rs, ck, result));
  }

  /** Applies one result to the state machine; returns the delay before the next check. */
  private apply(vs: VirtualServerState, rs: RealServerState, ck: CheckerState, result: CheckResult): number {
    if (result.ok) {
      ck.retryIt = 0;
      if (result.dynamicWeight !== undefined) this.setDynamicWeight(vs, rs, ck, result.dynamicWeight);
      this.updateCheckerState(vs, rs, ck, true, result);
      return ck.delayLoopMs;
    }
    if (ck.isUp && ck.retryIt < ck.retry) {
      ck.retryIt++;
      return ck.delayBeforeRetryMs;
    }
    ck.retryIt = 0;
    this.updateCheckerState(vs, rs, ck, false, result);
    return ck.delayLoopMs;
  }

  /** keepalived's update_svr_checker_state + set_checker_state. */
  private updateCheckerState(vs: VirtualServerState, rs: RealServerState, ck: CheckerState, up: boolean, result: CheckResult): void {
    if (ck.isUp === up) {
      if (!ck.hasRun && !up)
        // First check under alpha failed: the server never came up, but notify_down runs.
        this.emitEvent({ type: 'rs-down', vs: vs.opts, rs: rs.opts, inhibit: rs.inhibit, checker: ck.kind, trail: result.trail, initial: true, stopping: false });
      ck.hasRun = true;
      return;
    }
    ck.hasRun = true;
    if (up ? rs.numFailed <= 1 : rs.numFailed === 0) this.setServerAlive(vs, rs, up, ck, result);
    ck.isUp = up;
    if (!up) rs.numFailed++;
    else if (rs.numFailed > 0) rs.numFailed--;
  }

  /** keepalived's perform_svr_state: the server's own transition, then quorum, then the pool. */
  private setServerAlive(vs: VirtualServerState, rs: RealServerState, alive: boolean, ck: CheckerState, result: CheckResult): void {
    if (rs.alive === alive) return;
    rs.alive = alive;
    if (alive)
      this.emitEvent({ type: 'rs-up', vs: vs.opts, rs: rs.opts, weight: this.effectiveWeight(rs), checker: ck.kind, trail: result.trail });
    else
      this.emitEvent({ type: 'rs-down', vs: vs.opts, rs: rs.opts, inhibit: rs.inhibit, checker: ck.kind, trail: result.trail, initial: false, stopping: false });
    this.updateQuorum(vs, false);
    this.emitPool(vs);
  }

  /** MISC_CHECK misc_dynamic: keepalived's update_svr_wgt with the checker's contribution. */
  private setDynamicWeight(vs: VirtualServerState, rs: RealServerState, ck: CheckerState, requested: number): void {
    const delta = requested - rs.configuredWeight;
    if (delta === ck.weightDelta) return;
    const previous = this.effectiveWeight(rs);
    ck.weightDelta = delta;
    const weight = this.effectiveWeight(rs);
    if (weight === previous) return;
    this.emitEvent({ type: 'rs-weight', vs: vs.opts, rs: rs.opts, weight, previous, alive: rs.alive });
    this.updateQuorum(vs, false);
    if (rs.alive) this.emitPool(vs);
  }

  // ---- quorum and pool ------------------------------------------------------------------------

  private effectiveWeight(rs: RealServerState): number {
    let w = rs.configuredWeight;
    for (const ck of rs.checkers) w += ck.weightDelta;
    return Math.max(0, Math.min(CHECK_DEFAULTS.weightMax, w));
  }

  private weightSum(vs: VirtualServerState): number {
    let sum = 0;
    for (const rs of vs.servers) if (rs.alive) sum += this.effectiveWeight(rs);
    return sum;
  }

  /** keepalived's update_quorum_state. */
  private updateQuorum(vs: VirtualServerState, init: boolean): void {
    const sum = this.weightSum(vs);
    const threshold = vs.quorum + (vs.quorumUp ? -1 : 1) * vs.hysteresis;
    const hasSorry = vs.opts.sorryServer !== undefined;
    if (!vs.quorumUp && sum >= threshold) {
      vs.quorumUp = true;
      const sorrySwitched = vs.sorryActive;
      vs.sorryActive = false;
      this.emitEvent({ type: 'quorum-gained', vs: vs.opts, weightSum: sum, threshold, init, stopping: false, sorrySwitched });
    } else if ((vs.quorumUp && (sum === 0 || sum < threshold)) || (init && !vs.quorumUp && hasSorry && !vs.sorryActive)) {
      vs.quorumUp = false;
      const sorrySwitched = hasSorry && !vs.sorryActive;
      if (hasSorry) vs.sorryActive = true;
      this.emitEvent({ type: 'quorum-lost', vs: vs.opts, weightSum: sum, threshold, init, stopping: false, sorrySwitched });
    }
  }

  private computePool(vs: VirtualServerState): PoolDest[] {
    const dests: PoolDest[] = [];
    for (const rs of vs.servers) {
      const base = { rsId: rs.opts.id, address: rs.opts.address, port: rs.opts.port, sorry: false };
      // While the sorry server stands in, live servers are out (or at weight 0 when inhibited).
      if (rs.alive && !vs.sorryActive) dests.push({ ...base, weight: this.effectiveWeight(rs) });
      else if (rs.inhibit) dests.push({ ...base, weight: 0 });
    }
    const sorry = vs.opts.sorryServer;
    if (sorry && (vs.sorryActive || sorry.inhibit))
      dests.push({ rsId: -1, address: sorry.address, port: sorry.port, weight: vs.sorryActive ? CHECK_DEFAULTS.weight : 0, sorry: true });
    return dests;
  }

  private emitPool(vs: VirtualServerState): void {
    this.emitEvent({ type: 'pool', vs: vs.opts, dests: this.computePool(vs) });
  }

  private emitEvent(e: CheckEvent): void {
    // A throwing listener must not break the state machine mid-transition.
    try {
      this.emit('event', e);
    } catch (err) {
      process.emitWarning(`CheckRunner listener threw on ${e.type}: ${(err as Error).message}`);
    }
  }
}
