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
// repeated; the rest of the time is building and sorting the list). The uvs_* families are per VRRP instance, worker and checker, so
// they stay with prom-client. Both parts use the same layout:
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

/** node_exporter's ipvs families for one snapshot, in the collector's order. */
export function nodeIpvsText(snap: MetricsSnapshot): string {
  const families: string[] = [];
  const family = (name: string, help: string, type: 'counter' | 'gauge', lines: string): void => {
    families.push(`# HELP ${name} ${help}\n# TYPE ${name} ${type}${lines}`);
  };
  const t = snap.totals;
  family('node_ipvs_connections_total', 'The total number of connections made.', 'counter', `\nnode_ipvs_connections_total ${t.conns}`);
  family('node_ipvs_incoming_packets_total', 'The total number of incoming packets.', 'counter', `\nnode_ipvs_incoming_packets_total ${t.inpkts}`);
  family('node_ipvs_outgoing_packets_total', 'The total number of outgoing packets.', 'counter', `\nnode_ipvs_outgoing_packets_total ${t.outpkts}`);
  family('node_ipvs_incoming_bytes_total', 'The total amount of incoming data.', 'counter', `\nnode_ipvs_incoming_bytes_total ${t.inbytes}`);
  family('node_ipvs_outgoing_bytes_total', 'The total amount of outgoing data.', 'counter', `\nnode_ipvs_outgoing_bytes_total ${t.outbytes}`);
  const backends = ipvsBackends(snap.services);
  const labelTexts = backends.map((b) => `{${Object.entries(b.labels).map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')}}`);
  const per = (name: string, help: string, pick: (b: IpvsBackend) => number): void => {
    let lines = '';
    for (let i = 0; i < backends.length; i++) lines += `\n${name}${labelTexts[i]!} ${pick(backends[i]!)}`;
    family(name, help, 'gauge', lines);
  };
  per('node_ipvs_backend_connections_active', 'The current active connections by local and remote address.', (b) => b.active);
  per('node_ipvs_backend_connections_inactive', 'The current inactive connections by local and remote address.', (b) => b.inactive);
  per('node_ipvs_backend_weight', 'The current backend weight by local and remote address.', (b) => b.weight);
  return `${families.join('\n\n')}\n`;
}

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

  /** The whole exposition for one scrape. */
  async render(snapshot: MetricsSnapshot): Promise<string> {
    return `${nodeIpvsText(snapshot)}\n${await this.renderWith(this.registry, snapshot)}`;
  }

  /** Only the node_ipvs_* series: the file for node_exporter's textfile collector. */
  renderIpvs(snapshot: MetricsSnapshot): Promise<string> {
    return Promise.resolve(nodeIpvsText(snapshot));
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async renderWith(registry: Registry, snapshot: MetricsSnapshot): Promise<string> {
    // One render at a time: collect() reads this.snap (the scrape's snapshot).
    const run = this.queue.then(async () => {
      this.snap = snapshot;
      try {
        return await registry.metrics();
      } finally {
        this.snap = null;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private queue: Promise<unknown> = Promise.resolve();
}
