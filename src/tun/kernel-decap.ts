// uvs-tun-decap's kernel fast path: the addon's tc ingress eBPF program (native/src/tc-decap.cc)
// on each named device strips the outer header of IPIP packets for this host, so the kernel
// receives the inner packet on that device as it would from tunl0. No user space per packet: the
// real server's added cost is a few hundred nanoseconds of softirq instead of a wake-up of the
// agent and two copies (tens of microseconds on the lab's VM; native/README.md).
//
// The agent's raw socket and TUN device stay as the slow path for what the program leaves to the
// stack: outer fragments (reassembled by the stack, then delivered to the raw socket) and IPIP that
// arrives on a device without the program.
//
// The program goes with its BPF link: close() (or the process ending, even by SIGKILL) takes it
// off the device.

import type { NativeAddon, TcDecapCounters, TcDecapProgram } from '../native/addon';
import { loadNative } from '../native/addon';
import { DecapError } from './decap';

export interface KernelDecapOptions {
  /** Devices to attach to (their tc ingress hook). */
  devices: readonly string[];
  /** Only IPIP to this outer destination (host-order integer); 0: any local address. */
  local: number;
  /** Only IPIP from these outer sources (host order); empty: any. */
  allow: readonly number[];
  /** For tests: the addon (default: loadNative()). */
  native?: NativeAddon;
}

/** How often the agent checks that each device still has its program (KernelDecap.refresh). */
export const REFRESH_MS = 1000;

interface Attachment {
  device: string;
  /** The device's ifindex when the program was attached; 0 while detached. */
  ifindex: number;
  program: TcDecapProgram | null;
  /** Counters of earlier attachments (the device went away and came back): reported in sum. */
  base: TcDecapCounters;
}

const ZERO: TcDecapCounters = { decapsulated: 0, notAllowed: 0, fragments: 0, failed: 0, notLocal: 0 };

function add(a: TcDecapCounters, b: TcDecapCounters): TcDecapCounters {
  return {
    decapsulated: a.decapsulated + b.decapsulated, notAllowed: a.notAllowed + b.notAllowed, fragments: a.fragments + b.fragments,
    failed: a.failed + b.failed, notLocal: a.notLocal + b.notLocal,
  };
}

/** What refresh() did, per device, for the log. */
export interface RefreshEvent {
  device: string;
  what: 'detached' | 'attached' | 'failed';
  detail: string;
}

export class KernelDecap {
  private readonly attachments: Attachment[] = [];
  private readonly native: NativeAddon;
  private readonly opts: KernelDecapOptions;

  /** Attaches to every device, or to none: a failure detaches those already done and throws a
   *  DecapError naming the device. */
  constructor(opts: KernelDecapOptions) {
    this.native = opts.native ?? loadNative();
    this.opts = opts;
    if (opts.devices.length === 0) throw new DecapError('kernel decapsulation needs at least one device');
    try {
      for (const device of opts.devices) {
        let ifindex: number;
        try {
          ifindex = this.native.ifIndex(device);
        } catch (err) {
          throw new DecapError(`--bpf ${device}: no such device in this network namespace (${(err as Error).message})`);
        }
        this.attachments.push({ device, ifindex, program: this.attach(device, ifindex), base: ZERO });
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  private attach(device: string, ifindex: number): TcDecapProgram {
    try {
      return this.native.tcDecapAttach(ifindex, { local: this.opts.local, allow: this.opts.allow });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // tcx came with Linux 6.6; an older kernel refuses the attach type.
      const hint = e.code === 'EINVAL' ? ' (tc ingress programs through BPF links need Linux 6.6 or later; without --bpf the agent decapsulates in user space)' : '';
      throw new DecapError(`--bpf ${device}: ${e.message}${hint}`);
    }
  }

  get devices(): string[] {
    return this.attachments.map((a) => a.device);
  }

  /**
   * Follows the devices: the kernel takes a tc program off a device that is deleted (its BPF link
   * stays, defunct), and a device of the same name created later (a re-plugged veth, a re-created
   * bond) is another device, with a new ifindex. So a device that is gone is marked detached, and
   * one whose ifindex changed, or that is back, gets the program again; meanwhile its IPIP goes to
   * the TUN device (the slow path), so nothing is lost. Counters stay cumulative. The CLI calls
   * this every REFRESH_MS; each call is one if_nametoindex per device.
   */
  refresh(): RefreshEvent[] {
    const events: RefreshEvent[] = [];
    for (const a of this.attachments) {
      let now: number;
      try {
        now = this.native.ifIndex(a.device);
      } catch {
        now = 0; // gone
      }
      if (now === a.ifindex) continue;
      if (a.program) {
        a.base = add(a.base, a.program.counters());
        a.program.close();
        a.program = null;
        events.push({ device: a.device, what: 'detached', detail: now === 0 ? 'the device is gone' : `the device was re-created (ifindex ${a.ifindex} -> ${now})` });
      }
      a.ifindex = 0;
      if (now === 0) continue;
      try {
        a.program = this.attach(a.device, now);
        a.ifindex = now;
        events.push({ device: a.device, what: 'attached', detail: `ifindex ${now}` });
      } catch (err) {
        // Tried again at the next refresh (the device may be in the middle of being set up).
        events.push({ device: a.device, what: 'failed', detail: (err as Error).message });
      }
    }
    return events;
  }

  /** Counters per device since the agent started (all attachments), and whether it is attached now. */
  counters(): Record<string, TcDecapCounters & { attached: boolean }> {
    const out: Record<string, TcDecapCounters & { attached: boolean }> = {};
    for (const a of this.attachments) out[a.device] = { ...add(a.base, a.program ? a.program.counters() : ZERO), attached: a.program !== null };
    return out;
  }

  /** Detaches every program. Idempotent. */
  close(): void {
    for (const a of this.attachments) {
      a.program?.close();
      a.program = null;
    }
  }
}
