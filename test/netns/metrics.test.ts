// /metrics of a uvsd forwarding real traffic (the DR lab: client, director, two real servers):
// node_exporter's totals and backend series agree with `uvsadm -L --stats`, the totals keep a
// removed service's traffic and `-Z` zeroes them (the kernel's tot_stats), and the data-plane and
// connection-table series show the workers at work. Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, labSuffix, lab, inNs, splitFrom } from './helpers';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns();
const S = labSuffix('m');
const P = `uvs${S}`;
const DIR = `${P}dir`;
const CL = `${P}cl`;
const VIP = '10.77.0.100';
const RS = ['10.77.0.21', '10.77.0.22'];
const METRICS = '127.0.0.1:9100';

const daemon = new UvsdProcess(DIR);

before(() => {
  if (!why) lab(S, 'up', 'dr');
});

after(async () => {
  await daemon.stop('SIGKILL');
  if (!why) lab(S, 'down');
});

function scrape(): string {
  const r = inNs(DIR, 'curl', ['-s', '--max-time', '5', `http://${METRICS}/metrics`]);
  assert.equal(r.status, 0, `curl /metrics: ${r.stderr}\nuvsd log:\n${daemon.log}`);
  return r.stdout;
}

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `no ${series} in\n${text}`);
  return Number(line.slice(series.length + 1));
}

test('a forwarding uvsd: node_ipvs_* agree with uvsadm --stats; removed services stay in the totals; -Z zeroes them', { skip: why ?? false, timeout: 120_000 }, async () => {
  await daemon.start(['--workers', '1', '--conn-max', '65536', '--metrics', METRICS]);
  daemon.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  for (const rs of RS) daemon.uvsadm('-a', '-t', `${VIP}:80`, '-r', `${rs}:80`, '-g', '-w', '2');
  assert.deepEqual(splitFrom(CL, `http://${VIP}/`, 20, () => daemon.log), { rs1: 10, rs2: 10 });

  const stats = daemon.uvsadm('-L', '-n', '--stats', '--exact');
  const svc = stats.split('\n').find((l) => l.startsWith(`TCP  ${VIP}:80`))!.split(/\s+/);
  const text = scrape();
  assert.equal(value(text, 'node_ipvs_connections_total'), 20);
  // DR: only the client's direction passes the director. A late ACK may follow the listing.
  const inpkts = value(text, 'node_ipvs_incoming_packets_total');
  assert.ok(inpkts >= Number(svc[3]) && inpkts <= Number(svc[3]) + 10, `incoming ${inpkts} vs the listing's ${svc[3]}`);
  assert.ok(value(text, 'node_ipvs_incoming_bytes_total') >= Number(svc[5]));
  assert.equal(value(text, 'node_ipvs_outgoing_packets_total'), 0);
  for (const rs of RS) {
    const labels = `{local_address="${VIP}",local_mark="",local_port="80",proto="TCP",remote_address="${rs}",remote_port="80"}`;
    assert.equal(value(text, `node_ipvs_backend_weight${labels}`), 2);
    assert.ok(value(text, `node_ipvs_backend_connections_inactive${labels}`) + value(text, `node_ipvs_backend_connections_active${labels}`) >= 1, text);
  }
  assert.ok(value(text, 'uvs_dataplane_rx_frames_total{worker="0"}') >= inpkts);
  assert.ok(value(text, 'uvs_dataplane_tx_frames_total{worker="0"}') >= inpkts);
  assert.equal(value(text, 'uvs_dataplane_worker_up{worker="0"}'), 1);
  // Every turn with frames began on an epoll wake-up or on a busy-poll hit (the default --busy-poll).
  const turns = value(text, 'uvs_dataplane_epoll_wakeups_total{worker="0"}') + value(text, 'uvs_dataplane_busy_poll_hits_total{worker="0"}');
  assert.ok(turns >= 1 && turns <= 10 * value(text, 'uvs_dataplane_rx_frames_total{worker="0"}') + 100, `turns ${turns}`);
  assert.ok(value(text, 'uvs_dataplane_busy_poll_contended_total{worker="0"}') >= 0);
  assert.ok(value(text, 'uvs_dataplane_busy_poll_starved_total{worker="0"}') >= 0);
  assert.equal(value(text, 'uvs_conn_table_capacity'), 65536);
  assert.ok(value(text, 'uvs_conn_table_entries') >= 1);
  assert.equal(value(text, 'uvs_conn_table_refused_total'), 0);

  // The service goes: its traffic stays in the totals, as in the kernel's tot_stats.
  daemon.uvsadm('-D', '-t', `${VIP}:80`);
  const after = scrape();
  assert.equal(value(after, 'node_ipvs_connections_total'), 20);
  assert.ok(!after.includes('node_ipvs_backend_weight{'), after);
  daemon.uvsadm('-Z');
  assert.equal(value(scrape(), 'node_ipvs_connections_total'), 0);
  assert.equal(await daemon.stop(), 0, daemon.log);
});
