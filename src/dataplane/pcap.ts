// The libpcap binding, loaded in exactly this module and given a TypeScript type here; the pcap
// backend (pcap-loop.ts) depends on this interface only.
//
// We use the `pcap` package's compiled binding (build/Release/pcap_binding.node) directly rather
// than its pcap.js wrapper: the wrapper emits an event with a freshly allocated object for every
// packet, while the binding copies each packet into one Buffer we pass and calls one function we
// registered, so the per-packet path allocates nothing. The binding is a NAN addon, which loads in
// one thread per process: the pcap backend therefore runs on the main thread.
//
// What the binding does (pcap_session.cc of pcap 3.1.0), and what we rely on:
//   open_live(dev, filter, bufferSize, snapLen, dumpFile, onPacket, monitor, timeoutMs, warn, promisc)
//     pcap_create + set_snaplen/buffer_size/promisc; timeoutMs ≤ 0 selects immediate mode
//     (pcap_set_immediate_mode, TPACKET_V3 without the block timeout); pcap_activate; non-blocking;
//     pcap_compile + pcap_setfilter of `filter` (libpcap filter syntax, not BPF instructions).
//   dispatch(frame, header): pcap_dispatch(…, 1, …) until nothing is left; per packet the frame is
//     copied into `frame` (cut at its length), ts/caplen/len written into `header` (4 × u32, host
//     order), then onPacket() is called with no arguments.
//   start_polling(): a uv_poll on the pcap fd that calls the session object's `read_callback`.
//   inject(buf): pcap_inject of the whole Buffer; throws "Pcap inject failed." on a short write.
//   close(): only pcap_breakloop; the next dispatch() then returns -2 and really closes the handle
//     and stops the poll. There is no setfilter after open: a new filter means a new session.

import { dirname, join } from 'node:path';
import { intToIpv4 } from '../packet/addr';
import { UvsError } from '../runtime/errors';

/**
 * The binding's name for the capture's link type: 'LINKTYPE_ETHERNET' (the only one uvs forwards),
 * 'LINKTYPE_NULL', 'LINKTYPE_IEEE802_11_RADIO', 'LINKTYPE_RAW', 'LINKTYPE_LINUX_SLL', or another
 * LINKTYPE_ name the binding may add.
 */
export type PcapLinkType = string;

export interface PcapStats {
  ps_recv: number;
  ps_drop: number;
  ps_ifdrop: number;
}

/** One binding session (class PcapSession of pcap_session.cc). */
export interface PcapBindingSession {
  open_live(
    device: string, filter: string, bufferSize: number, snapLength: number, dumpFile: string,
    onPacket: () => void, monitor: boolean, bufferTimeoutMs: number, warn: (message: string) => void, promiscuous: boolean,
  ): PcapLinkType;
  dispatch(frame: Buffer, header: Buffer): number;
  start_polling(): void;
  inject(frame: Buffer): void;
  close(): void;
  stats(): PcapStats;
  /** Called by the binding's uv_poll when the fd is readable. */
  read_callback?: () => void;
}

export interface PcapBinding {
  PcapSession: new () => PcapBindingSession;
  lib_version(): string;
}

/** Header written by dispatch(): u32 cells, host byte order. */
export const PCAP_HDR_TS_SEC = 0;
export const PCAP_HDR_TS_USEC = 1;
export const PCAP_HDR_CAPLEN = 2;
export const PCAP_HDR_LEN = 3;
export const PCAP_HDR_BYTES = 16;

export class PcapLoadError extends UvsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UVS_ERR_PCAP_LOAD', message, options);
  }
}

let binding: PcapBinding | null = null;

/** Loads the binding once; the error says what to install when it is missing. */
export function loadPcap(): PcapBinding {
  if (binding) return binding;
  let pkgDir: string;
  try {
    pkgDir = dirname(require.resolve('pcap/package.json'));
  } catch (err) {
    // An optional dependency: npm leaves it out when it cannot be built (no libpcap-dev yet).
    throw new PcapLoadError('--io pcap: the npm package "pcap" is not installed (it is optional, and npm skips it ' +
      'when it cannot be built); install Debian\'s libpcap-dev (apt-get install libpcap-dev, or bash netns-scripts/deps.sh build), then run `npm install` again');
  }
  const path = join(pkgDir, 'build', 'Release', 'pcap_binding.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional native binding at a path found at run time
    binding = require(path) as PcapBinding;
  } catch (err) {
    throw new PcapLoadError(`--io pcap: cannot load ${path}: ${(err as Error).message}; rebuild it with ` +
      '`npm rebuild pcap` (needs libpcap-dev, make, g++, python3)');
  }
  return binding;
}

export interface PcapHostSet {
  /** IPv4 destinations to capture (the VIPs). Host-order numbers. */
  destinations: readonly number[];
  /** IPv4 sources to capture (NAT real servers, for their replies). Host-order numbers. */
  sources: readonly number[];
}


const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/**
 * The libpcap filter equivalent to the ring's kernel filter (bpf.ts buildHostFilter): frames the
 * interface received (`inbound`: not PACKET_OUTGOING, which also keeps our own injected frames
 * out) addressed to the interface's MAC (what PACKET_HOST means for unicast), IPv4, to a VIP or
 * from a NAT real server. Null when there is nothing to capture: libpcap refuses a filter that
 * rejects every packet, so the caller then opens no session at all.
 */
export function pcapFilter(mac: string, hosts: PcapHostSet): string | null {
  if (!MAC_RE.test(mac)) throw new RangeError(`pcapFilter: "${mac}" is not a MAC address`);
  const terms = [
    ...hosts.destinations.map((a) => `dst host ${intToIpv4(a)}`),
    ...hosts.sources.map((a) => `src host ${intToIpv4(a)}`),
  ];
  if (terms.length === 0) return null;
  return `inbound and ether dst ${mac.toLowerCase()} and ip and (${terms.join(' or ')})`;
}
