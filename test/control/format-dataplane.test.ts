// uvsadm --dataplane: the worker rows carry the flood defence's evictions per reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listDataplane } from '../../src/control/format-dataplane';

test('uvsadm --dataplane: evictions per reason in each worker row, drops summed below', () => {
  const text = listDataplane([
    { id: 0, alive: true, restarts: 0, stats: { rx_frames: 10, tx_frames: 9, evict_syn: 4096, evict_udp: 12, evict_nodata: 3000, evict_few: 1 }, drops: { DROP_PACKET: 2 } },
    { id: 1, alive: true, restarts: 1, stats: { evict_syn: 4, tx_shed: 7 }, drops: { DROP_PACKET: 1 } },
  ]);
  const [header, w0, w1] = text.split('\n');
  const names = header!.trim().split(/\s{2,}/);
  const at = (row: string, name: string): string => row.trim().split(/\s+/)[names.indexOf(name)]!;
  assert.deepEqual(names.slice(names.indexOf('EvictSyn'), names.indexOf('TxShed') + 1), ['EvictSyn', 'EvictUdp', 'EvictNoData', 'EvictFew', 'TxShed']);
  assert.equal(at(w0!, 'EvictSyn'), '4096');
  assert.equal(at(w0!, 'EvictUdp'), '12');
  assert.equal(at(w0!, 'EvictNoData'), '3000');
  assert.equal(at(w0!, 'EvictFew'), '1');
  assert.equal(at(w1!, 'EvictSyn'), '4');
  assert.equal(at(w1!, 'EvictFew'), '0');
  assert.equal(at(w1!, 'TxShed'), '7');
  assert.match(text, /Drops:\n {2}DROP_PACKET {2}3\n/);
  assert.match(text, /^Interface watch: off$/m, 'no counters given: not watching');
});

test('uvsadm --dataplane: the interface watch\'s counters on one line below the workers', () => {
  const text = listDataplane([{ id: 0, alive: true, restarts: 0, stats: {}, drops: {} }], { events: 12, bad: 1, restarts: 2, relinks: 3 });
  const lines = text.split('\n');
  assert.equal(lines[2], 'Interface watch: 12 events, 3 relinks, 1 bad lines, 2 monitor restarts');
  assert.equal(lines[3], 'Fast path: off');
  assert.equal(lines[4], 'Drops: none');
});

test('uvsadm --dataplane: the fast path\'s figures on one line, flows in the kernel now = offloaded - taken back', () => {
  const text = listDataplane([{ id: 0, alive: true, restarts: 0, stats: {}, drops: {} }], null,
    { max: 262144, packets: 123456, offloads: 40, left: 15, refused: 2, kept: 7 });
  assert.match(text, /^Fast path: 40 flows offloaded, 25 in the kernel now \(at most 262144\), 15 taken back, 2 refused \(full\), 7 expiries put off; 123456 packets forwarded in the kernel$/m);
});

test('uvsadm --dataplane: epoll wake-ups, busy-poll hits and the busy poll\'s guard trips per worker', () => {
  const text = listDataplane([
    { id: 0, alive: true, restarts: 0, stats: { epoll_wakeups: 120, busy_poll_hits: 3400, busy_poll_contended: 5, busy_poll_starved: 2, busy_poll_rescued: 1, busy_poll_sustained: 9, yields: 7 }, drops: {} },
    { id: 1, alive: true, restarts: 0, stats: {}, drops: {} },
  ]);
  const [header, w0, w1] = text.split('\n');
  const names = header!.trim().split(/\s{2,}/);
  const at = (row: string, name: string): string => {
    assert.ok(names.includes(name), `column ${name} in ${header}`);
    return row.trim().split(/\s+/)[names.indexOf(name)]!;
  };
  assert.equal(at(w0!, 'EpollWakes'), '120');
  assert.equal(at(w0!, 'SpinHits'), '3400');
  assert.equal(at(w0!, 'SpinContended'), '5');
  assert.equal(at(w0!, 'SpinStarved'), '2');
  assert.equal(at(w0!, 'SpinRescued'), '1');
  assert.equal(at(w0!, 'SpinSustained'), '9');
  assert.equal(at(w0!, 'Yields'), '7');
  for (const name of ['Yields', 'EpollWakes', 'SpinHits', 'SpinContended', 'SpinStarved', 'SpinRescued', 'SpinSustained']) assert.equal(at(w1!, name), '0', `${name} of a worker that has none`);
});
