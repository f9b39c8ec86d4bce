// The AF_XDP backend (xdp.cc) as uvs_native.cc sees it: the classes and functions it registers in
// UvsNative, and what RingPoller needs to spin on an XdpSocket's RX ring.
#pragma once

#include <napi.h>

namespace uvs_xdp {

class XdpSocket;

Napi::Function DefineUmem(Napi::Env env);
Napi::Function DefineSocket(Napi::Env env);

// xdpAttach(ifindex, {mac, maxFrame, mapEntries}), bpfMapUpdate(mapFd, key, on), ifQueueCount(name).
Napi::Value Attach(const Napi::CallbackInfo& info);
Napi::Value MapUpdate(const Napi::CallbackInfo& info);
Napi::Value IfQueueCount(const Napi::CallbackInfo& info);

// The XdpSocket behind v, or nullptr when v is not one (checked by a type tag, so any other
// wrapped object, a PacketSocket for one, is never taken for an XdpSocket).
XdpSocket* AsSocket(Napi::Env env, const Napi::Value& v);
bool IsOpen(const XdpSocket* s);
// True when the RX ring holds a descriptor rx() has not taken (an acquire load of the producer).
bool RxReady(const XdpSocket* s);

}  // namespace uvs_xdp
