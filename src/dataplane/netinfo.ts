// What the control plane needs to know about the director's network: its interfaces and
// addresses, the route toward a real server or a client, and next-hop MAC addresses from the
// kernel's neighbour table (resolved when missing). Everything goes through `ip -j` (iproute2's
// JSON output) behind a CommandRunner, so tests can feed recorded output.

import * as dgram from 'node:dgram';
import { execRunner, type CommandRunner } from './guard';
import { UvsError } from '../runtime/errors';

export interface InterfaceInfo {
  ifname: string;
  ifindex: number;
  mac: string;
  mtu: number;
  up: boolean;
  loopback: boolean;
  /** IPv4 addresses with prefix length; `secondary` as `ip addr` marks it. */
  addrs: { addr: string; prefixlen: number; secondary: boolean }[];
  /** The device this one is enslaved to (a bridge, bond, team or VRF), from `ip -d`. */
  master?: string;
  /** What the master makes of it (`linkinfo.info_slave_kind`: 'bridge', 'bond', 'team', 'vrf'...). */
  slaveKind?: string;
  /** `linkinfo.info_kind`: 'veth', 'vlan', 'macvlan', 'ipvlan', 'bridge', 'bond'... */
  kind?: string;
  /** For stacked devices (vlan, macvlan, ipvlan, macvtap): the lower device (`link`). For a
   *  veth, `ip` names its peer here; only stacked kinds read it. */
  link?: string;
}

export interface RouteInfo {
  /** The destination asked about. */
  dst: string;
  ifname: string;
  /** The next-hop router, or null when the destination is on-link. */
  gateway: string | null;
  /** The source address the kernel would use toward dst. */
  prefsrc: string | null;
  /** 'local' when dst is one of our own addresses. */
  type: string;
}

export class NetInfoError extends UvsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UVS_ERR_NETINFO', message, options);
  }
}

interface IpAddrJson {
  ifname: string;
  ifindex: number;
  address?: string;
  mtu: number;
  flags?: string[];
  link_type?: string;
  operstate?: string;
  master?: string;
  link?: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number; secondary?: boolean }[];
}

export function parseIpAddrJson(json: string): InterfaceInfo[] {
  const rows = JSON.parse(json) as IpAddrJson[];
  return rows.map((r) => {
    const flags = r.flags ?? [];
    return {
      ifname: r.ifname,
      ifindex: r.ifindex,
      mac: r.address ?? '00:00:00:00:00:00',
      mtu: r.mtu,
      up: flags.includes('UP'),
      loopback: flags.includes('LOOPBACK') || r.link_type === 'loopback',
      addrs: (r.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => ({ addr: a.local, prefixlen: a.prefixlen, secondary: a.secondary === true })),
      ...(r.master !== undefined ? { master: r.master } : {}),
      ...(r.linkinfo?.info_slave_kind !== undefined ? { slaveKind: r.linkinfo.info_slave_kind } : {}),
      ...(r.linkinfo?.info_kind !== undefined ? { kind: r.linkinfo.info_kind } : {}),
      ...(r.link !== undefined ? { link: r.link } : {}),
    };
  });
}

/** Stacked kinds whose upper device may share the lower's MAC (macvlan/macvtap in passthru mode,
 *  every ipvlan/ipvtap): a frame to that MAC is PACKET_HOST on both. VLAN devices are not here:
 *  their frames carry a tag on the lower device, which the capture filter refuses (bpf.ts). */
const SAME_MAC_UPPER_KINDS = new Set(['macvlan', 'macvtap', 'ipvlan', 'ipvtap']);

export interface CaptureChoice {
  chosen: InterfaceInfo[];
  /** Up, non-loopback interfaces left out, and why (uvsd logs them). */
  skipped: { ifname: string; why: string }[];
}

/**
 * Which interfaces uvs taps by default (docs/architecture.md, "Which interfaces"): where the
 * VIP's traffic arrives, once. AF_PACKET sees a received frame on every device it passes through
 * (__netif_receive_skb_core delivers to the taps of a device before its rx_handler hands the frame
 * to the upper one), and with a shared MAC the frame is PACKET_HOST on each, so tapping both
 * forwards it twice, the lower copy onto the wrong device. So, of the interfaces that are up and
 * not loopback:
 *  - a bridge port, bond slave or team port is skipped: its master receives the frame again and
 *    holds the addresses (a VRF slave is kept: it is where the frame arrives, the VRF device only
 *    sees PACKET_OUTGOING copies, which the filter refuses);
 *  - the lower device of a macvlan/macvtap/ipvlan/ipvtap with the same MAC (passthru, ipvlan) is
 *    skipped: the upper receives the frame again;
 *  - a VLAN device and its lower are both kept: on the lower a VLAN's frame carries its tag
 *    (offloaded to the ring's tp_vlan_tci), which the filter and the worker refuse; the VLAN
 *    device sees it untagged and sends its replies tagged.
 * `uvsd --iface` overrides all of this.
 */
export function captureInterfaces(all: readonly InterfaceInfo[]): CaptureChoice {
  const chosen: InterfaceInfo[] = [];
  const skipped: { ifname: string; why: string }[] = [];
  for (const i of all) {
    if (!i.up || i.loopback) continue;
    if (i.master !== undefined && i.slaveKind !== 'vrf') {
      skipped.push({ ifname: i.ifname, why: `${i.slaveKind ?? 'enslaved'} port of ${i.master}, which receives its frames again` });
      continue;
    }
    const upper = all.find((u) => u.up && u.kind !== undefined && SAME_MAC_UPPER_KINDS.has(u.kind) && u.link === i.ifname && u.mac === i.mac);
    if (upper) {
      skipped.push({ ifname: i.ifname, why: `lower device of ${upper.kind} ${upper.ifname}, which shares its MAC and receives its frames again` });
      continue;
    }
    chosen.push(i);
  }
  return { chosen, skipped };
}

interface IpRouteJson {
  dst: string;
  dev: string;
  gateway?: string;
  prefsrc?: string;
  type?: string;
}

export function parseIpRouteGetJson(json: string): RouteInfo {
  const rows = JSON.parse(json) as IpRouteJson[];
  const r = rows[0];
  if (!r) throw new NetInfoError('ip route get: empty answer');
  return { dst: r.dst, ifname: r.dev, gateway: r.gateway ?? null, prefsrc: r.prefsrc ?? null, type: r.type ?? 'unicast' };
}

/** One route of `ip -j -4 route show` (the main table). */
export interface RouteEntry {
  /** 'default', 'a.b.c.d' or 'a.b.c.d/len'. */
  dst: string;
  ifname: string;
  gateway: string | null;
}

/** The unicast IPv4 routes of `ip -j -4 route show` output (other types are left out). */
export function parseIpRouteShowJson(json: string): RouteEntry[] {
  const rows = JSON.parse(json) as IpRouteJson[];
  return rows
    .filter((r) => (r.type ?? 'unicast') === 'unicast' && typeof r.dst === 'string' && typeof r.dev === 'string')
    .map((r) => ({ dst: r.dst, ifname: r.dev, gateway: r.gateway ?? null }));
}

interface IpNeighJson {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

/** The usable MAC for `addr` in `ip -j neigh` output, or null (absent, INCOMPLETE or FAILED). */
export function parseNeighMac(json: string, addr: string): string | null {
  const rows = JSON.parse(json) as IpNeighJson[];
  for (const r of rows) {
    if (r.dst !== addr || !r.lladdr) continue;
    const state = r.state ?? [];
    if (state.includes('FAILED') || state.includes('INCOMPLETE')) continue;
    return r.lladdr;
  }
  return null;
}

/** Every usable neighbour in `ip -j neigh show` output: "dev addr" → MAC. */
export function parseNeighTable(json: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of JSON.parse(json) as IpNeighJson[]) {
    if (!r.lladdr || !r.dev) continue;
    const state = r.state ?? [];
    if (state.includes('FAILED') || state.includes('INCOMPLETE')) continue;
    out.set(`${r.dev} ${r.dst}`, r.lladdr);
  }
  return out;
}

/** `ip -j -force -batch -` output of `route get` lines: one JSON array per line that worked
 *  (a failed lookup prints nothing there, its error goes to stderr), keyed by destination. */
export function parseRouteBatch(out: string): Map<string, RouteInfo> {
  const routes = new Map<string, RouteInfo>();
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    const r = parseIpRouteGetJson(line);
    routes.set(r.dst, r);
  }
  return routes;
}

export interface NetInfoOptions {
  runner?: CommandRunner;
  /** Makes the kernel resolve a neighbour: by default one UDP datagram to the discard port (9),
   *  which the kernel cannot send before it knows the next hop's MAC. */
  probe?: (addr: string) => Promise<void>;
  sleep?: (ms: number) => Promise<void>;
}

export class NetInfo {
  private readonly runner: CommandRunner;
  private readonly probe: (addr: string) => Promise<void>;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(opts: NetInfoOptions = {}) {
    this.runner = opts.runner ?? execRunner;
    this.probe = opts.probe ?? udpDiscardProbe;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async interfaces(): Promise<InterfaceInfo[]> {
    // -d: linkinfo (kind, slave kind) and master, for captureInterfaces.
    return parseIpAddrJson(await this.ip(['-d', '-j', 'addr', 'show']));
  }

  /** The main table's IPv4 unicast routes. */
  async routeTable(): Promise<RouteEntry[]> {
    return parseIpRouteShowJson(await this.ip(['-j', '-4', 'route', 'show']));
  }

  async route(dst: string): Promise<RouteInfo> {
    return parseIpRouteGetJson(await this.ip(['-j', 'route', 'get', dst]));
  }

  /** Routes toward many destinations with one `ip` process (`-batch`): a table of thousands of
   *  real servers must not cost a process per server. A destination without a route is absent. */
  async routes(dsts: readonly string[]): Promise<Map<string, RouteInfo>> {
    if (dsts.length === 0) return new Map();
    for (const d of dsts) if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(d)) throw new NetInfoError(`route lookup: bad IPv4 address "${d}"`);
    const r = await this.runner.run('ip', ['-j', '-force', '-batch', '-'], dsts.map((d) => `route get ${d}\n`).join(''));
    // -force goes on after a failed line and exits 1: the answers that came are still good.
    return parseRouteBatch(r.stdout);
  }

  /** routes() and neighbours() in one `ip` process: the neighbour dump is the batch's first
   *  line (an array, `[]` when empty), the route lookups follow. A change that adds a real server
   *  then costs one process, not two. */
  async routesAndNeighbours(dsts: readonly string[]): Promise<{ routes: Map<string, RouteInfo>; neighbours: Map<string, string> }> {
    for (const d of dsts) if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(d)) throw new NetInfoError(`route lookup: bad IPv4 address "${d}"`);
    const r = await this.runner.run('ip', ['-j', '-force', '-batch', '-'], ['neigh show\n', ...dsts.map((d) => `route get ${d}\n`)].join(''));
    const nl = r.stdout.indexOf('\n');
    const first = nl < 0 ? r.stdout : r.stdout.slice(0, nl);
    if (!first.trimStart().startsWith('[')) throw new NetInfoError(`ip -batch: no neighbour table in the answer: ${r.stderr.trim() || first.slice(0, 200)}`);
    return { neighbours: parseNeighTable(first), routes: parseRouteBatch(nl < 0 ? '' : r.stdout.slice(nl + 1)) };
  }

  /** The whole neighbour table, "dev addr" → MAC (usable entries only), in one `ip` process. */
  async neighbours(): Promise<Map<string, string>> {
    return parseNeighTable(await this.ip(['-j', 'neigh', 'show']));
  }

  /** Makes the kernel resolve `addr` (see NetInfoOptions.probe). */
  probeNeighbour(addr: string): Promise<void> {
    return this.probe(addr);
  }

  wait(ms: number): Promise<void> {
    return this.sleep(ms);
  }

  /** The MAC of `addr` on `ifname`, resolving it when the kernel does not know it yet.
   *  Waits at most `timeoutMs`; null when the neighbour does not answer. */
  async neighbourMac(addr: string, ifname: string, timeoutMs = 3000): Promise<string | null> {
    const show = ['-j', 'neigh', 'show', 'to', addr, 'dev', ifname];
    let mac = parseNeighMac(await this.ip(show), addr);
    if (mac) return mac;
    const deadline = Date.now() + timeoutMs;
    let nextProbe = 0;
    while (Date.now() < deadline) {
      if (Date.now() >= nextProbe) {
        await this.probe(addr);
        nextProbe = Date.now() + 1000;
      }
      await this.sleep(50);
      mac = parseNeighMac(await this.ip(show), addr);
      if (mac) return mac;
    }
    return null;
  }

  private async ip(args: string[]): Promise<string> {
    const r = await this.runner.run('ip', args);
    if (r.status !== 0) throw new NetInfoError(`ip ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
    return r.stdout;
  }
}

function udpDiscardProbe(addr: string): Promise<void> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.on('error', () => {
      sock.close();
      resolve();
    });
    sock.send(Buffer.alloc(0), 9, addr, () => {
      sock.close();
      resolve();
    });
  });
}
