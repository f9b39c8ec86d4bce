// --io xdp: AF_XDP beside the rings. On every captured interface an XDP program (native xdp.cc,
// attached in generic mode through a BPF link, so it goes away with uvsd even after a SIGKILL)
// redirects the frames uvs forwards to the AF_XDP socket of the worker that owns the frame's RX
// queue, before the kernel builds its own view of them: no AF_PACKET tap, no IP receive, no
// guard drop, and the worker sends from the same memory through the egress's AF_XDP socket.
//
// The program selects what the rings' classic filter selects (bpf.ts), minus what it cannot
// judge, which it passes on to the kernel and so to the rings as before:
//   - unicast to the interface's MAC, IPv4, not a fragment (the rings' fanout reassembles those),
//     no larger than a UMEM chunk holds (GSO super-frames stay on the ring with their
//     virtio_net_hdr);
//   - destination in the program's `dsts` map (the VIPs), or source in `srcs` (NAT real servers).
// Everything else (ARP, VRRP, management traffic, VLAN-tagged frames) passes untouched. The maps
// are an accelerator only: an address missing from them (a full map) is still forwarded, through
// the ring.
//
// One AF_XDP socket serves one (interface, RX queue), so worker i binds queue i: a device with
// one RX queue (veth's default) feeds its redirected frames to worker 0, and the other workers
// get what the rings' fanout gives them. uvsd therefore runs no more workers than the captured
// devices have RX queues (dataplane.ts); veth gets more with `numrxqueues`.
//
// Not seen by the program: a VLAN tag the sending driver kept out of band (veth carrying a
// VLAN-filtering bridge's tagged egress). Generic XDP runs before the kernel takes such a tag into
// account, so the frame looks untagged. Use --io ring on trunk ports.
//
// Frames that leave through AF_XDP (copy mode on veth) are sent by __dev_direct_xmit: no qdisc
// and no taps, so tcpdump on the director's egress does not show them; on the receiving side it
// does.
import { loadNative, type NativeAddon, type XdpProgram } from '../native/addon';
import type { InterfaceInfo } from './netinfo';
import type { Logger } from '../runtime/log';
import { intToIpv4 } from '../packet/addr';

/**
 * The UMEM every worker allocates (worker.ts): 16384 chunks of 2 KiB, 32 MiB per worker. Half of
 * them are shared out to the fill rings (native XdpSocket), the rest cover frames in transmit
 * and held by the worker; each RX ring holds XDP_RX_RING frames. Together they are how long a
 * worker may be away (a garbage collection, a long snapshot, the host descheduling its vCPU)
 * before the kernel drops. With two interfaces each fill ring gets 4096 chunks, as many frames as
 * an AF_PACKET ring holds (4096): with 8192 chunks it got 2048, and a worker stopped 4 times for
 * 30 ms under 100 kpps lost 4,467–5,126 frames through AF_XDP where the ring lost none
 * (native/README.md, "The AF_XDP backend").
 */
export const XDP_CHUNK_COUNT = 16384;
export const XDP_RX_RING = 4096;
export const XDP_CHUNK_SIZE = 2048;
/** Bytes before each frame in its chunk: room for the 10 zeroed bytes where the worker looks for
 *  a virtio_net_hdr (an AF_XDP frame has none), cache-line aligned. */
export const XDP_HEADROOM = 64;
/** The kernel keeps XDP_PACKET_HEADROOM (256) of every chunk for itself. */
const KERNEL_HEADROOM = 256;
/** The longest frame the program redirects: what a chunk holds. */
export const XDP_MAX_FRAME = XDP_CHUNK_SIZE - XDP_HEADROOM - KERNEL_HEADROOM;
/**
 * Entries of each map: preallocated by the kernel (about 64 bytes each, so 4 MiB a map). More VIPs
 * or NAT real-server addresses than this are forwarded through the rings (see the file header).
 */
export const XDP_MAP_ENTRIES = 65536;

/**
 * The longest frame the program on an interface of this MTU redirects: what a chunk holds, and no
 * more than a whole frame of the MTU. A longer one is a GRO or GSO aggregate (generic mode runs
 * after GRO, and a local sender's TSO frames arrive unsegmented on veth): only the ring carries
 * its virtio_net_hdr, which says how to segment it again.
 */
export function xdpMaxFrame(mtu: number): number {
  return Math.min(XDP_MAX_FRAME, mtu + 14);
}

interface Attached {
  name: string;
  mac: string;
  mtu: number;
  natReply: boolean;
  prog: XdpProgram;
}

export class XdpPrograms {
  private readonly native: NativeAddon;
  private readonly attached = new Map<number, Attached>();
  /** What the maps hold (host-order IPv4). */
  private dsts = new Set<number>();
  private srcs = new Set<number>();
  private fullWarned = false;

  /** false: the programs are the fast path alone (--io ring): nothing goes to AF_XDP. */
  readonly steer: boolean;

  /** `fast`: put the in-kernel fast path (fast-path.ts) into every program, with its maps. */
  constructor(private readonly log: Logger, private readonly mode: 'generic' | 'native' = 'generic', native?: NativeAddon,
    private readonly fast: { fastFd: number; hopsFd: number; steer: boolean; svcFd?: number; ctlFd?: number; eventsFd?: number } | null = null) {
    this.native = native ?? loadNative();
    this.steer = fast?.steer ?? true;
  }

  /**
   * Attaches the program to each of `ifaces` that has none of ours yet (filled with the current
   * addresses), and detaches it from the interfaces no longer captured or whose MAC or MTU changed.
   * Throws (naming the interface) when an attach fails; the interfaces done so far stay attached.
   */
  sync(ifaces: readonly InterfaceInfo[]): void {
    // Kernel scheduling takes NAT connections only on an interface their replies may leave by in
    // the kernel: one whose MTU is the largest captured (fast-path.ts, FastFlows' replyEgress).
    const largestMtu = ifaces.reduce((m, i) => Math.max(m, i.mtu), 0);
    for (const [index, a] of this.attached) {
      const now = ifaces.find((i) => i.ifindex === index);
      // The MAC, the longest frame and natReply are baked into the program: a change needs a new one.
      if (now === undefined || now.mac !== a.mac || now.ifname !== a.name || now.mtu !== a.mtu || (now.mtu >= largestMtu) !== a.natReply) {
        a.prog.close();
        this.attached.delete(index);
      }
    }
    for (const i of ifaces) {
      if (this.attached.has(i.ifindex)) continue;
      let prog: XdpProgram;
      try {
        // NAT's tc half relies on the skb's checksum state, which a generic-mode program leaves
        // as the sender set it; native mode on veth may rebuild the skb: NAT and TUN stay in user space.
        const f = this.fast;
        const sched = f !== null && f.svcFd !== undefined ? { svcFd: f.svcFd, ctlFd: f.ctlFd!, eventsFd: f.eventsFd!, natReply: i.mtu >= largestMtu } : {};
        const fast = f !== null ? { fastFd: f.fastFd, hopsFd: f.hopsFd, steer: this.steer, nat: this.mode === 'generic', ...sched } : {};
        // Without steering the dsts/srcs maps are unused: one entry each.
        prog = this.native.xdpAttach(i.ifindex, { mac: i.mac, maxFrame: xdpMaxFrame(i.mtu), mapEntries: this.steer ? XDP_MAP_ENTRIES : 1, mode: this.mode, ...fast });
      } catch (err) {
        const what = this.steer ? '--io xdp' : 'fast path';
        throw new Error(`${what}: cannot attach the XDP program to ${i.ifname}: ${(err as Error).message}`, { cause: err });
      }
      if (this.fast !== null && this.mode === 'generic' && !prog.nat) this.log.warn(`fast path: NAT and TUN stay in user space on ${i.ifname}: ${prog.natError ?? 'no tc program'}`);
      const a = { name: i.ifname, mac: i.mac, mtu: i.mtu, natReply: i.mtu >= largestMtu, prog };
      this.attached.set(i.ifindex, a);
      if (!this.steer) continue;
      for (const d of this.dsts) this.put(a, a.prog.dstsFd, d, true);
      for (const s of this.srcs) this.put(a, a.prog.srcsFd, s, true);
    }
  }

  /** The XSKMAP of the program on interface `ifindex` (undefined when none is attached). */
  xsksFd(ifindex: number): number | undefined {
    return this.attached.get(ifindex)?.prog.xsksFd;
  }

  /** Makes every program's maps hold exactly these addresses (what the rings' filter selects). */
  setHosts(destinations: readonly number[], sources: readonly number[]): void {
    const nd = new Set(destinations);
    const ns = new Set(sources);
    for (const a of this.steer ? this.attached.values() : []) {
      for (const d of this.dsts) if (!nd.has(d)) this.put(a, a.prog.dstsFd, d, false);
      for (const d of nd) if (!this.dsts.has(d)) this.put(a, a.prog.dstsFd, d, true);
      for (const s of this.srcs) if (!ns.has(s)) this.put(a, a.prog.srcsFd, s, false);
      for (const s of ns) if (!this.srcs.has(s)) this.put(a, a.prog.srcsFd, s, true);
    }
    this.dsts = nd;
    this.srcs = ns;
  }

  private put(a: Attached, fd: number, addr: number, on: boolean): void {
    try {
      this.native.bpfMapUpdate(fd, addr, on);
    } catch (err) {
      // A full map (E2BIG) or a refused update: the address is forwarded through the ring.
      if (!this.fullWarned) {
        this.fullWarned = true;
        this.log.warn(`--io xdp: ${a.name}: ${on ? 'adding' : 'removing'} ${intToIpv4(addr)} in the XDP program's map failed (${(err as Error).message}); ` +
          'frames of addresses the maps miss are forwarded through the AF_PACKET ring (logged once)');
      }
    }
  }

  close(): void {
    for (const a of this.attached.values()) a.prog.close();
    this.attached.clear();
  }
}
