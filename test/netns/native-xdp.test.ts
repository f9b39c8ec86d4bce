// The addon's AF_XDP backend for real: three namespaces (gen → dir → sink) joined by veths. In dir
// a child (native-xdp-child.ts) attaches the XDP program to the ingress veth with the VIP in
// `dsts`, and forwards the VIP's frames in place from the UMEM to the egress veth's XdpSocket.
// Checks: UDP to the VIP arrives intact, TCP from a sender with checksum offload works end to end
// (partial checksums completed), everything else (ping to dir, ARP, frames over maxFrame, and the
// later frames of a UDP flow that had one over maxFrame) still reaches dir's kernel, no UMEM chunk
// leaks, and no XDP program stays on the device after close() or after the owner is SIGKILLed.
// Needs root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeAddonPath } from '../../src/native/addon';
import type { XdpForwardJob, XdpForwardResult, XdpHoldJob } from './native-xdp-child';
import { checksum, Lab, runSuffix, sh, spawnIn, udpFrame } from './native-lab';

const CHILD = join(__dirname, 'native-xdp-child.js');

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, XDP, AF_XDP)';
  if (!existsSync(nativeAddonPath())) return `native addon not built at ${nativeAddonPath()} (run npm install)`;
  try {
    // AF_XDP is 44; a kernel without CONFIG_XDP_SOCKETS refuses the family.
    sh(process.execPath, ['-e', `const n=require(${JSON.stringify(nativeAddonPath())}); try { new n.XdpSocket({}); } catch (e) { if (!(e instanceof TypeError)) throw e; }`]);
    sh('python3', ['-c', 'import socket; socket.socket(44, socket.SOCK_RAW, 0).close()']);
  } catch (err) {
    return `AF_XDP unavailable: ${(err as Error).message.slice(0, 200)}`;
  }
  return false;
}
const skip = skipReason();
if (skip) console.log(`# native-xdp: skipped: ${skip}`);

const VIP = '10.214.9.9';
const GEN = '10.214.1.2';
const DIR_IN = '10.214.1.1';
const DIR_LOCAL = '10.214.1.3';
const DIR_OUT = '10.214.2.1';
const GEN_SRC = '10.214.1.4'; // a second address on gen, in srcs
const SINK = '10.214.2.2';
const UDP_PORT = 7001;
const TCP_PORT = 7002;
const LOCAL_PORT = 7003;
const MAX_FRAME = 1514;

// Sink: a UDP server on the VIP that reports every payload, until `expect` arrived or 15 s passed.
const SINK_UDP_JS = `
const d = require('dgram').createSocket('udp4'); const got = [];
const [ip, port, expect] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const done = () => { console.log(JSON.stringify(got)); process.exit(0); };
const t = setTimeout(done, 15000);
d.on('message', (m) => { got.push(m.toString('latin1')); if (got.length >= expect) { clearTimeout(t); setTimeout(done, 50); } });
d.bind(port, ip, () => console.log('READY'));`;

// Sink: a TCP server on the VIP that answers the SHA-256 of what it received.
const SINK_TCP_JS = `
const net = require('net'), crypto = require('crypto');
const t = setTimeout(() => { console.error('tcp server: no transfer in time'); process.exit(3); }, 20000);
const srv = net.createServer((c) => { const h = crypto.createHash('sha256'); let n = 0;
  c.on('data', (d) => { h.update(d); n += d.length; });
  c.on('end', () => { const sha = h.digest('hex'); c.end(sha); clearTimeout(t); srv.close(); console.log(JSON.stringify({ sha, n })); }); });
srv.listen(Number(process.argv[2]), process.argv[1], () => console.log('READY'));`;

// Gen: a TCP client that sends n bytes and reads the server's SHA-256 back.
const GEN_TCP_JS = `
const net = require('net'), crypto = require('crypto');
const n = Number(process.argv[3]); const data = Buffer.alloc(n);
for (let i = 0; i < n; i++) data[i] = (Math.imul(i, 2654435761) >>> 13) & 255;
const c = net.connect(Number(process.argv[2]), process.argv[1]); let reply = '';
c.setTimeout(10000, () => { console.error('tcp client: stalled'); process.exit(4); });
c.on('connect', () => c.end(data));
c.on('data', (d) => { reply += d; });
c.on('end', () => console.log(JSON.stringify({ sha: crypto.createHash('sha256').update(data).digest('hex'), reply })));
c.on('error', (e) => { console.error('tcp client: ' + e.message); process.exit(1); });`;

// Gen: UDP datagrams, {ip, port, size, count, tag, from?} per group, 2 ms apart (from: the source address).
const GEN_UDP_JS = `
const dgram = require('dgram');
const jobs = JSON.parse(process.argv[1]); let i = 0;
const all = []; for (const j of jobs) for (let k = 0; k < j.count; k++) all.push([j, k]);
const socks = new Map();
const sock = (from, cb) => { if (socks.has(from)) return cb(socks.get(from)); const d = dgram.createSocket('udp4'); socks.set(from, d);
  if (from) d.bind(0, from, () => cb(d)); else cb(d); };
const next = () => { if (i >= all.length) { for (const d of socks.values()) d.close(); console.log('null'); return; }
  const [j, k] = all[i++]; const p = Buffer.alloc(j.size, 0x61 + (k % 26)); p.write(j.tag + '-' + k + '-', 'latin1');
  sock(j.from || '', (d) => d.send(p, j.port, j.ip, () => setTimeout(next, 2))); };
next();`;

// Gen: whole frames (hex) sent by an AF_PACKET socket: they reach dir with their checksums as built.
const GEN_RAW_JS = `
const n = require(process.argv[1]); const s = new n.PacketSocket({ ifindex: n.ifIndex(process.argv[2]) });
for (const h of JSON.parse(process.argv[3])) { const b = Buffer.from(h, 'hex'); s.send(b, Uint32Array.of(0), Uint32Array.of(b.length), 1); }
s.close(); console.log('null');`;

/** A UDP frame to the VIP whose checksum field is `kind`: the partial convention (the folded
 *  pseudo-header sum, as a local sender with offload leaves it), or simply wrong. */
function udpWithChecksum(dstMac: string, srcMac: string, body: string, kind: 'partial' | 'bad'): string {
  const f = udpFrame({ dstMac, srcMac, srcIp: GEN, dstIp: VIP, sport: 40001, dport: UDP_PORT, payload: Buffer.from(body, 'latin1'), id: 77 });
  const l4 = f.subarray(34);
  const pseudo = new Uint8Array(12 + l4.length);
  pseudo.set(f.subarray(26, 34), 0);
  pseudo[9] = 17;
  pseudo[10] = l4.length >> 8;
  pseudo[11] = l4.length & 255;
  const pseudoSum = ~checksum(pseudo.subarray(0, 12)) & 0xffff;
  pseudo.set(l4, 12);
  const full = checksum(pseudo);
  const field = kind === 'partial' ? pseudoSum : full ^ 0x1234;
  f[40] = field >> 8;
  f[41] = field & 255;
  return Buffer.from(f).toString('hex');
}

function payload(tag: string, k: number, size: number): string {
  const p = Buffer.alloc(size, 0x61 + (k % 26));
  p.write(`${tag}-${k}-`, 'latin1');
  return p.toString('latin1');
}

describe('native addon: AF_XDP (gen → dir with XDP → sink)', { skip }, () => {
  const lab = new Lab(runSuffix());
  const stopFile = join(tmpdir(), `uvs-xdp-stop-${process.pid}`);
  let gen = '';
  let dir = '';
  let sink = '';
  let g0 = '';
  let d0 = '';
  let d1 = '';
  let s0 = '';
  let sinkMac = '';
  let d1Mac = '';

  before(() => {
    gen = lab.ns('xag');
    dir = lab.ns('xad');
    sink = lab.ns('xas');
    g0 = lab.dev('xg');
    d0 = lab.dev('xd0');
    d1 = lab.dev('xd1');
    s0 = lab.dev('xs');
    lab.veth(gen, g0, dir, d0);
    lab.veth(dir, d1, sink, s0);
    lab.addr(gen, g0, `${GEN}/24`);
    lab.addr(gen, g0, `${GEN_SRC}/24`);
    lab.addr(dir, d0, `${DIR_IN}/24`);
    lab.addr(dir, d0, `${DIR_LOCAL}/24`);
    lab.addr(dir, d1, `${DIR_OUT}/24`);
    lab.addr(sink, s0, `${SINK}/24`);
    lab.addr(sink, 'lo', `${VIP}/32`);
    // Larger frames than maxFrame must be possible on gen → dir (to see them pass).
    lab.exec(gen, ['ip', 'link', 'set', g0, 'mtu', '3000']);
    lab.exec(dir, ['ip', 'link', 'set', d0, 'mtu', '3000']);
    // The VIP's route keeps TCP segments within maxFrame; TSO and GSO off on gen so each segment is
    // its own frame (a super-frame would pass the program), while checksum offload stays on: gen's
    // TCP and UDP frames arrive with partial checksums.
    lab.exec(gen, ['ip', 'route', 'add', `${VIP}/32`, 'via', DIR_IN, 'mtu', 'lock', '1500']);
    lab.exec(gen, ['ethtool', '-K', g0, 'tso', 'off', 'gso', 'off']);
    lab.exec(sink, ['ip', 'route', 'add', '10.214.1.0/24', 'via', DIR_OUT]);
    lab.exec(dir, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    for (const ns of [dir, sink]) {
      lab.exec(ns, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0']);
      lab.exec(ns, ['sysctl', '-qw', 'net.ipv4.conf.default.rp_filter=0']);
    }
    lab.exec(sink, ['sysctl', '-qw', `net.ipv4.conf.${s0}.rp_filter=0`]);
    sinkMac = lab.mac(sink, s0);
    d1Mac = lab.mac(dir, d1);
  });

  after(() => {
    rmSync(stopFile, { force: true });
    lab.destroy();
  });

  it('forwards the VIP through AF_XDP, leaves the rest to the kernel, completes partial checksums, leaks no chunk, detaches on close', async () => {
    rmSync(stopFile, { force: true });
    const udpCount = 20;
    const copyCount = 3;
    const sinkUdp = spawnIn<string[]>(sink, [process.execPath, '-e', SINK_UDP_JS, VIP, String(UDP_PORT), String(udpCount + copyCount + 1)], 25_000);
    const sinkTcp = spawnIn<{ sha: string; n: number }>(sink, [process.execPath, '-e', SINK_TCP_JS, VIP, String(TCP_PORT)], 25_000);
    await Promise.all([sinkUdp.ready, sinkTcp.ready]);

    // Ready-made frames the child sends by copy from a plain Uint8Array (UDP checksum 0: none).
    const copyFrames: number[][] = [];
    for (let k = 0; k < copyCount; k++) {
      copyFrames.push(Array.from(udpFrame({
        dstMac: sinkMac, srcMac: d1Mac, srcIp: GEN, dstIp: VIP, sport: 40000, dport: UDP_PORT,
        payload: Buffer.from(payload('copy', k, 64), 'latin1'), id: k + 1,
      })));
    }
    const job: XdpForwardJob = {
      mode: 'forward', ingress: d0, egress: d1, sinkMac, vip: VIP, local: DIR_LOCAL, localPort: LOCAL_PORT,
      source: GEN_SRC, maxFrame: MAX_FRAME, copyFrames, stopFile, durationMs: 20_000,
    };
    const child = spawnIn<XdpForwardResult>(dir, [process.execPath, CHILD, JSON.stringify(job)], 28_000);
    try {
      await child.ready;
      assert.match(sh('ip', ['netns', 'exec', dir, 'ip', '-d', 'link', 'show', 'dev', d0]), /xdpgeneric/);

      // Ping to dir's own address (not in dsts) answers; gen resolved dir by ARP (not static).
      lab.exec(gen, ['ping', '-c', '2', '-i', '0.2', '-W', '2', DIR_IN]);
      assert.match(lab.exec(gen, ['ip', 'neigh', 'show', DIR_IN]), /lladdr/);

      // UDP to the VIP (forwarded), small and large datagrams to dir's local address in dsts.
      const udpJobs = [
        { ip: VIP, port: UDP_PORT, size: 200, count: udpCount, tag: 'udp' },
        { ip: DIR_LOCAL, port: LOCAL_PORT, size: 100, count: 3, tag: 'small' },
        { ip: DIR_LOCAL, port: LOCAL_PORT, size: 2500, count: 3, tag: 'big' },
        // The same socket (5-tuple) again, small: its flow went to the ring with the first big
        // frame (ringflows), so these pass too; another flow (a second socket, another source
        // port) is still taken.
        { ip: DIR_LOCAL, port: LOCAL_PORT, size: 100, count: 3, tag: 'after' },
        { ip: DIR_LOCAL, port: LOCAL_PORT, size: 100, count: 3, tag: 'other', from: GEN },
        { ip: DIR_IN, port: LOCAL_PORT + 1, size: 50, count: 4, tag: 'src', from: GEN_SRC },
      ];
      await spawnIn<null>(gen, [process.execPath, '-e', GEN_UDP_JS, JSON.stringify(udpJobs)], 15_000).result;
      // Built checksums: one in the partial convention (completed on rx, so the sink takes it), one
      // simply wrong (left alone: the sink's kernel drops it).
      const d0Mac = lab.mac(dir, d0);
      const g0Mac = lab.mac(gen, g0);
      const raw = [udpWithChecksum(d0Mac, g0Mac, payload('partial', 0, 90), 'partial'), udpWithChecksum(d0Mac, g0Mac, payload('bad', 0, 90), 'bad')];
      await spawnIn<null>(gen, [process.execPath, '-e', GEN_RAW_JS, nativeAddonPath(), g0, JSON.stringify(raw)], 10_000).result;
      const got = await sinkUdp.result;
      const want = [
        ...Array.from({ length: udpCount }, (_, k) => payload('udp', k, 200)), ...Array.from({ length: copyCount }, (_, k) => payload('copy', k, 64)),
        payload('partial', 0, 90),
      ];
      assert.deepEqual([...got].sort(), want.sort(), 'every UDP payload arrives intact, the copied and the completed ones too; the bad one not');

      // TCP with checksum offload through XDP, a few KB each way.
      const tcpBytes = 64 * 1024;
      const client = await spawnIn<{ sha: string; reply: string }>(gen, [process.execPath, '-e', GEN_TCP_JS, VIP, String(TCP_PORT), String(tcpBytes)], 20_000).result;
      const server = await sinkTcp.result;
      assert.equal(server.n, tcpBytes);
      assert.equal(server.sha, client.sha, 'the bytes arrived intact');
      assert.equal(client.reply, client.sha, 'the reply came back');
    } finally {
      writeFileSync(stopFile, '');
      sinkUdp.kill();
      sinkTcp.kill();
    }
    const r = await child.result;
    if (process.env['UVS_XDP_DEBUG']) console.log(`# native-xdp: ${JSON.stringify(r)}`);
    assert.ok(r.forwarded >= udpCount + 40, `forwarded ${r.forwarded}`);
    assert.equal(r.badCells, 0, 'descriptor cells: TP_STATUS_USER, PACKET_HOST, the ingress ifindex');
    assert.equal(r.vnetNonZero, 0, 'the 10 bytes in front of each frame are zero');
    assert.ok(r.csumValid >= r.forwarded - 1, `CSUM_VALID on ${r.csumValid} of ${r.forwarded} (all but the bad one)`);
    assert.ok(r.ingressStats.csumCompleted > 0, `partial checksums completed: ${JSON.stringify(r.ingressStats)}`);
    assert.equal(r.ingressStats.csumBad, 1, 'the frame with a wrong checksum is counted and left alone');
    assert.ok(r.pollerHits > 0, 'RingPoller saw the XdpSocket ready');
    assert.equal(r.copySent, copyCount);
    assert.equal(r.oversizeSent, 0);
    assert.equal(r.egressStats.txDropped, 1, 'a frame longer than a chunk is refused and counted');
    assert.equal(r.egressStats.txShed, 0);
    assert.equal(r.egressStats.txCopied, copyCount, 'forwarded frames went out in place, only the plain-memory ones were copied');
    assert.equal(r.ingressStats.rxDropped, 0);
    // Small datagrams to the local address were taken by XDP; the large ones passed to the kernel,
    // and so did the small ones of the same flow after them; another flow's were taken.
    assert.deepEqual(r.localTaken, [142, 142, 142, 142, 142, 142]);
    assert.deepEqual(r.localDelivered, [2500, 2500, 2500, 100, 100, 100]);
    assert.equal(r.ringflowsFdType, 'number');
    assert.equal(r.sourceTaken, 4, 'frames from an address in srcs are taken');
    assert.equal(r.secondAttach, 'EBUSY', 'a second program on the same device is refused');
    assert.deepEqual(r.queues, { rx: 1, tx: 1 });
    assert.equal(r.statesAfter.held, 0, `no chunk held: ${JSON.stringify(r.statesAfter)}`);
    assert.equal(r.statesAfter.tx, 0, `no chunk waiting for a completion: ${JSON.stringify(r.statesAfter)}`);
    assert.equal(r.statesAfter.free + r.statesAfter.fill, r.chunkCount);
    assert.ok(r.rebindMs < 3500, `rebinding the queue took ${r.rebindMs} ms`);
    assert.equal(r.freeAfterClose, r.chunkCount, 'every chunk free once the sockets closed');
    assert.equal(r.xdpAfterClose, '', 'no XDP program after close()');
    assert.doesNotMatch(lab.exec(dir, ['ip', '-d', 'link', 'show', 'dev', d0]), /xdp/);
  });

  it('a SIGKILLed owner leaves no XDP program on the device (the BPF link dies with it)', async () => {
    const job: XdpHoldJob = { mode: 'hold', ingress: d0, durationMs: 15_000 };
    const child = spawnIn<null>(dir, [process.execPath, CHILD, JSON.stringify(job)], 20_000);
    await child.ready;
    assert.match(lab.exec(dir, ['ip', '-d', 'link', 'show', 'dev', d0]), /xdpgeneric/);
    child.kill();
    await child.result.catch(() => undefined);
    // The link's release runs when the process's files are closed; allow it a moment.
    let shown = '';
    for (let i = 0; i < 30; i++) {
      shown = lab.exec(dir, ['ip', '-d', 'link', 'show', 'dev', d0]);
      if (!/xdp/.test(shown)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.doesNotMatch(shown, /xdp/);
  });
});
