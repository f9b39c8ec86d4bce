// Helpers shared by the addon's source files (uvs_native.cc, xdp.cc, tc-decap.cc): errors that name the failing
// call and its errno, argument checks, and the rx() descriptor layout both socket kinds fill.
// Everything is inline in an anonymous namespace: each file gets its own copy, nothing is exported.
#pragma once

#include <napi.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmath>
#include <string>

namespace {
// ---------------------------------------------------------------------------------------------
// Errors and argument helpers

inline std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : "E" + std::to_string(err);
}

[[noreturn]] inline void ThrowSys(Napi::Env env, const std::string& call, int err) {
  Napi::Error e = Napi::Error::New(env, call + ": " + strerror(err));
  Napi::Object o = e.Value();
  o.Set("code", Napi::String::New(env, ErrnoName(err)));
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("syscall", Napi::String::New(env, call.substr(0, call.find('('))));
  throw e;
}

// A socket's pending error (SO_ERROR, which clears it) as an errno name, or null: the takeError()
// of PacketSocket and XdpSocket.
inline Napi::Value TakeSocketError(Napi::Env env, int fd);

[[noreturn]] inline void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

[[noreturn]] inline void ThrowRange(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

inline Napi::Value TakeSocketError(Napi::Env env, int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) ThrowSys(env, "getsockopt(SOL_SOCKET, SO_ERROR)", errno);
  return err != 0 ? Napi::Value(Napi::String::New(env, ErrnoName(err))) : env.Null();
}

inline bool Present(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

inline int64_t IntValue(Napi::Env env, const Napi::Value& v, const std::string& what, int64_t min, int64_t max) {
  if (!v.IsNumber()) ThrowType(env, what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::floor(d) != d || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    ThrowRange(env, what + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                        "], got " + v.ToString().Utf8Value());
  }
  return static_cast<int64_t>(d);
}

inline int64_t OptInt(const Napi::Object& o, const char* where, const char* key, int64_t def, int64_t min, int64_t max) {
  if (!Present(o, key)) return def;
  return IntValue(o.Env(), o.Get(key), std::string(where) + ": option " + key, min, max);
}

inline bool OptBool(const Napi::Object& o, const char* where, const char* key, bool def) {
  if (!Present(o, key)) return def;
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) ThrowType(o.Env(), std::string(where) + ": option " + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) ThrowType(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t min, int64_t max) {
  if (info.Length() <= i) ThrowType(info.Env(), std::string(what) + " is required");
  return IntValue(info.Env(), info[i], what, min, max);
}

struct Bytes {
  uint8_t* data;
  size_t len;
};

// Accepts an ArrayBuffer, a typed array or a DataView (the view's window only).
inline Bytes BytesOf(Napi::Env env, const Napi::Value& v, const char* what) {
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength()};
  }
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    return {static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), ta.ByteLength()};
  }
  if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    return {static_cast<uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset(), dv.ByteLength()};
  }
  ThrowType(env, std::string(what) + " must be an ArrayBuffer, a typed array or a DataView");
}

// An Int32Array or Uint32Array seen as 32-bit cells (the caller interprets signedness).
inline uint32_t* Cells32(Napi::Env env, const Napi::Value& v, size_t* count, const char* what) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    napi_typedarray_type t = ta.TypedArrayType();
    if (t == napi_int32_array || t == napi_uint32_array) {
      *count = ta.ElementLength();
      return reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
    }
  }
  ThrowType(env, std::string(what) + " must be an Int32Array or a Uint32Array");
}

inline in_addr_t Ipv4Arg(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    in_addr a;
    if (inet_pton(AF_INET, s.c_str(), &a) != 1) ThrowType(env, what + ": '" + s + "' is not an IPv4 address");
    return a.s_addr;
  }
  if (v.IsNumber()) return htonl(static_cast<uint32_t>(IntValue(env, v, what, 0, 0xffffffffLL)));
  ThrowType(env, what + " must be a dotted IPv4 string or a 32-bit number (host order)");
}

inline std::string Ipv4Text(in_addr_t a) {
  char buf[INET_ADDRSTRLEN];
  in_addr ia;
  ia.s_addr = a;
  inet_ntop(AF_INET, &ia, buf, sizeof buf);
  return buf;
}

inline void SetSockOpt(Napi::Env env, int fd, int level, int opt, const void* val, socklen_t len, const std::string& desc) {
  if (setsockopt(fd, level, opt, val, len) < 0) ThrowSys(env, "setsockopt(" + desc + ")", errno);
}

inline void SetIntOpt(Napi::Env env, int fd, int level, int opt, int value, const std::string& desc) {
  SetSockOpt(env, fd, level, opt, &value, sizeof value, desc + ", " + std::to_string(value));
}

// poll(2) on one fd: true when ready, false on timeout (or EINTR, which the caller's loop retries).
inline bool PollOne(Napi::Env env, int fd, short events, int timeoutMs, const char* what) {
  pollfd p = {fd, events, 0};
  int r = poll(&p, 1, timeoutMs);
  if (r < 0) {
    if (errno == EINTR) return false;
    ThrowSys(env, std::string("poll(") + what + " fd=" + std::to_string(fd) + ", timeout=" + std::to_string(timeoutMs) + ")", errno);
  }
  return r > 0;
}

// Per frame, rx() writes FRAME_STRIDE 32-bit cells into the caller's descriptor array.
enum FrameCell : uint32_t {
  kFrameOffset = 0,   // offset of the Ethernet header in the ring ArrayBuffer
  kFrameCaplen = 1,   // bytes present in the ring (tp_snaplen)
  kFrameWirelen = 2,  // bytes on the wire (tp_len); > caplen when the block could not hold it all
  kFrameStatus = 3,   // tp_status bits: TP_STATUS_CSUMNOTREADY, TP_STATUS_VLAN_VALID, TP_STATUS_CSUM_VALID...
  kFrameVlanTci = 4,  // tp_vlan_tci (valid when TP_STATUS_VLAN_VALID)
  kFrameVlanTpid = 5, // tp_vlan_tpid (valid when TP_STATUS_VLAN_TPID_VALID)
  kFramePkttype = 6,  // sll_pkttype: PACKET_HOST, PACKET_BROADCAST, PACKET_OTHERHOST, PACKET_OUTGOING...
  kFrameIfindex = 7,  // sll_ifindex the frame arrived on
  kFrameStride = 8,
};


}  // namespace
