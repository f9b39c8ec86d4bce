// The fast path's NAT (native/src/fast-path.cc: the XDP program marks, the tc ingress program
// rewrites) in a NAT lab, through real sockets: both directions of an established flow leave
// user space and still arrive, with port translation; the statistics count both directions; the
// checksums are right whether the senders leave them partial (veth's default: the kernel
// completes them on a device without checksum offload, here the director's own egress) or send
// them whole (checksum offload off on the client and the real server, whose kernels then verify
// every segment); a keep-alive connection is offloaded and its FIN takes it back; a bulk upload's
// GSO super-frames stay in the kernel; with --fast-path-early on, short connections
// are offered at their SYN and everything after it, their close included, stays in the kernel;
// with --fast-path-sched on, the XDP program schedules them too and user space sees no frame.
// Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, dataplaneWorkerRow, fastPathLine, inNs, keepAlive, labSuffix, nstatIn, schedLine, txChecksumOff, udpExchange } from './helpers';
import { ModeLab, VIP } from './mode-lab';

const why = cannotRunNetns();
const lab = new ModeLab(labSuffix('fn'), 'nat', '-m');
const RS1 = '10.78.0.21';
const RS2 = '10.78.0.22';
const RS1_NS = `${lab.P}rs1`;

const fast = (): ReturnType<typeof fastPathLine> => fastPathLine(lab.uvsadm('--dataplane'));
const rxFrames = (): number => dataplaneWorkerRow(lab.uvsadm('--dataplane')).get('RxFrames')!;

/** Checksum errors the client and the real server counted (UDP and TCP). */
function csumErrors(): number {
  return [lab.CL, RS1_NS].reduce((n, ns) => n + nstatIn(ns, 'UdpInCsumErrors') + nstatIn(ns, 'TcpInCsumErrors'), 0);
}

before(() => {
  if (!why) lab.up();
});

after(async () => {
  await lab.stopUvsd('SIGKILL');
  if (!why) lab.down();
});

test('fast path, NAT: both directions in the kernel with port translation, counted, checksums right when partial and when whole', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  lab.uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  lab.uvsadm('-a', '-u', `${VIP}:53`, '-r', `${RS1}:5353`, '-m');
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m');
  for (let i = 0; i < 50 && !/fast path: XDP programs on/.test(lab.log); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(lab.log, /fast path: XDP programs on uvs\w+, uvs\w+ \(a DR, NAT or TUN real server is configured\)/);
  assert.doesNotMatch(lab.log, /stay in user space/);
  const rx0 = rxFrames();

  // 40 request/answer pairs of one flow. User space forwards the first 8 requests and the first 7
  // answers (the 8th request's forwarding offloaded the flow); the kernel the other 32 + 33.
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40001, 40, 0, true), Array(40).fill('rs1'));
  const f1 = fast();
  assert.equal(f1.offloaded, 1);
  assert.equal(f1.inKernel, 1);
  assert.equal(f1.packets, 65, 'the kernel forwarded 32 requests and 33 answers');
  assert.equal(rxFrames() - rx0, 15, 'user space saw 15 frames of 80');
  const s1 = lab.stats('UDP', 53);
  assert.deepEqual([s1.conns, s1.inPkts, s1.outPkts], [1, 40, 40], s1.text);
  // The answers came from VIP:53 (udpExchange marks any other source), and the entry shows the
  // translation.
  assert.match(lab.uvsadm('-L', '-n', '-c'), /UDP .* 10\.77\.0\.10:40001 +10\.77\.0\.100:53 +10\.78\.0\.21:5353/);

  // Partial checksums completed by the director's own egress: with checksum offload off there,
  // the kernel computes each checksum from what the tc program left in the field, and the
  // client's and the real server's kernels verify it.
  const errors0 = csumErrors();
  txChecksumOff(lab.DIR);
  const p0 = fast().packets;
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40002, 20, 0, true), Array(20).fill('rs1'));
  assert.deepEqual(keepAlive(lab.CL, VIP, 30), Array(30).fill('200'));
  assert.ok(fast().packets - p0 >= 24 + 30, `the kernel forwarded them (${fast().packets - p0})`);
  assert.equal(csumErrors(), errors0, 'no checksum errors (partial checksums)');

  // Whole checksums from the senders: the tc program updates them incrementally.
  txChecksumOff(lab.CL);
  txChecksumOff(RS1_NS);
  const p1 = fast().packets;
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40003, 20, 0, true), Array(20).fill('rs1'));
  assert.deepEqual(keepAlive(lab.CL, VIP, 30), Array(30).fill('200'));
  assert.ok(fast().packets - p1 >= 24 + 30, `the kernel forwarded them (${fast().packets - p1})`);
  assert.equal(csumErrors(), errors0, 'no checksum errors (whole checksums)');
});

test('fast path, NAT: a keep-alive connection leaves with its FIN; an upload\'s super-frames stay in the kernel', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m');
  const f0 = fast();
  assert.deepEqual(keepAlive(lab.CL, VIP, 30), Array(30).fill('200'));
  const f1 = fast();
  assert.equal(f1.offloaded - f0.offloaded, 1, 'offloaded once established with data');
  assert.equal(f1.takenBack - f0.takenBack, 1, 'its FIN took it back');
  assert.equal(f1.inKernel, 0);
  assert.match(lab.uvsadm('-L', '-n', '-c'), /TCP .*(FIN_WAIT|TIME_WAIT|CLOSE)/);
  const s = lab.stats('TCP', 80);
  assert.ok(s.inPkts >= 32 && s.outPkts >= 31, `both directions counted: ${s.text}`);

  // A 3 MB upload: the client's TSO super-frames go through the kernel whole.
  const rx0 = rxFrames();
  lab.upload3MB();
  const f2 = fast();
  assert.equal(f2.offloaded - f1.offloaded, 1, 'the upload was offloaded');
  assert.ok(f2.packets - f1.packets >= 20, `the kernel forwarded its frames (${f2.packets - f1.packets})`);
  assert.ok(rxFrames() - rx0 < 60, `user space saw only its start and end (${rxFrames() - rx0} frames)`);
});

/** One HTTP request with `Connection: close` (the real server closes first), from `port` when given. */
function closeRequest(port = 0): string {
  const r = inNs(lab.CL, 'curl', ['-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Connection: close',
    ...(port > 0 ? ['--local-port', String(port)] : []), `http://${VIP}/`], 10_000);
  return r.stdout;
}

test('fast path, NAT, --fast-path-early on: offered at the SYN, the rest in the kernel, the close read back (TIME_WAIT); a reused port is scheduled anew', { skip: why ?? false }, async () => {
  await lab.stopUvsd('SIGKILL');
  await lab.startUvsd(1, ['--fast-path-early', 'on']);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m');
  const f0 = fast();
  const rx0 = rxFrames();
  for (let i = 0; i < 5; i++) assert.equal(closeRequest(), '200');
  const f1 = fast();
  assert.equal(f1.offloaded - f0.offloaded, 5, 'each offered at its SYN');
  const rx = rxFrames() - rx0;
  // Each connection's SYN; the handshake, request, response and both FINs (about 9 frames
  // more each) went through the kernel.
  assert.ok(rx >= 5 && rx <= 8, `user space saw the SYNs only (${rx} frames)`);
  assert.ok(f1.packets - f0.packets >= 5 * 6, `the kernel forwarded the rest (${f1.packets - f0.packets})`);
  // Read back within a second or so: closed, taken back, listed in TIME_WAIT.
  const deadline = Date.now() + 5000;
  while (fast().takenBack - f0.takenBack < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const f2 = fast();
  assert.equal(f2.takenBack - f0.takenBack, 5, 'all five closes read back');
  assert.equal(f2.inKernel, 0);
  const listed = lab.uvsadm('-L', '-n', '-c');
  assert.equal((listed.match(/^TCP .*TIME_WAIT/gm) ?? []).length, 5, listed);
  assert.equal(lab.stats('TCP', 80).conns, 5);

  // The same client port twice in a row (the client's own TIME_WAIT destroyed in between): the
  // second SYN meets the first connection's keys (closed in the kernel, not read back yet) or
  // its TIME_WAIT entry; either way it is a new connection, scheduled and offered again.
  const f3 = fast();
  assert.equal(closeRequest(41000), '200');
  inNs(lab.CL, 'ss', ['-K', '-tn', 'state', 'time-wait']);
  assert.equal(closeRequest(41000), '200');
  assert.equal(lab.stats('TCP', 80).conns, 7, 'a new connection');
  assert.equal(fast().offloaded - f3.offloaded, 2, 'both offered');
});

test('fast path, NAT, --fast-path-sched on: the program schedules rr\'s new connections, user space sees no frame and enters them; a changed service follows, one it cannot schedule goes to user space', { skip: why ?? false }, async () => {
  await lab.stopUvsd('SIGKILL');
  await lab.startUvsd(1, ['--fast-path-early', 'on', '--fast-path-sched', 'on']);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '-m');
  const sched = (): ReturnType<typeof schedLine> => schedLine(lab.uvsadm('--dataplane'));
  assert.equal(sched().services, 1);
  const rx0 = rxFrames();
  for (let i = 0; i < 6; i++) assert.equal(closeRequest(), '200');
  assert.equal(rxFrames() - rx0, 0, 'no frame of theirs through user space, not even the SYN');
  assert.equal(sched().scheduled, 6);
  // The workers enter them on their next turn or sweep (at most half a second), then read them
  // back closed.
  const deadline = Date.now() + 5000;
  while (fast().takenBack < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const s1 = sched();
  assert.equal(s1.entered, 6, JSON.stringify(s1));
  assert.equal(s1.takenBack + s1.refused + s1.lost, 0);
  const listed = lab.uvsadm('-L', '-n', '-c');
  assert.equal((listed.match(/^TCP .*TIME_WAIT/gm) ?? []).length, 6, listed);
  const st = lab.stats('TCP', 80);
  assert.equal(st.conns, 6);
  assert.deepEqual([st.destConns(RS1), st.destConns(RS2)], [3, 3], 'rr\'s alternation, in the kernel');
  assert.ok(st.inPkts >= 6 * 5 && st.outPkts >= 6 * 4, `the kernel's packets counted (${st.inPkts} in, ${st.outPkts} out)`);

  // A client reusing its port right after the close, before the read-back: the program hands
  // the SYN to user space (its direction's FIN is recorded), which reads the closed connection
  // back and schedules the new one itself.
  // (Port 41100: the early test above leaves its own 41000 in the client's TIME_WAIT.)
  inNs(lab.CL, 'ss', ['-K', '-tn', 'state', 'time-wait']);
  assert.equal(closeRequest(41100), '200', lab.uvsadm('--dataplane'));
  inNs(lab.CL, 'ss', ['-K', '-tn', 'state', 'time-wait']);
  assert.equal(closeRequest(41100), '200', lab.uvsadm('--dataplane'));
  while (sched().entered < 7 && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 100));
  assert.equal(sched().entered, 7);
  assert.equal(lab.stats('TCP', 80).conns, 8, 'a new connection');

  // RS2 removed: the round is RS1 alone from the apply on.
  const rs1Before = lab.stats('TCP', 80).destConns(RS1);
  lab.uvsadm('-d', '-t', `${VIP}:80`, '-r', `${RS2}:80`);
  for (let i = 0; i < 3; i++) assert.equal(closeRequest(), '200');
  while (sched().entered < 10 && Date.now() < deadline + 10000) await new Promise((r) => setTimeout(r, 100));
  assert.equal(sched().scheduled, 10, 'still in the kernel');
  assert.equal(lab.stats('TCP', 80).destConns(RS1), rs1Before + 3, 'all three to RS1');
  // wlc counts live connections: not a scheduler the program takes; user space schedules again.
  lab.uvsadm('-E', '-t', `${VIP}:80`, '-s', 'wlc');
  assert.equal(sched().services, 0);
  const scheduled = sched().scheduled;
  const rx1 = rxFrames();
  assert.equal(closeRequest(), '200');
  assert.equal(sched().scheduled, scheduled, 'not scheduled in the kernel');
  assert.ok(rxFrames() - rx1 >= 1, 'its SYN went through user space');
});
