// The benchmark's UDP packet generator: `ip netns exec NS node dist/bench/e2e/pktgen.js '<json>'`.
//
// It builds `flows` Ethernet/IPv4/UDP frames once (same destination, source ports sport,
// sport+1, ...), lays them out in one buffer and sends them round-robin in sendmmsg batches through
// the native addon's PacketSocket.send with PACKET_QDISC_BYPASS, as fast as the kernel takes them,
// for durationMs. Nothing is allocated in the send loop: the batch views over the offsets are made
// up front. Prints READY once its socket is open, then one JSON line (GenResult). Not a test.
import { readFileSync } from 'node:fs';
import { loadNative } from '../../src/native/addon';
import { udpFrame } from '../../test/netns/native-lab';

export interface PktgenJob {
  iface: string;
  dstMac: string;
  srcMac: string;
  srcIp: string;
  dstIp: string;
  dport: number;
  /** First source port; flow i uses sport + i. */
  sport: number;
  /** Distinct source ports (flows); rounded up to a multiple of batch. */
  flows: number;
  /** Ethernet frame size on the wire including the 4-byte FCS, as RFC 2544 counts it (64 … 1518). */
  frameSize: number;
  batch: number;
  durationMs: number;
}

export interface GenResult {
  sent: number;
  /** sendmmsg calls that took fewer frames than offered (socket buffer or device busy). */
  short: number;
  elapsed: number;
  pps: number;
}

/** Bytes of the frame handed to the kernel (no FCS) for an RFC 2544 frame size. */
export function frameBytes(frameSize: number): number {
  if (!Number.isInteger(frameSize) || frameSize < 64 || frameSize > 1518) {
    throw new RangeError(`pktgen: frameSize ${frameSize} is outside 64..1518 (Ethernet frame with FCS)`);
  }
  return frameSize - 4;
}

export function buildFrames(job: PktgenJob): { buf: Uint8Array; offsets: Uint32Array; length: number; flows: number } {
  const length = frameBytes(job.frameSize);
  const payload = new Uint8Array(length - 14 - 20 - 8);
  const flows = Math.ceil(Math.max(1, job.flows) / job.batch) * job.batch;
  if (job.sport < 1 || job.sport + flows - 1 > 65535) throw new RangeError(`pktgen: source ports ${job.sport}..${job.sport + flows - 1} exceed 1..65535`);
  // 64-byte alignment keeps each frame's start on its own cache line.
  const stride = (length + 63) & ~63;
  const buf = new Uint8Array(stride * flows);
  const offsets = new Uint32Array(flows);
  for (let i = 0; i < flows; i++) {
    const f = udpFrame({ dstMac: job.dstMac, srcMac: job.srcMac, srcIp: job.srcIp, dstIp: job.dstIp, sport: job.sport + i, dport: job.dport, payload, id: i });
    buf.set(f, i * stride);
    offsets[i] = i * stride;
  }
  return { buf, offsets, length, flows };
}

function run(job: PktgenJob): GenResult {
  const native = loadNative();
  const sock = new native.PacketSocket({ ifindex: native.ifIndex(job.iface), protocol: 0, qdiscBypass: true, txBatch: job.batch });
  const { buf, offsets, length, flows } = buildFrames(job);
  const lengths = new Uint32Array(job.batch).fill(length);
  const views: Uint32Array[] = [];
  for (let at = 0; at < flows; at += job.batch) views.push(offsets.subarray(at, at + job.batch));
  process.stdout.write('READY\n');
  let sent = 0;
  let short = 0;
  let calls = 0;
  let next = 0;
  const start = Date.now();
  const deadline = start + job.durationMs;
  // The clock is read every 64 calls (~4096 frames): cheap, and at most a few ms late.
  while ((calls++ & 63) !== 0 || Date.now() < deadline) {
    const n = sock.send(buf, views[next]!, lengths, job.batch);
    sent += n;
    if (n < job.batch) short++;
    next = next + 1 === views.length ? 0 : next + 1;
  }
  const elapsed = (Date.now() - start) / 1000;
  sock.close();
  return { sent, short, elapsed, pps: sent / elapsed };
}

if (require.main === module) {
  try {
    const arg = process.argv[2] ?? '';
    const job = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as PktgenJob;
    process.stdout.write(JSON.stringify(run(job)) + '\n');
  } catch (err) {
    process.stderr.write(`pktgen: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
