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

// Kernel scheduling (uvsd --fast-path-sched, src/dataplane/fast-path.ts "New connections scheduled
// in the kernel"): three more maps, created by fastPathMaps({..., sched: {services}}).
//   svc     BPF_MAP_TYPE_HASH, key 8 bytes {vaddr u32, vport u16 (both network order), protocol
//           u8, 0}, value kSvcValueSize bytes: count u32 (entries in the cycle, 1..kSchedSlots),
//           cursor u32 (the program's atomic fetch-and-add), svcId u32 (the data plane's service
//           slot), 0 u32, then kSchedSlots entries of 16 bytes {destSlot u32, kind u16 (0 DR,
//           1 NAT), port u16 (network order: the real server's, NAT), address u32 (network order:
//           the real server's, NAT), 0 u32}: one round of rr's or wrr's choices, which user space
//           computes and the program walks.
//   ctl     BPF_MAP_TYPE_ARRAY with BPF_F_MMAPABLE, one kCtlSize-byte cell mapped into the
//           process: pausedUntil u64 at 0 (CLOCK_MONOTONIC ns; the program schedules nothing
//           before it), then u64 counters the program adds to: scheduled at 8, refused at 16 (a
//           key could not be put: the map is full, or the flow's key exists), lost at 24 (the
//           events ring was full; the keys are taken back and the SYN goes to user space), and
//           lastWake u64 at 32 (the program's last wake-up of the events' reader, ktime ns).
//   events  BPF_MAP_TYPE_RINGBUF of kEventsBytes: one kEventSize-byte record per connection the
//           program scheduled {key 16 bytes as in the fast map, destSlot u32, svcId u32, ingress
//           ifindex u32, kind u16, IP version u16 (4), the client's MAC then ours (12 bytes),
//           0 u32}, for user space to create the connection's entry (fastEvents).
// IPv6 would get maps of its own (svc6 keyed by a 16-byte address, a fast6 map) and records of
// version 6 with 16-byte addresses, longer: the reader skips a version it does not know.
constexpr uint32_t kSchedSlots = 255;
constexpr uint32_t kSvcKeySize = 8;
constexpr uint32_t kSvcValueSize = 16 + kSchedSlots * 16;
constexpr uint32_t kCtlSize = 64;
constexpr uint32_t kEventSize = 48;
constexpr uint32_t kEventsBytes = 4u << 20;
// The program asks the ring to wake its reader when kEventsWakeNs passed since the last time it
// did (ctl's lastWake, so a connection is entered within about that at low rates, with at most
// 250 wake-ups a second at high ones) or this much is waiting (about 85 connections); otherwise
// the reader finds the records on its next turn.
constexpr uint32_t kEventsWakeBytes = 85 * (kEventSize + 8);
constexpr uint64_t kEventsWakeNs = 4000000;

// Loads the rewrite program (the tc half of the fast path's NAT and TUN) and attaches it to the device's tc
// ingress through a BPF link (tcx, Linux 6.6). Returns the link fd and sets *prog; throws on
// failure. Closing the link detaches it.
int AttachNatTc(Napi::Env env, int ifindex, int fastFd, int hopsFd, int* prog);

// fastPathMaps({entries, slots[, sched: {services}]}) -> {fastFd, hopsFd, hops: ArrayBuffer,
// [svcFd, ctlFd, eventsFd, ctl: ArrayBuffer,] close()}
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

// fastSvcPut(fd, protocol, vaddr, vport, svcId, entries: Int32Array, count) -> 0 or an errno:
// service vaddr:vport's cycle, `count` entries of 4 cells {destSlot, kind, address, port} (host
// order); its cursor starts at 0.
Napi::Value SvcPut(const Napi::CallbackInfo& info);
// fastSvcDelete(fd, protocol, vaddr, vport) -> true when it was there
Napi::Value SvcDelete(const Napi::CallbackInfo& info);
// fastEvents(eventsFd) -> {read(out: Int32Array) -> records, close()}: the events ring's reader.
// Each record becomes kEventCells cells {saddr, daddr, sport, dport, protocol (host order),
// destSlot, svcId, ifindex, kind, hopA, hopB, hopC (the MACs as ConnTable's HOP_A..HOP_C)}.
// One reader at a time per process (a try-lock: a thread that finds it busy reads nothing).
Napi::Value Events(const Napi::CallbackInfo& info);
// fastCtl(ctlFd) -> ArrayBuffer: the control cell mapped into the calling thread (any thread).
Napi::Value Ctl(const Napi::CallbackInfo& info);
constexpr uint32_t kEventCells = 12;

}  // namespace uvs_fast
