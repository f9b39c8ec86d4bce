// Frames a worker builds itself (TUN's encapsulated packets, their segments and fragments, ICMP
// errors) rather than forwarding in place in the RX ring: the ring frame has no headroom for an
// outer header, so the output is written into one preallocated buffer per worker and queued per
// egress interface. The worker sends every queue with one sendmmsg per interface after each RX
// batch (send() takes any buffer), or earlier when the buffer is nearly full, then resets it.
// Nothing here allocates after construction.

export const DEFAULT_TX_BUFFER_BYTES = 1 << 20;
/** The largest single output: a 64 KiB super-frame segmented, with per-segment headers. */
export const TX_MAX_OUTPUT_BYTES = 128 * 1024;

export class TxQueue {
  readonly buffer: Uint8Array;
  readonly view: DataView;
  readonly offsets: Int32Array[];
  readonly lengths: Int32Array[];
  readonly counts: Int32Array;
  /** Frames per egress queue. */
  readonly depth: number;
  /** Bytes of `buffer` in use. */
  used = 0;
  /** Frames queued over all interfaces. */
  pending = 0;

  constructor(egressCount: number, bytes = DEFAULT_TX_BUFFER_BYTES, depth = 1024) {
    if (!Number.isInteger(egressCount) || egressCount < 1 || egressCount > 255) {
      throw new RangeError(`TxQueue: egressCount must be 1..255, got ${egressCount}`);
    }
    this.buffer = new Uint8Array(bytes);
    this.view = new DataView(this.buffer.buffer);
    this.depth = depth;
    this.offsets = [];
    this.lengths = [];
    for (let i = 0; i < egressCount; i++) {
      this.offsets.push(new Int32Array(depth));
      this.lengths.push(new Int32Array(depth));
    }
    this.counts = new Int32Array(egressCount);
  }

  get egressCount(): number {
    return this.counts.length;
  }

  /** True when the worker should send what is queued before the next frame is processed. */
  get needsFlush(): boolean {
    return this.used + TX_MAX_OUTPUT_BYTES > this.buffer.length;
  }

  /** Where the next frame of up to `bytes` can be written, or -1 when there is no room. */
  reserve(bytes: number): number {
    return this.used + bytes <= this.buffer.length ? this.used : -1;
  }

  /**
   * Queues buffer[offset .. offset + length) for `egress`; `offset` must be the last reserve()
   * answer. False (nothing queued) when that interface's queue is full or egress is unknown.
   */
  commit(offset: number, length: number, egress: number): boolean {
    if (egress < 0 || egress >= this.counts.length) return false;
    const k = this.counts[egress]!;
    if (k >= this.depth) return false;
    this.offsets[egress]![k] = offset;
    this.lengths[egress]![k] = length;
    this.counts[egress] = k + 1;
    this.pending++;
    // Keep frame starts 8-byte aligned: the outer header copy reads 32-bit words.
    this.used = (offset + length + 7) & ~7;
    return true;
  }

  /** After the worker sent everything. */
  reset(): void {
    this.counts.fill(0);
    this.used = 0;
    this.pending = 0;
  }
}
