// The data plane as the main thread sees it: it owns the shared tables (connections, next hops,
// per-worker counters), runs the worker threads (and restarts one that dies — the tables live
// in shared memory, so the connections survive it), and turns every change of the service model
// into a new snapshot, a kernel-guard update and a BPF filter, in that order:
//
//   model change → schedulers updated → next hops resolved → guard (kernel leaves the packets
//   alone) → filter + snapshot to every worker → every worker acknowledges
//
// apply() resolves only once the workers run the new snapshot, so `uvsadm -a …` returns when the
// change is live, as ipvsadm returns when the kernel has it.

import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { loadNative, type BpfInsn, type FanoutMode, type RingOptions } from '../native/addon';
import { buildSelectFilter, sameFilter, BPF_RET, BPF_K, stmt } from './bpf';
import { KernelGuard, type GuardTuple } from './guard';
import { NetInfo, captureInterfaces, type InterfaceInfo } from './netinfo';
import { NextHopTable } from '../tables/next-hop';
import { NextHopResolver, type HopTarget } from './next-hop-resolver';
import { ClientHopTable } from '../tables/client-hops';
import { LinkWatcher, type LinkWatchStats } from './link-watch';
import { refreshClientRoutes } from './client-routes';
import { getDefense, setDefense, type ConnDefense } from '../conn/defense';
import { CounterSum, WorkerCounters, WorkerStat, WORKER_STAT_NAMES, type CounterLayout } from './counters';
import type { WorkerInit, WorkerService, ToWorker, FromWorker } from './worker';
import { PcapWorker } from './pcap-loop';
import { FastCtl, FastPath, FAST_ENTRIES_DEFAULT, fastMethod, type FastEgress, type FastPathReport } from './fast-path';
import { XdpPrograms, XDP_CHUNK_COUNT, XDP_CHUNK_SIZE, XDP_HEADROOM, XDP_RX_RING } from './xdp';
import { workerCpus } from './placement';
import { ConnTable, connNowMs } from '../conn/table';
import { setTimeouts } from '../conn/tcp-state';
import { connTableLister } from './conn-lister';
import { ForwardMethod, DestFlag, DestField } from '../tables/dest-table';
import { ServiceSnapshot, type CompiledService } from '../service/snapshot';
import { SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED_MASK, TunnelType, type DestConfig, type ServiceModel, type ServiceEntry } from '../service/model';
import type { ConnLister } from '../service/conn-list';
import { getSchedulerFactory, type Scheduler } from '../sched/index';
import { DROP_REASON_COUNT, dropReasonName } from '../packet/drop';

import { intToIpv4 } from '../packet/addr';
import type { Logger } from '../runtime/log';
import { UvsError } from '../runtime/errors';
import { ConnRestorer, ConnStateRefused, currentOrigin, decodeConnState, encodeConnState, exportAll, takeConnStateFile, writeConnStateFile } from './conn-state';
import { IcmpRateLimit } from '../forward/icmp';

/**
 * Busy-poll window (uvsd --busy-poll): after a turn that forwarded frames, the worker spins on its
 * rings (native RingPoller) for up to this many µs before it goes back to sleep in epoll_wait. A
 * frame arriving meanwhile is taken by a thread that is awake and warm; a sleeping worker pays a
 * wake-up and a cold run of rx, pipeline and send, about 100 µs a pass here (native/README.md,
 * "Where a pass's time goes"). The spin ends once a window passes without a frame, so an idle
 * worker still sleeps. 200 µs measured better than 0 in every round of the README's runs and
 * keeps the CPU cost small at low rates. It is the window's minimum: --busy-poll-max lets it grow
 * to the gaps of the traffic that flows (DEFAULT_BUSY_POLL_MAX_US).
 */
export const DEFAULT_BUSY_POLL_US = 200;
/**
 * The longest adaptive busy-poll window (uvsd --busy-poll-max): traffic whose frames come up to
 * 2/3 of this apart (about 300 frames/s and more) keeps a worker spinning from frame to frame
 * (spin-window.ts), so a request/response flow pays no wake-up per pass; the spin runs under
 * SCHED_IDLE (native RingPoller), so any other thread on that CPU goes first. 5000 measured best
 * of 0, 2000 and 5000 (native/README.md, "Adaptive busy polling"): the bench's latency probes
 * alternate the direct path and the director, so a director sees a request every 2.3 ms or more.
 * 0 (or ≤ --busy-poll): the fixed window only.
 */
export const DEFAULT_BUSY_POLL_MAX_US = 5000;
/** The longest window --busy-poll takes: 100 ms (a spin holds the worker's messages that long). */
export const MAX_BUSY_POLL_US = 100_000;

export interface DataPlaneOptions {
  model: ServiceModel;
  /** Worker threads (uvsd --workers; its default: cores − 1, at least 1). Must be 1 with io 'pcap'. */
  workers: number;
  /** PACKET_FANOUT mode spreading frames over the workers (uvsd --fanout); default 'hash'. */
  fanout?: FanoutMode;
  /** µs a worker busy-polls its rings after a turn with frames (uvsd --busy-poll; default DEFAULT_BUSY_POLL_US, 0 off). */
  busyPollUs?: number;
  /** The longest adaptive busy-poll window, µs (uvsd --busy-poll-max; default DEFAULT_BUSY_POLL_MAX_US). */
  busyPollMaxUs?: number;
  /**
   * Packet I/O: AF_PACKET rings in worker threads (default); 'xdp': the same, with AF_XDP sockets
   * taking the frames an XDP program redirects before the kernel's receive (xdp.ts); or libpcap
   * on the main thread.
   */
  io?: 'ring' | 'xdp' | 'pcap';
  /** With io 'xdp': how the XDP programs attach (uvsd --xdp-mode; default 'generic'). */
  xdpMode?: 'generic' | 'native';
  /** The in-kernel fast path for established DR flows (uvsd --fast-path; fast-path.ts): default
   *  true with io 'ring' and 'xdp'. */
  fastPath?: boolean;
  /** Flows the fast path holds at most (uvsd --fast-path-max; default FAST_ENTRIES_DEFAULT, at most connMax). */
  fastPathMax?: number;
  /** TCP connections offered at their SYN, closing in the kernel (uvsd --fast-path-early; default false). */
  fastPathEarly?: boolean;
  /** New TCP connections of rr/wrr services scheduled by the XDP program (uvsd --fast-path-sched;
   *  default false; needs fastPathEarly). */
  fastPathSched?: boolean;
  /** Capture interfaces (uvsd --iface); empty: every interface that is up and not loopback. */
  ifaces: string[];
  /** Follow interfaces that come and go (default true; see link-watch.ts). */
  watchInterfaces?: boolean;
  /** The daemon's shared interface watch, subscribed to instead of starting a watch of its own
   *  (uvsd runs one `ip monitor` child for the data plane and the VRRP glue); stop() leaves it running. */
  linkWatcher?: LinkWatcher;
  /** Connection-table capacity (uvsd --conn-max). */
  connMax: number;
  /** Flood defence knobs of the connection table (src/conn/defense.ts); defaults otherwise. */
  connDefense?: Partial<ConnDefense>;
  log: Logger;
  netinfo?: NetInfo;
  guard?: KernelGuard;
  ring?: RingOptions;
  /** PACKET_VNET_HDR on the rings (default on): offloaded super-frames go back out whole. */
  vnetHdr?: boolean;
  /**
   * VRRP's say (src/control/vrrp.ts): false for a VIP that a vrrp_instance manages while that
   * instance is not MASTER, so only the master forwards (keepalived's backup keeps the IPVS rules
   * but has no VIP). A service whose VIP no instance manages is always active. Call apply() after
   * every change of the answer. Absent: every service is active.
   */
  serviceActive?: (addr: number) => boolean;
}

interface SchedulerState {
  name: string;
  flags: number;
  maxDests: number;
  scheduler: Scheduler;
}

/** One service as the data plane applied it: what it put into each shared structure, so a change
 *  to it takes exactly that out again. */
interface AppliedService {
  compiled: CompiledService;
  /** Null for a firewall-mark service (listed, not matched on the wire). */
  worker: WorkerService | null;
  addr: number;
  /** Guard keys ("addr proto port") of the services set and the nat_replies set. */
  vipTuples: string[];
  natTuples: string[];
  /** NAT real servers' addresses (nat_sources, and the filter's sources). */
  natSources: number[];
  slots: number[];
}

interface WorkerHandle {
  id: number;
  worker: Worker | PcapWorker | null;
  /** The worker said 'ready': snapshots may be sent. */
  ready: boolean;
  /** It got a whole snapshot since (re)starting: deltas may follow. */
  synced: boolean;
  counters: WorkerCounters;
  appliedGeneration: number;
  restarts: number;
  /** When the current thread was started (ms, Date.now()). */
  startedAt: number;
  /** Deaths in a row within WORKER_STABLE_MS of their start: the restart delay grows with them. */
  quickDeaths: number;
  /** Being replaced on purpose (the captured interfaces changed): not a death, not counted. */
  recycling: boolean;
}

/** A worker that ran this long before it died is restarted at once (as the first time). */
const WORKER_STABLE_MS = 60_000;
const WORKER_RESTART_MIN_MS = 100;
const WORKER_RESTART_MAX_MS = 30_000;

/**
 * How long to wait before restarting a worker that died after `quickDeaths` quick deaths in a
 * row: 100 ms, then doubling up to 30 s, so a worker that fails at once again and again is not
 * restarted ten times a second forever.
 */
export function workerRestartDelay(quickDeaths: number): number {
  return Math.min(WORKER_RESTART_MAX_MS, WORKER_RESTART_MIN_MS * 2 ** Math.max(0, Math.min(quickDeaths, 20)));
}

export interface WorkerReport {
  id: number;
  alive: boolean;
  restarts: number;
  stats: Record<string, number>;
  drops: Record<string, number>;
}

export class DataPlaneError extends UvsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UVS_ERR_DATAPLANE', message, options);
  }
}

/** Worker id of the control plane in the connection table (workers are 0..N-1). */
const CONTROL_WORKER_ID = 255;
/** How long restored connections wait for their service to be configured again (uvsadm after the
 *  start) before they are dropped. */
export const CONN_RESTORE_GRACE_MS = 60_000;
const APPLY_TIMEOUT_MS = 5000;
const NEXT_HOP_REFRESH_MS = 5000;
/** Routes toward clients for NAT replies of entries without their own next hop (client-hops.ts). */
const CLIENT_HOP_RECORDS = 256;

export class DataPlane {
  readonly conns: ConnTable;
  readonly nextHops: NextHopTable;
  /** NAT: routes toward clients, the fallback for entries without their own next hop. */
  readonly clientHops: ClientHopTable;
  /** The ICMP errors' rate limit, one budget shared by every worker (as the kernel's is per host). */
  private readonly icmpLimit = new IcmpRateLimit();
  readonly counters: CounterSum;
  readonly connLister: ConnLister;
  private readonly model: ServiceModel;
  private readonly opts: DataPlaneOptions;
  private readonly netinfo: NetInfo;
  private readonly guard: KernelGuard;
  private readonly layout: CounterLayout;
  private readonly handles: WorkerHandle[] = [];
  private readonly schedulers = new Map<number, SchedulerState>();
  private readonly resolver: NextHopResolver;
  /** Per service id: what the last apply put into the data plane. */
  private readonly applied = new Map<number, AppliedService>();
  /** The model generation the last apply covered (ServiceModel.changedSince). */
  private modelGen = 0;
  /** The next apply starts over from the whole model (after a failed one). */
  private resync = false;
  private guardResync = false;
  private readonly guardServices = new Counted<string>();
  private readonly guardNat = new Counted<string>();
  private readonly guardSources = new Counted<number>();
  private readonly filterDestinations = new Counted<number>();
  private readonly filterSources = new Counted<number>();
  /** "protocol/addr" → the service slots on that address (the snapshot's address index). */
  private readonly addrSlots = new Map<string, Set<number>>();
  private ifaces: InterfaceInfo[] = [];
  private generation = 0;
  private lastSnapshot: ServiceSnapshot | null = null;
  private lastFilter: BpfInsn[] = [DROP_ALL];
  /** What lastFilter selects, for the pcap backend, which compiles its own filter. */
  private lastHosts: { destinations: number[]; sources: number[] } = { destinations: [], sources: [] };
  /** The apply running now, and the one that will run next (taking every change made meanwhile). */
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  /** Connections restored from the previous uvsd that wait for their service (restart). */
  private restorer: ConnRestorer | null = null;
  private restoreTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  /** start() has completed: from then on every dead worker is restarted. */
  private started = false;
  private readonly waiters = new Set<() => void>();
  /** Follows interfaces that come and go (null with watchInterfaces false, or before start). */
  private watcher: LinkWatcher | null = null;
  private watchSubscription: { stop(): void } | null = null;
  /** The re-evaluation running now; notifications meanwhile make one more after it. */
  private relinking: Promise<void> | null = null;
  private relinkAgain = false;
  /** --io xdp: the XDP programs on the captured interfaces; with the fast path alone (--io ring),
   *  programs that only forward offloaded flows (null: neither). */
  private xdp: XdpPrograms | null = null;
  /** The in-kernel fast path (null: off, or it could not start). */
  private fast: FastPath | null = null;
  /** --io ring: attaching the fast path's programs failed once (not tried again). */
  private fastAttachFailed = false;
  /** Every counter set the CounterSum adds up: the workers', then the fast path's. */
  private readonly counterSets: WorkerCounters[] = [];

  constructor(opts: DataPlaneOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > 64) {
      throw new DataPlaneError(`--workers: expected 1..64, got ${opts.workers}`);
    }
    if (opts.io === 'pcap' && opts.workers !== 1) {
      throw new DataPlaneError(`--io pcap runs one packet loop on the main thread (the pcap addon loads in one thread); got ${opts.workers} workers`);
    }
    this.opts = opts;
    this.model = opts.model;
    this.netinfo = opts.netinfo ?? new NetInfo();
    this.guard = opts.guard ?? new KernelGuard();
    this.conns = new ConnTable(opts.connMax, this.model.destTable, { workerId: CONTROL_WORKER_ID });
    this.setDefense(opts.connDefense ?? {});
    this.nextHops = new NextHopTable(this.model.destTable.capacity);
    this.clientHops = new ClientHopTable(CLIENT_HOP_RECORDS);
    this.resolver = new NextHopResolver(this.netinfo, this.nextHops, () => this.ifaces, opts.log);
    this.layout = { maxServices: this.model.maxServices, maxDests: this.model.destTable.capacity };
    for (let id = 0; id < opts.workers; id++) {
      this.handles.push({ id, worker: null, ready: false, synced: false, counters: new WorkerCounters(this.layout), appliedGeneration: 0, restarts: 0, startedAt: 0, quickDeaths: 0, recycling: false });
    }
    // The handles (and each one's counters, which outlive its worker's restarts) are fixed from
    // here on: one array for every read, not a new one per real server read (-L reads 110,000).
    for (const h of this.handles) this.counterSets.push(h.counters);
    const sets = this.counterSets;
    this.counters = new CounterSum(() => {
      // The fast path's packets since the last read (at most every 100 ms: -L reads each server).
      this.fast?.fold(this.model.destTable);
      return sets;
    });
    this.connLister = connTableLister(this.conns);
  }

  /** The connection table's flood defence knobs (drop_entry, drop_packet, secure_tcp, amemthresh,
   *  am_droprate): every worker sees a change at once (they live in the table's shared header).
   *  A bad value throws and changes nothing. */
  setDefense(knobs: Partial<ConnDefense>): void {
    setDefense(this.conns, knobs);
  }

  defense(): ConnDefense {
    return getDefense(this.conns);
  }

  /** Why the data plane cannot forward to this real server, or null when it can. */
  static unsupportedDest(dest: DestConfig): string | null {
    if (dest.fwd === ForwardMethod.TUNNEL && dest.tunType !== TunnelType.IPIP) {
      return `real server ${intToIpv4(dest.addr)}: --tun-type ${dest.tunType === TunnelType.GUE ? 'gue' : 'gre'} is not supported by the uvs data plane; use --tun-type ipip (the default)`;
    }
    return null;
  }

  /** Opens the rings in every worker, installs the kernel guard and applies the model. */
  async start(): Promise<void> {
    loadNative(); // fail here, in one clear line, when the addon is not built
    this.ifaces = await this.chooseInterfaces();
    if (this.opts.fastPath !== false && (this.opts.io === undefined || this.opts.io === 'ring' || this.opts.io === 'xdp')) this.startFast();
    if (this.opts.io === 'xdp') this.startXdp();
    // With --io ring the fast path's programs come with the first DR or NAT real server (syncFastPrograms).
    await this.guard.install();
    if (this.fanoutMode() === 'cpu') {
      // One by one, in id order: fanout members are indexed in the order they joined, and worker
      // i must be member i to be the one that takes the frames of the CPUs it is pinned to.
      for (const h of this.handles) await this.spawn(h);
    } else {
      await Promise.all(this.handles.map((h) => this.spawn(h)));
    }
    await this.apply();
    this.started = true;
    // Logged once everything runs: scripts and tests wait for this line.
    const where = this.opts.io === 'pcap' ? 'libpcap on the main thread' : `${this.handles.length} worker(s)${this.xdp?.steer === true ? ' with AF_XDP' : ''}${this.fast !== null ? ' and the fast path' : ''}`;
    this.opts.log.info(`data plane: ${where} on ${this.ifaces.map((i) => i.ifname).join(', ') || 'no interface'}`);
    const clientRoutes = (): void => {
      refreshClientRoutes(this.clientHops, this.netinfo, this.ifaces, this.opts.log).catch((err: Error) => this.opts.log.warn(`client routes: ${err.message}`));
    };
    clientRoutes();
    this.fast?.syncAll(this.model.destTable, this.nextHops, this.fastEgress);
    this.refreshTimer = setInterval(() => {
      this.refreshNextHops().catch((err: Error) => this.opts.log.warn(`next-hop refresh: ${err.message}`));
      // A catch-all: whatever changed a real server's availability outside an apply.
      this.fast?.syncAll(this.model.destTable, this.nextHops, this.fastEgress);
      clientRoutes();
    }, NEXT_HOP_REFRESH_MS);
    this.refreshTimer.unref();
    if (this.opts.linkWatcher) {
      this.watcher = this.opts.linkWatcher;
      this.watchSubscription = this.watcher.subscribe(() => void this.relink());
    } else if (this.opts.watchInterfaces !== false) {
      this.watcher = new LinkWatcher(() => void this.relink(), this.opts.log);
      this.watcher.start();
    }
  }

  /** The fast path's maps, the mirror of the next-hop records it forwards with, and the control
   *  plane's part in expiry. A failure (no BPF here) leaves it off, with a warning. */
  private startFast(): void {
    const max = Math.min(this.opts.fastPathMax ?? FAST_ENTRIES_DEFAULT, this.opts.connMax);
    try {
      const sched = this.opts.fastPathSched === true && this.opts.fastPathEarly === true ? { services: this.model.maxServices } : null;
      this.fast = new FastPath(loadNative(), this.layout, Math.max(1, max), sched);
    } catch (err) {
      this.opts.log.warn(`fast path: off: ${(err as Error).message}`);
      return;
    }
    this.counterSets.push(this.fast.counters);
    this.conns.offloadHook = this.fast.flows;
    this.nextHops.onChange = (slot) => this.fast?.syncSlot(slot, this.model.destTable, this.nextHops, this.fastEgress);
  }

  /** Where the fast path's frames leave: the data plane's interfaces by index. */
  private readonly fastEgress: FastEgress = {
    ifindex: (egress) => this.ifaces[egress]?.ifindex ?? 0,
    maxMtu: () => this.ifaces.reduce((m, i) => Math.max(m, i.mtu), 0),
    // A service whose VIP this director does not hold (VRRP backup) forwards nothing, in user
    // space (SERVICE_INACTIVE) or in the kernel.
    serviceActive: (id) => this.applied.get(id)?.compiled.active ?? false,
  };

  /**
   * --io ring with the fast path: programs that only forward offloaded flows (everything else
   * passes to the kernel and the rings as without them), attached while a DR, NAT or TUN real
   * server is configured. Without one they would forward nothing and still cost: a generic-mode program
   * runs for every frame the interface receives, after the kernel copied any frame that lacks
   * XDP's headroom or is not linear (README, "How it works", has a measurement). Called by each
   * apply.
   */
  private syncFastPrograms(): void {
    if (this.fast === null || this.opts.io === 'xdp') return;
    const want = this.hasFastDest();
    if (want && this.xdp === null && !this.fastAttachFailed) {
      const fast = this.fast;
      this.xdp = new XdpPrograms(this.opts.log, 'generic', undefined, { ...fast.fds, steer: false });
      try {
        this.xdp.sync(this.ifaces);
        this.opts.log.info(`fast path: XDP programs on ${this.ifaces.map((i) => i.ifname).join(', ') || 'no interface'} (a DR, NAT or TUN real server is configured)`);
      } catch (err) {
        // Once: the interfaces' other XDP programs stay where they are; DR goes through user space.
        this.opts.log.warn(`fast path: off: ${(err as Error).message}`);
        this.xdp.close();
        this.xdp = null;
        this.fastAttachFailed = true;
      }
    } else if (!want && this.xdp !== null) {
      this.xdp.close();
      this.xdp = null;
      this.opts.log.info('fast path: XDP programs removed (no DR, NAT or TUN real server)');
    }
  }

  /** Whether a service in force has a real server the fast path carries (DR or NAT). */
  private hasFastDest(): boolean {
    const d = this.model.destTable;
    for (const a of this.applied.values()) {
      for (const slot of a.slots) if (fastMethod(d.get(slot, DestField.FWD))) return true;
    }
    return false;
  }

  private stopFast(): void {
    if (this.fast === null) return;
    this.conns.offloadHook = null;
    this.nextHops.onChange = null;
    this.fast.close();
    this.fast = null;
  }

  /** The fast path's figures for `uvsadm --dataplane` (null: off). */
  fastPathReport(): FastPathReport | null {
    const fast = this.fast;
    if (fast === null) return null;
    fast.fold(this.model.destTable, true);
    const sum = (stat: WorkerStat): number => this.handles.reduce((n, h) => n + h.counters.get(stat), 0);
    return {
      max: fast.entries,
      packets: fast.totalPackets(),
      offloads: sum(WorkerStat.FAST_OFFLOADS) + fast.flows.offloads,
      left: sum(WorkerStat.FAST_LEFT) + fast.flows.left,
      refused: sum(WorkerStat.FAST_REFUSED) + fast.flows.refused,
      kept: sum(WorkerStat.FAST_KEPT) + fast.flows.kept,
      ...(fast.ctl !== null ? {
        sched: {
          services: fast.scheduledServices, scheduled: Number(fast.ctl[FastCtl.SCHEDULED]), refused: Number(fast.ctl[FastCtl.REFUSED]),
          lost: Number(fast.ctl[FastCtl.LOST]), adopted: sum(WorkerStat.FAST_SCHEDULED), dropped: sum(WorkerStat.FAST_SCHED_DROPPED),
        },
      } : {}),
    };
  }

  /** --io xdp: the programs on the chosen interfaces, and a word on workers without a queue. */
  private startXdp(): void {
    const mode = this.opts.xdpMode ?? 'generic';
    this.xdp = new XdpPrograms(this.opts.log, mode, undefined, this.fast !== null ? { ...this.fast.fds, steer: true } : null);
    this.xdp.sync(this.ifaces);
    const native = loadNative();
    const workers = this.handles.length;
    for (const i of this.ifaces) {
      const queues = native.ifQueueCount(i.ifname).rx;
      if (mode === 'generic' && i.kind === 'veth' && workers > 1) {
        // Generic XDP reads the RX queue the driver recorded in the skb, and veth records none
        // (measured on Linux 6.18: 2 workers, a 2-queue veth, every AF_XDP frame at worker 0),
        // so its program always redirects to queue 0's socket. Native mode runs per veth queue.
        this.opts.log.warn(`--io xdp: generic XDP on veth ${i.ifname} sees every frame on RX queue 0 (veth records no RX queue for it), ` +
          `so only worker 0 takes its AF_XDP frames and workers 1..${workers - 1} only what its ring gives them; ` +
          `--xdp-mode native spreads the frames over the veth's RX queues (numrxqueues), or use --workers 1`);
      } else if (queues < workers) {
        this.opts.log.info(`--io xdp: ${i.ifname} has ${queues} RX queue(s): worker(s) ${queues}..${workers - 1} get no AF_XDP socket on it ` +
          '(one socket per queue) and take only what its ring gives them; what they forward out of it leaves through their packet socket there');
      }
    }
  }

  /**
   * An interface came, went, or changed (link up/down, MAC, MTU, addresses): the tap rule is
   * evaluated again over the interfaces as they are now. When the captured set changes, the
   * workers are replaced one by one with rings on the new set (connections, counters and
   * schedulers live in shared memory, so nothing else is lost) and every real server's next hop
   * is resolved again (an egress is an index into the set); an address change alone re-resolves
   * next hops and client routes. Runs one at a time; resolves when done.
   */
  relink(): Promise<void> {
    if (this.relinking) {
      this.relinkAgain = true;
      return this.relinking;
    }
    const run = (async () => {
      do {
        this.relinkAgain = false;
        try {
          await this.relinkOnce();
        } catch (err) {
          this.opts.log.warn(`interfaces: ${(err as Error).message}`);
        }
      } while (this.relinkAgain && !this.stopping);
    })();
    this.relinking = run.finally(() => {
      this.relinking = null;
    });
    return this.relinking;
  }

  private async relinkOnce(): Promise<void> {
    if (this.stopping) return;
    const next = this.tapRule(await this.netinfo.interfaces());
    // `up` too: with --iface a captured interface stays in the set while it is down, and its real
    // servers' next hops ("no route" while it was down) must be resolved again when it comes back.
    const taps = (l: readonly InterfaceInfo[]): string => l.map((i) => `${i.ifindex}/${i.ifname}/${i.mtu}/${i.mac}/${i.up ? 'up' : 'down'}`).join(' ');
    const addrs = (l: readonly InterfaceInfo[]): string => JSON.stringify(l.map((i) => i.addrs));
    const tapsChanged = taps(next) !== taps(this.ifaces);
    if (!tapsChanged && addrs(next) === addrs(this.ifaces)) return;
    const before = this.ifaces.map((i) => i.ifname);
    this.ifaces = next;
    if (tapsChanged) {
      const now = next.map((i) => i.ifname);
      const added = now.filter((n) => !before.includes(n));
      const gone = before.filter((n) => !now.includes(n));
      this.opts.log.info(`data plane: interfaces now ${now.join(', ') || 'none'}` +
        `${added.length ? `; capturing ${added.join(', ')}` : ''}${gone.length ? `; no longer ${gone.join(', ')}` : ''}` +
        `${!added.length && !gone.length ? ' (link, MAC or MTU changed)' : ''}`);
      // New programs first (the gone interfaces' ones detached): the new workers' AF_XDP sockets
      // register in their maps. Until then those frames pass on to the rings.
      if (this.xdp !== null) {
        try {
          this.xdp.sync(next);
        } catch (err) {
          this.opts.log.warn(`${(err as Error).message}; its frames go through the ring`);
        }
      }
      if (this.fanoutMode() === 'cpu') await this.recycleInOrder(0);
      else for (const h of this.handles) await this.recycle(h);
    }
    const d = this.model.destTable;
    await this.resolver.resolveAgain((slot) => (d.get(slot, DestField.FLAGS) & DestFlag.IN_USE) !== 0);
    // Egress indexes may name other interfaces now.
    this.fast?.syncAll(d, this.nextHops, this.fastEgress);
    await refreshClientRoutes(this.clientHops, this.netinfo, this.ifaces, this.opts.log);
  }

  /**
   * Under fanout 'cpu': stops the workers from id `from` on at once, then starts them — and any of
   * them that was down — in id order. A socket joins at the end of the fanout member array, and
   * one that leaves has its place taken by the last member (af_packet.c __fanout_link,
   * __fanout_unlink), so a worker replaced alone would become another member than its id and take
   * the frames of CPUs it is not pinned to (placement.ts). The members below `from` keep their
   * places: a leaver's place is only ever refilled from the end. `from` 0 replaces every worker
   * (the interfaces changed); a worker that died is restarted with those after it (its id).
   * One such pass at a time: a second waits for the first.
   */
  private recycleInOrder(from: number): Promise<void> {
    const run = this.inOrderPass.then(async () => {
      const live = this.handles.filter((h) => h.id >= from && h.worker !== null);
      for (const h of live) h.recycling = true;
      try {
        await Promise.all(live.map((h) => h.worker!.terminate()));
        for (const h of this.handles) {
          if (this.stopping) break;
          if (h.id < from || h.worker !== null) continue;
          // One that fails to start does not keep the next from starting (it is restarted on its own).
          await this.spawn(h).catch((err: Error) => this.opts.log.error(err.message));
        }
      } finally {
        for (const h of live) h.recycling = false;
      }
    });
    this.inOrderPass = run.catch(() => undefined);
    return run;
  }
  /** The in-order replacement running now (recycleInOrder). */
  private inOrderPass: Promise<void> = Promise.resolve();

  private cpusAllowed: number[] | null = null;
  /** uvsd's CPUs (its affinity when the data plane started: taskset, cgroup cpuset). */
  private allowedCpus(): number[] {
    this.cpusAllowed ??= loadNative().threadCpus();
    return this.cpusAllowed;
  }

  private fanoutMode(): FanoutMode {
    return this.opts.fanout ?? 'hash';
  }

  /** Replaces a worker with one on the current interfaces (a restart that is not a death). */
  private async recycle(h: WorkerHandle): Promise<void> {
    const w = h.worker;
    if (!w || this.stopping) return;
    h.recycling = true;
    try {
      await w.terminate();
      if (!this.stopping) await this.spawn(h);
    } finally {
      h.recycling = false;
    }
  }

  /** Interface-watch counters (null when not watching). */
  linkWatchStats(): LinkWatchStats | null {
    return this.watcher ? { ...this.watcher.stats } : null;
  }

  /**
   * Applies the current model; resolves once the workers run it. At most one apply runs at a
   * time, and calls made while it runs share the next one, which takes every change made up to
   * its start: 10,000 `uvsadm -a` in a row, or a `-R`, cost a handful of applies, not 10,000, and
   * each caller still returns only when its change is live.
   */
  apply(): Promise<void> {
    if (this.queued) return this.queued;
    const after = this.running ?? Promise.resolve();
    const next: Promise<void> = after.catch(() => undefined).then(() => {
      this.queued = null;
      this.running = next;
      return this.applyNow();
    }).finally(() => {
      if (this.running === next) this.running = null;
    });
    this.queued = next;
    return next;
  }

  /**
   * Stops the workers and removes the kernel guard. With `connStatePath`, the live connections
   * are first written there for the next uvsd (restart without loss, conn-state.ts) and, when
   * there were any, the guard is handed over instead of removed, so the kernel does not reset
   * them until the next uvsd has them back.
   */
  async stop(options: { connStatePath?: string | null } = {}): Promise<void> {
    this.stopping = true;
    // A shared watcher is its owner's to stop: only this subscription ends.
    if (this.watchSubscription) this.watchSubscription.stop();
    else this.watcher?.stop();
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    await this.relinking;
    if (this.restoreTimer) clearTimeout(this.restoreTimer);
    await Promise.all(
      this.handles.map(async (h) => {
        const w = h.worker;
        if (!w) return;
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        w.postMessage({ type: 'stop' } satisfies ToWorker);
        const timer = setTimeout(() => void w.terminate(), 2000);
        await exited;
        clearTimeout(timer);
      }),
    );
    // The workers' AF_XDP sockets are closed: the programs go (the kernel passes frames again).
    this.xdp?.close();
    this.xdp = null;
    this.stopFast();
    const path = options.connStatePath;
    if (path && this.saveConnState(path) > 0) {
      await this.guard.handOver(this.guardServices.keys().map(tupleOf), this.guardNat.keys().map(tupleOf));
      return;
    }
    await this.guard.remove();
  }

  /** Writes the live connections to `path` (none: removes an old file); returns how many. The
   *  workers have stopped, so the table holds still. A failure is logged: the stop goes on. */
  private saveConnState(path: string): number {
    const log = this.opts.log;
    try {
      const now = connNowMs();
      const { records, hops, count } = exportAll(this.conns, now);
      // Entries still waiting for their service are carried over again, with their time left.
      const waiting = this.restorer?.dropPending() ?? 0;
      if (count === 0) {
        takeConnStateFile(path);
        return 0;
      }
      writeConnStateFile(path, encodeConnState(records, count, Date.now(), currentOrigin(), process.pid, hops, (i) => this.ifaces[i]?.ifindex ?? 0));
      log.info(`connection state: ${count} connection(s) saved to ${path} for the next uvsd` + (waiting ? ` (${waiting} restored ones never found their service and are dropped)` : ''));
      return count;
    } catch (err) {
      log.error(`connection state: cannot save to ${path}: ${(err as Error).message}; connections will not survive the restart`);
      return 0;
    }
  }

  /**
   * Imports the connections a previous uvsd saved at `path` (restart without loss): those whose
   * virtual service and real server exist now at once, the others as they appear (after each
   * apply) for up to `graceMs`. A refused file (corrupt, stale, foreign) is logged and ignored.
   * The handover guard the previous uvsd left is removed once nothing waits any more.
   */
  async restoreConnState(path: string, graceMs = CONN_RESTORE_GRACE_MS): Promise<void> {
    const log = this.opts.log;
    let image: Buffer | null;
    try {
      image = takeConnStateFile(path);
    } catch (err) {
      log.warn(`connection state: cannot read ${path}: ${(err as Error).message}; starting without the previous connections`);
      image = null;
    }
    if (image) {
      try {
        const state = decodeConnState(image, Date.now(), currentOrigin());
        this.restorer = new ConnRestorer(state, this.conns, this.handles.length, this.model, Date.now() + graceMs,
          (ifindex) => this.ifaces.findIndex((i) => i.ifindex === ifindex));
        log.info(`connection state: ${state.count} connection(s) from uvsd ${state.writerPid} (saved ${((Date.now() - state.savedAtMs) / 1000).toFixed(1)} s ago` +
          (state.expired ? `, ${state.expired} expired meanwhile` : '') + ')');
        this.importRestored();
        if (this.restorer) {
          this.restoreTimer = setTimeout(() => this.finishRestore(true), graceMs);
          this.restoreTimer.unref();
        }
        return;
      } catch (err) {
        if (!(err instanceof ConnStateRefused)) throw err;
        log.warn(`connection state: ${path} refused and ignored: ${err.message}`);
      }
    }
    await this.guard.releaseHandover().catch((err: Error) => log.warn(`connection state: ${err.message}`));
  }

  /** Imports the restored connections whose service is there now (after each apply). */
  private importRestored(): void {
    const r = this.restorer;
    if (!r) return;
    r.importReady(connNowMs());
    if (r.waiting === 0) this.finishRestore(false);
  }

  private finishRestore(deadline: boolean): void {
    const r = this.restorer;
    if (!r) return;
    this.restorer = null;
    if (this.restoreTimer) clearTimeout(this.restoreTimer);
    this.restoreTimer = null;
    const dropped = r.dropPending();
    this.opts.log.info(`connection state: ${r.imported} connection(s) restored` +
      (r.refused ? `, ${r.refused} refused (real server's forwarding method changed, or the table full)` : '') +
      (deadline && dropped ? `, ${dropped} dropped: their service or real server did not come back within ${CONN_RESTORE_GRACE_MS / 1000} s` : ''));
    this.guard.releaseHandover().catch((err: Error) => this.opts.log.warn(`connection state: ${err.message}`));
  }

  interfaces(): readonly InterfaceInfo[] {
    return this.ifaces;
  }

  /** Per-worker figures for the worker listing (uvsadm --workers). */
  workerReports(): WorkerReport[] {
    return this.handles.map((h) => {
      const stats: Record<string, number> = {};
      WORKER_STAT_NAMES.forEach((name, i) => (stats[name] = h.counters.get(i)));
      const drops: Record<string, number> = {};
      for (let r = 1; r < DROP_REASON_COUNT; r++) {
        const n = h.counters.drops(r);
        if (n > 0) drops[dropReasonName(r)] = n;
      }
      return { id: h.id, alive: h.worker !== null, restarts: h.restarts, stats, drops };
    });
  }

  // ---- workers -------------------------------------------------------------------------------

  private spawn(h: WorkerHandle): Promise<void> {
    const init: WorkerInit = {
      workerId: h.id,
      ifaces: this.ifaces.map((i) => ({ name: i.ifname, index: i.ifindex, mtu: i.mtu, xsksFd: this.xdp?.steer === true ? this.xdp.xsksFd(i.ifindex) : undefined })),
      fastFd: this.fast?.maps.fastFd,
      fastEarly: this.opts.fastPathEarly ?? false,
      fastSched: this.fast?.maps.ctlFd !== undefined ? { ctlFd: this.fast.maps.ctlFd, eventsFd: this.fast.maps.eventsFd! } : undefined,
      xdp: this.xdp?.steer === true ? { queue: h.id, chunkCount: XDP_CHUNK_COUNT, chunkSize: XDP_CHUNK_SIZE, headroom: XDP_HEADROOM, rxRing: XDP_RX_RING } : undefined,
      fanoutGroupBase: (process.pid * 16) & 0xffff,
      fanoutMode: this.fanoutMode(),
      cpus: this.opts.io !== 'pcap' && this.fanoutMode() === 'cpu' ? workerCpus(h.id, this.handles.length, this.allowedCpus()) : [],
      busyPollUs: this.opts.busyPollUs ?? DEFAULT_BUSY_POLL_US,
      busyPollMaxUs: this.opts.busyPollMaxUs ?? DEFAULT_BUSY_POLL_MAX_US,
      ring: this.opts.ring ?? {},
      vnetHdr: this.opts.vnetHdr ?? true,
      filter: this.lastFilter,
      destCapacity: this.model.destTable.capacity,
      dests: this.model.destTable.buffer,
      connCapacity: this.conns.capacity,
      conns: this.conns.buffer,
      nextHops: this.nextHops.buffer,
      clientHopCapacity: this.clientHops.capacity,
      clientHops: this.clientHops.buffer,
      counterLayout: this.layout,
      counters: h.counters.buffer,
      icmpLimit: this.icmpLimit.buffer,
    };
    let worker: Worker | PcapWorker;
    try {
      worker = this.opts.io === 'pcap'
        ? new PcapWorker(init, { log: this.opts.log })
        : new Worker(join(__dirname, 'worker.js'), { workerData: init });
    } catch (err) {
      return Promise.reject(new DataPlaneError(`worker ${h.id} could not start: ${(err as Error).message}`));
    }
    h.worker = worker;
    h.ready = false;
    h.synced = false;
    h.startedAt = Date.now();
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          ready = true;
          h.ready = true;
          if (msg.warmup) this.opts.log.debug(`worker ${h.id}: warmed up with ${msg.warmup.frames} synthetic frames (${msg.warmup.forwarded} forwarded) in ${msg.warmup.ms.toFixed(0)} ms`);
          if (this.lastSnapshot) this.sendSnapshot(h, null);
          resolve();
        } else if (msg.type === 'applied') {
          h.appliedGeneration = msg.generation;
          for (const w of this.waiters) w();
        } else if (msg.type === 'error') {
          // A captured link that goes down or away is not a fault: the interface watch takes it
          // out of the capture (and back in when it returns).
          if (this.watcher && /capture socket error (ENETDOWN|ENODEV|ENXIO)/.test(msg.message)) {
            this.opts.log.info(`worker ${h.id}: ${msg.message.replace(/: capture socket error (\w+).*/, ' is down or gone ($1); the interface watch follows it')}`);
          } else {
            this.opts.log.error(`worker ${h.id}: ${msg.message}`);
          }
          // It may have missed a snapshot: the next one it gets is whole.
          h.synced = false;
          this.sendSnapshot(h, null);
        }
      });
      worker.on('error', (err: Error) => {
        this.opts.log.error(`worker ${h.id} failed: ${err.message}`);
        if (!ready) reject(new DataPlaneError(`worker ${h.id} could not start: ${err.message}`));
      });
      worker.on('exit', (code) => {
        // Gone before it was ready (without an 'error' event, e.g. terminated): whoever waits for
        // its start hears of it rather than waiting for ever (a no-op once settled).
        if (!ready) reject(new DataPlaneError(`worker ${h.id} exited (code ${code}) before it was ready`));
        if (h.worker !== worker) return; // replaced already
        h.worker = null;
        h.ready = false;
        h.synced = false;
        if (this.stopping || h.recycling) return;
        // A worker that dies before it is ready while the data plane starts fails the start (a
        // clear error, uvsd exits); once running, a worker that dies is restarted, ready or not.
        if (!ready && !this.started) return;
        // The connection table, counters and scheduler state are in shared memory: a new worker
        // with the same id takes over the dead one's entries.
        h.restarts++;
        h.quickDeaths = Date.now() - h.startedAt < WORKER_STABLE_MS ? h.quickDeaths + 1 : 0;
        const delay = workerRestartDelay(h.quickDeaths - 1);
        this.opts.log.warn(`worker ${h.id} exited (code ${code})${ready ? '' : ' before it was ready'}; restarting it in ${delay} ms (restart #${h.restarts})`);
        setTimeout(() => {
          // Started again meanwhile: by the in-order restart of a worker before it.
          if (this.stopping || h.worker !== null) return;
          // Under fanout 'cpu' with several workers, in member order again (recycleInOrder).
          const again = this.fanoutMode() === 'cpu' && this.opts.io !== 'pcap' && this.handles.length > 1 ? this.recycleInOrder(h.id) : this.spawn(h);
          again.catch((err: Error) => this.opts.log.error(err.message));
        }, delay);
      });
    });
  }

  /** Sends the last snapshot: whole (`delta` null: a worker that just started), or with only the
   *  services that changed. A worker not ready yet gets the whole one when it says 'ready'. */
  private sendSnapshot(h: WorkerHandle, delta: { changed: WorkerService[]; removed: number[]; base: number; filterChanged: boolean } | null): void {
    if (!h.worker || !this.lastSnapshot || !h.ready) return;
    if (!h.synced) delta = null;
    if (delta === null || delta.filterChanged) {
      h.worker.postMessage({ type: 'filter', filter: this.lastFilter, hosts: this.lastHosts } satisfies ToWorker);
    }
    const snapshot = this.lastSnapshot.buffer;
    if (delta === null) {
      const services: WorkerService[] = [];
      for (const a of this.applied.values()) if (a.worker) services.push(a.worker);
      h.worker.postMessage({ type: 'snapshot', snapshot, services, full: true } satisfies ToWorker);
      h.synced = true;
    } else {
      h.worker.postMessage({ type: 'snapshot', snapshot, services: delta.changed, removed: delta.removed, base: delta.base, full: false } satisfies ToWorker);
    }
  }

  private waitApplied(generation: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => this.handles.every((h) => h.worker === null || h.appliedGeneration >= generation);
      if (check()) return resolve();
      const waiter = (): void => {
        if (check()) {
          this.waiters.delete(waiter);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new DataPlaneError(`workers did not apply snapshot ${generation} within ${APPLY_TIMEOUT_MS} ms`));
      }, APPLY_TIMEOUT_MS);
      this.waiters.add(waiter);
    });
  }

  // ---- applying the model --------------------------------------------------------------------

  /**
   * One apply: everything that changed in the model since the last one (ServiceModel.changedSince),
   * however many commands that was. Per changed service only: its scheduler, its real servers'
   * next hops, its elements of the guard's sets, its addresses in the filter and its entry for the
   * workers; the snapshot (a flat array and a hash index, O(services)) is built whole, and the
   * workers get it with only the changed services' entries, switching to it between two batches.
   */
  private async applyNow(): Promise<void> {
    const t0 = performance.now();
    // ipvsadm --set: the table's timeouts follow the model's (each connection takes the new value
    // at its next state change, as in the kernel).
    const t = this.model.getTimeouts();
    setTimeouts(this.conns, t.tcp, t.tcpFin, t.udp);
    const full = this.resync;
    this.resync = false;
    const { generation: modelGen, ids } = this.model.changedSince(full ? 0 : this.modelGen);
    try {
      const changed: WorkerService[] = [];
      const removed: number[] = [];
      const compiledSet: CompiledService[] = [];
      const cleared: number[] = [];
      const released = new Set<number>();
      const toResolve: HopTarget[] = [];
      /** Real-server slots of the changed services: their fast-path records follow. */
      const touched: number[] = [];
      // Every changed service's old part comes out first, so a real-server slot or an address
      // that moved from one service to another within this apply is counted right.
      for (const id of ids) {
        const old = this.applied.get(id);
        if (!old) continue;
        this.withdraw(old);
        for (const slot of old.slots) released.add(slot);
        this.applied.delete(id);
      }
      for (const id of ids) {
        const svc = this.model.getById(id);
        if (!svc) {
          this.schedulers.delete(id);
          removed.push(id);
          cleared.push(id);
          continue;
        }
        const a = this.compile(svc);
        compiledSet.push(a.compiled);
        this.applied.set(id, a);
        this.contribute(a);
        if (a.worker) changed.push(a.worker);
        else removed.push(id);
        for (const d of svc.dests) {
          touched.push(d.slot);
          released.delete(d.slot);
          if (!this.resolver.has(d.slot, d.addr)) toResolve.push({ slot: d.slot, addr: d.addr, fwd: d.fwd });
        }
      }
      for (const slot of released) this.resolver.forget(slot);
      this.modelGen = modelGen;
      const t1 = performance.now();
      await this.resolver.resolve(toResolve);
      if (this.fast !== null) {
        // A removed or unavailable real server's record declines at once; new ones forward.
        for (const slot of released) this.fast.syncSlot(slot, this.model.destTable, this.nextHops, this.fastEgress);
        for (const slot of touched) this.fast.syncSlot(slot, this.model.destTable, this.nextHops, this.fastEgress);
        // Kernel scheduling: the changed services' cycles (after their records forward).
        for (const id of ids) this.fast.syncService(id, this.model.getById(id) ?? undefined, this.model.destTable, SVC_F_PERSISTENT, SVC_F_ONEPACKET);
      }
      const t2 = performance.now();
      await this.updateGuard();
      const t3 = performance.now();
      const filterChanged = this.updateFilter();
      const generation = ++this.generation;
      const prev = this.lastSnapshot;
      const base = prev?.generation ?? -1;
      // VRRP's answer may have changed without a model change: asked for every service.
      const active = this.opts.serviceActive;
      for (const a of compiledSet) a.active = active?.(a.addr) ?? true;
      let snapshot: ServiceSnapshot;
      if (prev && !full) {
        snapshot = ServiceSnapshot.patch(prev, generation, compiledSet, cleared, this.applied.size,
          (protocol, addr) => this.addrSlots.get(`${protocol}/${addr | 0}`) ?? []);
        if (active) {
          for (const a of this.applied.values()) {
            const now = active(a.addr);
            if (now !== a.compiled.active) {
              a.compiled.active = now;
              snapshot.setActive(a.compiled.slot, now);
              // VRRP moved the VIP: its offloaded flows follow (declined while inactive).
              for (const slot of a.slots) this.fast?.syncSlot(slot, this.model.destTable, this.nextHops, this.fastEgress);
            }
          }
        }
      } else {
        const compiled: CompiledService[] = [];
        for (const a of this.applied.values()) {
          a.compiled.active = active?.(a.addr) ?? true;
          compiled.push(a.compiled);
        }
        snapshot = ServiceSnapshot.build(generation, this.model.maxServices, compiled);
        this.fast?.syncAll(this.model.destTable, this.nextHops, this.fastEgress);
      }
      this.lastSnapshot = snapshot;
      // Programs first, so the workers' first offers of a new DR service have one to use.
      this.syncFastPrograms();
      for (const h of this.handles) this.sendSnapshot(h, { changed, removed, base, filterChanged });
      const t4 = performance.now();
      await this.waitApplied(generation);
      this.importRestored();
      const t5 = performance.now();
      if (t5 - t0 > SLOW_APPLY_MS) {
        this.opts.log.info(`data plane: apply ${generation} took ${(t5 - t0).toFixed(0)} ms: ` +
          `${ids.length} service(s) changed of ${this.applied.size}; compile ${(t1 - t0).toFixed(1)} ms, ` +
          `next hops ${(t2 - t1).toFixed(1)} ms (${toResolve.length}), guard ${(t3 - t2).toFixed(1)} ms, ` +
          `filter+snapshot ${(t4 - t3).toFixed(1)} ms, workers ${(t5 - t4).toFixed(1)} ms`);
      }
    } catch (err) {
      // Start over from the whole model next time: the sets, the filter and the workers' services
      // are then rebuilt from scratch rather than patched on a state that may be half-applied.
      this.resync = true;
      throw err;
    }
  }

  /** What one service puts into the data plane. */
  private compile(svc: ServiceEntry): AppliedService {
    const sched = this.schedulerFor(svc);
    // The model lists real servers newest first (the kernel's list); schedulers take them in
    // the order they were added.
    sched.scheduler.update(svc.dests.map((d) => d.slot).reverse());
    const persistent = (svc.flags & SVC_F_PERSISTENT) !== 0;
    const compiled: CompiledService = {
      slot: svc.id, protocol: svc.fwmark !== 0 ? 0 : svc.protocol, addr: svc.addr, port: svc.port, fwmark: svc.fwmark,
      persistTimeout: persistent ? svc.timeout : 0, netmask: svc.netmask, schedIndex: svc.id, schedFlags: svc.flags & SVC_F_SCHED_MASK,
      destCount: svc.dests.length, onePacket: (svc.flags & SVC_F_ONEPACKET) !== 0, active: true,
    };
    const a: AppliedService = { compiled, worker: null, addr: svc.addr, vipTuples: [], natTuples: [], natSources: [], slots: svc.dests.map((d) => d.slot) };
    if (svc.fwmark !== 0) return a;
    a.worker = {
      slot: svc.id, protocol: svc.protocol, addr: svc.addr, port: svc.port, persistent,
      persistTimeoutMs: svc.timeout * 1000, netmask: svc.netmask, onePacket: (svc.flags & SVC_F_ONEPACKET) !== 0,
      scheduler: { name: sched.name, flags: sched.flags, shared: sched.scheduler.shared },
    };
    const proto = svc.protocol === 17 ? 'udp' : 'tcp';
    // Port 0 (persistent, all ports) too: the guard keeps it in its *_any sets (guard.ts).
    a.vipTuples.push(`${intToIpv4(svc.addr)} ${proto} ${svc.port}`);
    for (const d of svc.dests) {
      if (d.fwd !== ForwardMethod.MASQ) continue;
      a.natSources.push(d.addr);
      a.natTuples.push(`${intToIpv4(d.addr)} ${proto} ${d.port || svc.port}`);
    }
    return a;
  }

  private contribute(a: AppliedService): void {
    for (const t of a.vipTuples) this.guardServices.add(t);
    for (const t of a.natTuples) this.guardNat.add(t);
    for (const n of a.natSources) {
      this.guardSources.add(n);
      this.filterSources.add(n);
    }
    if (a.worker) {
      this.filterDestinations.add(a.addr);
      const k = `${a.compiled.protocol}/${a.addr | 0}`;
      const slots = this.addrSlots.get(k);
      if (slots) slots.add(a.compiled.slot);
      else this.addrSlots.set(k, new Set([a.compiled.slot]));
    }
  }

  private withdraw(a: AppliedService): void {
    for (const t of a.vipTuples) this.guardServices.remove(t);
    for (const t of a.natTuples) this.guardNat.remove(t);
    for (const n of a.natSources) {
      this.guardSources.remove(n);
      this.filterSources.remove(n);
    }
    if (a.worker) {
      this.filterDestinations.remove(a.addr);
      const k = `${a.compiled.protocol}/${a.addr | 0}`;
      const slots = this.addrSlots.get(k);
      slots?.delete(a.compiled.slot);
      if (slots?.size === 0) this.addrSlots.delete(k);
    }
  }

  /** The guard's sets follow the counted elements: only what changed goes to nft. */
  private async updateGuard(): Promise<void> {
    if (this.guardResync) {
      await this.guard.setTuples(this.guardServices.keys().map(tupleOf), this.guardNat.keys().map(tupleOf));
      for (const c of [this.guardServices, this.guardNat, this.guardSources]) c.commitAll();
      this.guardResync = false;
      return;
    }
    const svc = this.guardServices.delta();
    const nat = this.guardNat.delta();
    const src = this.guardSources.delta();
    try {
      await this.guard.update({
        addServices: svc.add.map(tupleOf), delServices: svc.del.map(tupleOf),
        addNatReplies: nat.add.map(tupleOf), delNatReplies: nat.del.map(tupleOf),
        addNatSources: src.add.map((a) => intToIpv4(a)), delNatSources: src.del.map((a) => intToIpv4(a)),
      });
    } catch (err) {
      this.guardResync = true;
      throw err;
    }
    this.guardServices.commit(svc);
    this.guardNat.commit(nat);
    this.guardSources.commit(src);
  }

  /** Rebuilds the BPF filter when the set of addresses changed; true when the program did. */
  private updateFilter(): boolean {
    const d = this.filterDestinations.delta();
    const s = this.filterSources.delta();
    this.filterDestinations.commit(d);
    this.filterSources.commit(s);
    if (d.add.length + d.del.length + s.add.length + s.del.length === 0 && this.lastFilter.length > 1) return false;
    const destinations = this.filterDestinations.keys();
    const sources = this.filterSources.keys();
    const filter = destinations.length + sources.length > 0 ? buildSelectFilter(destinations, sources) : [DROP_ALL];
    this.lastHosts = { destinations, sources };
    this.xdp?.setHosts(destinations, sources);
    if (sameFilter(filter, this.lastFilter)) return false;
    this.lastFilter = filter;
    return true;
  }

  private schedulerFor(svc: ServiceEntry): SchedulerState {
    const flags = svc.flags & SVC_F_SCHED_MASK;
    const current = this.schedulers.get(svc.id);
    if (current && current.name === svc.scheduler && current.flags === flags && svc.dests.length <= current.maxDests) return current;
    let maxDests = 64;
    while (maxDests < svc.dests.length * 2) maxDests *= 2;
    const scheduler = getSchedulerFactory(svc.scheduler).create(this.model.destTable, flags, maxDests);
    const state = { name: svc.scheduler, flags, maxDests, scheduler };
    this.schedulers.set(svc.id, state);
    return state;
  }

  // ---- interfaces and next hops ----------------------------------------------------------------

  private async chooseInterfaces(): Promise<InterfaceInfo[]> {
    const all = await this.netinfo.interfaces();
    if (this.opts.ifaces.length > 0) {
      return this.opts.ifaces.map((name) => {
        const found = all.find((i) => i.ifname === name);
        if (!found) throw new DataPlaneError(`--iface ${name}: no such interface in this network namespace (have: ${all.map((i) => i.ifname).join(', ')})`);
        if (found.loopback) throw new DataPlaneError(`--iface ${name}: a loopback interface carries no traffic to forward`);
        return found;
      });
    }
    return this.tapRule(all);
  }

  /** Which of `all` to capture on: the --iface ones that exist now, or the tap rule. */
  private tapRule(all: readonly InterfaceInfo[]): InterfaceInfo[] {
    if (this.opts.ifaces.length > 0) return all.filter((i) => this.opts.ifaces.includes(i.ifname) && !i.loopback);
    // docs/architecture.md, "Which interfaces": every interface that is up and not loopback, the
    // BPF filter selecting what uvs takes, except those whose frames an upper device receives
    // again (bridge ports, bond slaves, the lower device of a passthru macvlan): tapping both
    // forwarded each frame twice.
    const { chosen, skipped } = captureInterfaces(all);
    for (const s of skipped) this.opts.log.info(`data plane: not capturing on ${s.ifname}: ${s.why}`);
    return chosen;
  }

  /** Periodic refresh: neighbours change MACs, and unresolved ones may answer now. */
  private async refreshNextHops(): Promise<void> {
    const d = this.model.destTable;
    await this.resolver.refresh((slot) => (d.get(slot, DestField.FLAGS) & DestFlag.IN_USE) !== 0);
  }
}

const DROP_ALL: BpfInsn = stmt(BPF_RET | BPF_K, 0);

/** An apply that takes longer than this is logged with its stages (a restore of thousands of
 *  lines is one apply; a single change at 10,000 services takes a few ms). UVS_SLOW_APPLY_MS=0
 *  logs every apply, for profiling. */
const SLOW_APPLY_MS = Number(process.env["UVS_SLOW_APPLY_MS"] ?? 1000);

/** "10.0.0.1 tcp 80" → GuardTuple (the counted keys of the guard's sets). */
function tupleOf(key: string): GuardTuple {
  const [addr, protocol, port] = key.split(' ');
  return { addr: addr!, protocol: protocol as 'tcp' | 'udp', port: Number(port) };
}

/**
 * Reference-counted set elements: several services share a VIP (filter) or a NAT real server
 * (nat_sources). `delta()` says which keys appeared or went away since the last `commit()`,
 * looking only at the keys touched meanwhile, so an apply costs O(what changed).
 */
class Counted<K> {
  private readonly counts = new Map<K, number>();
  private readonly applied = new Set<K>();
  private readonly touched = new Set<K>();

  add(k: K): void {
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    this.touched.add(k);
  }

  remove(k: K): void {
    const n = (this.counts.get(k) ?? 0) - 1;
    if (n <= 0) this.counts.delete(k);
    else this.counts.set(k, n);
    this.touched.add(k);
  }

  keys(): K[] {
    return [...this.counts.keys()];
  }

  delta(): { add: K[]; del: K[] } {
    const add: K[] = [];
    const del: K[] = [];
    for (const k of this.touched) {
      const want = this.counts.has(k);
      if (want !== this.applied.has(k)) (want ? add : del).push(k);
    }
    return { add, del };
  }

  commit(d: { add: K[]; del: K[] }): void {
    for (const k of d.add) this.applied.add(k);
    for (const k of d.del) this.applied.delete(k);
    this.touched.clear();
  }

  /** Everything counted is now applied (after a whole-set rewrite). */
  commitAll(): void {
    this.applied.clear();
    for (const k of this.counts.keys()) this.applied.add(k);
    this.touched.clear();
  }
}

export { WORKER_STAT_NAMES };
