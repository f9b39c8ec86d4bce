// uvs_native: the packet I/O that Node.js does not expose — AF_PACKET with a TPACKET_V2 (or V3) RX ring,
// batch transmit by sendmmsg, raw IPv4 sockets (VRRP, IPIP), TUN devices, fd readiness, and the few
// interface look-ups (index, MAC, MTU, ethtool offload flags) the control plane needs.
//
// Loaded only by src/native/addon.ts, which gives it a TypeScript type. The addon is a
// Napi::Addon: Node-API modules are context-aware, and no state lives in statics (save a process-wide
// instance counter), so it loads in every worker thread, each getting its own instance.
//
// Errors: every failing system call throws an Error whose message names the call and its arguments
// and whose `code` is the errno name (EINVAL, ENODEV, ...). On the data path (rx/send) conditions
// that can happen with good input (no room in the socket buffer, a frame the device refuses) are
// counted, not thrown; bad arguments (an offset outside the buffer) are programming errors and throw.

#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sched.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "common.h"
#include "tc-decap.h"
#include "xdp.h"
#include "fast-path.h"
#include "conn-lookup.h"

namespace {

// struct virtio_net_hdr and its flags from <linux/virtio_net.h>, which does not compile as C++ (a
// field named `class`). The layout is the virtio spec's (5.1.6) legacy 10-byte header.
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(virtio_net_hdr) == 10, "virtio_net_hdr is 10 bytes");
constexpr int VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
constexpr int VIRTIO_NET_HDR_F_DATA_VALID = 2;
constexpr int VIRTIO_NET_HDR_GSO_NONE = 0;
constexpr int VIRTIO_NET_HDR_GSO_TCPV4 = 1;
constexpr int VIRTIO_NET_HDR_GSO_UDP = 3;
constexpr int VIRTIO_NET_HDR_GSO_TCPV6 = 4;
constexpr int VIRTIO_NET_HDR_GSO_ECN = 0x80;

// Errors, argument helpers and the rx() descriptor layout (FrameCell): common.h, shared with xdp.cc.

// Classic BPF program from JS: an array of {code, jt, jf, k}.
std::vector<sock_filter> FilterFromJs(Napi::Env env, const Napi::Value& v, const char* where) {
  if (!v.IsArray()) ThrowType(env, std::string(where) + ": filter must be an array of {code, jt, jf, k}");
  Napi::Array arr = v.As<Napi::Array>();
  uint32_t n = arr.Length();
  if (n == 0 || n > BPF_MAXINSNS) {
    ThrowRange(env, std::string(where) + ": filter must have 1.." + std::to_string(BPF_MAXINSNS) + " instructions, got " + std::to_string(n));
  }
  std::vector<sock_filter> prog(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value e = arr.Get(i);
    if (!e.IsObject()) ThrowType(env, std::string(where) + ": filter[" + std::to_string(i) + "] must be an object");
    Napi::Object o = e.As<Napi::Object>();
    std::string at = std::string(where) + ": filter[" + std::to_string(i) + "].";
    prog[i].code = static_cast<uint16_t>(IntValue(env, o.Get("code"), at + "code", 0, 0xffff));
    prog[i].jt = static_cast<uint8_t>(IntValue(env, o.Get("jt"), at + "jt", 0, 0xff));
    prog[i].jf = static_cast<uint8_t>(IntValue(env, o.Get("jf"), at + "jf", 0, 0xff));
    prog[i].k = static_cast<uint32_t>(IntValue(env, o.Get("k"), at + "k", INT32_MIN, 0xffffffffLL));
  }
  return prog;
}

void AttachFilter(Napi::Env env, int fd, const std::vector<sock_filter>& prog) {
  sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(prog.size());
  fprog.filter = const_cast<sock_filter*>(prog.data());
  SetSockOpt(env, fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog,
             "SOL_SOCKET, SO_ATTACH_FILTER, len=" + std::to_string(prog.size()));
}

// ---------------------------------------------------------------------------------------------
// PacketSocket: AF_PACKET, SOCK_RAW, optional RX ring (TPACKET_V2 by default, or V3), sendmmsg batches.

// V2 overflow slots (whole frames read with recvmsg): 64 KiB, the largest GSO frame (gso_max_size),
// plus the Ethernet and VLAN headers; the frame starts at kOverflowFrameAt so the virtio_net_hdr
// fits in front of it, as in a ring slot.
constexpr size_t kOverflowFrameAt = 64;
constexpr size_t kOverflowSlot = (64 << 10) + 4096;

// The ring memory outlives whichever of the socket and its ArrayBuffer goes last: JS may keep the
// ArrayBuffer after the socket is collected, and close() detaches the ArrayBuffer first anyway.
struct RingMem {
  uint8_t* base = nullptr;
  size_t len = 0;
  ~RingMem() {
    if (base != nullptr) munmap(base, len);
  }
};

class PacketSocket : public Napi::ObjectWrap<PacketSocket> {
  friend class RingPoller;

 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PacketSocket",
                       {
                           InstanceAccessor<&PacketSocket::GetFd>("fd"),
                           InstanceAccessor<&PacketSocket::GetRing>("ring"),
                           InstanceAccessor<&PacketSocket::GetBlockSize>("blockSize"),
                           InstanceAccessor<&PacketSocket::GetBlockCount>("blockCount"),
                           InstanceAccessor<&PacketSocket::GetVersion>("version"),
                           InstanceAccessor<&PacketSocket::GetFrameSize>("frameSize"),
                           InstanceAccessor<&PacketSocket::GetFrameCount>("frameCount"),
                           InstanceAccessor<&PacketSocket::GetOverflowSlots>("overflowSlots"),
                           InstanceAccessor<&PacketSocket::GetIfindex>("ifindex"),
                           InstanceAccessor<&PacketSocket::GetTxShed>("txShed"),
                           InstanceAccessor<&PacketSocket::GetVnetHdr>("vnetHdr"),
                           InstanceMethod<&PacketSocket::Rx>("rx"),
                           InstanceMethod<&PacketSocket::Release>("release"),
                           InstanceMethod<&PacketSocket::Wait>("wait"),
                           InstanceMethod<&PacketSocket::Send>("send"),
                           InstanceMethod<&PacketSocket::SetFilter>("setFilter"),
                           InstanceMethod<&PacketSocket::DetachFilter>("detachFilter"),
                           InstanceMethod<&PacketSocket::Stats>("stats"),
                           InstanceMethod<&PacketSocket::TakeError>("takeError"),
                           InstanceMethod<&PacketSocket::Close>("close"),
                       });
  }

  explicit PacketSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketSocket>(info) {
    Napi::Env env = info.Env();
    const char* W = "PacketSocket";
    if (info.Length() < 1 || !info[0].IsObject()) ThrowType(env, "PacketSocket(options): options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    if (!Present(o, "ifindex")) ThrowType(env, "PacketSocket: option ifindex is required (0 = every interface)");
    ifindex_ = static_cast<int>(OptInt(o, W, "ifindex", 0, 0, INT32_MAX));
    int protocol = static_cast<int>(OptInt(o, W, "protocol", ETH_P_ALL, 0, 0xffff));
    int txBatch = static_cast<int>(OptInt(o, W, "txBatch", 256, 1, 1024));

    // Protocol 0 at socket() time: nothing is queued before the filter and ring are in place; the
    // real protocol comes with bind() (the kernel's packet_do_bind hooks the socket in only then).
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd_ < 0) ThrowSys(env, "socket(AF_PACKET, SOCK_RAW, 0)", errno);
    try {
      Setup(env, o, protocol);
    } catch (...) {
      close(fd_);
      fd_ = -1;
      throw;
    }
    msgs_.resize(txBatch);
    iovs_.resize(txBatch);
  }

  ~PacketSocket() override {
    if (fd_ >= 0) close(fd_);
  }

 private:
  void Setup(Napi::Env env, const Napi::Object& o, int protocol) {
    const char* W = "PacketSocket";
    if (Present(o, "filter")) AttachFilter(env, fd_, FilterFromJs(env, o.Get("filter"), W));

    // Must precede the ring: the kernel refuses PACKET_VNET_HDR once a ring exists (EBUSY).
    vnet_ = OptBool(o, W, "vnetHdr", false);
    if (vnet_) SetIntOpt(env, fd_, SOL_PACKET, PACKET_VNET_HDR, 1, "SOL_PACKET, PACKET_VNET_HDR");

    int sndbuf = static_cast<int>(OptInt(o, W, "sndbuf", 0, 0, INT32_MAX));
    if (sndbuf > 0) SetIntOpt(env, fd_, SOL_SOCKET, SO_SNDBUF, sndbuf, "SOL_SOCKET, SO_SNDBUF");

    if (Present(o, "ring")) {
      Napi::Value rv = o.Get("ring");
      if (!rv.IsObject()) ThrowType(env, "PacketSocket: option ring must be an object {blockSize, blockCount, blockTimeoutMs, frameSize}");
      SetupRing(env, rv.As<Napi::Object>());
    }

    if (OptBool(o, W, "qdiscBypass", false)) {
      SetIntOpt(env, fd_, SOL_PACKET, PACKET_QDISC_BYPASS, 1, "SOL_PACKET, PACKET_QDISC_BYPASS");
    }
    if (OptBool(o, W, "ignoreOutgoing", false)) {
      SetIntOpt(env, fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "SOL_PACKET, PACKET_IGNORE_OUTGOING");
    }

    sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(static_cast<uint16_t>(protocol));
    sll.sll_ifindex = ifindex_;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) {
      char hex[8];
      snprintf(hex, sizeof hex, "0x%04x", protocol);
      ThrowSys(env, std::string("bind(AF_PACKET, protocol=") + hex + ", ifindex=" + std::to_string(ifindex_) + ")", errno);
    }

    if (Present(o, "fanout")) {
      Napi::Value fv = o.Get("fanout");
      if (!fv.IsObject()) ThrowType(env, "PacketSocket: option fanout must be an object {group, mode}");
      Napi::Object f = fv.As<Napi::Object>();
      const char* FW = "PacketSocket fanout";
      if (!Present(f, "group")) ThrowType(env, "PacketSocket: fanout.group is required (0..65535)");
      int group = static_cast<int>(OptInt(f, FW, "group", 0, 0, 0xffff));
      int mode = PACKET_FANOUT_HASH;
      std::string modeName = "hash";
      if (Present(f, "mode")) {
        Napi::Value mv = f.Get("mode");
        if (!mv.IsString()) ThrowType(env, "PacketSocket: fanout.mode must be a string");
        modeName = mv.As<Napi::String>().Utf8Value();
        if (modeName == "hash") mode = PACKET_FANOUT_HASH;
        else if (modeName == "lb") mode = PACKET_FANOUT_LB;
        else if (modeName == "cpu") mode = PACKET_FANOUT_CPU;
        else if (modeName == "rollover") mode = PACKET_FANOUT_ROLLOVER;
        else if (modeName == "rnd") mode = PACKET_FANOUT_RND;
        else if (modeName == "qm") mode = PACKET_FANOUT_QM;
        else ThrowRange(env, "PacketSocket: fanout.mode '" + modeName + "' is not one of hash, lb, cpu, rollover, rnd, qm");
      }
      // DEFRAG: the kernel reassembles IPv4 fragments before hashing, so all fragments of a
      // datagram reach the same worker (fanout_demux_hash hashes the flow, which needs the ports).
      if (OptBool(f, FW, "defrag", mode == PACKET_FANOUT_HASH)) mode |= PACKET_FANOUT_FLAG_DEFRAG;
      if (OptBool(f, FW, "rollover", false)) mode |= PACKET_FANOUT_FLAG_ROLLOVER;
      int arg = group | (mode << 16);
      SetSockOpt(env, fd_, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg,
                 "SOL_PACKET, PACKET_FANOUT, group=" + std::to_string(group) + ", mode=" + modeName +
                     ((mode & PACKET_FANOUT_FLAG_DEFRAG) ? "|defrag" : "") + ((mode & PACKET_FANOUT_FLAG_ROLLOVER) ? "|rollover" : ""));
    }
  }

  // No TX ring: tried, and on this kind of lab it cost the same per frame as sendmmsg (the
  // skb work dominates), while tpacket_snd attaches ring pages to the skb as fragments that a
  // local receiver (veth into a namespace) may still hold after the slot is handed back (ip_rcv
  // orphans the skb early), so reusing the slot could change queued data.
  //
  // TPACKET_V2 (the default): one fixed-size slot per frame with its own tp_status, so a frame is
  // the reader's as soon as tpacket_rcv has written it — no block to retire. V3 hands over whole
  // blocks, only when full or after tp_retire_blk_tov (≥ 1 ms): every frame of a quiet link
  // waits that long (libpcap's immediate mode uses V2 for this reason).
  //
  // V2 slots are small (frameSize, sized by the caller from the largest MTU). A frame larger than
  // its slot (a GSO super-frame, up to 64 KiB) is handled by PACKET_COPY_THRESH: tpacket_rcv
  // (net/packet/af_packet.c) then also queues the whole skb on the socket's receive queue (if
  // sk_rmem_alloc < sk_rcvbuf), writes a truncated copy into the slot and sets TP_STATUS_COPY; rx()
  // reads the whole frame with recvmsg() into an overflow slot that follows the ring in the same
  // buffer. The slot and the queued skb are written under the same receive-queue lock, so the
  // queue holds exactly the COPY frames, in ring order. Without room in the receive queue the slot
  // holds a truncated frame without TP_STATUS_COPY: caplen < wirelen, and the caller drops it.
  void SetupRing(Napi::Env env, const Napi::Object& r) {
    const char* W = "PacketSocket ring";
    long page = sysconf(_SC_PAGESIZE);
    version_ = static_cast<int>(OptInt(r, W, "version", 2, 2, 3));
    uint32_t blockSize = 0, blockCount = 0, frameSize = 0, frameCount = 0, timeoutMs = 0;
    if (version_ == 3) {
      // 256 KiB blocks hold a 64 KiB GSO super-frame several times over; 1 ms block timeout so a
      // quiet link does not hold a half-filled block back (tp_retire_blk_tov).
      blockSize = static_cast<uint32_t>(OptInt(r, W, "blockSize", 1 << 18, page, 1 << 30));
      blockCount = static_cast<uint32_t>(OptInt(r, W, "blockCount", 32, 1, 1 << 16));
      timeoutMs = static_cast<uint32_t>(OptInt(r, W, "blockTimeoutMs", 1, 0, 60000));
      frameSize = static_cast<uint32_t>(OptInt(r, W, "frameSize", 2048, TPACKET_ALIGNMENT, 1 << 30));
      if (Present(r, "frameCount") || Present(r, "overflowSlots") || Present(r, "rcvbuf")) {
        ThrowRange(env, "PacketSocket: ring.frameCount, ring.overflowSlots and ring.rcvbuf apply to version 2 only");
      }
    } else {
      if (Present(r, "blockTimeoutMs")) ThrowRange(env, "PacketSocket: ring.blockTimeoutMs applies to version 3 only (V2 hands over each frame at once)");
      if (Present(r, "blockCount")) ThrowRange(env, "PacketSocket: ring.blockCount applies to version 3 only (V2: ring.frameCount)");
      frameSize = static_cast<uint32_t>(OptInt(r, W, "frameSize", 2048, TPACKET2_HDRLEN + 64, 1 << 20));
      blockSize = static_cast<uint32_t>(OptInt(r, W, "blockSize", frameSize > (1u << 16) ? frameSize : 1u << 16, page, 1 << 30));
      frameCount = static_cast<uint32_t>(OptInt(r, W, "frameCount", 4096, 1, 1 << 22));
      overflowSlots_ = static_cast<uint32_t>(OptInt(r, W, "overflowSlots", 8, 0, 1024));
      rcvbuf_ = static_cast<int>(OptInt(r, W, "rcvbuf", 4 << 20, 0, INT32_MAX));
    }
    if (blockSize % page != 0) ThrowRange(env, "PacketSocket: ring.blockSize " + std::to_string(blockSize) + " must be a multiple of the page size " + std::to_string(page));
    if (frameSize % TPACKET_ALIGNMENT != 0 || blockSize % frameSize != 0) {
      ThrowRange(env, "PacketSocket: ring.frameSize " + std::to_string(frameSize) + " must be a multiple of " + std::to_string(TPACKET_ALIGNMENT) + " dividing blockSize " + std::to_string(blockSize));
    }
    if (version_ == 2) {
      uint32_t perBlock = blockSize / frameSize;
      blockCount = (frameCount + perBlock - 1) / perBlock;
      frameCount = blockCount * perBlock;
      // The kernel queues COPY frames only while sk_rmem_alloc < sk_rcvbuf: room for several 64 KiB
      // super-frames (their truesize) between two rx() calls. FORCE (CAP_NET_ADMIN) passes
      // net.core.rmem_max; without the capability, the plain option up to rmem_max.
      if (rcvbuf_ > 0 && setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_, sizeof rcvbuf_) < 0) {
        if (errno != EPERM) ThrowSys(env, "setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, " + std::to_string(rcvbuf_) + ")", errno);
        SetIntOpt(env, fd_, SOL_SOCKET, SO_RCVBUF, rcvbuf_, "SOL_SOCKET, SO_RCVBUF");
      }
      if (overflowSlots_ > 0) SetIntOpt(env, fd_, SOL_PACKET, PACKET_COPY_THRESH, 1, "SOL_PACKET, PACKET_COPY_THRESH");
      SetIntOpt(env, fd_, SOL_PACKET, PACKET_VERSION, TPACKET_V2, "SOL_PACKET, PACKET_VERSION, TPACKET_V2");
      tpacket_req req;
      memset(&req, 0, sizeof req);
      req.tp_block_size = blockSize;
      req.tp_block_nr = blockCount;
      req.tp_frame_size = frameSize;
      req.tp_frame_nr = frameCount;
      SetSockOpt(env, fd_, SOL_PACKET, PACKET_RX_RING, &req, sizeof req,
                 "SOL_PACKET, PACKET_RX_RING, TPACKET_V2, block_size=" + std::to_string(blockSize) + ", block_nr=" +
                     std::to_string(blockCount) + ", frame_size=" + std::to_string(frameSize) + ", frame_nr=" + std::to_string(frameCount));
    } else {
      SetIntOpt(env, fd_, SOL_PACKET, PACKET_VERSION, TPACKET_V3, "SOL_PACKET, PACKET_VERSION, TPACKET_V3");
      tpacket_req3 req;
      memset(&req, 0, sizeof req);
      req.tp_block_size = blockSize;
      req.tp_block_nr = blockCount;
      req.tp_frame_size = frameSize;
      req.tp_frame_nr = (blockSize / frameSize) * blockCount;
      req.tp_retire_blk_tov = timeoutMs;
      SetSockOpt(env, fd_, SOL_PACKET, PACKET_RX_RING, &req, sizeof req,
                 "SOL_PACKET, PACKET_RX_RING, block_size=" + std::to_string(blockSize) + ", block_nr=" +
                     std::to_string(blockCount) + ", frame_size=" + std::to_string(frameSize) +
                     ", retire_blk_tov=" + std::to_string(timeoutMs));
    }
    size_t ringLen = static_cast<size_t>(blockSize) * blockCount;
    size_t total = ringLen + static_cast<size_t>(overflowSlots_) * kOverflowSlot;
    // One buffer for JS: the ring, then the overflow slots. Reserve the whole range anonymously,
    // then map the ring over its start (MAP_FIXED replaces that part of the reservation).
    void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) ThrowSys(env, "mmap(anonymous, length=" + std::to_string(total) + ")", errno);
    void* ring = mmap(base, ringLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE | MAP_FIXED, fd_, 0);
    if (ring == MAP_FAILED) {
      int err = errno;
      munmap(base, total);
      ThrowSys(env, "mmap(PACKET_RX_RING, length=" + std::to_string(ringLen) + ")", err);
    }
    ring_ = std::make_shared<RingMem>();
    ring_->base = static_cast<uint8_t*>(base);
    ring_->len = total;
    ringLen_ = ringLen;
    blockSize_ = blockSize;
    blockCount_ = blockCount;
    frameSize_ = frameSize;
    frameCount_ = frameCount;
    auto* hold = new std::shared_ptr<RingMem>(ring_);
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
        env, base, total, [](Napi::Env, void*, std::shared_ptr<RingMem>* h) { delete h; }, hold);
    ringRef_ = Napi::Persistent(ab);
  }

  void CheckOpen(Napi::Env env, const char* what) {
    if (fd_ < 0) throw Napi::Error::New(env, std::string("PacketSocket.") + what + ": socket is closed");
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value GetRing(const Napi::CallbackInfo& info) {
    if (ringRef_.IsEmpty()) return info.Env().Undefined();
    return ringRef_.Value();
  }
  Napi::Value GetBlockSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), blockSize_); }
  Napi::Value GetBlockCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), blockCount_); }
  Napi::Value GetIfindex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }
  // Frames shed by send() because the socket's send memory was full (EAGAIN) or the device or
  // qdisc had no room (ENOBUFS), since open: a plain read, no object, for the worker's counters.
  Napi::Value GetTxShed(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(txShed_)); }
  Napi::Value GetVersion(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ring_ ? version_ : 0); }
  Napi::Value GetFrameSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), frameSize_); }
  Napi::Value GetFrameCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), frameCount_); }
  Napi::Value GetOverflowSlots(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), overflowSlots_); }
  Napi::Value GetVnetHdr(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), vnet_); }

  tpacket2_hdr* Frame2(uint32_t i) const {
    return reinterpret_cast<tpacket2_hdr*>(ring_->base + static_cast<size_t>(i) * frameSize_);
  }

  tpacket_block_desc* Block(uint32_t i) const {
    return reinterpret_cast<tpacket_block_desc*>(ring_->base + static_cast<size_t>(i) * blockSize_);
  }

  // True when a frame can be read now without waiting.
  bool FrameReady() const {
    if (version_ == 2) {
      if (held_ == frameCount_) return false;
      return (__atomic_load_n(&Frame2(cur_)->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
    }
    if (nextFrame_ != nullptr) return true;
    if (held_ == blockCount_) return false;
    return (__atomic_load_n(&Block(cur_)->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
  }

  // rx(desc, maxFrames): the ready frames, in ring order, FRAME_STRIDE cells each. Continues where
  // the last call stopped (also inside a block). Frames stay valid until release().
  Napi::Value Rx(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "rx");
    if (!ring_) throw Napi::Error::New(env, "PacketSocket.rx: socket was opened without a ring");
    size_t cells;
    uint32_t* desc = Cells32(env, info[0], &cells, "PacketSocket.rx: desc");
    uint32_t max = static_cast<uint32_t>(cells / kFrameStride);
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      uint32_t want = static_cast<uint32_t>(IntArg(info, 1, "PacketSocket.rx: maxFrames", 0, UINT32_MAX));
      if (want > max) ThrowRange(env, "PacketSocket.rx: maxFrames " + std::to_string(want) + " needs " + std::to_string(want * kFrameStride) + " cells, desc has " + std::to_string(cells));
      max = want;
    }
    if (version_ == 2) return Napi::Number::New(env, Rx2(desc, max));
    uint32_t n = 0;
    const size_t hdrLen = TPACKET_ALIGN(sizeof(tpacket3_hdr));
    while (n < max) {
      if (nextFrame_ == nullptr) {
        if (held_ == blockCount_) break;  // every block is ours: the caller must release()
        tpacket_block_desc* b = Block(cur_);
        if ((__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) break;
        framesLeft_ = b->hdr.bh1.num_pkts;
        if (framesLeft_ == 0) {
          NextBlock();
          continue;
        }
        nextFrame_ = reinterpret_cast<uint8_t*>(b) + b->hdr.bh1.offset_to_first_pkt;
      }
      const tpacket3_hdr* h = reinterpret_cast<const tpacket3_hdr*>(nextFrame_);
      const sockaddr_ll* sll = reinterpret_cast<const sockaddr_ll*>(nextFrame_ + hdrLen);
      uint32_t* d = desc + static_cast<size_t>(n) * kFrameStride;
      d[kFrameOffset] = static_cast<uint32_t>((nextFrame_ - ring_->base) + h->tp_mac);
      d[kFrameCaplen] = h->tp_snaplen;
      d[kFrameWirelen] = h->tp_len;
      d[kFrameStatus] = h->tp_status;
      d[kFrameVlanTci] = h->hv1.tp_vlan_tci;
      d[kFrameVlanTpid] = h->hv1.tp_vlan_tpid;
      d[kFramePkttype] = sll->sll_pkttype;
      d[kFrameIfindex] = static_cast<uint32_t>(sll->sll_ifindex);
      n++;
      if (--framesLeft_ == 0) {
        NextBlock();
      } else {
        nextFrame_ += h->tp_next_offset;
      }
    }
    return Napi::Number::New(env, n);
  }

  // V2: slots in ring order from cur_, each the reader's once its tp_status has TP_STATUS_USER.
  // Stops at the first slot still the kernel's, when every slot is held (the caller must
  // release()), or at a COPY frame when the overflow slots are used up (it is read next time).
  uint32_t Rx2(uint32_t* desc, uint32_t max) {
    const size_t sllOff = TPACKET_ALIGN(sizeof(tpacket2_hdr));
    const size_t vnetLen = vnet_ ? sizeof(virtio_net_hdr) : 0;
    uint32_t n = 0;
    while (n < max && held_ < frameCount_) {
      tpacket2_hdr* h = Frame2(cur_);
      uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if ((status & TP_STATUS_USER) == 0) break;
      uint8_t* frame = reinterpret_cast<uint8_t*>(h);
      const sockaddr_ll* sll = reinterpret_cast<const sockaddr_ll*>(frame + sllOff);
      uint32_t* d = desc + static_cast<size_t>(n) * kFrameStride;
      d[kFrameOffset] = static_cast<uint32_t>((frame - ring_->base) + h->tp_mac);
      d[kFrameCaplen] = h->tp_snaplen;
      d[kFrameWirelen] = h->tp_len;
      if (status & TP_STATUS_COPY) {
        if (overflowUsed_ == overflowSlots_) break;  // no room left this batch: next rx() reads it
        // The whole frame waits on the receive queue; with PACKET_VNET_HDR recvmsg puts the
        // virtio_net_hdr first (packet_rcv_vnet), so it lands just before the Ethernet header, as
        // in a ring slot.
        uint8_t* slot = ring_->base + ringLen_ + static_cast<size_t>(overflowUsed_) * kOverflowSlot;
        uint8_t* at = slot + kOverflowFrameAt - vnetLen;
        iovec iov = {at, kOverflowSlot - (kOverflowFrameAt - vnetLen)};
        msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t r;
        do {
          r = recvmsg(fd_, &mh, MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        if (r >= static_cast<ssize_t>(vnetLen)) {
          overflowUsed_++;
          copied_++;
          d[kFrameOffset] = static_cast<uint32_t>(slot + kOverflowFrameAt - ring_->base);
          d[kFrameCaplen] = static_cast<uint32_t>(r - vnetLen);
          // MSG_TRUNC: larger than an overflow slot (BIG TCP): caplen < wirelen, dropped.
          if ((mh.msg_flags & MSG_TRUNC) == 0) d[kFrameWirelen] = static_cast<uint32_t>(r - vnetLen);
        } else {
          copyMissed_++;  // nothing queued after all: the truncated slot stands (caplen < wirelen)
        }
      }
      d[kFrameStatus] = status;
      d[kFrameVlanTci] = h->tp_vlan_tci;
      d[kFrameVlanTpid] = h->tp_vlan_tpid;
      d[kFramePkttype] = sll->sll_pkttype;
      d[kFrameIfindex] = static_cast<uint32_t>(sll->sll_ifindex);
      n++;
      held_++;
      cur_ = cur_ + 1 == frameCount_ ? 0 : cur_ + 1;
    }
    return n;
  }

  void NextBlock() {
    nextFrame_ = nullptr;
    framesLeft_ = 0;
    held_++;
    cur_ = (cur_ + 1) % blockCount_;
  }

  // release(): gives every fully read block back to the kernel. A block read only in part stays
  // with us until a later rx() finishes it.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "release");
    uint32_t n = held_;
    if (version_ == 2) {
      // Every slot returned since the last release, oldest first; the release store orders our
      // reads (and in-place rewrites) of the slot before the kernel may reuse it.
      for (uint32_t i = 0; i < n; i++) {
        __atomic_store_n(&Frame2(releaseFrom_)->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        releaseFrom_ = releaseFrom_ + 1 == frameCount_ ? 0 : releaseFrom_ + 1;
      }
      held_ = 0;
      overflowUsed_ = 0;
      return Napi::Number::New(env, n);
    }
    for (uint32_t i = 0; i < n; i++) {
      __atomic_store_n(&Block(releaseFrom_)->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      releaseFrom_ = (releaseFrom_ + 1) % blockCount_;
    }
    held_ = 0;
    return Napi::Number::New(env, n);
  }

  // wait(timeoutMs): true when rx() has something (at once if a block is already ready), false after
  // the timeout. Blocks this thread for at most timeoutMs — meant for a worker's own loop, which
  // calls it with a short timeout and yields to its event loop between rounds.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "wait");
    int timeoutMs = static_cast<int>(IntArg(info, 0, "PacketSocket.wait: timeoutMs", 0, INT32_MAX));
    if (ring_) {
      if (FrameReady()) return Napi::Boolean::New(env, true);
      PollOne(env, fd_, POLLIN | POLLRDNORM | POLLERR, timeoutMs, "AF_PACKET");
      return Napi::Boolean::New(env, FrameReady());
    }
    return Napi::Boolean::New(env, PollOne(env, fd_, POLLIN | POLLRDNORM | POLLERR, timeoutMs, "AF_PACKET"));
  }

  // send(buffer, offsets, lengths, count): one sendmmsg per txBatch frames. Frames point into any
  // ArrayBuffer — a TX buffer, or a ring (this socket's or another's) to forward in place. With
  // vnetHdr every frame starts with its 10-byte virtio_net_hdr (for a ring frame: offset - 10).
  // Returns how many the kernel took; the rest are counted in stats() (txErrors, txDropped).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "send");
    if (info.Length() < 4) ThrowType(env, "PacketSocket.send(buffer, offsets, lengths, count): 4 arguments expected");
    Bytes buf = BytesOf(env, info[0], "PacketSocket.send: buffer");
    size_t nOff, nLen;
    const uint32_t* off = Cells32(env, info[1], &nOff, "PacketSocket.send: offsets");
    const uint32_t* len = Cells32(env, info[2], &nLen, "PacketSocket.send: lengths");
    uint32_t count = static_cast<uint32_t>(IntArg(info, 3, "PacketSocket.send: count", 0, UINT32_MAX));
    if (count > nOff || count > nLen) {
      ThrowRange(env, "PacketSocket.send: count " + std::to_string(count) + " exceeds offsets (" + std::to_string(nOff) + ") or lengths (" + std::to_string(nLen) + ")");
    }
    for (uint32_t i = 0; i < count; i++) {
      if (len[i] == 0 || static_cast<uint64_t>(off[i]) + len[i] > buf.len) {
        ThrowRange(env, "PacketSocket.send: frame " + std::to_string(i) + " (offset " + std::to_string(off[i]) + ", length " + std::to_string(len[i]) + ") is outside the buffer of " + std::to_string(buf.len) + " bytes");
      }
    }
    uint32_t sent = SendMmsg(env, buf, off, len, count);
    return Napi::Number::New(env, sent);
  }

  uint32_t SendMmsg(Napi::Env env, const Bytes& buf, const uint32_t* off, const uint32_t* len, uint32_t count) {
    const uint32_t batch = static_cast<uint32_t>(msgs_.size());
    uint32_t sent = 0;
    uint32_t i = 0;
    while (i < count) {
      uint32_t chunk = count - i < batch ? count - i : batch;
      for (uint32_t j = 0; j < chunk; j++) {
        iovs_[j].iov_base = buf.data + off[i + j];
        iovs_[j].iov_len = len[i + j];
        memset(&msgs_[j], 0, sizeof(mmsghdr));
        msgs_[j].msg_hdr.msg_iov = &iovs_[j];
        msgs_[j].msg_hdr.msg_iovlen = 1;
      }
      // MSG_DONTWAIT: the socket is blocking (the ring needs no O_NONBLOCK), and a blocking
      // sendmmsg sleeps in sock_alloc_send_skb once the socket's send memory is used up (a qdisc
      // or a slow device holding its frames): that stalled the whole worker. Now the kernel says
      // EAGAIN and the rest of the batch is shed, as a full queue would drop it.
      int r = sendmmsg(fd_, msgs_.data(), chunk, MSG_DONTWAIT);
      if (r < 0) {
        int err = errno;
        if (err == EINTR) continue;
        lastTxErrno_ = err;
        txErrors_++;
        if (err == EAGAIN || err == EWOULDBLOCK) {
          // Socket send memory full: shed the rest of this batch, as a full queue would.
          txDropped_ += count - i;
          txShed_ += count - i;
          break;
        }
        if (err == EBADF || err == ENOTSOCK || err == EFAULT) ThrowSys(env, "sendmmsg(fd=" + std::to_string(fd_) + ", vlen=" + std::to_string(chunk) + ")", err);
        // The first frame of the chunk was refused: EMSGSIZE, EINVAL (a bad vnet header), ENETDOWN,
        // or ENOBUFS — the device or qdisc dropped it (net_xmit_errno(NET_XMIT_DROP)), which with
        // PACKET_QDISC_BYPASS is also what packet_direct_xmit does with a GSO frame the device
        // cannot take whole. Drop that frame and go on with the next.
        txDropped_++;
        if (err == ENOBUFS) txShed_++;
        i++;
        continue;
      }
      sent += static_cast<uint32_t>(r);
      i += static_cast<uint32_t>(r);
    }
    return sent;
  }

  Napi::Value SetFilter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "setFilter");
    AttachFilter(env, fd_, FilterFromJs(env, info.Length() > 0 ? info[0] : env.Undefined(), "PacketSocket.setFilter"));
    return env.Undefined();
  }

  Napi::Value DetachFilter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "detachFilter");
    int zero = 0;
    if (setsockopt(fd_, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof zero) < 0 && errno != ENOENT) {
      ThrowSys(env, "setsockopt(SOL_SOCKET, SO_DETACH_FILTER)", errno);
    }
    return env.Undefined();
  }

  // stats(): the kernel's PACKET_STATISTICS (reset by each read, so these are deltas since the
  // last call) and this socket's transmit counters (totals).
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "stats");
    tpacket_stats_v3 st;
    memset(&st, 0, sizeof st);
    socklen_t sl = sizeof st;
    if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &sl) < 0) ThrowSys(env, "getsockopt(SOL_PACKET, PACKET_STATISTICS)", errno);
    Napi::Object o = Napi::Object::New(env);
    o.Set("packets", Napi::Number::New(env, st.tp_packets));
    o.Set("drops", Napi::Number::New(env, st.tp_drops));
    o.Set("freezeQueueCount", Napi::Number::New(env, ring_ && version_ == 3 ? st.tp_freeze_q_cnt : 0));
    o.Set("copied", Napi::Number::New(env, static_cast<double>(copied_)));
    o.Set("copyMissed", Napi::Number::New(env, static_cast<double>(copyMissed_)));
    o.Set("txErrors", Napi::Number::New(env, static_cast<double>(txErrors_)));
    o.Set("txDropped", Napi::Number::New(env, static_cast<double>(txDropped_)));
    o.Set("txShed", Napi::Number::New(env, static_cast<double>(txShed_)));
    o.Set("lastTxError", lastTxErrno_ ? Napi::Value(Napi::String::New(env, ErrnoName(lastTxErrno_))) : env.Null());
    return o;
  }

  // takeError(): the socket's pending error (SO_ERROR, which clears it) as an errno name, or null.
  // packet_notifier sets ENETDOWN when the bound device goes down; while it is pending, poll reports
  // POLLERR, which makes libuv stop an FdWatcher (it calls back with UV_EBADF): the owner takes the
  // error and starts the watcher again, and the ring receives again once the device is up.
  Napi::Value TakeError(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "takeError");
    return TakeSocketError(env, fd_);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
    if (!ringRef_.IsEmpty()) {
      // Detach first: JS can no longer touch the ring; the mapping goes with the last owner.
      Napi::ArrayBuffer ab = ringRef_.Value();
      if (!ab.IsDetached()) ab.Detach();
      ringRef_.Reset();
    }
    ring_.reset();
    nextFrame_ = nullptr;
    return env.Undefined();
  }

  int fd_ = -1;
  int ifindex_ = 0;
  bool vnet_ = false;
  std::shared_ptr<RingMem> ring_;
  Napi::Reference<Napi::ArrayBuffer> ringRef_;
  int version_ = 2;
  size_t ringLen_ = 0;        // the kernel's ring; overflow slots follow it in the same buffer
  uint32_t blockSize_ = 0;
  uint32_t blockCount_ = 0;
  uint32_t frameSize_ = 0;
  uint32_t frameCount_ = 0;   // V2 slots
  uint32_t overflowSlots_ = 0;
  uint32_t overflowUsed_ = 0;
  int rcvbuf_ = 0;
  uint64_t copied_ = 0;       // COPY frames read whole from the receive queue
  uint64_t copyMissed_ = 0;   // COPY frames whose queued copy was not there
  uint32_t cur_ = 0;          // V3: block rx() reads; V2: slot rx() reads
  uint32_t releaseFrom_ = 0;  // oldest block (V2: slot) not yet given back
  uint32_t held_ = 0;         // V3: fully read blocks not yet given back; V2: slots read
  uint8_t* nextFrame_ = nullptr;
  uint32_t framesLeft_ = 0;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  uint64_t txErrors_ = 0;
  uint64_t txDropped_ = 0;
  uint64_t txShed_ = 0;
  int lastTxErrno_ = 0;
};

// ---------------------------------------------------------------------------------------------
// RawSocket: AF_INET, SOCK_RAW, one IP protocol (112 VRRP, 4 IPIP). Receives with the IP header
// (raw IPv4 sockets always deliver it) and the arrival ifindex (IP_PKTINFO).

class RawSocket : public Napi::ObjectWrap<RawSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RawSocket",
                       {
                           InstanceAccessor<&RawSocket::GetFd>("fd"),
                           InstanceMethod<&RawSocket::AddMembership>("addMembership"),
                           InstanceMethod<&RawSocket::DropMembership>("dropMembership"),
                           InstanceMethod<&RawSocket::Recv>("recv"),
                           InstanceMethod<&RawSocket::Send>("send"),
                           InstanceMethod<&RawSocket::Wait>("wait"),
                           InstanceMethod<&RawSocket::Close>("close"),
                       });
  }

  explicit RawSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RawSocket>(info) {
    Napi::Env env = info.Env();
    const char* W = "RawSocket";
    if (info.Length() < 1 || !info[0].IsObject()) ThrowType(env, "RawSocket(options): options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    if (!Present(o, "protocol")) ThrowType(env, "RawSocket: option protocol is required (112 VRRP, 4 IPIP)");
    protocol_ = static_cast<int>(OptInt(o, W, "protocol", 0, 1, 255));
    fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol_);
    if (fd_ < 0) ThrowSys(env, "socket(AF_INET, SOCK_RAW, " + std::to_string(protocol_) + ")", errno);
    try {
      Setup(env, o);
    } catch (...) {
      close(fd_);
      fd_ = -1;
      throw;
    }
  }

  ~RawSocket() override {
    if (fd_ >= 0) close(fd_);
  }

 private:
  void Setup(Napi::Env env, const Napi::Object& o) {
    const char* W = "RawSocket";
    SetIntOpt(env, fd_, IPPROTO_IP, IP_PKTINFO, 1, "IPPROTO_IP, IP_PKTINFO");
    if (Present(o, "device")) {
      Napi::Value dv = o.Get("device");
      if (!dv.IsString()) ThrowType(env, "RawSocket: option device must be an interface name");
      std::string dev = dv.As<Napi::String>().Utf8Value();
      SetSockOpt(env, fd_, SOL_SOCKET, SO_BINDTODEVICE, dev.c_str(), static_cast<socklen_t>(dev.size() + 1), "SOL_SOCKET, SO_BINDTODEVICE, " + dev);
    }
    if (OptBool(o, W, "hdrincl", false)) SetIntOpt(env, fd_, IPPROTO_IP, IP_HDRINCL, 1, "IPPROTO_IP, IP_HDRINCL");
    if (Present(o, "ttl")) SetIntOpt(env, fd_, IPPROTO_IP, IP_TTL, static_cast<int>(OptInt(o, W, "ttl", 64, 1, 255)), "IPPROTO_IP, IP_TTL");
    if (Present(o, "multicastTtl")) {
      SetIntOpt(env, fd_, IPPROTO_IP, IP_MULTICAST_TTL, static_cast<int>(OptInt(o, W, "multicastTtl", 1, 0, 255)), "IPPROTO_IP, IP_MULTICAST_TTL");
    }
    if (Present(o, "multicastLoop")) {
      SetIntOpt(env, fd_, IPPROTO_IP, IP_MULTICAST_LOOP, OptBool(o, W, "multicastLoop", false) ? 1 : 0, "IPPROTO_IP, IP_MULTICAST_LOOP");
    }
    // Off by default here: with IP_MULTICAST_ALL on (the kernel default) a raw socket would get
    // the groups joined by every socket of the host, not just its own.
    SetIntOpt(env, fd_, IPPROTO_IP, IP_MULTICAST_ALL, OptBool(o, W, "multicastAll", false) ? 1 : 0, "IPPROTO_IP, IP_MULTICAST_ALL");
    if (Present(o, "multicastIf")) {
      ip_mreqn m;
      memset(&m, 0, sizeof m);
      m.imr_ifindex = static_cast<int>(OptInt(o, W, "multicastIf", 0, 1, INT32_MAX));
      SetSockOpt(env, fd_, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m, "IPPROTO_IP, IP_MULTICAST_IF, ifindex=" + std::to_string(m.imr_ifindex));
    }
    int rcvbuf = static_cast<int>(OptInt(o, W, "rcvbuf", 0, 0, INT32_MAX));
    if (rcvbuf > 0) SetIntOpt(env, fd_, SOL_SOCKET, SO_RCVBUF, rcvbuf, "SOL_SOCKET, SO_RCVBUF");
    if (Present(o, "bindAddress")) {
      sockaddr_in sa;
      memset(&sa, 0, sizeof sa);
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = Ipv4Arg(env, o.Get("bindAddress"), "RawSocket: option bindAddress");
      if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) ThrowSys(env, "bind(AF_INET, " + Ipv4Text(sa.sin_addr.s_addr) + ")", errno);
    }
  }

  void CheckOpen(Napi::Env env, const char* what) {
    if (fd_ < 0) throw Napi::Error::New(env, std::string("RawSocket.") + what + ": socket is closed");
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  Napi::Value Membership(const Napi::CallbackInfo& info, bool add) {
    Napi::Env env = info.Env();
    const char* name = add ? "addMembership" : "dropMembership";
    CheckOpen(env, name);
    if (info.Length() < 2) ThrowType(env, std::string("RawSocket.") + name + "(group, ifindex): 2 arguments expected");
    ip_mreqn m;
    memset(&m, 0, sizeof m);
    m.imr_multiaddr.s_addr = Ipv4Arg(env, info[0], std::string("RawSocket.") + name + ": group");
    m.imr_ifindex = static_cast<int>(IntArg(info, 1, "ifindex", 0, INT32_MAX));
    int opt = add ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP;
    SetSockOpt(env, fd_, IPPROTO_IP, opt, &m, sizeof m,
               std::string("IPPROTO_IP, ") + (add ? "IP_ADD_MEMBERSHIP" : "IP_DROP_MEMBERSHIP") + ", group=" +
                   Ipv4Text(m.imr_multiaddr.s_addr) + ", ifindex=" + std::to_string(m.imr_ifindex));
    return env.Undefined();
  }
  Napi::Value AddMembership(const Napi::CallbackInfo& info) { return Membership(info, true); }
  Napi::Value DropMembership(const Napi::CallbackInfo& info) { return Membership(info, false); }

  // recv(buffer, info): one datagram, IP header included, or -1 when none is queued. info (an
  // Int32Array/Uint32Array of >= 4 cells) gets [ifindex, source (host order), header destination
  // (host order), truncated ? 1 : 0].
  Napi::Value Recv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "recv");
    if (info.Length() < 2) ThrowType(env, "RawSocket.recv(buffer, info): 2 arguments expected");
    Bytes buf = BytesOf(env, info[0], "RawSocket.recv: buffer");
    size_t cells;
    uint32_t* out = Cells32(env, info[1], &cells, "RawSocket.recv: info");
    if (cells < 4) ThrowRange(env, "RawSocket.recv: info needs 4 cells, has " + std::to_string(cells));
    sockaddr_in from;
    iovec iov = {buf.data, buf.len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))];
    msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t r;
    do {
      r = recvmsg(fd_, &mh, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
      ThrowSys(env, "recvmsg(raw IPv4 protocol " + std::to_string(protocol_) + ")", errno);
    }
    out[0] = 0;
    out[1] = ntohl(from.sin_addr.s_addr);
    out[2] = 0;
    out[3] = (mh.msg_flags & MSG_TRUNC) ? 1 : 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof pi);
        out[0] = static_cast<uint32_t>(pi.ipi_ifindex);
        out[2] = ntohl(pi.ipi_addr.s_addr);
      }
    }
    return Napi::Number::New(env, static_cast<double>(r));
  }

  // send(buffer, length, destination): one datagram (the payload after the IP header, or the
  // whole packet with hdrincl). Returns bytes sent, or -1 when the socket buffer is full.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "send");
    if (info.Length() < 3) ThrowType(env, "RawSocket.send(buffer, length, destination): 3 arguments expected");
    Bytes buf = BytesOf(env, info[0], "RawSocket.send: buffer");
    size_t len = static_cast<size_t>(IntArg(info, 1, "RawSocket.send: length", 1, INT32_MAX));
    if (len > buf.len) ThrowRange(env, "RawSocket.send: length " + std::to_string(len) + " exceeds the buffer (" + std::to_string(buf.len) + " bytes)");
    sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = Ipv4Arg(env, info[2], "RawSocket.send: destination");
    ssize_t r;
    do {
      r = sendto(fd_, buf.data, len, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return Napi::Number::New(env, -1);
      ThrowSys(env, "sendto(raw IPv4 protocol " + std::to_string(protocol_) + ", " + Ipv4Text(to.sin_addr.s_addr) + ", length=" + std::to_string(len) + ")", errno);
    }
    return Napi::Number::New(env, static_cast<double>(r));
  }

  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "wait");
    int timeoutMs = static_cast<int>(IntArg(info, 0, "RawSocket.wait: timeoutMs", 0, INT32_MAX));
    return Napi::Boolean::New(env, PollOne(env, fd_, POLLIN, timeoutMs, "raw IPv4"));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    return info.Env().Undefined();
  }

  int fd_ = -1;
  int protocol_ = 0;
};

// ---------------------------------------------------------------------------------------------
// RingPoller: busy-polls the RX rings of a set of PacketSockets, the user-space counterpart of the
// kernel's busy polling. SO_BUSY_POLL / SO_PREFER_BUSY_POLL poll a device's NAPI context from
// inside poll()/recvmsg() (sock_poll → sk_busy_loop, when the socket has a NAPI id); a ring is read
// without any system call, and veth (the labs) has no NAPI context unless GRO or XDP is on, so the
// spin is here, on the rings' slot status words. A worker that just forwarded frames spins here for a few hundred µs
// instead of going back to epoll_wait: a frame that comes meanwhile is taken at once, with the
// thread awake and its caches warm, rather than after a wake-up (an IPI to a halted vCPU, the
// scheduler, libuv, a JS callback) and a cold run of the pipeline — native/README.md
// measures both. spin() only reads each ring's next slot status (one load per socket per round),
// so it touches no kernel state, and it ends when its window passes without a frame: an idle
// worker sleeps as before.

// SpinWatchdog: a bound on how long a SCHED_IDLE spin can be kept off its CPU. A SCHED_IDLE thread
// has weight 3 against a nice-0 thread's 1024: while a thread that never blocks (a CPU hog, a
// packet generator, ksoftirqd under a flood) shares its CPU, the scheduler gives it a slice about
// once a second, and the worker stalled inside spin() with its ring full — measured: a flooded
// worker pinned with the generator acknowledged a snapshot only after 5 s, and missed every frame
// of a second generator (test/netns/overload.test.ts). The spinner cannot notice by itself, since
// it does not run; this thread does. While spins happen it wakes every TICK_NS and puts any
// spinner that has not run for LIMIT_NS back to SCHED_OTHER (sched_setscheduler on its tid, as the
// spinner itself would), so the spinner runs at its own priority, sees that it was starved and
// backs off (RingPoller::Spin). Without spins for PARK_AFTER_NS it sleeps on a futex until the next
// spin starts, so an idle uvsd has no wake-ups from it. One thread per process, started with the
// first RingPoller; its cost while traffic flows is one wake-up per TICK_NS.
class SpinWatchdog {
 public:
  struct Slot {
    std::atomic<int> used{0};
    std::atomic<int> tid{0};
    // CLOCK_MONOTONIC ns: when the current spin went SCHED_IDLE (0: no spin under SCHED_IDLE), and
    // when the spinner last looked at its rings.
    std::atomic<int64_t> idleSince{0};
    std::atomic<int64_t> lastLook{0};
    std::atomic<uint64_t> rescues{0};
  };

  static SpinWatchdog& Get() {
    static SpinWatchdog* w = new SpinWatchdog();  // never destroyed: its thread lives as long as the process
    return *w;
  }

  Slot* Claim() {
    for (Slot& s : slots_) {
      int expected = 0;
      if (s.used.compare_exchange_strong(expected, 1)) {
        s.idleSince.store(0);
        s.rescues.store(0);
        return &s;
      }
    }
    return nullptr;  // more spinners than slots: those spin without the watchdog's bound (then not under SCHED_IDLE)
  }

  void Release(Slot* s) {
    s->idleSince.store(0);
    s->used.store(0);
  }

  // The thread, started when the first poller that may spin under SCHED_IDLE is made (from a
  // thread at its normal policy; made at the first spin instead, it could be starved with it).
  void Start() {
    std::call_once(started_, [this] { std::thread([this] { Run(); }).detach(); });
  }

  // The spinner, right before it goes SCHED_IDLE: once there it may not run again for a second,
  // so everything the watchdog needs is published first.
  void SpinStarting(Slot* s, int tid, int64_t now) {
    s->tid.store(tid, std::memory_order_relaxed);
    s->lastLook.store(now, std::memory_order_relaxed);
    s->idleSince.store(now);
    activity_.fetch_add(1);
    if (parked_.load() != 0 && parked_.exchange(0) != 0) {
      syscall(SYS_futex, &parked_, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
  }

  static void Looked(Slot* s, int64_t now) { s->lastLook.store(now, std::memory_order_relaxed); }
  static void SpinEnded(Slot* s) { s->idleSince.store(0); }

  static constexpr int64_t TICK_NS = 2000000;         // 2 ms between checks while spins happen
  static constexpr int64_t LIMIT_NS = 2000000;        // a spinner off its CPU this long is rescued
  static constexpr int64_t PARK_AFTER_NS = 100000000; // 100 ms without a spin: sleep until the next

 private:
  static constexpr int SLOTS = 256;

  static int64_t Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
  }

  void Run() {
    // Process-directed signals (SIGTERM, SIGHUP, SIGCHLD) go to Node's threads, not to this one.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    pthread_setname_np(pthread_self(), "uvs-spinwatch");
    // Never SCHED_IDLE, whatever the thread that started it runs under.
    sched_param p{};
    sched_setscheduler(0, SCHED_OTHER, &p);
    uint64_t seen = activity_.load();
    int64_t quietSince = Now();
    for (;;) {
      timespec tick{0, TICK_NS};
      nanosleep(&tick, nullptr);
      const int64_t now = Now();
      bool spinning = false;
      for (Slot& s : slots_) {
        if (s.used.load(std::memory_order_relaxed) == 0) continue;
        int64_t since = s.idleSince.load();
        if (since == 0) continue;
        spinning = true;
        if (now - s.lastLook.load(std::memory_order_relaxed) < LIMIT_NS) continue;
        // Kept off its CPU: back to SCHED_OTHER, unless the spin ended meanwhile. (A new spin that
        // started in between loses its idle policy early: harmless, it ends within its window.)
        if (!s.idleSince.compare_exchange_strong(since, 0)) continue;
        sched_param p{};
        if (sched_setscheduler(s.tid.load(std::memory_order_relaxed), SCHED_OTHER, &p) == 0) s.rescues.fetch_add(1);
      }
      const uint64_t a = activity_.load();
      if (a != seen || spinning) {
        seen = a;
        quietSince = now;
        continue;
      }
      if (now - quietSince < PARK_AFTER_NS) continue;
      parked_.store(1);
      if (activity_.load() != seen) {  // a spin started while parking: it may have missed the flag
        parked_.store(0);
        continue;
      }
      while (parked_.load() != 0) syscall(SYS_futex, &parked_, FUTEX_WAIT_PRIVATE, 1, nullptr, nullptr, 0);
      seen = activity_.load();
      quietSince = Now();
    }
  }

  std::atomic<int> parked_{0};
  std::atomic<uint64_t> activity_{0};
  Slot slots_[SLOTS];
  std::once_flag started_;
};

class RingPoller : public Napi::ObjectWrap<RingPoller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingPoller", {InstanceMethod<&RingPoller::Spin>("spin"), InstanceAccessor<&RingPoller::Starved>("starved"), InstanceAccessor<&RingPoller::Contended>("contended"), InstanceAccessor<&RingPoller::Rescued>("rescued")});
  }

  explicit RingPoller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingPoller>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) ThrowType(env, "RingPoller(sockets): sockets must be an array of PacketSocket or XdpSocket");
    Napi::Array arr = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      // An XdpSocket is recognised by its type tag first; anything else must be a PacketSocket.
      uvs_xdp::XdpSocket* x = uvs_xdp::AsSocket(env, v);
      PacketSocket* s = x == nullptr && v.IsObject() ? PacketSocket::Unwrap(v.As<Napi::Object>()) : nullptr;
      if (x == nullptr && s == nullptr) ThrowType(env, "RingPoller(sockets): sockets[" + std::to_string(i) + "] is not a PacketSocket or an XdpSocket");
      if (s != nullptr && !s->ring_) ThrowType(env, "RingPoller(sockets): sockets[" + std::to_string(i) + "] has no RX ring");
      sockets_.push_back(s);
      xsks_.push_back(x);
      refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));  // keeps the socket alive
    }
    // RingPoller(sockets, idlePolicy = true): false keeps spins at the thread's own policy.
    if (info.Length() > 1 && info[1].IsBoolean() && !info[1].As<Napi::Boolean>().Value()) idlePolicy_ = false;
    if (idlePolicy_) {
      watch_ = SpinWatchdog::Get().Claim();
      if (watch_ != nullptr) SpinWatchdog::Get().Start();
    }
  }

  ~RingPoller() override {
    if (schedstatFd_ >= 0) close(schedstatFd_);
    if (watch_ != nullptr) SpinWatchdog::Get().Release(watch_);
  }

 private:
  // spin(usec, polite = true): the index of the first socket with a frame ready, at once if one is;
  // -1 when usec passed without one (or a socket was closed). polite false: this spin runs at the
  // thread's own policy even where SCHED_IDLE is allowed (the worker asks for that while its
  // traffic is sustained, src/dataplane/spin-window.ts: there an idle-policy spin is preempted by
  // every co-located thread that wakes and sits on ready frames until that thread blocks).
  Napi::Value Spin(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t usec = IntArg(info, 0, "RingPoller.spin: usec", 0, 1000000);
    const bool polite = !(info.Length() > 1 && info[1].IsBoolean() && !info[1].As<Napi::Boolean>().Value());
    const bool idlePolicy = idlePolicy_ && polite;
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const int64_t deadline = static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec + usec * 1000;
    const size_t n = sockets_.size();
    // A frame ready already: no spin, no policy change.
    for (size_t i = 0; i < n; i++) {
      int r = Ready(i);
      if (r < 0) return Napi::Number::New(env, -1);
      if (r > 0) return Napi::Number::New(env, static_cast<double>(i));
    }
    // The spin runs under SCHED_IDLE: any other thread that wakes on this CPU preempts it at once
    // (check_preempt_wakeup_fair), so the spin costs co-located work nothing, yet the vCPU stays
    // out of halt, and the scheduler counts the CPU as idle (sched_idle_cpu) when it places a
    // woken thread — which then starts without an IPI to a halted vCPU. A spin at the thread's own
    // priority (nice −20 in the bench) with sched_yield starved the co-located nice-0 real servers
    // and TUN decapsulators (native/README.md "Adaptive busy polling"). The policy is restored
    // before returning (its nice kept: static_prio is untouched by SCHED_IDLE).
    const int64_t start = static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
    // Contended: this thread waited on a run queue (schedstat run_delay) over CONTENDED_NS since the
    // last spin, or a spin was starved (below). Its CPUs are busy, so they do not halt and a
    // wake-up is cheap, while an idle-policy spin could starve: no spin for a while (-2), the worker
    // sleeps in epoll_wait and is woken at its own priority.
    // The wait is judged against the time it accrued in: an absolute 0.5 ms since a spin a second
    // ago (a few wake-ups that each waited for the sender to block) is no contention, and tripped
    // the guard about once a second on a quiet machine, so most frames paid a halted vCPU's
    // wake-up (native/README.md "Adaptive busy polling"). Contended means over CONTENDED_NS and
    // over 1/CONTENDED_SHARE of the wall time since the previous reading.
    // schedstat is read at most once per READ_EVERY_NS (a pread of /proc and its parsing cost 1-2 µs,
    // and spin() runs once per turn and per 250 µs slice: 1-2% of a busy worker's CPU in perf).
    // The waits of the spins in between (this thread preempted while idle-policy, which is how a
    // spin yields) are not contention: each spin adds its time off the CPU, from the thread's CPU
    // clock, to spinWaitNs_, which the next reading subtracts.
    if (idlePolicy && start - lastRunDelayAt_ >= READ_EVERY_NS) {
      const int64_t delay = RunDelayNs();
      if (delay >= 0) {
        const int64_t waited = delay - lastRunDelay_ - spinWaitNs_;
        spinWaitNs_ = 0;
        if (lastRunDelay_ >= 0 && waited > CONTENDED_NS && waited * CONTENDED_SHARE > start - lastRunDelayAt_) {
          starvedUntil_ = start + Backoff();
          contended_++;
        }
        lastRunDelay_ = delay;
        lastRunDelayAt_ = start;
      }
    }
    // A spin at its own policy waits on the run queue by design (sched_yield hands the CPU to
    // others): the next polite spin's reading starts afresh rather than count that as contention.
    if (!polite) lastRunDelay_ = -1;
    if (idlePolicy && start < starvedUntil_) return Napi::Number::New(env, -2);
    const bool watched = idlePolicy && watch_ != nullptr;
    if (watched) SpinWatchdog::Get().SpinStarting(watch_, tid_, start);
    const bool idled = watched && SetIdle(true);
    if (watched && !idled) SpinWatchdog::SpinEnded(watch_);
    const int64_t cpuStart = idled ? ThreadCpuNs() : 0;
    int found = -1;
    int64_t look = start;
    for (;;) {
      for (size_t i = 0; i < n; i++) {
        int r = Ready(i);
        if (r < 0) goto out;
        if (r > 0) {
          found = static_cast<int>(i);
          goto out;
        }
      }
      clock_gettime(CLOCK_MONOTONIC, &ts);
      const int64_t now = static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
      // An idle-policy spin runs only while nothing else wants its CPU; one that was kept off the
      // CPU for over STARVED_NS saw its CPU saturated by other work, where it could sit runnable
      // but starved with frames in the ring (a SCHED_IDLE thread gets a tiny share against normal
      // ones). Then spins stop for a while (Backoff): the worker sleeps and is woken at its own
      // priority, as without busy polling.
      if (idled && now - look > STARVED_NS) {
        starvedUntil_ = now + Backoff();
        starved_++;
        found = -2;
        goto out;
      }
      look = now;
      if (idled) SpinWatchdog::Looked(watch_, now);
      if (now >= deadline) goto out;
      // Give the CPU to any other runnable thread first (NAPI busy polling likewise stops on
      // need_resched): on a machine where the client, the servers or the kernel's softirq
      // threads share our CPUs, a spin that held the CPU would delay the very replies it waits for.
      // (A spin with a pause instruction instead starved them: round trips of 2-8 ms at p90.)
      sched_yield();
    }
  out:
    // A spin that ran its course (a frame, or the window passed) halves the next pause.
    if (idled && found != -2 && pauseNs_ > PAUSE_MIN_NS) pauseNs_ /= 2;
    if (idled) SpinWatchdog::SpinEnded(watch_);
    if (idled && !SetIdle(false)) idlePolicy_ = false;
    if (idled) {
      // The spin's own waits (preempted by others) do not count: wall time minus CPU time.
      clock_gettime(CLOCK_MONOTONIC, &ts);
      const int64_t off = (static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec - start) - (ThreadCpuNs() - cpuStart);
      if (off > 0) spinWaitNs_ += off;
    }
    return Napi::Number::New(env, found);
  }

  // Socket i: 1 with a frame ready, 0 without, -1 closed. A PacketSocket's ring says so by the
  // slot's (block's) status; an XdpSocket's by its RX ring's producer against our consumer.
  int Ready(size_t i) const {
    if (uvs_xdp::XdpSocket* x = xsks_[i]) {
      if (!uvs_xdp::IsOpen(x)) return -1;
      return uvs_xdp::RxReady(x) ? 1 : 0;
    }
    PacketSocket* s = sockets_[i];
    if (s->fd_ < 0 || !s->ring_) return -1;
    return s->FrameReady() ? 1 : 0;
  }

  static int64_t ThreadCpuNs() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<int64_t>(t.tv_sec) * 1000000000LL + t.tv_nsec;
  }

  // This thread's time spent runnable but waiting for a CPU (/proc/thread-self/schedstat, second
  // field, ns; CONFIG_SCHED_INFO), or -1 when unavailable. Opened on first use, in the spinning
  // thread, since thread-self names the opener.
  int64_t RunDelayNs() {
    if (schedstatFd_ == -2) schedstatFd_ = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (schedstatFd_ < 0) return -1;
    char buf[96];
    ssize_t n = pread(schedstatFd_, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    unsigned long long run = 0, wait = 0;
    if (sscanf(buf, "%llu %llu", &run, &wait) != 2) return -1;
    return static_cast<int64_t>(wait);
  }

  // Spins ended because the thread was kept off its CPU, and spins refused because it had waited
  // for a CPU (see Spin): each pauses spinning (Backoff).
  Napi::Value Starved(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), starved_); }
  Napi::Value Contended(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), contended_); }
  // Spins the watchdog put back to SCHED_OTHER because they were kept off the CPU (SpinWatchdog).
  Napi::Value Rescued(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), watch_ != nullptr ? static_cast<double>(watch_->rescues.load()) : 0);
  }

  // SCHED_IDLE on (true) or back to SCHED_OTHER; false when the kernel refused (then spins stay at
  // the thread's own policy: leaving SCHED_IDLE needs RLIMIT_NICE room or CAP_SYS_NICE).
  bool SetIdle(bool on) {
    sched_param p{};
    if (sched_setscheduler(0, on ? SCHED_IDLE : SCHED_OTHER, &p) == 0) return true;
    idlePolicy_ = false;
    return false;
  }

  // Whether this thread may leave SCHED_IDLE again (sched_setscheduler's permission check: a
  // task under SCHED_IDLE needs can_nice() for its nice, i.e. CAP_SYS_NICE or RLIMIT_NICE ≥ 20 −
  // nice). Without it a spin stays at the thread's own policy rather than risk staying idle.
  static bool MayLeaveIdle() {
    FILE* f = fopen("/proc/thread-self/status", "r");
    if (f != nullptr) {
      char line[256];
      unsigned long long eff = 0;
      while (fgets(line, sizeof(line), f) != nullptr) {
        if (sscanf(line, "CapEff: %llx", &eff) == 1) break;
      }
      fclose(f);
      if (eff & (1ULL << 23)) return true;  // CAP_SYS_NICE
    }
    rlimit rl{};
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno != 0 || getrlimit(RLIMIT_NICE, &rl) != 0) return false;
    return rl.rlim_cur == RLIM_INFINITY || static_cast<long long>(rl.rlim_cur) >= 20 - nice;
  }

  bool idlePolicy_ = MayLeaveIdle();
  // The watchdog's slot for this poller's thread (none: spins stay at the thread's own policy).
  SpinWatchdog::Slot* watch_ = nullptr;
  const int tid_ = static_cast<int>(syscall(SYS_gettid));
  static constexpr int64_t STARVED_NS = 1000000;        // 1 ms off the CPU within a spin
  // A guard that trips pauses spins for pauseNs_: 10 ms at first, doubled by each trip up to 1 s,
  // halved by each spin that ran its course. A CPU kept saturated by other work reaches the 1 s
  // pause within a few trips; an odd long wait on a quiet machine costs 10 ms of spinning, not a
  // second (a fixed 1 s pause, with the waits of a sequential request/response workload tripping
  // the wait guard every 2-3 s, left the worker asleep for 85-99% of the frames).
  static constexpr int64_t PAUSE_MIN_NS = 10000000;
  static constexpr int64_t PAUSE_MAX_NS = 1000000000;
  int64_t pauseNs_ = PAUSE_MIN_NS;
  int64_t Backoff() {
    const int64_t p = pauseNs_;
    pauseNs_ = p * 2 > PAUSE_MAX_NS ? PAUSE_MAX_NS : p * 2;
    return p;
  }
  static constexpr int64_t CONTENDED_NS = 500000;  // 0.5 ms waited for a CPU since the last spin,
  static constexpr int64_t CONTENDED_SHARE = 4;     // and over a quarter of the time since then
  int64_t starvedUntil_ = 0;
  int64_t lastRunDelay_ = -1;
  int64_t lastRunDelayAt_ = 0;
  static constexpr int64_t READ_EVERY_NS = 1000000;  // schedstat read at most once per ms
  int64_t spinWaitNs_ = 0;  // spins' time off the CPU since the last schedstat reading
  int schedstatFd_ = -2;
  double starved_ = 0;
  double contended_ = 0;

  std::vector<PacketSocket*> sockets_;          // nullptr where xsks_ has the socket
  std::vector<uvs_xdp::XdpSocket*> xsks_;       // nullptr for a PacketSocket
  std::vector<Napi::ObjectReference> refs_;
};

// ---------------------------------------------------------------------------------------------
// FdWatcher: libuv readiness on any fd, for threads that live on their event loop (VRRP, the TUN
// agent) rather than in a tight poll loop. The callback gets (status, events) — events carries
// READABLE=1, WRITABLE=2 (uv_poll_event).

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  // When this thread's last readiness callback began (CLOCK_REALTIME µs), before the JS call:
  // lets a latency trace split the wake-up from the N-API callback (worker.ts LatencyTrace).
  static inline thread_local double lastPollUs = 0;

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {
                           InstanceMethod<&FdWatcher::Start>("start"),
                           InstanceMethod<&FdWatcher::Stop>("stop"),
                           InstanceMethod<&FdWatcher::Close>("close"),
                       });
  }

  explicit FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
    Napi::Env env = info.Env();
    int fd = static_cast<int>(IntArg(info, 0, "FdWatcher(fd, callback): fd", 0, INT32_MAX));
    if (info.Length() < 2 || !info[1].IsFunction()) ThrowType(env, "FdWatcher(fd, callback): callback must be a function");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw Napi::Error::New(env, "FdWatcher: no event loop");
    handle_ = new uv_poll_t;
    int r = uv_poll_init(loop, handle_, fd);
    if (r != 0) {
      delete handle_;
      handle_ = nullptr;
      ThrowSys(env, "uv_poll_init(fd=" + std::to_string(fd) + ")", -r);
    }
    handle_->data = this;
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    env_ = env;
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    hooked_ = true;
  }

  ~FdWatcher() override { CloseHandle(); }

 private:
  static void CleanupHook(void* arg) {
    FdWatcher* self = static_cast<FdWatcher*>(arg);
    self->hooked_ = false;  // the hook is being run: no removal needed
    self->CloseHandle();
  }

  void CloseHandle() {
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, CleanupHook, this);
      hooked_ = false;
    }
    if (handle_ != nullptr) {
      uv_poll_stop(handle_);
      handle_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      handle_ = nullptr;
    }
  }

  static void OnPoll(uv_poll_t* h, int status, int events) {
    FdWatcher* self = static_cast<FdWatcher*>(h->data);
    if (self == nullptr) return;
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lastPollUs = static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    try {
      self->callback_.MakeCallback(self->Value(), {Napi::Number::New(env, status), Napi::Number::New(env, events)});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  // start(events = 1): 1 readable, 2 writable, 3 both. Keeps the watcher (and the loop) alive.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (handle_ == nullptr) throw Napi::Error::New(env, "FdWatcher.start: watcher is closed");
    int events = info.Length() > 0 ? static_cast<int>(IntArg(info, 0, "FdWatcher.start: events", 1, 3)) : UV_READABLE;
    int r = uv_poll_start(handle_, events, OnPoll);
    if (r != 0) ThrowSys(env, "uv_poll_start(events=" + std::to_string(events) + ")", -r);
    if (!active_) {
      Ref();
      active_ = true;
    }
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_poll_stop(handle_);
    if (active_) {
      Unref();
      active_ = false;
    }
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop(info);
    CloseHandle();
    return info.Env().Undefined();
  }

  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
  napi_env env_ = nullptr;
  bool hooked_ = false;
  bool active_ = false;
};

// ---------------------------------------------------------------------------------------------
// Interface look-ups, ethtool offload flags, TUN, plain fd I/O

// Each look-up opens its own socket: ioctls answer for the network namespace the socket was made
// in, and a long-lived one would keep answering for the old namespace.
class CtlSocket {
 public:
  explicit CtlSocket(Napi::Env env) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) ThrowSys(env, "socket(AF_INET, SOCK_DGRAM, 0)", errno);
  }
  ~CtlSocket() { close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_;
};

ifreq IfReq(Napi::Env env, const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    ThrowRange(env, "interface name '" + name + "' must have 1.." + std::to_string(IFNAMSIZ - 1) + " characters");
  }
  ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.c_str(), name.size());
  return ifr;
}

void Ioctl(Napi::Env env, int fd, unsigned long req, void* arg, const std::string& desc) {
  if (ioctl(fd, req, arg) < 0) ThrowSys(env, "ioctl(" + desc + ")", errno);
}

struct EthtoolFeature {
  const char* name;
  uint32_t get;
  uint32_t set;
};

// The legacy one-flag ethtool commands; the kernel maps them onto netdev features
// (ethtool_get_one_feature / ethtool_set_one_feature in net/ethtool/ioctl.c).
const EthtoolFeature kEthtoolFeatures[] = {
    {"rx", ETHTOOL_GRXCSUM, ETHTOOL_SRXCSUM},  {"tx", ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM},
    {"sg", ETHTOOL_GSG, ETHTOOL_SSG},          {"tso", ETHTOOL_GTSO, ETHTOOL_STSO},
    {"gso", ETHTOOL_GGSO, ETHTOOL_SGSO},       {"gro", ETHTOOL_GGRO, ETHTOOL_SGRO},
};

const EthtoolFeature& FindFeature(Napi::Env env, const std::string& name) {
  for (const EthtoolFeature& f : kEthtoolFeatures) {
    if (name == f.name) return f;
  }
  ThrowRange(env, "ethtool feature '" + name + "' is not one of rx, tx, sg, tso, gso, gro");
}

// ---------------------------------------------------------------------------------------------
// unixDgramSend(path, buffer): one datagram to an AF_UNIX SOCK_DGRAM socket: syslog's /dev/log
// (RFC 3164 lines, as glibc's syslog(3) sends them) and systemd's $NOTIFY_SOCKET (sd_notify(3)).
// Node has no AF_UNIX datagram sockets. A path starting with '@' is in the abstract namespace
// (as sd_notify reads NOTIFY_SOCKET). MSG_DONTWAIT: a stuck syslog daemon must not block uvsd's
// main thread; the caller drops the line then. Returns true when sent, false on EAGAIN; throws
// with the errno otherwise (ENOENT, ECONNREFUSED: nobody listens). Self-contained: one socket
// per call, closed before returning (these are control-plane messages, a few per second at most).

Napi::Value UnixDgramSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowType(env, "unixDgramSend(path, buffer): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Bytes b = BytesOf(env, info.Length() > 1 ? info[1] : env.Undefined(), "unixDgramSend(path, buffer): buffer");
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sun.sun_path)) {
    ThrowRange(env, "unixDgramSend: socket path '" + path + "' is empty or longer than " + std::to_string(sizeof(sun.sun_path) - 1) + " bytes");
  }
  memcpy(sun.sun_path, path.data(), path.size());
  if (path[0] == '@') sun.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSys(env, "socket(AF_UNIX, SOCK_DGRAM)", errno);
  ssize_t r;
  do {
    r = sendto(fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sun), len);
  } while (r < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (r < 0) {
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) return Napi::Boolean::New(env, false);
    ThrowSys(env, "sendto(" + path + ")", err);
  }
  return Napi::Boolean::New(env, true);
}

// The network namespace's cookie (getsockopt SO_NETNS_COOKIE, Linux >= 5.14): a 64-bit number
// the kernel hands out from a counter once per namespace and never reuses until the next boot,
// unlike the namespace's inode number (/proc/self/ns/net), which a namespace created after this
// one was deleted may get again. The connection state file (src/dataplane/conn-state.ts) records
// it with the boot id to recognise its own namespace. Returned as 16 hex digits (a u64 does not
// fit a JS number); throws with the errno (ENOPROTOOPT on an older kernel). One UDP socket per
// call, closed before returning: called once at start and once at stop.

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

Napi::Value NetnsCookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSys(env, "socket(AF_INET, SOCK_DGRAM)", errno);
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  int r = getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  int err = errno;
  close(fd);
  if (r < 0) ThrowSys(env, "getsockopt(SO_NETNS_COOKIE)", err);
  char hex[17];
  snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(cookie));
  return Napi::String::New(env, hex);
}

class UvsNative : public Napi::Addon<UvsNative> {
 public:
  UvsNative(Napi::Env env, Napi::Object exports) {
    Napi::Object consts = Napi::Object::New(env);
    auto c = [&](const char* k, double v) { consts.Set(k, Napi::Number::New(env, v)); };
    c("FRAME_STRIDE", kFrameStride);
    c("FRAME_OFFSET", kFrameOffset);
    c("FRAME_CAPLEN", kFrameCaplen);
    c("FRAME_WIRELEN", kFrameWirelen);
    c("FRAME_STATUS", kFrameStatus);
    c("FRAME_VLAN_TCI", kFrameVlanTci);
    c("FRAME_VLAN_TPID", kFrameVlanTpid);
    c("FRAME_PKTTYPE", kFramePkttype);
    c("FRAME_IFINDEX", kFrameIfindex);
    c("TP_STATUS_USER", TP_STATUS_USER);
    c("TP_STATUS_COPY", TP_STATUS_COPY);
    c("TP_STATUS_LOSING", TP_STATUS_LOSING);
    c("TP_STATUS_CSUMNOTREADY", TP_STATUS_CSUMNOTREADY);
    c("TP_STATUS_VLAN_VALID", TP_STATUS_VLAN_VALID);
    c("TP_STATUS_BLK_TMO", TP_STATUS_BLK_TMO);
    c("TP_STATUS_VLAN_TPID_VALID", TP_STATUS_VLAN_TPID_VALID);
    c("TP_STATUS_CSUM_VALID", TP_STATUS_CSUM_VALID);
    c("PACKET_HOST", PACKET_HOST);
    c("PACKET_BROADCAST", PACKET_BROADCAST);
    c("PACKET_MULTICAST", PACKET_MULTICAST);
    c("PACKET_OTHERHOST", PACKET_OTHERHOST);
    c("PACKET_OUTGOING", PACKET_OUTGOING);
    c("VNET_HDR_LEN", sizeof(virtio_net_hdr));
    c("VIRTIO_NET_HDR_F_NEEDS_CSUM", VIRTIO_NET_HDR_F_NEEDS_CSUM);
    c("VIRTIO_NET_HDR_F_DATA_VALID", VIRTIO_NET_HDR_F_DATA_VALID);
    c("VIRTIO_NET_HDR_GSO_NONE", VIRTIO_NET_HDR_GSO_NONE);
    c("VIRTIO_NET_HDR_GSO_TCPV4", VIRTIO_NET_HDR_GSO_TCPV4);
    c("VIRTIO_NET_HDR_GSO_UDP", VIRTIO_NET_HDR_GSO_UDP);
    c("VIRTIO_NET_HDR_GSO_TCPV6", VIRTIO_NET_HDR_GSO_TCPV6);
    c("VIRTIO_NET_HDR_GSO_ECN", VIRTIO_NET_HDR_GSO_ECN);
    c("ETH_P_ALL", ETH_P_ALL);
    c("IFF_UP", IFF_UP);
    c("IFF_RUNNING", IFF_RUNNING);
    c("IFF_LOOPBACK", IFF_LOOPBACK);

    DefineAddon(exports, {
                             InstanceValue("constants", consts, napi_enumerable),
                             InstanceValue("PacketSocket", PacketSocket::Define(env), napi_enumerable),
                             InstanceValue("RawSocket", RawSocket::Define(env), napi_enumerable),
                             InstanceValue("FdWatcher", FdWatcher::Define(env), napi_enumerable),
                             InstanceValue("RingPoller", RingPoller::Define(env), napi_enumerable),
                             InstanceValue("XdpUmem", uvs_xdp::DefineUmem(env), napi_enumerable),
                             InstanceValue("XdpSocket", uvs_xdp::DefineSocket(env), napi_enumerable),
                             InstanceMethod<&UvsNative::IfIndex>("ifIndex", napi_enumerable),
                             InstanceMethod<&UvsNative::IfInfo>("ifInfo", napi_enumerable),
                             InstanceMethod<&UvsNative::EthtoolGet>("ethtoolGet", napi_enumerable),
                             InstanceMethod<&UvsNative::EthtoolSet>("ethtoolSet", napi_enumerable),
                             InstanceMethod<&UvsNative::TunOpen>("tunOpen", napi_enumerable),
                             InstanceMethod<&UvsNative::FdRead>("fdRead", napi_enumerable),
                             InstanceMethod<&UvsNative::FdWrite>("fdWrite", napi_enumerable),
                             InstanceMethod<&UvsNative::FdWait>("fdWait", napi_enumerable),
                             InstanceMethod<&UvsNative::FdClose>("fdClose", napi_enumerable),
                             InstanceMethod<&UvsNative::InstanceId>("instanceId", napi_enumerable),
                             InstanceMethod<&UvsNative::ClockRealtimeUs>("clockRealtimeUs", napi_enumerable),
                             InstanceMethod<&UvsNative::LastPollUs>("lastPollUs", napi_enumerable),
                             InstanceMethod<&UvsNative::ThreadCpus>("threadCpus", napi_enumerable),
                             InstanceMethod<&UvsNative::PinThread>("pinThread", napi_enumerable),
                             InstanceMethod<&UvsNative::CurrentCpu>("currentCpu", napi_enumerable),
                         });
    exports.Set("unixDgramSend", Napi::Function::New(env, UnixDgramSend, "unixDgramSend"));
    exports.Set("netnsCookie", Napi::Function::New(env, NetnsCookie, "netnsCookie"));
    exports.Set("xdpAttach", Napi::Function::New(env, uvs_xdp::Attach, "xdpAttach"));
    exports.Set("bpfMapUpdate", Napi::Function::New(env, uvs_xdp::MapUpdate, "bpfMapUpdate"));
    exports.Set("ifQueueCount", Napi::Function::New(env, uvs_xdp::IfQueueCount, "ifQueueCount"));
    exports.Set("fastPathMaps", Napi::Function::New(env, uvs_fast::Maps, "fastPathMaps"));
    exports.Set("fastPut", Napi::Function::New(env, uvs_fast::Put, "fastPut"));
    exports.Set("fastIdle", Napi::Function::New(env, uvs_fast::Idle, "fastIdle"));
    exports.Set("fastDelete", Napi::Function::New(env, uvs_fast::Delete, "fastDelete"));
    exports.Set("fastPutNat", Napi::Function::New(env, uvs_fast::PutNat, "fastPutNat"));
    exports.Set("fastPutTun", Napi::Function::New(env, uvs_fast::PutTun, "fastPutTun"));
    exports.Set("fastSvcPut", Napi::Function::New(env, uvs_fast::SvcPut, "fastSvcPut"));
    exports.Set("fastSvcDelete", Napi::Function::New(env, uvs_fast::SvcDelete, "fastSvcDelete"));
    exports.Set("fastEvents", Napi::Function::New(env, uvs_fast::Events, "fastEvents"));
    exports.Set("fastCtl", Napi::Function::New(env, uvs_fast::Ctl, "fastCtl"));
    exports.Set("connLookupBatch", Napi::Function::New(env, uvs_conn::LookupBatch, "connLookupBatch"));
    exports.Set("tcDecapAttach", Napi::Function::New(env, uvs_tc_decap::Attach, "tcDecapAttach"));
    instanceId_ = ++instances_;
  }

 private:
  // Which instance answered: lets the worker test prove each thread got its own instance.
  Napi::Value InstanceId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), instanceId_); }

  // CLOCK_REALTIME in µs (a double keeps 0.25 µs at today's epoch): the clock of the ring's
  // tp_sec/tp_nsec stamps (tpacket_rcv), for measuring how long a frame waited for its worker.
  Napi::Value LastPollUs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), FdWatcher::lastPollUs); }

  // The calling thread's CPU affinity (sched_getaffinity(0): the thread, not the process), as
  // CPU numbers in ascending order: the set uvsd was started with (taskset, cgroup cpuset).
  Napi::Value ThreadCpus(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) < 0) ThrowSys(env, "sched_getaffinity", errno);
    Napi::Array out = Napi::Array::New(env);
    uint32_t n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) if (CPU_ISSET(c, &set)) out.Set(n++, Napi::Number::New(env, c));
    return out;
  }

  // pinThread(cpus): sched_setaffinity of the calling thread only (a data-plane worker pins
  // itself to the CPUs whose received frames it takes: dataplane/worker.ts "placement").
  Napi::Value PinThread(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) ThrowType(env, "pinThread(cpus): cpus must be an array of CPU numbers");
    Napi::Array cpus = info[0].As<Napi::Array>();
    cpu_set_t set;
    CPU_ZERO(&set);
    for (uint32_t i = 0; i < cpus.Length(); i++) {
      Napi::Value v = cpus.Get(i);
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0 && d < CPU_SETSIZE) || d != static_cast<int>(d)) ThrowType(env, "pinThread(cpus): cpus[" + std::to_string(i) + "] is not a CPU number 0.." + std::to_string(CPU_SETSIZE - 1));
      CPU_SET(static_cast<int>(d), &set);
    }
    if (CPU_COUNT(&set) == 0) ThrowType(env, "pinThread(cpus): cpus is empty");
    if (sched_setaffinity(0, sizeof(set), &set) < 0) ThrowSys(env, "sched_setaffinity", errno);
    return env.Undefined();
  }

  Napi::Value CurrentCpu(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sched_getcpu()); }

  Napi::Value ClockRealtimeUs(const Napi::CallbackInfo& info) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3);
  }

  Napi::Value IfIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0, "ifIndex(name): name");
    unsigned idx = if_nametoindex(name.c_str());
    if (idx == 0) ThrowSys(env, "if_nametoindex(" + name + ")", errno);
    return Napi::Number::New(env, idx);
  }

  Napi::Value IfInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0, "ifInfo(name): name");
    CtlSocket s(env);
    ifreq ifr = IfReq(env, name);
    Ioctl(env, s.fd(), SIOCGIFINDEX, &ifr, "SIOCGIFINDEX, " + name);
    int index = ifr.ifr_ifindex;
    ifr = IfReq(env, name);
    Ioctl(env, s.fd(), SIOCGIFHWADDR, &ifr, "SIOCGIFHWADDR, " + name);
    const uint8_t* hw = reinterpret_cast<const uint8_t*>(ifr.ifr_hwaddr.sa_data);
    char mac[18];
    snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", hw[0], hw[1], hw[2], hw[3], hw[4], hw[5]);
    int hwType = ifr.ifr_hwaddr.sa_family;
    ifr = IfReq(env, name);
    Ioctl(env, s.fd(), SIOCGIFMTU, &ifr, "SIOCGIFMTU, " + name);
    int mtu = ifr.ifr_mtu;
    ifr = IfReq(env, name);
    Ioctl(env, s.fd(), SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS, " + name);
    int flags = ifr.ifr_flags & 0xffff;
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", name);
    o.Set("index", Napi::Number::New(env, index));
    o.Set("mac", Napi::String::New(env, mac));
    o.Set("hwType", Napi::Number::New(env, hwType));
    o.Set("mtu", Napi::Number::New(env, mtu));
    o.Set("flags", Napi::Number::New(env, flags));
    o.Set("up", Napi::Boolean::New(env, (flags & IFF_UP) != 0));
    o.Set("running", Napi::Boolean::New(env, (flags & IFF_RUNNING) != 0));
    return o;
  }

  Napi::Value EthtoolGet(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0, "ethtoolGet(name, feature): name");
    const EthtoolFeature& f = FindFeature(env, StringArg(info, 1, "ethtoolGet(name, feature): feature"));
    CtlSocket s(env);
    ifreq ifr = IfReq(env, name);
    ethtool_value ev = {f.get, 0};
    ifr.ifr_data = reinterpret_cast<char*>(&ev);
    Ioctl(env, s.fd(), SIOCETHTOOL, &ifr, std::string("SIOCETHTOOL, ") + name + ", get " + f.name);
    return Napi::Boolean::New(env, ev.data != 0);
  }

  Napi::Value EthtoolSet(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0, "ethtoolSet(name, feature, on): name");
    const EthtoolFeature& f = FindFeature(env, StringArg(info, 1, "ethtoolSet(name, feature, on): feature"));
    if (info.Length() < 3 || !info[2].IsBoolean()) ThrowType(env, "ethtoolSet(name, feature, on): on must be a boolean");
    bool on = info[2].As<Napi::Boolean>().Value();
    CtlSocket s(env);
    ifreq ifr = IfReq(env, name);
    ethtool_value ev = {f.set, on ? 1u : 0u};
    ifr.ifr_data = reinterpret_cast<char*>(&ev);
    Ioctl(env, s.fd(), SIOCETHTOOL, &ifr, std::string("SIOCETHTOOL, ") + name + ", set " + f.name + " " + (on ? "on" : "off"));
    return env.Undefined();
  }

  // tunOpen(name, vnetHdr): a TUN device (IFF_TUN | IFF_NO_PI: reads and writes are bare IP
  // packets; with vnetHdr true also IFF_VNET_HDR: each is preceded by a 10-byte virtio_net_hdr, so
  // a write can hand the kernel a TCP super-frame, GSO, as a VM's virtio NIC does), fd
  // non-blocking. The device lives as long as the fd. Returns {fd, name} (the kernel's name).
  Napi::Value TunOpen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = info.Length() > 0 && !info[0].IsUndefined() ? StringArg(info, 0, "tunOpen(name): name") : "";
    bool vnetHdr = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    if (name.size() >= IFNAMSIZ) ThrowRange(env, "tunOpen: name '" + name + "' is longer than " + std::to_string(IFNAMSIZ - 1) + " characters");
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) ThrowSys(env, "open(/dev/net/tun)", errno);
    ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0);
    memcpy(ifr.ifr_name, name.c_str(), name.size());
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int err = errno;
      close(fd);
      ThrowSys(env, "ioctl(TUNSETIFF, " + name + (vnetHdr ? ", IFF_TUN|IFF_NO_PI|IFF_VNET_HDR)" : ", IFF_TUN|IFF_NO_PI)"), err);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("fd", Napi::Number::New(env, fd));
    o.Set("name", Napi::String::New(env, ifr.ifr_name));
    return o;
  }

  // fdRead(fd, buffer): bytes read, or -1 when nothing is ready (non-blocking fds).
  Napi::Value FdRead(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = static_cast<int>(IntArg(info, 0, "fdRead(fd, buffer): fd", 0, INT32_MAX));
    Bytes b = BytesOf(env, info.Length() > 1 ? info[1] : env.Undefined(), "fdRead(fd, buffer): buffer");
    ssize_t r;
    do {
      r = read(fd, b.data, b.len);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
      ThrowSys(env, "read(fd=" + std::to_string(fd) + ", length=" + std::to_string(b.len) + ")", errno);
    }
    return Napi::Number::New(env, static_cast<double>(r));
  }

  // fdWrite(fd, buffer, length): bytes written, or -1 when the fd would block.
  Napi::Value FdWrite(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = static_cast<int>(IntArg(info, 0, "fdWrite(fd, buffer, length): fd", 0, INT32_MAX));
    Bytes b = BytesOf(env, info.Length() > 1 ? info[1] : env.Undefined(), "fdWrite(fd, buffer, length): buffer");
    size_t len = static_cast<size_t>(IntArg(info, 2, "fdWrite(fd, buffer, length): length", 0, INT32_MAX));
    if (len > b.len) ThrowRange(env, "fdWrite: length " + std::to_string(len) + " exceeds the buffer (" + std::to_string(b.len) + " bytes)");
    ssize_t r;
    do {
      r = write(fd, b.data, len);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
      ThrowSys(env, "write(fd=" + std::to_string(fd) + ", length=" + std::to_string(len) + ")", errno);
    }
    return Napi::Number::New(env, static_cast<double>(r));
  }

  // fdWait(fd, timeoutMs): true when readable.
  Napi::Value FdWait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = static_cast<int>(IntArg(info, 0, "fdWait(fd, timeoutMs): fd", 0, INT32_MAX));
    int timeoutMs = static_cast<int>(IntArg(info, 1, "fdWait(fd, timeoutMs): timeoutMs", 0, INT32_MAX));
    return Napi::Boolean::New(env, PollOne(env, fd, POLLIN, timeoutMs, "fd"));
  }

  Napi::Value FdClose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = static_cast<int>(IntArg(info, 0, "fdClose(fd): fd", 0, INT32_MAX));
    if (close(fd) < 0) ThrowSys(env, "close(fd=" + std::to_string(fd) + ")", errno);
    return env.Undefined();
  }

  // Counts instances across threads; atomic because workers load the addon concurrently.
  static inline std::atomic<int> instances_{0};
  int instanceId_ = 0;
};

}  // namespace

NODE_API_ADDON(UvsNative)
