// ICMP on the forwarding path, as IPVS handles it.
//
// 1. Errors the director itself sends (icmp_send from ip_vs_xmit.c): "time exceeded" when a
//    packet's TTL would reach 0 (decrement_ttl), "fragmentation needed" with MTU − 20 when a DF
//    packet no longer fits in the tunnel (ensure_mtu_is_adequate). The kernel's icmp_send takes
//    as source the packet's destination when that is a local address (the VIP of a client's
//    packet), else an address of the director (for a NAT reply: its address toward the real
//    server). They are written into the worker's TX buffer.
//
// 2. Errors about a tracked flow, sent to the party that owns it (ip_vs_in_icmp, ip_vs_out_icmp):
//    - from the client's side, quoting a packet VIP:vport → client (a NAT reply, or a DR/TUN
//      reply the real server sent directly): the connection is client → VIP. NAT: the outer
//      destination VIP becomes RIP and the quoted source VIP:vport becomes RIP:rport
//      (ip_vs_nat_icmp), then it goes to the real server; DR/TUN: forwarded unchanged to the
//      real server (MAC rewrite, or encapsulated).
//    - from the real server's side, quoting client → RIP:rport (NAT only): the outer source
//      becomes VIP and the quoted destination VIP:vport (ip_vs_nat_icmp with inout = 0), then it
//      goes to the client.
//    Before that, as IPVS does in both directions (ip_vs_in_icmp, handle_response_icmp), the
//    ICMP checksum is verified (a bad one: dropped, BAD_ICMP_CHECKSUM), and an error quoting a
//    non-first fragment is not ours (its quote has no transport header, so no ports to look up:
//    the kernel's own ICMP handling gets it).
//    The quoted IP header checksum and the ICMP checksum are recomputed in full (an error is at
//    most 576 bytes; IPVS recomputes too), the outer IP checksum is updated incrementally. The
//    quoted transport checksum is left alone, as IPVS leaves it (it covers bytes not quoted).

import { DropReason } from '../packet/drop';
import { checksumUpdate32, internetChecksum } from '../packet/checksum';
import { IcmpHeader, writeIcmpError } from '../packet/icmp';
import { Ipv4Header } from '../packet/ipv4';
import type { TxQueue } from '../tables/tx-queue';
import type { NextHopTable } from '../tables/next-hop';

const ETH_BYTES = 14;
/** TTL of the errors uvs originates (the kernel's default ip_default_ttl). */
export const ICMP_ERROR_TTL = 64;

/**
 * Rate limit of the errors uvs originates, as the kernel limits icmp_send (net/ipv4/icmp.c):
 *  - per destination (icmpv4_xrlim_allow → inet_peer_xrlim_allow): one error per
 *    `perDestMs` (net.ipv4.icmp_ratelimit, 1000 ms) with a burst of 6 (XRLIM_BURST_FACTOR);
 *  - overall (icmp_global_allow): `perSec` errors a second (net.ipv4.icmp_msgs_per_sec, 1000)
 *    with a burst of `burst` (net.ipv4.icmp_msgs_burst, 50);
 *  - "fragmentation needed" is never limited ("Don't limit PMTU discovery", icmpv4_mask_allow),
 *    and of icmp_ratemask's types uvs sends only that and "time exceeded".
 * One budget for the whole daemon, as the kernel's is per host: the state lives in `buffer`, a
 * SharedArrayBuffer the data plane hands to every worker (WorkerInit.icmpLimit), so N workers
 * together send what one director may, not N times that.
 *
 * Each bucket is one 32-bit cell holding its "theoretical arrival time" (GCRA, the token bucket
 * written as a time): how far past now the errors already sent have used up the rate. An error
 * costs one interval (T) and the bucket holds `burst` of them: it may go when the debt plus T
 * stays within burst × T. One cell means one compareExchange per update, no lock, no allocation.
 * Times wrap at 32 bits (the overall bucket in µs: 71 min; the per-destination ones in ms: 49
 * days); a debt beyond burst × T cannot be real, so it is read as an old wrapped value, i.e. a
 * full bucket. The order is the kernel's (since 6.11): overall credit looked at, then the
 * destination's token taken, then the overall credit taken (never below empty).
 * The per-destination state is a fixed table of `slots` (key, time) pairs indexed by a hash of
 * the address, so a flood of sources costs no memory: a collision starts the newcomer with a
 * full burst, as a new inet_peer would. Errors held back are counted as ICMP_RATELIMITED.
 */
export class IcmpRateLimit {
  /** The shared state: cell 0 the overall bucket, then (key, time) per destination slot. */
  readonly buffer: SharedArrayBuffer;
  private readonly cells: Int32Array;
  private readonly mask: number;
  /** Overall: µs per error and the bucket's depth in µs. */
  private readonly globalT: number;
  private readonly globalCap: number;

  /** Bytes of the shared state for `slots` destination slots. */
  static bytes(slots = 1024): number {
    return (2 + 2 * slots) * 4;
  }

  constructor(
    readonly perDestMs = 1000,
    readonly perSec = 1000,
    readonly burst = 50,
    slots = 1024,
    buffer?: SharedArrayBuffer,
  ) {
    if (!Number.isInteger(Math.log2(slots))) throw new RangeError(`IcmpRateLimit: slots must be a power of two, got ${slots}`);
    if (!(perDestMs >= 1 && perSec >= 1 && burst >= 1)) throw new RangeError(`IcmpRateLimit: perDestMs ${perDestMs}, perSec ${perSec} and burst ${burst} must be at least 1`);
    const bytes = IcmpRateLimit.bytes(slots);
    if (buffer !== undefined && buffer.byteLength !== bytes) {
      throw new RangeError(`IcmpRateLimit: the shared buffer has ${buffer.byteLength} bytes, ${slots} slots need ${bytes}`);
    }
    this.buffer = buffer ?? new SharedArrayBuffer(bytes);
    this.cells = new Int32Array(this.buffer);
    this.mask = slots - 1;
    this.globalT = Math.max(1, Math.round(1e6 / perSec));
    this.globalCap = burst * this.globalT;
  }

  /** A limiter over the state another thread created (`buffer`), with the default rates. */
  static over(buffer: SharedArrayBuffer): IcmpRateLimit {
    return new IcmpRateLimit(undefined, undefined, undefined, buffer.byteLength / 8 - 1, buffer);
  }

  /** True when an error of `type`/`code` to `dst` may go now (and takes its tokens). */
  allow(dst: number, type: number, code: number, nowMs: number): boolean {
    if (type === 3 && code === 4) return true;
    const nowUs = (nowMs * 1000) | 0;
    if (!this.room(0, nowUs, this.globalT, this.globalCap)) return false;
    dst |= 0;
    const slot = 2 + 2 * ((Math.imul(dst, 0x9e3779b1) >>> 22) & this.mask);
    const cells = this.cells;
    if (Atomics.load(cells, slot) !== dst) {
      // A newcomer (or a collision): a full burst, as a new inet_peer.
      Atomics.store(cells, slot + 1, nowMs | 0);
      Atomics.store(cells, slot, dst);
    }
    if (!this.take(slot + 1, nowMs | 0, this.perDestMs, 6 * this.perDestMs, false)) return false;
    this.take(0, nowUs, this.globalT, this.globalCap, true);
    return true;
  }

  /** The debt of bucket `cell` past `now` (0..cap; a value outside it is an old, wrapped one). */
  private debt(tat: number, now: number, cap: number): number {
    const ahead = (tat - now) | 0;
    return ahead < 0 || ahead > cap ? 0 : ahead;
  }

  /** Whether bucket `cell` has room for one more error of cost `t` now. */
  private room(cell: number, now: number, t: number, cap: number): boolean {
    return this.debt(Atomics.load(this.cells, cell), now, cap) + t <= cap;
  }

  /** Takes one error of cost `t` from bucket `cell`: false when it has no room, unless `force`
   *  (the overall credit taken after the destination's, clamped at empty as the kernel's). */
  private take(cell: number, now: number, t: number, cap: number, force: boolean): boolean {
    const cells = this.cells;
    for (;;) {
      const tat = Atomics.load(cells, cell);
      let next = this.debt(tat, now, cap) + t;
      if (next > cap) {
        if (!force) return false;
        next = cap;
      }
      if (Atomics.compareExchange(cells, cell, tat, (now + next) | 0) === tat) return true;
    }
  }
}

export class IcmpResponder {
  private readonly tx: TxQueue;
  private readonly vnetLen: number;
  private readonly ip = new Ipv4Header();
  private readonly icmp = new IcmpHeader();
  private id = 1;
  /** The caller's clock (ms), set before each packet: the rate limit reads it. */
  nowMs = 0;
  readonly limit: IcmpRateLimit;

  /** `limit`: the daemon's one budget (IcmpRateLimit over the shared buffer); a private one by default. */
  constructor(tx: TxQueue, vnetHdr: boolean, limit: IcmpRateLimit = new IcmpRateLimit()) {
    this.tx = tx;
    this.vnetLen = vnetHdr ? 10 : 0;
    this.limit = limit;
  }

  /**
   * Answers the packet at frame[l3 .. l3 + ipLen) (Ethernet header at l2) with an ICMP error
   * from `src` to the packet's source, sent back the way it came: out of `egress` (the ingress
   * interface) to the frame's source MAC, from its destination MAC. ICMP_RATELIMITED when the
   * rate limit holds it back (IcmpRateLimit).
   */
  toSender(frame: Uint8Array, l2: number, l3: number, ipLen: number, type: number, code: number, rest: number, src: number, egress: number): DropReason | 0 {
    if (!this.limit.allow(read32(frame, l3 + 12), type, code, this.nowMs)) return DropReason.ICMP_RATELIMITED;
    const at = this.begin();
    if (at < 0) return DropReason.TX_BUFFER_FULL;
    const out = this.tx.buffer;
    const eth = at + this.vnetLen;
    for (let i = 0; i < 6; i++) {
      out[eth + i] = frame[l2 + 6 + i]!;
      out[eth + 6 + i] = frame[l2 + i]!;
    }
    return this.finish(at, frame, l3, ipLen, type, code, rest, src, egress);
  }

  /** The same toward a real server (a NAT reply that cannot go on): MACs from its next hop. */
  toRealServer(frame: Uint8Array, l3: number, ipLen: number, type: number, code: number, rest: number, nextHops: NextHopTable, destSlot: number): DropReason | 0 {
    if (!this.limit.allow(read32(frame, l3 + 12), type, code, this.nowMs)) return DropReason.ICMP_RATELIMITED;
    const at = this.begin();
    if (at < 0) return DropReason.TX_BUFFER_FULL;
    nextHops.writeMacs(destSlot, this.tx.buffer, at + this.vnetLen);
    return this.finish(at, frame, l3, ipLen, type, code, rest, nextHops.srcAddr(destSlot), nextHops.egress(destSlot));
  }

  private begin(): number {
    const at = this.tx.reserve(this.vnetLen + ETH_BYTES + 576);
    if (at < 0) return -1;
    for (let i = at; i < at + this.vnetLen; i++) this.tx.buffer[i] = 0;
    return at;
  }

  private finish(at: number, frame: Uint8Array, l3: number, ipLen: number, type: number, code: number, rest: number, src: number, egress: number): DropReason | 0 {
    const out = this.tx.buffer;
    const eth = at + this.vnetLen;
    out[eth + 12] = 0x08;
    out[eth + 13] = 0x00;
    const dst = ((frame[l3 + 12]! << 24) | (frame[l3 + 13]! << 16) | (frame[l3 + 14]! << 8) | frame[l3 + 15]!) >>> 0;
    const n = writeIcmpError(out, this.tx.view, eth + ETH_BYTES, this.ip, this.icmp, type, code, rest, src, dst, ICMP_ERROR_TTL, this.id, frame, l3, ipLen);
    this.id = (this.id + 1) & 0xffff;
    if (n < 0) return DropReason.TX_BUFFER_FULL;
    if (!this.tx.commit(at, this.vnetLen + ETH_BYTES + n, egress)) return DropReason.TX_BUFFER_FULL;
    return 0;
  }
}

function read32(f: Uint8Array, at: number): number {
  return ((f[at]! << 24) | (f[at + 1]! << 16) | (f[at + 2]! << 8) | f[at + 3]!) >>> 0;
}
function write32(f: Uint8Array, at: number, v: number): void {
  f[at] = v >>> 24;
  f[at + 1] = (v >>> 16) & 0xff;
  f[at + 2] = (v >>> 8) & 0xff;
  f[at + 3] = v & 0xff;
}

/**
 * ip_vs_nat_icmp over the ICMP error whose outer IPv4 header is at `l3`, ICMP message at
 * `icmpAt` (`icmpLen` bytes) and quoted IPv4 header at `quotedL3` (transport at `quotedL4`):
 *   toRealServer = true  (ip_vs_in_icmp):  outer dst := addr, quoted src := addr:port;
 *   toRealServer = false (ip_vs_out_icmp): outer src := addr, quoted dst := addr:port.
 * Checksums as the header comment says. TTL is the caller's business.
 */
export function natIcmpRewrite(
  frame: Uint8Array,
  l3: number,
  icmpAt: number,
  icmpLen: number,
  quotedL3: number,
  quotedL4: number,
  toRealServer: boolean,
  addr: number,
  port: number,
): void {
  addr >>>= 0;
  const outerField = l3 + (toRealServer ? 16 : 12);
  const oldOuter = read32(frame, outerField);
  write32(frame, outerField, addr);
  const ipc = (frame[l3 + 10]! << 8) | frame[l3 + 11]!;
  const newIpc = checksumUpdate32(ipc, oldOuter, addr);
  frame[l3 + 10] = newIpc >>> 8;
  frame[l3 + 11] = newIpc & 0xff;

  write32(frame, quotedL3 + (toRealServer ? 12 : 16), addr);
  const portAt = quotedL4 + (toRealServer ? 0 : 2);
  frame[portAt] = port >>> 8;
  frame[portAt + 1] = port & 0xff;
  const qhl = (frame[quotedL3]! & 0x0f) * 4;
  frame[quotedL3 + 10] = 0;
  frame[quotedL3 + 11] = 0;
  const qc = internetChecksum(frame, quotedL3, qhl);
  frame[quotedL3 + 10] = qc >>> 8;
  frame[quotedL3 + 11] = qc & 0xff;

  frame[icmpAt + 2] = 0;
  frame[icmpAt + 3] = 0;
  const c = internetChecksum(frame, icmpAt, icmpLen);
  frame[icmpAt + 2] = c >>> 8;
  frame[icmpAt + 3] = c & 0xff;
}
