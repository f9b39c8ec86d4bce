// Conventions shared by every header class in src/packet/.
//
// decode(buf, view, offset, length): `buf` and `view` cover exactly the same bytes (same
// ArrayBuffer, byteOffset and byteLength; see viewOf), `offset` is where the header starts and
// `length` how many bytes from there belong to this layer (the rest of the frame, or the parent's
// payload length). Decoders reset their preallocated object, check bounds before every read, return
// 0 or a DropReason, and never throw or allocate. A `length` that runs past the buffer is clipped.
//
// encode(buf, view, offset, flags, ...): writes the fields back at `offset` and returns the number
// of bytes written. With flags 0 the fields are written as they are — what was decoded comes out
// byte-identical, wrong lengths and checksums included, so tests can build broken packets.
// FIX_LENGTHS derives length fields (IHL, total length, data offset, UDP length, VRRP count) from
// the options/payload; COMPUTE_CHECKSUMS computes the checksum over the bytes already in `buf`
// (payload first, then headers from the inside out, as gopacket serializes by prepending).

export const enum EncodeFlag {
  NONE = 0,
  FIX_LENGTHS = 1,
  COMPUTE_CHECKSUMS = 2,
  /** FIX_LENGTHS | COMPUTE_CHECKSUMS */
  FIX_ALL = 3,
}

/** A DataView over exactly the bytes of `buf`, as the decoders expect. */
export function viewOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Bytes usable from `offset`: `length` clipped to the buffer, 0 for an offset outside it. */
export function clipLength(buf: Uint8Array, offset: number, length: number): number {
  if (offset < 0 || offset > buf.length || length < 0) return 0;
  const room = buf.length - offset;
  return length < room ? length : room;
}
