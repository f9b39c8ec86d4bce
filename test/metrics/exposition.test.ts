import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsExposition, ipvsBackends, nodeIpvsText } from '../../src/metrics/exposition';
import type { ServiceEntry } from '../../src/service/model';
import { ForwardMethod } from '../../src/tables/dest-table';
import { KNOWN_TABLE, knownSnapshot } from './fixtures';

// What node_exporter's ipvs collector prints for this table (collector/ipvs_linux.go over
// procfs's parse of /proc/net/ip_vs): HELP texts and types as the collector declares them, labels
// sorted by name and series by label values as client_golang writes them; the fwmark service has
// no local address, port 0 and its mark as the kernel's %08X; prom-client separates families by a
// blank line, which the text format ignores.
const NODE_IPVS_TEXT = `# HELP node_ipvs_connections_total The total number of connections made.
# TYPE node_ipvs_connections_total counter
node_ipvs_connections_total 12

# HELP node_ipvs_incoming_packets_total The total number of incoming packets.
# TYPE node_ipvs_incoming_packets_total counter
node_ipvs_incoming_packets_total 340

# HELP node_ipvs_outgoing_packets_total The total number of outgoing packets.
# TYPE node_ipvs_outgoing_packets_total counter
node_ipvs_outgoing_packets_total 0

# HELP node_ipvs_incoming_bytes_total The total amount of incoming data.
# TYPE node_ipvs_incoming_bytes_total counter
node_ipvs_incoming_bytes_total 51000

# HELP node_ipvs_outgoing_bytes_total The total amount of outgoing data.
# TYPE node_ipvs_outgoing_bytes_total counter
node_ipvs_outgoing_bytes_total 0

# HELP node_ipvs_backend_connections_active The current active connections by local and remote address.
# TYPE node_ipvs_backend_connections_active gauge
node_ipvs_backend_connections_active{local_address="",local_mark="0000001A",local_port="0",proto="FWM",remote_address="10.0.1.1",remote_port="0"} 1
node_ipvs_backend_connections_active{local_address="10.0.0.1",local_mark="",local_port="53",proto="UDP",remote_address="10.0.1.3",remote_port="53"} 0
node_ipvs_backend_connections_active{local_address="10.0.0.1",local_mark="",local_port="80",proto="TCP",remote_address="10.0.1.1",remote_port="8080"} 0
node_ipvs_backend_connections_active{local_address="10.0.0.1",local_mark="",local_port="80",proto="TCP",remote_address="10.0.1.2",remote_port="80"} 5

# HELP node_ipvs_backend_connections_inactive The current inactive connections by local and remote address.
# TYPE node_ipvs_backend_connections_inactive gauge
node_ipvs_backend_connections_inactive{local_address="",local_mark="0000001A",local_port="0",proto="FWM",remote_address="10.0.1.1",remote_port="0"} 0
node_ipvs_backend_connections_inactive{local_address="10.0.0.1",local_mark="",local_port="53",proto="UDP",remote_address="10.0.1.3",remote_port="53"} 4
node_ipvs_backend_connections_inactive{local_address="10.0.0.1",local_mark="",local_port="80",proto="TCP",remote_address="10.0.1.1",remote_port="8080"} 0
node_ipvs_backend_connections_inactive{local_address="10.0.0.1",local_mark="",local_port="80",proto="TCP",remote_address="10.0.1.2",remote_port="80"} 7

# HELP node_ipvs_backend_weight The current backend weight by local and remote address.
# TYPE node_ipvs_backend_weight gauge
node_ipvs_backend_weight{local_address="",local_mark="0000001A",local_port="0",proto="FWM",remote_address="10.0.1.1",remote_port="0"} 1
node_ipvs_backend_weight{local_address="10.0.0.1",local_mark="",local_port="53",proto="UDP",remote_address="10.0.1.3",remote_port="53"} 2
node_ipvs_backend_weight{local_address="10.0.0.1",local_mark="",local_port="80",proto="TCP",remote_address="10.0.1.1",remote_port="8080"} 1
node_ipvs_backend_weight{local_address="10.0.0.1",local_mark="",local_port="80",proto="TCP",remote_address="10.0.1.2",remote_port="80"} 3
`;

test('node_ipvs_*: exactly node_exporter\'s text for a known table (the textfile\'s content)', async () => {
  const e = new MetricsExposition();
  assert.equal(await e.renderIpvs(knownSnapshot()), NODE_IPVS_TEXT);
});

test('the full exposition starts with the same node_ipvs_* text and adds only uvs_* families', async () => {
  const text = await new MetricsExposition().render(knownSnapshot());
  assert.ok(text.startsWith(NODE_IPVS_TEXT), text.slice(0, 400));
  const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
  assert.deepEqual(names.filter((n) => !n.startsWith('uvs_')), [
    'node_ipvs_connections_total', 'node_ipvs_incoming_packets_total', 'node_ipvs_outgoing_packets_total',
    'node_ipvs_incoming_bytes_total', 'node_ipvs_outgoing_bytes_total', 'node_ipvs_backend_connections_active',
    'node_ipvs_backend_connections_inactive', 'node_ipvs_backend_weight',
  ]);
});

test('real servers with the same label set are summed, as the collector\'s sums map does', () => {
  // The same service listed twice (as a reduced --collector.ipvs.backend-labels would merge two).
  const twice = [KNOWN_TABLE[0]!, { ...KNOWN_TABLE[0]!, id: 9 }];
  const b = ipvsBackends(twice);
  assert.equal(b.length, 2);
  const rs2 = b.find((x) => x.labels.remote_address === '10.0.1.2')!;
  assert.deepEqual([rs2.active, rs2.inactive, rs2.weight], [10, 14, 6]);
});

test('uvs_*: VRRP, checkers, workers, drops by reason, evictions and the connection table', async () => {
  const text = await new MetricsExposition().render(knownSnapshot({
    vrrp: [{
      name: 'VI_1', state: 'MASTER', vrid: 51, interface: 'eth0', basePriority: 100, effectivePriority: 90,
      transitions: { BACKUP: 1, MASTER: 1 }, stats: { advertsSent: 7, advertsReceived: 2, becameMaster: 1, authFailure: 3 },
    }],
    checks: [{
      virtualServer: '[10.0.0.1]:80', quorumUp: true, sorryActive: false,
      servers: [{ realServer: '[10.0.1.2]:80', alive: false, weight: 0, checkers: [{ kind: 'TCP_CHECK', up: false }] }],
    }],
    workers: [{ id: 0, alive: true, restarts: 2, stats: { rx_frames: 100, tx_frames: 90, evict_syn: 4 }, drops: { NO_NEXT_HOP: 6 } }],
    conns: { entries: 5, capacity: 1024, refused: 1 },
  }));
  const has = (line: string): void => assert.ok(text.includes(`\n${line}\n`), `missing: ${line}`);
  has('uvs_vrrp_state{instance="VI_1",vrid="51",interface="eth0"} 2');
  has('uvs_vrrp_priority{instance="VI_1",kind="base"} 100');
  has('uvs_vrrp_priority{instance="VI_1",kind="effective"} 90');
  has('uvs_vrrp_transitions_total{instance="VI_1",state="MASTER"} 1');
  has('uvs_vrrp_transitions_total{instance="VI_1",state="FAULT"} 0');
  has('uvs_vrrp_adverts_sent_total{instance="VI_1"} 7');
  has('uvs_vrrp_advert_errors_total{instance="VI_1",reason="auth_failure"} 3');
  has('uvs_check_real_server_up{virtual_server="[10.0.0.1]:80",real_server="[10.0.1.2]:80"} 0');
  has('uvs_check_checker_up{virtual_server="[10.0.0.1]:80",real_server="[10.0.1.2]:80",checker="TCP_CHECK",index="0"} 0');
  has('uvs_check_quorum_up{virtual_server="[10.0.0.1]:80"} 1');
  has('uvs_dataplane_rx_frames_total{worker="0"} 100');
  has('uvs_dataplane_worker_restarts_total{worker="0"} 2');
  has('uvs_dataplane_drops_total{worker="0",reason="NO_NEXT_HOP"} 6');
  has('uvs_dataplane_drops_total{worker="0",reason="BAD_IP_CHECKSUM"} 0');
  has('uvs_conn_evictions_total{worker="0",reason="syn"} 4');
  has('uvs_conn_table_entries 5');
  has('uvs_conn_table_capacity 1024');
  has('uvs_conn_table_refused_total 1');
});

test('uvs_dataplane_*: the interface watch\'s counters, with HELP and TYPE; none without a watch', async () => {
  const text = await new MetricsExposition().render(knownSnapshot({ linkWatch: { events: 12, relinks: 3, bad: 1, restarts: 2 } }));
  for (const [name, value] of [['uvs_dataplane_link_events_total', 12], ['uvs_dataplane_relinks_total', 3],
    ['uvs_dataplane_link_watch_bad_lines_total', 1], ['uvs_dataplane_link_watch_restarts_total', 2]] as const) {
    assert.match(text, new RegExp(`# HELP ${name} \\S.*\n# TYPE ${name} counter\n${name} ${value}\n`), name);
  }
  const none = await new MetricsExposition().render(knownSnapshot({ linkWatch: null }));
  assert.match(none, /# TYPE uvs_dataplane_relinks_total counter\n/);
  assert.doesNotMatch(none, /^uvs_dataplane_(link|relinks)/m);
});

test('uvs_dataplane_*: epoll wake-ups, busy-poll hits and guard trips per worker, with HELP and TYPE', async () => {
  const text = await new MetricsExposition().render(knownSnapshot({
    workers: [{ id: 0, alive: true, restarts: 0, stats: { epoll_wakeups: 120, busy_poll_hits: 3400, busy_poll_contended: 5, busy_poll_starved: 2, busy_poll_rescued: 1, busy_poll_sustained: 9, yields: 7 }, drops: {} }],
  }));
  for (const [name, value] of [['uvs_dataplane_epoll_wakeups_total', 120], ['uvs_dataplane_busy_poll_hits_total', 3400],
    ['uvs_dataplane_busy_poll_contended_total', 5], ['uvs_dataplane_busy_poll_starved_total', 2],
    ['uvs_dataplane_busy_poll_rescued_total', 1], ['uvs_dataplane_busy_poll_sustained_total', 9], ['uvs_dataplane_yields_total', 7]] as const) {
    assert.match(text, new RegExp(`# HELP ${name} \\S.*\n# TYPE ${name} counter\n${name}\\{worker="0"\\} ${value}\n`), name);
  }
});

test('without a data plane the connection-table families print no sample (not a capacity of 0)', async () => {
  const text = await new MetricsExposition().render(knownSnapshot());
  assert.match(text, /# TYPE uvs_conn_table_capacity gauge\n/);
  assert.doesNotMatch(text, /^uvs_conn_table_/m);
});

/** n services of `per` real servers each (slots numbered across the table, as the model does). */
function bigTable(n: number, per: number): ServiceEntry[] {
  const out: ServiceEntry[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      id: i, af: 4, protocol: i % 3 === 0 ? 17 : 6, addr: (0x0a000000 + i) >>> 0, port: 80 + (i % 7), fwmark: i % 11 === 0 ? i + 1 : 0,
      scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '',
      dests: Array.from({ length: per }, (_, k) => ({
        af: 4 as const, addr: (0x0a010000 + ((i * 7919 + k * 104729) % 65536)) >>> 0, port: 8000 + k, fwd: ForwardMethod.DROUTE,
        weight: k + 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0, slot: per * i + k,
        activeConns: (i + k) % 5, inactConns: i % 3, persistConns: 0,
      })),
    });
  }
  return out;
}

test('a large table: the render gives the event loop turns, prints the numbers of its start, and its kept rows and order follow table changes', async () => {
  const services = bigTable(3000, 10);
  const snap = knownSnapshot({ services });
  const e = new MetricsExposition();
  const expected = nodeIpvsText(snap);
  // One consistent snapshot: numbers changed while the render runs are not in this scrape.
  let turns = 0;
  let changed = false;
  const spin = (): void => {
    turns++;
    if (!changed) {
      changed = true;
      for (const s of services) for (const d of s.dests) d.activeConns += 1000;
    }
    if (!done) setImmediate(spin);
  };
  let done = false;
  setImmediate(spin);
  const text = await e.renderIpvs(snap);
  done = true;
  assert.ok(turns >= 2, `the event loop ran ${turns} times during the render of 30,000 series`);
  assert.equal(text, expected);
  // The next scrape (rows and order kept) sees the new numbers, as a fresh render does.
  assert.equal(await e.renderIpvs(snap), nodeIpvsText(snap));
  // Table changes: a real server's address, one removed, a service added; a duplicate label set
  // (summed). The kept rows and order give what a fresh render gives.
  services[5]!.dests[2]!.addr = 0x0a0a0a0a;
  services[9]!.dests.pop();
  services.push({ ...services[1]!, id: 9999, dests: services[1]!.dests.map((d, k) => ({ ...d, slot: 900_000 + k })) });
  services.unshift({ ...services[2]!, id: 9998, dests: [{ ...services[2]!.dests[0]!, slot: 900_100 }] });
  assert.equal(await e.renderIpvs(snap), nodeIpvsText(snap));
  // …and what ipvsBackends (the collector's sums and order, one label set at a time) gives.
  const backends = ipvsBackends(services);
  const weights = backends.map((b) => `node_ipvs_backend_weight{${Object.entries(b.labels).map(([k, v]) => `${k}="${v}"`).join(',')}} ${b.weight}`);
  assert.ok(backends.length < services.reduce((n, s) => n + s.dests.length, 0), 'some label sets are summed');
  const text2 = nodeIpvsText(snap);
  assert.equal(text2.slice(text2.indexOf('\nnode_ipvs_backend_weight{') + 1), `${weights.join('\n')}\n`);
  const whole = await e.render(snap);
  assert.equal(whole.slice(0, whole.indexOf('\n# HELP uvs_')), nodeIpvsText(snap));
});
