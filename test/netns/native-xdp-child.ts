// The AF_XDP test's director (`ip netns exec NS node dist/test/netns/native-xdp-child.js '<json>'`):
// attaches the addon's XDP program to the ingress veth, opens an XdpSocket there and one on the
// egress veth over one UMEM, and forwards frames to the VIP in place (MACs rewritten, sent from
// the UMEM). Prints READY once set up, stops when the stop file appears (or after durationMs), and
// prints one JSON line with what it saw. Mode 'hold' only attaches and waits to be killed.
// Not a test file itself (no .test suffix).
import { execFileSync } from 'node:child_process';
import { ipv4ToInt } from '../../src/packet/addr';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import {
  FRAME_IFINDEX, FRAME_OFFSET, FRAME_PKTTYPE, FRAME_STATUS, FRAME_STRIDE, FRAME_WIRELEN,
  loadNative, writeMac, type XdpSocketStats,
} from '../../src/native/addon';

export interface XdpForwardJob {
  mode: 'forward';
  ingress: string;
  egress: string;
  /** The sink's MAC: forwarded frames go there. */
  sinkMac: string;
  vip: string;
  /** A second address in dsts, on the director itself: small datagrams to it are taken, larger-than-maxFrame ones pass. */
  local: string;
  localPort: number;
  /** A source address put in srcs: frames from it are taken whatever their destination. */
  source: string;
  maxFrame: number;
  /** Frames copied from a plain Uint8Array and sent on the egress socket at start (ready-made by the test). */
  copyFrames: number[][];
  stopFile: string;
  durationMs: number;
}

export interface XdpHoldJob {
  mode: 'hold';
  ingress: string;
  durationMs: number;
}

export interface XdpForwardResult {
  forwarded: number;
  /** Frames to `local` taken by the program (their wire lengths). */
  localTaken: number[];
  /** Frames from `source` taken by the program (through srcs). */
  sourceTaken: number;
  /** Datagrams to `local` the kernel delivered to the UDP socket (their lengths). */
  localDelivered: number[];
  csumValid: number;
  vnetNonZero: number;
  badCells: number;
  copySent: number;
  oversizeSent: number;
  pollerHits: number;
  /** typeof XdpProgram.ringflowsFd. */
  ringflowsFdType: string;
  /** The second attach on the same device: the error code it threw. */
  secondAttach: string;
  queues: { rx: number; tx: number };
  ingressStats: XdpSocketStats;
  egressStats: XdpSocketStats;
  /** UMEM chunk states after the traffic stopped and everything was released. */
  statesAfter: { free: number; fill: number; held: number; tx: number };
  freeAfterClose: number;
  chunkCount: number;
  /** How long a new socket on the ingress queue took to bind right after the old one closed. */
  rebindMs: number;
  xdpAfterClose: string;
}

type Job = XdpForwardJob | XdpHoldJob;

function xdpOnDevice(dev: string): string {
  const out = execFileSync('ip', ['-d', 'link', 'show', 'dev', dev], { encoding: 'utf8' });
  return (out.match(/xdp\S*/g) ?? []).join(' ');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function forward(job: XdpForwardJob): Promise<XdpForwardResult> {
  const n = loadNative();
  const inIdx = n.ifIndex(job.ingress);
  const outIdx = n.ifIndex(job.egress);
  const inMac = n.ifInfo(job.ingress).mac;
  const outMac = n.ifInfo(job.egress).mac;
  const prog = n.xdpAttach(inIdx, { mac: inMac, maxFrame: job.maxFrame, mapEntries: 256, flowEntries: 1024 });
  let secondAttach = 'none';
  try {
    n.xdpAttach(inIdx, { mac: inMac, maxFrame: job.maxFrame, mapEntries: 16 }).close();
  } catch (err) {
    secondAttach = (err as { code?: string }).code ?? String(err);
  }
  const udp = createSocket('udp4');
  const localDelivered: number[] = [];
  udp.on('message', (m) => localDelivered.push(m.length));
  await new Promise<void>((resolve) => udp.bind(job.localPort, job.local, resolve));

  const umem = new n.XdpUmem({ chunkCount: 4096, chunkSize: 2048, headroom: 256 });
  const ingress = new n.XdpSocket({ umem, ifindex: inIdx, queue: 0, xskMapFd: prog.xsksFd });
  const egress = new n.XdpSocket({ umem, ifindex: outIdx, queue: 0 });
  n.bpfMapUpdate(prog.dstsFd, ipv4ToInt(job.vip), true);
  n.bpfMapUpdate(prog.dstsFd, ipv4ToInt(job.local), true);
  n.bpfMapUpdate(prog.srcsFd, ipv4ToInt(job.source), true);
  n.bpfMapUpdate(prog.dstsFd, ipv4ToInt('10.255.255.254'), true);
  n.bpfMapUpdate(prog.dstsFd, ipv4ToInt('10.255.255.254'), false); // off again
  n.bpfMapUpdate(prog.dstsFd, ipv4ToInt('10.255.255.253'), false); // never there: ENOENT ignored
  const poller = new n.RingPoller([ingress, egress], false);

  // A copying send from plain memory, and one frame too long for a chunk.
  const one = new Uint32Array(1);
  const oneLen = new Uint32Array(1);
  let copySent = 0;
  for (const f of job.copyFrames) {
    const b = Uint8Array.from(f);
    oneLen[0] = b.length;
    copySent += egress.send(b, one, oneLen, 1);
  }
  const big = new Uint8Array(2100);
  oneLen[0] = big.length;
  const oversizeSent = egress.send(big, one, oneLen, 1);

  const desc = new Uint32Array(FRAME_STRIDE * 256);
  const offs = new Uint32Array(256);
  const lens = new Uint32Array(256);
  const buf = new Uint8Array(umem.buffer);
  const vip = ipv4ToInt(job.vip);
  const local = ipv4ToInt(job.local);
  const source = ipv4ToInt(job.source);
  const res = {
    forwarded: 0, localTaken: [] as number[], sourceTaken: 0, csumValid: 0, vnetNonZero: 0, badCells: 0, pollerHits: 0,
  };
  const TP_STATUS_USER = 1;
  const TP_STATUS_CSUM_VALID = n.constants.TP_STATUS_CSUM_VALID;
  console.log('READY');
  const deadline = Date.now() + job.durationMs;
  while (Date.now() < deadline && !existsSync(job.stopFile)) {
    const which = poller.spin(2000);
    if (which === 0) res.pollerHits++;
    else if (which === -2) ingress.wait(2);
    const got = ingress.rx(desc);
    let k = 0;
    for (let i = 0; i < got; i++) {
      const d = i * FRAME_STRIDE;
      const at = desc[d + FRAME_OFFSET]!;
      const len = desc[d + FRAME_WIRELEN]!;
      const status = desc[d + FRAME_STATUS]!;
      if ((status & TP_STATUS_USER) === 0 || desc[d + FRAME_IFINDEX] !== inIdx || desc[d + FRAME_PKTTYPE] !== 0) res.badCells++;
      if (status & TP_STATUS_CSUM_VALID) res.csumValid++;
      for (let j = at - 10; j < at; j++) if (buf[j] !== 0) res.vnetNonZero++;
      const dst = ((buf[at + 30]! << 24) | (buf[at + 31]! << 16) | (buf[at + 32]! << 8) | buf[at + 33]!) >>> 0;
      if (dst === vip) {
        writeMac(buf, at, job.sinkMac);
        writeMac(buf, at + 6, outMac);
        offs[k] = at;
        lens[k] = len;
        k++;
      } else if (dst === local) {
        res.localTaken.push(len);
      } else if (((buf[at + 26]! << 24) | (buf[at + 27]! << 16) | (buf[at + 28]! << 8) | buf[at + 29]!) >>> 0 === source) {
        res.sourceTaken++;
      }
    }
    if (k > 0) res.forwarded += egress.send(umem.buffer, offs, lens, k);
    ingress.release();
    egress.rx(desc, 0); // reaps the egress socket's completions
    // Lets the UDP socket's callbacks run between rounds.
    await new Promise<void>((r) => setImmediate(r));
  }
  // Quiet now: wait (bounded) for the last completions, releasing as we go.
  let statesAfter = umem.states();
  for (let i = 0; i < 50 && (statesAfter.tx > 0 || statesAfter.held > 0); i++) {
    await sleep(10);
    ingress.rx(desc, 0);
    egress.rx(desc, 0);
    ingress.release();
    statesAfter = umem.states();
  }
  const ingressStats = ingress.stats();
  const egressStats = egress.stats();
  ingress.close();
  ingress.close(); // idempotent
  // The same queue again at once: the old socket's teardown is asynchronous, bind retries EBUSY.
  const t0 = Date.now();
  const again = new n.XdpSocket({ umem, ifindex: inIdx, queue: 0, xskMapFd: prog.xsksFd });
  const rebindMs = Date.now() - t0;
  again.close();
  egress.close();
  const freeAfterClose = umem.free;
  const chunkCount = umem.chunkCount;
  umem.close();
  prog.close();
  const xdpAfterClose = xdpOnDevice(job.ingress);
  udp.close();
  return {
    ...res, localDelivered, ringflowsFdType: typeof prog.ringflowsFd, copySent, oversizeSent, secondAttach, queues: n.ifQueueCount(job.ingress),
    ingressStats, egressStats, statesAfter, freeAfterClose, chunkCount, rebindMs, xdpAfterClose,
  };
}

async function hold(job: XdpHoldJob): Promise<void> {
  const n = loadNative();
  const idx = n.ifIndex(job.ingress);
  n.xdpAttach(idx, { mac: n.ifInfo(job.ingress).mac, maxFrame: 1514, mapEntries: 16 });
  console.log('READY');
  await sleep(job.durationMs); // killed before this ends
  console.log('null');
}

async function main(): Promise<void> {
  const arg = process.argv[2] ?? '';
  const job = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as Job;
  if (job.mode === 'hold') return hold(job);
  const r = await forward(job);
  console.log(JSON.stringify(r));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
