// The daemon side of uvsadm: applies a parsed command to the service model and answers with data.
// No sockets here, so the whole command set is testable in-process.

import type { IpvsadmCommand } from '../config/ipvsadm-args';
import { NO_CONNECTIONS } from '../service/conn-list';
import type { ConnLister, ConnRecord } from '../service/conn-list';
import { IpvsError, ServiceModel } from '../service/model';
import type { ServiceEntry } from '../service/model';
import { ESTIMATOR_SLICES, StatsBook } from '../service/stats';
import type { DaemonInfo, IpvsFailure, ListedService, Result } from './protocol';
import type { WorkerReport } from '../dataplane/dataplane';
import type { LinkWatchStats } from '../dataplane/link-watch';
import type { FastPathReport } from '../dataplane/fast-path';
import { arrayBatch, type BatchSource } from './batch-codec';
import { SysctlError, type SysctlValue, type Sysctls } from './sysctl';
import { SyncError, type SyncDaemonInfo, type SyncDaemonOptions, type SyncState } from '../sync/daemon';
import type { CheckSnapshot } from '../metrics/snapshot';
import type { VrrpInstanceReport } from './vrrp';

/** The most connection records one `-L -c` returns (the kernel's seq file has no limit; a bound
 *  keeps a huge table from building a huge reply). */
export const CONN_LIST_LIMIT = 1_000_000;
/** listedPieces: a warm-up slice builds entries for this many times a piece's real servers
 *  (building an entry costs about a quarter of encoding it with its statistics). */
const WARM_PER_PIECE = 4;

/** What the handler asks of the daemon around the table: all answer "nothing" without a data plane. */
export interface HandlerHooks {
  /** The connection table for `-L -c`. */
  conns(): ConnLister;
  /** Resolves once the last change is live in the data plane (never rejects); the server awaits
   *  it before answering a command. */
  settle(): Promise<void>;
  /** The data plane's per-worker figures. */
  workers(): WorkerReport[];
  linkWatch?(): LinkWatchStats | null;
  /** The in-kernel fast path's figures; null: off. */
  fastPath?(): FastPathReport | null;
  /** The IPVS knobs (sysctl.ts); absent: a handler without a daemon has none. */
  sysctls?: Sysctls;
  /** The connection-sync daemons (null without a connection table: --io none). */
  sync?(): SyncControl | null;
  /** VRRP's instances (none without vrrp_instance). */
  vrrp?(): Promise<VrrpInstanceReport[]>;
  /** The checkers' view (none without checkers). */
  checks?(): CheckSnapshot[];
}

/** What --start-daemon, --stop-daemon and -L --daemon reach (src/sync/daemon.ts SyncManager). */
export interface SyncControl {
  start(state: SyncState, options: SyncDaemonOptions): SyncDaemonInfo;
  stop(state: SyncState): void;
  list(): SyncDaemonInfo[];
}

const NO_HOOKS: HandlerHooks = { conns: () => NO_CONNECTIONS, settle: () => Promise.resolve(), workers: () => [] };

export class ControlHandler {
  /** Model generation the statistics were last brought up to, and each service's slots then. */
  private trackedGen = 0;
  private readonly trackedSlots = new Map<number, number[]>();

  constructor(
    readonly model: ServiceModel,
    readonly stats: StatsBook,
    readonly info: DaemonInfo,
    private readonly hooks: HandlerHooks = NO_HOOKS,
  ) {
    this.retrack();
    // Changes made outside uvsadm (config loads and reloads) are tracked too.
    model.onChange(() => this.retrack());
  }

  /** Resolves once the last change is live in the data plane (never rejects). */
  settle(): Promise<void> {
    return this.hooks.settle();
  }

  /** The data plane's per-worker figures; none without a data plane. */
  workers(): WorkerReport[] {
    return this.hooks.workers();
  }

  /** The data plane's interface-watch counters; null without a data plane or a watch. */
  linkWatch(): LinkWatchStats | null {
    return this.hooks.linkWatch?.() ?? null;
  }

  /** The in-kernel fast path's figures; null without a data plane or with it off. */
  fastPath(): FastPathReport | null {
    return this.hooks.fastPath?.() ?? null;
  }

  /** `uvsadm --sysctl`: all knobs, one, or one set then shown. A bad name or value throws
   *  SysctlError and changes nothing. */
  sysctl(name?: string, value?: string): SysctlValue[] {
    const s = this.hooks.sysctls;
    if (!s) throw new SysctlError('this uvsd has no IPVS knobs');
    if (name === undefined) return s.list();
    if (value !== undefined) return [s.set(name, value)];
    return [s.show(name)];
  }

  /** VRRP's instances; none without VRRP. */
  vrrp(): Promise<VrrpInstanceReport[]> {
    return this.hooks.vrrp?.() ?? Promise.resolve([]);
  }

  /** The checkers' view; none without checkers. */
  checks(): CheckSnapshot[] {
    return this.hooks.checks?.() ?? [];
  }

  /** A piece of the connection listing (streamed `-L -c`): see ConnLister.chunk. A lister that
   *  cannot list in pieces gives everything at once. */
  connChunk(cursor: number, maxRows: number): { rows: ConnRecord[]; next: number } {
    const lister = this.hooks.conns();
    if (lister.chunk) return lister.chunk(cursor, maxRows);
    return { rows: cursor === 0 ? lister.list(CONN_LIST_LIMIT) : [], next: -1 };
  }

  /** Runs one command; a refused one throws IpvsError and has changed nothing. */
  execute(c: IpvsadmCommand): Result {
    const m = this.model;
    switch (c.cmd) {
      case 'add-service':
      case 'edit-service':
      case 'delete-service':
      case 'flush':
      case 'add-dest':
      case 'edit-dest':
      case 'delete-dest':
      case 'set-timeouts':
        applyMutation(m, c);
        break;
      case 'zero': {
        // Everything: every tracked service and real server, which are the table's (retrack()).
        if (c.service === null) {
          this.stats.zeroAll();
          return { kind: 'ok' };
        }
        const { ids, slots } = m.checkZero(c.service);
        this.stats.zero(ids, slots);
        return { kind: 'ok' };
      }
      case 'list':
        switch (c.what) {
          case 'all': return { kind: 'services', info: this.info, services: this.listed() };
          case 'service': return { kind: 'service', service: this.listedOne(m.get(c.service!, 'get_service')) };
          case 'timeout': return { kind: 'timeouts', timeouts: m.getTimeouts() };
          case 'daemon': return { kind: 'daemons', daemons: this.hooks.sync?.()?.list() ?? [] };
          case 'connections': return { kind: 'connections', connections: this.hooks.conns().list(CONN_LIST_LIMIT) };
        }
        break;
      case 'save': return { kind: 'services', info: this.info, services: this.listed() };
      case 'start-daemon':
      case 'stop-daemon': {
        const op = c.cmd === 'start-daemon' ? 'start_daemon' : 'stop_daemon';
        const sync = this.hooks.sync?.() ?? null;
        // Without a connection table (uvsd --io none) there is nothing to sync.
        if (!sync) throw new IpvsError(op, 'EOPNOTSUPP', 'connection sync needs the data plane (uvsd runs with --io none)');
        try {
          if (c.cmd === 'start-daemon') sync.start(c.state, c.daemon);
          else sync.stop(c.state);
        } catch (err) {
          if (err instanceof SyncError) throw new IpvsError(op, err.errno, err.message);
          throw err;
        }
        return { kind: 'ok' };
      }
      case 'restore':
        throw new IpvsError('flush', 'EINVAL', '-R is sent as a batch of its lines, not as a command');
    }
    return { kind: 'ok' };
  }

  /** -R: every line, all or nothing. The batch is first run on a scratch copy of the table, so a
   *  line the kernel would refuse leaves the live table untouched (ipvsadm itself would have applied
   *  the lines before it; uvs keeps its promise that a failed command changes nothing). */
  executeBatch(commands: BatchSource | readonly IpvsadmCommand[]): { result: Result } | { error: IpvsFailure } {
    const batch = isBatchSource(commands) ? commands : arrayBatch(commands);
    // The batch is tried on a check copy first (same checks, same caps, nothing shared written).
    const scratch = this.model.checkCopy();
    let failure: IpvsFailure | null = null;
    try {
      batch.forEach((c, i) => {
        try {
          applyMutation(scratch, c);
        } catch (err) {
          if (err instanceof IpvsError) failure = { op: err.op, errno: err.errno, detail: err.message, index: i };
          throw err;
        }
      });
    } catch (err) {
      if (failure === null) throw err;
      return { error: failure };
    }
    // One notification for the whole batch: the data plane applies it as one change.
    this.model.batch(() => batch.forEach((c) => this.execute(c)));
    return { result: { kind: 'ok' } };
  }

  /** One estimator period at once. */
  tick(): void {
    this.model.sweepTrash();
    this.stats.tick();
  }

  /** Slice `slice` of ESTIMATOR_SLICES of an estimator period: the daemon runs one every
   *  ESTIMATOR_PERIOD_MS / ESTIMATOR_SLICES, in order (StatsBook.tickSlice), and sweeps the
   *  trash once a period, with the first. */
  tickSlice(slice: number): void {
    if (slice === 0) this.model.sweepTrash();
    this.stats.tickSlice(slice, ESTIMATOR_SLICES);
  }

  /** Statistics follow the table: only the services changed since the last call are looked at
   *  (one `uvsadm -a` on 10,000 services must not walk all of them). */
  private retrack(): void {
    const { generation, ids } = this.model.changedSince(this.trackedGen);
    this.trackedGen = generation;
    const goneSlots: number[] = [];
    const presentSlots: number[] = [];
    const gone: number[] = [];
    const present: number[] = [];
    for (const id of ids) {
      const before = this.trackedSlots.get(id);
      if (before) for (const slot of before) goneSlots.push(slot);
      const slots = this.model.slotsOf(id);
      if (slots === null) {
        gone.push(id);
        this.trackedSlots.delete(id);
        continue;
      }
      present.push(id);
      for (const slot of slots) presentSlots.push(slot);
      this.trackedSlots.set(id, slots);
    }
    // A slot that moved to another service within the window stays tracked.
    const keep = new Set(presentSlots);
    this.stats.trackChanges({ services: gone, slots: goneSlots.filter((s) => !keep.has(s)) }, { services: present, slots: presentSlots });
  }

  private listed(): ListedService[] {
    return this.model.list().map((s) => this.listedOne(s));
  }

  /**
   * `-L` / `-S` (the 'services' answer's `services`) as JSON text in pieces, for an answer built
   * over several turns of the event loop: 100,000 real servers with their statistics take most of
   * a second to build and encode, which must not hold VRRP, /metrics and other clients. The first
   * next() calls build the listing's entries not built yet (`maxDests` × WARM_PER_PIECE real
   * servers a call, each returning an empty piece, which the sender skips); then the table is read
   * (model.list()), and each next() builds and encodes the following services, about `maxDests`
   * real servers' worth (at least one service), statistics read then. Joined with ','
   * inside '[' and ']', the pieces are exactly JSON.stringify(execute(list all).services) would be
   * at that time. ipvsadm reads the kernel's table piecewise too (one netlink dump for the
   * services, then one per service for its real servers).
   */
  listedPieces(maxDests: number): Iterator<string, void> {
    // The listing's entries first, built in slices (ServiceModel.warmListing; an empty piece per
    // slice): a listing asked for right after a large restore, before the daemon's own warm-up
    // finished, built them all at once in model.list(), about 200 ms of a blocked event loop at
    // 10,000 × 10.
    let services: readonly ServiceEntry[] | null = null;
    let from = 0;
    return {
      next: (): IteratorResult<string, void> => {
        if (services === null) {
          if (!this.model.warmListing(maxDests * WARM_PER_PIECE)) return { done: false, value: '' };
          services = this.model.list();
        }
        if (from >= services.length) return { done: true, value: undefined };
        let to = from;
        let n = 0;
        while (to < services.length && (to === from || n < maxDests)) n += services[to++]!.dests.length + 1;
        const piece = JSON.stringify(services.slice(from, to).map((s) => this.listedOne(s))).slice(1, -1);
        from = to;
        return { done: false, value: piece };
      },
    };
  }

  private listedOne(s: ServiceEntry): ListedService {
    const { counters, rates } = this.stats.serviceStats(s.id);
    return {
      ...s,
      stats: counters,
      rates,
      dests: s.dests.map((d) => {
        const ds = this.stats.destStats(d.slot);
        return { ...d, stats: ds.counters, rates: ds.rates };
      }),
    };
  }
}

function isBatchSource(c: BatchSource | readonly IpvsadmCommand[]): c is BatchSource {
  return !Array.isArray(c);
}

/** The table-changing part of a command, on any model (the live one or a check copy); nothing
 *  is built for an answer. */
function applyMutation(m: ServiceModel, c: IpvsadmCommand): void {
  switch (c.cmd) {
    case 'add-service': m.apply({ kind: 'add-service', service: c.service }); break;
    case 'edit-service': m.apply({ kind: 'edit-service', service: c.service }); break;
    case 'delete-service': m.deleteService(c.service); break;
    case 'flush': m.flush(); break;
    case 'add-dest': m.apply({ kind: 'add-dest', service: c.service, dest: c.dest }); break;
    case 'edit-dest': m.apply({ kind: 'edit-dest', service: c.service, dest: c.dest }); break;
    case 'delete-dest': m.deleteDest(c.service, c.dest); break;
    case 'set-timeouts': m.setTimeouts(c.timeouts); break;
    case 'zero': m.checkZero(c.service); break;
    default:
      throw new IpvsError('flush', 'EINVAL', `"${c.cmd}" cannot be part of a -R batch`);
  }
}
