// The in-kernel fast path for established DR, NAT and TUN flows: its maps, what user space does
// with them, and the tc program that carries out NAT and TUN. The XDP program's part is xdp.cc's
// FastPathBlock; the policy (which flows, when they come back) is src/dataplane/fast-path.ts.
//
//   fast  BPF_MAP_TYPE_HASH, key 16 bytes (saddr, daddr, sport, dport as in the packet, then the
//         protocol and three zero bytes: ringflows' key), value 64 bytes: destSlot u32, flags u32
//         (1 = demoted by the program), lastSeen u64 (CLOCK_MONOTONIC ns, bpf_ktime_get_ns),
//         packets u64 (forwarded by the program), base u32 (the entry's in_pkts when offloaded:
//         base + packets is the flow's in_pkts, which connection sync counts by), kind u16
//         (0 DR; 1 NAT, the client's direction; 2 NAT, the real server's reply; 3 TUN), the NAT
//         port and address (network order; 16 bytes of room so IPv6 fits: kind 1 rewrites the
//         destination to them, kind 2 the source; kind 3: the real server, the outer destination),
//         and 16 more bytes: for kind 2 the next hop toward the client (both MACs, ifindex) that
//         the connection's first packet came by, for kind 3 the outer source (the director's
//         address toward the real server). A NAT connection has two keys.
//         Not preallocated (BPF_F_NO_PREALLOC): the kernel allocates an element per key
//         (about 130 bytes with its overhead) and frees it on delete. A full map refuses new
//         flows (E2BIG), which then stay in user space.
//   hops  BPF_MAP_TYPE_ARRAY with BPF_F_MMAPABLE, one 48-byte record per DestTable slot: the
//         MACs, the egress ifindex (0: not forwarded here), the packets and bytes the program
//         forwarded to the real server, and those of its NAT replies. Mapped into the process:
//         the control plane writes the records and reads the counters as memory, no syscall.
//
// NAT in the kernel is two programs. XDP (FastPathBlock) runs before the AF_PACKET taps: it finds
// the flow, counts and stamps it, and marks the frame (destination MAC kNatMark), which makes it
// PACKET_OTHERHOST, so the rings do not take it. The tc ingress program below runs after the taps
// and does the rewrite, because only the skb says whether the L4 checksum is whole or partial
// (CHECKSUM_PARTIAL: a local sender's frame on veth holds the pseudo-header sum only), and
// bpf_l4_csum_replace updates either correctly; an XDP program would have to guess. It also keeps
// GSO frames' metadata. Per marked frame:
//   lookup the key (gone since XDP marked it: drop, the connection was just taken back);
//   kind 1: destination address and port := the real server's, MACs and ifindex from its record;
//   kind 2: source address and port := the virtual service's, MACs and ifindex from the value;
//   L4 checksum (pseudo-header and port), IP checksum, TTL - 1; bpf_redirect to the egress.
//   kind 3 (TUN): TTL - 1, then bpf_skb_adjust_room(+20, MAC, ENCAP_L3_IPV4) and an outer IPv4
//   header (the inner one's TOS, DF, TTL and ID; protocol 4; the value's addresses; its checksum
//   by bpf_csum_diff), MACs and ifindex from the real server's record; bpf_redirect. The inner
//   packet is otherwise untouched: a partial checksum stays partial (its csum_start moves with
//   it), for the receiver's kernel to trust, or uvs-tun-decap to complete. The XDP program
//   marked only frames that fit the egress with the outer header, and TCP GSO frames: for those
//   the helper also shrinks gso_size by 20 and adds SKB_GSO_IPXIP4, so their segments fit as
//   they did, and a device that cannot carry IPIP GSO gets them segmented by the kernel.
// A frame without the mark is left alone (TCX_NEXT) after two loads.
//
// The calls below run once per flow (put, delete) or once per expiry of an offloaded flow (idle),
// never per packet. Addresses and ports are host order, as the pipeline holds them.

#include "fast-path.h"

#include "common.h"
#include "ebpf.h"

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace uvs_fast {

namespace {

constexpr uint32_t kKeySize = 16;
constexpr uint32_t kValueSize = 64;
constexpr uint32_t kHopSize = 48;

enum Kind : uint16_t { kDr = 0, kNatIn = 1, kNatReply = 2, kTun = kFastTun };

struct Value {
  uint32_t destSlot;
  uint32_t flags;
  uint64_t lastSeen;
  uint64_t packets;
  uint32_t base;
  uint16_t kind;
  uint16_t natPort;     // network order
  uint8_t natAddr[16];  // kind 1, 2: the NAT address; kind 3: the real server (outer destination).
                        // IPv4 in the first 4 bytes, network order
  union {
    struct {
      uint8_t macs[12];  // destination, source
      uint32_t ifindex;  // egress toward the client
    } reply;             // kind 2
    uint8_t outerSrc[16];  // kind 3: the outer source address (IPv4 in the first 4 bytes)
  } u;
};
static_assert(sizeof(Value) == kValueSize, "the program's value layout");

struct MapFds {
  int fast = -1, hops = -1, svc = -1, ctl = -1, events = -1;
  void Close() {
    for (int* fd : {&fast, &hops, &svc, &ctl, &events}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }
  ~MapFds() { Close(); }
};

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The argument names of one call, for IntArg's errors: literals, so that a call (one per flow, or
// per offloaded entry in a sync scan) builds no strings unless an argument is wrong.
struct KeyNames {
  const char* fd;
  const char* protocol;
  const char* saddr;
  const char* sport;
  const char* daddr;
  const char* dport;
};
constexpr KeyNames kPutNames{"fastPut: fd", "fastPut: protocol", "fastPut: saddr", "fastPut: sport", "fastPut: daddr", "fastPut: dport"};
constexpr KeyNames kIdleNames{"fastIdle: fd", "fastIdle: protocol", "fastIdle: saddr", "fastIdle: sport", "fastIdle: daddr", "fastIdle: dport"};
constexpr KeyNames kPutNatNames{"fastPutNat: fd", "fastPutNat: protocol", "fastPutNat: caddr", "fastPutNat: cport", "fastPutNat: vaddr", "fastPutNat: vport"};
constexpr KeyNames kPutTunNames{"fastPutTun: fd", "fastPutTun: protocol", "fastPutTun: saddr", "fastPutTun: sport", "fastPutTun: daddr", "fastPutTun: dport"};
constexpr KeyNames kDeleteNames{"fastDelete: fd", "fastDelete: protocol", "fastDelete: saddr", "fastDelete: sport", "fastDelete: daddr", "fastDelete: dport"};

// The key of (protocol, saddr, sport, daddr, dport) from arguments 1..5; fd from argument 0.
int KeyArgs(const Napi::CallbackInfo& info, const KeyNames& n, uint8_t key[kKeySize]) {
  int fd = static_cast<int>(IntArg(info, 0, n.fd, 0, INT32_MAX));
  uint32_t proto = static_cast<uint32_t>(IntArg(info, 1, n.protocol, 0, 255));
  uint32_t saddr = htonl(static_cast<uint32_t>(IntArg(info, 2, n.saddr, INT32_MIN, 0xffffffffLL)));
  uint16_t sport = htons(static_cast<uint16_t>(IntArg(info, 3, n.sport, 0, 65535)));
  uint32_t daddr = htonl(static_cast<uint32_t>(IntArg(info, 4, n.daddr, INT32_MIN, 0xffffffffLL)));
  uint16_t dport = htons(static_cast<uint16_t>(IntArg(info, 5, n.dport, 0, 65535)));
  memset(key, 0, kKeySize);
  memcpy(key, &saddr, 4);
  memcpy(key + 4, &daddr, 4);
  memcpy(key + 8, &sport, 2);
  memcpy(key + 10, &dport, 2);
  key[12] = static_cast<uint8_t>(proto);
  return fd;
}

int Update(int fd, const uint8_t key[kKeySize], const Value& v, uint64_t flags) {
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<uint32_t>(fd);
  a.key = reinterpret_cast<uint64_t>(key);
  a.value = reinterpret_cast<uint64_t>(&v);
  a.flags = flags;
  return Bpf(BPF_MAP_UPDATE_ELEM, &a) < 0 ? errno : 0;
}

void Remove(int fd, const uint8_t key[kKeySize]) {
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<uint32_t>(fd);
  a.key = reinterpret_cast<uint64_t>(key);
  Bpf(BPF_MAP_DELETE_ELEM, &a);
}

void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// The NAT program (see the header). Its verdicts are tcx's: next (not marked), drop, redirect.

std::vector<bpf_insn> BuildNatProgram(int fast, int hops) {
  Asm a;
  const uint8_t R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, R10 = 10;
  // Stack: the key at fp-16 (saddr -16, daddr -12, sport -8, dport -6, protocol -4), the new MACs
  // at fp-32 (12 bytes), the slot at -36, the NAT address at -40 and port at -44, the TTL word
  // (TTL, protocol as in the packet) at -48 and its new value at -52, TUN's outer header at -72.
  const int16_t kKey = -16, kMacs = -32, kSlot = -36, kAddr = -40, kPort = -44, kTtl = -48, kNewTtl = -52, kOuter = -72;
  const int next = a.NewLabel(), drop = a.NewLabel(), pulled = a.NewLabel(), reply = a.NewLabel(), tail = a.NewLabel();
  const int tun = a.NewLabel();
  a.Mov(R6, R1);
  a.Ld(BPF_W, R7, R6, offsetof(__sk_buff, data));
  a.Ld(BPF_W, R8, R6, offsetof(__sk_buff, data_end));
  a.Mov(R2, R7);
  a.AddK(R2, 6);
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_X, R2, R8, 0, next);
  uint32_t mark32;
  uint16_t mark16;
  memcpy(&mark32, kNatMark, 4);
  memcpy(&mark16, kNatMark + 4, 2);
  a.Ld(BPF_W, R2, R7, 0);
  a.JumpTo(BPF_JMP32 | BPF_JNE | BPF_K, R2, 0, static_cast<int32_t>(mark32), next);
  a.Ld(BPF_H, R2, R7, 4);
  a.JumpTo(BPF_JMP32 | BPF_JNE | BPF_K, R2, 0, mark16, next);
  // Marked: Ethernet, a 20-byte IPv4 header and the ports, in the linear part (pulled if not).
  a.Mov(R2, R7);
  a.AddK(R2, ETH_HLEN + 20 + 4);
  a.JumpTo(BPF_JMP | BPF_JLE | BPF_X, R2, R8, 0, pulled);
  a.Mov(R1, R6);
  a.MovK(R2, ETH_HLEN + 20 + 4);
  a.Call(BPF_FUNC_skb_pull_data);
  a.Ld(BPF_W, R7, R6, offsetof(__sk_buff, data));
  a.Ld(BPF_W, R8, R6, offsetof(__sk_buff, data_end));
  a.Mov(R2, R7);
  a.AddK(R2, ETH_HLEN + 20 + 4);
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_X, R2, R8, 0, drop);
  a.Bind(pulled);
  a.Ld(BPF_W, R2, R7, 26);
  a.St(BPF_W, R10, kKey, R2);
  a.Ld(BPF_W, R2, R7, 30);
  a.St(BPF_W, R10, kKey + 4, R2);
  a.Ld(BPF_W, R2, R7, 34);
  a.St(BPF_W, R10, kKey + 8, R2);
  a.Ld(BPF_B, R2, R7, 23);
  a.St(BPF_W, R10, kKey + 12, R2);
  a.Ld(BPF_H, R2, R7, 22);
  a.St(BPF_W, R10, kTtl, R2);
  a.LdMapFd(R1, fast);
  a.Mov(R2, R10);
  a.AddK(R2, kKey);
  a.Call(BPF_FUNC_map_lookup_elem);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, drop);      // taken back since XDP marked it
  a.Mov(R9, R0);
  a.Ld(BPF_W, R2, R9, 32);
  a.St(BPF_W, R10, kAddr, R2);
  a.Ld(BPF_H, R2, R9, 30);
  a.St(BPF_W, R10, kPort, R2);
  a.Ld(BPF_H, R2, R9, 28);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R2, 0, kNatReply, reply);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R2, 0, kTun, tun);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R2, 0, kNatIn, drop);
  // The real server's record (kinds 1 and 3): r8 = its egress ifindex, its MACs on the stack.
  auto record = [&]() {
    a.Ld(BPF_W, R2, R9, 0);
    a.LookupU32(hops, R2, kSlot);
    a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, drop);
    a.Ld(BPF_W, R8, R0, 12);
    a.Ld(BPF_DW, R2, R0, 0);
    a.St(BPF_DW, R10, kMacs, R2);
    a.Ld(BPF_W, R2, R0, 8);
    a.St(BPF_W, R10, kMacs + 8, R2);
    a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R8, 0, 0, drop);     // the record says "not here" now
  };
  //   Kind 1: to the real server's record.
  record();
  a.MovK(R9, 1);                                             // r9 = kind from here on
  a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, tail);
  //   Kind 2: the connection's own hop toward the client.
  a.Bind(reply);
  a.Ld(BPF_W, R8, R9, 60);
  a.Ld(BPF_DW, R2, R9, 48);
  a.St(BPF_DW, R10, kMacs, R2);
  a.Ld(BPF_W, R2, R9, 56);
  a.St(BPF_W, R10, kMacs + 8, R2);
  a.MovK(R9, 2);
  a.Bind(tail);
  a.JumpTo(BPF_JMP | BPF_JEQ | BPF_K, R8, 0, 0, drop);       // the record says "not here" now
  // bpf_skb_store_bytes(skb, off, fp + from, len, 0); a failure drops.
  auto store = [&](int32_t off, int16_t from, int32_t len) {
    a.Mov(R1, R6);
    a.MovK(R2, off);
    a.Mov(R3, R10);
    a.AddK(R3, from);
    a.MovK(R4, len);
    a.MovK(R5, 0);
    a.Call(BPF_FUNC_skb_store_bytes);
    a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, drop);
  };
  // TTL - 1 with the IP checksum updated (the TTL word at kTtl as loaded before any rewrite).
  auto decrementTtl = [&]() {
    a.Ld(BPF_W, R3, R10, kTtl);
    a.Mov(R4, R3);
    a.AddK(R4, -1);
    a.St(BPF_W, R10, kNewTtl, R4);
    a.Mov(R1, R6);
    a.MovK(R2, ETH_HLEN + 10);
    a.MovK(R5, 2);
    a.Call(BPF_FUNC_l3_csum_replace);
    a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, drop);
    store(ETH_HLEN + 8, kNewTtl, 1);
  };
  // Both MACs, then bpf_redirect to the egress (r8).
  auto out = [&]() {
    store(0, kMacs, 12);
    a.Mov(R1, R8);
    a.MovK(R2, 0);
    a.Call(BPF_FUNC_redirect);
    a.Exit();
  };
  // The rewrite: one sequence per (kind, protocol), offsets as constants.
  for (int kind = 1; kind <= 2; kind++) {
    for (int proto : {IPPROTO_TCP, IPPROTO_UDP}) {
      const int skip = a.NewLabel();
      a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R9, 0, kind, skip);
      a.Ld(BPF_B, R2, R10, kKey + 12);
      a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R2, 0, proto, skip);
      const int32_t csum = ETH_HLEN + 20 + (proto == IPPROTO_TCP ? 16 : 6);
      // A UDP checksum of 0 means none: it stays 0, and a result of 0 is written as 0xffff.
      const int32_t mangled0 = proto == IPPROTO_UDP ? static_cast<int32_t>(BPF_F_MARK_MANGLED_0) : 0;
      const int32_t addrAt = kind == 1 ? ETH_HLEN + 16 : ETH_HLEN + 12;
      const int16_t oldAddr = kind == 1 ? kKey + 4 : kKey;
      const int32_t portAt = kind == 1 ? ETH_HLEN + 20 + 2 : ETH_HLEN + 20;
      const int16_t oldPort = kind == 1 ? kKey + 10 : kKey + 8;
      auto call = [&](int32_t helper, int32_t off, uint8_t fromSize, int16_t from, int16_t to, int32_t flags) {
        a.Mov(R1, R6);
        a.MovK(R2, off);
        a.Ld(fromSize, R3, R10, from);
        a.Ld(BPF_W, R4, R10, to);
        a.MovK(R5, flags);
        a.Call(helper);
        a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, drop);
      };
      call(BPF_FUNC_l4_csum_replace, csum, BPF_W, oldAddr, kAddr, static_cast<int32_t>(BPF_F_PSEUDO_HDR) | mangled0 | 4);
      call(BPF_FUNC_l4_csum_replace, csum, BPF_H, oldPort, kPort, mangled0 | 2);
      call(BPF_FUNC_l3_csum_replace, ETH_HLEN + 10, BPF_W, oldAddr, kAddr, 4);
      store(addrAt, kAddr, 4);
      store(portAt, kPort, 2);
      a.Bind(skip);
    }
  }
  // TTL - 1 (the XDP program passed only TTL > 1), both MACs, out.
  decrementTtl();
  out();
  // Kind 3, TUN: TTL - 1, then an outer IPv4 header in front of the packet (ip_vs_tunnel_xmit's:
  // TOS, DF and TTL from the inner header, protocol 4, from the director's address toward the
  // real server to the real server), the real server's MACs, out. The inner packet is not
  // touched otherwise: a partial L4 checksum stays partial (csum_start moves with it), and the
  // receiver completes or trusts it as it would have without the tunnel. The outer ID is the
  // inner one: the XDP program passed only frames that fit the egress with the outer header, so
  // this director never fragments them.
  a.Bind(tun);
  a.Ld(BPF_W, R2, R9, 32);
  a.St(BPF_W, R10, kAddr, R2);                               // the real server
  a.Ld(BPF_W, R2, R9, 48);
  a.St(BPF_W, R10, kPort, R2);                               // the outer source (kPort's slot reused)
  record();
  decrementTtl();
  //   The inner header, TTL already decremented, becomes the outer one's template.
  a.Mov(R1, R6);
  a.MovK(R2, ETH_HLEN);
  a.Mov(R3, R10);
  a.AddK(R3, kOuter);
  a.MovK(R4, 20);
  a.Call(BPF_FUNC_skb_load_bytes);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, drop);
  a.Ld(BPF_H, R2, R10, kOuter + 2);                          // total length + 20
  a.Emit(BPF_ALU | BPF_END | BPF_TO_BE, R2, 0, 0, 16);
  a.AddK(R2, 20);
  a.Emit(BPF_ALU | BPF_END | BPF_TO_BE, R2, 0, 0, 16);
  a.St(BPF_H, R10, kOuter + 2, R2);
  a.Ld(BPF_H, R2, R10, kOuter + 6);                          // DF only: no MF, offset 0
  a.AndK(R2, htons(0x4000));
  a.St(BPF_H, R10, kOuter + 6, R2);
  a.Emit(BPF_ST | BPF_B | BPF_MEM, R10, 0, kOuter + 9, IPPROTO_IPIP);
  a.Emit(BPF_ST | BPF_H | BPF_MEM, R10, 0, kOuter + 10, 0);
  a.Ld(BPF_W, R2, R10, kPort);
  a.St(BPF_W, R10, kOuter + 12, R2);
  a.Ld(BPF_W, R2, R10, kAddr);
  a.St(BPF_W, R10, kOuter + 16, R2);
  //   Header checksum: bpf_csum_diff's 32-bit sum of the 20 bytes, folded twice, complemented.
  a.MovK(R1, 0);
  a.MovK(R2, 0);
  a.Mov(R3, R10);
  a.AddK(R3, kOuter);
  a.MovK(R4, 20);
  a.MovK(R5, 0);
  a.Call(BPF_FUNC_csum_diff);
  for (int fold = 0; fold < 2; fold++) {
    a.Emit(BPF_ALU | BPF_MOV | BPF_X, R2, R0, 0, 0);         // 32-bit moves: the sum is a u32
    a.Emit(BPF_ALU | BPF_RSH | BPF_K, R2, 0, 0, 16);
    a.Emit(BPF_ALU | BPF_AND | BPF_K, R0, 0, 0, 0xffff);
    a.Emit(BPF_ALU | BPF_ADD | BPF_X, R0, R2, 0, 0);
  }
  a.Emit(BPF_ALU | BPF_XOR | BPF_K, R0, 0, 0, 0xffff);
  a.St(BPF_H, R10, kOuter + 10, R0);
  //   Room for it between the Ethernet header and the packet, then the header, MACs, out.
  a.Mov(R1, R6);
  a.MovK(R2, 20);
  a.MovK(R3, BPF_ADJ_ROOM_MAC);
  a.MovK(R4, static_cast<int32_t>(BPF_F_ADJ_ROOM_ENCAP_L3_IPV4));
  a.Call(BPF_FUNC_skb_adjust_room);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, drop);
  store(ETH_HLEN, kOuter, 20);
  out();
  a.Bind(next);
  a.MovK(R0, kTcxNext);
  a.Exit();
  a.Bind(drop);
  a.MovK(R0, kTcxDrop);
  a.Exit();
  return a.code;
}

}  // namespace

int AttachNatTc(Napi::Env env, int ifindex, int fastFd, int hopsFd, int* prog) {
  *prog = ProgLoad(env, BPF_PROG_TYPE_SCHED_CLS, 0, "uvs_fast_nat", BuildNatProgram(fastFd, hopsFd), "tc fast-path NAT");
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.link_create.prog_fd = static_cast<uint32_t>(*prog);
  a.link_create.target_ifindex = static_cast<uint32_t>(ifindex);
  a.link_create.attach_type = kBpfTcxIngress;
  int link = static_cast<int>(Bpf(BPF_LINK_CREATE, &a));
  if (link < 0) {
    int err = errno;
    close(*prog);
    *prog = -1;
    ThrowSys(env, "bpf(BPF_LINK_CREATE, tcx ingress, ifindex=" + std::to_string(ifindex) + ")", err);
  }
  return link;
}

// The control cell of kernel scheduling, mapped into this thread's buffer (the mapping holds the map).
static Napi::ArrayBuffer CtlBuffer(Napi::Env env, int fd) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) ThrowSys(env, "mmap(uvs_fast_ctl)", errno);
  return Napi::ArrayBuffer::New(env, mem, kCtlSize, [page](Napi::Env, void* p) { munmap(p, page); });
}

Napi::Value Ctl(const Napi::CallbackInfo& info) {
  return CtlBuffer(info.Env(), static_cast<int>(IntArg(info, 0, "fastCtl: ctlFd", 0, INT32_MAX)));
}

Napi::Value Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* W = "fastPathMaps";
  if (info.Length() < 1 || !info[0].IsObject()) ThrowType(env, "fastPathMaps(options): options must be an object {entries, slots}");
  Napi::Object o = info[0].As<Napi::Object>();
  if (!Present(o, "entries") || !Present(o, "slots")) ThrowType(env, "fastPathMaps: options entries and slots are required");
  uint32_t entries = static_cast<uint32_t>(OptInt(o, W, "entries", 0, 1, 1 << 24));
  uint32_t slots = static_cast<uint32_t>(OptInt(o, W, "slots", 0, 1, 1 << 24));
  auto fds = std::make_shared<MapFds>();
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_HASH;
  a.key_size = kKeySize;
  a.value_size = kValueSize;
  a.max_entries = entries;
  a.map_flags = BPF_F_NO_PREALLOC;  // memory follows the flows offloaded, not max_entries
  strncpy(a.map_name, "uvs_fast", sizeof a.map_name - 1);
  fds->fast = static_cast<int>(Bpf(BPF_MAP_CREATE, &a));
  if (fds->fast < 0) ThrowSys(env, "bpf(BPF_MAP_CREATE, uvs_fast, max_entries=" + std::to_string(entries) + ")", errno);
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_ARRAY;
  a.key_size = 4;
  a.value_size = kHopSize;
  a.max_entries = slots;
  a.map_flags = BPF_F_MMAPABLE;
  strncpy(a.map_name, "uvs_fast_hops", sizeof a.map_name - 1);
  fds->hops = static_cast<int>(Bpf(BPF_MAP_CREATE, &a));
  if (fds->hops < 0) ThrowSys(env, "bpf(BPF_MAP_CREATE, uvs_fast_hops, mmapable, max_entries=" + std::to_string(slots) + ")", errno);
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t length = (static_cast<size_t>(slots) * kHopSize + page - 1) / page * page;
  void* mem = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fds->hops, 0);
  if (mem == MAP_FAILED) ThrowSys(env, "mmap(uvs_fast_hops, " + std::to_string(length) + " bytes)", errno);
  // The mapping holds the map too: it stays valid after close() until the buffer is collected.
  Napi::ArrayBuffer hopsBuf = Napi::ArrayBuffer::New(env, mem, static_cast<size_t>(slots) * kHopSize,
                                                     [length](Napi::Env, void* p) { munmap(p, length); });
  Napi::Object r = Napi::Object::New(env);
  r.Set("fastFd", Napi::Number::New(env, fds->fast));
  r.Set("hopsFd", Napi::Number::New(env, fds->hops));
  r.Set("hops", hopsBuf);
  // Kernel scheduling's maps (fast-path.h), when asked for.
  if (Present(o, "sched")) {
    if (!o.Get("sched").IsObject()) ThrowType(env, "fastPathMaps: option sched must be an object {services}");
    Napi::Object so = o.Get("sched").As<Napi::Object>();
    uint32_t services = static_cast<uint32_t>(OptInt(so, "fastPathMaps sched", "services", 0, 1, 1 << 20));
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_HASH;
    a.key_size = kSvcKeySize;
    a.value_size = kSvcValueSize;
    a.max_entries = services;
    a.map_flags = BPF_F_NO_PREALLOC;  // 4 KiB per service scheduled in the kernel, not per possible one
    strncpy(a.map_name, "uvs_fast_svc", sizeof a.map_name - 1);
    fds->svc = static_cast<int>(Bpf(BPF_MAP_CREATE, &a));
    if (fds->svc < 0) ThrowSys(env, "bpf(BPF_MAP_CREATE, uvs_fast_svc, max_entries=" + std::to_string(services) + ")", errno);
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = kCtlSize;
    a.max_entries = 1;
    a.map_flags = BPF_F_MMAPABLE;
    strncpy(a.map_name, "uvs_fast_ctl", sizeof a.map_name - 1);
    fds->ctl = static_cast<int>(Bpf(BPF_MAP_CREATE, &a));
    if (fds->ctl < 0) ThrowSys(env, "bpf(BPF_MAP_CREATE, uvs_fast_ctl, mmapable)", errno);
    r.Set("ctl", CtlBuffer(env, fds->ctl));
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_RINGBUF;
    a.max_entries = kEventsBytes;
    strncpy(a.map_name, "uvs_fast_evts", sizeof a.map_name - 1);
    fds->events = static_cast<int>(Bpf(BPF_MAP_CREATE, &a));
    if (fds->events < 0) ThrowSys(env, "bpf(BPF_MAP_CREATE, uvs_fast_events, ringbuf " + std::to_string(kEventsBytes) + " bytes)", errno);
    r.Set("svcFd", Napi::Number::New(env, fds->svc));
    r.Set("ctlFd", Napi::Number::New(env, fds->ctl));
    r.Set("eventsFd", Napi::Number::New(env, fds->events));
  }
  r.Set("close", Napi::Function::New(env, [fds](const Napi::CallbackInfo& ci) {
          fds->Close();
          return ci.Env().Undefined();
        }, "close"));
  auto* hold = new std::shared_ptr<MapFds>(fds);
  r.AddFinalizer([](Napi::Env, std::shared_ptr<MapFds>* h) { delete h; }, hold);
  return r;
}

// A value with the DestTable slot and the in_pkts base from arguments `at` and `at` + 1, its
// lastSeen now (an offloaded flow that never sees another packet ages from here), the rest zero.
static Value NewValue(const Napi::CallbackInfo& info, size_t at, const char* slotName, const char* baseName) {
  Value v;
  memset(&v, 0, sizeof v);
  v.destSlot = static_cast<uint32_t>(IntArg(info, at, slotName, 0, 0xffffffffLL));
  v.base = static_cast<uint32_t>(IntArg(info, at + 1, baseName, 0, 0xffffffffLL));
  v.lastSeen = MonotonicNs();
  return v;
}

// The optional flags argument at `at`: 0 when absent, else 0 or kFastTrack.
static uint32_t FlagsArg(const Napi::CallbackInfo& info, size_t at, const char* name) {
  if (info.Length() <= at || info[at].IsUndefined()) return 0;
  uint32_t f = static_cast<uint32_t>(IntArg(info, at, name, 0, kFastTrack));
  if (f != 0 && f != kFastTrack) ThrowRange(info.Env(), std::string(name) + " must be 0 or 2 (tracked)");
  return f;
}

Napi::Value Put(const Napi::CallbackInfo& info) {
  uint8_t key[kKeySize];
  int fd = KeyArgs(info, kPutNames, key);
  Value v = NewValue(info, 6, "fastPut: destSlot", "fastPut: base");
  v.flags = FlagsArg(info, 8, "fastPut: flags");
  return Napi::Number::New(info.Env(), Update(fd, key, v, BPF_ANY));
}

Napi::Value PutNat(const Napi::CallbackInfo& info) {
  uint8_t in[kKeySize], reply[kKeySize];
  int fd = KeyArgs(info, kPutNatNames, in);
  uint32_t daddr = htonl(static_cast<uint32_t>(IntArg(info, 6, "fastPutNat: daddr", INT32_MIN, 0xffffffffLL)));
  uint16_t dport = htons(static_cast<uint16_t>(IntArg(info, 7, "fastPutNat: dport", 0, 65535)));
  Value v = NewValue(info, 8, "fastPutNat: destSlot", "fastPutNat: base");
  uint32_t hop[3];
  hop[0] = static_cast<uint32_t>(IntArg(info, 10, "fastPutNat: hopA", INT32_MIN, 0xffffffffLL));
  hop[1] = static_cast<uint32_t>(IntArg(info, 11, "fastPutNat: hopB", INT32_MIN, 0xffffffffLL));
  hop[2] = static_cast<uint32_t>(IntArg(info, 12, "fastPutNat: hopC", INT32_MIN, 0xffffffffLL));
  uint32_t ifindex = static_cast<uint32_t>(IntArg(info, 13, "fastPutNat: ifindex", 1, INT32_MAX));
  v.flags = FlagsArg(info, 14, "fastPutNat: flags");
  // The reply's key: real server -> client, as the reply carries them.
  memset(reply, 0, kKeySize);
  memcpy(reply, &daddr, 4);
  memcpy(reply + 4, in, 4);
  memcpy(reply + 8, &dport, 2);
  memcpy(reply + 10, in + 8, 2);
  reply[12] = in[12];
  Value r = v;
  // Client side: the destination becomes the real server (daddr:dport).
  v.kind = kNatIn;
  v.natPort = dport;
  memcpy(v.natAddr, &daddr, 4);
  // Reply: the source becomes the virtual service (the client's destination), out by the hop the
  // connection's first packet came in by (the entry's HOP_A..HOP_C: the client's MAC, then ours).
  r.kind = kNatReply;
  memcpy(&r.natPort, in + 10, 2);
  memcpy(r.natAddr, in + 4, 4);
  PutBe32(r.u.reply.macs, hop[0]);
  PutBe32(r.u.reply.macs + 4, hop[1]);
  PutBe32(r.u.reply.macs + 8, hop[2]);
  r.u.reply.ifindex = ifindex;
  int err = Update(fd, reply, r, BPF_ANY);
  if (err == 0) {
    err = Update(fd, in, v, BPF_ANY);
    if (err != 0) Remove(fd, reply);
  }
  return Napi::Number::New(info.Env(), err);
}

Napi::Value PutTun(const Napi::CallbackInfo& info) {
  uint8_t key[kKeySize];
  int fd = KeyArgs(info, kPutTunNames, key);
  Value v = NewValue(info, 6, "fastPutTun: destSlot", "fastPutTun: base");
  PutBe32(v.natAddr, static_cast<uint32_t>(IntArg(info, 8, "fastPutTun: rip", INT32_MIN, 0xffffffffLL)));
  PutBe32(v.u.outerSrc, static_cast<uint32_t>(IntArg(info, 9, "fastPutTun: source", INT32_MIN, 0xffffffffLL)));
  v.kind = kTun;
  v.flags = FlagsArg(info, 10, "fastPutTun: flags");
  return Napi::Number::New(info.Env(), Update(fd, key, v, BPF_ANY));
}

Napi::Value Idle(const Napi::CallbackInfo& info) {
  uint8_t key[kKeySize];
  int fd = KeyArgs(info, kIdleNames, key);
  Value v;
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<uint32_t>(fd);
  a.key = reinterpret_cast<uint64_t>(key);
  a.value = reinterpret_cast<uint64_t>(&v);
  if (Bpf(BPF_MAP_LOOKUP_ELEM, &a) < 0) return Napi::Number::New(info.Env(), -1);
  uint64_t now = MonotonicNs();
  double idle = now > v.lastSeen ? static_cast<double>(now - v.lastSeen) / 1e6 : 0;
  // out (optional Float64Array of 2 or more): the flow's in_pkts base and the packets the program
  // forwarded; a third element gets the value's flags (fast-path.h kFast*).
  if (info.Length() > 6 && info[6].IsTypedArray()) {
    Napi::TypedArray t = info[6].As<Napi::TypedArray>();
    if (t.TypedArrayType() != napi_float64_array || t.ElementLength() < 2) ThrowType(info.Env(), "fastIdle: out must be a Float64Array of 2 or more");
    Napi::Float64Array out = t.As<Napi::Float64Array>();
    out[0] = static_cast<double>(v.base);
    out[1] = static_cast<double>(v.packets);
    if (t.ElementLength() > 2) out[2] = static_cast<double>(v.flags);
  }
  return Napi::Number::New(info.Env(), idle);
}

Napi::Value Delete(const Napi::CallbackInfo& info) {
  uint8_t key[kKeySize];
  int fd = KeyArgs(info, kDeleteNames, key);
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<uint32_t>(fd);
  a.key = reinterpret_cast<uint64_t>(key);
  return Napi::Boolean::New(info.Env(), Bpf(BPF_MAP_DELETE_ELEM, &a) == 0);
}

// The service key of kernel scheduling (fast-path.h, svc) from arguments 1..3.
static void SvcKey(const Napi::CallbackInfo& info, const char* what, uint8_t key[kSvcKeySize]) {
  uint32_t proto = static_cast<uint32_t>(IntArg(info, 1, what, 0, 255));
  uint32_t vaddr = htonl(static_cast<uint32_t>(IntArg(info, 2, what, INT32_MIN, 0xffffffffLL)));
  uint16_t vport = htons(static_cast<uint16_t>(IntArg(info, 3, what, 0, 65535)));
  memset(key, 0, kSvcKeySize);
  memcpy(key, &vaddr, 4);
  memcpy(key + 4, &vport, 2);
  key[6] = static_cast<uint8_t>(proto);
}

Napi::Value SvcPut(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fastSvcPut: fd", 0, INT32_MAX));
  uint8_t key[kSvcKeySize];
  SvcKey(info, "fastSvcPut: protocol, vaddr or vport", key);
  uint32_t svcId = static_cast<uint32_t>(IntArg(info, 4, "fastSvcPut: svcId", 0, INT32_MAX));
  if (info.Length() < 6 || !info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    ThrowType(env, "fastSvcPut: entries must be an Int32Array");
  }
  Napi::Int32Array e = info[5].As<Napi::Int32Array>();
  uint32_t count = static_cast<uint32_t>(IntArg(info, 6, "fastSvcPut: count", 1, kSchedSlots));
  if (e.ElementLength() < static_cast<size_t>(count) * 4) ThrowRange(env, "fastSvcPut: entries holds fewer than count * 4 cells");
  std::vector<uint8_t> v(kSvcValueSize, 0);
  memcpy(v.data(), &count, 4);
  memcpy(v.data() + 8, &svcId, 4);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t* p = v.data() + 16 + i * 16;
    uint32_t slot = static_cast<uint32_t>(e[i * 4]);
    uint16_t kind = static_cast<uint16_t>(e[i * 4 + 1]);
    uint32_t addr = htonl(static_cast<uint32_t>(e[i * 4 + 2]));
    uint16_t port = htons(static_cast<uint16_t>(e[i * 4 + 3]));
    memcpy(p, &slot, 4);
    memcpy(p + 4, &kind, 2);
    memcpy(p + 6, &port, 2);
    memcpy(p + 8, &addr, 4);
  }
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<uint32_t>(fd);
  a.key = reinterpret_cast<uint64_t>(key);
  a.value = reinterpret_cast<uint64_t>(v.data());
  a.flags = BPF_ANY;
  return Napi::Number::New(env, Bpf(BPF_MAP_UPDATE_ELEM, &a) < 0 ? errno : 0);
}

Napi::Value SvcDelete(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(IntArg(info, 0, "fastSvcDelete: fd", 0, INT32_MAX));
  uint8_t key[kSvcKeySize];
  SvcKey(info, "fastSvcDelete: protocol, vaddr or vport", key);
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<uint32_t>(fd);
  a.key = reinterpret_cast<uint64_t>(key);
  return Napi::Boolean::New(info.Env(), Bpf(BPF_MAP_DELETE_ELEM, &a) == 0);
}

namespace {

// The events ring as mapped by its reader: the consumer page (read-write), then the producer
// page and the data, mapped twice in a row by the kernel so a record never wraps.
struct EventsReader {
  int fd = -1;
  size_t page = 0;
  uint8_t* consumer = nullptr;
  uint8_t* producer = nullptr;  // producer page, data at + page
  size_t producerLen = 0;
  ~EventsReader() {
    if (consumer != nullptr) munmap(consumer, page);
    if (producer != nullptr) munmap(producer, producerLen);
  }
};

// One reader at a time: workers share the ring (any of them may find a record first).
std::mutex gEventsLock;

uint32_t Be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

}  // namespace

Napi::Value Events(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fastEvents: eventsFd", 0, INT32_MAX));
  auto r = std::make_shared<EventsReader>();
  r->fd = fd;
  r->page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* c = mmap(nullptr, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (c == MAP_FAILED) ThrowSys(env, "mmap(uvs_fast_events consumer page)", errno);
  r->consumer = static_cast<uint8_t*>(c);
  r->producerLen = r->page + 2 * static_cast<size_t>(kEventsBytes);
  void* p = mmap(nullptr, r->producerLen, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(r->page));
  if (p == MAP_FAILED) ThrowSys(env, "mmap(uvs_fast_events producer page and data)", errno);
  r->producer = static_cast<uint8_t*>(p);
  Napi::Object o = Napi::Object::New(env);
  o.Set("read", Napi::Function::New(env, [r](const Napi::CallbackInfo& ci) {
          Napi::Env e = ci.Env();
          if (ci.Length() < 1 || !ci[0].IsTypedArray() || ci[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
            ThrowType(e, "fastEvents.read: out must be an Int32Array");
          }
          Napi::Int32Array out = ci[0].As<Napi::Int32Array>();
          size_t room = out.ElementLength() / kEventCells;
          if (r->consumer == nullptr) return Napi::Number::New(e, 0);
          std::unique_lock<std::mutex> lock(gEventsLock, std::try_to_lock);
          if (!lock.owns_lock()) return Napi::Number::New(e, 0);
          auto* consPos = reinterpret_cast<std::atomic<uint64_t>*>(r->consumer);
          auto* prodPos = reinterpret_cast<std::atomic<uint64_t>*>(r->producer);
          const uint8_t* data = r->producer + r->page;
          const uint64_t mask = kEventsBytes - 1;
          uint64_t cons = consPos->load(std::memory_order_acquire);
          const uint64_t prod = prodPos->load(std::memory_order_acquire);
          size_t n = 0;
          int32_t* cells = out.Data();
          while (cons < prod && n < room) {
            const uint8_t* h = data + (cons & mask);
            uint32_t len = reinterpret_cast<const std::atomic<uint32_t>*>(h)->load(std::memory_order_acquire);
            if (len & BPF_RINGBUF_BUSY_BIT) break;  // still being written
            const bool discarded = (len & BPF_RINGBUF_DISCARD_BIT) != 0;
            len &= ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
            const uint8_t* rec = h + BPF_RINGBUF_HDR_SZ;
            uint16_t version = 0;
            if (len >= kEventSize) memcpy(&version, rec + 30, 2);
            if (!discarded && len >= kEventSize && version == 4) {
              int32_t* c = cells + n * kEventCells;
              c[0] = static_cast<int32_t>(Be32(rec));       // saddr
              c[1] = static_cast<int32_t>(Be32(rec + 4));   // daddr
              c[2] = (rec[8] << 8) | rec[9];                // sport
              c[3] = (rec[10] << 8) | rec[11];              // dport
              c[4] = rec[12];                               // protocol
              uint32_t v32;
              memcpy(&v32, rec + 16, 4);
              c[5] = static_cast<int32_t>(v32);             // destSlot
              memcpy(&v32, rec + 20, 4);
              c[6] = static_cast<int32_t>(v32);             // svcId
              memcpy(&v32, rec + 24, 4);
              c[7] = static_cast<int32_t>(v32);             // ingress ifindex
              uint16_t kind;
              memcpy(&kind, rec + 28, 2);
              c[8] = kind;
              c[9] = static_cast<int32_t>(Be32(rec + 32));  // client MAC 0..3
              c[10] = static_cast<int32_t>(Be32(rec + 36)); // client MAC 4..5, ours 0..1
              c[11] = static_cast<int32_t>(Be32(rec + 40)); // ours 2..5
              n++;
            }
            cons += (static_cast<uint64_t>(len) + BPF_RINGBUF_HDR_SZ + 7) & ~static_cast<uint64_t>(7);
            consPos->store(cons, std::memory_order_release);
          }
          return Napi::Number::New(e, static_cast<double>(n));
        }, "read"));
  o.Set("close", Napi::Function::New(env, [r](const Napi::CallbackInfo& ci) {
          std::lock_guard<std::mutex> lock(gEventsLock);
          if (r->consumer != nullptr) munmap(r->consumer, r->page);
          if (r->producer != nullptr) munmap(r->producer, r->producerLen);
          r->consumer = nullptr;
          r->producer = nullptr;
          return ci.Env().Undefined();
        }, "close"));
  return o;
}

}  // namespace uvs_fast
