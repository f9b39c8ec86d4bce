// The fast path's maps and their operations (fast-path.cc); the program block that uses them is in
// xdp.cc (FastPathBlock). Registered in uvs_native.cc.
#pragma once

#include <napi.h>

namespace uvs_fast {

// fastPathMaps({entries, slots}) -> {fastFd, hopsFd, hops: ArrayBuffer, close()}
Napi::Value Maps(const Napi::CallbackInfo& info);
// fastPut(fd, protocol, saddr, sport, daddr, dport, destSlot, base) -> 0 or an errno
Napi::Value Put(const Napi::CallbackInfo& info);
// fastIdle(fd, protocol, saddr, sport, daddr, dport[, out]) -> ms since the flow's last packet, -1
// absent; out (Float64Array): [in_pkts base, packets forwarded]
Napi::Value Idle(const Napi::CallbackInfo& info);
// fastDelete(fd, protocol, saddr, sport, daddr, dport) -> true when it was there
Napi::Value Delete(const Napi::CallbackInfo& info);

}  // namespace uvs_fast
