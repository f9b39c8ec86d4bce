// The Prometheus text of `uvsd --metrics` (README.md, "Metrics"), built with prom-client from
// one MetricsSnapshot per scrape: every metric's collect() reads the snapshot handed to render(),
// so nothing is counted on the packet path and nothing is kept between scrapes.
//
// Two families of series:
// - node_exporter's ipvs collector (collector/ipvs_linux.go), with exactly its names, HELP texts,
//   types, labels and label values, so IPVS dashboards and alerts read uvsd unchanged. Its input
//   is procfs (prometheus/procfs ipvs.go) over /proc/net/ip_vs_stats and /proc/net/ip_vs:
//     local_address   the VIP as dotted quad; "" for a fwmark service (procfs: LocalAddress nil)
//     local_port      decimal; "0" for a fwmark service
//     remote_address  the real server, dotted quad; remote_port decimal
//     proto           the first word of the service line: "TCP", "UDP" or "FWM"
//     local_mark      "" except for fwmark services: the mark as the kernel prints it, %08X
//   Real servers whose label sets are equal are summed (the collector's `sums` map), and series
//   are listed in client_golang's order (labels by name, series by their label values).
// - uvs_* for what IPVS has no file for: VRRP, the checkers, the data-plane workers, the
//   connection table.
//
// The node_ipvs_* text is written here rather than by prom-client: its backend families grow with
// the table, and prom-client spends 20-40 µs formatting a labelled series (its set() 20 µs more)
// where a template string takes 2-3 µs. With 10,000 services of 2 real servers (60,000 backend
// series) a whole render took 1.4-3.0 s with prom-client and 0.8-1.4 s this way, on the 2-core
// test machine at a load average of 12-19 (a throw-away script rendering the KNOWN_TABLE fixture
// repeated; the rest of the time is building and sorting the list), all of it in one block of the
// main thread. Now (IpvsText) the label strings are kept per real server and the sorted order while
// the table's layout stays, the numbers are copied in one short pass, and the rest runs in slices
// of about 8 ms with a turn of the event loop between them, its pieces encoded to Buffers as they
// are made. 10,000 services × 10 real servers (100,000 series, 45 MB of text), same machine, load
// 3-5: before, 0.9-1.1 s in one block; now 205 ms in all with at most 18 ms in a block (a scrape
// after a table change, which sorts again: 480 ms, at most 41 ms) — `node dist/bench/run.js metrics`.
// The uvs_* families are per VRRP instance, worker and checker, so they stay with prom-client. Both parts use the same layout:
// families separated by a blank line, as prom-client writes them.

import { Counter, Gauge, Registry } from 'prom-client';
import { intToIpv4 } from '../packet/addr';
import { DROP_REASON_COUNT, dropReasonName } from '../packet/drop';
import type { ServiceEntry } from '../service/model';
import { VRRP_STATE_NUMBER, type LinkWatchSnapshot, type MetricsSnapshot } from './snapshot';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/** The labels of node_ipvs_backend_*, in node_exporter's order (fullIpvsBackendLabels). */
export const IPVS_BACKEND_LABELS = ['local_address', 'local_port', 'remote_address', 'remote_port', 'proto', 'local_mark'] as const;
type BackendLabels = Record<(typeof IPVS_BACKEND_LABELS)[number], string>;

export interface IpvsBackend {
  labels: BackendLabels;
  active: number;
  inactive: number;
  weight: number;
}

/** The proto word of /proc/net/ip_vs (ip_vs_info_seq_show): FWM for fwmark services. */
function procProto(s: ServiceEntry): string {
  if (s.fwmark !== 0) return 'FWM';
  return s.protocol === IPPROTO_TCP ? 'TCP' : s.protocol === IPPROTO_UDP ? 'UDP' : String(s.protocol);
}

/** One entry per label set, summed as node_exporter sums them (its key: the values joined with
 *  "-"), sorted as client_golang lists them: by the label values taken in label-name order. The
 *  labels are built in that (name) order too, as client_golang prints them. */
export function ipvsBackends(services: readonly ServiceEntry[]): IpvsBackend[] {
  const sums = new Map<string, IpvsBackend & { sortKey: string }>();
  for (const s of services) {
    const fwm = s.fwmark !== 0;
    const localAddress = fwm ? '' : intToIpv4(s.addr);
    const localPort = fwm ? '0' : String(s.port);
    const proto = procProto(s);
    const localMark = fwm ? s.fwmark.toString(16).toUpperCase().padStart(8, '0') : '';
    for (const d of s.dests) {
      const remoteAddress = intToIpv4(d.addr);
      const remotePort = String(d.port);
      const key = `${localAddress}-${localPort}-${remoteAddress}-${remotePort}-${proto}-${localMark}`;
      let sum = sums.get(key);
      if (!sum) {
        const labels: BackendLabels = {
          local_address: localAddress, local_mark: localMark, local_port: localPort, proto, remote_address: remoteAddress, remote_port: remotePort,
        };
        // NUL sorts below every character a value holds, so comparing the joined values compares
        // them one label after the other.
        sum = { labels, active: 0, inactive: 0, weight: 0, sortKey: [localAddress, localMark, localPort, proto, remoteAddress, remotePort].join('\0') };
        sums.set(key, sum);
      }
      sum.active += d.activeConns;
      sum.inactive += d.inactConns;
      sum.weight += d.weight;
    }
  }
  return [...sums.values()].sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))
    .map(({ labels, active, inactive, weight }) => ({ labels, active, inactive, weight }));
}

/** The text format's escapes for a label value (backslash, double quote, newline). */
function labelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

const IPVS_HEAD: ReadonlyArray<readonly [string, string]> = [
  ['node_ipvs_connections_total', 'The total number of connections made.'],
  ['node_ipvs_incoming_packets_total', 'The total number of incoming packets.'],
  ['node_ipvs_outgoing_packets_total', 'The total number of outgoing packets.'],
  ['node_ipvs_incoming_bytes_total', 'The total amount of incoming data.'],
  ['node_ipvs_outgoing_bytes_total', 'The total amount of outgoing data.'],
];
const IPVS_BACKEND_FAMILIES: ReadonlyArray<readonly [string, string]> = [
  ['node_ipvs_backend_connections_active', 'The current active connections by local and remote address.'],
  ['node_ipvs_backend_connections_inactive', 'The current inactive connections by local and remote address.'],
  ['node_ipvs_backend_weight', 'The current backend weight by local and remote address.'],
];

/** One real server's label set, kept between scrapes (IpvsText): it changes only with the table. */
interface BackendRow {
  /** What the row was built from: checked at each scrape, a change builds a new row. */
  svcAddr: number; svcPort: number; fwmark: number; protocol: number; addr: number; port: number;
  /** `{local_address="…",…}` as printed, labels in name order. */
  labels: string;
  /** The label values in label-name order joined by NUL (client_golang's series order). */
  sortKey: string;
}

/** Gives the event loop a turn between two slices of a render (a scrape of a large table must not
 *  hold the control plane: uvsadm and the VRRP glue wait behind it). */
export type Yielder = () => Promise<void>;

/** A slice of work is over: the generator yields, its driver decides whether to wait. */
type Slices<T> = Generator<void, T, void>;

/** A piece of the text, encoded at once: its bytes live outside the JS heap. Kept as strings,
 *  the 100,000 series' pieces (a few hundred thousand rope nodes) survived young-generation
 *  collections that copied them, pauses of 70 ms on the test machine. */
const piece = (text: string): Buffer => Buffer.from(text, 'utf8');

/** Work done between two yields: well under the 50 ms a scrape may hold the main thread. */
const SLICE_NS = 8_000_000n;
/** Rows between two looks at the clock. */
const CLOCK_EVERY = 256;

/**
 * node_exporter's ipvs families, built incrementally: label strings are kept per real server
 * (keyed by its slot, checked against the addresses they were built from) and the sorted order
 * of the series is kept while the table's layout stays the same, so a scrape of an unchanged
 * table only copies the numbers and prints them. The numbers of every real server are copied in
 * one synchronous pass at the start, so a render that yields still prints one consistent
 * snapshot even if the table or the counters change meanwhile.
 */
export class IpvsText {
  private rows = new Map<number, BackendRow>();
  /** The previous scrape's rows in table order, and their sorted order (indexes into it) with
   *  group starts (equal label sets are summed, as the collector's `sums` map does). */
  private lastRows: BackendRow[] = [];
  private order: Int32Array = new Int32Array(0);
  private groupStart: Uint8Array = new Uint8Array(0);

  private row(s: ServiceEntry, addr: number, port: number, slot: number): BackendRow {
    const old = this.rows.get(slot);
    if (old !== undefined && old.svcAddr === s.addr && old.svcPort === s.port && old.fwmark === s.fwmark &&
      old.protocol === s.protocol && old.addr === addr && old.port === port) return old;
    const fwm = s.fwmark !== 0;
    const localAddress = fwm ? '' : intToIpv4(s.addr);
    const localPort = fwm ? '0' : String(s.port);
    const proto = procProto(s);
    const localMark = fwm ? s.fwmark.toString(16).toUpperCase().padStart(8, '0') : '';
    const remoteAddress = intToIpv4(addr);
    const remotePort = String(port);
    const values = [localAddress, localMark, localPort, proto, remoteAddress, remotePort];
    const names = ['local_address', 'local_mark', 'local_port', 'proto', 'remote_address', 'remote_port'];
    const row: BackendRow = {
      svcAddr: s.addr, svcPort: s.port, fwmark: s.fwmark, protocol: s.protocol, addr, port,
      labels: `{${values.map((v, i) => `${names[i]!}="${labelValue(v)}"`).join(',')}}`,
      sortKey: values.join('\0'),
    };
    this.rows.set(slot, row);
    return row;
  }

  /** The text of one snapshot in pieces (about CLOCK_EVERY lines each: 100,000 series make some
   *  45 MB, which joined into one string would hold the thread for 0.2 s and more); `yielder`
   *  gives the event loop a turn between slices of at most about SLICE_NS of work. */
  async render(snap: MetricsSnapshot, yielder: Yielder): Promise<Buffer[]> {
    const steps = this.build(snap);
    let sliceStart = process.hrtime.bigint();
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (process.hrtime.bigint() - sliceStart >= SLICE_NS) {
        await yielder();
        sliceStart = process.hrtime.bigint();
      }
    }
  }

  /** The same text in one synchronous pass. */
  renderSync(snap: MetricsSnapshot): string {
    const steps = this.build(snap);
    for (;;) {
      const r = steps.next();
      if (r.done) return Buffer.concat(r.value).toString('utf8');
    }
  }

  /** The render, as a generator that yields every CLOCK_EVERY rows (a point where it may wait). */
  private *build(snap: MetricsSnapshot): Slices<Buffer[]> {
    // ---- one synchronous pass: a copy of every number (one consistent snapshot per scrape) and
    // of what names each real server; nothing else, so the pass stays short ----
    let n = 0;
    for (const s of snap.services) n += s.dests.length;
    const values = [new Float64Array(n), new Float64Array(n), new Float64Array(n)] as const;
    const svcIndex = new Int32Array(n);
    const addrs = new Float64Array(n);
    const ports = new Int32Array(n);
    const slots = new Float64Array(n);
    let i = 0;
    for (let si = 0; si < snap.services.length; si++) {
      for (const d of snap.services[si]!.dests) {
        values[0][i] = d.activeConns;
        values[1][i] = d.inactConns;
        values[2][i] = d.weight;
        svcIndex[i] = si;
        addrs[i] = d.addr;
        ports[i] = d.port;
        slots[i] = d.slot;
        i++;
      }
    }
    yield;
    // ---- the label rows, kept from earlier scrapes where nothing changed ----
    const rows: BackendRow[] = new Array<BackendRow>(n);
    let same = n === this.lastRows.length;
    for (i = 0; i < n; i++) {
      const r = this.row(snap.services[svcIndex[i]!]!, addrs[i]!, ports[i]!, slots[i]!);
      if (same && this.lastRows[i] !== r) same = false;
      rows[i] = r;
      if ((i & (CLOCK_EVERY - 1)) === CLOCK_EVERY - 1) yield;
    }
    const t = snap.totals;
    const parts: Buffer[] = [];
    const totals = [t.conns, t.inpkts, t.outpkts, t.inbytes, t.outbytes];
    IPVS_HEAD.forEach(([name, help], k) => parts.push(piece(`# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${totals[k]!}\n\n`)));

    // ---- the sorted order: kept while the layout is the same, else sorted again ----
    if (!same) {
      if (this.rows.size > n) this.dropStale(rows);
      this.order = yield* sortedOrder(rows);
      const starts = new Uint8Array(n);
      for (let k = 0; k < n; k++) starts[k] = k === 0 || rows[this.order[k]!]!.sortKey !== rows[this.order[k - 1]!]!.sortKey ? 1 : 0;
      this.groupStart = starts;
      this.lastRows = rows;
    }
    const order = this.order;
    const starts = this.groupStart;

    // ---- the three backend families, in slices ----
    for (let f = 0; f < IPVS_BACKEND_FAMILIES.length; f++) {
      const [name, help] = IPVS_BACKEND_FAMILIES[f]!;
      const v = values[f]!;
      let text = `# HELP ${name} ${help}\n# TYPE ${name} gauge`;
      let k = 0;
      let lines = 0;
      while (k < n) {
        const first = order[k]!;
        let sum = v[first]!;
        k++;
        while (k < n && starts[k] === 0) sum += v[order[k++]!]!;
        text += `\n${name}${rows[first]!.labels} ${sum}`;
        if (++lines === CLOCK_EVERY) {
          lines = 0;
          parts.push(piece(text));
          text = '';
          yield;
        }
      }
      parts.push(piece(`${text}${f === IPVS_BACKEND_FAMILIES.length - 1 ? '\n' : '\n\n'}`));
    }
    return parts;
  }

  /** Forgets rows of real servers no longer in the table (after the layout changed). */
  private dropStale(rows: readonly BackendRow[]): void {
    const live = new Set(rows);
    for (const [slot, r] of this.rows) if (!live.has(r)) this.rows.delete(slot);
  }
}

/** Indexes of `rows` sorted by sortKey (stable): sorted runs merged pairwise, a yield check between
 *  slices, so a table of 100,000 real servers is not sorted in one go. */
function* sortedOrder(rows: readonly BackendRow[]): Slices<Int32Array> {
  const n = rows.length;
  const RUN = 4096;
  let a = new Int32Array(n);
  for (let k = 0; k < n; k++) a[k] = k;
  const cmp = (x: number, y: number): number => {
    const p = rows[x]!.sortKey;
    const q = rows[y]!.sortKey;
    return p < q ? -1 : p > q ? 1 : x - y;
  };
  for (let lo = 0; lo < n; lo += RUN) {
    a.subarray(lo, Math.min(n, lo + RUN)).sort(cmp);
    yield;
  }
  let b = new Int32Array(n);
  for (let width = RUN; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(n, lo + width);
      const hi = Math.min(n, lo + 2 * width);
      let x = lo;
      let y = mid;
      let o = lo;
      while (x < mid && y < hi) {
        b[o++] = cmp(a[x]!, a[y]!) <= 0 ? a[x++]! : a[y++]!;
        if ((o & (CLOCK_EVERY - 1)) === 0) yield;
      }
      while (x < mid) b[o++] = a[x++]!;
      while (y < hi) b[o++] = a[y++]!;
    }
    [a, b] = [b, a];
  }
  return a;
}

/** node_exporter's ipvs families for one snapshot, in the collector's order (one synchronous pass). */
export function nodeIpvsText(snap: MetricsSnapshot): string {
  return new IpvsText().renderSync(snap);
}

/** A turn of the event loop: I/O callbacks (uvsadm's requests, the VRRP thread's messages) run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The uvs_* series without a data plane or VRRP still print their HELP/TYPE lines, so a
 *  dashboard sees the names exist. */
export class MetricsExposition {
  readonly registry = new Registry();
  private snap: MetricsSnapshot | null = null;

  constructor() {
    const self = (): MetricsSnapshot => {
      if (!this.snap) throw new Error('metrics: collect outside render()');
      return this.snap;
    };
    const uvs = [this.registry];
    // ---- VRRP ---------------------------------------------------------------------------------
    new Gauge({
      name: 'uvs_vrrp_state', help: 'VRRP instance state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT (keepalived\'s numbers).',
      labelNames: ['instance', 'vrid', 'interface'], registers: uvs,
      collect() {
        this.reset();
        for (const i of self().vrrp) this.set({ instance: i.name, vrid: String(i.vrid), interface: i.interface }, VRRP_STATE_NUMBER[i.state] ?? -1);
      },
    });
    new Gauge({
      name: 'uvs_vrrp_priority', help: 'VRRP priority: the configured one (kind="base") and the one advertised after tracking (kind="effective").',
      labelNames: ['instance', 'kind'], registers: uvs,
      collect() {
        this.reset();
        for (const i of self().vrrp) {
          this.set({ instance: i.name, kind: 'base' }, i.basePriority);
          this.set({ instance: i.name, kind: 'effective' }, i.effectivePriority);
        }
      },
    });
    new Counter({
      name: 'uvs_vrrp_transitions_total', help: 'VRRP state transitions per instance, by the state entered.',
      labelNames: ['instance', 'state'], registers: uvs,
      collect() {
        this.reset();
        for (const i of self().vrrp) {
          for (const state of Object.keys(VRRP_STATE_NUMBER)) this.inc({ instance: i.name, state }, i.transitions[state] ?? 0);
        }
      },
    });
    const vrrpStat = (name: string, help: string, keys: Readonly<Record<string, string>>, label: string | null): void => {
      new Counter({
        name, help, labelNames: label ? ['instance', label] : ['instance'], registers: uvs,
        collect() {
          this.reset();
          for (const i of self().vrrp) {
            if (!i.stats) continue;
            for (const [key, value] of Object.entries(keys)) this.inc(label ? { instance: i.name, [label]: value } : { instance: i.name }, i.stats[key] ?? 0);
          }
        },
      });
    };
    vrrpStat('uvs_vrrp_adverts_received_total', 'VRRP adverts received (keepalived\'s advert_rcvd).', { advertsReceived: '' }, null);
    vrrpStat('uvs_vrrp_adverts_sent_total', 'VRRP adverts sent (keepalived\'s advert_sent).', { advertsSent: '' }, null);
    vrrpStat('uvs_vrrp_became_master_total', 'Times the instance became MASTER (keepalived\'s become_master).', { becameMaster: '' }, null);
    vrrpStat('uvs_vrrp_released_master_total', 'Times the instance left MASTER (keepalived\'s release_master).', { releasedMaster: '' }, null);
    vrrpStat('uvs_vrrp_priority_zero_total', 'Priority-0 adverts, by direction.', { priorityZeroReceived: 'received', priorityZeroSent: 'sent' }, 'direction');
    vrrpStat('uvs_vrrp_advert_errors_total', 'VRRP adverts discarded, by reason (keepalived\'s packet and authentication errors).', {
      lengthError: 'length', ttlError: 'ttl', versionError: 'version', typeError: 'type', checksumError: 'checksum',
      invalidAuthType: 'invalid_auth_type', authTypeMismatch: 'auth_type_mismatch', authFailure: 'auth_failure',
      intervalMismatch: 'advert_interval', addressListError: 'address_list', castMismatch: 'cast_mismatch', unicastSourceError: 'unicast_source',
    }, 'reason');

    // ---- checkers -----------------------------------------------------------------------------
    new Gauge({
      name: 'uvs_check_real_server_up', help: 'Real server state as its checkers decided: 1 up (in the table), 0 down.',
      labelNames: ['virtual_server', 'real_server'], registers: uvs,
      collect() {
        this.reset();
        for (const vs of self().checks) for (const rs of vs.servers) this.set({ virtual_server: vs.virtualServer, real_server: rs.realServer }, rs.alive ? 1 : 0);
      },
    });
    new Gauge({
      name: 'uvs_check_real_server_weight', help: 'Weight the checkers give the real server (misc_dynamic and inhibit_on_failure included).',
      labelNames: ['virtual_server', 'real_server'], registers: uvs,
      collect() {
        this.reset();
        for (const vs of self().checks) for (const rs of vs.servers) this.set({ virtual_server: vs.virtualServer, real_server: rs.realServer }, rs.weight);
      },
    });
    new Gauge({
      name: 'uvs_check_checker_up', help: 'One checker of a real server: 1 its last result counts as up, 0 down.',
      labelNames: ['virtual_server', 'real_server', 'checker', 'index'], registers: uvs,
      collect() {
        this.reset();
        for (const vs of self().checks) {
          for (const rs of vs.servers) {
            rs.checkers.forEach((c, index) => this.set({ virtual_server: vs.virtualServer, real_server: rs.realServer, checker: c.kind, index: String(index) }, c.up ? 1 : 0));
          }
        }
      },
    });
    new Gauge({
      name: 'uvs_check_quorum_up', help: 'Virtual server quorum: 1 met, 0 lost (the sorry server is in while lost).',
      labelNames: ['virtual_server'], registers: uvs,
      collect() {
        this.reset();
        for (const vs of self().checks) this.set({ virtual_server: vs.virtualServer }, vs.quorumUp ? 1 : 0);
      },
    });

    // ---- data plane ---------------------------------------------------------------------------
    const worker = (name: string, help: string, stat: string): void => {
      new Counter({
        name, help, labelNames: ['worker'], registers: uvs,
        collect() {
          this.reset();
          for (const w of self().workers) this.inc({ worker: String(w.id) }, w.stats[stat] ?? 0);
        },
      });
    };
    worker('uvs_dataplane_rx_frames_total', 'Frames a data-plane worker received.', 'rx_frames');
    worker('uvs_dataplane_tx_frames_total', 'Frames a data-plane worker sent.', 'tx_frames');
    worker('uvs_dataplane_tx_dropped_total', 'Frames the kernel refused to send (sendmmsg).', 'tx_dropped');
    worker('uvs_dataplane_not_ours_total', 'Frames that were not for a virtual service or one of its flows (left to the kernel).', 'not_ours');
    worker('uvs_dataplane_ring_drops_total', 'Frames the kernel dropped before the worker read them (PACKET_STATISTICS tp_drops).', 'ring_drops');
    worker('uvs_dataplane_gso_frames_total', 'GSO super-frames received.', 'gso_frames');
    worker('uvs_dataplane_epoll_wakeups_total', 'Turns a data-plane worker began on a wake-up from epoll (a readable ring).', 'epoll_wakeups');
    worker('uvs_dataplane_busy_poll_hits_total', 'Turns a data-plane worker began on a frame its busy poll found (no wake-up needed; uvsd --busy-poll).', 'busy_poll_hits');
    worker('uvs_dataplane_busy_poll_contended_total', 'Times the busy poll paused because the worker had waited for a CPU (CPUs busy with other work).', 'busy_poll_contended');
    worker('uvs_dataplane_busy_poll_starved_total', 'Times the busy poll paused because a spin was kept off its CPU (starved by other work).', 'busy_poll_starved');
    worker('uvs_dataplane_busy_poll_rescued_total', 'Idle-priority spins the watchdog put back to normal priority after 2 ms off the CPU.', 'busy_poll_rescued');
    worker('uvs_dataplane_busy_poll_sustained_total', 'Busy-poll spins a data-plane worker made at its own priority, not idle priority, because its traffic was sustained.', 'busy_poll_sustained');
    worker('uvs_dataplane_xdp_frames_total', 'Frames a data-plane worker received through AF_XDP (uvsd --io xdp), of its received frames.', 'xdp_frames');
    worker('uvs_dataplane_xdp_checksums_completed_total', 'AF_XDP frames whose TCP/UDP checksum the sender had left to offload, completed by uvs before forwarding.', 'xdp_csum_completed');
    worker('uvs_dataplane_fast_offloads_total', 'DR flows a data-plane worker put into the in-kernel fast path (uvsd --fast-path).', 'fast_offloads');
    worker('uvs_dataplane_fast_left_total', 'Flows that left the fast path through this worker (a SYN, FIN or RST, a super-frame, or the entry freed).', 'fast_left');
    worker('uvs_dataplane_fast_refused_total', 'Flows the fast path refused (its map was full); they stay in user space.', 'fast_refused');
    worker('uvs_dataplane_fast_kept_total', 'Expiries of offloaded flows put off because the kernel had forwarded packets of them meanwhile.', 'fast_kept');
    worker('uvs_dataplane_yields_total', 'Turns a data-plane worker cut short at its drain budget (frames left for the next turn: an overloaded worker).', 'yields');
    worker('uvs_conn_expired_total', 'Connection entries freed by the worker\'s expiry sweep (evictions included).', 'expired');
    new Gauge({
      name: 'uvs_dataplane_worker_up', help: 'Data-plane worker thread: 1 running, 0 down (being restarted).',
      labelNames: ['worker'], registers: uvs,
      collect() {
        this.reset();
        for (const w of self().workers) this.set({ worker: String(w.id) }, w.alive ? 1 : 0);
      },
    });
    new Counter({
      name: 'uvs_dataplane_worker_restarts_total', help: 'Times a data-plane worker thread was restarted.',
      labelNames: ['worker'], registers: uvs,
      collect() {
        this.reset();
        for (const w of self().workers) this.inc({ worker: String(w.id) }, w.restarts);
      },
    });
    new Counter({
      name: 'uvs_dataplane_drops_total', help: 'Frames dropped by the data plane, by reason (uvsadm --dataplane; src/packet/drop.ts).',
      labelNames: ['worker', 'reason'], registers: uvs,
      collect() {
        this.reset();
        for (const w of self().workers) {
          for (let r = 1; r < DROP_REASON_COUNT; r++) {
            const reason = dropReasonName(r);
            this.inc({ worker: String(w.id), reason }, w.drops[reason] ?? 0);
          }
        }
      },
    });
    const EVICT: Readonly<Record<string, string>> = { evict_syn: 'syn', evict_udp: 'udp', evict_nodata: 'nodata', evict_few: 'few' };
    new Counter({
      name: 'uvs_conn_evictions_total', help: 'Connection entries the flood defence (drop_entry) evicted, by class (src/conn/defense.ts).',
      labelNames: ['worker', 'reason'], registers: uvs,
      collect() {
        this.reset();
        for (const w of self().workers) {
          for (const [stat, reason] of Object.entries(EVICT)) this.inc({ worker: String(w.id), reason }, w.stats[stat] ?? 0);
        }
      },
    });

    // ---- interface watch (src/dataplane/link-watch.ts) ----------------------------------------
    // One per daemon, no labels; without a watch (no data plane, --io none) no sample at all,
    // as for the connection table below.
    const watch = (name: string, help: string, pick: (w: LinkWatchSnapshot) => number): void => {
      const metric = new Counter({ name, help, registers: uvs });
      const get = metric.get.bind(metric);
      metric.get = async () => {
        const w = self().linkWatch ?? null;
        metric.reset();
        if (w === null) return { ...(await get()), values: [] };
        metric.inc(pick(w));
        return get();
      };
    };
    watch('uvs_dataplane_link_events_total', 'Link and IPv4 address notifications the interface watch saw (ip monitor link address).', (w) => w.events);
    watch('uvs_dataplane_relinks_total', 'Re-evaluations of the captured interfaces the interface watch caused (a burst of events makes one).', (w) => w.relinks);
    watch('uvs_dataplane_link_watch_bad_lines_total', 'Lines of the interface monitor that were not understood (ignored).', (w) => w.bad);
    watch('uvs_dataplane_link_watch_restarts_total', 'Times the interface monitor child was restarted.', (w) => w.restarts);

    // ---- connection table ---------------------------------------------------------------------
    // Without a data plane there is no table: these families then print no sample (a labelless
    // prom-client metric would print 0, which would claim a table of capacity 0).
    const table = (name: string, help: string, pick: (c: NonNullable<MetricsSnapshot['conns']>) => number, type: 'gauge' | 'counter'): void => {
      const metric = type === 'gauge' ? new Gauge({ name, help, registers: uvs }) : new Counter({ name, help, registers: uvs });
      const get = metric.get.bind(metric);
      metric.get = async () => {
        const c = self().conns;
        metric.reset();
        if (c === null) return { ...(await get()), values: [] };
        if (metric instanceof Gauge) metric.set(pick(c));
        else metric.inc(pick(c));
        return get();
      };
    };
    table('uvs_conn_table_entries', 'Connection entries in use (templates included).', (c) => c.entries, 'gauge');
    table('uvs_conn_table_capacity', 'Connection table capacity (--conn-max).', (c) => c.capacity, 'gauge');
    table('uvs_conn_table_refused_total', 'New connections refused because the connection table was full.', (c) => c.refused, 'counter');
  }

  /** The whole exposition for one scrape, in pieces to write one after the other (a large
   *  table's text is tens of MB: see IpvsText.render). */
  renderParts(snapshot: MetricsSnapshot): Promise<Buffer[]> {
    return this.serial(async () => {
      const parts = await this.ipvs.render(snapshot, turn);
      parts.push(piece(`\n${await this.uvsText(snapshot)}`));
      return parts;
    });
  }

  /** The whole exposition as one string. */
  async render(snapshot: MetricsSnapshot): Promise<string> {
    return Buffer.concat(await this.renderParts(snapshot)).toString('utf8');
  }

  /** Only the node_ipvs_* series, in pieces: the file for node_exporter's textfile collector. */
  renderIpvsParts(snapshot: MetricsSnapshot): Promise<Buffer[]> {
    return this.serial(() => this.ipvs.render(snapshot, turn));
  }

  /** Only the node_ipvs_* series as one string. */
  async renderIpvs(snapshot: MetricsSnapshot): Promise<string> {
    return Buffer.concat(await this.renderIpvsParts(snapshot)).toString('utf8');
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async uvsText(snapshot: MetricsSnapshot): Promise<string> {
    // collect() reads this.snap (the scrape's snapshot).
    this.snap = snapshot;
    try {
      return await this.registry.metrics();
    } finally {
      this.snap = null;
    }
  }

  /** One render at a time: the uvs_* collectors read this.snap, and the node_ipvs_* text keeps
   *  its rows and sorted order between scrapes. */
  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private readonly ipvs = new IpvsText();

  private queue: Promise<unknown> = Promise.resolve();
}
