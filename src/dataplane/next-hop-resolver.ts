// Fills the NextHopTable (next-hop.ts) for the real servers of the running table, and keeps it
// current: the route toward each real server (egress interface, gateway, source address) and the
// MAC of its next hop from the kernel's neighbour table, probing the neighbours the kernel does
// not know yet.
//
// At scale this must not cost a process per real server (10,000 services × 10 real servers):
//   - routes and neighbours: one `ip -batch` per apply, the neighbour dump and the routes of the
//     distinct addresses not resolved yet (NetInfo.routesAndNeighbours); then probes for the
//     missing next hops only, and one dump per 50 ms poll until they answer or the deadline;
//   - an address already resolved for another slot (the same real server in another service) is
//     copied without asking the kernel at all;
//   - refresh (every few seconds): one neighbour dump checks every resolved slot's MAC (a real
//     server's MAC changes, or its entry expired: uvs sends through packet sockets, so the kernel
//     does not keep the entries alive); routes are looked up again every ROUTE_REFRESH_EVERY-th
//     refresh, and failed ones at every refresh.
// Log lines are per address, not per real server: one unreachable server behind 1,000 services
// is one line.

import type { NetInfo, InterfaceInfo, RouteInfo } from './netinfo';
import type { NextHopInfo, NextHopTable } from '../tables/next-hop';
import { ForwardMethod } from '../tables/dest-table';
import { intToIpv4, ipv4ToInt } from '../packet/addr';
import type { Logger } from '../runtime/log';

export interface HopTarget {
  slot: number;
  /** Real server address, host order. */
  addr: number;
  fwd: ForwardMethod;
}

interface Resolved extends HopTarget {
  ifname: string;
  hop: string;
  mac: string;
}


/** Routes are looked up again on every this-many-th refresh (the neighbours on every one). */
const ROUTE_REFRESH_EVERY = 12;
const NEIGHBOUR_POLL_MS = 50;
const PROBE_EVERY_MS = 1000;

export class NextHopResolver {
  private readonly resolved = new Map<number, Resolved>();
  /** Slots whose last resolution failed: retried at every refresh. */
  private readonly failed = new Map<number, HopTarget>();
  private refreshes = 0;
  /** The last next hop found per real-server address: a new slot for an address already in use
   *  (the same real server in another service) is filled from here without asking the kernel.
   *  Refreshed with the slots (refresh() resolves every slot of a changed address again). */
  private readonly known = new Map<number, { info: NextHopInfo; ifname: string; hop: string; mac: string }>();

  constructor(
    private readonly netinfo: NetInfo,
    private readonly nextHops: NextHopTable,
    private readonly ifaces: () => readonly InterfaceInfo[],
    private readonly log: Logger,
    private readonly timeoutMs = 3000,
  ) {}

  /** True when `slot` has a valid next hop resolved for `addr`. */
  has(slot: number, addr: number): boolean {
    return this.resolved.get(slot)?.addr === addr && (this.nextHops.flags(slot) & 1) !== 0;
  }

  /** The slot no longer holds a real server of the table: stop refreshing it. */
  forget(slot: number): void {
    this.resolved.delete(slot);
    this.failed.delete(slot);
  }

  /** Resolves these slots (routes in one batch, then neighbours); waits at most timeoutMs for
   *  neighbours that have to be probed. Never throws: a slot that cannot be resolved is cleared
   *  (its packets are dropped as NO_NEXT_HOP), logged and retried at the next refresh. */
  async resolve(targets: readonly HopTarget[]): Promise<void> {
    if (targets.length === 0) return;
    // Work per distinct address: many services share their real servers.
    const byAddr = new Map<number, HopTarget[]>();
    for (const t of targets) {
      const list = byAddr.get(t.addr);
      if (list) list.push(t);
      else byAddr.set(t.addr, [t]);
    }
    for (const [addr, slots] of byAddr) {
      const k = this.known.get(addr);
      if (!k) continue;
      this.writeAll(slots, k.info, k.ifname, k.hop, k.mac);
      byAddr.delete(addr);
    }
    if (byAddr.size === 0) return;
    let routes: Map<string, RouteInfo>;
    let firstDump: Map<string, string> | null;
    try {
      ({ routes, neighbours: firstDump } = await this.netinfo.routesAndNeighbours([...byAddr.keys()].map((a) => intToIpv4(a))));
    } catch (err) {
      for (const t of targets) this.fail(t);
      this.log.warn(`next hops: route lookup failed: ${(err as Error).message}`);
      return;
    }
    const ifaces = this.ifaces();
    interface Pending { rip: string; slots: HopTarget[]; iface: InterfaceInfo; egress: number; route: RouteInfo; hop: string }
    let waiting: Pending[] = [];
    for (const [addr, slots] of byAddr) {
      const rip = intToIpv4(addr);
      const route = routes.get(rip);
      if (!route) {
        for (const t of slots) this.fail(t);
        this.log.warn(`real server ${rip}: cannot resolve the next hop: no route`);
        continue;
      }
      const egress = ifaces.findIndex((i) => i.ifname === route.ifname);
      if (egress < 0) {
        for (const t of slots) this.fail(t);
        this.log.error(`real server ${rip}: reached through ${route.ifname}, which uvs does not capture on (add --iface ${route.ifname})`);
        continue;
      }
      if (route.gateway && slots.some((t) => t.fwd === ForwardMethod.DROUTE)) {
        this.log.error(`real server ${rip}: not on the director's L2 segment (route via ${route.gateway} on ${route.ifname}); ` +
          'DR needs it on-link, so its packets are dropped (NOT_ON_LINK): use -i (tunnel) or -m (NAT)');
      }
      waiting.push({ rip, slots, iface: ifaces[egress]!, egress, route, hop: route.gateway ?? rip });
    }
    const deadline = Date.now() + this.timeoutMs;
    let nextProbe = 0;
    for (;;) {
      let neigh: Map<string, string>;
      if (firstDump) {
        neigh = firstDump; // dumped with the routes: no second process
        firstDump = null;
      } else {
        try {
          neigh = await this.netinfo.neighbours();
        } catch (err) {
          this.log.warn(`next hops: neighbour table: ${(err as Error).message}`);
          neigh = new Map();
        }
      }
      const still: Pending[] = [];
      for (const p of waiting) {
        const mac = neigh.get(`${p.route.ifname} ${p.hop}`);
        if (!mac) {
          still.push(p);
          continue;
        }
        const info: NextHopInfo = {
          dstMac: mac, srcMac: p.iface.mac, egress: p.egress, mtu: p.iface.mtu,
          srcAddr: p.route.prefsrc ? ipv4ToInt(p.route.prefsrc) : 0, viaGateway: p.route.gateway !== null,
        };
        this.known.set(p.slots[0]!.addr, { info, ifname: p.route.ifname, hop: p.hop, mac });
        this.writeAll(p.slots, info, p.route.ifname, p.hop, mac);
      }
      waiting = still;
      if (waiting.length === 0 || Date.now() >= deadline) break;
      if (Date.now() >= nextProbe) {
        // The kernel resolves a neighbour when it has something to send there (udpDiscardProbe).
        await Promise.all([...new Set(waiting.map((p) => p.hop))].map((hop) => this.netinfo.probeNeighbour(hop).catch(() => undefined)));
        nextProbe = Date.now() + PROBE_EVERY_MS;
      }
      await this.netinfo.wait(NEIGHBOUR_POLL_MS);
    }
    for (const p of waiting) {
      for (const t of p.slots) this.fail(t);
      this.log.warn(`real server ${p.rip}: no ARP answer from ${p.hop} on ${p.route.ifname}; will retry`);
    }
  }

  /** Periodic: MACs that changed or expired, failed slots again, and now and then every route. */
  async refresh(inUse: (slot: number) => boolean): Promise<void> {
    const routesToo = ++this.refreshes % ROUTE_REFRESH_EVERY === 0;
    const again: HopTarget[] = [];
    for (const [slot, t] of this.failed) {
      if (inUse(slot)) again.push(t);
      else this.failed.delete(slot);
    }
    const neigh = await this.netinfo.neighbours();
    for (const [slot, r] of this.resolved) {
      if (!inUse(slot)) {
        this.resolved.delete(slot);
        continue;
      }
      const mac = neigh.get(`${r.ifname} ${r.hop}`);
      // Changed or gone: resolve() writes the whole record again (probing when gone).
      if (routesToo || mac !== r.mac) again.push({ slot, addr: r.addr, fwd: r.fwd });
    }
    // Asked of the kernel again, not copied from what was known.
    for (const t of again) this.known.delete(t.addr);
    await this.resolve(again);
  }

  /** The captured interfaces changed (one came, went, or changed its MAC or MTU; an egress is an
   *  index into them): every real server is resolved again, routes included. */
  async resolveAgain(inUse: (slot: number) => boolean): Promise<void> {
    const again: HopTarget[] = [];
    for (const [slot, t] of this.failed) if (inUse(slot)) again.push(t);
    for (const [slot, r] of this.resolved) if (inUse(slot)) again.push({ slot, addr: r.addr, fwd: r.fwd });
    this.known.clear();
    await this.resolve(again);
  }

  /** The same next hop for every slot of one address: the first record is built, the others
   *  copied from it (10,000 services on 10 real servers: 10 builds, 99,990 copies). */
  private writeAll(slots: readonly HopTarget[], info: NextHopInfo, ifname: string, hop: string, mac: string): void {
    const first = slots[0];
    if (!first) return;
    this.write(first, info, ifname, hop, mac);
    for (let i = 1; i < slots.length; i++) {
      const t = slots[i]!;
      this.nextHops.copy(first.slot, t.slot);
      this.failed.delete(t.slot);
      this.resolved.set(t.slot, { slot: t.slot, addr: t.addr, fwd: t.fwd, ifname, hop, mac });
    }
  }

  private write(t: HopTarget, info: NextHopInfo, ifname: string, hop: string, mac: string): void {
    this.nextHops.set(t.slot, info);
    this.failed.delete(t.slot);
    this.resolved.set(t.slot, { slot: t.slot, addr: t.addr, fwd: t.fwd, ifname, hop, mac });
  }

  private fail(t: HopTarget): void {
    this.known.delete(t.addr);
    this.nextHops.clear(t.slot);
    this.resolved.delete(t.slot);
    this.failed.set(t.slot, t);
  }
}
