// IP-in-IP decapsulation in the kernel, for LVS-TUN real servers whose kernel has no `ipip` module:
// an eBPF program on a device's tc ingress hook (tcx, attached through a BPF link) strips the outer
// IPv4 header of IPIP packets addressed to this host, and the kernel then receives the inner packet
// on that device as if it had arrived bare: the VIP on lo takes it, as it would from tunl0.
//
// uvs-tun-decap (src/tun/decap.ts) does the same in user space through a raw socket and a TUN
// device; that costs a wake-up of the agent and two copies per packet (tens of microseconds a
// packet on the lab's VM). With this program attached the agent stays as the slow path: what the
// program leaves alone (outer fragments, which the stack reassembles first; IPIP on devices without
// the program) still reaches the agent's raw socket.
//
// The decision, per packet, cheapest test first. "Next" leaves the packet untouched (TCX_NEXT: the
// next program on the hook, or the stack):
//   1. not PACKET_HOST, VLAN-tagged (the VLAN device's business), shorter than Ethernet + IPv4,
//      not IPv4, not protocol 4, IHL < 5 .................................................. next
//   2. `local` set and the outer destination is another address ................ next, notLocal++
//   3. a fragment of the outer packet (MF or an offset) ........................ next, fragments++
//   4. `allow` set and the outer source is none of them ...................... drop, notAllowed++
//   5. bpf_skb_adjust_room(-IHL*4, BPF_ADJ_ROOM_MAC, FIXED_GSO) takes the outer header out from
//      between the Ethernet header and the inner packet; the kernel goes on with the inner one
//      (TCX_PASS) ......................................................... pass, decapsulated++
//      (the helper failed: drop, failed++). FIXED_GSO keeps a super-frame's gso_size: the inner
//      segments keep their size, only the outer header goes.
//
// Counters: one array map entry of five u64, added to atomically (every CPU runs the program):
//   0 decapsulated | 1 notAllowed | 2 fragments | 3 failed | 4 notLocal
// IPv6 outer headers (protocol 41 / 4 in IPv6) would get a branch of their own at 1.

#include "tc-decap.h"

#include "common.h"
#include "ebpf.h"

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <unistd.h>

#include <memory>
#include <vector>

namespace uvs_tc_decap {

namespace {

constexpr int kCounters = 5;
enum Counter { kDecapsulated = 0, kNotAllowed = 1, kFragments = 2, kFailed = 3, kNotLocal = 4 };
const char* const kCounterNames[kCounters] = {"decapsulated", "notAllowed", "fragments", "failed", "notLocal"};

// local and allow are in network byte order, as in the packet.
std::vector<bpf_insn> BuildProgram(uint32_t local, const std::vector<uint32_t>& allow, int counters) {
  Asm a;
  const uint8_t R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, R10 = 10;
  const int next = a.NewLabel(), notLocal = a.NewLabel(), fragment = a.NewLabel(), notAllowed = a.NewLabel(), failed = a.NewLabel();
  a.Mov(R6, R1);  // r6 = ctx (r1-r5 are clobbered by calls)
  // The counters' key (0) on the stack, once.
  a.MovK(R1, 0);
  a.St(BPF_W, R10, -4, R1);
  // 1. Ours at all?
  a.Ld(BPF_W, R2, R6, offsetof(__sk_buff, pkt_type));
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R2, 0, PACKET_HOST, next);
  a.Ld(BPF_W, R2, R6, offsetof(__sk_buff, vlan_present));
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R2, 0, 0, next);
  a.Ld(BPF_W, R7, R6, offsetof(__sk_buff, data));
  a.Ld(BPF_W, R8, R6, offsetof(__sk_buff, data_end));
  a.Mov(R4, R7);
  a.AddK(R4, ETH_HLEN + 20);
  a.JumpTo(BPF_JMP | BPF_JGT | BPF_X, R4, R8, 0, next);
  // Loads are native-endian: compare with the big-endian field as the CPU sees it (JMP32, so no
  // sign extension of the immediate).
  a.Ld(BPF_H, R4, R7, 12);
  a.JumpTo(BPF_JMP32 | BPF_JNE | BPF_K, R4, 0, htons(ETH_P_IP), next);
  a.Ld(BPF_B, R4, R7, ETH_HLEN + 9);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R4, 0, IPPROTO_IPIP, next);
  a.Ld(BPF_B, R9, R7, ETH_HLEN);  // version and IHL
  a.Mov(R5, R9);
  a.AndK(R5, 0xf0);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R5, 0, 0x40, next);
  a.AndK(R9, 0x0f);
  a.JumpTo(BPF_JMP | BPF_JLT | BPF_K, R9, 0, 5, next);
  a.Emit(BPF_ALU64 | BPF_LSH | BPF_K, R9, 0, 0, 2);  // r9 = outer header length (r6-r9 survive calls)
  // 2. Addressed to --local.
  if (local != 0) {
    a.Ld(BPF_W, R4, R7, ETH_HLEN + 16);
    a.JumpTo(BPF_JMP32 | BPF_JNE | BPF_K, R4, 0, static_cast<int32_t>(local), notLocal);
  }
  // 3. Not a fragment.
  a.Ld(BPF_H, R4, R7, ETH_HLEN + 6);
  a.JumpTo(BPF_JMP | BPF_JSET | BPF_K, R4, 0, htons(0x3fff), fragment);
  // 4. From a director in --allow.
  if (!allow.empty()) {
    const int allowed = a.NewLabel();
    a.Ld(BPF_W, R4, R7, ETH_HLEN + 12);
    for (uint32_t src : allow) a.JumpTo(BPF_JMP32 | BPF_JEQ | BPF_K, R4, 0, static_cast<int32_t>(src), allowed);
    a.JumpTo(BPF_JMP | BPF_JA, 0, 0, 0, notAllowed);
    a.Bind(allowed);
  }
  // 5. Out with the outer header.
  a.Mov(R1, R6);
  a.MovK(R2, 0);
  a.Emit(BPF_ALU64 | BPF_SUB | BPF_X, R2, R9, 0, 0);  // r2 = -IHL*4
  a.MovK(R3, BPF_ADJ_ROOM_MAC);
  a.MovK(R4, BPF_F_ADJ_ROOM_FIXED_GSO);
  a.Call(BPF_FUNC_skb_adjust_room);
  a.JumpTo(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, failed);
  auto count = [&](Counter c) {
    a.LdMapFd(R1, counters);
    a.Mov(R2, R10);
    a.AddK(R2, -4);
    a.Call(BPF_FUNC_map_lookup_elem);
    a.Emit(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 2, 0);  // no entry (cannot happen in an array): skip the add
    a.MovK(R1, 1);
    a.Emit(BPF_STX | BPF_DW | BPF_ATOMIC, R0, R1, static_cast<int16_t>(c * 8), BPF_ADD);
  };
  auto exitWith = [&](int32_t verdict) {
    a.MovK(R0, verdict);
    a.Exit();
  };
  count(kDecapsulated);
  exitWith(kTcxPass);
  // Only the blocks something jumps to: the verifier refuses unreachable instructions.
  if (local != 0) {
    a.Bind(notLocal);
    count(kNotLocal);
    exitWith(kTcxNext);
  }
  a.Bind(fragment);
  count(kFragments);
  exitWith(kTcxNext);
  if (!allow.empty()) {
    a.Bind(notAllowed);
    count(kNotAllowed);
    exitWith(kTcxDrop);
  }
  a.Bind(failed);
  count(kFailed);
  exitWith(kTcxDrop);
  a.Bind(next);
  exitWith(kTcxNext);
  return a.code;
}

struct DecapFds {
  int link = -1, prog = -1, counters = -1;
  void Close() {
    // The link first: that takes the program off the device.
    for (int* fd : {&link, &prog, &counters}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }
  ~DecapFds() { Close(); }
};

uint32_t AddressArg(Napi::Env env, const Napi::Value& v, const std::string& what) {
  return htonl(static_cast<uint32_t>(IntValue(env, v, what, 0, 0xffffffffLL)));
}

}  // namespace

Napi::Value Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* W = "tcDecapAttach(ifindex, {local, allow})";
  int ifindex = static_cast<int>(IntArg(info, 0, "tcDecapAttach(ifindex, options): ifindex", 1, INT32_MAX));
  if (info.Length() < 2 || !info[1].IsObject()) ThrowType(env, std::string(W) + ": options must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  uint32_t local = Present(o, "local") ? AddressArg(env, o.Get("local"), std::string(W) + ": option local") : 0;
  std::vector<uint32_t> allow;
  if (Present(o, "allow")) {
    if (!o.Get("allow").IsArray()) ThrowType(env, std::string(W) + ": option allow must be an array of IPv4 addresses (host-order integers)");
    Napi::Array arr = o.Get("allow").As<Napi::Array>();
    // Each address is one compare-and-jump; a jump's 16-bit offset bounds the list far above this.
    if (arr.Length() > 256) ThrowRange(env, std::string(W) + ": option allow holds " + std::to_string(arr.Length()) + " addresses, at most 256");
    for (uint32_t i = 0; i < arr.Length(); i++) allow.push_back(AddressArg(env, arr.Get(i), std::string(W) + ": option allow[" + std::to_string(i) + "]"));
  }

  auto fds = std::make_shared<DecapFds>();
  fds->counters = MapCreate(env, BPF_MAP_TYPE_ARRAY, "uvs_decap_cnt", kCounters * 8, 1);
  fds->prog = ProgLoad(env, BPF_PROG_TYPE_SCHED_CLS, 0, "uvs_tc_decap", BuildProgram(local, allow, fds->counters), "tc decap");
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.link_create.prog_fd = static_cast<uint32_t>(fds->prog);
  a.link_create.target_ifindex = static_cast<uint32_t>(ifindex);
  a.link_create.attach_type = kBpfTcxIngress;
  fds->link = static_cast<int>(Bpf(BPF_LINK_CREATE, &a));
  // EINVAL: a kernel before 6.6 (no tcx); ENODEV: no such device.
  if (fds->link < 0) ThrowSys(env, "bpf(BPF_LINK_CREATE, tcx ingress, ifindex=" + std::to_string(ifindex) + ")", errno);

  Napi::Object r = Napi::Object::New(env);
  r.Set("linkFd", Napi::Number::New(env, fds->link));
  r.Set("progFd", Napi::Number::New(env, fds->prog));
  r.Set("countersFd", Napi::Number::New(env, fds->counters));
  r.Set("counters", Napi::Function::New(env, [fds](const Napi::CallbackInfo& ci) -> Napi::Value {
          Napi::Env e = ci.Env();
          if (fds->counters < 0) ThrowType(e, "tcDecap.counters(): closed");
          uint32_t key = 0;
          uint64_t values[kCounters] = {};
          bpf_attr q;
          memset(&q, 0, sizeof q);
          q.map_fd = static_cast<uint32_t>(fds->counters);
          q.key = reinterpret_cast<uint64_t>(&key);
          q.value = reinterpret_cast<uint64_t>(values);
          if (Bpf(BPF_MAP_LOOKUP_ELEM, &q) < 0) ThrowSys(e, "bpf(BPF_MAP_LOOKUP_ELEM, uvs_decap_cnt)", errno);
          Napi::Object c = Napi::Object::New(e);
          for (int i = 0; i < kCounters; i++) c.Set(kCounterNames[i], Napi::Number::New(e, static_cast<double>(values[i])));
          return c;
        }, "counters"));
  r.Set("close", Napi::Function::New(env, [fds](const Napi::CallbackInfo& ci) {
          fds->Close();
          return ci.Env().Undefined();
        }, "close"));
  // Garbage-collected without close(): the fds go with it (and the program with the link).
  auto* hold = new std::shared_ptr<DecapFds>(fds);
  r.AddFinalizer([](Napi::Env, std::shared_ptr<DecapFds>* h) { delete h; }, hold);
  return r;
}

}  // namespace uvs_tc_decap
