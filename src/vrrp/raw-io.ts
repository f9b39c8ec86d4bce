// The real io module for the VRRP worker (workerData.io.module = require.resolve of this file):
// - adverts on a raw IPPROTO_VRRP (112) socket per interface from the native addon, IP_HDRINCL
//   so the packet is exactly what VrrpWire builds (TTL 255, TOS 0xc0, our source address), the
//   multicast group joined on that interface, readiness from a libuv fd watcher (no polling);
// - VIPs with iproute2 (`ip -4 addr add|del`), the way an operator would, queued so they apply in order;
// - gratuitous ARP as Ethernet frames on a send-only AF_PACKET socket;
// - link state from the addon's interface look-up, polled.
// Needs CAP_NET_RAW and CAP_NET_ADMIN (root in the network namespace).

import { execFile } from 'node:child_process';
import { ipv4ToInt, macToInt } from '../packet/addr';
import {
  FdWatcher,
  NativeAddon,
  PacketSocket,
  RAW_INFO_IFINDEX,
  RawSocket,
  loadNative,
} from '../native/addon';
import { gratuitousArpFrame } from './garp';
import { CreateVrrpIo, VrrpIo, VrrpIoContext } from './protocol';
import { AdvertSink, Logger, OutgoingAdvert, SocketEndpoint, VipManager, VirtualAddress, VrrpSocket } from './types';
import { VrrpWire } from './wire';
import { IPPROTO_VRRP } from '../packet/ipv4';

export interface RawIoOptions {
  /** How often link state is polled for track_interface (ms). Default 500. */
  interfacePollMs?: number;
  /** The iproute2 binary. Default "ip". */
  ipCommand?: string;
}

const RECV_BUFFER = 2048;
/** Reads per readiness callback, so a flood cannot starve the timers. */
const MAX_READS = 64;
/** Failed callbacks in a row (reads or poll errors) after which an interface's socket is closed
 *  and opened again by the next retry() (the link poller's): a socket that fails this often is
 *  broken, and retrying it would spin. */
export const MAX_VRRP_ERRORS_IN_A_ROW = 50;
/** A poll error stops libuv's watcher; it is started again after this long. */
const POLL_RETRY_MS = 100;

interface Endpoint {
  name: string;
  ifindex: number;
  raw: RawSocket;
  watcher: FdWatcher;
  group: string | undefined;
  /** Failed callbacks since the last good one. */
  errorsInARow: number;
  retryTimer: NodeJS.Timeout | null;
  source: SocketEndpoint;
}

export class RawVrrpSocket implements VrrpSocket {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly wire = new VrrpWire();
  private readonly buffer = new Uint8Array(RECV_BUFFER);
  private readonly info = new Uint32Array(4);
  private ipId = 1;
  undecodable = 0;
  /** Failed reads and poll errors on the sockets (logged; see onReadable). */
  readErrors = 0;
  pollErrors = 0;

  constructor(
    private readonly native: NativeAddon,
    private readonly sink: AdvertSink,
    private readonly logger: Logger,
    wanted: readonly SocketEndpoint[],
  ) {
    for (const e of wanted) this.tryOpen(e);
  }

  private readonly missing = new Map<string, SocketEndpoint>();

  /**
   * An interface that does not exist yet is not fatal: its instances sit in FAULT (link down)
   * and the socket opens when the interface appears (retry() from the link poller).
   */
  private tryOpen(e: SocketEndpoint): void {
    try {
      this.open(e.interfaceName, e.ifindex, e.multicastGroup, e);
      this.missing.delete(e.interfaceName);
    } catch (err) {
      if (!this.missing.has(e.interfaceName)) {
        this.logger.warn(`vrrp: cannot listen on ${e.interfaceName} yet: ${err instanceof Error ? err.message : String(err)}`);
      }
      this.missing.set(e.interfaceName, { ...e, ifindex: 0 });
    }
  }

  retry(): void {
    for (const e of [...this.missing.values()]) this.tryOpen(e);
  }

  private open(name: string, knownIfindex: number, group: string | undefined, source: SocketEndpoint): Endpoint {
    const ifindex = knownIfindex || this.native.ifIndex(name);
    const raw = new this.native.RawSocket({
      protocol: IPPROTO_VRRP,
      device: name,
      hdrincl: true,
      ttl: 255,
      multicastTtl: 255,
      multicastIf: ifindex,
      multicastLoop: false,
    });
    if (group !== undefined) raw.addMembership(group, ifindex);
    const endpoint: Endpoint = { name, ifindex, raw, group, watcher: undefined as unknown as FdWatcher, errorsInARow: 0, retryTimer: null, source };
    endpoint.watcher = new this.native.FdWatcher(raw.fd, (status) => this.onReadable(endpoint, status));
    endpoint.watcher.start(1);
    this.endpoints.set(name, endpoint);
    return endpoint;
  }

  /**
   * The watcher's callback: nothing may escape it (an exception there ends the VRRP thread). A
   * poll error (libuv stopped the watcher) is logged and the watcher started again shortly; a
   * failed read is logged and counted; MAX_VRRP_ERRORS_IN_A_ROW failures in a row close the
   * socket, and the next retry() opens it again (its instances meanwhile hear no adverts, as on a
   * link that is down).
   */
  private onReadable(endpoint: Endpoint, status: number): void {
    if (this.endpoints.get(endpoint.name) !== endpoint) return;
    if (status < 0) {
      this.pollErrors++;
      this.logger.warn(`vrrp socket on ${endpoint.name}: poll error ${status}; watching again in ${POLL_RETRY_MS} ms`);
      if (this.failed(endpoint, `poll error ${status}`)) return;
      endpoint.retryTimer = setTimeout(() => {
        endpoint.retryTimer = null;
        if (this.endpoints.get(endpoint.name) === endpoint) endpoint.watcher.start(1);
      }, POLL_RETRY_MS);
      endpoint.retryTimer.unref();
      return;
    }
    try {
      this.drain(endpoint);
      endpoint.errorsInARow = 0;
    } catch (err) {
      this.readErrors++;
      const msg = err instanceof Error ? err.message : String(err);
      if (endpoint.errorsInARow === 0) this.logger.warn(`vrrp socket on ${endpoint.name}: read failed: ${msg}`);
      this.failed(endpoint, msg);
    }
  }

  /** One more failure in a row; true when the socket was closed for it (to be reopened by retry()). */
  private failed(endpoint: Endpoint, what: string): boolean {
    if (++endpoint.errorsInARow < MAX_VRRP_ERRORS_IN_A_ROW) return false;
    this.logger.error(`vrrp socket on ${endpoint.name} failed ${endpoint.errorsInARow} times in a row (last: ${what}); closed, reopening`);
    this.closeEndpoint(endpoint);
    this.endpoints.delete(endpoint.name);
    this.missing.set(endpoint.name, { ...endpoint.source, ifindex: 0 });
    return true;
  }

  private drain(endpoint: Endpoint): void {
    for (let i = 0; i < MAX_READS; i++) {
      const n = endpoint.raw.recv(this.buffer, this.info);
      if (n < 0) return;
      const decoded = this.wire.decode(this.buffer.subarray(0, n), this.info[RAW_INFO_IFINDEX] || endpoint.ifindex);
      if ('error' in decoded) {
        this.undecodable++;
        continue;
      }
      this.sink.receive(decoded.advert, decoded.receipt);
    }
  }

  send(advert: OutgoingAdvert): void {
    let endpoint = this.endpoints.get(advert.interfaceName);
    if (endpoint === undefined) {
      this.retry();
      endpoint = this.endpoints.get(advert.interfaceName);
      if (endpoint === undefined) {
        if (advert.priority !== 0) this.logger.warn(`vrrp: no socket on ${advert.interfaceName}; advert not sent`);
        return;
      }
    }
    const source = advert.source ?? '0.0.0.0';
    const packet = this.wire.encodePacket(advert, source, this.ipId);
    this.ipId = (this.ipId + 1) & 0xffff;
    let sent: number;
    try {
      sent = endpoint.raw.send(packet, packet.length, advert.destination);
    } catch (err) {
      // keepalived does not log a failed priority-0 advert on a link that is down.
      if (advert.priority !== 0) this.logger.warn(`vrrp: send advert to ${advert.destination} on ${endpoint.name}: ${String(err)}`);
      return;
    }
    if (sent < 0) this.logger.warn(`vrrp: send advert to ${advert.destination} on ${endpoint.name}: socket buffer full`);
  }

  close(): void {
    for (const e of this.endpoints.values()) this.closeEndpoint(e);
    this.endpoints.clear();
  }

  private closeEndpoint(e: Endpoint): void {
    if (e.retryTimer) clearTimeout(e.retryTimer);
    e.retryTimer = null;
    e.watcher.stop();
    e.watcher.close();
    if (e.group !== undefined) {
      try {
        e.raw.dropMembership(e.group, e.ifindex);
      } catch {
        // The interface may be gone already; closing the socket leaves the group anyway.
      }
    }
    e.raw.close();
  }
}

class IprouteVips implements VipManager {
  private queue: Promise<void> = Promise.resolve();
  private readonly arpSockets = new Map<string, { socket: PacketSocket; mac: number }>();
  private readonly offsets = new Uint32Array(1);
  private readonly lengths = new Uint32Array(1);

  constructor(
    private readonly native: NativeAddon,
    private readonly logger: Logger,
    private readonly ipCommand: string,
  ) {}

  private run(args: string[], ignore: RegExp): void {
    this.queue = this.queue.then(
      () =>
        new Promise<void>((resolve) => {
          execFile(this.ipCommand, args, { timeout: 5000 }, (err, _stdout, stderr) => {
            if (err && !ignore.test(String(stderr))) {
              this.logger.warn(`vrrp: ${this.ipCommand} ${args.join(' ')}: ${String(stderr).trim() || err.message}`);
            }
            resolve();
          });
        }),
    );
  }

  private addressArgs(op: 'add' | 'del', vip: VirtualAddress): string[] {
    const args = ['-4', 'addr', op, `${vip.address}/${vip.prefixLength}`, 'dev', vip.dev];
    if (op === 'add') {
      if (vip.broadcast !== undefined) args.push('broadcast', vip.broadcast);
      if (vip.label !== undefined) args.push('label', vip.label);
      if (vip.scope !== undefined) args.push('scope', vip.scope);
    }
    return args;
  }

  add(vip: VirtualAddress): void {
    this.run(this.addressArgs('add', vip), /File exists|Address already assigned/);
  }

  remove(vip: VirtualAddress): void {
    this.run(this.addressArgs('del', vip), /Cannot assign requested address|Address not found/);
  }

  purge(vip: VirtualAddress): void {
    this.remove(vip);
  }

  /** Resolves once every queued address change has been applied. */
  settled(): Promise<void> {
    return this.queue;
  }

  gratuitousArp(vip: VirtualAddress): void {
    try {
      let entry = this.arpSockets.get(vip.dev);
      if (entry === undefined) {
        const info = this.native.ifInfo(vip.dev);
        entry = { socket: new this.native.PacketSocket({ ifindex: info.index, protocol: 0 }), mac: macToInt(info.mac) };
        this.arpSockets.set(vip.dev, entry);
      }
      const frame = gratuitousArpFrame(entry.mac, ipv4ToInt(vip.address));
      this.offsets[0] = 0;
      this.lengths[0] = frame.length;
      entry.socket.send(frame, this.offsets, this.lengths, 1);
    } catch (err) {
      this.logger.warn(`vrrp: gratuitous ARP for ${vip.address} on ${vip.dev}: ${String(err)}`);
    }
  }

  close(): void {
    for (const { socket } of this.arpSockets.values()) socket.close();
    this.arpSockets.clear();
  }
}

export const createVrrpIo: CreateVrrpIo = (options: unknown, context: VrrpIoContext): VrrpIo => {
  const opts = (options ?? {}) as RawIoOptions;
  const native = loadNative();
  const vips = new IprouteVips(native, context.logger, opts.ipCommand ?? 'ip');
  let socket: RawVrrpSocket | undefined;
  let poller: NodeJS.Timeout | undefined;
  const watched = new Map<string, boolean>();
  const isUp = (name: string): boolean => {
    try {
      const info = native.ifInfo(name);
      return info.up && info.running;
    } catch {
      return false;
    }
  };
  return {
    socketFactory: (sink, endpoints) => {
      socket = new RawVrrpSocket(native, sink, context.logger, endpoints);
      return socket;
    },
    vips,
    interfaces: {
      isUp: (name) => {
        const up = isUp(name);
        watched.set(name, up);
        return up;
      },
    },
    watchInterfaces: (onChange) => {
      poller = setInterval(() => {
        socket?.retry();
        for (const [name, was] of watched) {
          const up = isUp(name);
          if (up !== was) {
            watched.set(name, up);
            onChange(name, up);
          }
        }
      }, opts.interfacePollMs ?? 500);
    },
    close: async () => {
      if (poller !== undefined) clearInterval(poller);
      socket?.close();
      // Let the VIP removals of the shutdown sequence finish before the thread exits.
      await vips.settled();
      vips.close();
    },
  };
};
