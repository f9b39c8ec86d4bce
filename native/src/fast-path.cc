// The in-kernel fast path for established DR flows: its two maps and what user space does with
// them. The XDP program's part is xdp.cc's FastPathBlock; the policy (which flows, when they come
// back) is src/dataplane/fast-path.ts.
//
//   fast  BPF_MAP_TYPE_HASH, key 16 bytes (saddr, daddr, sport, dport as in the packet, then the
//         protocol and three zero bytes: ringflows' key), value 32 bytes: destSlot u32, flags u32
//         (1 = demoted by the program), lastSeen u64 (CLOCK_MONOTONIC ns, bpf_ktime_get_ns),
//         packets u64 (forwarded by the program), base u32 (the entry's in_pkts when offloaded:
//         base + packets is the flow's in_pkts, which connection sync counts by), u32 unused.
//         Not preallocated (BPF_F_NO_PREALLOC): the kernel allocates an element per flow
//         offloaded (about 100 bytes with its overhead) and frees it on delete. A full map
//         refuses new flows (E2BIG), which then stay in user space.
//   hops  BPF_MAP_TYPE_ARRAY with BPF_F_MMAPABLE, one 32-byte record per DestTable slot: the
//         MACs, the egress ifindex (0: not forwarded here) and the packets and bytes the program
//         forwarded. Mapped into the process: the control plane writes the records and reads the
//         counters as memory, no syscall.
//
// The calls below run once per flow (put, delete) or once per expiry of an offloaded flow (idle),
// never per packet. Addresses and ports are host order, as the pipeline holds them.

#include "fast-path.h"

#include "common.h"
#include "ebpf.h"

#include <linux/bpf.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <memory>

namespace uvs_fast {

namespace {

constexpr uint32_t kKeySize = 16;
constexpr uint32_t kValueSize = 32;
constexpr uint32_t kHopSize = 32;

struct Value {
  uint32_t destSlot;
  uint32_t flags;
  uint64_t lastSeen;
  uint64_t packets;
  uint32_t base;
  uint32_t unused;
};
static_assert(sizeof(Value) == kValueSize, "the program's value layout");

struct MapFds {
  int fast = -1, hops = -1;
  void Close() {
    for (int* fd : {&fast, &hops}) {
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

}  // namespace

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
  r.Set("close", Napi::Function::New(env, [fds](const Napi::CallbackInfo& ci) {
          fds->Close();
          return ci.Env().Undefined();
        }, "close"));
  auto* hold = new std::shared_ptr<MapFds>(fds);
  r.AddFinalizer([](Napi::Env, std::shared_ptr<MapFds>* h) { delete h; }, hold);
  return r;
}

Napi::Value Put(const Napi::CallbackInfo& info) {
  uint8_t key[kKeySize];
  int fd = KeyArgs(info, kPutNames, key);
  Value v;
  memset(&v, 0, sizeof v);
  v.destSlot = static_cast<uint32_t>(IntArg(info, 6, "fastPut: destSlot", 0, 0xffffffffLL));
  v.base = static_cast<uint32_t>(IntArg(info, 7, "fastPut: base", 0, 0xffffffffLL));
  v.lastSeen = MonotonicNs();  // an offloaded flow that never sees another packet ages from here
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<uint32_t>(fd);
  a.key = reinterpret_cast<uint64_t>(key);
  a.value = reinterpret_cast<uint64_t>(&v);
  a.flags = BPF_ANY;
  int r = Bpf(BPF_MAP_UPDATE_ELEM, &a) < 0 ? errno : 0;
  return Napi::Number::New(info.Env(), r);
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
  // out (optional Float64Array of 2): the flow's in_pkts base and the packets the program forwarded.
  if (info.Length() > 6 && info[6].IsTypedArray()) {
    Napi::TypedArray t = info[6].As<Napi::TypedArray>();
    if (t.TypedArrayType() != napi_float64_array || t.ElementLength() < 2) ThrowType(info.Env(), "fastIdle: out must be a Float64Array of 2 or more");
    Napi::Float64Array out = t.As<Napi::Float64Array>();
    out[0] = static_cast<double>(v.base);
    out[1] = static_cast<double>(v.packets);
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

}  // namespace uvs_fast
