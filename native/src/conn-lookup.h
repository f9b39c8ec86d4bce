// Batched connection-table lookups with software prefetch (conn-lookup.cc), the native half of
// src/conn/table.ts's lookupInBatch / lookupOutBatch. Registered in uvs_native.cc.
#pragma once

#include <napi.h>

namespace uvs_conn {

// connLookupBatch(cells: Int32Array, io: Int32Array, n, reply) -> hits
//   cells: the whole connection table (its SharedArrayBuffer); io: a ConnLookupBatch's cells
//   (IoField blocks of `size` cells each, size = io.length / kIoFields); n keys at the front.
//   Writes INDEX (entry, -1 a confirmed miss, -2 a miss the table's VERSION did not confirm:
//   look it up again in JS), SEQ, DADDR, DPORT, DEST_SLOT, STATE, META and CONTROL.
Napi::Value LookupBatch(const Napi::CallbackInfo& info);

}  // namespace uvs_conn
