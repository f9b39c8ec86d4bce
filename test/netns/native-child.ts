// A small program the native-ring tests and the native bench run inside a namespace
// (`ip netns exec NS node dist/test/netns/native-child.js '<json>'`): it opens the addon's sockets
// there, prints READY once they are open, does one job bounded in time, and prints one JSON line
// with what it saw. Not a test file itself (no .test suffix).
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import {
  FRAME_CAPLEN, FRAME_IFINDEX, FRAME_OFFSET, FRAME_PKTTYPE, FRAME_STATUS, FRAME_STRIDE, FRAME_WIRELEN,
  loadNative, newVnetHdr, readVnetHdr, RAW_INFO_DESTINATION, RAW_INFO_IFINDEX, RAW_INFO_SOURCE,
  sendFrame, VNET_HDR_LEN, writeMac,
  type BpfInsn, type FanoutOptions, type PacketSocket, type PacketSocketStats, type RingOptions, type VnetHdr,
} from '../../src/native/addon';

export interface RxJob {
  mode: 'rx';
  iface: string;
  durationMs: number;
  /** Stop once this many frames were seen (0: run for durationMs). */
  expect: number;
  ring?: RingOptions;
  filter?: BpfInsn[];
  fanout?: FanoutOptions;
  vnetHdr?: boolean;
  /** Keep only frames with this EtherType (after the MAC addresses), when set. */
  etherType?: number;
  /** Hex of the first captureBytes bytes of each kept frame (0: none). */
  captureBytes: number;
  /** Keep only frames whose wire length is at least this (0: all). */
  minWirelen?: number;
  /** After the first frame is ready, wait this long before reading (ms): the frames sent meanwhile
   *  queue in the ring, so rx() sees them in batches however fast this reader is. */
  settleMs?: number;
}

export interface RxFrame {
  wirelen: number;
  caplen: number;
  status: number;
  pkttype: number;
  ifindex: number;
  hex: string;
  vnet?: VnetHdr;
}

export interface RxResult {
  instance: number;
  frames: RxFrame[];
  /** How many frames each non-empty rx() call returned. */
  batches: number[];
  total: number;
  kept: number;
  /** The socket's stats() when the job ended (V2: copied = super-frames read whole). */
  stats: PacketSocketStats;
  version: number;
}

export interface TxJob {
  mode: 'tx';
  iface: string;
  /** Frames as hex; all go out in one send() call. */
  frames: string[];
  qdiscBypass?: boolean;
  /** Send each frame with sendFrame() instead of one batch. */
  oneByOne?: boolean;
}

export interface WorkersJob {
  mode: 'workers';
  workers: number;
  rx: RxJob;
}

export interface VrrpJob {
  mode: 'vrrp';
  role: 'send' | 'recv';
  iface: string;
  group: string;
  durationMs: number;
  /** Payload to send (hex), for role send. */
  payload?: string;
}

export interface ForwardSide {
  iface: string;
  /** MAC of the next hop behind this interface (the frames sent out here go to it). */
  peerMac: string;
  /** Accept only IPv4 frames to these addresses (frames to be forwarded out of the other side). */
  filter: BpfInsn[];
}

export interface ForwardJob {
  mode: 'forward';
  sides: [ForwardSide, ForwardSide];
  durationMs: number;
  vnetHdr: boolean;
  batch: number;
  /** Forward only side 0 → side 1 (bench), else both ways. */
  oneWay?: boolean;
  /** PACKET_QDISC_BYPASS on the sockets (see src/native/addon.ts: not with vnetHdr where segmentation may be needed). */
  qdiscBypass: boolean;
  /** Stop this long after the last frame, once something was forwarded (0: run for durationMs). */
  idleStopMs?: number;
  /** Ring options of both sides (default: V2, 2048 slots). */
  ring?: RingOptions;
}

export interface ForwardResult {
  forwarded: [number, number];
  sent: [number, number];
  truncated: number;
  superFrames: number;
  maxWirelen: number;
  elapsed: number;
  /** Time per forwarded frame in rx() + the JavaScript rewrite, and in send() (sendmmsg). */
  rxNsPerFrame: number;
  txNsPerFrame: number;
  stats: PacketSocketStats[];
}

export interface GenJob {
  mode: 'gen';
  iface: string;
  frame: string;
  durationMs: number;
  batch: number;
}

/** IPIP (protocol 4) over a raw socket: the receiver waits with an FdWatcher on its event loop. */
export interface IpipJob {
  mode: 'ipip';
  role: 'send' | 'recv';
  destination: string;
  /** The inner IPv4 packet (hex), for role send. */
  inner?: string;
  durationMs: number;
}

/** A TUN device: reads what the kernel routes into it (FdWatcher), writes a UDP datagram back in. */
export interface TunJob {
  mode: 'tun';
  name: string;
  cidr: string;
  /** The packet to write into the device (hex), and where a UDP socket waits for it. */
  write: string;
  listenIp: string;
  listenPort: number;
  durationMs: number;
}

/** Interface look-ups and one ethtool flag flipped and restored. */
export interface IfJob {
  mode: 'if';
  iface: string;
}

/**
 * How soon a reply shows in the ring: sends `frame` (which provokes one, e.g. an ICMP echo request)
 * on iface, then waits until rx() returns a frame, `rounds` times. For V2 against V3's block timeout.
 */
export interface VisibleJob {
  mode: 'visible';
  iface: string;
  frame: string;
  ring: RingOptions;
  filter: BpfInsn[];
  rounds: number;
  timeoutMs: number;
  /** Wait with a RingPoller spinning this many µs at a time (over an idle ring and this one) instead of wait(). */
  spinUs?: number;
}

export interface VisibleResult {
  /** Microseconds from send to the frame returned by rx(), per round (-1: none within timeoutMs). */
  elapsedUs: number[];
  version: number;
  /** With spinUs: what each spin that ended a round returned (the ready socket's index). */
  spinHits?: number[];
  /** With spinUs: a spin over the two rings before anything was sent: its result and its µs. */
  idleSpin?: { result: number; us: number; starved: number };
}

/** Spins of a RingPoller over an idle ring, on a CPU that a thread that never blocks keeps busy. */
export interface StarveJob {
  mode: 'starve';
  iface: string;
  /** Each spin's window, µs. */
  spinUs: number;
  /** At most this many spins, and at most timeoutMs: it stops at the first the watchdog rescued. */
  spins: number;
  timeoutMs: number;
}

export interface StarveResult {
  spins: number;
  rescued: number;
  starved: number;
  /** What the spins returned, in order (-1 a window without a frame, -2 paused by a guard). */
  results: number[];
}

export type ChildJob = RxJob | TxJob | WorkersJob | VrrpJob | ForwardJob | GenJob | IpipJob | TunJob | IfJob | VisibleJob | StarveJob;

const native = loadNative();

function hexToBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function openRx(job: RxJob): PacketSocket {
  const ifindex = native.ifIndex(job.iface);
  return new native.PacketSocket({
    ifindex,
    ring: job.ring ?? { frameCount: 1024 },
    ...(job.filter ? { filter: job.filter } : {}),
    ...(job.fanout ? { fanout: job.fanout } : {}),
    vnetHdr: job.vnetHdr === true,
    ignoreOutgoing: true,
  });
}

function runRx(sock: PacketSocket, job: RxJob): RxResult {
  const desc = new Uint32Array(FRAME_STRIDE * 64);
  const ring = sock.ring!;
  const bytes = new Uint8Array(ring);
  const view = new DataView(ring);
  const result: RxResult = {
    instance: native.instanceId(), frames: [], batches: [], total: 0, kept: 0, stats: sock.stats(), version: sock.version,
  };
  const deadline = Date.now() + job.durationMs;
  let settle = job.settleMs ?? 0;
  while (Date.now() < deadline && (job.expect === 0 || result.kept < job.expect)) {
    if (!sock.wait(5)) continue;
    if (settle > 0) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, settle);
      settle = 0;
    }
    const n = sock.rx(desc);
    if (n > 0) result.batches.push(n);
    for (let i = 0; i < n; i++) {
      const d = i * FRAME_STRIDE;
      const off = desc[d + FRAME_OFFSET]!;
      const caplen = desc[d + FRAME_CAPLEN]!;
      const wirelen = desc[d + FRAME_WIRELEN]!;
      result.total++;
      if (job.etherType !== undefined && (caplen < 14 || view.getUint16(off + 12) !== job.etherType)) continue;
      if (job.minWirelen !== undefined && wirelen < job.minWirelen) continue;
      result.kept++;
      const frame: RxFrame = {
        wirelen, caplen,
        status: desc[d + FRAME_STATUS]!,
        pkttype: desc[d + FRAME_PKTTYPE]!,
        ifindex: desc[d + FRAME_IFINDEX]!,
        hex: Buffer.from(bytes.subarray(off, off + Math.min(caplen, job.captureBytes))).toString('hex'),
      };
      if (sock.vnetHdr) {
        const v = newVnetHdr();
        readVnetHdr(view, off, v);
        frame.vnet = v;
      }
      if (result.frames.length < 4096) result.frames.push(frame);
    }
    sock.release();
  }
  result.stats = sock.stats();
  return result;
}

function runStarve(job: StarveJob): StarveResult {
  const ifindex = native.ifIndex(job.iface);
  const sock = new native.PacketSocket({ ifindex, ring: {}, filter: [{ code: 0x06, jt: 0, jf: 0, k: 0 }] });
  const poller = new native.RingPoller([sock]);
  console.log('READY');
  const results: number[] = [];
  const end = performance.now() + job.timeoutMs;
  while (results.length < job.spins && performance.now() < end && poller.rescued === 0) results.push(poller.spin(job.spinUs));
  const out = { spins: results.length, rescued: poller.rescued, starved: poller.starved, results };
  sock.close();
  return out;
}

function runVisible(job: VisibleJob): VisibleResult {
  const ifindex = native.ifIndex(job.iface);
  const sock = new native.PacketSocket({ ifindex, ring: job.ring, filter: job.filter, ignoreOutgoing: true });
  const out = new native.PacketSocket({ ifindex, protocol: 0 });
  const frame = hexToBytes(job.frame);
  const desc = new Uint32Array(FRAME_STRIDE * 64);
  const result: VisibleResult = { elapsedUs: [], version: sock.version };
  // The poller's first ring never has a frame (its filter refuses everything: BPF "ret #0").
  const idle = job.spinUs !== undefined ? new native.PacketSocket({ ifindex, ring: job.ring, filter: [{ code: 0x06, jt: 0, jf: 0, k: 0 }] }) : null;
  const poller = idle !== null ? new native.RingPoller([idle, sock]) : null;
  if (poller !== null) {
    const t = process.hrtime.bigint();
    const r = poller.spin(job.spinUs!);
    result.idleSpin = { result: r, us: Number(process.hrtime.bigint() - t) / 1000, starved: poller.starved };
    result.spinHits = [];
  }
  process.stdout.write('READY\n');
  for (let r = 0; r < job.rounds; r++) {
    const t0 = process.hrtime.bigint();
    const deadline = Date.now() + job.timeoutMs;
    sendFrame(out, frame);
    let got = -1;
    while (Date.now() < deadline) {
      // The spin first: the reply is often in the ring before sendFrame returns (veth runs the
      // peer's stack inline), and spin() must then name its ring at once.
      if (poller !== null) {
        const hit = poller.spin(job.spinUs!);
        if (hit >= 0) result.spinHits!.push(hit);
      }
      if (sock.rx(desc) > 0) {
        got = Number(process.hrtime.bigint() - t0) / 1000;
        break;
      }
      if (poller === null) sock.wait(50);
    }
    result.elapsedUs.push(got);
    sock.release();
  }
  sock.close();
  out.close();
  idle?.close();
  return result;
}

function runTx(job: TxJob): { sent: number } {
  const sock = new native.PacketSocket({ ifindex: native.ifIndex(job.iface), protocol: 0, qdiscBypass: job.qdiscBypass === true });
  const frames = job.frames.map(hexToBytes);
  const total = frames.reduce((s, f) => s + f.length, 0);
  const buf = new Uint8Array(total);
  const offsets = new Uint32Array(frames.length);
  const lengths = new Uint32Array(frames.length);
  let at = 0;
  frames.forEach((f, i) => {
    buf.set(f, at);
    offsets[i] = at;
    lengths[i] = f.length;
    at += f.length;
  });
  process.stdout.write('READY\n');
  const sent = job.oneByOne === true
    ? frames.reduce((n, f) => n + (sendFrame(sock, f) ? 1 : 0), 0)
    : sock.send(buf, offsets, lengths, frames.length);
  sock.close();
  return { sent };
}

async function runWorkers(job: WorkersJob): Promise<RxResult[]> {
  const workers: Worker[] = [];
  const results: Promise<RxResult>[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < job.workers; i++) {
    const w = new Worker(__filename, { workerData: job.rx });
    workers.push(w);
    ready.push(new Promise((resolve, reject) => {
      w.once('message', (m: unknown) => (m === 'ready' ? resolve() : reject(new Error(`worker ${i}: expected ready, got ${String(m)}`))));
      w.once('error', reject);
    }));
  }
  await Promise.all(ready);
  for (const w of workers) {
    results.push(new Promise((resolve, reject) => {
      w.once('message', (m: RxResult) => resolve(m));
      w.once('error', reject);
    }));
  }
  process.stdout.write('READY\n');
  return Promise.all(results);
}

function parseIpv4Header(buf: Uint8Array): { ttl: number; protocol: number; headerLength: number } {
  return { ttl: buf[8]!, protocol: buf[9]!, headerLength: (buf[0]! & 0x0f) * 4 };
}

function ipText(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function runVrrp(job: VrrpJob): Record<string, unknown> {
  const ifindex = native.ifIndex(job.iface);
  const sock = new native.RawSocket({ protocol: 112, device: job.iface, multicastTtl: 255, multicastIf: ifindex, multicastLoop: false });
  sock.addMembership(job.group, ifindex);
  const buf = new Uint8Array(2048);
  const info = new Uint32Array(4);
  process.stdout.write('READY\n');
  if (job.role === 'send') {
    const payload = hexToBytes(job.payload ?? '');
    const sent = sock.send(payload, payload.length, job.group);
    // With IP_MULTICAST_LOOP off the sender must not hear itself.
    const heard = sock.wait(300) ? sock.recv(buf, info) : -1;
    sock.close();
    return { sent, selfReceived: heard };
  }
  const deadline = Date.now() + job.durationMs;
  while (Date.now() < deadline) {
    if (!sock.wait(20)) continue;
    const n = sock.recv(buf, info);
    if (n < 0) continue;
    const ip = parseIpv4Header(buf);
    sock.close();
    return {
      length: n, ttl: ip.ttl, protocol: ip.protocol,
      source: ipText(info[RAW_INFO_SOURCE]!), destination: ipText(info[RAW_INFO_DESTINATION]!),
      ifindex: info[RAW_INFO_IFINDEX]!, expectedIfindex: ifindex,
      payload: Buffer.from(buf.subarray(ip.headerLength, n)).toString('hex'),
    };
  }
  sock.close();
  return { length: -1 };
}

// The forwarding loop a dataplane worker runs, reduced to its I/O: RX batch, MAC rewrite in the
// ring, TX batch pointing into the same ring, release.
function runForward(job: ForwardJob): ForwardResult {
  const socks = job.sides.map((side) => new native.PacketSocket({
    ifindex: native.ifIndex(side.iface),
    ring: job.ring ?? { frameCount: 2048 },
    filter: side.filter,
    vnetHdr: job.vnetHdr,
    qdiscBypass: job.qdiscBypass,
    ignoreOutgoing: true,
    txBatch: job.batch,
  }));
  // Each MAC pair as 32 + 16 + 16 + 32 bits, written with four DataView stores per frame.
  const macWords = job.sides.map((side) => {
    const b = new Uint8Array(12);
    writeMac(b, 0, side.peerMac);
    writeMac(b, 6, native.ifInfo(side.iface).mac);
    const v = new DataView(b.buffer);
    return [v.getUint32(0), v.getUint16(4), v.getUint16(6), v.getUint32(8)] as const;
  });
  const views = socks.map((sock) => new DataView(sock.ring!));
  const rings = socks.map((sock) => sock.ring!);
  const desc = new Uint32Array(FRAME_STRIDE * job.batch);
  const offsets = new Uint32Array(job.batch);
  const lengths = new Uint32Array(job.batch);
  const pre = job.vnetHdr ? VNET_HDR_LEN : 0;
  const forwarded: [number, number] = [0, 0];
  const sent: [number, number] = [0, 0];
  let truncated = 0;
  let superFrames = 0;
  let maxWirelen = 0;
  process.stdout.write('READY\n');
  const start = Date.now();
  const deadline = start + job.durationMs;
  const idleStopMs = job.idleStopMs ?? 0;
  let lastActivity = start;
  let rxNs = 0n;
  let txNs = 0n;
  let rounds = 0;
  for (;;) {
    if ((rounds++ & 63) === 0) {
      const now = Date.now();
      if (now >= deadline) break;
      if (idleStopMs > 0 && forwarded[0] + forwarded[1] > 0 && now - lastActivity > idleStopMs) break;
    }
    let moved = 0;
    for (let from = 0; from < 2; from++) {
      if (job.oneWay === true && from === 1) break;
      const to = 1 - from;
      const rxSock = socks[from]!;
      const t0 = process.hrtime.bigint();
      const n = rxSock.rx(desc, job.batch);
      if (n === 0) continue;
      const view = views[from]!;
      const mw = macWords[to]!;
      let count = 0;
      for (let i = 0; i < n; i++) {
        const d = i * FRAME_STRIDE;
        const off = desc[d + FRAME_OFFSET]!;
        const caplen = desc[d + FRAME_CAPLEN]!;
        const wirelen = desc[d + FRAME_WIRELEN]!;
        if (caplen < wirelen) {
          truncated++;
          continue;
        }
        if (wirelen > 1514) superFrames++;
        if (wirelen > maxWirelen) maxWirelen = wirelen;
        view.setUint32(off, mw[0]);
        view.setUint16(off + 4, mw[1]);
        view.setUint16(off + 6, mw[2]);
        view.setUint32(off + 8, mw[3]);
        offsets[count] = off - pre;
        lengths[count] = caplen + pre;
        count++;
      }
      forwarded[from]! += count;
      const t1 = process.hrtime.bigint();
      sent[from]! += socks[to]!.send(rings[from]!, offsets, lengths, count);
      rxSock.release();
      rxNs += t1 - t0;
      txNs += process.hrtime.bigint() - t1;
      moved += n;
    }
    if (moved === 0) socks[0]!.wait(1);
    else if (idleStopMs > 0) lastActivity = Date.now();
  }
  const elapsed = (Date.now() - start) / 1000;
  const stats = socks.map((s) => s.stats());
  for (const s of socks) s.close();
  const frames = Math.max(1, forwarded[0] + forwarded[1]);
  return {
    forwarded, sent, truncated, superFrames, maxWirelen, elapsed,
    rxNsPerFrame: Number(rxNs) / frames, txNsPerFrame: Number(txNs) / frames, stats,
  };
}

function runGen(job: GenJob): Record<string, unknown> {
  const sock = new native.PacketSocket({ ifindex: native.ifIndex(job.iface), protocol: 0, qdiscBypass: true, txBatch: job.batch });
  const frame = hexToBytes(job.frame);
  const buf = new Uint8Array(frame.length);
  buf.set(frame);
  const offsets = new Uint32Array(job.batch); // all frames are the same bytes
  const lengths = new Uint32Array(job.batch).fill(frame.length);
  process.stdout.write('READY\n');
  let sent = 0;
  let calls = 0;
  const start = Date.now();
  const deadline = start + job.durationMs;
  while ((calls++ & 63) !== 0 || Date.now() < deadline) sent += sock.send(buf, offsets, lengths, job.batch);
  const elapsed = (Date.now() - start) / 1000;
  const stats = sock.stats();
  sock.close();
  return { sent, elapsed, pps: sent / elapsed, stats };
}

function runIpip(job: IpipJob): Promise<Record<string, unknown>> {
  const sock = new native.RawSocket({ protocol: 4 });
  if (job.role === 'send') {
    const inner = hexToBytes(job.inner ?? '');
    process.stdout.write('READY\n');
    const sent = sock.send(inner, inner.length, job.destination);
    sock.close();
    return Promise.resolve({ sent });
  }
  return new Promise((resolve) => {
    const buf = new Uint8Array(4096);
    const info = new Uint32Array(4);
    const timer = setTimeout(() => finish({ length: -1 }), job.durationMs);
    const watcher = new native.FdWatcher(sock.fd, (status) => {
      const n = status === 0 ? sock.recv(buf, info) : -1;
      if (n < 0) return;
      const ip = parseIpv4Header(buf);
      finish({
        length: n, protocol: ip.protocol, source: ipText(info[RAW_INFO_SOURCE]!),
        inner: Buffer.from(buf.subarray(ip.headerLength, n)).toString('hex'),
      });
    });
    function finish(r: Record<string, unknown>): void {
      clearTimeout(timer);
      watcher.close();
      sock.close();
      resolve(r);
    }
    watcher.start(1);
    process.stdout.write('READY\n');
  });
}

function runTun(job: TunJob): Promise<Record<string, unknown>> {
  const tun = native.tunOpen(job.name);
  execFileSync('ip', ['addr', 'add', job.cidr, 'dev', tun.name]);
  execFileSync('ip', ['link', 'set', tun.name, 'up']);
  const udp = createSocket('udp4');
  return new Promise((resolve, reject) => {
    const buf = new Uint8Array(65536);
    const result: Record<string, unknown> = { name: tun.name };
    const timer = setTimeout(() => finish(), job.durationMs);
    const watcher = new native.FdWatcher(tun.fd, () => {
      for (;;) {
        const n = native.fdRead(tun.fd, buf);
        if (n < 0) break;
        // The first IPv4 packet the kernel routed into the device (IFF_NO_PI: no 4-byte prefix).
        if (result['readProtocol'] === undefined && n >= 20 && buf[0]! >> 4 === 4) {
          result['readProtocol'] = buf[9];
          result['readDestination'] = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
          const out = hexToBytes(job.write);
          result['written'] = native.fdWrite(tun.fd, out, out.length);
        }
      }
    });
    udp.on('message', (msg) => {
      result['udpReceived'] = msg.toString('hex');
      finish();
    });
    udp.on('error', reject);
    function finish(): void {
      clearTimeout(timer);
      watcher.close();
      udp.close();
      native.fdClose(tun.fd);
      resolve(result);
    }
    udp.bind(job.listenPort, job.listenIp, () => {
      watcher.start();
      process.stdout.write('READY\n');
    });
  });
}

function runIf(job: IfJob): Record<string, unknown> {
  const info = native.ifInfo(job.iface);
  const groBefore = native.ethtoolGet(job.iface, 'gro');
  native.ethtoolSet(job.iface, 'gro', !groBefore);
  const groFlipped = native.ethtoolGet(job.iface, 'gro');
  native.ethtoolSet(job.iface, 'gro', groBefore);
  const groRestored = native.ethtoolGet(job.iface, 'gro');
  const tso = native.ethtoolGet(job.iface, 'tso');
  process.stdout.write('READY\n');
  return { ...info, ifIndex: native.ifIndex(job.iface), groBefore, groFlipped, groRestored, tso };
}

async function main(): Promise<void> {
  const arg = process.argv[2] ?? '{}';
  const job = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as ChildJob;
  let out: unknown;
  switch (job.mode) {
    case 'rx': {
      const sock = openRx(job);
      process.stdout.write('READY\n');
      out = runRx(sock, job);
      sock.close();
      break;
    }
    case 'tx': out = runTx(job); break;
    case 'workers': out = await runWorkers(job); break;
    case 'vrrp': out = runVrrp(job); break;
    case 'forward': out = runForward(job); break;
    case 'gen': out = runGen(job); break;
    case 'ipip': out = await runIpip(job); break;
    case 'tun': out = await runTun(job); break;
    case 'if': out = runIf(job); break;
    case 'visible': out = runVisible(job); break;
    case 'starve': out = runStarve(job); break;
    default: throw new Error(`native-child: unknown mode in ${process.argv[2]}`);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`native-child: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
} else {
  // A worker of the 'workers' job: its own addon instance, its own fanout member.
  const job = workerData as RxJob;
  const sock = openRx(job);
  parentPort!.postMessage('ready');
  const result = runRx(sock, job);
  sock.close();
  parentPort!.postMessage(result);
}
