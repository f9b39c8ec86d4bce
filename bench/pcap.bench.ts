// Micro benchmarks of the pcap backend's own work on top of the pipeline (pcap-loop.ts): the
// CHECKSUM_PARTIAL check every frame goes through, completing a partial checksum, cutting a 64 KiB
// TCP super-frame into segments, and a whole frame through PcapWorker (copy in as the binding
// does, check, pipeline, inject) over a fake binding whose inject does nothing — so the row is the
// JavaScript cost per frame without libpcap and without the system calls, comparable with the
// ring worker's pipeline rows in forward.bench.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCases, type BenchOptions, type BenchRow } from './lib';
import { PacketBuilder } from '../src/packet/builder';
import { TCP_ACK, TCP_SYN } from '../src/packet/tcp';
import { viewOf } from '../src/packet/layer';
import { foldSum, pseudoHeaderSum } from '../src/packet/checksum';
import { completeL4Checksum, partialChecksumL3 } from '../src/packet/checksum';
import { tcpSuperFrameL3, writeTcpSegment } from '../src/packet/gso';
import type { FromWorker } from '../src/dataplane/worker';
import { CLIENT_MAC, DIRECTOR_MAC, VIP, FakeEthtool, FakeSession, pcapWorkerFixture } from '../test/dataplane/pcap-fakes';

const GROUP = 'pcap backend';
const BATCH = 256;
let sink = 0;

function tcpFrame(payload: number, flags: number, sport = 40000): Uint8Array {
  return new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
    .ipv4({ src: '10.77.0.10', dst: VIP, ttl: 64, df: true })
    .tcp({ srcPort: sport, dstPort: 80, flags, seq: 1 })
    .payload('x'.repeat(payload))
    .build();
}

function makePartial(frame: Uint8Array): void {
  const v = viewOf(frame);
  const l4Length = v.getUint16(14 + 2) - 20;
  v.setUint16(14 + 20 + 16, foldSum(pseudoHeaderSum(v.getUint32(14 + 12), v.getUint32(14 + 16), 6, l4Length)));
}

export async function collect(opts: BenchOptions): Promise<BenchRow[]> {
  const full = tcpFrame(1460, TCP_ACK);
  const fullView = viewOf(full);
  const partial = tcpFrame(1460, TCP_ACK);
  makePartial(partial);
  const pristinePartial = partial.slice();
  const partialView = viewOf(partial);

  const superFrame = Buffer.from(tcpFrame(65535 - 40, TCP_ACK));
  const superView = viewOf(superFrame);
  const l3 = tcpSuperFrameL3(superFrame, superView, superFrame.length);
  const headerEnd = 14 + 20 + 20;
  const mss = 1500 - 20 - 40;
  const segment = Buffer.alloc(2048);
  const segmentView = viewOf(segment);
  const segments = Math.ceil((superFrame.length - headerEnd) / mss);

  // PcapWorker over the fake binding: one established DR flow, BATCH frames per dispatch.
  const dir = mkdtempSync(join(tmpdir(), 'uvs-pcap-bench-'));
  const fixture = pcapWorkerFixture({ ethtool: new FakeEthtool(), offloadStatePath: join(dir, 'offloads.json') });
  const w = fixture.worker;
  await waitFor(w, 'ready');
  FakeSession.all = [];
  w.postMessage({ type: 'filter', filter: [], hosts: { destinations: [0x0a4d0064], sources: [] } });
  const applied = waitFor(w, 'applied');
  w.postMessage({ type: 'snapshot', ...fixture.snapshot });
  await applied;
  const session = FakeSession.all[0]!;
  session.inject = (): void => undefined;
  session.queue.push(tcpFrame(0, TCP_SYN));
  session.read_callback!();
  const small = tcpFrame(18, TCP_ACK);
  const big = tcpFrame(1460, TCP_ACK);
  const smallBatch = new Array<Uint8Array>(BATCH).fill(small);
  const bigBatch = new Array<Uint8Array>(BATCH).fill(big);

  try {
    return await runCases('pcap', [
      {
        group: GROUP, name: 'partial-checksum check, 1514-byte frame, complete checksum', opsPerCall: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) sink += partialChecksumL3(full, fullView, full.length);
        },
      },
      {
        group: GROUP, name: 'complete a partial TCP checksum, 1514-byte frame', opsPerCall: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) {
            partial.set(pristinePartial);
            completeL4Checksum(partial, partialView, 14);
          }
          sink += partial[50]!;
        },
      },
      {
        group: GROUP, name: `cut a 64 KiB TCP super-frame (${segments} segments), per segment`, opsPerCall: segments,
        fn: () => {
          let index = 0;
          for (let at = headerEnd; at < superFrame.length; at += mss, index++) {
            const payload = Math.min(mss, superFrame.length - at);
            sink += writeTcpSegment(superFrame, superView, l3, at, payload, index, at + payload >= superFrame.length, segment, segmentView, l3);
          }
        },
      },
      {
        group: GROUP, name: 'PcapWorker per frame, DR, 72-byte frame (fake binding, no syscalls)', opsPerCall: BATCH,
        fn: () => {
          session.queue.push(...smallBatch);
          session.read_callback!();
        },
      },
      {
        group: GROUP, name: 'PcapWorker per frame, DR, 1514-byte frame (fake binding, no syscalls)', opsPerCall: BATCH,
        fn: () => {
          session.queue.push(...bigBatch);
          session.read_callback!();
        },
      },
    ], opts);
  } finally {
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.postMessage({ type: 'stop' });
    await exited;
    rmSync(dir, { recursive: true, force: true });
    if (sink === 0.5) console.log(sink);
  }
}

function waitFor(w: { on(e: 'message', l: (m: FromWorker) => void): unknown; off(e: 'message', l: (m: FromWorker) => void): unknown }, type: FromWorker['type']): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: FromWorker): void => {
      if (m.type !== type) return;
      w.off('message', on);
      resolve();
    };
    w.on('message', on);
  });
}
