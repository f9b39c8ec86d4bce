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
 * Per worker: N workers allow up to N × perSec together (the kernel's global bucket is per
 * host). The per-destination state is a fixed table of `slots` entries indexed by a hash of the
 * address, so a flood of sources costs no memory: a collision starts the newcomer with a full
 * burst, as a new inet_peer would. Errors held back are counted as ICMP_RATELIMITED.
 */
export class IcmpRateLimit {
  private readonly keys: Uint32Array;
  private readonly used: Uint8Array;
  private readonly tokens: Float64Array;
  private readonly last: Float64Array;
  private readonly mask: number;
  private credit: number;
  private creditAt = -1;

  constructor(
    readonly perDestMs = 1000,
    readonly perSec = 1000,
    readonly burst = 50,
    slots = 1024,
  ) {
    if (!Number.isInteger(Math.log2(slots))) throw new RangeError(`IcmpRateLimit: slots must be a power of two, got ${slots}`);
    this.keys = new Uint32Array(slots);
    this.used = new Uint8Array(slots);
    this.tokens = new Float64Array(slots);
    this.last = new Float64Array(slots);
    this.mask = slots - 1;
    this.credit = burst;
  }

  /** True when an error of `type`/`code` to `dst` may go now (and takes its tokens). */
  allow(dst: number, type: number, code: number, nowMs: number): boolean {
    if (type === 3 && code === 4) return true;
    dst >>>= 0;
    const i = (Math.imul(dst, 0x9e3779b1) >>> 22) & this.mask;
    const max = 6 * this.perDestMs;
    let token: number;
    if (this.used[i] === 0 || this.keys[i] !== dst) {
      token = max;
    } else {
      token = this.tokens[i]! + (nowMs - this.last[i]!);
      if (token > max) token = max;
    }
    this.keys[i] = dst;
    this.used[i] = 1;
    this.last[i] = nowMs;
    if (token < this.perDestMs) {
      this.tokens[i] = token;
      return false;
    }
    // The global bucket: refilled at perSec, at most burst.
    if (this.creditAt >= 0) {
      this.credit += ((nowMs - this.creditAt) * this.perSec) / 1000;
      if (this.credit > this.burst) this.credit = this.burst;
    }
    this.creditAt = nowMs;
    if (this.credit < 1) {
      this.tokens[i] = token;
      return false;
    }
    this.credit -= 1;
    this.tokens[i] = token - this.perDestMs;
    return true;
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
