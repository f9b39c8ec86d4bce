// AF_XDP for uvs: an XDP program that steers the director's own IPv4 traffic (destination in `dsts`
// or source in `srcs`) into AF_XDP sockets, a UMEM shared by those sockets, and the sockets
// themselves with the same rx()/release()/send() contract as PacketSocket's ring.
//
// No libbpf or libxdp: the program is a dozen eBPF instructions assembled here, loaded and attached
// with the bpf(2) syscall (ebpf.h; BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_LINK_CREATE), and the rings are the
// kernel's plain mmap'd producer/consumer rings. A BPF link rather than the netlink attach: the
// program is detached when the link's last fd closes, so a crashed process leaves no program behind.
//
// Generic (SKB-mode) attach and copy-mode sockets: veth, the lab's device, offers nothing else that
// is faster (native/README.md "AF_PACKET's floor, and AF_XDP on veth").
//
// Threading: a UMEM and its sockets belong to one thread (the chunk bookkeeping is not locked);
// bpfMapUpdate may be called from any thread, map fds being process-wide.

#include "xdp.h"

#include "fast-path.h"

#include "common.h"
#include "ebpf.h"

#include <fcntl.h>
#include <dirent.h>
#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>
#include <vector>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif

namespace uvs_xdp {

namespace {

// The kernel puts received data XDP_PACKET_HEADROOM (256) after the UMEM's own headroom in a chunk.
constexpr uint32_t kXdpPacketHeadroom = 256;

// ---------------------------------------------------------------------------------------------
// The XDP program, hand-assembled (the assembler is in ebpf.h).

// The steering decision, in the order of the cheapest test first; every "no" is XDP_PASS, so what
// the program does not take reaches the kernel (and the AF_PACKET ring path) as without it.
//
// Keeping a flow on one path (ringflows). In generic mode the program sees the skb the kernel
// built, so a bulk TCP flow arrives as a mix of GSO super-frames (longer than maxFrame: AF_XDP
// cannot carry them, they pass to the ring) and short segments (which would be redirected). The
// worker drains the ring and the AF_XDP socket separately, so the two halves of one flow overtake
// each other. Measured (iperf3 upload through the director, DR, --io xdp, generic mode): the real
// server counted 974 TcpExtTCPOFOQueue, the client 432 retransmits, and throughput fell from
// ~10 Gbit/s (--io ring) to 0.6 Gbit/s. So the first too-long frame of a TCP/UDP flow puts the
// flow's key into the LRU hash ringflows, and every later frame of it passes too: a flow is on
// AF_XDP until its first super-frame and on the ring after it (one reordering window at the
// switch, at most). Other protocols (ICMP) are steered frame by frame as before.
//
// ringflows key (16 bytes, the fields in network byte order as in the packet):
//   0 saddr u32 | 4 daddr u32 | 8 sport u16 | 10 dport u16 | 12 protocol u8 | 13 three zero bytes
// IPv6 would get its own map (ringflows6, 16-byte addresses: a 40-byte key) rather than widen this.
constexpr uint32_t kFlowKeySize = 16;

// The flow key of a TCP/UDP frame (r4 = its protocol, r7 = data, r8 = data_end): r5 = data +
// IHL*4 (the L4 header at r5 + 14, IHL*4 bounded by & 0x3c for the verifier), and the 16-byte key
// at fp + kKey: saddr and daddr (adjacent in the header, one 8-byte copy), the ports, the protocol
// and three zero bytes. `bail(op, dst, src)` emits the jump taken when the ports are not in the
// frame. Shared by the fast path's lookup and the steering's ringflows.
template <typename Bail>
void FlowKey(Asm& a, int16_t kKey, Bail bail) {
  const uint8_t R3 = 3, R4 = 4, R5 = 5, R7 = 7, R8 = 8, R10 = 10;
  a.Ld(BPF_B, R5, R7, 14);
  a.Emit(BPF_ALU64 | BPF_LSH | BPF_K, R5, 0, 0, 2);
  a.AndK(R5, 0x3c);
  a.Emit(BPF_ALU64 | BPF_ADD | BPF_X, R5, R7, 0, 0);
  a.Mov(R3, R5);
  a.AddK(R3, 14 + 4);
  bail(BPF_JMP | BPF_JGT | BPF_X, R3, R8);
  a.Ld(BPF_DW, R3, R7, 26);
  a.St(BPF_DW, R10, kKey, R3);
  a.Ld(BPF_W, R3, R5, 14);
  a.St(BPF_W, R10, kKey + 8, R3);
  a.MovK(R3, 0);
  a.St(BPF_W, R10, kKey + 12, R3);
  a.St(BPF_B, R10, kKey + 12, R4);
}

// The fast path (fast-path.h; `fast` >= 0): before any steering, a TCP/UDP frame whose flow
// user space offloaded (the `fast` hash, same 16-byte key as ringflows) is forwarded here, in the
// kernel, as uvs DR forwards it: both MACs from the real server's record in `hops` (an array by
// DestTable slot), TTL decremented with the checksum fixed as ip_decrease_ttl does, bpf_redirect
// to the egress. The record's counters take the packet (IPVS in_pkts/in_bytes: the IP length) and
// the flow's value its time (bpf_ktime_get_ns, which the owner's expiry sweep asks for). What the
// fast path does not do goes on to the steering below (or passes) as if it were not there:
//   - TCP RST, a SYN or FIN of a flow user space did not mark tracked, and a frame longer than
//     maxFrame (a GSO super-frame): the flow is demoted (flags |= 1) and every later frame of it
//     goes to user space, which sees the state change, deletes the key and never offloads the
//     flow again. A tracked flow (flags bit 2, fast-path.h; offered at its SYN) keeps its SYNs
//     here (the SYN-ACK, retransmissions) until its direction has sent a FIN, and its FINs are
//     forwarded here and recorded in its value (bit 4) for user space to read
//     (src/dataplane/fast-path.ts, "Whole connections in the kernel");
//   - a demoted flow; TTL <= 1 (user space answers ICMP time exceeded); a record with ifindex 0
//     (next hop unknown, the real server unavailable or removed, not DR).
// `steer` false (--io ring): nothing is redirected to AF_XDP; every other frame passes.
//
// `nat` (the NAT/TUN program is on this device's tc ingress, fast-path.cc): a NAT flow's frame
// (value kind 1, the client's direction, or 2, the real server's reply) or a TUN flow's (kind 3:
// a TCP super-frame, or a frame that fits the real server's egress with the 20-byte outer header,
// bpf_check_mtu; see the TUN branch for the rest) is counted and stamped here like a DR one, then
// marked for that program: its destination MAC becomes kFastNatMark and it passes.
// The mark makes the frame PACKET_OTHERHOST (generic XDP runs eth_type_trans again when the
// destination MAC changes), so the rings' filters, which take PACKET_HOST only, skip it, and the
// tc program rewrites addresses, ports and checksums with the kernel's helpers, which know whether
// the L4 checksum is partial (a local sender on veth) or whole: XDP cannot tell. Without `nat` a
// NAT or TUN flow's frames go on to the steering (user space), as they did before.
//
// fast value (64 bytes, fast-path.cc): 0 destSlot u32 | 4 flags u32 (1 demoted, 2 tracked, 4 FIN) |
//   8 lastSeen ns u64 | 16 packets u64 | 24 base u32 (user space's) | 28 kind u16 (0 DR,
//   1 NAT client side, 2 NAT reply, 3 TUN) | 30 NAT port | 32 NAT address[16] (TUN: the real
//   server) | 48 reply dmac[6] | 54 reply smac[6] | 60 reply ifindex u32 (TUN: 48 outer source[16])
// hops value (48 bytes): 0 dmac[6] | 6 smac[6] | 12 ifindex u32 | 16 packets u64 | 24 bytes u64 |
//   32 reply packets u64 | 40 reply bytes u64
// Kernel scheduling's maps (fast-path.h) for FastPathBlock; svc < 0: not scheduled here.
// natReply: this device may carry NAT replies in the kernel (its MTU is the largest captured one),
// so a NAT connection whose SYN came in here may be scheduled here.
struct SchedFds {
  int svc = -1, ctl = -1, events = -1;
  bool natReply = false;
};

void SchedBlock(Asm& a, int fast, int hops, const SchedFds& k, bool nat, int steerLabel, int hitLabel, int16_t kKey);

void FastPathBlock(Asm& a, int fast, int hops, uint32_t maxFrame, int steerLabel, bool nat, const SchedFds& sched) {
  // r6 = the context (BuildProgram), r7 = data, r8 = data_end: they survive calls.
  const uint8_t R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, R10 = 10;
  // Stack: the steering's (fp-32..fp-1) stays free for it; the key is the same as its ringflows key.
  const int16_t kKey = -24, kSlot = -36, kKind = -40, kMtu = -44;
  const int demote = a.NewLabel(), notTcp = a.NewLabel(), l4ok = a.NewLabel(), noWrap = a.NewLabel();
  const int fin = a.NewLabel(), tracked = a.NewLabel(), finTracked = a.NewLabel();
  const int natFlow = a.NewLabel(), natReply = a.NewLabel(), natMark = a.NewLabel();
  a.Ld(BPF_B, R4, R7, 23);                                   // protocol
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R4, 0, IPPROTO_TCP, l4ok);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R4, 0, IPPROTO_UDP, steerLabel);
  a.Bind(l4ok);
  FlowKey(a, kKey, [&](uint8_t op, uint8_t dst, uint8_t src) { a.JumpTo(op, dst, src, 0, steerLabel); });
  a.Mov(R9, R5);                                             // r9 = L4 - 14 (survives the call)
  a.LdMapFd(R1, fast);
  a.Mov(R2, R10);
  a.AddK(R2, kKey);
  a.Call(BPF_FUNC_map_lookup_elem);
  const int hit = a.NewLabel(), miss = a.NewLabel();
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, sched.svc >= 0 ? miss : steerLabel);
  a.Bind(hit);
  //   r0 = the flow's value. TCP: SYN, FIN or RST demotes.
  a.Ld(BPF_B, R4, R7, 23);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R4, 0, IPPROTO_TCP, notTcp);
  a.Mov(R3, R9);
  a.AddK(R3, 14 + 14);
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_X, R3, R8, 0, steerLabel);
  a.Ld(BPF_B, R3, R9, 14 + 13);
  a.JumpTo(BPF_JMP | BPF_JSET | BPF_K, R3, 0, 0x04, demote);  // RST 4
  a.JumpTo(BPF_JMP | BPF_JSET | BPF_K, R3, 0, 0x03, fin);     // FIN 1, SYN 2
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, notTcp);
  //   A SYN or FIN demotes an untracked flow. A tracked one (offered at its SYN): a SYN (the
  //   real server's SYN-ACK, a retransmitted SYN) is forwarded, unless this direction has sent a
  //   FIN (a new connection on the port of a closed one: user space schedules it); a FIN is
  //   recorded (an atomic OR, user space reads it) and forwarded like any other frame.
  a.Bind(fin);
  a.Ld(BPF_W, R4, R0, 4);
  a.JumpTo(BPF_JMP | BPF_JSET | BPF_K, R4, 0, static_cast<int32_t>(uvs_fast::kFastTrack), tracked);
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, demote);
  a.Bind(tracked);
  a.JumpTo(BPF_JMP | BPF_JSET | BPF_K, R3, 0, 0x01, finTracked);
  a.JumpTo(BPF_JMP | BPF_JSET | BPF_K, R4, 0, static_cast<int32_t>(uvs_fast::kFastFin), demote);
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, notTcp);
  a.Bind(finTracked);
  a.MovK(R4, static_cast<int32_t>(uvs_fast::kFastFin));
  a.Emit(BPF_STX | BPF_W | BPF_ATOMIC, R0, R4, 4, BPF_OR);
  a.Bind(notTcp);
  a.Ld(BPF_W, R3, R0, 4);
  a.JumpTo(BPF_JMP | BPF_JSET | BPF_K, R3, 0, static_cast<int32_t>(uvs_fast::kFastDemoted), steerLabel);  // demoted already
  const int sizeOk = a.NewLabel();
  if (nat) {
    // NAT's and TUN's super-frames stay: the tc program rewrites a GSO frame as any other (TUN:
    // the outer header makes it an IPIP GSO frame, its segment size 20 bytes smaller), and the
    // kernel segments it where a device cannot. DR's redirect from here cannot carry one.
    a.Ld(BPF_H, R3, R0, 28);
    a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R3, 0, 0, sizeOk);
  }
  a.Mov(R3, R7);
  a.AddK(R3, static_cast<int32_t>(maxFrame) + 1);
  a.JumpTo(BPF_JMP | BPF_JLE | BPF_X, R3, R8, 0, demote);     // longer than maxFrame
  a.Bind(sizeOk);
  a.Ld(BPF_B, R3, R7, 22);
  a.JumpTo(BPF_JMP | BPF_JLE | BPF_K, R3, 0, 1, steerLabel);  // TTL <= 1
  a.Mov(R9, R0);                                             // r9 = the flow's value
  a.Ld(BPF_H, R3, R9, 28);                                   // kind: not DR goes to NAT, or on
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R3, 0, 0, nat ? natFlow : steerLabel);
  a.Ld(BPF_W, R3, R9, 0);
  a.LookupU32(hops, R3, kSlot);                              // r0 = the real server's record
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, steerLabel);
  a.Ld(BPF_W, R3, R0, 12);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R3, 0, 0, steerLabel);  // no next hop: user space decides
  //   Committed. Counters (atomic adds: several CPUs may forward for one real server).
  a.MovK(R4, 1);
  a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R0, R4, 16, BPF_ADD);
  a.Ld(BPF_H, R4, R7, 16);                                   // IP total length, network order
  a.Emit(BPF_ALU | BPF_END | BPF_TO_BE, R4, 0, 0, 16);
  a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R0, R4, 24, BPF_ADD);
  a.Ld(BPF_DW, R4, R0, 0);                                   // both MACs: 12 bytes
  a.St(BPF_DW, R7, 0, R4);
  a.Ld(BPF_W, R4, R0, 8);
  a.St(BPF_W, R7, 8, R4);
  a.Ld(BPF_B, R4, R7, 22);                                   // TTL - 1, checksum + htons(0x0100)
  a.AddK(R4, -1);
  a.St(BPF_B, R7, 22, R4);
  a.Ld(BPF_H, R4, R7, 24);
  a.AddK(R4, htons(0x0100));
  a.JumpTo(BPF_JMP | BPF_JLT | BPF_K, R4, 0, 0xffff, noWrap);
  a.AddK(R4, 1);
  a.Bind(noWrap);
  a.St(BPF_H, R7, 24, R4);
  a.MovK(R4, 1);                                             // the flow's own packet count
  a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R9, R4, 16, BPF_ADD);
  a.Mov(R8, R3);                                             // r8 = egress ifindex
  a.Call(BPF_FUNC_ktime_get_ns);
  a.St(BPF_DW, R9, 8, R0);
  a.Mov(R1, R8);
  a.MovK(R2, 0);
  a.Call(BPF_FUNC_redirect);
  a.Exit();
  a.Bind(demote);                                            // r0 = the flow's value
  a.MovK(R3, static_cast<int32_t>(uvs_fast::kFastDemoted));  // an OR: a tracked flow's FIN bit stays for user space
  a.Emit(BPF_STX | BPF_W | BPF_ATOMIC, R0, R3, 4, BPF_OR);
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, steerLabel);
  if (sched.svc >= 0) {
    a.Bind(miss);
    SchedBlock(a, fast, hops, sched, nat, steerLabel, hit, kKey);
  }
  if (!nat) return;
  //   NAT and TUN (r3 = kind, r9 = the value). The tc program's offsets assume a 20-byte IPv4
  //   header.
  a.Bind(natFlow);
  a.Ld(BPF_B, R4, R7, 14);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R4, 0, 0x45, steerLabel);
  a.St(BPF_W, R10, kKind, R3);                               // kind (r8, data_end, stays for the steering)
  const int natRecord = a.NewLabel();
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R3, 0, uvs_fast::kFastTun, natRecord);
  //     TUN. A super-frame (longer than the interface's frame): TCP only (the kernel refuses to
  //     shrink a UDP GSO frame's segments for the outer header), its IP length the frame's (not
  //     BIG TCP's 0) and short enough that the outer length fits 16 bits; else the flow is
  //     demoted. Its segments shrink by 20 bytes (tc's bpf_skb_adjust_room), so they fit any
  //     egress the record allows (MTU no smaller than any captured one). Any other frame must fit the real server's egress with the outer header
  //     (bpf_check_mtu, 20 bytes more). One that does not goes to user space: with DF, which
  //     answers "fragmentation needed" and drops it, so the flow stays offloaded (its sender
  //     sends smaller segments from then on); without DF, which fragments it, so the flow is
  //     demoted and stays on one path.
  const int tunDemote = a.NewLabel(), tunFits = a.NewLabel();
  a.Ld(BPF_W, R3, R9, 0);
  a.LookupU32(hops, R3, kSlot);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, steerLabel);
  a.Ld(BPF_W, R2, R0, 12);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R2, 0, 0, steerLabel);
  a.Ld(BPF_H, R3, R7, 16);                                   // the IP length, as the MTU counts
  a.Emit(BPF_ALU | BPF_END | BPF_TO_BE, R3, 0, 0, 16);
  a.Mov(R4, R7);
  a.AddK(R4, static_cast<int32_t>(maxFrame) + 1);
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_X, R4, R8, 0, tunFits);    // not a super-frame: the MTU check
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_K, R3, 0, 0xffff - 20, tunDemote);
  a.Mov(R4, R7);                                             // the IP length is the frame's (BIG TCP's 0 is not)
  a.AddK(R4, 14);
  a.Emit(BPF_ALU64 | BPF_ADD | BPF_X, R4, R3, 0, 0);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_X, R4, R8, 0, tunDemote);
  a.Ld(BPF_B, R4, R7, 23);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R4, 0, IPPROTO_TCP, natRecord);
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, tunDemote);
  a.Bind(tunFits);
  a.St(BPF_W, R10, kMtu, R3);
  a.Mov(R1, R6);
  a.Mov(R3, R10);
  a.AddK(R3, kMtu);
  a.MovK(R4, 20);
  a.MovK(R5, 0);
  a.Call(BPF_FUNC_check_mtu);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, natRecord);
  a.Ld(BPF_H, R3, R7, 20);                                   // DF: user space answers, no demotion
  a.JumpTo(BPF_JMP | BPF_JSET | BPF_K, R3, 0, htons(0x4000), steerLabel);
  a.Bind(tunDemote);
  a.MovK(R3, static_cast<int32_t>(uvs_fast::kFastDemoted));
  a.Emit(BPF_STX | BPF_W | BPF_ATOMIC, R9, R3, 4, BPF_OR);
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, steerLabel);
  a.Bind(natRecord);
  a.Ld(BPF_W, R3, R9, 0);
  a.LookupU32(hops, R3, kSlot);
  a.Ld(BPF_H, R4, R7, 16);                                   // IP total length
  a.Emit(BPF_ALU | BPF_END | BPF_TO_BE, R4, 0, 0, 16);
  a.Ld(BPF_W, R5, R10, kKind);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R5, 0, 2, natReply);
  //     The client's side (NAT kind 1, TUN): to the real server's record, as DR.
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, steerLabel);
  a.Ld(BPF_W, R3, R0, 12);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R3, 0, 0, steerLabel);
  a.MovK(R3, 1);
  a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R0, R3, 16, BPF_ADD);
  a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R0, R4, 24, BPF_ADD);
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, natMark);
  //     The reply: toward the client by the connection's own hop, counted as out_pkts/out_bytes.
  a.Bind(natReply);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R5, 0, 2, steerLabel);
  a.Ld(BPF_W, R3, R9, 60);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R3, 0, 0, steerLabel);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, natMark);    // no record: counted nowhere
  a.MovK(R3, 1);
  a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R0, R3, 32, BPF_ADD);
  a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R0, R4, 40, BPF_ADD);
  a.Bind(natMark);
  a.MovK(R4, 1);
  a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R9, R4, 16, BPF_ADD);
  a.Call(BPF_FUNC_ktime_get_ns);
  a.St(BPF_DW, R9, 8, R0);
  uint32_t mark32;
  uint16_t mark16;
  memcpy(&mark32, uvs_fast::kNatMark, 4);
  memcpy(&mark16, uvs_fast::kNatMark + 4, 2);
  a.Emit(BPF_ST | BPF_W | BPF_MEM, R7, 0, 0, static_cast<int32_t>(mark32));
  a.Emit(BPF_ST | BPF_H | BPF_MEM, R7, 0, 4, mark16);
  a.MovK(R0, XDP_PASS);
  a.Exit();
}

// A new TCP connection of a service whose choices user space laid out in `svc` (fast-path.h;
// src/dataplane/fast-path.ts, "New connections scheduled in the kernel"): the fast map missed
// (r6 = ctx, r7 = data, r8 = data_end, r9 = L4 - 14, the key at fp + kKey). A frame that is a
// bare SYN (no ACK, FIN or RST), with a 20-byte IPv4 header, a TTL above 1 and a source that is
// not martian (0/8, 127/8, 224/4 and above, the destination itself: what user space drops), to a
// service in `svc`, while ctl's pausedUntil has passed, gets the cycle's next entry (an atomic
// fetch-and-add of its cursor). If that real server's record forwards (ifindex set), the
// connection's keys go into the fast map as user space would put them at the SYN (FAST_TRACK;
// base 1 and packets -1, so that the forward below makes it 0: the SYN is the base's packet),
// a NAT connection's reply key first, with the client's MAC, ours and the ingress ifindex as its
// hop; then a record goes to the events ring, and the frame goes on as a hit of the new key
// (`hitLabel`: the tracked SYN is forwarded). Anything that fails takes back what was put and
// goes to user space (`steerLabel`), which schedules the SYN itself.
void SchedBlock(Asm& a, int fast, int hops, const SchedFds& k, bool nat, int steerLabel, int hitLabel, int16_t kKey) {
  const uint8_t R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R9 = 9, R10 = 10;
  // Stack, below FastPathBlock's (fp-44 and up) and the steering's (fp-32 and up).
  const int16_t kSavedL4 = -56, kNow = -64, kSvcKey = -72, kVal = -136, kRKey = -152, kRVal = -216, kRec = -264, kTmp = -268;
  const int restore = a.NewLabel(), undoReply = a.NewLabel(), refused = a.NewLabel(), notNat = a.NewLabel(), keysIn = a.NewLabel();
  const int wakeNo = a.NewLabel(), emitted = a.NewLabel();
  // Deletes the fast map's key at fp + `at`.
  auto deleteKey = [&](int16_t at) {
    a.LdMapFd(R1, fast);
    a.Mov(R2, R10);
    a.AddK(R2, at);
    a.Call(BPF_FUNC_map_delete_elem);
  };
  // Adds 1 to ctl's u64 at byte `field`, then goes on at `next` (there also when ctl is missing).
  auto countCtl = [&](int16_t field, int next) {
    a.MovK(R2, 0);
    a.LookupU32(k.ctl, R2, kTmp);
    a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, next);
    a.MovK(R2, 1);
    a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R0, R2, field, BPF_ADD);
    a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, next);
  };
  // The frame: TCP, flags in the frame, exactly SYN among SYN, ACK, FIN, RST.
  a.Ld(BPF_B, R4, R7, 23);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R4, 0, IPPROTO_TCP, steerLabel);
  a.Mov(R3, R9);
  a.AddK(R3, 14 + 14);
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_X, R3, 8, 0, steerLabel);
  a.Ld(BPF_B, R3, R9, 14 + 13);
  a.AndK(R3, 0x17);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R3, 0, 0x02, steerLabel);
  a.Ld(BPF_B, R4, R7, 14);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R4, 0, 0x45, steerLabel);
  a.Ld(BPF_B, R4, R7, 22);
  a.JumpTo(BPF_JMP | BPF_JLE | BPF_K, R4, 0, 1, steerLabel);
  a.Ld(BPF_B, R4, R7, 26);                                   // the source's first byte
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R4, 0, 0, steerLabel);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R4, 0, 127, steerLabel);
  a.JumpTo(BPF_JMP | BPF_JGE | BPF_K, R4, 0, 224, steerLabel);
  a.Ld(BPF_W, R4, R7, 26);
  a.Ld(BPF_W, R5, R7, 30);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_X, R4, R5, 0, steerLabel);
  // Paused (a SYN flood, table pressure: user space sets pausedUntil)?
  a.St(BPF_DW, R10, kSavedL4, R9);
  a.Call(BPF_FUNC_ktime_get_ns);
  a.St(BPF_DW, R10, kNow, R0);
  a.MovK(R2, 0);
  a.LookupU32(k.ctl, R2, kTmp);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, restore);
  a.Ld(BPF_DW, R2, R0, 0);
  a.Ld(BPF_DW, R3, R10, kNow);
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_X, R2, R3, 0, restore);
  // The service: {vaddr, vport, protocol, 0} from the flow key.
  a.Ld(BPF_W, R2, R10, kKey + 4);
  a.St(BPF_W, R10, kSvcKey, R2);
  a.Ld(BPF_H, R2, R10, kKey + 10);
  a.St(BPF_H, R10, kSvcKey + 4, R2);
  a.Emit(BPF_ST | BPF_H | BPF_MEM, R10, 0, kSvcKey + 6, IPPROTO_TCP);
  a.LdMapFd(R1, k.svc);
  a.Mov(R2, R10);
  a.AddK(R2, kSvcKey);
  a.Call(BPF_FUNC_map_lookup_elem);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, restore);
  a.Mov(R9, R0);                                             // r9 = the service's cycle
  a.Ld(BPF_W, R2, R9, 0);                                    // count
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R2, 0, 0, restore);
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_K, R2, 0, static_cast<int32_t>(uvs_fast::kSchedSlots), restore);
  a.MovK(R3, 1);
  a.Emit(BPF_STX | BPF_W | BPF_ATOMIC, R9, R3, 4, BPF_ADD | BPF_FETCH);  // r3 = the cursor before
  a.Emit(BPF_ALU | BPF_MOD | BPF_X, R3, R2, 0, 0);
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_K, R3, 0, static_cast<int32_t>(uvs_fast::kSchedSlots) - 1, restore);
  a.Emit(BPF_ALU64 | BPF_LSH | BPF_K, R3, 0, 0, 4);
  a.Emit(BPF_ALU64 | BPF_ADD | BPF_X, R3, R9, 0, 0);         // r3 = the entry - 16
  // The forward value (fast-path.cc Value), zeroed first: the helpers read all 64 bytes.
  for (int16_t off = 0; off < 64; off += 8) a.Emit(BPF_ST | BPF_DW | BPF_MEM, R10, 0, static_cast<int16_t>(kVal + off), 0);
  a.Ld(BPF_W, R2, R3, 16);
  a.St(BPF_W, R10, kVal, R2);                                // destSlot
  a.Ld(BPF_H, R2, R3, 20);
  a.St(BPF_H, R10, kVal + 28, R2);                           // kind
  a.Ld(BPF_H, R2, R3, 22);
  a.St(BPF_H, R10, kVal + 30, R2);                           // NAT port
  a.Ld(BPF_W, R2, R3, 24);
  a.St(BPF_W, R10, kVal + 32, R2);                           // NAT address
  a.Emit(BPF_ST | BPF_W | BPF_MEM, R10, 0, kVal + 4, static_cast<int32_t>(uvs_fast::kFastTrack));
  a.Ld(BPF_DW, R2, R10, kNow);
  a.St(BPF_DW, R10, kVal + 8, R2);                           // lastSeen
  a.Emit(BPF_ST | BPF_DW | BPF_MEM, R10, 0, kVal + 16, -1);  // packets: the forward makes it 0
  a.Emit(BPF_ST | BPF_W | BPF_MEM, R10, 0, kVal + 24, 1);    // base: the SYN
  // The event record: the key, destSlot, svcId, ingress ifindex, kind, the MACs.
  a.Ld(BPF_DW, R2, R10, kKey);
  a.St(BPF_DW, R10, kRec, R2);
  a.Ld(BPF_DW, R2, R10, kKey + 8);
  a.St(BPF_DW, R10, kRec + 8, R2);
  a.Ld(BPF_W, R2, R10, kVal);
  a.St(BPF_W, R10, kRec + 16, R2);
  a.Ld(BPF_W, R2, R9, 8);
  a.St(BPF_W, R10, kRec + 20, R2);
  a.Ld(BPF_W, R2, R6, offsetof(xdp_md, ingress_ifindex));
  a.St(BPF_W, R10, kRec + 24, R2);
  a.Ld(BPF_H, R2, R10, kVal + 28);
  a.St(BPF_H, R10, kRec + 28, R2);                           // kind
  a.Emit(BPF_ST | BPF_H | BPF_MEM, R10, 0, kRec + 30, 4);    // the IP version of the key
  a.Ld(BPF_W, R2, R7, 6);                                    // the client's MAC (the source)
  a.St(BPF_W, R10, kRec + 32, R2);
  a.Ld(BPF_H, R2, R7, 10);
  a.St(BPF_H, R10, kRec + 36, R2);
  a.Ld(BPF_H, R2, R7, 0);                                    // ours (the destination)
  a.St(BPF_H, R10, kRec + 38, R2);
  a.Ld(BPF_W, R2, R7, 2);
  a.St(BPF_W, R10, kRec + 40, R2);
  a.Emit(BPF_ST | BPF_W | BPF_MEM, R10, 0, kRec + 44, 0);
  // The real server's record must forward now (available, next hop known, this director active).
  a.Ld(BPF_W, R2, R10, kVal);
  a.LookupU32(hops, R2, kTmp);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, restore);
  a.Ld(BPF_W, R2, R0, 12);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R2, 0, 0, restore);
  a.Ld(BPF_H, R2, R10, kVal + 28);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R2, 0, 0, notNat);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R2, 0, 1, restore);
  if (!nat || !k.natReply) {
    a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, restore);            // NAT: not from this device
  } else {
    //   NAT: the reply's key {rip, caddr, rport, cport, protocol} and value (kind 2: the source
    //   becomes the VIP's; out by the hop the SYN came in by), put first.
    a.Ld(BPF_W, R2, R10, kVal + 32);
    a.St(BPF_W, R10, kRKey, R2);
    a.Ld(BPF_W, R2, R10, kKey);
    a.St(BPF_W, R10, kRKey + 4, R2);
    a.Ld(BPF_H, R2, R10, kVal + 30);
    a.St(BPF_H, R10, kRKey + 8, R2);
    a.Ld(BPF_H, R2, R10, kKey + 8);
    a.St(BPF_H, R10, kRKey + 10, R2);
    a.Emit(BPF_ST | BPF_W | BPF_MEM, R10, 0, kRKey + 12, IPPROTO_TCP);
    for (int16_t off = 0; off < 32; off += 8) {
      a.Ld(BPF_DW, R2, R10, static_cast<int16_t>(kVal + off));
      a.St(BPF_DW, R10, static_cast<int16_t>(kRVal + off), R2);
    }
    a.Emit(BPF_ST | BPF_DW | BPF_MEM, R10, 0, kRVal + 16, 0);  // packets 0
    a.Emit(BPF_ST | BPF_H | BPF_MEM, R10, 0, kRVal + 28, 2);   // kind: the reply
    a.Ld(BPF_H, R2, R10, kKey + 10);
    a.St(BPF_H, R10, kRVal + 30, R2);                           // the VIP's port
    a.Emit(BPF_ST | BPF_DW | BPF_MEM, R10, 0, kRVal + 32, 0);
    a.Emit(BPF_ST | BPF_DW | BPF_MEM, R10, 0, kRVal + 40, 0);
    a.Ld(BPF_W, R2, R10, kKey + 4);
    a.St(BPF_W, R10, kRVal + 32, R2);                           // the VIP
    a.Ld(BPF_W, R2, R10, kRec + 32);                            // the client's MAC, then ours
    a.St(BPF_W, R10, kRVal + 48, R2);
    a.Ld(BPF_H, R2, R10, kRec + 36);
    a.St(BPF_H, R10, kRVal + 52, R2);
    a.Ld(BPF_H, R2, R10, kRec + 38);
    a.St(BPF_H, R10, kRVal + 54, R2);
    a.Ld(BPF_W, R2, R10, kRec + 40);
    a.St(BPF_W, R10, kRVal + 56, R2);
    a.Ld(BPF_W, R2, R10, kRec + 24);
    a.St(BPF_W, R10, kRVal + 60, R2);                           // ifindex toward the client
    a.LdMapFd(R1, fast);
    a.Mov(R2, R10);
    a.AddK(R2, kRKey);
    a.Mov(R3, R10);
    a.AddK(R3, kRVal);
    a.MovK(R4, BPF_NOEXIST);
    a.Call(BPF_FUNC_map_update_elem);
    a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, refused);
  }
  a.Bind(notNat);
  a.LdMapFd(R1, fast);
  a.Mov(R2, R10);
  a.AddK(R2, kKey);
  a.Mov(R3, R10);
  a.AddK(R3, kVal);
  a.MovK(R4, BPF_NOEXIST);
  a.Call(BPF_FUNC_map_update_elem);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, keysIn);
  a.Ld(BPF_H, R2, R10, kVal + 28);                           // NAT: the reply's key out again
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R2, 0, 0, refused);
  deleteKey(kRKey);
  a.Bind(refused);
  countCtl(16, restore);
  //   The keys are in: the record for user space. The ring wakes its reader when
  //   kEventsWakeNs passed since the last wake-up (ctl's lastWake; a race between CPUs only
  //   wakes it twice) or kEventsWakeBytes wait; otherwise the reader finds the record on its next
  //   turn. A full ring takes the keys back.
  a.Bind(keysIn);
  const int wake = a.NewLabel();
  a.MovK(R2, 0);
  a.LookupU32(k.ctl, R2, kTmp);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, wake);
  a.Ld(BPF_DW, R2, R0, 32);                                  // lastWake
  a.Ld(BPF_DW, R3, R10, kNow);
  a.Emit(BPF_ALU64 | BPF_SUB | BPF_X, R3, R2, 0, 0);
  a.Mov(R2, R3);
  a.LdImm64(R4, uvs_fast::kEventsWakeNs);
  a.JumpTo(BPF_JMP | BPF_JGE | BPF_X, R2, R4, 0, wake);
  a.LdMapFd(R1, k.events);
  a.MovK(R2, BPF_RB_AVAIL_DATA);
  a.Call(BPF_FUNC_ringbuf_query);
  a.MovK(R4, BPF_RB_NO_WAKEUP);
  a.JumpTo(BPF_JMP | BPF_JLT | BPF_K, R0, 0, static_cast<int32_t>(uvs_fast::kEventsWakeBytes), wakeNo);
  a.Bind(wake);
  a.MovK(R2, 0);
  a.LookupU32(k.ctl, R2, kTmp);
  a.MovK(R4, BPF_RB_FORCE_WAKEUP);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, wakeNo);
  a.Ld(BPF_DW, R3, R10, kNow);
  a.St(BPF_DW, R0, 32, R3);                                  // lastWake := now
  a.MovK(R4, BPF_RB_FORCE_WAKEUP);                           // (r4 is clobbered by the lookup's call)
  a.Bind(wakeNo);
  a.LdMapFd(R1, k.events);
  a.Mov(R2, R10);
  a.AddK(R2, kRec);
  a.MovK(R3, static_cast<int32_t>(uvs_fast::kEventSize));
  a.Call(BPF_FUNC_ringbuf_output);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, emitted);
  deleteKey(kKey);
  a.Ld(BPF_H, R2, R10, kVal + 28);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R2, 0, 0, undoReply);
  deleteKey(kRKey);
  a.Bind(undoReply);
  countCtl(24, restore);
  a.Bind(emitted);
  const int counted = a.NewLabel();
  countCtl(8, counted);
  a.Bind(counted);
  //   On as a hit of the new key: r9 = L4 - 14 again, r0 = the value.
  a.Ld(BPF_DW, R9, R10, kSavedL4);
  a.LdMapFd(R1, fast);
  a.Mov(R2, R10);
  a.AddK(R2, kKey);
  a.Call(BPF_FUNC_map_lookup_elem);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, hitLabel);
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, steerLabel);
  a.Bind(restore);
  a.Ld(BPF_DW, R9, R10, kSavedL4);
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, steerLabel);
}

std::vector<bpf_insn> BuildProgram(const uint8_t mac[6], uint32_t maxFrame, int xsks, int dsts, int srcs, int ringflows, int fast, int hops, bool steer, bool nat,
                                   const SchedFds& sched) {
  Asm a;
  const uint8_t R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R10 = 10;
  // Stack: fp-4 daddr, fp-8 saddr (the dsts/srcs keys), fp-24..fp-9 the ringflows key, fp-32 its value.
  const int16_t kKey = -24, kValue = -32;
  a.Mov(R6, R1);                                             // r6 = ctx (r1 is clobbered by calls)
  a.Ld(BPF_W, R7, R6, offsetof(xdp_md, data));               // r7 = data
  a.Ld(BPF_W, R8, R6, offsetof(xdp_md, data_end));           // r8 = data_end (r6-r9 survive calls)
  // 1. Ethernet + IPv4 header present (this bound is also what lets the verifier allow the loads).
  a.Mov(R4, R7);
  a.AddK(R4, 34);
  a.JPass(BPF_JMP | BPF_JGT | BPF_X, R4, R8, 0);
  // 2. Destination MAC is the device's own: a 32-bit and a 16-bit load against immediates in the
  // CPU's byte order (the loads are native-endian). JMP32: a 64-bit compare would sign-extend the
  // immediate and never match a MAC whose fourth byte is ≥ 0x80.
  uint32_t mac32;
  uint16_t mac16;
  memcpy(&mac32, mac, 4);
  memcpy(&mac16, mac + 4, 2);
  a.Ld(BPF_W, R4, R7, 0);
  a.JPass(BPF_JMP32 | BPF_JNE | BPF_K, R4, 0, static_cast<int32_t>(mac32));
  a.Ld(BPF_H, R4, R7, 4);
  a.JPass(BPF_JMP32 | BPF_JNE | BPF_K, R4, 0, mac16);
  // 3. EtherType IPv4 (VLAN tags, ARP and IPv6 pass; IPv6 would get its own maps and branch here).
  uint16_t ipv4 = htons(ETH_P_IP);
  a.Ld(BPF_H, R4, R7, 12);
  a.JPass(BPF_JMP32 | BPF_JNE | BPF_K, R4, 0, ipv4);
  // 4. Version 4, IHL >= 5.
  a.Ld(BPF_B, R4, R7, 14);
  a.Mov(R5, R4);
  a.AndK(R5, 0xf0);
  a.JPass(BPF_JMP | BPF_JNE | BPF_K, R5, 0, 0x40);
  a.AndK(R4, 0x0f);
  a.JPass(BPF_JMP | BPF_JLT | BPF_K, R4, 0, 5);
  //    Fragments (MF or a fragment offset) pass: the ring path reassembles them.
  uint16_t fragMask = htons(0x3fff);
  a.Ld(BPF_H, R4, R7, 20);
  a.JPass(BPF_JMP | BPF_JSET | BPF_K, R4, 0, fragMask);
  // 4b. The fast path for offloaded flows (FastPathBlock); its "no" goes on to the steering.
  const int steerLabel = a.NewLabel();
  if (fast >= 0) FastPathBlock(a, fast, hops, maxFrame, steerLabel, nat, sched);
  a.Bind(steerLabel);
  if (!steer) {
    const size_t passHere = a.code.size();
    a.MovK(R0, XDP_PASS);
    a.Exit();
    a.Link(passHere, passHere);
    return a.code;
  }
  // 5. Destination in dsts, else source in srcs (keys: the address as it sits in the packet); in
  // neither: pass. Both keys go on the stack before the first call, which clobbers r1-r5.
  a.Ld(BPF_W, R4, R7, 30);
  a.St(BPF_W, R10, -4, R4);
  a.Ld(BPF_W, R4, R7, 26);
  a.St(BPF_W, R10, -8, R4);
  a.LdMapFd(R1, dsts);
  a.Mov(R2, R10);
  a.AddK(R2, -4);
  a.Call(BPF_FUNC_map_lookup_elem);
  const size_t toMatched = a.code.size();
  a.Emit(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, 0);            // hit: on to 6 (patched below)
  a.LdMapFd(R1, srcs);
  a.Mov(R2, R10);
  a.AddK(R2, -8);
  a.Call(BPF_FUNC_map_lookup_elem);
  a.JPass(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0);
  a.code[toMatched].off = static_cast<int16_t>(a.code.size() - toMatched - 1);
  // 6. TCP and UDP get a flow key; anything else goes to 9 (steered by its length alone).
  a.Ld(BPF_B, R4, R7, 23);                                   // protocol
  const size_t tcp = a.code.size();
  a.Emit(BPF_JMP | BPF_JEQ | BPF_K, R4, 0, 0, IPPROTO_TCP);
  const size_t toOther = a.code.size();
  a.Emit(BPF_JMP | BPF_JNE | BPF_K, R4, 0, 0, IPPROTO_UDP);  // patched to 9 below
  a.code[tcp].off = static_cast<int16_t>(a.code.size() - tcp - 1);
  //    The key (FlowKey); its 4 port bytes must be in the frame, else pass.
  FlowKey(a, kKey, [&](uint8_t op, uint8_t dst, uint8_t src) { a.JPass(op, dst, src, 0); });
  // 7. Longer than maxFrame (a GSO super-frame from generic XDP, or a frame larger than a chunk
  // holds): data + maxFrame + 1 <= data_end. Compared as pointers, not by subtracting them: the
  // verifier allows pkt-pointer against pkt_end comparisons for every user, pointer subtraction
  // only with CAP_PERFMON. Such a frame passes, and its flow goes into ringflows so that the rest
  // of the flow follows it to the ring.
  a.Mov(R4, R7);
  a.AddK(R4, static_cast<int32_t>(maxFrame) + 1);
  const size_t toShort = a.code.size();
  a.Emit(BPF_JMP | BPF_JGT | BPF_X, R4, R8, 0, 0);           // short: on to 8 (patched below)
  a.MovK(R3, 1);
  a.St(BPF_B, R10, kValue, R3);
  a.LdMapFd(R1, ringflows);
  a.Mov(R2, R10);
  a.AddK(R2, kKey);
  a.Mov(R3, R10);
  a.AddK(R3, kValue);
  a.MovK(R4, BPF_ANY);
  a.Call(BPF_FUNC_map_update_elem);                          // a full LRU evicts; a failure only costs order
  a.JPass(BPF_JMP | BPF_JA, 0, 0, 0);
  a.code[toShort].off = static_cast<int16_t>(a.code.size() - toShort - 1);
  // 8. A short frame of a flow already on the ring stays there.
  a.LdMapFd(R1, ringflows);
  a.Mov(R2, R10);
  a.AddK(R2, kKey);
  a.Call(BPF_FUNC_map_lookup_elem);
  a.JPass(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0);
  a.JRedirect(BPF_JMP | BPF_JA, 0, 0);
  // 9. Other protocols: longer than maxFrame passes, the rest is redirected.
  a.code[toOther].off = static_cast<int16_t>(a.code.size() - toOther - 1);
  a.Mov(R4, R7);
  a.AddK(R4, static_cast<int32_t>(maxFrame) + 1);
  a.JPass(BPF_JMP | BPF_JLE | BPF_X, R4, R8, 0);
  a.JRedirect(BPF_JMP | BPF_JA, 0, 0);
  const size_t pass = a.code.size();
  a.MovK(R0, XDP_PASS);
  a.Exit();
  // 10. To the socket on this RX queue; flags XDP_PASS: no socket there, the frame passes.
  const size_t redirect = a.code.size();
  a.Ld(BPF_W, R2, R6, offsetof(xdp_md, rx_queue_index));
  a.LdMapFd(R1, xsks);
  a.MovK(R3, XDP_PASS);
  a.Call(BPF_FUNC_redirect_map);
  a.Exit();
  a.Link(pass, redirect);
  return a.code;
}

struct ProgramFds {
  int link = -1, prog = -1, xsks = -1, dsts = -1, srcs = -1, ringflows = -1, tcLink = -1, tcProg = -1;
  void Close() {
    // The link first: that detaches the program from the device. The NAT tc program after the XDP
    // one, which stops marking frames for it.
    for (int* fd : {&link, &prog, &xsks, &dsts, &srcs, &ringflows, &tcLink, &tcProg}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }
  ~ProgramFds() { Close(); }
};

bool ParseMac(const std::string& s, uint8_t out[6]) {
  unsigned v[6];
  char extra;
  if (sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &extra) != 6) return false;
  for (int i = 0; i < 6; i++) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}

}  // namespace

Napi::Value Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* W = "xdpAttach";
  int ifindex = static_cast<int>(IntArg(info, 0, "xdpAttach(ifindex, options): ifindex", 1, INT32_MAX));
  if (info.Length() < 2 || !info[1].IsObject()) ThrowType(env, "xdpAttach(ifindex, options): options must be an object {mac, maxFrame, mapEntries}");
  Napi::Object o = info[1].As<Napi::Object>();
  if (!o.Get("mac").IsString()) ThrowType(env, "xdpAttach: option mac must be a string aa:bb:cc:dd:ee:ff");
  std::string macText = o.Get("mac").As<Napi::String>().Utf8Value();
  uint8_t mac[6];
  if (!ParseMac(macText, mac)) ThrowType(env, "xdpAttach: option mac '" + macText + "' is not aa:bb:cc:dd:ee:ff");
  if (!Present(o, "maxFrame") || !Present(o, "mapEntries")) ThrowType(env, "xdpAttach: options maxFrame and mapEntries are required");
  uint32_t maxFrame = static_cast<uint32_t>(OptInt(o, W, "maxFrame", 0, 34, 65535));
  uint32_t mapEntries = static_cast<uint32_t>(OptInt(o, W, "mapEntries", 0, 1, 1 << 24));
  uint32_t flowEntries = static_cast<uint32_t>(OptInt(o, W, "flowEntries", 65536, 1, 1 << 24));
  // mode 'generic' (default): after the kernel built its skb, on any device; 'native': in the
  // driver, before GRO, where the driver supports it (veth does, and then turns its peer's
  // TSO/GSO off, so the program sees wire-sized frames only).
  std::string mode = Present(o, "mode") ? o.Get("mode").As<Napi::String>().Utf8Value() : "generic";
  if (mode != "generic" && mode != "native") ThrowType(env, "xdpAttach: option mode '" + mode + "' is not generic or native");
  // steer false: no AF_XDP (--io ring with the fast path only); fastFd/hopsFd: the fast path's
  // maps (fastPathMaps), shared by the programs of every interface.
  bool steer = OptBool(o, W, "steer", true);
  int fast = static_cast<int>(OptInt(o, W, "fastFd", -1, -1, INT32_MAX));
  int hops = static_cast<int>(OptInt(o, W, "hopsFd", -1, -1, INT32_MAX));
  if ((fast < 0) != (hops < 0)) ThrowType(env, "xdpAttach: options fastFd and hopsFd go together");
  if (!steer && fast < 0) ThrowType(env, "xdpAttach: steer false needs the fast path (fastFd, hopsFd): the program would do nothing");
  // nat: NAT flows too, with the tc program (fast-path.cc) on the device's tc ingress. Attached
  // first, since the XDP program's marked frames need it; when it cannot be attached (no tcx
  // before Linux 6.6), NAT stays in user space and natError says why.
  bool nat = fast >= 0 && OptBool(o, W, "nat", false);
  // Kernel scheduling (fast-path.h): svcFd, ctlFd and eventsFd together; natReply: this device may
  // carry NAT replies in the kernel.
  SchedFds sched;
  sched.svc = static_cast<int>(OptInt(o, W, "svcFd", -1, -1, INT32_MAX));
  sched.ctl = static_cast<int>(OptInt(o, W, "ctlFd", -1, -1, INT32_MAX));
  sched.events = static_cast<int>(OptInt(o, W, "eventsFd", -1, -1, INT32_MAX));
  sched.natReply = OptBool(o, W, "natReply", false);
  if ((sched.svc < 0) != (sched.ctl < 0) || (sched.svc < 0) != (sched.events < 0)) ThrowType(env, "xdpAttach: options svcFd, ctlFd and eventsFd go together");
  if (sched.svc >= 0 && fast < 0) ThrowType(env, "xdpAttach: svcFd needs the fast path (fastFd, hopsFd)");

  auto fds = std::make_shared<ProgramFds>();
  std::string natError;
  if (nat) {
    try {
      fds->tcLink = uvs_fast::AttachNatTc(env, ifindex, fast, hops, &fds->tcProg);
    } catch (const Napi::Error& e) {
      natError = e.Message();
      nat = false;
    }
  }
  fds->xsks = MapCreate(env, BPF_MAP_TYPE_XSKMAP, "uvs_xsks", 4, 64);
  // IPv4 keys only for now; IPv6 would get dsts6/srcs6 with 16-byte keys and its own branch.
  fds->dsts = MapCreate(env, BPF_MAP_TYPE_HASH, "uvs_dsts", 1, mapEntries);
  fds->srcs = MapCreate(env, BPF_MAP_TYPE_HASH, "uvs_srcs", 1, mapEntries);
  // The flows that went to the ring (see BuildProgram); LRU: old flows make room for new ones.
  fds->ringflows = MapCreate(env, BPF_MAP_TYPE_LRU_HASH, "uvs_ringflows", 1, flowEntries, kFlowKeySize);
  fds->prog = ProgLoad(env, BPF_PROG_TYPE_XDP, BPF_XDP, "uvs_xdp", BuildProgram(mac, maxFrame, fds->xsks, fds->dsts, fds->srcs, fds->ringflows, fast, hops, steer, nat, sched), "XDP");

  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.link_create.prog_fd = static_cast<uint32_t>(fds->prog);
  a.link_create.target_ifindex = static_cast<uint32_t>(ifindex);
  a.link_create.attach_type = BPF_XDP;
  a.link_create.flags = mode == "native" ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  fds->link = static_cast<int>(Bpf(BPF_LINK_CREATE, &a));
  if (fds->link < 0) {
    // EBUSY: another program (or link) is on the device already; EOPNOTSUPP (native): the driver has no XDP.
    ThrowSys(env, "bpf(BPF_LINK_CREATE, XDP " + mode + ", ifindex=" + std::to_string(ifindex) + ")", errno);
  }

  Napi::Object r = Napi::Object::New(env);
  r.Set("linkFd", Napi::Number::New(env, fds->link));
  r.Set("progFd", Napi::Number::New(env, fds->prog));
  r.Set("xsksFd", Napi::Number::New(env, fds->xsks));
  r.Set("dstsFd", Napi::Number::New(env, fds->dsts));
  r.Set("srcsFd", Napi::Number::New(env, fds->srcs));
  r.Set("ringflowsFd", Napi::Number::New(env, fds->ringflows));
  r.Set("nat", Napi::Boolean::New(env, nat));
  if (!natError.empty()) r.Set("natError", Napi::String::New(env, natError));
  r.Set("close", Napi::Function::New(env, [fds](const Napi::CallbackInfo& ci) {
          fds->Close();
          return ci.Env().Undefined();
        }, "close"));
  // Garbage-collected without close(): the fds go with it (and the program with the link).
  auto* hold = new std::shared_ptr<ProgramFds>(fds);
  r.AddFinalizer([](Napi::Env, std::shared_ptr<ProgramFds>* h) { delete h; }, hold);
  return r;
}

Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "bpfMapUpdate(mapFd, key, on): mapFd", 0, INT32_MAX));
  uint32_t key = htonl(static_cast<uint32_t>(IntArg(info, 1, "bpfMapUpdate(mapFd, key, on): key", 0, 0xffffffffLL)));
  if (info.Length() < 3 || !info[2].IsBoolean()) ThrowType(env, "bpfMapUpdate(mapFd, key, on): on must be a boolean");
  bool on = info[2].As<Napi::Boolean>().Value();
  uint8_t value = 1;
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<uint32_t>(fd);
  a.key = reinterpret_cast<uint64_t>(&key);
  if (on) {
    a.value = reinterpret_cast<uint64_t>(&value);
    a.flags = BPF_ANY;
    if (Bpf(BPF_MAP_UPDATE_ELEM, &a) < 0) ThrowSys(env, "bpf(BPF_MAP_UPDATE_ELEM, fd=" + std::to_string(fd) + ", key=" + Ipv4Text(key) + ")", errno);
  } else if (Bpf(BPF_MAP_DELETE_ELEM, &a) < 0 && errno != ENOENT) {
    ThrowSys(env, "bpf(BPF_MAP_DELETE_ELEM, fd=" + std::to_string(fd) + ", key=" + Ipv4Text(key) + ")", errno);
  }
  return env.Undefined();
}

namespace {
uint32_t CountDir(const std::string& dir, const char* prefix) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  uint32_t n = 0;
  size_t plen = strlen(prefix);
  while (dirent* e = readdir(d)) {
    if (strncmp(e->d_name, prefix, plen) == 0) n++;
  }
  closedir(d);
  return n;
}
}  // namespace

Napi::Value IfQueueCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "ifQueueCount(name): name");
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('/') != std::string::npos) ThrowRange(env, "ifQueueCount: '" + name + "' is not an interface name");
  uint32_t rx = 0, tx = 0;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) ThrowSys(env, "socket(AF_INET, SOCK_DGRAM, 0)", errno);
  ethtool_channels ch;
  memset(&ch, 0, sizeof ch);
  ch.cmd = ETHTOOL_GCHANNELS;
  ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.c_str(), name.size());
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  int r = ioctl(s, SIOCETHTOOL, &ifr);
  int err = errno;
  close(s);
  if (r == 0) {
    rx = ch.combined_count + ch.rx_count;
    tx = ch.combined_count + ch.tx_count;
  } else if (err == ENODEV) {
    ThrowSys(env, "ioctl(SIOCETHTOOL, " + name + ", ETHTOOL_GCHANNELS)", err);
  }
  // EOPNOTSUPP (no get_channels), or a driver that reports no counts: the queues the stack made.
  if (rx == 0 || tx == 0) {
    std::string dir = "/sys/class/net/" + name + "/queues";
    rx = CountDir(dir, "rx-");
    tx = CountDir(dir, "tx-");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("rx", Napi::Number::New(env, rx));
  o.Set("tx", Napi::Number::New(env, tx));
  return o;
}

// ---------------------------------------------------------------------------------------------
// XdpUmem: the packet memory the sockets share. Aligned mode: chunk i is [i * chunkSize, (i+1) *
// chunkSize); a descriptor's address may point anywhere inside a chunk, and the chunk is addr /
// chunkSize. Every chunk is in exactly one place, which its state byte names.

enum ChunkState : uint8_t {
  kFree = 0,  // on the free stack
  kFill = 1,  // in a socket's fill ring (or received, not yet taken by rx())
  kHeld = 2,  // returned by rx(): JS owns it until release() or send()
  kTx = 3,    // queued for transmit, until its completion arrives
};

struct XskRing {
  uint32_t* producer = nullptr;
  uint32_t* consumer = nullptr;
  uint8_t* descs = nullptr;
  uint32_t size = 0;
  uint32_t mask = 0;
  void* map = nullptr;
  size_t mapLen = 0;
  void Unmap() {
    if (map != nullptr) munmap(map, mapLen);
    map = nullptr;
  }
};

struct UmemCore {
  uint8_t* base = nullptr;
  size_t len = 0;
  uint32_t chunkSize = 0;
  uint32_t chunkCount = 0;
  uint32_t headroom = 0;
  std::vector<uint32_t> freeStack;
  std::vector<uint8_t> state;
  std::vector<uint16_t> owner;              // the socket slot whose ring or held list has the chunk
  std::vector<XdpSocket*> slots;            // open sockets by slot (nullptr: free slot)
  uint32_t open = 0;                        // open sockets
  bool closed = false;
  ~UmemCore() {
    if (base != nullptr) munmap(base, len);
  }
  void Free(uint32_t c) {
    state[c] = kFree;
    freeStack.push_back(c);
  }
  int SharedFd() const;
};

const napi_type_tag kXdpUmemTag = {0x757673756d656d31ULL, 0x4b1e0c9a7d2f3e58ULL};

class XdpUmem : public Napi::ObjectWrap<XdpUmem> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "XdpUmem",
                       {
                           InstanceAccessor<&XdpUmem::GetBuffer>("buffer"),
                           InstanceAccessor<&XdpUmem::GetFree>("free"),
                           InstanceAccessor<&XdpUmem::GetChunkSize>("chunkSize"),
                           InstanceAccessor<&XdpUmem::GetChunkCount>("chunkCount"),
                           InstanceAccessor<&XdpUmem::GetHeadroom>("headroom"),
                           InstanceAccessor<&XdpUmem::GetMaxRxFrame>("maxRxFrame"),
                           InstanceMethod<&XdpUmem::States>("states"),
                           InstanceMethod<&XdpUmem::Close>("close"),
                       });
  }

  explicit XdpUmem(const Napi::CallbackInfo& info) : Napi::ObjectWrap<XdpUmem>(info) {
    Napi::Env env = info.Env();
    const char* W = "XdpUmem";
    Napi::Object o = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
    long page = sysconf(_SC_PAGESIZE);
    uint32_t chunkCount = static_cast<uint32_t>(OptInt(o, W, "chunkCount", 4096, 64, 1 << 20));
    uint32_t chunkSize = static_cast<uint32_t>(OptInt(o, W, "chunkSize", 2048, 2048, page));
    // Aligned mode wants a power of two between 2 KiB and the page size (xdp_umem_reg).
    if ((chunkSize & (chunkSize - 1)) != 0) ThrowRange(env, "XdpUmem: chunkSize " + std::to_string(chunkSize) + " must be a power of two (2048.." + std::to_string(page) + ")");
    uint32_t headroom = static_cast<uint32_t>(OptInt(o, W, "headroom", 256, 0, chunkSize));
    // The kernel adds its own XDP_PACKET_HEADROOM on receive; leave room for a minimal frame.
    if (headroom + kXdpPacketHeadroom + 128 > chunkSize) {
      ThrowRange(env, "XdpUmem: headroom " + std::to_string(headroom) + " leaves no room in a " + std::to_string(chunkSize) + "-byte chunk (the kernel adds 256 on receive)");
    }
    core_ = std::make_shared<UmemCore>();
    core_->len = static_cast<size_t>(chunkCount) * chunkSize;
    void* base = mmap(nullptr, core_->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (base == MAP_FAILED) ThrowSys(env, "mmap(anonymous, length=" + std::to_string(core_->len) + ")", errno);
    core_->base = static_cast<uint8_t*>(base);
    core_->chunkSize = chunkSize;
    core_->chunkCount = chunkCount;
    core_->headroom = headroom;
    core_->state.assign(chunkCount, kFree);
    core_->owner.assign(chunkCount, 0);
    core_->freeStack.reserve(chunkCount);
    // Lowest addresses on top: the first chunks handed out are the first pages.
    for (uint32_t i = chunkCount; i-- > 0;) core_->freeStack.push_back(i);
    // The ArrayBuffer holds the memory too: JS may keep it after the UMEM is collected.
    auto* hold = new std::shared_ptr<UmemCore>(core_);
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
        env, base, core_->len, [](Napi::Env, void*, std::shared_ptr<UmemCore>* h) { delete h; }, hold);
    bufRef_ = Napi::Persistent(ab);
    napi_type_tag_object(env, info.This(), &kXdpUmemTag);
  }

  std::shared_ptr<UmemCore> core_;

 private:
  Napi::Value GetBuffer(const Napi::CallbackInfo& info) {
    if (bufRef_.IsEmpty()) return info.Env().Undefined();
    return bufRef_.Value();
  }
  Napi::Value GetFree(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), core_ ? core_->freeStack.size() : 0); }
  Napi::Value GetChunkSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), core_ ? core_->chunkSize : 0); }
  Napi::Value GetChunkCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), core_ ? core_->chunkCount : 0); }
  Napi::Value GetHeadroom(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), core_ ? core_->headroom : 0); }
  // The largest frame a socket can receive into a chunk (chunkSize - headroom - 256): the
  // program's maxFrame must not exceed it, or the kernel drops the longer frames (rxDropped).
  Napi::Value GetMaxRxFrame(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), core_ ? core_->chunkSize - core_->headroom - kXdpPacketHeadroom : 0);
  }

  // states(): how many chunks are in each state — the accounting a test (or a leak check) reads:
  // with no traffic in flight and everything released, held and tx are 0.
  Napi::Value States(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double n[4] = {0, 0, 0, 0};
    if (core_) {
      for (uint8_t st : core_->state) n[st & 3]++;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("free", Napi::Number::New(env, n[kFree]));
    o.Set("fill", Napi::Number::New(env, n[kFill]));
    o.Set("held", Napi::Number::New(env, n[kHeld]));
    o.Set("tx", Napi::Number::New(env, n[kTx]));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (core_ && core_->open > 0) throw Napi::Error::New(env, "XdpUmem.close: " + std::to_string(core_->open) + " XdpSocket(s) still use it; close them first");
    if (!bufRef_.IsEmpty()) {
      Napi::ArrayBuffer ab = bufRef_.Value();
      if (!ab.IsDetached()) ab.Detach();
      bufRef_.Reset();
    }
    if (core_) core_->closed = true;
    core_.reset();
    return env.Undefined();
  }

  Napi::Reference<Napi::ArrayBuffer> bufRef_;
};

// ---------------------------------------------------------------------------------------------
// XdpSocket

const napi_type_tag kXdpSocketTag = {0x75767378736b7631ULL, 0x9d2c5680f1e3a4b7ULL};

// Ones-complement sum of len bytes (RFC 1071), 32 bits a load into a 64-bit accumulator, in the
// CPU's byte order (the sum is byte-order independent up to a final swap, so checksums computed
// and stored in native order land right on the wire).
inline uint64_t SumBytes(const uint8_t* p, size_t len, uint64_t sum) {
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    sum += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    len -= 2;
  }
  if (len == 1) {
    uint8_t last[2] = {*p, 0};
    uint16_t w;
    memcpy(&w, last, 2);
    sum += w;
  }
  return sum;
}

inline uint16_t Fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

class XdpSocket : public Napi::ObjectWrap<XdpSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "XdpSocket",
                       {
                           InstanceAccessor<&XdpSocket::GetFd>("fd"),
                           InstanceAccessor<&XdpSocket::GetIfindex>("ifindex"),
                           InstanceAccessor<&XdpSocket::GetQueue>("queue"),
                           InstanceAccessor<&XdpSocket::GetTxShed>("txShed"),
                           InstanceMethod<&XdpSocket::Rx>("rx"),
                           InstanceMethod<&XdpSocket::Release>("release"),
                           InstanceMethod<&XdpSocket::Send>("send"),
                           InstanceMethod<&XdpSocket::Stats>("stats"),
                           InstanceMethod<&XdpSocket::TakeError>("takeError"),
                           InstanceMethod<&XdpSocket::Wait>("wait"),
                           InstanceMethod<&XdpSocket::Close>("close"),
                       });
  }

  explicit XdpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<XdpSocket>(info) {
    Napi::Env env = info.Env();
    const char* W = "XdpSocket";
    if (info.Length() < 1 || !info[0].IsObject()) ThrowType(env, "XdpSocket(options): options must be an object {umem, ifindex, queue, xskMapFd, rxSize, txSize}");
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value uv = o.Get("umem");
    XdpUmem* u = nullptr;
    if (uv.IsObject()) {
      Napi::Object uo = uv.As<Napi::Object>();
      // Unwrap only a real XdpUmem (its type tag), never another wrapped object.
      bool isUmem = false;
      if (napi_check_object_type_tag(env, uo, &kXdpUmemTag, &isUmem) == napi_ok && isUmem) u = XdpUmem::Unwrap(uo);
    }
    if (u == nullptr) ThrowType(env, "XdpSocket: option umem must be an XdpUmem");
    if (!u->core_ || u->core_->closed) ThrowType(env, "XdpSocket: the XdpUmem is closed");
    umem_ = u->core_;
    umemRef_ = Napi::Persistent(uv.As<Napi::Object>());
    if (!Present(o, "ifindex")) ThrowType(env, "XdpSocket: option ifindex is required");
    ifindex_ = static_cast<int>(OptInt(o, W, "ifindex", 0, 1, INT32_MAX));
    queue_ = static_cast<uint32_t>(OptInt(o, W, "queue", 0, 0, 63));
    uint32_t rxSize = static_cast<uint32_t>(OptInt(o, W, "rxSize", 2048, 64, 1 << 16));
    uint32_t txSize = static_cast<uint32_t>(OptInt(o, W, "txSize", 2048, 64, 1 << 16));
    if ((rxSize & (rxSize - 1)) || (txSize & (txSize - 1))) ThrowRange(env, "XdpSocket: rxSize and txSize must be powers of two");
    int mapFd = static_cast<int>(OptInt(o, W, "xskMapFd", -1, 0, INT32_MAX));
    for (XdpSocket* s : umem_->slots) {
      if (s != nullptr && s->ifindex_ == ifindex_ && s->queue_ == queue_) {
        // The kernel would share that socket's fill ring; this bookkeeping gives each socket its own.
        ThrowRange(env, "XdpSocket: this UMEM already has a socket on ifindex " + std::to_string(ifindex_) + " queue " + std::to_string(queue_));
      }
    }
    fd_ = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd_ < 0) ThrowSys(env, "socket(AF_XDP, SOCK_RAW, 0)", errno);
    try {
      Setup(env, rxSize, txSize, mapFd);
    } catch (...) {
      Teardown();
      throw;
    }
    napi_type_tag_object(env, info.This(), &kXdpSocketTag);
  }

  ~XdpSocket() override { Teardown(); }

  bool Open() const { return fd_ >= 0; }
  bool RxReady() const { return fd_ >= 0 && __atomic_load_n(rx_.producer, __ATOMIC_ACQUIRE) != rxCons_; }

 private:
  void MapRing(Napi::Env env, XskRing& r, const xdp_ring_offset& off, uint32_t size, size_t entry, off_t pgoff, const char* what) {
    r.mapLen = off.desc + static_cast<size_t>(size) * entry;
    void* m = mmap(nullptr, r.mapLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, pgoff);
    if (m == MAP_FAILED) ThrowSys(env, std::string("mmap(AF_XDP ") + what + ", length=" + std::to_string(r.mapLen) + ")", errno);
    r.map = m;
    uint8_t* b = static_cast<uint8_t*>(m);
    r.producer = reinterpret_cast<uint32_t*>(b + off.producer);
    r.consumer = reinterpret_cast<uint32_t*>(b + off.consumer);
    r.descs = b + off.desc;
    r.size = size;
    r.mask = size - 1;
  }

  void Setup(Napi::Env env, uint32_t rxSize, uint32_t txSize, int mapFd) {
    UmemCore& u = *umem_;
    int sharedFd = u.SharedFd();
    if (sharedFd < 0) {
      // First socket on this UMEM (or the first since all closed): it registers the memory.
      xdp_umem_reg reg;
      memset(&reg, 0, sizeof reg);
      reg.addr = reinterpret_cast<uint64_t>(u.base);
      reg.len = u.len;
      reg.chunk_size = u.chunkSize;
      reg.headroom = u.headroom;
      SetSockOpt(env, fd_, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg,
                 "SOL_XDP, XDP_UMEM_REG, len=" + std::to_string(u.len) + ", chunk_size=" + std::to_string(u.chunkSize) + ", headroom=" + std::to_string(u.headroom));
    }
    // Every socket gets its own fill and completion ring: sockets on other devices or queues than
    // the registering one need them (xp_assign_dev_shared), and the bookkeeping stays per socket.
    // Each ring can hold every chunk, so neither ever refuses a chunk we own.
    uint32_t ringSize = 1;
    while (ringSize < u.chunkCount) ringSize <<= 1;
    SetIntOpt(env, fd_, SOL_XDP, XDP_UMEM_FILL_RING, static_cast<int>(ringSize), "SOL_XDP, XDP_UMEM_FILL_RING");
    SetIntOpt(env, fd_, SOL_XDP, XDP_UMEM_COMPLETION_RING, static_cast<int>(ringSize), "SOL_XDP, XDP_UMEM_COMPLETION_RING");
    SetIntOpt(env, fd_, SOL_XDP, XDP_RX_RING, static_cast<int>(rxSize), "SOL_XDP, XDP_RX_RING");
    SetIntOpt(env, fd_, SOL_XDP, XDP_TX_RING, static_cast<int>(txSize), "SOL_XDP, XDP_TX_RING");
    xdp_mmap_offsets off;
    memset(&off, 0, sizeof off);
    socklen_t ol = sizeof off;
    if (getsockopt(fd_, SOL_XDP, XDP_MMAP_OFFSETS, &off, &ol) < 0) ThrowSys(env, "getsockopt(SOL_XDP, XDP_MMAP_OFFSETS)", errno);
    MapRing(env, rx_, off.rx, rxSize, sizeof(xdp_desc), XDP_PGOFF_RX_RING, "RX ring");
    MapRing(env, tx_, off.tx, txSize, sizeof(xdp_desc), XDP_PGOFF_TX_RING, "TX ring");
    MapRing(env, fill_, off.fr, ringSize, sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING, "fill ring");
    MapRing(env, comp_, off.cr, ringSize, sizeof(uint64_t), XDP_UMEM_PGOFF_COMPLETION_RING, "completion ring");

    sockaddr_xdp sa;
    memset(&sa, 0, sizeof sa);
    sa.sxdp_family = AF_XDP;
    sa.sxdp_ifindex = static_cast<uint32_t>(ifindex_);
    sa.sxdp_queue_id = queue_;
    if (sharedFd >= 0) {
      // A shared bind takes the copy/zero-copy mode of the socket it shares with: XDP_COPY here is EINVAL.
      sa.sxdp_flags = XDP_SHARED_UMEM;
      sa.sxdp_shared_umem_fd = static_cast<uint32_t>(sharedFd);
    } else {
      // Copy mode, no XDP_USE_NEED_WAKEUP: in copy mode transmit needs a sendto() kick regardless.
      sa.sxdp_flags = XDP_COPY;
    }
    // Closing an XSK is asynchronous: the queue stays busy for about a second after the previous
    // owner closed (native/README.md). EBUSY is retried for up to 3 s.
    for (int tries = 0;; tries++) {
      if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) break;
      int err = errno;
      if (err == EBUSY && tries < 30) {
        usleep(100000);
        continue;
      }
      ThrowSys(env, "bind(AF_XDP, ifindex=" + std::to_string(ifindex_) + ", queue=" + std::to_string(queue_) +
                        (sharedFd >= 0 ? ", XDP_SHARED_UMEM fd=" + std::to_string(sharedFd) : std::string(", XDP_COPY")) + ")", err);
    }
    if (mapFd >= 0) {
      // A dup of the map fd: the socket removes its key at close even after the program object
      // closed its own fds (whose numbers may have been reused by then).
      mapFd_ = fcntl(mapFd, F_DUPFD_CLOEXEC, 0);
      if (mapFd_ < 0) ThrowSys(env, "fcntl(F_DUPFD_CLOEXEC, xskMapFd=" + std::to_string(mapFd) + ")", errno);
      uint32_t key = queue_;
      uint32_t value = static_cast<uint32_t>(fd_);
      bpf_attr a;
      memset(&a, 0, sizeof a);
      a.map_fd = static_cast<uint32_t>(mapFd_);
      a.key = reinterpret_cast<uint64_t>(&key);
      a.value = reinterpret_cast<uint64_t>(&value);
      a.flags = BPF_ANY;
      if (Bpf(BPF_MAP_UPDATE_ELEM, &a) < 0) ThrowSys(env, "bpf(BPF_MAP_UPDATE_ELEM, XSKMAP fd=" + std::to_string(mapFd) + ", key=" + std::to_string(queue_) + ")", errno);
      mapSet_ = true;
    }
    // A slot in the UMEM: chunk owners name it.
    slot_ = 0;
    while (slot_ < u.slots.size() && u.slots[slot_] != nullptr) slot_++;
    if (slot_ == u.slots.size()) u.slots.push_back(nullptr);
    u.slots[slot_] = this;
    u.open++;
    registered_ = true;
    TopUpFill();
  }

  // Back to the state before the constructor: key out of the XSKMAP, rings unmapped, fd closed, and
  // every chunk this socket had (fill ring, transmit in flight, held by JS) back on the free stack.
  void Teardown() {
    if (mapSet_) {
      uint32_t key = queue_;
      bpf_attr a;
      memset(&a, 0, sizeof a);
      a.map_fd = static_cast<uint32_t>(mapFd_);
      a.key = reinterpret_cast<uint64_t>(&key);
      Bpf(BPF_MAP_DELETE_ELEM, &a);
      mapSet_ = false;
    }
    if (mapFd_ >= 0) close(mapFd_);
    mapFd_ = -1;
    rx_.Unmap();
    tx_.Unmap();
    fill_.Unmap();
    comp_.Unmap();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    if (registered_ && umem_) {
      UmemCore& u = *umem_;
      for (uint32_t c = 0; c < u.chunkCount; c++) {
        if (u.state[c] != kFree && u.owner[c] == slot_) u.Free(c);
      }
      u.slots[slot_] = nullptr;
      u.open--;
      registered_ = false;
    }
    held_.clear();
  }

  void CheckOpen(Napi::Env env, const char* what) {
    if (fd_ < 0) throw Napi::Error::New(env, std::string("XdpSocket.") + what + ": socket is closed");
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value GetIfindex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }
  Napi::Value GetQueue(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), queue_); }
  Napi::Value GetTxShed(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(txShed_)); }

  // This socket's share of the free chunks in its fill ring: chunkCount / (2 × sockets), so that
  // half the UMEM stays free for copies and for the chunks JS holds.
  void TopUpFill() {
    UmemCore& u = *umem_;
    uint32_t quota = u.chunkCount / (2 * (u.open > 0 ? u.open : 1));
    if (inFill_ >= quota || u.freeStack.empty()) return;
    uint32_t prod = *fill_.producer;
    uint32_t room = fill_.size - (prod - __atomic_load_n(fill_.consumer, __ATOMIC_ACQUIRE));
    uint32_t n = quota - inFill_;
    if (n > room) n = room;
    if (n > u.freeStack.size()) n = static_cast<uint32_t>(u.freeStack.size());
    uint64_t* ring = reinterpret_cast<uint64_t*>(fill_.descs);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t c = u.freeStack.back();
      u.freeStack.pop_back();
      u.state[c] = kFill;
      u.owner[c] = static_cast<uint16_t>(slot_);
      ring[(prod + i) & fill_.mask] = static_cast<uint64_t>(c) * u.chunkSize;
    }
    __atomic_store_n(fill_.producer, prod + n, __ATOMIC_RELEASE);
    inFill_ += n;
  }

  // Completions: chunks whose transmit is done (the kernel copied them into an skb, which in copy
  // mode is freed before the completion is posted) go back to the free stack.
  void ReapCompletions() {
    UmemCore& u = *umem_;
    uint32_t cons = *comp_.consumer;
    uint32_t prod = __atomic_load_n(comp_.producer, __ATOMIC_ACQUIRE);
    if (cons == prod) return;
    const uint64_t* ring = reinterpret_cast<const uint64_t*>(comp_.descs);
    for (uint32_t i = cons; i != prod; i++) {
      uint64_t c = ring[i & comp_.mask] / u.chunkSize;
      if (c < u.chunkCount && u.state[c] == kTx && u.owner[c] == slot_) u.Free(static_cast<uint32_t>(c));
    }
    __atomic_store_n(comp_.consumer, prod, __ATOMIC_RELEASE);
  }

  bool TxPending() const { return __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE) != *tx_.producer; }

  // Frames the kernel handed over with CHECKSUM_PARTIAL. Generic XDP runs after the veth (or tap)
  // transmit of a local sender that left the TCP/UDP checksum to "hardware": the field holds the
  // folded pseudo-header sum, not the checksum, and nothing in the XDP frame says so (the skb's
  // ip_summed is lost on the way into the UMEM). Forwarded as it is, the real server drops the
  // segment. A frame whose field does not verify but equals the pseudo-header sum is that case:
  // complete it here. A frame that is simply wrong is left alone (the receiver drops it, as it
  // would have without us). Returns TP_STATUS_CSUM_VALID when the checksum is (now) good.
  uint32_t FixChecksum(uint8_t* p, uint32_t len) {
    if (len < 34 || p[12] != 0x08 || p[13] != 0x00) return 0;
    const uint8_t* ip = p + 14;
    uint32_t ihl = (ip[0] & 0x0f) * 4u;
    if ((ip[0] >> 4) != 4 || ihl < 20) return 0;
    uint32_t tot = (static_cast<uint32_t>(ip[2]) << 8) | ip[3];
    if (tot < ihl || 14 + tot > len) return 0;
    if (((ip[6] & 0x3f) | ip[7]) != 0) return 0;  // a fragment: no whole L4 datagram here
    uint8_t proto = ip[9];
    uint32_t l4len = tot - ihl;
    uint32_t at;
    if (proto == IPPROTO_TCP && l4len >= 20) at = 16;
    else if (proto == IPPROTO_UDP && l4len >= 8) at = 6;
    else return 0;
    uint8_t* l4 = p + 14 + ihl;
    if (proto == IPPROTO_UDP) {
      // UDP's checksum covers its own length field's bytes, which may be fewer than the IP payload.
      uint32_t ulen = (static_cast<uint32_t>(l4[4]) << 8) | l4[5];
      if (ulen < 8 || ulen > l4len) return 0;
      l4len = ulen;
    }
    uint16_t field;
    memcpy(&field, l4 + at, 2);
    if (proto == IPPROTO_UDP && field == 0) return 0;  // UDP without a checksum
    uint64_t pseudo = SumBytes(ip + 12, 8, 0);
    uint16_t tail[2] = {htons(proto), htons(static_cast<uint16_t>(l4len))};
    pseudo = SumBytes(reinterpret_cast<const uint8_t*>(tail), 4, pseudo);
    if (Fold(SumBytes(l4, l4len, pseudo)) == 0xffff) return TP_STATUS_CSUM_VALID;
    uint16_t ps = Fold(pseudo);
    // Ones-complement has two zeros: 0x0000 and 0xffff stand for the same sum.
    bool partial = field == ps || (ps == 0xffff && field == 0) || (ps == 0 && field == 0xffff);
    if (!partial) {
      csumBad_++;
      return 0;
    }
    memset(l4 + at, 0, 2);
    uint16_t sum = static_cast<uint16_t>(~Fold(SumBytes(l4, l4len, pseudo)));
    if (proto == IPPROTO_UDP && sum == 0) sum = 0xffff;  // 0 means "no checksum" for UDP
    memcpy(l4 + at, &sum, 2);
    csumCompleted_++;
    return TP_STATUS_CSUM_VALID;
  }

  // rx(desc, maxFrames): the received frames, PacketSocket.rx's descriptor format; offsets are into
  // umem.buffer. Reaps this socket's completions and refills its fill ring first and after.
  Napi::Value Rx(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "rx");
    size_t cells;
    uint32_t* desc = Cells32(env, info.Length() > 0 ? info[0] : env.Undefined(), &cells, "XdpSocket.rx: desc");
    uint32_t max = static_cast<uint32_t>(cells / kFrameStride);
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      uint32_t want = static_cast<uint32_t>(IntArg(info, 1, "XdpSocket.rx: maxFrames", 0, UINT32_MAX));
      if (want > max) ThrowRange(env, "XdpSocket.rx: maxFrames " + std::to_string(want) + " needs " + std::to_string(static_cast<uint64_t>(want) * kFrameStride) + " cells, desc has " + std::to_string(cells));
      max = want;
    }
    UmemCore& u = *umem_;
    ReapCompletions();
    if (TxPending()) Kick(1);  // frames an earlier send() left queued
    uint32_t prod = __atomic_load_n(rx_.producer, __ATOMIC_ACQUIRE);
    uint32_t avail = prod - rxCons_;
    uint32_t n = avail < max ? avail : max;
    const xdp_desc* ring = reinterpret_cast<const xdp_desc*>(rx_.descs);
    for (uint32_t i = 0; i < n; i++) {
      const xdp_desc& x = ring[(rxCons_ + i) & rx_.mask];
      uint64_t addr = x.addr;
      uint32_t len = x.len;
      uint32_t c = static_cast<uint32_t>(addr / u.chunkSize);
      if (c < u.chunkCount && u.state[c] == kFill) inFill_--;
      u.state[c] = kHeld;
      u.owner[c] = static_cast<uint16_t>(slot_);
      held_.push_back(c);
      uint8_t* frame = u.base + addr;
      // The worker reads a virtio_net_hdr in front of AF_PACKET frames: all zero says "no
      // offloads", the truth for a frame that came through XDP (the headroom has the room).
      memset(frame - 10, 0, 10);
      uint32_t* d = desc + static_cast<size_t>(i) * kFrameStride;
      d[kFrameOffset] = static_cast<uint32_t>(addr);
      d[kFrameCaplen] = len;
      d[kFrameWirelen] = len;
      d[kFrameStatus] = TP_STATUS_USER | FixChecksum(frame, len);
      d[kFrameVlanTci] = 0;
      d[kFrameVlanTpid] = 0;
      d[kFramePkttype] = PACKET_HOST;
      d[kFrameIfindex] = static_cast<uint32_t>(ifindex_);
    }
    rxCons_ += n;
    __atomic_store_n(rx_.consumer, rxCons_, __ATOMIC_RELEASE);
    TopUpFill();
    return Napi::Number::New(env, n);
  }

  // release(): every chunk rx() returned since the last release that send() did not take goes back
  // to the free stack (and from there into fill rings).
  Napi::Value Release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "release");
    UmemCore& u = *umem_;
    uint32_t n = 0;
    for (uint32_t c : held_) {
      if (u.state[c] == kHeld && u.owner[c] == slot_) {
        u.Free(c);
        n++;
      }
    }
    held_.clear();
    TopUpFill();
    return Napi::Number::New(env, n);
  }

  // sendto() kicks: in copy mode each one makes the kernel send at most a budget (32 by default) of
  // the TX ring (__xsk_generic_xmit), so kick while descriptors are left, at most `limit` times.
  // The kernel answers EAGAIN both when that budget ran out with frames left (progress: the ring's
  // consumer moved, kick again) and when the device was busy (no progress: stop); ENOBUFS and EBUSY
  // stop the kicks too. Frames left stay queued for the next kick. (Stopping at the first EAGAIN
  // sent 32 frames per send(): under load the TX ring filled and the rest were shed, 20% of a
  // 300 kpps flood.)
  void Kick(uint32_t limit) {
    for (uint32_t k = 0; k < limit && TxPending(); k++) {
      uint32_t before = __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE);
      if (sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) continue;
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN && __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE) != before) continue;
      lastTxErrno_ = err;
      break;
    }
  }

  // send(buffer, offsets, lengths, count): PacketSocket.send's contract. A frame that lies in one
  // chunk this UMEM's sockets handed to JS (HELD) goes out from there, without a copy; any other
  // frame is copied into a free chunk. Returns how many frames were queued.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "send");
    if (info.Length() < 4) ThrowType(env, "XdpSocket.send(buffer, offsets, lengths, count): 4 arguments expected");
    Bytes buf = BytesOf(env, info[0], "XdpSocket.send: buffer");
    size_t nOff, nLen;
    const uint32_t* off = Cells32(env, info[1], &nOff, "XdpSocket.send: offsets");
    const uint32_t* len = Cells32(env, info[2], &nLen, "XdpSocket.send: lengths");
    uint32_t count = static_cast<uint32_t>(IntArg(info, 3, "XdpSocket.send: count", 0, UINT32_MAX));
    if (count > nOff || count > nLen) {
      ThrowRange(env, "XdpSocket.send: count " + std::to_string(count) + " exceeds offsets (" + std::to_string(nOff) + ") or lengths (" + std::to_string(nLen) + ")");
    }
    for (uint32_t i = 0; i < count; i++) {
      if (len[i] == 0 || static_cast<uint64_t>(off[i]) + len[i] > buf.len) {
        ThrowRange(env, "XdpSocket.send: frame " + std::to_string(i) + " (offset " + std::to_string(off[i]) + ", length " + std::to_string(len[i]) + ") is outside the buffer of " + std::to_string(buf.len) + " bytes");
      }
    }
    UmemCore& u = *umem_;
    ReapCompletions();
    const bool inUmem = buf.data >= u.base && buf.data + buf.len <= u.base + u.len;
    const uint64_t bufAt = inUmem ? static_cast<uint64_t>(buf.data - u.base) : 0;
    const uint32_t room = u.chunkSize - u.headroom;
    uint32_t prod = *tx_.producer;
    const uint32_t cons = __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE);
    xdp_desc* ring = reinterpret_cast<xdp_desc*>(tx_.descs);
    uint32_t queued = 0;
    for (uint32_t i = 0; i < count; i++) {
      if (prod - cons == tx_.size) {
        txShed_ += count - i;  // TX ring full
        break;
      }
      uint64_t addr;
      if (inUmem) {
        addr = bufAt + off[i];
        uint32_t c = static_cast<uint32_t>(addr / u.chunkSize);
        if ((addr + len[i] - 1) / u.chunkSize == c && u.state[c] == kHeld) {
          u.state[c] = kTx;
          u.owner[c] = static_cast<uint16_t>(slot_);
          xdp_desc& d = ring[prod & tx_.mask];
          d.addr = addr;
          d.len = len[i];
          d.options = 0;
          prod++;
          queued++;
          continue;
        }
      }
      if (len[i] > room) {
        txDropped_++;
        continue;
      }
      if (u.freeStack.empty()) {
        txShed_ += count - i;  // no chunk to copy into
        break;
      }
      uint32_t c = u.freeStack.back();
      u.freeStack.pop_back();
      u.state[c] = kTx;
      u.owner[c] = static_cast<uint16_t>(slot_);
      addr = static_cast<uint64_t>(c) * u.chunkSize + u.headroom;
      memmove(u.base + addr, buf.data + off[i], len[i]);
      txCopied_++;
      xdp_desc& d = ring[prod & tx_.mask];
      d.addr = addr;
      d.len = len[i];
      d.options = 0;
      prod++;
      queued++;
    }
    __atomic_store_n(tx_.producer, prod, __ATOMIC_RELEASE);
    Kick(count / 16 + 8);
    return Napi::Number::New(env, queued);
  }

  // stats(): the kernel's XDP_STATISTICS (totals since bind) and this socket's own counters.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "stats");
    xdp_statistics st;
    memset(&st, 0, sizeof st);
    socklen_t sl = sizeof st;
    if (getsockopt(fd_, SOL_XDP, XDP_STATISTICS, &st, &sl) < 0) ThrowSys(env, "getsockopt(SOL_XDP, XDP_STATISTICS)", errno);
    Napi::Object o = Napi::Object::New(env);
    o.Set("rxDropped", Napi::Number::New(env, static_cast<double>(st.rx_dropped)));
    o.Set("rxInvalid", Napi::Number::New(env, static_cast<double>(st.rx_invalid_descs)));
    o.Set("rxRingFull", Napi::Number::New(env, static_cast<double>(st.rx_ring_full)));
    o.Set("fillRingEmpty", Napi::Number::New(env, static_cast<double>(st.rx_fill_ring_empty_descs)));
    o.Set("txInvalid", Napi::Number::New(env, static_cast<double>(st.tx_invalid_descs)));
    o.Set("txRingEmpty", Napi::Number::New(env, static_cast<double>(st.tx_ring_empty_descs)));
    o.Set("txDropped", Napi::Number::New(env, static_cast<double>(txDropped_)));
    o.Set("txShed", Napi::Number::New(env, static_cast<double>(txShed_)));
    o.Set("txCopied", Napi::Number::New(env, static_cast<double>(txCopied_)));
    o.Set("csumCompleted", Napi::Number::New(env, static_cast<double>(csumCompleted_)));
    o.Set("csumBad", Napi::Number::New(env, static_cast<double>(csumBad_)));
    o.Set("lastTxError", lastTxErrno_ ? Napi::Value(Napi::String::New(env, ErrnoName(lastTxErrno_))) : env.Null());
    return o;
  }

  Napi::Value TakeError(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "takeError");
    return TakeSocketError(env, fd_);
  }

  // wait(timeoutMs): true when rx() has something (at once if the RX ring has a descriptor).
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "wait");
    int timeoutMs = static_cast<int>(IntArg(info, 0, "XdpSocket.wait: timeoutMs", 0, INT32_MAX));
    if (RxReady()) return Napi::Boolean::New(env, true);
    PollOne(env, fd_, POLLIN, timeoutMs, "AF_XDP");
    return Napi::Boolean::New(env, RxReady());
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Teardown();
    if (!umemRef_.IsEmpty()) umemRef_.Reset();
    return info.Env().Undefined();
  }

  friend struct UmemCore;
  std::shared_ptr<UmemCore> umem_;
  Napi::ObjectReference umemRef_;  // keeps the XdpUmem (and its ArrayBuffer) alive while open
  int fd_ = -1;
  int ifindex_ = 0;
  uint32_t queue_ = 0;
  int mapFd_ = -1;
  bool mapSet_ = false;
  bool registered_ = false;
  size_t slot_ = 0;
  XskRing rx_, tx_, fill_, comp_;
  uint32_t rxCons_ = 0;
  uint32_t inFill_ = 0;
  std::vector<uint32_t> held_;
  uint64_t txDropped_ = 0;
  uint64_t txShed_ = 0;
  uint64_t txCopied_ = 0;  // frames send() copied into a chunk (not a HELD chunk sent in place)
  uint64_t csumCompleted_ = 0;
  uint64_t csumBad_ = 0;
  int lastTxErrno_ = 0;
};

int UmemCore::SharedFd() const {
  for (XdpSocket* s : slots) {
    if (s != nullptr && s->fd_ >= 0) return s->fd_;
  }
  return -1;
}

}  // namespace uvs_xdp

namespace uvs_xdp {

Napi::Function DefineUmem(Napi::Env env) { return XdpUmem::Define(env); }

Napi::Function DefineSocket(Napi::Env env) { return XdpSocket::Define(env); }

XdpSocket* AsSocket(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(env, v, &kXdpSocketTag, &tagged) != napi_ok || !tagged) return nullptr;
  return XdpSocket::Unwrap(v.As<Napi::Object>());
}

bool IsOpen(const XdpSocket* s) { return s->Open(); }
bool RxReady(const XdpSocket* s) { return s->RxReady(); }

}  // namespace uvs_xdp
