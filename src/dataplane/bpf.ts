// Classic BPF programs for the AF_PACKET sockets, so the kernel hands userspace only the frames
// uvs forwards (include/uapi/linux/filter.h, Documentation/networking/filter.rst).
//
// The filter runs on the frame as the packet socket sees it: from the Ethernet header, with a VLAN
// tag already taken out by the driver or veth (its TCI is in the ring's frame header), so the
// EtherType is at offset 12 and the IPv4 header at 14. A tag in data is taken out too
// (__netif_receive_skb_core calls skb_vlan_untag before the taps), so the tag is seen only through
// the ancillary loads SKF_AD_VLAN_TAG_PRESENT / SKF_AD_VLAN_TAG, never at offset 12.
//
// VLANs: a tagged frame on a device belongs to the VLAN device of its VID, which receives it again
// untagged (vlan_do_receive) and is tapped itself; with no such device the kernel drops it
// (PACKET_OTHERHOST). Either way the copy on the lower device is not uvs's: forwarding it sent it
// out untagged, onto the wrong VLAN. So the filters refuse frames with a tag whose VID is not 0; a
// priority tag (VID 0) is the untagged network, which the kernel accepts too (check_vlan_id).
import type { BpfInsn } from '../native/addon';
import { toIpv4Int } from '../packet/addr';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../packet/ethernet';

// Opcode pieces (linux/bpf_common.h).
export const BPF_LD = 0x00;
export const BPF_JMP = 0x05;
export const BPF_ALU = 0x04;
export const BPF_AND = 0x50;
export const BPF_RET = 0x06;
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_ABS = 0x20;
export const BPF_JEQ = 0x10;
export const BPF_K = 0x00;

/** Ancillary data offsets (linux/filter.h): loads at SKF_AD_OFF + x read skb fields, not bytes. */
export const SKF_AD_OFF = -0x1000;
export const SKF_AD_PKTTYPE = 4;
export const SKF_AD_VLAN_TAG = 44;
export const SKF_AD_VLAN_TAG_PRESENT = 48;
/** The VID bits of a TCI. */
export const VLAN_VID_MASK = 0x0fff;

export const PACKET_HOST = 0;

/** What a matching frame keeps: enough for a 64 KiB GSO super-frame and its headers. */
export const ACCEPT_BYTES = 0x40000;

export function stmt(code: number, k: number): BpfInsn {
  return { code, jt: 0, jf: 0, k: k >>> 0 };
}

export function jump(code: number, k: number, jt: number, jf: number): BpfInsn {
  return { code, jt, jf, k: k >>> 0 };
}

export interface HostFilterOptions {
  /** IPv4 destinations to accept (VIPs, or the director's own address for NAT replies). */
  destinations: readonly (string | number)[];
  /** Also accept IPv4 frames from these sources (real servers, for NAT replies to clients). */
  sources?: readonly (string | number)[];
  /** Also accept ARP frames of any packet type (requests are broadcast). */
  arp?: boolean;
}


/**
 * Drops a frame whose offloaded VLAN tag has a VID other than 0 (see the file header); the jump
 * to the drop is patched by the caller through `toDrop`.
 *   ld vlan_avail; jeq #0 → skip 3; ld vlan_tci; and #0xfff; jeq #0 → next, else drop
 */
function vlanCheck(prog: BpfInsn[], toDrop: number[]): void {
  prog.push(stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT));
  prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0));
  prog.push(stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG));
  prog.push(stmt(BPF_ALU | BPF_AND | BPF_K, VLAN_VID_MASK));
  toDrop.push(prog.length);
  prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0));
}

/**
 * Accepts PACKET_HOST frames that are IPv4 to one of `destinations` (or from one of `sources`),
 * plus ARP when asked; drops everything else in the kernel.
 *
 *   ldh [12]; jeq #ARP → accept              (only with arp)
 *   ld  pkttype; jne #PACKET_HOST → drop
 *   ld  vlan_avail; jeq #0 → +3               (vlanCheck: a tagged frame of a VLAN → drop)
 *   ld  vlan_tci; and #0xfff; jne #0 → drop
 *   ldh [12]; jne #IPv4 → drop               (reload: A was replaced by pkttype)
 *   ld  [30]; jeq #dst_i → accept ...         (IPv4 destination)
 *   ld  [26]; jeq #src_i → accept ...         (IPv4 source)
 *   drop: ret #0;  accept: ret #ACCEPT_BYTES
 *
 * Jumps are 8-bit, so the address list is bounded; the error says by how much it is too long.
 */
export function buildHostFilter(opts: HostFilterOptions): BpfInsn[] {
  const dsts = opts.destinations.map((a) => toIpv4Int(a));
  const srcs = (opts.sources ?? []).map((a) => toIpv4Int(a));
  if (dsts.length + srcs.length === 0) throw new RangeError('buildHostFilter: no destinations or sources: the filter would drop everything');
  const prog: BpfInsn[] = [];
  // Jump targets are patched once the two return instructions' positions are known.
  const toAccept: number[] = [];
  const toDrop: number[] = [];
  if (opts.arp === true) {
    prog.push(stmt(BPF_LD | BPF_H | BPF_ABS, 12));
    toAccept.push(prog.length);
    prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_ARP, 0, 0));
  }
  prog.push(stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE));
  toDrop.push(prog.length);
  prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, PACKET_HOST, 0, 0)); // jt: next, jf: drop
  vlanCheck(prog, toDrop);
  prog.push(stmt(BPF_LD | BPF_H | BPF_ABS, 12));
  toDrop.push(prog.length);
  prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_IPV4, 0, 0));
  const matchAll = (offset: number, addrs: number[]): void => {
    if (addrs.length === 0) return;
    prog.push(stmt(BPF_LD | BPF_W | BPF_ABS, offset));
    for (const a of addrs) {
      toAccept.push(prog.length);
      prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, a, 0, 0)); // jt: accept, jf: next
    }
  };
  matchAll(14 + 16, dsts);
  matchAll(14 + 12, srcs);
  const drop = prog.length;
  prog.push(stmt(BPF_RET | BPF_K, 0));
  const accept = prog.length;
  prog.push(stmt(BPF_RET | BPF_K, ACCEPT_BYTES));
  const rel = (from: number, to: number): number => {
    const d = to - from - 1;
    if (d > 255) {
      throw new RangeError(`buildHostFilter: ${dsts.length + srcs.length} addresses need a jump of ${d} instructions; ` +
        `classic BPF allows 255, so use at most ${dsts.length + srcs.length - (d - 255)} addresses`);
    }
    return d;
  };
  for (const i of toAccept) prog[i]!.jt = rel(i, accept);
  for (const i of toDrop) prog[i]!.jf = rel(i, drop);
  return prog;
}

/** Up to this many addresses (destinations and sources together) the filter lists each one
 *  (buildHostFilter); beyond, it selects covering prefixes (buildPrefixFilter). Below the 8-bit
 *  jump limit, and a list this long costs the kernel at most ~200 comparisons per frame. */
export const EXACT_FILTER_MAX = 128;
/** Most prefixes per direction in a coarse filter. */
export const PREFIX_FILTER_MAX = 48;

/** A prefix: `addr` (host order, host bits zero) / `len`. */
export interface Prefix {
  addr: number;
  len: number;
}

function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/**
 * The longest prefix length L such that the addresses fall into at most `max` distinct /L
 * prefixes, and those prefixes. One length for all keeps the filter to one AND per direction;
 * services are usually numbered from a few ranges (kube-proxy's service CIDR, a VIP pool), which
 * this covers tightly.
 */
export function coveringPrefixes(addrs: readonly number[], max: number): Prefix[] {
  if (addrs.length === 0) return [];
  for (let len = 32; len >= 0; len--) {
    const mask = maskOf(len);
    const set = new Set<number>();
    for (const a of addrs) {
      set.add((a & mask) >>> 0);
      if (set.size > max) break;
    }
    if (set.size <= max) return [...set].sort((x, y) => x - y).map((addr) => ({ addr, len }));
  }
  return [{ addr: 0, len: 0 }];
}

/**
 * Frame selection that scales: the exact host filter while the addresses are few, and beyond
 * EXACT_FILTER_MAX a coarse one that accepts every IPv4 PACKET_HOST frame to a covering prefix of
 * the destinations (or from one of the sources). A classic BPF program holds at most 4096
 * instructions with 8-bit conditional jumps, so an exact list cannot grow with the table; the
 * pipeline's service lookup (a hash in the snapshot, ServiceSnapshot.lookup) is exact and leaves
 * the extra frames alone (NO_TX): the packet tap gave uvs a copy, and the kernel, whose guard
 * drops only exact service tuples, handles them as if uvs were not there. Costs of the coarse
 * filter: non-service traffic inside the prefixes is copied to the ring and looked at once.
 */
export function buildSelectFilter(destinations: readonly number[], sources: readonly number[]): BpfInsn[] {
  if (destinations.length + sources.length <= EXACT_FILTER_MAX) return buildHostFilter({ destinations, sources });
  return buildPrefixFilter(coveringPrefixes(destinations, PREFIX_FILTER_MAX), coveringPrefixes(sources, PREFIX_FILTER_MAX));
}

/**
 *   ld pkttype; jne #PACKET_HOST → drop
 *   (vlanCheck, as buildHostFilter)
 *   ldh [12]; jne #IPv4 → drop
 *   ld [30]; and #dmask; jeq #d_i → accept ...   (one length per direction, see coveringPrefixes)
 *   ld [26]; and #smask; jeq #s_i → accept ...
 *   drop: ret #0;  accept: ret #ACCEPT_BYTES
 */
export function buildPrefixFilter(destinations: readonly Prefix[], sources: readonly Prefix[]): BpfInsn[] {
  if (destinations.length + sources.length === 0) throw new RangeError('buildPrefixFilter: no prefixes: the filter would drop everything');
  if (destinations.length + sources.length > 200) throw new RangeError(`buildPrefixFilter: ${destinations.length + sources.length} prefixes; at most 200 fit classic BPF's 8-bit jumps`);
  const prog: BpfInsn[] = [];
  const toAccept: number[] = [];
  const toDrop: number[] = [];
  prog.push(stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE));
  toDrop.push(prog.length);
  prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, PACKET_HOST, 0, 0));
  vlanCheck(prog, toDrop);
  prog.push(stmt(BPF_LD | BPF_H | BPF_ABS, 12));
  toDrop.push(prog.length);
  prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_IPV4, 0, 0));
  const matchAll = (offset: number, prefixes: readonly Prefix[]): void => {
    if (prefixes.length === 0) return;
    const len = prefixes[0]!.len;
    if (prefixes.some((p) => p.len !== len)) throw new RangeError('buildPrefixFilter: the prefixes of one direction must share a length');
    prog.push(stmt(BPF_LD | BPF_W | BPF_ABS, offset));
    if (len < 32) prog.push(stmt(BPF_ALU | BPF_AND | BPF_K, maskOf(len)));
    for (const p of prefixes) {
      toAccept.push(prog.length);
      prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, (p.addr & maskOf(len)) >>> 0, 0, 0));
    }
  };
  matchAll(14 + 16, destinations);
  matchAll(14 + 12, sources);
  const drop = prog.length;
  prog.push(stmt(BPF_RET | BPF_K, 0));
  const accept = prog.length;
  prog.push(stmt(BPF_RET | BPF_K, ACCEPT_BYTES));
  for (const i of toAccept) prog[i]!.jt = accept - i - 1;
  for (const i of toDrop) prog[i]!.jf = drop - i - 1;
  return prog;
}

/** True when two programs are the same instructions (a filter is re-attached only on a change). */
export function sameFilter(a: readonly BpfInsn[], b: readonly BpfInsn[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.code !== y.code || x.jt !== y.jt || x.jf !== y.jf || x.k >>> 0 !== y.k >>> 0) return false;
  }
  return true;
}

/**
 * A classic BPF interpreter for the instructions this module emits (ld/ldh/ldb abs, ld pkttype,
 * ld vlan_avail/vlan_tci (`vlanTci`: the offloaded tag's TCI, null when the frame has none),
 * jeq k, ret k), so filters can be tested without a kernel. Returns the accepted length (0 = drop),
 * or throws on an instruction it does not know or a jump out of the program.
 */
export function runFilter(prog: readonly BpfInsn[], frame: Uint8Array, pkttype: number, vlanTci: number | null = null): number {
  let a = 0;
  for (let pc = 0; pc < prog.length; pc++) {
    const { code, jt, jf } = prog[pc]!;
    const k = prog[pc]!.k >>> 0;
    switch (code) {
      case BPF_LD | BPF_W | BPF_ABS:
        if (k === (SKF_AD_OFF + SKF_AD_PKTTYPE) >>> 0) a = pkttype;
        else if (k === (SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT) >>> 0) a = vlanTci === null ? 0 : 1;
        else if (k === (SKF_AD_OFF + SKF_AD_VLAN_TAG) >>> 0) a = vlanTci ?? 0;
        else if (k + 4 > frame.length) return 0; // the kernel drops on an out-of-bounds load
        else a = ((frame[k]! << 24) | (frame[k + 1]! << 16) | (frame[k + 2]! << 8) | frame[k + 3]!) >>> 0;
        break;
      case BPF_LD | BPF_H | BPF_ABS:
        if (k + 2 > frame.length) return 0;
        a = (frame[k]! << 8) | frame[k + 1]!;
        break;
      case BPF_LD | BPF_B | BPF_ABS:
        if (k + 1 > frame.length) return 0;
        a = frame[k]!;
        break;
      case BPF_ALU | BPF_AND | BPF_K:
        a = (a & k) >>> 0;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        pc += a === k ? jt : jf;
        if (pc + 1 >= prog.length) throw new RangeError(`runFilter: jump from ${pc} leaves the program`);
        break;
      case BPF_RET | BPF_K:
        return Math.min(k, frame.length);
      default:
        throw new RangeError(`runFilter: instruction ${pc} has opcode 0x${code.toString(16)}, which this interpreter does not know`);
    }
  }
  throw new RangeError('runFilter: the program ends without ret');
}
