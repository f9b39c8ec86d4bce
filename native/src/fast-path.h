// The fast path's maps and their operations (fast-path.cc); the program block that uses them is in
// xdp.cc (FastPathBlock). Registered in uvs_native.cc.
#pragma once

#include <napi.h>

namespace uvs_fast {

// The destination MAC the XDP program gives a NAT or TUN flow's frame for the tc program (locally
// administered, unicast: 0e "uvs" "na"). No device of a director has it.
constexpr uint8_t kNatMark[6] = {0x0e, 0x75, 0x76, 0x73, 0x6e, 0x61};

// The fast map's value kind of a TUN flow (fast-path.cc: 0 DR, 1 and 2 NAT, 3 TUN).
constexpr int32_t kFastTun = 3;

// Bits of the fast map value's flags (fast-path.cc, xdp.cc FastPathBlock).
//   kFastDemoted: the program handed the flow back (a RST, an untracked SYN or FIN, a SYN after
//     a tracked flow's FIN, a DR super-frame); every later frame goes to user space. Set with an
//     atomic OR: the other bits stay for user space to read.
//   kFastTrack: set by user space at the put (src/dataplane/fast-path.ts, "Closing in the
//     kernel"): a FIN of this key's direction is forwarded by the program, not demoted, and
//   kFastFin: recorded here (an atomic OR) for user space to read (fastIdle's out[2]).
constexpr uint32_t kFastDemoted = 1;
constexpr uint32_t kFastTrack = 2;
constexpr uint32_t kFastFin = 4;

// Loads the rewrite program (the tc half of the fast path's NAT and TUN) and attaches it to the device's tc
// ingress through a BPF link (tcx, Linux 6.6). Returns the link fd and sets *prog; throws on
// failure. Closing the link detaches it.
int AttachNatTc(Napi::Env env, int ifindex, int fastFd, int hopsFd, int* prog);

// fastPathMaps({entries, slots}) -> {fastFd, hopsFd, hops: ArrayBuffer, close()}
Napi::Value Maps(const Napi::CallbackInfo& info);
// Each put takes an optional last argument, the value's initial flags (0 or kFastTrack).
// fastPut(fd, protocol, saddr, sport, daddr, dport, destSlot, base[, flags]) -> 0 or an errno
Napi::Value Put(const Napi::CallbackInfo& info);
// fastPutNat(fd, protocol, caddr, cport, vaddr, vport, daddr, dport, destSlot, base, hopA, hopB,
// hopC, ifindex[, flags]) -> 0 or an errno: both keys of a NAT connection, or neither
Napi::Value PutNat(const Napi::CallbackInfo& info);
// fastPutTun(fd, protocol, saddr, sport, daddr, dport, destSlot, base, rip, source[, flags]) -> 0 or an
// errno: a TUN flow, encapsulated toward rip from source (the outer header's addresses)
Napi::Value PutTun(const Napi::CallbackInfo& info);
// fastIdle(fd, protocol, saddr, sport, daddr, dport[, out]) -> ms since the flow's last packet, -1
// absent; out (Float64Array): [in_pkts base, packets forwarded]
Napi::Value Idle(const Napi::CallbackInfo& info);
// fastDelete(fd, protocol, saddr, sport, daddr, dport) -> true when it was there
Napi::Value Delete(const Napi::CallbackInfo& info);

}  // namespace uvs_fast
