// The adaptive busy-poll window of a data-plane worker (worker.ts, uvsd --busy-poll and
// --busy-poll-max; native/README.md "Adaptive busy polling").
//
// A worker that sleeps in epoll_wait between two frames pays a wake-up per frame: on a VM an idle
// vCPU halts, and waking it costs an IPI and a VM exit and entry, about 50 µs on this project's
// machine, plus a cold run of rx, pipeline and send — the whole ≤ 50 µs budget of a pass (issue 12).
// The kernel's own forwarding pays none: it runs in the softirq of the CPU the frame arrived on.
// So after a turn that found frames, the worker spins on its rings' status words (with
// sched_yield between looks) for a window sized from the gaps between its recent turns: a flow
// whose frames come at most max/1.5 apart keeps the worker awake from one frame to the next; a
// gap longer than that counts as none, so slow traffic and an idle worker sleep after the fixed
// minimum window, as before, and idle costs nothing.

/** Turns remembered: NAT alternates short (request → reply) and long (reply → next request)
 *  gaps, and the window must cover the long one. */
const GAPS = 8;
/** The window is this times the longest remembered gap: room for jitter. */
const SLACK = 1.5;
/** Traffic is sustained after this many turns in a row, each begun within SUSTAINED_GAP_US of the
 *  end of the one before: the worker hardly waits for frames. */
const SUSTAINED_TURNS = 8;
const SUSTAINED_GAP_US = 100;

export class SpinWindow {
  private readonly gaps = new Float64Array(GAPS);
  private at = 0;
  private lastMs = -Infinity;
  /** The window the next spin takes, µs. */
  window: number;
  /**
   * Frames keep coming (SUSTAINED_TURNS turns in a row, each begun within SUSTAINED_GAP_US of the
   * end of the one before; a gap between turn starts would not do: a saturated worker's turns are
   * long). The worker then spins at its own policy rather than under
   * SCHED_IDLE: with its CPUs shared by busy threads (the HTTP bench's wrk and servers), an
   * idle-policy spin is preempted by each of them that wakes and sits on ready frames until that
   * thread blocks, which halved keep-alive HTTP through NAT (native/README.md, "Sustained traffic
   * spins at the worker's own policy"). Sparse traffic (request/response at 1 per ms) is never
   * sustained, so its spins stay polite.
   */
  sustained = false;
  private run = 0;

  /** minUs: the fixed window (--busy-poll); maxUs: the longest adaptive one (≤ minUs: fixed). */
  constructor(private readonly minUs: number, private readonly maxUs: number) {
    this.window = minUs;
  }

  /** A turn with frames begins at nowMs (before its drain): how long the worker waited for it
   *  since the previous turn ended decides whether the traffic is sustained. */
  began(nowMs: number): void {
    this.run = (nowMs - this.lastMs) * 1000 <= SUSTAINED_GAP_US ? this.run + 1 : 0;
    this.sustained = this.run >= SUSTAINED_TURNS;
  }

  /** A turn that found frames ended at nowMs (a monotonic clock in ms): the window is sized again. */
  turn(nowMs: number): number {
    const gapUs = (nowMs - this.lastMs) * 1000;
    this.lastMs = nowMs;
    // A gap the longest window could not bridge counts as none: such traffic sleeps between frames.
    this.gaps[this.at] = gapUs * SLACK <= this.maxUs ? gapUs : 0;
    this.at = (this.at + 1) % GAPS;
    let longest = 0;
    for (let i = 0; i < GAPS; i++) if (this.gaps[i]! > longest) longest = this.gaps[i]!;
    this.window = Math.max(this.minUs, Math.min(this.maxUs, Math.round(longest * SLACK)));
    return this.window;
  }
}
