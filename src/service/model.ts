// The service model: virtual services and their real servers, as IPVS keeps them.
//
// This is the control plane's table, changed by uvsadm commands and by config reloads. Every
// operation validates completely before it changes anything, so a refused command leaves the
// model exactly as it was (the kernel's ip_vs_ctl.c does the same: it looks everything up and
// checks every argument before it links a service or a destination).
//
// Each real server owns one DestTable slot for its whole life; the slot index is its stable id,
// the cells the data plane and the schedulers read. ActiveConn/InActConn/PersistConn come from
// that slot's counters, which the connection table maintains with Atomics.
//
// Errors carry the errno the kernel would return (EEXIST, ESRCH, ENOENT, ERANGE, EINVAL, ...) and
// the libipvs operation name, so uvsadm can print exactly the message ipvsadm prints for them
// (libipvs's ipvs_strerror table maps (function, errno) to a message).

import { SCHEDULER_NAMES } from '../sched/index';
import { DEST_SLOT_CELLS, DestField, DestFlag, DestTable, ForwardMethod } from '../tables/dest-table';
import { intToIpv4 } from '../packet/addr';
import { UvsError } from '../runtime/errors';

import { IPPROTO_TCP, IPPROTO_UDP } from '../packet/ipv4';

/** IP_VS_SVC_F_* (include/uapi/linux/ip_vs.h). */
export const SVC_F_PERSISTENT = 0x0001;
export const SVC_F_ONEPACKET = 0x0004;
export const SVC_F_SCHED1 = 0x0008;
export const SVC_F_SCHED2 = 0x0010;
export const SVC_F_SCHED3 = 0x0020;
export const SVC_F_SCHED_MASK = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3;
/** Flags a user may set; the kernel ignores the others (HASHED is internal). */
const SVC_F_USER = SVC_F_PERSISTENT | SVC_F_ONEPACKET | SVC_F_SCHED_MASK;

/** IP_VS_CONN_F_TUNNEL_TYPE_* */
export const enum TunnelType {
  IPIP = 0,
  GUE = 1,
  GRE = 2,
}

/** IP_VS_TUNNEL_ENCAP_FLAG_*: 0 = no checksum. */
export const TUN_F_CSUM = 1 << 0;
export const TUN_F_REMCSUM = 1 << 1;

/**
 * A bare `-p`: ipvsadm 1.31's parse_timeout() returns IPVS_SVC_PERSISTENT_TIMEOUT, which
 * libipvs/libipvs.h defines as (6*60). ipvsadm(8) says 300, which is wrong. keepalived's
 * `persistence_timeout` with no value uses the same constant.
 */
export const DEFAULT_PERSISTENT_TIMEOUT = 360;

/** The schedulers uvs runs (src/sched: IPVS's rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos).
 *  A service naming any other is refused with ENOENT, as the kernel's ip_vs_scheduler_get() fails
 *  for a module that does not exist. */
export const KNOWN_SCHEDULERS: readonly string[] = SCHEDULER_NAMES;
/** Persistence engines: the kernel has only "sip" (ip_vs_pe_sip.c). */
export const KNOWN_PERSISTENCE_ENGINES: readonly string[] = ['sip'];

/** How a virtual service is identified: by fwmark, or by protocol + VIP + port. */
export interface ServiceKey {
  /** Firewall mark, 0 for a TCP/UDP service. */
  fwmark: number;
  /** 4 or 6. IPv6 is parsed but not yet served (EOPNOTSUPP). */
  af: 4 | 6;
  /** IPPROTO_TCP / IPPROTO_UDP; IPPROTO_TCP for fwmark services (ipvsadm sets it so). */
  protocol: number;
  /** IPv4 address, host byte order, unsigned (0 for fwmark services). */
  addr: number;
  /** Port in host byte order (0 for fwmark services). */
  port: number;
}

export interface ServiceConfig extends ServiceKey {
  scheduler: string;
  /** SVC_F_* bits. */
  flags: number;
  /** Persistence timeout in seconds (meaningful with SVC_F_PERSISTENT). */
  timeout: number;
  /** Persistence granularity, IPv4 netmask, host byte order, unsigned; 0xffffffff by default. */
  netmask: number;
  /** Persistence engine name, '' for none. */
  peName: string;
}

export interface DestKey {
  af: 4 | 6;
  addr: number;
  port: number;
}

export interface DestConfig extends DestKey {
  fwd: ForwardMethod;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: TunnelType;
  /** GUE destination port, host byte order; 0 = n/a. */
  tunPort: number;
  /** TUN_F_* bits. */
  tunFlags: number;
}

/** One real server as listed: its configuration, its slot and the slot's counters. */
export interface DestEntry extends DestConfig {
  slot: number;
  activeConns: number;
  inactConns: number;
  persistConns: number;
}

export interface ServiceEntry extends ServiceConfig {
  /** Stable small integer id of the service (its index in the compiled service table). */
  id: number;
  /** Real servers in IPVS's list order: the most recently added first (ipvsadm sorts for display). */
  dests: DestEntry[];
}

/** --set tcp tcpfin udp, in seconds. */
export interface Timeouts {
  tcp: number;
  tcpFin: number;
  udp: number;
}

/** IPVS's defaults: TCP ESTABLISHED 15 min, FIN_WAIT 2 min, UDP 5 min (ip_vs_proto_tcp.c, _udp.c). */
export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = { tcp: 900, tcpFin: 120, udp: 300 };

/** The libipvs function a command maps to; selects the message in ipvs_strerror's table. */
export type IpvsOp =
  | 'add_service' | 'update_service' | 'del_service' | 'zero_service'
  | 'add_dest' | 'update_dest' | 'del_dest' | 'set_timeout' | 'flush'
  | 'get_service' | 'start_daemon' | 'stop_daemon';

export type Errno =
  | 'EEXIST' | 'ESRCH' | 'ENOENT' | 'ERANGE' | 'EINVAL' | 'ENOMEM' | 'EOPNOTSUPP' | 'EAFNOSUPPORT' | 'ENODEV';

/** A refused model operation, as the kernel would refuse it. */
export class IpvsError extends UvsError {
  constructor(readonly op: IpvsOp, readonly errno: Errno, detail: string) {
    super('UVS_ERR_IPVS', `${op}: ${errno}: ${detail}`);
  }
}

/** Canonical string of a service key (control plane only; never on the packet path). */
export function serviceKeyString(k: ServiceKey): string {
  return k.fwmark !== 0 ? `fwm:${k.af}:${k.fwmark}` : `${k.protocol}:${k.addr >>> 0}:${k.port}`;
}

/** A real server's key within its service: address and port in one exact number (48 bits), so
 *  a table of 100,000 real servers keeps no key strings. */
function destKeyOf(k: DestKey): number {
  // A port that is not 16 bits (a malformed request; additions refuse it first) matches nothing.
  if (!isU16(k.port)) return NaN;
  return (k.addr >>> 0) * 65536 + k.port;
}

/** A real server's record: its configuration and its slot in one object (a table of 100,000 real
 *  servers keeps 100,000 of these). Replaced, never changed in place: a check copy shares them. */
interface DestState extends Readonly<DestConfig> {
  readonly slot: number;
}

interface ServiceState {
  id: number;
  config: ServiceConfig;
  /** Insertion order, like the kernel's svc->destinations list. */
  dests: Map<number, DestState>;
  /** The service as list() hands it out, built at the first listing after its last change
   *  (null: changed since, or never listed). Its connection counters are refreshed at each list(). */
  listed: ServiceEntry | null;
}

/** A real server deleted while connections still referred to it: kept, unavailable, until its
 *  counters reach zero (the kernel's dest trash, ip_vs_trash_put_dest / ip_vs_dest_trash_expire). */
interface TrashedDest {
  serviceKey: string;
  destKey: number;
  slot: number;
}

export interface ServiceModelOptions {
  /** DestTable to use; created with `destCapacity` slots when absent. */
  destTable?: DestTable;
  destCapacity?: number;
  /** Highest number of virtual services (service ids are 0..maxServices-1). */
  maxServices?: number;
}

export class ServiceModel {
  readonly destTable: DestTable;
  readonly maxServices: number;
  private readonly services = new Map<string, ServiceState>();
  /** The same services by id (the data plane applies changes per service id). */
  private readonly byId = new Map<number, ServiceState>();
  /** 1 where a service id is taken; ids below idHint are all taken (lowest free id in O(1)
   *  amortised, so adding n services costs O(n)). */
  private readonly usedIds: Uint8Array;
  private idHint = 0;
  /** Service id → the generation of its last change (added, edited, deleted, real servers). */
  private readonly changedAt = new Map<number, number>();
  /** Inside batch(): listeners hear of the changes once, at the end. */
  private batchDepth = 0;
  private batchChanged = false;
  private readonly trash: TrashedDest[] = [];
  private timeouts: Timeouts = { ...DEFAULT_TIMEOUTS };
  /** Bumped after every successful change, so a compiler knows when to build a new snapshot. */
  generation = 0;
  private readonly changeListeners: (() => void)[] = [];
  /** list()'s array of services, kept until a service is added, edited or deleted or a real
   *  server changes (null: rebuilt at the next list(), from each service's `listed`). */
  private listing: ServiceEntry[] | null = null;
  /**
   * What the running data plane can forward, checked when a real server is added or edited
   * (uvsd sets it; null = anything the kernel would accept, as with --io none). Throws IpvsError.
   */
  destPolicy: ((op: IpvsOp, dest: DestConfig) => void) | null = null;
  /**
   * A check-only copy (checkCopy()): every command is checked and recorded as on the live model,
   * but the shared DestTable is only read (connection counters), never written; slots are
   * counted, not taken. null on a live model.
   */
  private check: { freeSlots: number; added: DestState | null } | null = null;

  constructor(options: ServiceModelOptions = {}) {
    this.destTable = options.destTable ?? new DestTable(options.destCapacity ?? 4096);
    this.maxServices = options.maxServices ?? 1024;
    if (!Number.isInteger(this.maxServices) || this.maxServices < 1) throw new RangeError(`ServiceModel: bad maxServices ${this.maxServices}`);
    this.usedIds = new Uint8Array(this.maxServices);
  }

  /**
   * A copy to try a batch on first (-R is all or nothing): it answers every command exactly as
   * this model would (same checks, same errno, the same caps counted), shares the configuration
   * objects (nothing here mutates them) and costs O(services) to make, not a rebuild of the
   * table. It writes nothing shared: the live DestTable is only read, for connection counts.
   */
  checkCopy(): ServiceModel {
    const c = new ServiceModel({ destTable: this.destTable, maxServices: this.maxServices });
    c.check = { freeSlots: this.destTable.free, added: null };
    for (const [key, s] of this.services) {
      const copy: ServiceState = { id: s.id, config: s.config, dests: new Map(s.dests), listed: null };
      c.services.set(key, copy);
      c.byId.set(s.id, copy);
    }
    c.usedIds.set(this.usedIds);
    c.idHint = this.idHint;
    c.trash.push(...this.trash);
    c.timeouts = { ...this.timeouts };
    c.destPolicy = this.destPolicy;
    // Changes are never announced: the copy is always inside a batch.
    c.batchDepth = 1;
    return c;
  }

  // ---- queries -------------------------------------------------------------------------------

  /**
   * Services in the order they were added; ipvsadm's listing sorts them itself.
   *
   * Every /metrics scrape and listing asks for this, and building 100,000 real servers' entries
   * holds the main thread for over 100 ms. So the entries are kept: a service's entry is built
   * again only after it changed (changed() drops it), and a call on an unchanged table only
   * reads the connection counters again, into the kept entries. The entries are shared between
   * calls: a caller reads them and copies what it keeps (the array itself is the caller's).
   */
  list(): ServiceEntry[] {
    let listing = this.listing;
    if (listing === null) {
      listing = [];
      for (const s of this.services.values()) listing.push(s.listed ??= this.entry(s));
      this.listing = listing;
    }
    // Kept entries (and those built just now: it costs little) read the counters as they are now.
    this.refreshCounters(listing);
    return listing.slice();
  }

  /**
   * Builds the kept list() entries of up to about `maxDests` real servers' services that have
   * none (at least one service), so that the first listing after a big change (a restore, a
   * reload) does not build them all in one go: uvsd calls this in slices after every change.
   * Returns true when every service has its entry.
   */
  warmListing(maxDests: number): boolean {
    if (this.listing !== null || this.check !== null) return true;
    let built = 0;
    for (const s of this.services.values()) {
      if (s.listed !== null) continue;
      if (built >= maxDests) return false;
      s.listed = this.entry(s);
      built += s.dests.size + 1;
    }
    return true;
  }

  /** The connection counters of kept entries, read again from their slots. */
  private refreshCounters(listing: readonly ServiceEntry[]): void {
    const cells = this.destTable.cells;
    // Indexed loops and the cells read here, not through DestTable.load: the first call runs
    // before V8 has compiled this loop, and calls are what cost most until then.
    for (let i = 0; i < listing.length; i++) {
      const dests = listing[i]!.dests;
      for (let k = 0; k < dests.length; k++) {
        const d = dests[k]!;
        const at = d.slot * DEST_SLOT_CELLS;
        d.activeConns = Atomics.load(cells, at + DestField.ACTIVE);
        d.inactConns = Atomics.load(cells, at + DestField.INACTIVE);
        d.persistConns = Atomics.load(cells, at + DestField.PERSIST);
      }
    }
  }

  get(key: ServiceKey, op: IpvsOp = 'get_service'): ServiceEntry {
    return this.entry(this.find(key, op));
  }

  /** The service with this id as listed, or null when no service has it. */
  getById(id: number): ServiceEntry | null {
    const s = this.byId.get(id);
    return s ? this.entry(s) : null;
  }

  /** Every service id and real-server slot in use (statistics tracking), without building the
   *  listing's objects. */
  ids(): { services: number[]; slots: number[] } {
    const services: number[] = [];
    const slots: number[] = [];
    for (const s of this.services.values()) {
      services.push(s.id);
      for (const d of s.dests.values()) slots.push(d.slot);
    }
    return { services, slots };
  }

  /** The slots of a service's real servers, or null when no service has this id (statistics
   *  tracking: nothing is built for a listing). */
  slotsOf(id: number): number[] | null {
    const s = this.byId.get(id);
    if (!s) return null;
    const slots: number[] = [];
    for (const d of s.dests.values()) slots.push(d.slot);
    return slots;
  }

  /** Number of virtual services. */
  get size(): number {
    return this.services.size;
  }

  /**
   * The ids of the services changed (added, edited, deleted, real servers added/edited/deleted)
   * after generation `since`, and the generation now: a consumer that remembers `generation`
   * and asks again gets exactly what changed in between. A deleted service's id is listed too
   * (getById answers null, or the service that took the id since).
   */
  changedSince(since: number): { generation: number; ids: number[] } {
    const ids: number[] = [];
    for (const [id, gen] of this.changedAt) if (gen > since) ids.push(id);
    return { generation: this.generation, ids };
  }

  has(key: ServiceKey): boolean {
    return this.services.has(serviceKeyString(key));
  }

  getTimeouts(): Timeouts {
    return { ...this.timeouts };
  }

  /** The configuration only (no slots, no counters): what a reload diffs against. */
  exportConfig(): ModelConfig {
    const services: ModelServiceConfig[] = [];
    for (const s of this.services.values()) {
      services.push({ ...s.config, dests: [...s.dests.values()].map(destConfigOf) });
    }
    return { services, timeouts: { ...this.timeouts } };
  }

  // ---- service commands ----------------------------------------------------------------------

  addService(config: ServiceConfig): ServiceEntry {
    return this.entry(this.insertService(config));
  }

  private insertService(config: ServiceConfig): ServiceState {
    const op: IpvsOp = 'add_service';
    checkFamily(op, config.af);
    const key = serviceKeyString(config);
    if (this.services.has(key)) throw new IpvsError(op, 'EEXIST', `service ${describeService(config)} exists`);
    checkServiceConfig(op, config);
    const id = this.freeServiceId();
    if (id < 0) throw new IpvsError(op, 'ENOMEM', `the service table is full: ${this.maxServices} services (uvsd --svc-max raises the cap)`);
    const state: ServiceState = { id, config: normalizeService(config), dests: new Map(), listed: null };
    this.services.set(key, state);
    this.byId.set(id, state);
    this.usedIds[id] = 1;
    this.changed(id);
    return state;
  }

  /** ipvsadm -E replaces the whole configuration of the service (scheduler, flags, persistence). */
  editService(config: ServiceConfig): ServiceEntry {
    return this.entry(this.updateService(config));
  }

  private updateService(config: ServiceConfig): ServiceState {
    const op: IpvsOp = 'update_service';
    checkFamily(op, config.af);
    const state = this.find(config, op);
    checkServiceConfig(op, config);
    state.config = normalizeService(config);
    this.changed(state.id);
    return state;
  }

  deleteService(key: ServiceKey): void {
    const op: IpvsOp = 'del_service';
    checkFamily(op, key.af);
    const state = this.find(key, op);
    const skey = serviceKeyString(key);
    for (const [dkey, d] of state.dests) this.retireDest(skey, dkey, d.slot);
    this.services.delete(skey);
    this.releaseId(state.id);
    this.changed(state.id);
  }

  /** ipvsadm -C. */
  flush(): void {
    const ids: number[] = [];
    for (const [skey, s] of this.services) {
      for (const [dkey, d] of s.dests) this.retireDest(skey, dkey, d.slot);
      this.releaseId(s.id);
      ids.push(s.id);
    }
    this.services.clear();
    this.changed(-1, ids);
  }

  /** ipvsadm -Z [service]: checks the service exists and returns the service ids and real-server
   *  slots whose counters restart (they live in the stats layer), read from the table itself
   *  rather than through list(), which would refresh every listed entry's connection counters
   *  for nothing. `-Z` of everything does not list them (StatsBook.zeroAll restarts every tracked
   *  id, which are these); a -R batch's check copy still checks its lines here. */
  checkZero(key: ServiceKey | null): { ids: number[]; slots: number[] } {
    if (key !== null) checkFamily('zero_service', key.af);
    const state = key === null ? null : this.find(key, 'zero_service');
    const out = { ids: [] as number[], slots: [] as number[] };
    // A check copy only checks: its new real servers have no slots to read counters from.
    if (this.check !== null) return out;
    for (const s of state === null ? this.services.values() : [state]) {
      out.ids.push(s.id);
      for (const d of s.dests.values()) out.slots.push(d.slot);
    }
    return out;
  }

  setTimeouts(t: Timeouts): void {
    // ip_vs_set_timeout: a zero leaves that timeout unchanged.
    for (const v of [t.tcp, t.tcpFin, t.udp]) {
      if (!Number.isInteger(v) || v < 0) throw new IpvsError('set_timeout', 'EINVAL', `bad timeout ${v}`);
    }
    this.timeouts = {
      tcp: t.tcp || this.timeouts.tcp,
      tcpFin: t.tcpFin || this.timeouts.tcpFin,
      udp: t.udp || this.timeouts.udp,
    };
    this.changed();
  }

  // ---- real-server commands ------------------------------------------------------------------

  addDest(service: ServiceKey, dest: DestConfig): DestEntry {
    const d = this.insertDest(service, dest);
    return this.destEntry(d, d.slot);
  }

  private insertDest(service: ServiceKey, dest: DestConfig): DestState {
    const op: IpvsOp = 'add_dest';
    checkFamily(op, service.af);
    const skey = serviceKeyString(service);
    const state = this.findByKey(skey, service, op);
    checkFamily(op, dest.af);
    checkDestConfig(op, dest);
    this.destPolicy?.(op, dest);
    const dkey = destKeyOf(dest);
    if (state.dests.has(dkey)) throw new IpvsError(op, 'EEXIST', `destination ${describeDest(dest)} exists`);
    // A real server deleted while connections still used it comes back from the trash with its
    // slot (ip_vs_trash_get_dest), so those connections keep counting against it.
    let trashIndex = -1;
    for (let i = 0; i < this.trash.length; i++) {
      const t = this.trash[i]!;
      if (t.serviceKey === skey && t.destKey === dkey) {
        trashIndex = i;
        break;
      }
    }
    let slot: number;
    if (trashIndex >= 0) {
      slot = this.trash[trashIndex]!.slot;
    } else {
      slot = this.allocateSlot();
      if (slot < 0) throw new IpvsError(op, 'ENOMEM', `the real-server table is full: ${this.destTable.capacity} real servers (uvsd --dest-max raises the cap)`);
    }
    if (trashIndex >= 0) this.trash.splice(trashIndex, 1);
    let d: DestState;
    if (this.check === null) {
      d = destState(dest, slot);
      this.writeSlot(slot, state.id, d, true);
    } else {
      // A check copy keeps only that the key is taken, and that its slot is new (past the end of
      // the table: nothing refers to it): one shared record, not one per real server.
      d = this.check.added ??= destState(dest, this.destTable.capacity);
    }
    state.dests.set(dkey, d);
    this.changed(state.id);
    return d;
  }

  editDest(service: ServiceKey, dest: DestConfig): DestEntry {
    const d = this.updateDest(service, dest);
    return this.destEntry(d, d.slot);
  }

  private updateDest(service: ServiceKey, dest: DestConfig): DestState {
    const op: IpvsOp = 'update_dest';
    checkFamily(op, service.af);
    const state = this.find(service, op);
    checkFamily(op, dest.af);
    checkDestConfig(op, dest);
    this.destPolicy?.(op, dest);
    const dkey = destKeyOf(dest);
    const found = state.dests.get(dkey);
    if (!found) throw new IpvsError(op, 'ENOENT', `no destination ${describeDest(dest)} in ${describeService(service)}`);
    // A new record, not an edit in place: a check copy shares the records with the live model.
    // A check copy keeps the record it has (the slot is what matters there).
    const d = this.check === null ? destState(dest, found.slot) : found;
    state.dests.set(dkey, d);
    if (this.check === null) this.writeSlot(d.slot, state.id, d, false);
    this.changed(state.id);
    return d;
  }

  /** One change, with nothing built for an answer (a -R batch, a reload). Throws IpvsError. */
  apply(c: ModelChange): void {
    switch (c.kind) {
      case 'add-service': this.insertService(c.service); break;
      case 'edit-service': this.updateService(c.service); break;
      case 'delete-service': this.deleteService(c.service); break;
      case 'add-dest': this.insertDest(c.service, c.dest); break;
      case 'edit-dest': this.updateDest(c.service, c.dest); break;
      case 'delete-dest': this.deleteDest(c.service, c.dest); break;
      case 'set-timeouts': this.setTimeouts(c.timeouts); break;
    }
  }

  deleteDest(service: ServiceKey, dest: DestKey): void {
    const op: IpvsOp = 'del_dest';
    checkFamily(op, service.af);
    const state = this.find(service, op);
    const dkey = destKeyOf(dest);
    const found = state.dests.get(dkey);
    if (!found) throw new IpvsError(op, 'ENOENT', `no destination ${describeDest(dest)} in ${describeService(service)}`);
    state.dests.delete(dkey);
    this.retireDest(serviceKeyString(service), dkey, found.slot);
    this.changed(state.id);
  }

  /** Frees the slots of trashed real servers that no connection refers to any more. */
  sweepTrash(): number {
    let freed = 0;
    for (let i = this.trash.length - 1; i >= 0; i--) {
      const t = this.trash[i]!;
      if (this.slotConnections(t.slot) === 0) {
        this.releaseSlot(t.slot);
        this.trash.splice(i, 1);
        freed++;
      }
    }
    return freed;
  }

  trashSize(): number {
    return this.trash.length;
  }

  // ---- internals -----------------------------------------------------------------------------

  private find(key: ServiceKey, op: IpvsOp): ServiceState {
    return this.findByKey(serviceKeyString(key), key, op);
  }

  private findByKey(skey: string, key: ServiceKey, op: IpvsOp): ServiceState {
    const state = this.services.get(skey);
    if (!state) throw new IpvsError(op, 'ESRCH', `no service ${describeService(key)}`);
    return state;
  }

  /** A free DestTable slot (a check copy counts instead), or -1 when the table is full. */
  private allocateSlot(): number {
    if (this.check === null) return this.destTable.allocate();
    if (this.check.freeSlots === 0) return -1;
    this.check.freeSlots--;
    // Not a real slot (past the table's end): a check copy never writes to or lists it.
    return this.destTable.capacity;
  }

  private releaseSlot(slot: number): void {
    if (this.check === null) this.destTable.release(slot);
    else this.check.freeSlots++;
  }

  /** The lowest free service id, or -1 when all maxServices are taken. */
  private freeServiceId(): number {
    while (this.idHint < this.maxServices && this.usedIds[this.idHint] !== 0) this.idHint++;
    return this.idHint < this.maxServices ? this.idHint : -1;
  }

  private releaseId(id: number): void {
    this.byId.delete(id);
    this.usedIds[id] = 0;
    if (id < this.idHint) this.idHint = id;
  }

  private slotConnections(slot: number): number {
    // A slot a check copy made up (past the end) is new: nothing refers to it.
    if (slot >= this.destTable.capacity) return 0;
    const t = this.destTable;
    return t.load(slot, DestField.ACTIVE) + t.load(slot, DestField.INACTIVE) + t.load(slot, DestField.PERSIST);
  }

  private retireDest(serviceKey: string, destKey: number, slot: number): void {
    if (this.slotConnections(slot) === 0) {
      this.releaseSlot(slot);
      return;
    }
    // Connections still point here: stop scheduling to it, keep the slot (IP_VS_DEST_F_AVAILABLE).
    if (this.check === null) {
      const t = this.destTable;
      t.updateFlags(slot, 0, DestFlag.AVAILABLE);
      Atomics.add(t.cells, t.base(slot) + DestField.GEN, 1);
    }
    this.trash.push({ serviceKey, destKey, slot });
  }

  private writeSlot(slot: number, serviceId: number, d: DestConfig, fresh: boolean): void {
    const t = this.destTable;
    t.set(slot, DestField.ADDR, d.addr | 0);
    t.set(slot, DestField.PORT, d.port);
    t.set(slot, DestField.WEIGHT, d.weight);
    t.set(slot, DestField.U_THRESHOLD, d.uThreshold);
    t.set(slot, DestField.L_THRESHOLD, d.lThreshold);
    t.set(slot, DestField.FWD, d.fwd);
    t.set(slot, DestField.SERVICE, serviceId);
    // __ip_vs_update_dest: a changed upper threshold clears the overload mark; the data plane
    // sets it again when the server is still over the new limit.
    t.updateFlags(slot, DestFlag.IN_USE | DestFlag.AVAILABLE, fresh || d.uThreshold === 0 ? DestFlag.OVERLOAD : 0);
    Atomics.add(t.cells, t.base(slot) + DestField.GEN, 1);
  }

  private destEntry(config: DestConfig, slot: number): DestEntry {
    const t = this.destTable;
    // Spelled out, not spread: listing 100,000 real servers builds 100,000 of these, and a
    // literal with a fixed shape is several times cheaper to build and collect.
    return {
      af: config.af, addr: config.addr, port: config.port, fwd: config.fwd, weight: config.weight,
      uThreshold: config.uThreshold, lThreshold: config.lThreshold, tunType: config.tunType,
      tunPort: config.tunPort, tunFlags: config.tunFlags,
      slot,
      activeConns: t.load(slot, DestField.ACTIVE),
      inactConns: t.load(slot, DestField.INACTIVE),
      persistConns: t.load(slot, DestField.PERSIST),
    };
  }

  private entry(s: ServiceState): ServiceEntry {
    // The kernel's list order: __ip_vs_update_dest adds a new real server at the head
    // (list_add_rcu), so the newest comes first; editing one does not move it.
    const dests: DestEntry[] = [];
    for (const d of s.dests.values()) dests.push(this.destEntry(d, d.slot));
    dests.reverse();
    const c = s.config;
    return {
      fwmark: c.fwmark, af: c.af, protocol: c.protocol, addr: c.addr, port: c.port, scheduler: c.scheduler,
      flags: c.flags, timeout: c.timeout, netmask: c.netmask, peName: c.peName, id: s.id, dests,
    };
  }

  /** After a change of service `id` (-1: none in particular, the timeouts), or of `ids`. */
  private changed(id = -1, ids?: readonly number[]): void {
    this.generation++;
    // Timeouts (id -1, no ids) are not part of the listing.
    if (id >= 0 || ids) {
      this.listing = null;
      const s = id >= 0 ? this.byId.get(id) : undefined;
      if (s) s.listed = null;
    }
    if (this.check !== null) return;
    if (id >= 0) this.changedAt.set(id, this.generation);
    if (ids) for (const i of ids) this.changedAt.set(i, this.generation);
    if (this.batchDepth > 0) {
      this.batchChanged = true;
      return;
    }
    this.sweepTrash();
    for (const listener of this.changeListeners) listener();
  }

  /**
   * Runs `fn` (many changes: a -R batch, a configuration load) and tells the listeners once at
   * the end instead of after every change, so a restore of n lines costs O(n) in the listeners
   * (statistics tracking, the data plane) rather than O(n²). Nests; a throw still notifies about
   * whatever changed before it.
   */
  batch<T>(fn: () => T): T {
    this.batchDepth++;
    try {
      return fn();
    } finally {
      if (--this.batchDepth === 0 && this.batchChanged) {
        this.batchChanged = false;
        this.sweepTrash();
        for (const listener of this.changeListeners) listener();
      }
    }
  }

  /** Called after every successful change (statistics tracking; the data plane recompiles its
   *  snapshot of the table). */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }
}

function checkFamily(op: IpvsOp, af: number): void {
  // IPv6 services and real servers are parsed (ipvsadm accepts them) but not served yet.
  if (af !== 4) throw new IpvsError(op, 'EOPNOTSUPP', 'IPv6 is not supported by uvs yet');
}

function checkServiceConfig(op: IpvsOp, c: ServiceConfig): void {
  if (c.fwmark === 0 && c.protocol !== IPPROTO_TCP && c.protocol !== IPPROTO_UDP) {
    throw new IpvsError(op, 'EINVAL', `protocol ${c.protocol} is neither TCP nor UDP`);
  }
  if (!KNOWN_SCHEDULERS.includes(c.scheduler)) {
    throw new IpvsError(op, 'ENOENT', `scheduler "${c.scheduler}" not found`);
  }
  if (c.peName !== '' && !KNOWN_PERSISTENCE_ENGINES.includes(c.peName)) {
    throw new IpvsError(op, 'ENOENT', `persistence engine "${c.peName}" not found`);
  }
  if (!Number.isInteger(c.timeout) || c.timeout < 0) throw new IpvsError(op, 'EINVAL', `bad timeout ${c.timeout}`);
  if (!isU16(c.port)) throw new IpvsError(op, 'EINVAL', `bad port ${c.port}`);
  if (!isU32(c.addr) || !isU32(c.fwmark) || !isU32(c.netmask) || !Number.isInteger(c.flags) || typeof c.peName !== 'string') {
    throw new IpvsError(op, 'EINVAL', 'malformed service');
  }
}

function checkDestConfig(op: IpvsOp, d: DestConfig): void {
  // ip_vs_add_dest / ip_vs_edit_dest: weight and thresholds are checked first, with ERANGE.
  if (!Number.isInteger(d.weight) || d.weight < 0) throw new IpvsError(op, 'ERANGE', `weight ${d.weight} below zero`);
  if (d.lThreshold > d.uThreshold) {
    throw new IpvsError(op, 'ERANGE', `lower threshold ${d.lThreshold} above upper threshold ${d.uThreshold}`);
  }
  // ip_vs_new_dest: the address must be unicast (inet_addr_type RTN_UNICAST or RTN_LOCAL).
  const a = d.addr >>> 0;
  if (a === 0 || a === 0xffffffff || a >>> 28 === 0xe) {
    throw new IpvsError(op, 'EINVAL', `real server address ${intToIpv4(a)} is not unicast`);
  }
  if (!isU16(d.port) || !isU16(d.tunPort)) throw new IpvsError(op, 'EINVAL', 'bad port');
  // What the kernel's netlink policy would refuse from a malformed request.
  if (!isU32(d.addr) || !isInt31(d.weight) || !isInt31(d.uThreshold) || !isInt31(d.lThreshold)) {
    throw new IpvsError(op, 'EINVAL', 'malformed real server');
  }
  const fwd = d.fwd;
  if (fwd !== ForwardMethod.MASQ && fwd !== ForwardMethod.LOCAL && fwd !== ForwardMethod.TUNNEL && fwd !== ForwardMethod.DROUTE) {
    throw new IpvsError(op, 'EINVAL', `unknown forwarding method ${String(d.fwd)}`);
  }
  const tun = d.tunType;
  if ((tun !== TunnelType.IPIP && tun !== TunnelType.GUE && tun !== TunnelType.GRE) || !Number.isInteger(d.tunFlags) ||
    d.tunFlags < 0 || d.tunFlags > (TUN_F_CSUM | TUN_F_REMCSUM)) {
    throw new IpvsError(op, 'EINVAL', 'bad tunnel type or flags');
  }
}

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= -0x80000000 && v <= 0xffffffff;
}

function isInt31(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0x7fffffff;
}

function isU16(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

function normalizeService(c: ServiceConfig): ServiceConfig {
  return {
    fwmark: c.fwmark >>> 0,
    af: c.af,
    protocol: c.protocol,
    addr: c.addr >>> 0,
    port: c.port,
    scheduler: c.scheduler,
    flags: c.flags & SVC_F_USER,
    timeout: c.timeout,
    netmask: c.netmask >>> 0,
    peName: c.peName,
  };
}

/** The stored record of a real server: normalized, with its slot. Spelled out, not spread
 *  (`{ ...normalizeDest(d), slot }`): V8 gave each spread copy a map of its own, so 100,000 real
 *  servers had ~100,000 hidden classes, every read of a record's field (checkZero, ids, slotsOf)
 *  was megamorphic and the collector traced a map and descriptor array per record. */
function destState(d: DestConfig, slot: number): DestState {
  return {
    af: d.af,
    addr: d.addr >>> 0,
    port: d.port,
    fwd: d.fwd,
    weight: d.weight,
    uThreshold: d.uThreshold,
    lThreshold: d.lThreshold,
    tunType: d.tunType,
    tunPort: d.tunPort,
    tunFlags: d.tunFlags,
    slot,
  };
}

/** A record's configuration alone (exportConfig: what a reload diffs). */
function destConfigOf(d: DestState): DestConfig {
  return normalizeDest(d);
}

function normalizeDest(d: DestConfig): DestConfig {
  return {
    af: d.af,
    addr: d.addr >>> 0,
    port: d.port,
    fwd: d.fwd,
    weight: d.weight,
    uThreshold: d.uThreshold,
    lThreshold: d.lThreshold,
    tunType: d.tunType,
    tunPort: d.tunPort,
    tunFlags: d.tunFlags,
  };
}


export function describeService(k: ServiceKey): string {
  if (k.fwmark !== 0) return `FWM ${k.fwmark}`;
  return `${k.protocol === IPPROTO_UDP ? 'UDP' : 'TCP'} ${intToIpv4(k.addr >>> 0)}:${k.port}`;
}

function describeDest(d: DestKey): string {
  return `${intToIpv4(d.addr >>> 0)}:${d.port}`;
}

// ---- configuration as plain data, and the diff a reload applies ------------------------------

export interface ModelServiceConfig extends ServiceConfig {
  dests: DestConfig[];
}

export interface ModelConfig {
  services: ModelServiceConfig[];
  timeouts: Timeouts;
}

export type ModelChange =
  | { kind: 'add-service'; service: ServiceConfig }
  | { kind: 'edit-service'; service: ServiceConfig }
  | { kind: 'delete-service'; service: ServiceKey }
  | { kind: 'add-dest'; service: ServiceKey; dest: DestConfig }
  | { kind: 'edit-dest'; service: ServiceKey; dest: DestConfig }
  | { kind: 'delete-dest'; service: ServiceKey; dest: DestKey }
  | { kind: 'set-timeouts'; timeouts: Timeouts };

function sameService(a: ServiceConfig, b: ServiceConfig): boolean {
  return a.scheduler === b.scheduler && a.flags === b.flags && a.timeout === b.timeout &&
    (a.netmask >>> 0) === (b.netmask >>> 0) && a.peName === b.peName;
}

function sameDest(a: DestConfig, b: DestConfig): boolean {
  return a.fwd === b.fwd && a.weight === b.weight && a.uThreshold === b.uThreshold &&
    a.lThreshold === b.lThreshold && a.tunType === b.tunType && a.tunPort === b.tunPort &&
    a.tunFlags === b.tunFlags;
}

function serviceOnly(s: ModelServiceConfig): ServiceConfig {
  const { dests, ...service } = s;
  void dests;
  return service;
}

/** The smallest list of changes that turns `from` into `to`, keeping every unchanged real server
 *  (and so its slot, its connections and its counters) in place. Deletions come first so that a
 *  full table has room for the additions. */
export function diffConfigs(from: ModelConfig, to: ModelConfig): ModelChange[] {
  const changes: ModelChange[] = [];
  const before = new Map(from.services.map((s) => [serviceKeyString(s), s] as const));
  const after = new Map(to.services.map((s) => [serviceKeyString(s), s] as const));
  for (const [key, s] of before) {
    if (!after.has(key)) changes.push({ kind: 'delete-service', service: s });
  }
  for (const [key, s] of after) {
    const old = before.get(key);
    if (!old) {
      changes.push({ kind: 'add-service', service: serviceOnly(s) });
      for (const d of s.dests) changes.push({ kind: 'add-dest', service: s, dest: d });
      continue;
    }
    if (!sameService(old, s)) changes.push({ kind: 'edit-service', service: serviceOnly(s) });
    const oldDests = new Map(old.dests.map((d) => [destKeyOf(d), d] as const));
    const newDests = new Map(s.dests.map((d) => [destKeyOf(d), d] as const));
    for (const [dk, d] of oldDests) if (!newDests.has(dk)) changes.push({ kind: 'delete-dest', service: s, dest: d });
    for (const [dk, d] of newDests) {
      const o = oldDests.get(dk);
      if (!o) changes.push({ kind: 'add-dest', service: s, dest: d });
      else if (!sameDest(o, d)) changes.push({ kind: 'edit-dest', service: s, dest: d });
    }
  }
  const a = from.timeouts;
  const b = to.timeouts;
  if (a.tcp !== b.tcp || a.tcpFin !== b.tcpFin || a.udp !== b.udp) changes.push({ kind: 'set-timeouts', timeouts: b });
  // Deletions first, then the rest in order.
  const deletions = changes.filter((c) => c.kind === 'delete-service' || c.kind === 'delete-dest');
  return [...deletions, ...changes.filter((c) => c.kind !== 'delete-service' && c.kind !== 'delete-dest')];
}

/** Applies one change; throws IpvsError as the single commands do. */
export function applyChange(model: ServiceModel, c: ModelChange): void {
  model.apply(c);
}

/** Checks a whole configuration against a scratch model first, so applying it to the live model
 *  cannot fail half-way on a bad entry. Returns the changes to apply. */
export function planReload(model: ServiceModel, next: ModelConfig): ModelChange[] {
  const scratch = new ServiceModel({ destCapacity: Math.max(1, countDests(next)), maxServices: model.maxServices });
  for (const s of next.services) {
    scratch.addService(serviceOnly(s));
    for (const d of s.dests) scratch.addDest(s, d);
  }
  scratch.setTimeouts(next.timeouts);
  return diffConfigs(model.exportConfig(), next);
}

function countDests(c: ModelConfig): number {
  let n = 0;
  for (const s of c.services) n += s.dests.length;
  return n;
}
