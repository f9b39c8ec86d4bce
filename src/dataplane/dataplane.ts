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

import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { loadNative, type BpfInsn, type RingOptions } from '../native/addon';
import { buildHostFilter, BPF_RET, BPF_K, stmt } from './bpf';
import { KernelGuard, type GuardTuple } from './guard';
import { NetInfo, type InterfaceInfo } from './netinfo';
import { NextHopTable } from '../tables/next-hop';
import { ClientHopTable } from '../tables/client-hops';
import { refreshClientRoutes } from './client-routes';
import { getDefense, setDefense, type ConnDefense } from '../conn/defense';
import { CounterSum, WorkerCounters, WORKER_STAT_NAMES, type CounterLayout } from './counters';
import type { WorkerInit, WorkerService, ToWorker, FromWorker } from './worker';
import { PcapWorker } from './pcap-loop';
import { ConnTable, connNowMs } from '../conn/table';
import { connStateName } from '../conn/tcp-state';
import { ForwardMethod, DestFlag, DestField } from '../tables/dest-table';
import { ServiceSnapshot, type CompiledService } from '../service/snapshot';
import { SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED_MASK, TunnelType, type DestConfig, type ServiceModel, type ServiceEntry } from '../service/model';
import type { ConnLister, ConnRecord } from '../service/conn-list';
import { getSchedulerFactory, type Scheduler } from '../sched/index';
import { DROP_REASON_COUNT, dropReasonName } from '../packet/drop';
import { intToIpv4, ipv4ToInt } from '../packet/addr';

import type { Logger } from '../runtime/log';
import { UvsError } from '../runtime/errors';

export interface DataPlaneOptions {
  model: ServiceModel;
  /** Worker threads (uvsd --workers); default: the number of cores. Must be 1 with io 'pcap'. */
  workers: number;
  /** Packet I/O: AF_PACKET rings in worker threads (default), or libpcap on the main thread. */
  io?: 'ring' | 'pcap';
  /** Capture interfaces (uvsd --iface); empty: every interface that is up and not loopback. */
  ifaces: string[];
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

interface WorkerHandle {
  id: number;
  worker: Worker | PcapWorker | null;
  counters: WorkerCounters;
  appliedGeneration: number;
  restarts: number;
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
const APPLY_TIMEOUT_MS = 5000;
const NEXT_HOP_REFRESH_MS = 5000;
/** Routes toward clients for NAT replies of entries without their own next hop (client-hops.ts). */
const CLIENT_HOP_RECORDS = 256;

export class DataPlane {
  readonly conns: ConnTable;
  readonly nextHops: NextHopTable;
  /** NAT: routes toward clients, the fallback for entries without their own next hop. */
  readonly clientHops: ClientHopTable;
  readonly counters: CounterSum;
  readonly connLister: ConnLister;
  private readonly model: ServiceModel;
  private readonly opts: DataPlaneOptions;
  private readonly netinfo: NetInfo;
  private readonly guard: KernelGuard;
  private readonly layout: CounterLayout;
  private readonly handles: WorkerHandle[] = [];
  private readonly schedulers = new Map<number, SchedulerState>();
  /** Next hops resolved per DestTable slot: the address they were resolved for. */
  private readonly resolved = new Map<number, number>();
  private ifaces: InterfaceInfo[] = [];
  private generation = 0;
  private lastSnapshot: { snapshot: ServiceSnapshot; services: WorkerService[] } | null = null;
  private lastFilter: BpfInsn[] = [DROP_ALL];
  /** What lastFilter selects, for the pcap backend, which compiles its own filter. */
  private lastHosts: { destinations: number[]; sources: number[] } = { destinations: [], sources: [] };
  private applying: Promise<void> = Promise.resolve();
  private refreshTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly waiters = new Set<() => void>();

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
    this.layout = { maxServices: this.model.maxServices, maxDests: this.model.destTable.capacity };
    for (let id = 0; id < opts.workers; id++) {
      this.handles.push({ id, worker: null, counters: new WorkerCounters(this.layout), appliedGeneration: 0, restarts: 0 });
    }
    this.counters = new CounterSum(() => this.handles.map((h) => h.counters));
    this.connLister = { list: (limit) => this.listConnections(limit) };
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
    await this.guard.install();
    await Promise.all(this.handles.map((h) => this.spawn(h)));
    await this.apply();
    // Logged once everything runs: scripts and tests wait for this line.
    const where = this.opts.io === 'pcap' ? 'libpcap on the main thread' : `${this.handles.length} worker(s)`;
    this.opts.log.info(`data plane: ${where} on ${this.ifaces.map((i) => i.ifname).join(', ') || 'no interface'}`);
    const clientRoutes = (): void => {
      refreshClientRoutes(this.clientHops, this.netinfo, this.ifaces, this.opts.log).catch((err: Error) => this.opts.log.warn(`client routes: ${err.message}`));
    };
    clientRoutes();
    this.refreshTimer = setInterval(() => {
      this.refreshNextHops().catch((err: Error) => this.opts.log.warn(`next-hop refresh: ${err.message}`));
      clientRoutes();
    }, NEXT_HOP_REFRESH_MS);
    this.refreshTimer.unref();
  }

  /** Applies the current model; calls are serialised, each resolves once the workers run it. */
  apply(): Promise<void> {
    const next = this.applying.then(() => this.applyNow());
    this.applying = next.catch(() => undefined);
    return next;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
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
    await this.guard.remove();
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
      ifaces: this.ifaces.map((i) => ({ name: i.ifname, index: i.ifindex, mtu: i.mtu })),
      fanoutGroupBase: (process.pid * 16) & 0xffff,
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
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          ready = true;
          if (this.lastSnapshot) this.sendSnapshot(h);
          resolve();
        } else if (msg.type === 'applied') {
          h.appliedGeneration = msg.generation;
          for (const w of this.waiters) w();
        } else if (msg.type === 'error') {
          this.opts.log.error(`worker ${h.id}: ${msg.message}`);
        }
      });
      worker.on('error', (err: Error) => {
        this.opts.log.error(`worker ${h.id} failed: ${err.message}`);
        if (!ready) reject(new DataPlaneError(`worker ${h.id} could not start: ${err.message}`));
      });
      worker.on('exit', (code) => {
        h.worker = null;
        if (this.stopping || !ready) return;
        // The connection table, counters and scheduler state are in shared memory: a new worker
        // with the same id takes over the dead one's entries.
        h.restarts++;
        this.opts.log.warn(`worker ${h.id} exited (code ${code}); restarting it (restart #${h.restarts})`);
        setTimeout(() => {
          if (!this.stopping) this.spawn(h).catch((err: Error) => this.opts.log.error(err.message));
        }, 100);
      });
    });
  }

  private sendSnapshot(h: WorkerHandle): void {
    if (!h.worker || !this.lastSnapshot) return;
    h.worker.postMessage({ type: 'filter', filter: this.lastFilter, hosts: this.lastHosts } satisfies ToWorker);
    h.worker.postMessage({ type: 'snapshot', snapshot: this.lastSnapshot.snapshot.buffer, services: this.lastSnapshot.services } satisfies ToWorker);
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

  private async applyNow(): Promise<void> {
    const services = this.model.list();
    const compiled: CompiledService[] = [];
    const forWorkers: WorkerService[] = [];
    const vipTuples: GuardTuple[] = [];
    const natTuples: GuardTuple[] = [];
    const vips = new Set<number>();
    const natSources = new Set<number>();
    const liveIds = new Set<number>();

    await this.resolveNextHops(services);

    for (const svc of services) {
      liveIds.add(svc.id);
      const sched = this.schedulerFor(svc);
      // The model lists real servers newest first (the kernel's list); schedulers take them in
      // the order they were added.
      sched.scheduler.update(svc.dests.map((d) => d.slot).reverse());
      const persistent = (svc.flags & SVC_F_PERSISTENT) !== 0;
      compiled.push({
        slot: svc.id, protocol: svc.fwmark !== 0 ? 0 : svc.protocol, addr: svc.addr, port: svc.port, fwmark: svc.fwmark,
        persistTimeout: persistent ? svc.timeout : 0, netmask: svc.netmask, schedIndex: svc.id, schedFlags: svc.flags & SVC_F_SCHED_MASK,
        destCount: svc.dests.length, onePacket: (svc.flags & SVC_F_ONEPACKET) !== 0,
        active: this.opts.serviceActive?.(svc.addr) ?? true,
      });
      if (svc.fwmark !== 0) continue;
      forWorkers.push({
        slot: svc.id, protocol: svc.protocol, addr: svc.addr, port: svc.port, persistent,
        persistTimeoutMs: svc.timeout * 1000, netmask: svc.netmask, onePacket: (svc.flags & SVC_F_ONEPACKET) !== 0,
        scheduler: { name: sched.name, flags: sched.flags, shared: sched.scheduler.shared },
      });
      vips.add(svc.addr);
      const proto = svc.protocol === 17 ? 'udp' : 'tcp';
      if (svc.port !== 0) vipTuples.push({ addr: intToIpv4(svc.addr), protocol: proto, port: svc.port });
      for (const d of svc.dests) {
        if (d.fwd === ForwardMethod.MASQ) {
          natSources.add(d.addr);
          natTuples.push({ addr: intToIpv4(d.addr), protocol: proto, port: d.port || svc.port });
        }
      }
    }
    for (const id of [...this.schedulers.keys()]) if (!liveIds.has(id)) this.schedulers.delete(id);

    await this.guard.setTuples(dedupe(vipTuples), dedupe(natTuples));
    this.lastFilter = vips.size + natSources.size > 0 ? buildHostFilter({ destinations: [...vips], sources: [...natSources] }) : [DROP_ALL];
    this.lastHosts = { destinations: [...vips], sources: [...natSources] };
    const generation = ++this.generation;
    const snapshot = ServiceSnapshot.build(generation, this.model.maxServices, compiled);
    this.lastSnapshot = { snapshot, services: forWorkers };
    for (const h of this.handles) this.sendSnapshot(h);
    await this.waitApplied(generation);
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
    // docs/architecture.md, "Which interfaces": with the VIP on lo or nowhere, every interface that is up and not loopback, the
    // BPF filter selecting what uvs takes.
    return all.filter((i) => i.up && !i.loopback);
  }

  /** Resolves the next hop of every real server that has none yet (or whose address changed). */
  private async resolveNextHops(services: ServiceEntry[]): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const svc of services) {
      for (const d of svc.dests) {
        if (this.resolved.get(d.slot) === d.addr && (this.nextHops.flags(d.slot) & 1) !== 0) continue;
        jobs.push(this.resolveOne(d.slot, d.addr, d.fwd));
      }
    }
    await Promise.all(jobs);
  }

  private async resolveOne(slot: number, addr: number, fwd: ForwardMethod): Promise<void> {
    const rip = intToIpv4(addr);
    try {
      const route = await this.netinfo.route(rip);
      const egress = this.ifaces.findIndex((i) => i.ifname === route.ifname);
      if (egress < 0) {
        this.nextHops.clear(slot);
        this.opts.log.error(`real server ${rip}: reached through ${route.ifname}, which uvs does not capture on (add --iface ${route.ifname})`);
        return;
      }
      const iface = this.ifaces[egress]!;
      if (route.gateway && fwd === ForwardMethod.DROUTE) {
        this.opts.log.error(`real server ${rip}: not on the director's L2 segment (route via ${route.gateway} on ${route.ifname}); ` +
          'DR needs it on-link, so its packets are dropped (NOT_ON_LINK): use -i (tunnel) or -m (NAT)');
      }
      const hop = route.gateway ?? rip;
      const mac = await this.netinfo.neighbourMac(hop, route.ifname);
      if (!mac) {
        this.nextHops.clear(slot);
        this.opts.log.warn(`real server ${rip}: no ARP answer from ${hop} on ${route.ifname}; will retry`);
        return;
      }
      this.nextHops.set(slot, {
        dstMac: mac, srcMac: iface.mac, egress, mtu: iface.mtu,
        srcAddr: route.prefsrc ? ipv4ToInt(route.prefsrc) : 0, viaGateway: route.gateway !== null,
      });
      this.resolved.set(slot, addr);
    } catch (err) {
      this.nextHops.clear(slot);
      this.opts.log.warn(`real server ${rip}: cannot resolve the next hop: ${(err as Error).message}`);
    }
  }

  /** Periodic refresh: neighbours change MACs, and unresolved ones may answer now. */
  private async refreshNextHops(): Promise<void> {
    const d = this.model.destTable;
    const jobs: Promise<void>[] = [];
    for (const svc of this.model.list()) {
      for (const dest of svc.dests) {
        if ((d.get(dest.slot, DestField.FLAGS) & DestFlag.IN_USE) === 0) continue;
        jobs.push(this.resolveOne(dest.slot, dest.addr, dest.fwd));
      }
    }
    await Promise.all(jobs);
  }

  // ---- listings ---------------------------------------------------------------------------------

  private listConnections(limit: number): ConnRecord[] {
    const out: ConnRecord[] = [];
    for (const c of this.conns.list(connNowMs())) {
      if (out.length >= limit) break;
      out.push({
        protocol: c.protocol === 17 ? 'UDP' : 'TCP',
        caddr: c.caddr >>> 0, cport: c.cport, vaddr: c.vaddr >>> 0, vport: c.vport, daddr: c.daddr >>> 0, dport: c.dport,
        state: connStateName(c.protocol, c.state, c.template),
        expiresMs: c.expiresMs,
      });
    }
    return out;
  }
}

const DROP_ALL: BpfInsn = stmt(BPF_RET | BPF_K, 0);

function dedupe(tuples: GuardTuple[]): GuardTuple[] {
  const seen = new Set<string>();
  return tuples.filter((t) => {
    const k = `${t.addr}/${t.protocol}/${t.port}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}


export { WORKER_STAT_NAMES };
