// The tc ingress IP-in-IP decapsulation program (tc-decap.cc) as uvs_native.cc sees it.
#pragma once

#include <napi.h>

namespace uvs_tc_decap {

// tcDecapAttach(ifindex, {local, allow}) -> {linkFd, progFd, countersFd, counters(), close()}.
Napi::Value Attach(const Napi::CallbackInfo& info);

}  // namespace uvs_tc_decap
