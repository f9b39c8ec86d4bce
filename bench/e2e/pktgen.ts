// The benchmark's UDP packet generator: `ip netns exec NS node dist/bench/e2e/pktgen.js '<json>'`.
//
// It builds `flows` Ethernet/IPv4/UDP frames once (same destination; source ports sport,
// sport+1, ... and, past `portsPerIp` ports, the next source address), lays them out in one buffer
// and sends them round-robin in sendmmsg batches through the native addon's PacketSocket.send with
// PACKET_QDISC_BYPASS. Nothing is allocated in the send loop: one offsets array is refilled per call.
//
// Two ways to run:
// - one run (no `steps`): as fast as the kernel takes the frames, for durationMs; prints READY once
//   its socket is open, then one JSON line (GenResult).
// - stepped (`steps`: at most that many): prints READY, then for each step waits for a line on
//   stdin, "go PPS" ("stop" or end of input ends the run), sends at that paced rate (0: unpaced) for
//   durationMs and prints one JSON line (GenResult). The parent reads its counters between steps,
//   so each step's loss is exact, and picks each step's rate from the ones before.
//
// Pacing is open loop: frames are due on a schedule (rate × time since the start) whatever the
// receiver does; a call goes out once a minimum batch is due (about 16 µs of frames, a power of
// two), taking every due frame up to `batch`, so a generator preempted for a while catches up; more
// than 50 ms behind, it drops the backlog (counted as `late`), so an offered rate it cannot hold
// shows as offered < asked. Every run is bounded in time
// (durationMs, at most 120 s) and in count (rate × duration, or 20 Mpps × duration unpaced).
import { readFileSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadNative } from '../../src/native/addon';
import { checksum, udpFrame } from '../../test/netns/native-lab';

export interface PktgenJob {
  iface: string;
  dstMac: string;
  srcMac: string;
  /** First source address; flow i uses srcIp + floor(i / portsPerIp). */
  srcIp: string;
  dstIp: string;
  dport: number;
  /** First source port; flow i uses sport + i % portsPerIp. */
  sport: number;
  /** Distinct 5-tuples (flows); rounded up to a multiple of batch. */
  flows: number;
  /** Source ports per source address (default: all flows on srcIp). */
  portsPerIp?: number;
  /** Ethernet frame size on the wire including the 4-byte FCS, as RFC 2544 counts it (64 … 1518). */
  frameSize: number;
  /** Most frames per sendmmsg call. */
  batch: number;
  /** How long one run, or each step, sends. */
  durationMs: number;
  /** Stepped mode: at most this many steps, each started by a "go PPS" line on stdin. */
  steps?: number;
}

export interface GenResult {
  sent: number;
  /** sendmmsg calls that took fewer frames than offered (socket buffer or device busy). */
  short: number;
  elapsed: number;
  pps: number;
  /** Paced runs: times the generator fell more than 50 ms behind its schedule and dropped the backlog. */
  late?: number;
  /** The generator's own user-mode CPU seconds in this run (its pacing spin and frame refills). */
  userCpu?: number;
  /** Its system-mode CPU seconds (sendmmsg, and softirq work run in its context). */
  sysCpu?: number;
}

export const MAX_STEP_MS = 120_000;
export const MAX_STEPS = 64;
const UNPACED_PPS_BOUND = 20e6;
/** Paced batches leave about this far apart. */
const PACE_GAP_S = 16e-6;
/** A paced generator further behind its schedule than this drops the backlog. */
const MAX_BEHIND_S = 0.05;

/** Bytes of the frame handed to the kernel (no FCS) for an RFC 2544 frame size. */
export function frameBytes(frameSize: number): number {
  if (!Number.isInteger(frameSize) || frameSize < 64 || frameSize > 1518) {
    throw new RangeError(`pktgen: frameSize ${frameSize} is outside 64..1518 (Ethernet frame with FCS)`);
  }
  return frameSize - 4;
}

/** Frames per sendmmsg call for a paced rate: about PACE_GAP_S apart, a power of two, 1 … max. */
export function paceBatch(pps: number, max: number): number {
  if (pps <= 0) return max;
  let b = 1;
  while (b * 2 <= max && b * 2 <= pps * PACE_GAP_S) b *= 2;
  return b;
}

function ipNumber(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new RangeError(`pktgen: bad IPv4 address ${ip}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function buildFrames(job: PktgenJob): { buf: Uint8Array; offsets: Uint32Array; length: number; flows: number; stride: number } {
  const length = frameBytes(job.frameSize);
  const payload = new Uint8Array(length - 14 - 20 - 8);
  const flows = Math.ceil(Math.max(1, job.flows) / job.batch) * job.batch;
  const perIp = job.portsPerIp ?? flows;
  if (!Number.isInteger(perIp) || perIp < 1) throw new RangeError(`pktgen: portsPerIp ${perIp} must be a positive integer`);
  const ports = Math.min(perIp, flows);
  if (job.sport < 1 || job.sport + ports - 1 > 65535) throw new RangeError(`pktgen: source ports ${job.sport}..${job.sport + ports - 1} exceed 1..65535`);
  const ips = Math.ceil(flows / perIp);
  const ip0 = ipNumber(job.srcIp);
  if (ips > 4096) throw new RangeError(`pktgen: ${ips} source addresses (flows / portsPerIp) exceed 4096`);
  // 64-byte alignment keeps each frame's start on its own cache line.
  const stride = (length + 63) & ~63;
  const buf = new Uint8Array(stride * flows);
  const offsets = new Uint32Array(flows);
  // One template, then per flow: source address, IP id, source port, and the header checksum
  // recomputed (1M flows are built in well under a second this way).
  const template = udpFrame({ dstMac: job.dstMac, srcMac: job.srcMac, srcIp: job.srcIp, dstIp: job.dstIp, sport: job.sport, dport: job.dport, payload, id: 0 });
  for (let i = 0; i < flows; i++) {
    const at = i * stride;
    buf.set(template, at);
    const ip = (ip0 + Math.floor(i / perIp)) >>> 0;
    const port = job.sport + (i % perIp);
    buf[at + 18] = (i >> 8) & 255;
    buf[at + 19] = i & 255;
    buf[at + 24] = 0;
    buf[at + 25] = 0;
    buf[at + 26] = ip >>> 24;
    buf[at + 27] = (ip >>> 16) & 255;
    buf[at + 28] = (ip >>> 8) & 255;
    buf[at + 29] = ip & 255;
    const c = checksum(buf.subarray(at + 14, at + 34));
    buf[at + 24] = c >> 8;
    buf[at + 25] = c & 255;
    buf[at + 34] = port >> 8;
    buf[at + 35] = port & 255;
    offsets[i] = at;
  }
  return { buf, offsets, length, flows, stride };
}

/** The rate a "go PPS" line asks for; throws on anything else. */
export function parseGo(line: string): number {
  const m = /^go\s+(\d+(?:\.\d+)?)\s*$/.exec(line.trim());
  if (!m) throw new Error(`pktgen: expected "go PPS" or "stop" on stdin, got ${JSON.stringify(line.slice(0, 80))}`);
  const pps = Number(m[1]);
  if (pps > UNPACED_PPS_BOUND) throw new RangeError(`pktgen: ${pps} pps exceeds ${UNPACED_PPS_BOUND}`);
  return pps;
}

class Sender {
  private readonly sock: ReturnType<typeof openSocket>;
  private readonly off: Uint32Array;
  private readonly lengths: Uint32Array;
  private cur = 0;

  constructor(private readonly job: PktgenJob, private readonly frames: ReturnType<typeof buildFrames>) {
    this.sock = openSocket(job);
    this.off = new Uint32Array(job.batch);
    this.lengths = new Uint32Array(job.batch).fill(frames.length);
  }

  /** One run at `pps` (0: unpaced) for durationMs, at most rate × duration frames. */
  run(pps: number, durationMs: number): GenResult {
    // Paced: frames are due at pps from the start; a call goes out once `min` are due and takes
    // every due frame up to `batch`. A generator preempted for a while catches up in full batches
    // (the offered average holds: open loop), unless it is more than MAX_BEHIND_S behind, when the
    // backlog is dropped and counted as `late`.
    const min = paceBatch(pps, this.job.batch);
    const max = this.job.batch;
    const perMs = pps / 1000;
    const behindCap = Math.max(max, pps * MAX_BEHIND_S);
    const maxFrames = Math.ceil(((pps > 0 ? pps : UNPACED_PPS_BOUND) * durationMs) / 1000) + max;
    const { stride, flows, buf } = this.frames;
    const off = this.off;
    let sent = 0;
    let issued = 0;
    let short = 0;
    let late = 0;
    let cur = this.cur;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const end = start + durationMs;
    for (;;) {
      const now = performance.now();
      if (now >= end || issued >= maxFrames) break;
      let k = max;
      if (pps > 0) {
        let due = Math.floor((now - start) * perMs) - issued;
        if (due < min) continue;
        if (due > behindCap) {
          late++;
          issued += due - min;
          due = min;
        }
        k = due < max ? due : max;
      }
      for (let j = 0; j < k; j++) {
        off[j] = cur * stride;
        cur = cur + 1 === flows ? 0 : cur + 1;
      }
      const n = this.sock.send(buf, off, this.lengths, k);
      issued += k;
      sent += n;
      if (n < k) short++;
    }
    const elapsed = (performance.now() - start) / 1000;
    this.cur = cur;
    const used = process.cpuUsage(cpu0);
    const r: GenResult = { sent, short, elapsed, pps: sent / elapsed, userCpu: used.user / 1e6, sysCpu: used.system / 1e6 };
    if (pps > 0) r.late = late;
    return r;
  }

  close(): void {
    this.sock.close();
  }
}

function openSocket(job: PktgenJob) {
  const native = loadNative();
  return new native.PacketSocket({ ifindex: native.ifIndex(job.iface), protocol: 0, qdiscBypass: true, txBatch: job.batch });
}

/** Blocks until a line arrives on stdin; null at end of input. */
function readLine(): string | null {
  const one = Buffer.alloc(1);
  let line = '';
  for (;;) {
    let n: number;
    try {
      n = readSync(0, one, 0, 1, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw err;
    }
    if (n === 0) return line === '' ? null : line;
    const ch = one.toString('latin1');
    if (ch === '\n') return line;
    line += ch;
  }
}

function main(job: PktgenJob): void {
  if (!(job.durationMs > 0 && job.durationMs <= MAX_STEP_MS)) throw new RangeError(`pktgen: durationMs ${job.durationMs} is outside 1..${MAX_STEP_MS}`);
  if (job.steps !== undefined && !(Number.isInteger(job.steps) && job.steps >= 1 && job.steps <= MAX_STEPS)) throw new RangeError(`pktgen: steps ${job.steps} is outside 1..${MAX_STEPS}`);
  const sender = new Sender(job, buildFrames(job));
  process.stdout.write('READY\n');
  try {
    if (job.steps === undefined) {
      process.stdout.write(JSON.stringify(sender.run(0, job.durationMs)) + '\n');
      return;
    }
    for (let i = 0; i < job.steps; i++) {
      const cmd = readLine();
      if (cmd === null || cmd.trim() === 'stop') break;
      process.stdout.write(JSON.stringify(sender.run(parseGo(cmd), job.durationMs)) + '\n');
    }
  } finally {
    sender.close();
  }
}

if (require.main === module) {
  try {
    const arg = process.argv[2] ?? '';
    main(JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as PktgenJob);
  } catch (err) {
    process.stderr.write(`pktgen: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
