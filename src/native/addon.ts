// The only module that loads the native addon (native/build/Release/uvs_native.node, built by
// `npm install`). Everything else depends on the NativeAddon interface below, so tests and other
// backends can pass a fake (serialport/bindings-cpp does the same).
//
// Loading: the addon is a Node-API module and therefore context-aware; every worker thread that
// calls loadNative() gets its own instance (the per-thread cache below is the module's own state,
// which is per isolate).
//
// Waiting for frames: threads live on their event loop and watch their sockets with FdWatcher
// (libuv readiness): the dataplane workers (one watcher per capture socket, a bounded drain per
// readable callback), VRRP and the TUN agent. PacketSocket.wait(ms) is a plain poll(2) with a
// timeout, which blocks the thread: for tests and tools with a loop of their own.
//
// Rings: TPACKET_V2 by default — a frame is readable as soon as the kernel wrote it into its slot —
// with small slots (ringFrameSize) and the larger frames (GSO super-frames) read whole from the
// socket's receive queue into overflow slots after the ring (PACKET_COPY_THRESH). TPACKET_V3
// (version: 3) hands over blocks, only when full or after its retire timeout (1 ms or more).
import { join } from 'node:path';
import { VNET_HDR_LEN } from '../packet/vnet';
import { UvsError } from '../runtime/errors';

/** One classic BPF instruction (struct sock_filter). */
export interface BpfInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export interface RingOptions {
  /**
   * TPACKET version: 2 (default) hands over each frame as soon as it is written; 3 hands over
   * blocks, when full or after blockTimeoutMs.
   */
  version?: 2 | 3;
  /**
   * Bytes per block; a multiple of the page size. V3 default 256 KiB (holds several 64 KiB
   * super-frames); V2 default 64 KiB (slots never cross a block).
   */
  blockSize?: number;
  /** V3: blocks in the ring. Default 32. (V2 derives it from frameCount.) */
  blockCount?: number;
  /** V3 only: the kernel hands over a partly filled block after this long (tp_retire_blk_tov). Default 1. */
  blockTimeoutMs?: number;
  /**
   * tp_frame_size; a multiple of 16 dividing blockSize. Default 2048. V2: the slot, which must hold
   * the largest ordinary frame (ringFrameSize(mtu)); larger frames come through overflow slots.
   */
  frameSize?: number;
  /** V2: slots in the ring (rounded up to whole blocks). Default 4096. */
  frameCount?: number;
  /**
   * V2: whole-frame slots after the ring for frames larger than a slot (64 KiB each; at most this
   * many such frames per rx()…release() batch). Default 8; 0 turns PACKET_COPY_THRESH off, and such
   * frames then arrive truncated (caplen < wirelen).
   */
  overflowSlots?: number;
  /**
   * V2: SO_RCVBUF(FORCE) in bytes — the receive queue holding super-frames until rx() copies them
   * out (the kernel queues them only while below it). Default 4 MiB.
   */
  rcvbuf?: number;
}

/**
 * The TPACKET_V2 slot for frames up to `mtu` bytes of IP: tpacket_rcv puts the network header at
 * TPACKET_ALIGN(TPACKET2_HDRLEN + max(16, mac_len)) + 10 (the virtio_net_hdr) = 90 bytes into the
 * slot for Ethernet, VLAN and QinQ headers alike, so the slot needs 90 + mtu; rounded up to a power
 * of two (it must divide the block), at least 2048.
 */
export function ringFrameSize(mtu: number): number {
  let size = 2048;
  while (size < 96 + mtu) size *= 2;
  return size;
}

export type FanoutMode = 'hash' | 'lb' | 'cpu' | 'rollover' | 'rnd' | 'qm';

export interface FanoutOptions {
  /** Fanout group id (0..65535), the same in every worker sharing the interface. */
  group: number;
  /** Default 'hash' (the kernel's flow hash: both directions of a TCP flow are not guaranteed one worker). */
  mode?: FanoutMode;
  /**
   * PACKET_FANOUT_FLAG_DEFRAG; default on for 'hash' so fragments hash like their datagram. The
   * sockets then receive the reassembled datagram (it may exceed the MTU: fragment it again or drop it).
   */
  defrag?: boolean;
  /** PACKET_FANOUT_FLAG_ROLLOVER: a full socket passes frames on to the next. */
  rollover?: boolean;
}

export interface PacketSocketOptions {
  /** Interface index to bind to; 0 = every interface. */
  ifindex: number;
  /** EtherType to bind with (host order). Default ETH_P_ALL; 0 = a send-only socket that receives nothing. */
  protocol?: number;
  /** An RX ring (TPACKET_V2 by default); without it the socket only sends. */
  ring?: RingOptions;
  fanout?: FanoutOptions;
  /**
   * PACKET_QDISC_BYPASS: transmit straight to the driver (packet_direct_xmit), no qdisc. Not with
   * vnetHdr when the egress device may lack TSO/GSO for the frames: packet_direct_xmit drops (ENOBUFS)
   * any frame that validate_xmit_skb had to segment in software, where dev_queue_xmit would send
   * the segments. (veth has no qdisc anyway — noqueue — so bypass saves little there.)
   */
  qdiscBypass?: boolean;
  /** PACKET_IGNORE_OUTGOING: no PACKET_OUTGOING copies of what this host sends. */
  ignoreOutgoing?: boolean;
  /**
   * PACKET_VNET_HDR: every received frame is preceded by a 10-byte virtio_net_hdr (at offset − 10
   * in the ring) and every sent frame must begin with one, so GSO super-frames and frames whose
   * checksum is left to the hardware (TP_STATUS_CSUMNOTREADY) go back out and the kernel segments
   * and checksums them (docs/architecture.md, "Offloads").
   */
  vnetHdr?: boolean;
  /** Classic BPF filter attached before the socket is bound (see bpf.ts). */
  filter?: readonly BpfInsn[];
  /** Frames per sendmmsg call (1..1024). Default 256. */
  txBatch?: number;
  sndbuf?: number;
}

export interface PacketSocketStats {
  /** PACKET_STATISTICS since the previous stats() call (the kernel resets them on read). */
  packets: number;
  drops: number;
  freezeQueueCount: number;
  /** V2, totals since open: frames read whole from the receive queue (TP_STATUS_COPY), and COPY
   *  frames whose queued copy was missing (left truncated). */
  copied: number;
  copyMissed: number;
  /** Totals since open: sendmmsg failures, and frames not sent because of them. */
  txErrors: number;
  txDropped: number;
  /** Of those, frames shed because the socket's send memory was full (EAGAIN: send() never
   *  blocks, it uses MSG_DONTWAIT) or the device/qdisc had no room (ENOBUFS). */
  txShed: number;
  /** errno name of the last transmit failure, or null. */
  lastTxError: string | null;
}

export type U32Cells = Int32Array | Uint32Array;

export interface PacketSocket {
  readonly fd: number;
  /**
   * The RX ring's memory (external, no copy), followed by the V2 overflow slots; undefined without
   * a ring or after close(). Frame offsets from rx() point anywhere in it.
   */
  readonly ring: ArrayBuffer | undefined;
  /** 2 or 3 with a ring, 0 without. */
  readonly version: number;
  readonly blockSize: number;
  readonly blockCount: number;
  readonly frameSize: number;
  /** V2 slots (0 for V3). */
  readonly frameCount: number;
  readonly overflowSlots: number;
  readonly ifindex: number;
  readonly vnetHdr: boolean;
  /** PacketSocketStats.txShed as a plain number (no object): read by the worker after a short send. */
  readonly txShed: number;
  /**
   * Writes up to maxFrames (default desc.length / FRAME_STRIDE) ready frames as FRAME_STRIDE cells
   * each (FRAME_OFFSET, FRAME_CAPLEN, ...) and returns how many. Frames stay valid until release().
   */
  rx(desc: U32Cells, maxFrames?: number): number;
  /**
   * Gives back what rx() returned since the last release: V2 every slot (and the overflow slots),
   * V3 every fully read block. Returns how many slots (V2) or blocks (V3).
   */
  release(): number;
  /** True when rx() has frames; waits at most timeoutMs (poll). */
  wait(timeoutMs: number): boolean;
  /**
   * Sends frames[i] = buffer[offsets[i] .. offsets[i] + lengths[i]) for i < count, with sendmmsg.
   * buffer may be any ring (forward in place) or a TX buffer. Returns how many the kernel took.
   */
  send(buffer: ArrayBuffer | ArrayBufferView, offsets: U32Cells, lengths: U32Cells, count: number): number;
  setFilter(filter: readonly BpfInsn[]): void;
  detachFilter(): void;
  stats(): PacketSocketStats;
  /**
   * The pending socket error (SO_ERROR, cleared by reading it) as an errno name, or null. ENETDOWN
   * when the device went down: an FdWatcher then stops (libuv calls back with a negative status
   * on POLLERR) and must be started again after this.
   */
  takeError(): string | null;
  close(): void;
}

export interface RawSocketOptions {
  /** IP protocol: 112 VRRP, 4 IPIP. */
  protocol: number;
  /** SO_BINDTODEVICE. */
  device?: string;
  /** IP_HDRINCL: send() gets the whole IPv4 packet. */
  hdrincl?: boolean;
  ttl?: number;
  /** IP_MULTICAST_TTL (VRRP: 255, RFC 5798 section 5.1.1.3). */
  multicastTtl?: number;
  /** IP_MULTICAST_LOOP; the kernel's default is on. */
  multicastLoop?: boolean;
  /** IP_MULTICAST_IF by interface index. */
  multicastIf?: number;
  /** IP_MULTICAST_ALL; default off here (only this socket's own groups). */
  multicastAll?: boolean;
  rcvbuf?: number;
  bindAddress?: string;
}

export interface RawSocket {
  readonly fd: number;
  addMembership(group: string | number, ifindex: number): void;
  dropMembership(group: string | number, ifindex: number): void;
  /**
   * One datagram with its IP header into buffer, or -1 when none is queued. info (>= 4 cells) gets
   * RAW_INFO_IFINDEX, RAW_INFO_SOURCE, RAW_INFO_DESTINATION (host order), RAW_INFO_TRUNCATED.
   */
  recv(buffer: ArrayBuffer | ArrayBufferView, info: U32Cells): number;
  /** Bytes sent, or -1 when the socket buffer is full. destination: dotted string or host-order number. */
  send(buffer: ArrayBuffer | ArrayBufferView, length: number, destination: string | number): number;
  wait(timeoutMs: number): boolean;
  close(): void;
}

export const RAW_INFO_IFINDEX = 0;
export const RAW_INFO_SOURCE = 1;
export const RAW_INFO_DESTINATION = 2;
export const RAW_INFO_TRUNCATED = 3;

/** libuv readiness on an fd; the callback runs on the event loop of the thread that made it. */
export interface FdWatcher {
  /** events: 1 readable (default), 2 writable, 3 both. */
  start(events?: number): void;
  stop(): void;
  close(): void;
}

export interface InterfaceInfo {
  name: string;
  index: number;
  /** aa:bb:cc:dd:ee:ff */
  mac: string;
  /** ARPHRD_* (1 Ethernet, 772 loopback). */
  hwType: number;
  mtu: number;
  flags: number;
  up: boolean;
  running: boolean;
}

export type EthtoolFeature = 'rx' | 'tx' | 'sg' | 'tso' | 'gso' | 'gro';

export interface NativeConstants {
  readonly FRAME_STRIDE: number;
  readonly FRAME_OFFSET: number;
  readonly FRAME_CAPLEN: number;
  readonly FRAME_WIRELEN: number;
  readonly FRAME_STATUS: number;
  readonly FRAME_VLAN_TCI: number;
  readonly FRAME_VLAN_TPID: number;
  readonly FRAME_PKTTYPE: number;
  readonly FRAME_IFINDEX: number;
  readonly TP_STATUS_USER: number;
  readonly TP_STATUS_COPY: number;
  readonly TP_STATUS_LOSING: number;
  readonly TP_STATUS_CSUMNOTREADY: number;
  readonly TP_STATUS_VLAN_VALID: number;
  readonly TP_STATUS_BLK_TMO: number;
  readonly TP_STATUS_VLAN_TPID_VALID: number;
  readonly TP_STATUS_CSUM_VALID: number;
  readonly PACKET_HOST: number;
  readonly PACKET_BROADCAST: number;
  readonly PACKET_MULTICAST: number;
  readonly PACKET_OTHERHOST: number;
  readonly PACKET_OUTGOING: number;
  readonly VNET_HDR_LEN: number;
  readonly VIRTIO_NET_HDR_F_NEEDS_CSUM: number;
  readonly VIRTIO_NET_HDR_F_DATA_VALID: number;
  readonly VIRTIO_NET_HDR_GSO_NONE: number;
  readonly VIRTIO_NET_HDR_GSO_TCPV4: number;
  readonly VIRTIO_NET_HDR_GSO_UDP: number;
  readonly VIRTIO_NET_HDR_GSO_TCPV6: number;
  readonly VIRTIO_NET_HDR_GSO_ECN: number;
  readonly ETH_P_ALL: number;
  readonly IFF_UP: number;
  readonly IFF_RUNNING: number;
  readonly IFF_LOOPBACK: number;
}

/**
 * The XDP program xdpAttach put on a device (generic mode, through a BPF link): IPv4 frames to
 * this device's MAC whose destination is in `dsts` or whose source is in `srcs` go to the AF_XDP
 * socket of their RX queue (the `xsks` XSKMAP); everything else passes to the kernel: broadcast,
 * ARP, VLAN-tagged and IPv6 frames, fragments, frames longer than maxFrame, and frames of a queue
 * without a socket. A TCP or UDP flow (5-tuple, per direction) that had one frame longer than
 * maxFrame (a GSO super-frame in generic mode) is remembered in `ringflows`, and all its later
 * frames pass too, so a flow is not split between the AF_PACKET ring and AF_XDP (the worker drains
 * the two separately, which reorders segments: iperf3 fell from ~10 to 0.6 Gbit/s). The fds are
 * the process's; bpfMapUpdate edits the maps.
 */
export interface XdpProgram {
  /** The BPF link: closing it (close(), or the process ending) detaches the program. */
  readonly linkFd: number;
  readonly progFd: number;
  /** XSKMAP, key = RX queue, 64 entries: XdpSocket's xskMapFd. */
  readonly xsksFd: number;
  /** Hash of IPv4 destinations to take (key: the address as in the packet; bpfMapUpdate converts). */
  readonly dstsFd: number;
  /** Hash of IPv4 sources to take (replies of real servers, NAT). */
  readonly srcsFd: number;
  /**
   * LRU hash of the TCP/UDP flows that went to the ring: key 16 bytes {saddr, daddr, sport, dport,
   * protocol, 3 zero bytes} as in the packet, value u8; filled by the program itself.
   */
  readonly ringflowsFd: number;
  /** Whether NAT flows are in the fast path here too (the tc program is on the device's ingress). */
  readonly nat: boolean;
  /** Why the tc program could not be attached, when `nat` was asked for and is false. */
  readonly natError?: string;
  /** Closes every fd: the program leaves the device. Idempotent. */
  close(): void;
}

export interface XdpAttachOptions {
  /** The device's own MAC (aa:bb:cc:dd:ee:ff): frames to other MACs pass. */
  mac: string;
  /** Longer frames pass (GSO super-frames stay on the AF_PACKET path); at most XdpUmem.maxRxFrame. */
  maxFrame: number;
  /** max_entries of dsts and srcs. */
  mapEntries: number;
  /** max_entries of ringflows (LRU: the oldest flows make room), default 65536. */
  flowEntries?: number;
  /**
   * 'generic' (default): XDP_FLAGS_SKB_MODE, after the kernel built its skb (and after GRO), on any
   * device; 'native': XDP_FLAGS_DRV_MODE, in the driver before GRO, where the driver supports it.
   */
  mode?: 'generic' | 'native';
  /** false: nothing goes to AF_XDP, the program is the fast path alone (--io ring); default true.
   *  Needs fastFd and hopsFd. */
  steer?: boolean;
  /** The fast path's maps (fastPathMaps), shared by every interface's program: offloaded DR flows
   *  are forwarded in the kernel (native/src/xdp.cc FastPathBlock, src/dataplane/fast-path.ts). */
  fastFd?: number;
  hopsFd?: number;
  /** NAT flows too: the tc program (native/src/fast-path.cc) goes on the device's tc ingress
   *  first; when it cannot, the result's `nat` is false and natError says why. */
  nat?: boolean;
  /** Kernel scheduling's maps (fastPathMaps with `sched`; native/src/fast-path.h), all three or
   *  none: new TCP connections of the services in `svc` are scheduled by the program. */
  svcFd?: number;
  ctlFd?: number;
  eventsFd?: number;
  /** This device may carry NAT replies in the kernel: NAT connections arriving here may be
   *  scheduled in the kernel. */
  natReply?: boolean;
}

/**
 * The in-kernel fast path's maps (native/src/fast-path.cc): `fast`, the offloaded flows (hash,
 * the ringflows key, value {destSlot, flags, lastSeen}), and `hops`, one 32-byte record per
 * DestTable slot {dmac, smac, ifindex u32 at 12, packets u64 at 16, bytes u64 at 24}, mapped into
 * this process as `hops`.
 */
export interface FastPathMaps {
  readonly fastFd: number;
  readonly hopsFd: number;
  /** The hops array itself (mmap): writes are what the program reads. Stays valid after close(). */
  readonly hops: ArrayBuffer;
  /** Kernel scheduling (options.sched): the services' cycles, the control cell, the events ring. */
  readonly svcFd?: number;
  readonly ctlFd?: number;
  readonly eventsFd?: number;
  /** The control cell (mmap, 64 bytes): pausedUntil u64 (CLOCK_MONOTONIC ns), then the
   *  program's counters scheduled, refused, lost (u64 each). */
  readonly ctl?: ArrayBuffer;
  /** Closes the fds (the programs that use them keep the maps until they are detached). */
  close(): void;
}

/** The events ring's reader (fastEvents): read() fills FAST_EVENT_CELLS cells per record. */
export interface FastEventsReader {
  /** Records read into `out` (as many as fit); 0 while another thread reads. */
  read(out: Int32Array): number;
  close(): void;
}

/**
 * The IP-in-IP decapsulation program tcDecapAttach put on a device's tc ingress hook (tcx, through
 * a BPF link; native/src/tc-decap.cc): IPIP packets to this host (outer destination `local` when
 * set) from an `allow`ed source lose their outer header, and the kernel receives the inner packet on
 * that device. Outer fragments, and IPIP to another address, are left to the stack (counted).
 */
export interface TcDecapProgram {
  /** The BPF link: closing it (close(), or the process ending) detaches the program. */
  readonly linkFd: number;
  readonly progFd: number;
  readonly countersFd: number;
  /** The program's counters since it was attached (all CPUs). */
  counters(): TcDecapCounters;
  /** Closes every fd: the program leaves the device. Idempotent. */
  close(): void;
}

export interface TcDecapCounters {
  /** Outer header taken out, inner packet passed on. */
  decapsulated: number;
  /** Outer source not in `allow`: dropped. */
  notAllowed: number;
  /** Outer fragments left to the stack (which reassembles them for a raw-socket agent). */
  fragments: number;
  /** bpf_skb_adjust_room refused (an unsupported GSO type, for one): dropped. */
  failed: number;
  /** Outer destination other than `local`: left to the stack. */
  notLocal: number;
}

export interface TcDecapOptions {
  /** Only IPIP whose outer destination is this address (host-order integer); absent or 0: any. */
  local?: number;
  /** Only IPIP from these outer sources (host-order integers), at most 256; absent or empty: any. */
  allow?: readonly number[];
}

export interface XdpUmemOptions {
  /** Chunks (frames) in the UMEM. Default 4096. */
  chunkCount?: number;
  /** Bytes per chunk, a power of two from 2048 to the page size. Default 2048. */
  chunkSize?: number;
  /** Bytes before a transmitted frame's copy in its chunk, and before the kernel's own 256 on receive. Default 256. */
  headroom?: number;
}

/**
 * AF_XDP packet memory shared by XdpSockets (one thread's: the chunk bookkeeping is not locked).
 * Received frames lie in `buffer` at the offsets rx() reports; send() transmits a frame that lies in
 * a chunk rx() handed out without copying it.
 */
export interface XdpUmem {
  /** The UMEM itself (no copy); detached by close(). */
  readonly buffer: ArrayBuffer;
  /** Chunks on the free stack (neither in a fill ring, nor held by JS, nor queued for transmit). */
  readonly free: number;
  readonly chunkSize: number;
  readonly chunkCount: number;
  readonly headroom: number;
  /** The longest frame a socket can receive (chunkSize - headroom - 256). */
  readonly maxRxFrame: number;
  /** Chunks per state: on the free stack, in fill rings, held by JS (rx() until release/send), queued for transmit. */
  states(): { free: number; fill: number; held: number; tx: number };
  /** Only once every socket on it is closed (throws otherwise). */
  close(): void;
}

export interface XdpSocketOptions {
  umem: XdpUmem;
  ifindex: number;
  /** RX/TX queue to bind. Default 0. One socket per device and queue on a UMEM. */
  queue?: number;
  /** XdpProgram.xsksFd: this socket goes into it at key `queue` (and out again at close). */
  xskMapFd?: number;
  /** RX ring descriptors, a power of two. Default 2048. */
  rxSize?: number;
  /** TX ring descriptors, a power of two. Default 2048. */
  txSize?: number;
}

/** XdpSocket.stats(): the kernel's XDP_STATISTICS (totals since bind) and the socket's own counters. */
export interface XdpSocketStats {
  /** Frames dropped for want of room in a chunk (longer than maxRxFrame) or other rx errors. */
  rxDropped: number;
  rxInvalid: number;
  /** Frames dropped because the RX ring was full (rx() not called often enough). */
  rxRingFull: number;
  /** Frames dropped because the fill ring was empty (too many chunks held or queued). */
  fillRingEmpty: number;
  txInvalid: number;
  txRingEmpty: number;
  /** Frames send() refused: longer than chunkSize - headroom. */
  txDropped: number;
  /** Frames send() shed: TX ring full or no free chunk to copy into. */
  txShed: number;
  /** Frames send() copied into a free chunk (the rest went out in place from a chunk rx() handed out). */
  txCopied: number;
  /** Received TCP/UDP frames whose partial checksum (CHECKSUM_PARTIAL from a local sender) rx() completed. */
  csumCompleted: number;
  /** Received TCP/UDP frames whose checksum was simply wrong (left as they were). */
  csumBad: number;
  /** The errno name of the last failed sendto() kick, or null. */
  lastTxError: string | null;
}

/**
 * An AF_XDP socket in copy mode on one device queue, with PacketSocket's rx()/release()/send()
 * contract: frames are described by FRAME_STRIDE cells each, offsets into umem.buffer, each with
 * VNET_HDR_LEN zero bytes in front (no offloads).
 */
export interface XdpSocket {
  /** For readiness (FdWatcher): readable when the RX ring has descriptors. */
  readonly fd: number;
  readonly ifindex: number;
  readonly queue: number;
  /** XdpSocketStats.txShed as a plain number. */
  readonly txShed: number;
  /**
   * Up to maxFrames received frames as FRAME_STRIDE cells each (FRAME_STATUS: TP_STATUS_USER, plus
   * TP_STATUS_CSUM_VALID when the TCP/UDP checksum verified or was completed here). Frames stay
   * valid until release(). Also reaps this socket's transmit completions and refills its fill ring.
   */
  rx(desc: U32Cells, maxFrames?: number): number;
  /** Gives back every chunk rx() returned since the last release that send() did not take; returns how many. */
  release(): number;
  /**
   * Queues frames[i] = buffer[offsets[i] .. offsets[i] + lengths[i]) for transmit and kicks the
   * kernel: without a copy when the frame lies in a chunk rx() handed out (forward in place),
   * else copied into a free chunk. Returns how many were queued; the rest are counted (txShed, txDropped).
   */
  send(buffer: ArrayBuffer | ArrayBufferView, offsets: U32Cells, lengths: U32Cells, count: number): number;
  stats(): XdpSocketStats;
  /** The pending socket error (SO_ERROR) as an errno name, or null. */
  takeError(): string | null;
  /** True when rx() has frames; waits at most timeoutMs (poll). */
  wait(timeoutMs: number): boolean;
  /** Leaves the XSKMAP, unmaps the rings, closes the fd; its chunks go back to the UMEM. Idempotent. */
  close(): void;
}

/**
 * Spins on a set of RX rings (native RingPoller): spin(usec) returns the index of the first socket
 * with a frame ready (at once if one is), or -1 once usec passed without one, or -2 when it will not
 * spin for now (the thread's CPUs are contended, or a spin was starved: see `contended`, `starved`).
 * Blocks the thread meanwhile, under SCHED_IDLE when allowed: a worker calls it between turns,
 * with a slice of a few hundred µs.
 */
export interface RingPoller {
  /** polite (default true): under SCHED_IDLE where allowed; false: at the thread's own policy. */
  spin(usec: number, polite?: boolean): number;
  /** Spins that ended because the thread was kept off its CPU over 1 ms (each pauses spinning: 10 ms, doubled per trip up to 1 s, halved per spin that ran its course). */
  readonly starved: number;
  /** Spins refused because the thread had waited for a CPU over 0.5 ms and over a quarter of the time since the last reading (each pauses spinning like a starved one). */
  readonly contended: number;
  /** Spins the native watchdog thread put back to SCHED_OTHER because, under SCHED_IDLE, they had
   *  been kept off the CPU for 2 ms (a thread that never blocks shared it); the spin then trips `starved`. */
  readonly rescued: number;
}

export interface NativeAddon {
  readonly constants: NativeConstants;
  readonly PacketSocket: new (options: PacketSocketOptions) => PacketSocket;
  readonly RawSocket: new (options: RawSocketOptions) => RawSocket;
  readonly FdWatcher: new (fd: number, callback: (status: number, events: number) => void) => FdWatcher;
  /** Busy-polls the RX rings of `sockets` (PacketSockets with a ring, XdpSockets): see RingPoller. */
  readonly RingPoller: new (sockets: Array<PacketSocket | XdpSocket>, idlePolicy?: boolean) => RingPoller;
  readonly XdpUmem: new (options?: XdpUmemOptions) => XdpUmem;
  readonly XdpSocket: new (options: XdpSocketOptions) => XdpSocket;
  /** Loads the steering program and attaches it to the device (generic mode, BPF link); throws
   *  EBUSY when the device has an XDP program already. */
  xdpAttach(ifindex: number, options: XdpAttachOptions): XdpProgram;
  /** The fast path's maps: `entries` flows, `slots` real-server records. */
  fastPathMaps(options: { entries: number; slots: number; sched?: { services: number } }): FastPathMaps;
  /** Kernel scheduling: service vaddr:vport's cycle of `count` entries, 4 cells each {destSlot,
   *  kind (0 DR, 1 NAT), real server address, port} (host order). 0, or the errno. */
  fastSvcPut(fd: number, protocol: number, vaddr: number, vport: number, svcId: number, entries: Int32Array, count: number): number;
  /** Removes a service's cycle; true when it was there. */
  fastSvcDelete(fd: number, protocol: number, vaddr: number, vport: number): boolean;
  /** Kernel scheduling's control cell (FastPathMaps.ctl) mapped into the calling thread. */
  fastCtl(ctlFd: number): ArrayBuffer;
  /** A reader of the events ring (one per thread; reads take turns). */
  fastEvents(eventsFd: number): FastEventsReader;
  /** Offloads a flow (host-order addresses and ports) to real server `destSlot`, with `base` the
   *  entry's in_pkts then: 0, or the errno (E2BIG: the map is full). `flags` (every put): 0, or
   *  FAST_TRACK (fast-path.ts): its FINs stay in the kernel. Any thread. */
  fastPut(fd: number, protocol: number, saddr: number, sport: number, daddr: number, dport: number, destSlot: number, base: number, flags?: number): number;
  /** Offloads a NAT connection: client caddr:cport -> VIP vaddr:vport, to real server daddr:dport
   *  (slot destSlot), its replies out by interface `ifindex` with the MACs of the entry's client
   *  hop (HOP_A..HOP_C). Both keys or neither: 0, or the errno. Any thread. */
  fastPutNat(fd: number, protocol: number, caddr: number, cport: number, vaddr: number, vport: number, daddr: number, dport: number,
    destSlot: number, base: number, hopA: number, hopB: number, hopC: number, ifindex: number, flags?: number): number;
  /** Offloads a TUN flow to real server `destSlot`: its frames get an outer IPv4 header from
   *  `source` (the director's address toward the real server) to `rip`. 0, or the errno. Any thread. */
  fastPutTun(fd: number, protocol: number, saddr: number, sport: number, daddr: number, dport: number, destSlot: number, base: number,
    rip: number, source: number, flags?: number): number;
  /** Milliseconds since the offloaded flow's last packet in the kernel (since fastPut when none),
   *  -1 when it is not in the map; `out` (2 cells) gets its base and the packets the program
   *  forwarded, and a third cell, when there is one, the value's flags (FAST_TRACK, FAST_FIN). */
  fastIdle(fd: number, protocol: number, saddr: number, sport: number, daddr: number, dport: number, out?: Float64Array): number;
  /** Removes a flow from the fast path; true when it was there. */
  fastDelete(fd: number, protocol: number, saddr: number, sport: number, daddr: number, dport: number): boolean;
  /** The connection table's batched lookup with software prefetch (src/conn/table.ts
   *  ConnBatchLookup, native/src/conn-lookup.cc): `cells` the table, `io` a ConnLookupBatch's
   *  cells; returns the hits. Any thread. */
  connLookupBatch(this: void, cells: Int32Array, io: Int32Array, n: number, reply: boolean): number;
  /** Adds (on) or removes a host-order IPv4 address in a dsts/srcs map; any thread. */
  bpfMapUpdate(mapFd: number, key: number, on: boolean): void;
  /** Attaches the IPIP decapsulation program to the device's tc ingress (tcx: Linux 6.6 or later;
   *  EINVAL before). Several may share a device (tcx keeps a list). */
  tcDecapAttach(ifindex: number, options: TcDecapOptions): TcDecapProgram;
  /** The device's RX and TX queue counts (ETHTOOL_GCHANNELS, else /sys/class/net/NAME/queues). */
  ifQueueCount(name: string): { rx: number; tx: number };
  /** if_nametoindex; throws ENODEV for an unknown name. */
  ifIndex(name: string): number;
  ifInfo(name: string): InterfaceInfo;
  /** One legacy ethtool flag (ETHTOOL_GGRO, ...). */
  ethtoolGet(name: string, feature: EthtoolFeature): boolean;
  ethtoolSet(name: string, feature: EthtoolFeature, on: boolean): void;
  /**
   * A TUN device (IFF_TUN | IFF_NO_PI, non-blocking fd); it lives as long as the fd. With vnetHdr
   * also IFF_VNET_HDR: every write starts with a 10-byte virtio_net_hdr (src/tun/gro.ts).
   */
  tunOpen(name?: string, vnetHdr?: boolean): { fd: number; name: string };
  /** Bytes read, or -1 when nothing is ready. */
  fdRead(fd: number, buffer: ArrayBuffer | ArrayBufferView): number;
  /** Bytes written, or -1 when the fd would block. */
  fdWrite(fd: number, buffer: ArrayBuffer | ArrayBufferView, length: number): number;
  fdWait(fd: number, timeoutMs: number): boolean;
  fdClose(fd: number): void;
  /** Which addon instance answered (1, 2, ... in load order across threads). */
  instanceId(): number;
  /** CLOCK_REALTIME in µs: the clock of a ring frame's tp_sec/tp_nsec. */
  clockRealtimeUs(): number;
  /** When this thread's last FdWatcher callback began, before its JS (CLOCK_REALTIME µs). */
  lastPollUs(): number;
  /** The calling thread's CPU affinity (sched_getaffinity), ascending. */
  threadCpus(): number[];
  /** Sets the calling thread's CPU affinity (sched_setaffinity of this thread only). */
  pinThread(cpus: readonly number[]): void;
  /** sched_getcpu(): the CPU the calling thread runs on now. */
  currentCpu(): number;
  /** One datagram to an AF_UNIX SOCK_DGRAM socket (/dev/log, $NOTIFY_SOCKET; '@name' is
   *  abstract): true when sent, false when it would block; throws (code ENOENT, ECONNREFUSED, ...). */
  unixDgramSend(path: string, buffer: ArrayBuffer | ArrayBufferView): boolean;
  /** This network namespace's cookie (SO_NETNS_COOKIE, Linux >= 5.14) as 16 hex digits: unique
   *  per namespace until the next boot, unlike its inode; throws (ENOPROTOOPT) on older kernels. */
  netnsCookie(): string;
}

// The frame descriptor layout, fixed here so hot code can use plain constants; the addon's own
// values are checked against these when it is loaded.
export const FRAME_STRIDE = 8;
export const FRAME_OFFSET = 0;
export const FRAME_CAPLEN = 1;
export const FRAME_WIRELEN = 2;
export const FRAME_STATUS = 3;
export const FRAME_VLAN_TCI = 4;
export const FRAME_VLAN_TPID = 5;
export const FRAME_PKTTYPE = 6;
export const FRAME_IFINDEX = 7;
// The virtio_net_hdr codec is a header like the others (src/packet/vnet.ts); re-exported here
// because every user of a vnetHdr socket needs it.
export { VNET_HDR_LEN, newVnetHdr, readVnetHdr, writeVnetHdr, type VnetHdr } from '../packet/vnet';

/** Where the addon is, relative to this file in dist/src/dataplane/ (or src/dataplane/). */
export function nativeAddonPath(): string {
  return process.env['UVS_NATIVE_ADDON'] ?? join(__dirname, '..', '..', '..', 'native', 'build', 'Release', 'uvs_native.node');
}

export class NativeLoadError extends UvsError {
  constructor(path: string, cause: unknown) {
    super('UVS_ERR_NATIVE_NOT_LOADED', `cannot load the uvs native addon from ${path}: ${cause instanceof Error ? cause.message : String(cause)} ` +
      '(build it with "npm install", which runs node-gyp rebuild -C native)', { cause });
  }
}

let loaded: NativeAddon | undefined;

/** Loads the addon once per thread. Throws NativeLoadError when it is not built. */
export function loadNative(): NativeAddon {
  if (loaded !== undefined) return loaded;
  const path = nativeAddonPath();
  let addon: NativeAddon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(path) as NativeAddon;
  } catch (err) {
    throw new NativeLoadError(path, err);
  }
  const c = addon.constants;
  const expected: Array<[string, number, number]> = [
    ['FRAME_STRIDE', c.FRAME_STRIDE, FRAME_STRIDE], ['FRAME_OFFSET', c.FRAME_OFFSET, FRAME_OFFSET],
    ['FRAME_CAPLEN', c.FRAME_CAPLEN, FRAME_CAPLEN], ['FRAME_WIRELEN', c.FRAME_WIRELEN, FRAME_WIRELEN],
    ['FRAME_STATUS', c.FRAME_STATUS, FRAME_STATUS], ['FRAME_VLAN_TCI', c.FRAME_VLAN_TCI, FRAME_VLAN_TCI],
    ['FRAME_VLAN_TPID', c.FRAME_VLAN_TPID, FRAME_VLAN_TPID], ['FRAME_PKTTYPE', c.FRAME_PKTTYPE, FRAME_PKTTYPE],
    ['FRAME_IFINDEX', c.FRAME_IFINDEX, FRAME_IFINDEX], ['VNET_HDR_LEN', c.VNET_HDR_LEN, VNET_HDR_LEN],
  ];
  for (const [name, got, want] of expected) {
    if (got !== want) throw new NativeLoadError(path, new Error(`${name} is ${got} in the addon but ${want} in src/native/addon.ts: rebuild the addon`));
  }
  loaded = addon;
  return addon;
}

const oneOffset = new Uint32Array(1);
const oneLength = new Uint32Array(1);

/**
 * Sends one whole frame (a gratuitous ARP built in JS, a probe) on a packet socket; true when the
 * kernel took it. Not for the data path, which sends batches.
 */
export function sendFrame(sock: PacketSocket, frame: Uint8Array): boolean {
  oneOffset[0] = 0;
  oneLength[0] = frame.length;
  return sock.send(frame, oneOffset, oneLength, 1) === 1;
}

/** Parses "aa:bb:cc:dd:ee:ff" into 6 bytes at `at` of out. */
export function writeMac(out: Uint8Array, at: number, mac: string): void {
  const parts = mac.split(':');
  if (parts.length !== 6) throw new TypeError(`'${mac}' is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  for (let i = 0; i < 6; i++) {
    const b = Number.parseInt(parts[i]!, 16);
    if (!/^[0-9a-fA-F]{1,2}$/.test(parts[i]!) || Number.isNaN(b)) throw new TypeError(`'${mac}' is not a MAC address (aa:bb:cc:dd:ee:ff)`);
    out[at + i] = b;
  }
}
