// Batched connection-table lookups: the same answers as src/conn/table.ts's probeForward /
// probeReply for a batch of keys, with the batch's DRAM misses overlapped by software prefetch.
//
// Why native: at a million entries every bucket and entry is a cache miss (and a page walk).
// The JS batch (lookupInBatch) overlaps them only as far as the CPU's reorder window reaches
// over its loop bodies (a load must retire before the window moves on), a few keys at a time.
// A prefetch instruction retires at once, so here the misses of all 64 keys are in flight
// together, as many as the core's fill buffers take.
//
// The layout, hash and probe order are table.ts's (its file header is the reference); the
// constants below must stay equal to its HeaderCell, EntryCell, Meta, StateFlag and SEQ_* values.
// test/conn/native-lookup.test.ts holds both implementations to the same answers on random
// tables, hits, misses, DEAD entries, recycled slots and the reply index.
//
// Concurrency (table.ts's rules 1 and 4): lock-free readers. A hit is taken between two loads of
// the entry's SEQ (same generation, LIVE); the other cells are read with relaxed atomic loads so
// the compiler neither tears nor caches them. A miss stands only if the table's VERSION was even
// and unchanged across the whole batch (no deletion shifted the index meanwhile); otherwise the
// slot is marked -2 and the JS side confirms it with its own lookup (confirmMiss's waits).
#include "conn-lookup.h"

#include <stdint.h>

#include <string>

#include "common.h"

namespace uvs_conn {
namespace {

// table.ts HeaderCell / layout
constexpr int32_t kHeaderCells = 64;
constexpr int32_t kVersion = 16;
constexpr int32_t kMagicCell = 32;
constexpr int32_t kCapacityCell = 33;
constexpr int32_t kBucketsCell = 34;
constexpr int32_t kSeedCell = 39;
constexpr int32_t kMagic = 0x75767363;  // "uvsc"
// EntryCell
constexpr int32_t kEntryCells = 16;
constexpr int32_t kSeq = 0, kMeta = 1, kCaddr = 2, kVaddr = 3, kPorts = 4, kDaddr = 5, kDportDest = 6, kState = 7,
                  kControl = 10;
constexpr uint32_t kSeqBusy = 1, kSeqLive = 2;
constexpr uint32_t kIdxMask = 0xffffff;
constexpr uint32_t kDead = 0x400;        // StateFlag.DEAD
constexpr uint32_t kKeyMask = 0x7ff;     // Meta.KEY_MASK
constexpr uint32_t kProtoMask = 0xff;    // Meta.PROTO_MASK
constexpr uint32_t kNoDest = 0xffffff;   // NO_DEST
constexpr int kDestHiShift = 24;         // Meta.DEST_HI_SHIFT

// ConnLookupBatch's blocks (src/conn/table.ts BatchField), `size` cells each.
enum IoField : int32_t {
  kIoProto = 0, kIoCaddr, kIoCport, kIoVaddr, kIoVport,
  kIoIndex, kIoSeq, kIoDaddr, kIoDport, kIoDestSlot, kIoState, kIoMeta, kIoControl,
  kIoHash, kIoWarm, kIoFields
};

constexpr int kChunk = 64;

inline uint32_t Ld(const int32_t* p) { return static_cast<uint32_t>(__atomic_load_n(p, __ATOMIC_RELAXED)); }
inline uint32_t LdAcq(const int32_t* p) { return static_cast<uint32_t>(__atomic_load_n(p, __ATOMIC_ACQUIRE)); }

inline uint32_t Rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

// table.ts mix / finish (MurmurHash3's steps).
inline uint32_t Mix(uint32_t h, uint32_t k) {
  k *= 0xcc9e2d51u;
  k = Rotl(k, 15);
  k *= 0x1b873593u;
  h ^= k;
  h = Rotl(h, 13);
  return h * 5 + 0xe6546b64u;
}

inline uint32_t Finish(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  return h ^ (h >> 16);
}

struct Table {
  const int32_t* c;
  uint32_t seed;
  int32_t buckets;
  double scale;  // buckets / 2^32, as table.ts computes it (the same double product and truncation)
  int32_t entryBase, fwdBase, replyBase;

  int32_t Home(uint32_t h) const { return static_cast<int32_t>(static_cast<double>(h) * scale); }
};

// One probe of table.ts's probeForward (reply = false) or probeReply (reply = true): walks the
// bucket run from the home bucket. k0 is keyMeta (forward) or the protocol (reply); a, b and ports
// are the key's words in the order table.ts passes them.
inline bool Probe(const Table& t, bool reply, uint32_t h, uint32_t k0, uint32_t a, uint32_t ports, uint32_t b, int32_t* io,
                  int32_t size, int i) {
  const int32_t* c = t.c;
  const int32_t base = reply ? t.replyBase : t.fwdBase;
  const uint32_t tag = h & 0xff;
  int32_t bk = t.Home(h);
  for (int32_t n = 0; n < t.buckets; n++) {
    const uint32_t v = Ld(c + base + bk);
    if (v == 0) return false;
    if ((v >> 24) == tag) {
      const int32_t* e = c + t.entryBase + static_cast<int64_t>((v & kIdxMask) - 1) * kEntryCells;
      const uint32_t s1 = LdAcq(e + kSeq);
      const uint32_t meta = Ld(e + kMeta);
      bool same;
      if (reply) {
        same = (meta & kProtoMask) == k0 && Ld(e + kDaddr) == a && Ld(e + kCaddr) == b &&
               ((Ld(e + kDportDest) & 0xffff0000u) | (Ld(e + kPorts) >> 16)) == ports;
      } else {
        same = (meta & kKeyMask) == k0 && Ld(e + kCaddr) == a && Ld(e + kPorts) == ports && Ld(e + kVaddr) == b;
      }
      if ((s1 & kSeqLive) != 0 && same) {
        const uint32_t state = Ld(e + kState);
        if ((state & kDead) == 0) {
          const uint32_t dd = Ld(e + kDportDest);
          const uint32_t control = Ld(e + kControl);
          const uint32_t daddr = Ld(e + kDaddr);
          if ((LdAcq(e + kSeq) | kSeqBusy) == (s1 | kSeqBusy)) {
            const uint32_t slot = ((meta >> kDestHiShift) << 16) | (dd & 0xffff);
            io[kIoIndex * size + i] = static_cast<int32_t>((v & kIdxMask) - 1);
            io[kIoSeq * size + i] = static_cast<int32_t>(s1 & ~kSeqBusy);
            io[kIoDaddr * size + i] = static_cast<int32_t>(daddr);
            io[kIoDport * size + i] = static_cast<int32_t>(dd >> 16);
            io[kIoDestSlot * size + i] = slot == kNoDest ? -1 : static_cast<int32_t>(slot);
            io[kIoState * size + i] = static_cast<int32_t>(state);
            io[kIoMeta * size + i] = static_cast<int32_t>(meta);
            io[kIoControl * size + i] = static_cast<int32_t>(control);
            return true;
          }
        }
      }
    }
    if (++bk == t.buckets) bk = 0;
  }
  return false;
}

}  // namespace

Napi::Value LookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsNumber()) {
    ThrowType(env, "connLookupBatch(cells: Int32Array, io: Int32Array, n: number, reply: boolean)");
  }
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  Napi::TypedArray tio = info[1].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_int32_array || tio.TypedArrayType() != napi_int32_array) {
    ThrowType(env, "connLookupBatch: cells and io must be Int32Arrays");
  }
  const int32_t* c = ta.As<Napi::Int32Array>().Data();
  const size_t cellCount = ta.ElementLength();
  int32_t* io = tio.As<Napi::Int32Array>().Data();
  const size_t ioLen = tio.ElementLength();
  const int64_t nArg = info[2].As<Napi::Number>().Int64Value();
  const bool reply = info[3].ToBoolean().Value();

  if (cellCount < static_cast<size_t>(kHeaderCells) || c[kMagicCell] != kMagic) {
    ThrowRange(env, "connLookupBatch: cells do not hold a connection table (bad magic)");
  }
  const int64_t cap = c[kCapacityCell];
  const int64_t buckets = c[kBucketsCell];
  const int64_t expect = kHeaderCells + cap * kEntryCells + 4 * cap + (cap + 31) / 32;
  if (cap <= 0 || buckets != 2 * cap || static_cast<int64_t>(cellCount) != expect) {
    ThrowRange(env, "connLookupBatch: the table's header (capacity " + std::to_string(cap) + ", buckets " +
                        std::to_string(buckets) + ") does not match its " + std::to_string(cellCount) + " cells");
  }
  if (ioLen == 0 || ioLen % kIoFields != 0) {
    ThrowRange(env, "connLookupBatch: io must hold " + std::to_string(static_cast<int>(kIoFields)) + " blocks of the batch size");
  }
  const int32_t size = static_cast<int32_t>(ioLen / kIoFields);
  if (nArg < 0 || nArg > size) ThrowRange(env, "connLookupBatch: n must be in 0.." + std::to_string(size));
  const int32_t n = static_cast<int32_t>(nArg);

  Table t;
  t.c = c;
  t.seed = static_cast<uint32_t>(c[kSeedCell]);
  t.buckets = static_cast<int32_t>(buckets);
  t.scale = static_cast<double>(buckets) / 4294967296.0;
  t.entryBase = kHeaderCells;
  t.fwdBase = kHeaderCells + static_cast<int32_t>(cap) * kEntryCells;
  t.replyBase = t.fwdBase + t.buckets;
  const int32_t base = reply ? t.replyBase : t.fwdBase;

  const uint32_t v1 = LdAcq(c + kVersion);
  int hits = 0;
  bool anyMiss = false;
  uint32_t hs[kChunk];
  uint32_t ks[kChunk];
  uint32_t ps[kChunk];
  for (int32_t from = 0; from < n; from += kChunk) {
    const int m = n - from < kChunk ? n - from : kChunk;
    // Pass 1: hash every key; prefetch its home bucket and (forward) its predicted entry.
    for (int j = 0; j < m; j++) {
      const int i = from + j;
      const uint32_t proto = static_cast<uint32_t>(io[kIoProto * size + i]) & kProtoMask;
      const uint32_t a = static_cast<uint32_t>(io[kIoCaddr * size + i]);
      const uint32_t b = static_cast<uint32_t>(io[kIoVaddr * size + i]);
      const uint32_t ports = (static_cast<uint32_t>(io[kIoCport * size + i]) << 16) |
                             (static_cast<uint32_t>(io[kIoVport * size + i]) & 0xffff);
      // hashForward(keyMeta, caddr, ports, vaddr) / hashReply(proto, daddr, ports, caddr)
      const uint32_t h = Finish(Mix(Mix(Mix((reply ? ~t.seed : t.seed) ^ proto, a), b), ports) ^ 12);
      hs[j] = h;
      ks[j] = proto;
      ps[j] = ports;
      const int32_t bk = t.Home(h);
      __builtin_prefetch(c + base + bk, 0, 3);
      // The predicted slot's line (home bucket / 2), not its buddy's: measured faster than the
      // pair (fewer lines in flight), and the buddies are found by pass 2.
      if (!reply) __builtin_prefetch(c + t.entryBase + static_cast<int64_t>(bk >> 1) * kEntryCells, 0, 3);
    }
    // Pass 2: the entries the home buckets name with the key's tag, unless it is the predicted
    // slot (in flight already).
    for (int j = 0; j < m; j++) {
      const uint32_t h = hs[j];
      const int32_t bk = t.Home(h);
      const uint32_t v = Ld(c + base + bk);
      if (v != 0 && (v >> 24) == (h & 0xff)) {
        const uint32_t slot = (v & kIdxMask) - 1;
        if (reply || slot != (static_cast<uint32_t>(bk) >> 1)) {
          __builtin_prefetch(c + t.entryBase + static_cast<int64_t>(slot) * kEntryCells, 0, 3);
        }
      }
    }
    // Pass 3: the probes, on warm lines.
    for (int j = 0; j < m; j++) {
      const int i = from + j;
      const uint32_t a = static_cast<uint32_t>(io[kIoCaddr * size + i]);
      const uint32_t b = static_cast<uint32_t>(io[kIoVaddr * size + i]);
      io[kIoHash * size + i] = static_cast<int32_t>(hs[j]);
      if (Probe(t, reply, hs[j], ks[j], a, ps[j], b, io, size, i)) {
        hits++;
      } else {
        io[kIoIndex * size + i] = -1;
        anyMiss = true;
      }
    }
  }
  if (anyMiss) {
    const uint32_t v2 = LdAcq(c + kVersion);
    if ((v1 & 1) != 0 || v1 != v2) {
      for (int32_t i = 0; i < n; i++) {
        if (io[kIoIndex * size + i] == -1) io[kIoIndex * size + i] = -2;
      }
    }
  }
  return Napi::Number::New(env, hits);
}

}  // namespace uvs_conn
