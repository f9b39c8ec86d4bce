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

export class KernelDecap {
  private readonly programs: Array<{ device: string; program: TcDecapProgram }> = [];

  /** Attaches to every device, or to none: a failure detaches those already done and throws a
   *  DecapError naming the device. */
  constructor(opts: KernelDecapOptions) {
    const native = opts.native ?? loadNative();
    if (opts.devices.length === 0) throw new DecapError('kernel decapsulation needs at least one device');
    try {
      for (const device of opts.devices) {
        let ifindex: number;
        try {
          ifindex = native.ifIndex(device);
        } catch (err) {
          throw new DecapError(`--bpf ${device}: no such device in this network namespace (${(err as Error).message})`);
        }
        try {
          this.programs.push({ device, program: native.tcDecapAttach(ifindex, { local: opts.local, allow: opts.allow }) });
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          // tcx came with Linux 6.6; an older kernel refuses the attach type.
          const hint = e.code === 'EINVAL' ? ' (tc ingress programs through BPF links need Linux 6.6 or later; without --bpf the agent decapsulates in user space)' : '';
          throw new DecapError(`--bpf ${device}: ${e.message}${hint}`);
        }
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  get devices(): string[] {
    return this.programs.map((p) => p.device);
  }

  /** Counters per device since attach. */
  counters(): Record<string, TcDecapCounters> {
    const out: Record<string, TcDecapCounters> = {};
    for (const { device, program } of this.programs) out[device] = program.counters();
    return out;
  }

  /** Detaches every program. Idempotent. */
  close(): void {
    for (const { program } of this.programs) program.close();
    this.programs.length = 0;
  }
}
