// The in-kernel fast path (src/dataplane/fast-path.ts, native/src/xdp.cc FastPathBlock) in a DR
// lab, through real sockets: an established flow's packets stop reaching user space and still
// arrive; the statistics count them; expiry asks the kernel and keeps a flow it still forwards, then
// frees it and its key when it goes quiet; a removed real server's offloaded flow is dropped at
// once, as IPVS drops it; a TCP download is offloaded and its FIN comes back to user space; and
// --fast-path off forwards everything in user space. Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, dataplaneWorkerRow, fastPathLine, labSuffix, lab, inNs, udpExchange as udpExchangeFrom, type FastPathLine } from './helpers';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns();
const S = labSuffix('f');
const P = `uvs${S}`;
const DIR = `${P}dir`;
const CL = `${P}cl`;
const VIP = '10.77.0.100';
const RS = ['10.77.0.21', '10.77.0.22'];

const daemon = new UvsdProcess(DIR);
const uvsadm = (...args: string[]): string => daemon.uvsadm(...args);

/** udpExchange from the client to VIP:53. */
function udpExchange(sport: number, count: number, gapMs = 0): string[] {
  return udpExchangeFrom(CL, VIP, 53, sport, count, gapMs);
}

/** Waits (at most 5 s) until uvsd's log matches `re` (its output arrives through this event loop). */
async function logged(re: RegExp): Promise<boolean> {
  for (let i = 0; i < 50 && !re.test(daemon.log); i++) await new Promise((r) => setTimeout(r, 100));
  return re.test(daemon.log);
}

function fastLine(): FastPathLine {
  return fastPathLine(uvsadm('--dataplane'));
}

/** Frames worker 0 took from its rings (RxFrames). */
function rxFrames(): number {
  return dataplaneWorkerRow(uvsadm('--dataplane')).get('RxFrames')!;
}

function udpStats(): { conns: number; inPkts: number } {
  const line = uvsadm('-L', '-n', '--stats', '--exact').split('\n').find((l) => l.startsWith(`UDP  ${VIP}:53`));
  assert.ok(line, 'the UDP service is listed');
  const f = line.trim().split(/\s+/);
  return { conns: Number(f[2]), inPkts: Number(f[3]) };
}

before(() => {
  if (!why) lab(S, 'up', 'dr');
});

after(async () => {
  await daemon.stop('SIGKILL');
  if (!why) lab(S, 'down');
});

test('fast path: an established UDP flow is forwarded in the kernel, counted, kept while it flows, freed when quiet', { skip: why ?? false }, async () => {
  await daemon.start(['--workers', '1']);
  assert.match(daemon.log, /data plane: 1 worker\(s\) and the fast path on /);
  // With --io ring the programs come with the first DR, NAT or TUN real server (before it they would
  // run for every frame and forward none), and go with the last.
  assert.doesNotMatch(daemon.log, /fast path: XDP programs on/);
  uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  await new Promise((r) => setTimeout(r, 300));
  assert.doesNotMatch(daemon.log, /fast path: XDP programs on/, 'a service without real servers brings none');
  uvsadm('-a', '-u', `${VIP}:53`, '-r', `${RS[0]}:53`, '-i');
  assert.ok(await logged(/fast path: XDP programs on uvs\w+ \(a DR, NAT or TUN real server is configured\)/), daemon.log);
  uvsadm('-d', '-u', `${VIP}:53`, '-r', `${RS[0]}:53`);
  assert.ok(await logged(/fast path: XDP programs removed \(no DR, NAT or TUN real server\)/), daemon.log);
  uvsadm('-a', '-u', `${VIP}:53`, '-r', `${RS[0]}:53`, '-g');
  assert.ok(await logged(/XDP programs removed[^]*fast path: XDP programs on uvs\w+/), `and again with a DR one: ${daemon.log}`);
  // A 2 s UDP timeout (for the expiry below; an entry takes the timeout of its last packet in user space).
  uvsadm('--set', '0', '0', '2');
  const rx0 = rxFrames();

  // 40 datagrams of one flow: the first 8 through user space, the rest in the kernel.
  const answers = udpExchange(40001, 40);
  assert.deepEqual(answers, Array(40).fill('rs1'));
  const f1 = fastLine();
  assert.equal(f1.offloaded, 1);
  assert.equal(f1.inKernel, 1);
  assert.equal(f1.packets, 32, 'the kernel forwarded all but the first 8');
  assert.equal(rxFrames() - rx0, 8, 'user space saw 8 frames of 40');
  assert.match(uvsadm('-L', '-n', '-c'), /UDP 00:0[0-2] +UDP +10\.77\.0\.10:40001 /, '--set reached the connection table');
  assert.deepEqual(udpStats(), { conns: 1, inPkts: 40 }, 'the statistics count both paths');

  // Expiry: with the 2 s UDP timeout, a datagram every 500 ms for 6 s keeps the entry (the sweep
  // asks the kernel, which saw them, and re-arms it) though user space sees none of them.
  const kept = udpExchange(40001, 12, 500);
  assert.deepEqual(kept, Array(12).fill('rs1'));
  assert.equal(rxFrames() - rx0, 8, 'still nothing in user space');
  const f2 = fastLine();
  assert.ok(f2.kept >= 1, `expiries put off: ${f2.kept}`);
  assert.equal(udpStats().conns, 1, 'the same connection all along');
  // Listed, with at most the 2 s timeout left (counted from the kernel's last packet: unit test).
  assert.match(uvsadm('-L', '-n', '-c'), /UDP 00:0[0-2] +UDP +10\.77\.0\.10:40001 +10\.77\.0\.100:53 +10\.77\.0\.21:53/);

  // Quiet: the entry expires, and its key leaves the kernel with it.
  const deadline = Date.now() + 10_000;
  while (/10\.77\.0\.10:40001/.test(uvsadm('-L', '-n', '-c')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.doesNotMatch(uvsadm('-L', '-n', '-c'), /10\.77\.0\.10:40001/, 'expired within 10 s');
  const f3 = fastLine();
  assert.equal(f3.inKernel, 0);
  assert.equal(f3.takenBack, 1);
  // The same 5-tuple again is a new connection, scheduled in user space.
  assert.deepEqual(udpExchange(40001, 1), ['rs1']);
  assert.equal(rxFrames() - rx0, 9);
  assert.equal(udpStats().conns, 2);
  uvsadm('--set', '0', '0', '300');
});

test('fast path: a removed real server\'s offloaded flow is dropped at once; a download\'s FIN comes back to user space; the programs go with the last DR, NAT or TUN server', { skip: why ?? false }, async () => {
  await daemon.start(['--workers', '1']);
  // Two DR services, so the programs stay while one server is removed.
  uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS[1]}:80`, '-g');
  uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  uvsadm('-a', '-u', `${VIP}:53`, '-r', `${RS[0]}:53`, '-g');
  assert.deepEqual(udpExchange(40002, 12), Array(12).fill('rs1'));
  assert.equal(fastLine().inKernel, 1);
  // IPVS drops a removed server's packets (ip_vs_in: dest not AVAILABLE); so does the kernel's
  // record, at once, and user space counts the drop.
  uvsadm('-d', '-u', `${VIP}:53`, '-r', `${RS[0]}:53`);
  const packetsBefore = fastLine().packets;
  assert.deepEqual(udpExchange(40002, 2), ['timeout', 'timeout']);
  assert.equal(fastLine().packets, packetsBefore, 'the kernel forwarded none after -d');
  assert.match(uvsadm('--dataplane'), /DEST_UNAVAILABLE +2\n/);
  assert.doesNotMatch(daemon.log, /fast path: XDP programs removed/, 'a DR server remains');

  // TCP: a 2 MB download's ACKs are offloaded, its FIN goes to user space (FIN_WAIT listed).
  // (How many ACKs the client sends depends on GRO: a dozen or more.)
  const before = fastLine();
  const r = inNs(CL, 'curl', ['-s', '-m', '20', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `http://${VIP}/bytes/2097152`], 25_000);
  assert.equal(r.stdout, '200 2097152', r.stderr);
  const after = fastLine();
  assert.equal(after.offloaded - before.offloaded, 1, 'the download was offloaded');
  assert.equal(after.takenBack - before.takenBack, 1, 'and taken back by its FIN');
  assert.ok(after.packets - before.packets >= 5, `the kernel forwarded the ACKs (${after.packets - before.packets})`);
  assert.match(uvsadm('-L', '-n', '-c'), /TCP .*(FIN_WAIT|TIME_WAIT|CLOSE)/);

  // The last DR (or NAT) server goes: so do the programs.
  uvsadm('-D', '-t', `${VIP}:80`);
  assert.ok(await logged(/fast path: XDP programs removed \(no DR, NAT or TUN real server\)/), daemon.log);
});

test('--fast-path off: every packet through user space, and --dataplane says so', { skip: why ?? false }, async () => {
  await daemon.start(['--workers', '1', '--fast-path', 'off']);
  assert.doesNotMatch(daemon.log, /fast path/);
  uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  uvsadm('-a', '-u', `${VIP}:53`, '-r', `${RS[0]}:53`, '-g');
  const rx0 = rxFrames();
  assert.deepEqual(udpExchange(40003, 20), Array(20).fill('rs1'));
  assert.equal(rxFrames() - rx0, 20);
  assert.match(uvsadm('--dataplane'), /^Fast path: off$/m);
});
