// The busy poll's policy choice in a real uvsd (src/dataplane/spin-window.ts, native RingPoller.spin):
// sparse traffic — one datagram every 3 ms, as a request/response client makes — never counts as
// sustained, so every spin stays at idle priority; a burst of datagrams sent back to back does, and
// the worker's spins then run at its own priority (SpinSustained in `uvsadm --dataplane`). The DR
// lab (client, director, two real servers). Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, dataplaneWorkerRow, labSuffix, lab, inNs } from './helpers';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns();
const S = labSuffix('sp');
const P = `uvs${S}`;
const DIR = `${P}dir`;
const CL = `${P}cl`;
const VIP = '10.77.0.100';
const RS = ['10.77.0.21', '10.77.0.22'];

const daemon = new UvsdProcess(DIR);

before(() => {
  if (!why) lab(S, 'up', 'dr');
});

after(async () => {
  await daemon.stop('SIGKILL');
  if (!why) lab(S, 'down');
});

/** Worker 0's row of `uvsadm --dataplane`, by column name. */
function workerRow(): Map<string, number> {
  return dataplaneWorkerRow(daemon.uvsadm('--dataplane'));
}

/** Sends `count` datagrams to VIP:7007 from the client: `gapMs` apart (each timer set after the
 *  previous send, so late timers never bunch them), or back to back in bursts of 64 for gapMs 0. */
function send(count: number, gapMs: number): void {
  const script = `
const s = require('dgram').createSocket('udp4');
const payload = Buffer.alloc(32);
let left = ${count};
const stopAt = Date.now() + 20000;
function next() {
  if (left <= 0 || Date.now() > stopAt) return s.close();
  const n = ${gapMs} > 0 ? 1 : Math.min(64, left);
  left -= n;
  let pending = n;
  for (let i = 0; i < n; i++) s.send(payload, 7007, '${VIP}', () => { if (--pending === 0) ${gapMs} > 0 ? setTimeout(next, ${gapMs}) : setImmediate(next); });
}
next();`;
  const r = inNs(CL, process.execPath, ['-e', script], 30_000);
  assert.equal(r.status, 0, `sender: ${r.stderr}`);
}

test('sparse traffic keeps every spin at idle priority; a back-to-back burst makes them run at the worker\'s own', { skip: why ?? false, timeout: 120_000 }, async () => {
  // The fast path off: it would take the flow's datagrams past the eighth, and this is about the
  // worker's own turns.
  await daemon.start(['--workers', '1', '--conn-max', '65536', '--fast-path', 'off']);
  daemon.uvsadm('-A', '-u', `${VIP}:7007`, '-s', 'rr');
  for (const rs of RS) daemon.uvsadm('-a', '-u', `${VIP}:7007`, '-r', `${rs}:7007`, '-g');

  send(60, 3);
  // The worker's counters reach the main thread at its next sweep.
  await new Promise((r) => setTimeout(r, 1500));
  const sparse = workerRow();
  assert.ok(sparse.get('RxFrames')! >= 60, `the sparse datagrams reached the worker: ${JSON.stringify(Object.fromEntries(sparse))}`);
  assert.ok(sparse.get('EpollWakes')! + sparse.get('SpinHits')! >= 1, `turns: ${JSON.stringify(Object.fromEntries(sparse))}`);
  assert.equal(sparse.get('SpinSustained'), 0, `no sustained spin for one datagram every 3 ms: ${JSON.stringify(Object.fromEntries(sparse))}`);

  send(20_000, 0);
  await new Promise((r) => setTimeout(r, 1500));
  const burst = workerRow();
  assert.ok(burst.get('RxFrames')! >= sparse.get('RxFrames')! + 10_000, `the burst reached the worker: ${JSON.stringify(Object.fromEntries(burst))}`);
  assert.ok(burst.get('SpinSustained')! > 0, `spins at the worker's own priority during the burst: ${JSON.stringify(Object.fromEntries(burst))}\nuvsd log:\n${daemon.log}`);
  assert.equal(await daemon.stop(), 0, daemon.log);
});
