// uvs-tun-decap: IP-in-IP decapsulation in userspace, for real servers whose kernel has no
// `ipip` module (so no tunl0) — the LVS-TUN real-server side.
//
// A raw socket for IP protocol 4 receives every IPIP packet addressed to this host (the kernel
// delivers a protocol it has no handler for to raw sockets, and sends no "protocol unreachable"
// when one took it; fragments arrive reassembled, raw delivery runs after defragmentation). The
// agent checks the outer header (RFC 2003: protocol 4, not a fragment, optionally addressed to
// --local), moves the inner packet to the front of its buffer and writes it into a TUN device
// (IFF_TUN | IFF_NO_PI). The kernel receives it there as if from a wire: the usual LVS-TUN
// real-server set-up then works unchanged — the VIP on lo, rp_filter off (the inner source, the
// client, is not routed via the TUN device), arp_ignore/arp_announce so the real server does
// not answer ARP for the VIP.
//
// The agent is event-driven (an FdWatcher on the raw socket, no polling thread) and allocates
// nothing per packet.
//
// With `gro` (the CLI's default; --no-gro turns it off) the TUN device has IFF_VNET_HDR and
// consecutive TCP segments of a flow are written as one super-frame (src/tun/gro.ts): the real
// server's stack then runs once per super-frame, as it would behind a NIC with GRO.

import { spawnSync } from 'node:child_process';
import { RAW_INFO_TRUNCATED, loadNative, type FdWatcher, type NativeAddon, type RawSocket } from '../native/addon';
import { ipipDecapsulate } from '../packet/ipip';
import { Ipv4Header } from '../packet/ipv4';
import { completeL4Checksum, holdsPseudoSum } from '../packet/checksum';
import { DropReason, dropReasonName } from '../packet/drop';
import { TcpCoalescer, VNET_HDR_BYTES } from './gro';
import type { Logger } from '../runtime/log';
import { UvsError } from '../runtime/errors';

export interface DecapOptions {
  /** TUN device name (≤ 15 characters). */
  device: string;
  /** Accept only IPIP packets whose outer destination is this address (host order); 0 = any. */
  local: number;
  /** Tunnel MTU set on the device (default 1480: 1500 − the outer header). */
  mtu: number;
  /**
   * Outer source addresses (host order) accepted: the directors. Empty or absent: any source —
   * then any host that can reach this one can inject packets behind its firewall, so the CLI warns.
   */
  allow?: readonly number[];
  /** Join TCP segments into super-frames (IFF_VNET_HDR, gro.ts). Default false here, true in the CLI. */
  gro?: boolean;
  log: Logger;
  /** For tests: the addon (default: loadNative()). */
  native?: NativeAddon;
  /** For tests: brings the device up with the MTU (default: `ip link set dev NAME mtu MTU up`). */
  linkUp?: (name: string, mtu: number) => void;
  /** Called once when the agent gave up (its raw socket keeps failing) and stopped itself; the
   *  CLI exits non-zero with the message. Default: log it. */
  onFatal?: (err: Error) => void;
}

export interface DecapStats {
  received: number;
  delivered: number;
  notLocal: number;
  /** IPIP datagrams from a source not in --allow. */
  notAllowed: number;
  /** Drops by reason name. */
  dropped: Record<string, number>;
  /** With gro: super-frames written (2+ segments each), and the datagrams they carried. */
  superFrames: number;
  superSegments: number;
  /** Writes to the TUN device that failed (EIO while it is down, ...): those datagrams dropped. */
  writeErrors: number;
  /** Failed reads of the raw socket, and poll errors on it. */
  readErrors: number;
  pollErrors: number;
  /** Inner checksums completed (CHECKSUM_PARTIAL packets: see handle()). */
  checksumsCompleted: number;
}

export class DecapError extends UvsError {
  constructor(message: string) {
    super('UVS_ERR_TUN_DECAP', message);
  }
}

/** Datagrams read per readiness callback before yielding to the event loop. */
const MAX_READS = 256;
/** Readiness callbacks in a row whose read failed (or poll errors in a row) before the agent
 *  gives up: a socket that fails this often is broken, not busy, and retrying would spin. */
export const MAX_ERRORS_IN_A_ROW = 50;
/** A poll error stops libuv's watcher; it is started again after this long. */
const POLL_RETRY_MS = 100;
const BUFFER_BYTES = 65536 + 64;
/** handle(): the outer destination is not --local. */
const NOT_LOCAL = -1;
/** handle(): the outer source is not in --allow. */
const NOT_ALLOWED = -2;
/** handle(): the write to the TUN device failed (writeErrors). */
const WRITE_FAILED = -3;
/** handle(): the datagram joined a super-frame not yet written (counted when it is: flush()). */
const PENDING = -4;

export class TunDecapAgent {
  private readonly opts: DecapOptions;
  private readonly native: NativeAddon;
  /** Where each datagram is received (and the inner packet moved to the front before writing). */
  readonly buffer = new Uint8Array(BUFFER_BYTES);
  private readonly view = new DataView(this.buffer.buffer);
  private readonly info = new Int32Array(4);
  private readonly outer = new Ipv4Header();
  private readonly inner = new Ipv4Header();
  private raw: RawSocket | null = null;
  private watcher: FdWatcher | null = null;
  private tunFd = -1;
  /** The device name the kernel gave. */
  deviceName = '';
  received = 0;
  delivered = 0;
  /** IPIP packets for another of this host's addresses than --local: left alone. */
  notLocal = 0;
  /** IPIP packets from a source not in --allow: dropped. */
  notAllowed = 0;
  /** --allow as a set (host order); empty = any source. */
  private readonly allow: Set<number>;
  private readonly drops = new Float64Array(64);
  writeErrors = 0;
  readErrors = 0;
  pollErrors = 0;
  /** Inner TCP/UDP checksums that held the pseudo-header sum only (CHECKSUM_PARTIAL), completed. */
  checksumsCompleted = 0;
  /** Failed callbacks since the last good one. */
  private errorsInARow = 0;
  /** The last write error logged: a device that stays down logs once, not per datagram. */
  private lastWriteError = '';
  private retryTimer: NodeJS.Timeout | null = null;
  /** With gro: the super-frame being built; null without. */
  private readonly gro: TcpCoalescer | null;

  constructor(opts: DecapOptions) {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(opts.device)) {
      throw new DecapError(`--dev ${JSON.stringify(opts.device)}: an interface name is 1-15 letters, digits, "_", "." or "-"`);
    }
    if (!Number.isInteger(opts.mtu) || opts.mtu < 68 || opts.mtu > 65535) throw new DecapError(`--mtu ${opts.mtu}: expected 68..65535`);
    this.opts = opts;
    this.allow = new Set((opts.allow ?? []).map((a) => a >>> 0));
    this.native = opts.native ?? loadNative();
    // No strict header checks beyond what forwarding needs: the outer checksum is verified by
    // the kernel before raw delivery, the inner one by the stack it is handed to.
    this.outer.verifyChecksum = false;
    this.inner.verifyChecksum = false;
    this.gro = opts.gro === true ? new TcpCoalescer() : null;
  }

  /** Opens the TUN device (brings it up with the tunnel MTU) and the raw socket. */
  start(): void {
    let tun: { fd: number; name: string };
    try {
      tun = this.gro ? this.native.tunOpen(this.opts.device, true) : this.native.tunOpen(this.opts.device);
    } catch (err) {
      throw new DecapError(`cannot create TUN device ${this.opts.device}: ${(err as Error).message} ` +
        '(needs root or CAP_NET_ADMIN, and /dev/net/tun)');
    }
    this.tunFd = tun.fd;
    this.deviceName = tun.name;
    try {
      (this.opts.linkUp ?? linkUp)(tun.name, this.opts.mtu);
    } catch (err) {
      this.stop();
      throw err;
    }
    try {
      this.raw = new this.native.RawSocket({ protocol: 4, rcvbuf: 4 << 20 });
    } catch (err) {
      this.stop();
      throw new DecapError(`cannot open a raw socket for IP protocol 4 (IPIP): ${(err as Error).message} (needs root or CAP_NET_RAW)`);
    }
    const raw = this.raw;
    this.watcher = new this.native.FdWatcher(raw.fd, (status) => this.onReadable(status));
    this.watcher.start(1);
  }

  /**
   * The watcher's callback. Nothing may escape it: an exception there is uncaught and ends the
   * process (the tunnel with it). A poll error (libuv has stopped the watcher) is logged and the
   * watcher started again shortly; a failed read is logged and counted; either failing
   * MAX_ERRORS_IN_A_ROW times in a row stops the agent with a clear error (onFatal).
   */
  private onReadable(status: number): void {
    if (!this.raw) return;
    if (status < 0) {
      this.pollErrors++;
      this.opts.log.error(`raw socket poll error ${status}; watching again in ${POLL_RETRY_MS} ms`);
      if (this.failed(`poll error ${status}`)) return;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.watcher?.start(1);
      }, POLL_RETRY_MS);
      this.retryTimer.unref();
      return;
    }
    try {
      this.drain();
      this.errorsInARow = 0;
    } catch (err) {
      this.readErrors++;
      const msg = (err as Error).message;
      if (this.errorsInARow === 0) this.opts.log.error(`raw socket read failed: ${msg}`);
      this.failed(msg);
    }
  }

  /** One more failure in a row; true when that was one too many and the agent stopped. */
  private failed(what: string): boolean {
    if (++this.errorsInARow < MAX_ERRORS_IN_A_ROW) return false;
    const err = new DecapError(`raw socket for IPIP failed ${this.errorsInARow} times in a row (last: ${what}); stopping`);
    this.stop();
    if (this.opts.onFatal) this.opts.onFatal(err);
    else this.opts.log.error(err.message);
    return true;
  }

  private drain(): void {
    const raw = this.raw;
    if (!raw) return;
    try {
      for (let i = 0; i < MAX_READS; i++) {
        const n = raw.recv(this.buffer, this.info);
        if (n < 0) return;
        this.received++;
        const r = this.handle(n);
        if (r === NOT_LOCAL) this.notLocal++;
        else if (r === NOT_ALLOWED) this.notAllowed++;
        else if (r === WRITE_FAILED || r === PENDING) continue;
        else if (r !== 0) this.drops[r]! += 1;
        else this.delivered++;
      }
    } finally {
      // The end of a batch (or a failed read): what was joined so far goes now, not later.
      this.flush();
    }
  }

  /** Writes the pending super-frame, if any; its datagrams are counted delivered or lost here. */
  flush(): void {
    const gro = this.gro;
    if (!gro || gro.segments === 0) return;
    const segments = gro.segments;
    const n = gro.finish();
    const r = this.write(gro.out, n);
    if (r === 0) this.delivered += segments;
    else if (r === WRITE_FAILED) this.writeErrors += segments - 1; // write() counted one
    else this.drops[r]! += segments;
  }

  /** One datagram of n bytes at the start of the buffer; returns 0, NOT_LOCAL, NOT_ALLOWED, WRITE_FAILED or why it was dropped. */
  handle(n: number): number {
    if (this.info[RAW_INFO_TRUNCATED] !== 0) return DropReason.TRUNCATED_IP;
    const r = ipipDecapsulate(this.buffer, this.view, 0, n, this.outer, this.inner);
    if (r !== 0) return r;
    if (this.opts.local !== 0 && this.outer.dst !== this.opts.local >>> 0) return NOT_LOCAL;
    if (this.allow.size !== 0 && !this.allow.has(this.outer.src >>> 0)) return NOT_ALLOWED;
    const at = this.inner.headerOffset;
    const len = this.inner.totalLength;
    // A CHECKSUM_PARTIAL inner packet: a sender on the director's host (veth) left only the
    // pseudo-header sum in the field, the director's in-kernel TUN fast path kept it that way (a
    // kernel decapsulator carries the skb's checksum state along), and the raw socket hands it over
    // as is. Behind the TUN device the stack would drop it as corrupt: completed here.
    if (!this.inner.isFragment && holdsPseudoSum(this.buffer, this.view, at)) {
      completeL4Checksum(this.buffer, this.view, at);
      this.checksumsCompleted++;
    }
    const gro = this.gro;
    if (gro) {
      if (gro.eligible(this.buffer, this.view, at, len)) {
        if (gro.append(this.buffer, this.view, at)) {
          if (gro.closed) this.flush();
          return PENDING;
        }
        this.flush();
        gro.begin(this.buffer, this.view, at, len);
        if (gro.closed) this.flush();
        return PENDING;
      }
      // Not joinable: after what is pending (order kept), alone with a zero virtio_net_hdr.
      this.flush();
      this.buffer.copyWithin(VNET_HDR_BYTES, at, at + len);
      this.buffer.fill(0, 0, VNET_HDR_BYTES);
      return this.write(this.buffer, VNET_HDR_BYTES + len);
    }
    // fdWrite writes from the buffer's start: move the inner packet there (a memmove, no view).
    this.buffer.copyWithin(0, at, at + len);
    return this.write(this.buffer, len);
  }

  /** Writes buf[0 .. len) to the TUN device: 0, WRITE_FAILED (counted) or TX_BUFFER_FULL (short write). */
  private write(buf: Uint8Array, len: number): number {
    let w: number;
    try {
      w = this.native.fdWrite(this.tunFd, buf, len);
    } catch (err) {
      // EIO while the device is down (tun_get_user), ... : this datagram is lost, the agent goes
      // on; logged when the error changes, counted always.
      this.writeErrors++;
      const msg = (err as Error).message;
      if (msg !== this.lastWriteError) this.opts.log.error(`write to ${this.deviceName} failed: ${msg} (dropping; counted as writeErrors)`);
      this.lastWriteError = msg;
      return WRITE_FAILED;
    }
    this.lastWriteError = '';
    if (w !== len) return DropReason.TX_BUFFER_FULL;
    return 0;
  }

  stats(): DecapStats {
    const dropped: Record<string, number> = {};
    this.drops.forEach((v, i) => {
      if (v > 0) dropped[dropReasonName(i)] = v;
    });
    return {
      received: this.received, delivered: this.delivered, notLocal: this.notLocal, notAllowed: this.notAllowed, dropped,
      superFrames: this.gro?.superFrames ?? 0, superSegments: this.gro?.superSegments ?? 0,
      writeErrors: this.writeErrors, readErrors: this.readErrors, pollErrors: this.pollErrors,
      checksumsCompleted: this.checksumsCompleted,
    };
  }

  stop(): void {
    if (this.tunFd >= 0) this.flush();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.watcher?.stop();
    this.watcher?.close();
    this.watcher = null;
    this.raw?.close();
    this.raw = null;
    if (this.tunFd >= 0) this.native.fdClose(this.tunFd);
    this.tunFd = -1;
  }
}

function linkUp(name: string, mtu: number): void {
  const up = spawnSync('ip', ['link', 'set', 'dev', name, 'mtu', String(mtu), 'up'], { encoding: 'utf8' });
  if (up.status !== 0) throw new DecapError(`ip link set dev ${name} up: ${(up.stderr || up.error?.message || `exit ${up.status}`).trim()}`);
}
