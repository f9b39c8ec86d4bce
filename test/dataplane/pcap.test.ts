// The pcap backend without a network: its libpcap filter strings, the CHECKSUM_PARTIAL completion,
// the offload record (fake ethtool), and the PcapWorker driven through a fake binding — frames in,
// injected frames out, sessions reopened when the VIP set changes, closed on stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PacketBuilder } from '../../src/packet/builder';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../../src/packet/tcp';
import { viewOf } from '../../src/packet/layer';
import { ipv4ToInt } from '../../src/packet/addr';
import { checksumVerifies, foldSum, pseudoHeaderSum } from '../../src/packet/checksum';
import { pcapFilter } from '../../src/dataplane/pcap';
import { PcapWorker, pcapSessionsClosing, DISPATCH_BUDGET } from '../../src/dataplane/pcap-loop';
import { partialChecksumL3, completeL4Checksum } from '../../src/packet/checksum';
import { PcapOffloads, PCAP_OFFLOADS } from '../../src/dataplane/pcap-offloads';
import type { FromWorker } from '../../src/dataplane/worker';
import { WorkerStat } from '../../src/dataplane/counters';
import { DropReason } from '../../src/packet/drop';
import { CLIENT_MAC, DIRECTOR_MAC, RS_MAC, VIP, FakeEthtool, FakeSession, pcapWorkerFixture } from './pcap-fakes';
import { memoryLogger } from '../../src/runtime/log';
import { linesLogger } from '../../src/runtime/log';

// ---- filter strings ---------------------------------------------------------------------------

test('pcapFilter: inbound frames to the interface MAC, to a VIP or from a NAT real server', () => {
  assert.equal(
    pcapFilter('02:00:00:00:00:AB', { destinations: [ipv4ToInt(VIP)], sources: [ipv4ToInt('10.78.0.21')] }),
    'inbound and ether dst 02:00:00:00:00:ab and ip and (dst host 10.77.0.100 or src host 10.78.0.21)',
  );
  assert.equal(pcapFilter(DIRECTOR_MAC, { destinations: [], sources: [] }), null, 'nothing to capture: no session');
  assert.throws(() => pcapFilter('02:00:00:00:00', { destinations: [1], sources: [] }), /not a MAC address/);
});

// ---- CHECKSUM_PARTIAL ---------------------------------------------------------------------------

function tcpFrame(vlan = false): Uint8Array {
  return new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC, ...(vlan ? { vlan: { id: 7 } } : {}) })
    .ipv4({ src: '10.77.0.10', dst: VIP, ttl: 64, df: true })
    .tcp({ srcPort: 40000, dstPort: 80, flags: TCP_SYN, seq: 1 })
    .payload('GET / HTTP/1.0\r\n\r\n')
    .build();
}

function udpFrame(checksum?: number): Uint8Array {
  return new PacketBuilder()
    .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
    .ipv4({ src: '10.77.0.10', dst: VIP, ttl: 64 })
    .udp({ srcPort: 40000, dstPort: 53, ...(checksum !== undefined ? { checksum } : {}) })
    .payload('who?!')
    .build();
}

/** Puts the frame in the state a CHECKSUM_PARTIAL skb is captured in: field = folded pseudo sum. */
function makePartial(frame: Uint8Array, l3: number, fieldInL4: number): number {
  const v = viewOf(frame);
  const ihl = (frame[l3]! & 0x0f) * 4;
  const l4Length = v.getUint16(l3 + 2) - ihl;
  const good = v.getUint16(l3 + ihl + fieldInL4);
  v.setUint16(l3 + ihl + fieldInL4, foldSum(pseudoHeaderSum(v.getUint32(l3 + 12), v.getUint32(l3 + 16), frame[l3 + 9]!, l4Length)));
  return good;
}

function l4Verifies(frame: Uint8Array, l3: number): boolean {
  const v = viewOf(frame);
  const ihl = (frame[l3]! & 0x0f) * 4;
  const l4Length = v.getUint16(l3 + 2) - ihl;
  return checksumVerifies(frame, l3 + ihl, l4Length, pseudoHeaderSum(v.getUint32(l3 + 12), v.getUint32(l3 + 16), frame[l3 + 9]!, l4Length));
}

test('partial TCP and UDP checksums are recognised and completed to the value a full computation gives', () => {
  for (const [name, frame, l3, field] of [
    ['tcp', tcpFrame(), 14, 16], ['tcp in a VLAN', tcpFrame(true), 18, 16], ['udp', udpFrame(), 14, 6],
  ] as const) {
    assert.equal(partialChecksumL3(frame, viewOf(frame), frame.length), -1, `${name}: a complete checksum is left alone`);
    const good = makePartial(frame, l3, field);
    assert.equal(l4Verifies(frame, l3), false);
    assert.equal(partialChecksumL3(frame, viewOf(frame), frame.length), l3, name);
    completeL4Checksum(frame, viewOf(frame), l3);
    assert.equal(viewOf(frame).getUint16(l3 + 20 + field), good, name);
    assert.ok(l4Verifies(frame, l3), name);
  }
});

test('partial-checksum detection skips UDP without checksum, fragments, other protocols and short frames', () => {
  const noSum = udpFrame(0);
  assert.equal(partialChecksumL3(noSum, viewOf(noSum), noSum.length), -1);
  const frag = tcpFrame();
  makePartial(frag, 14, 16);
  viewOf(frag).setUint16(14 + 6, 0x2000); // MF
  assert.equal(partialChecksumL3(frag, viewOf(frag), frag.length), -1);
  const icmp = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: '10.77.0.10', dst: VIP })
    .icmp({ type: 8, code: 0 }).build();
  assert.equal(partialChecksumL3(icmp, viewOf(icmp), icmp.length), -1);
  const t = tcpFrame();
  makePartial(t, 14, 16);
  assert.equal(partialChecksumL3(t, viewOf(t), 40), -1, 'cut short: the IP total length does not fit');
});

// ---- offloads -------------------------------------------------------------------------------------

function tempPath(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-pcap-'));
  return { dir, path: join(dir, 'sub', 'pcap-offloads.json') };
}

test('offloads: recorded before the first change, turned off, restored, record removed', () => {
  const { dir, path } = tempPath();
  try {
    const eth = new FakeEthtool();
    eth.state.set('e0/gro', true).set('e0/gso', true).set('e0/tso', false).set('e1/gso', true);
    eth.fixed.add('e1/gso');
    const log = memoryLogger();
    const logs = log.lines;
    const off = new PcapOffloads(eth, path, log, ['gro', 'gso', 'tso']);
    off.disable(['e0', 'e1']);
    assert.deepEqual(eth.calls, ['e0 gro off', 'e0 gso off']);
    assert.ok(logs.some((l) => /cannot turn gso off on e1/.test(l)), logs.join('\n'));
    const record = JSON.parse(readFileSync(path, 'utf8')) as { pid: number; state: Record<string, Record<string, boolean>> };
    assert.equal(record.pid, process.pid);
    assert.deepEqual(record.state['e0'], { gro: true, gso: true, tso: false });
    off.restore();
    assert.deepEqual(eth.calls.slice(2), ['e0 gso on', 'e0 gro on']);
    assert.equal(existsSync(path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('offloads: a record left by a killed run is restored before the new one is taken', () => {
  const { dir, path } = tempPath();
  try {
    const eth = new FakeEthtool();
    // What a killed run left: GRO off on the interface, the record saying it was on.
    eth.state.set('e0/gro', false);
    new PcapOffloads(eth, path, linesLogger([])).disable([]); // creates the directory
    writeFileSync(path, JSON.stringify({ pid: 4242, state: { e0: { gro: true } } }));
    const logs: string[] = [];
    const off = new PcapOffloads(eth, path, linesLogger(logs));
    off.disable(['e0']);
    assert.ok(logs.some((l) => /recorded by uvsd 4242/.test(l)), logs.join('\n'));
    assert.deepEqual(PCAP_OFFLOADS, ['gro'], 'by default only GRO: libpcap sizes its frames by TSO/GSO');
    assert.deepEqual(eth.calls, ['e0 gro on', 'e0 gro off'], 'restored, then taken again');
    off.restore();
    assert.equal(eth.ethtoolGet('e0', 'gro'), true);

    writeFileSync(path, 'not json');
    const logs2: string[] = [];
    new PcapOffloads(eth, path, linesLogger(logs2)).disable(['e0']);
    assert.ok(logs2.some((l) => /ignoring unreadable offload record/.test(l)), logs2.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- PcapWorker over a fake binding ----------------------------------------------------------------

function nextMessage(w: PcapWorker, type: FromWorker['type']): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} message`)), 2000);
    const on = (m: FromWorker): void => {
      if (m.type !== type) return;
      clearTimeout(timer);
      w.off('message', on);
      resolve(m);
    };
    w.on('message', on);
  });
}

test('PcapWorker: DR frames through a fake binding; new VIP set reopens the capture; stop closes and restores', async () => {
  FakeSession.all = [];
  const { dir, path } = tempPath();
  try {
    const eth = new FakeEthtool();
    eth.state.set('e0/gro', true);
    const fixture = pcapWorkerFixture({ ethtool: eth, offloadStatePath: path });
    const { worker: w, counters } = fixture;
    await nextMessage(w, 'ready');
    assert.equal(eth.ethtoolGet('e0', 'gro'), false, 'GRO off once ready');
    assert.equal(FakeSession.all.length, 0, 'no session before there is anything to capture');

    w.postMessage({ type: 'filter', filter: [], hosts: { destinations: [ipv4ToInt(VIP)], sources: [] } });
    const s1 = FakeSession.all[0]!;
    assert.equal(s1.device, 'e0');
    assert.equal(s1.filter, `inbound and ether dst ${DIRECTOR_MAC} and ip and (dst host ${VIP})`);
    assert.equal(s1.timeoutMs, 0, 'immediate mode');
    assert.equal(s1.snapLength, 65535 + 14 + 8, 'a whole 64 KiB super-frame');
    assert.equal(s1.promiscuous, false);
    assert.ok(s1.polling && s1.read_callback);

    const applied = nextMessage(w, 'applied');
    w.postMessage({ type: 'snapshot', ...fixture.snapshot });
    assert.equal((await applied as { generation: number }).generation, 1);

    // A SYN with a partial checksum (the client's veth offloads it), and a frame longer than
    // its IP packet says, cut at the snap length.
    const syn = tcpFrame();
    const goodSum = makePartial(syn, 14, 16);
    const cut = new Uint8Array(70000);
    cut.set(tcpFrame());
    s1.queue.push(syn, cut);
    s1.read_callback();
    assert.equal(s1.injected.length, 1);
    const out = s1.injected[0]!;
    assert.equal(out.length, syn.length);
    assert.deepEqual([...out.subarray(0, 6)], RS_MAC.split(':').map((h) => parseInt(h, 16)), 'to the real server');
    assert.deepEqual([...out.subarray(6, 12)], DIRECTOR_MAC.split(':').map((h) => parseInt(h, 16)));
    assert.equal(out[14 + 8], 63, 'TTL - 1');
    assert.equal(viewOf(out).getUint16(14 + 20 + 16), goodSum, 'checksum completed');
    assert.equal(counters.get(WorkerStat.RX_FRAMES), 2);
    assert.equal(counters.get(WorkerStat.TX_FRAMES), 1);
    assert.equal(counters.drops(DropReason.TRUNCATED_IP), 1);

    // A TSO super-frame (3000 bytes of payload, partial checksum) from the same client: three
    // segments of the MTU less an IPIP header's 20 bytes, each forwarded with complete checksums.
    const superFrame = new PacketBuilder()
      .eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC })
      .ipv4({ src: '10.77.0.10', dst: VIP, ttl: 64, df: true, id: 100 })
      .tcp({ srcPort: 40000, dstPort: 80, flags: TCP_ACK | TCP_PSH | TCP_FIN, seq: 5000 })
      .payload(Buffer.alloc(3000, 'x').toString())
      .build();
    makePartial(superFrame, 14, 16);
    s1.queue.push(superFrame);
    s1.read_callback();
    assert.equal(counters.get(WorkerStat.GSO_FRAMES), 1);
    const segs = s1.injected.slice(1);
    assert.deepEqual(segs.map((f) => f.length), [1494, 1494, 14 + 40 + 120]);
    segs.forEach((f, i) => {
      const v = viewOf(f);
      assert.equal(v.getUint16(14 + 2), f.length - 14, `segment ${i}: IP total length`);
      assert.equal(v.getUint16(14 + 4), 100 + i, `segment ${i}: IP id`);
      assert.equal(f[14 + 8], 63, `segment ${i}: TTL - 1`);
      assert.ok(checksumVerifies(f, 14, 20), `segment ${i}: IP checksum`);
      assert.equal(v.getUint32(34 + 4), 5000 + i * 1440, `segment ${i}: seq`);
      assert.equal(f[34 + 13], i < 2 ? TCP_ACK : TCP_ACK | TCP_PSH | TCP_FIN, `segment ${i}: flags`);
      assert.ok(l4Verifies(f, 14), `segment ${i}: TCP checksum`);
      assert.deepEqual([...f.subarray(0, 6)], RS_MAC.split(':').map((h) => parseInt(h, 16)));
    });
    const udpSuper = new PacketBuilder().eth({ src: CLIENT_MAC, dst: DIRECTOR_MAC }).ipv4({ src: '10.77.0.10', dst: VIP })
      .udp({ srcPort: 40000, dstPort: 80 }).payload(Buffer.alloc(3000, 'u').toString()).build();
    s1.queue.push(udpSuper);
    s1.read_callback();
    assert.equal(counters.drops(DropReason.GSO_UNSUPPORTED), 1, 'a UDP super-frame cannot be cut here');
    s1.injected.length = 1;

    // Overload: one dispatch forwards DISPATCH_BUDGET frames and sheds the rest, so the main
    // thread gets its turn back.
    const before = s1.injected.length;
    const drops = counters.get(WorkerStat.RING_DROPS);
    for (let i = 0; i < DISPATCH_BUDGET + 5; i++) s1.queue.push(tcpFrame());
    s1.read_callback();
    assert.equal(s1.injected.length - before, DISPATCH_BUDGET);
    assert.equal(counters.get(WorkerStat.RING_DROPS) - drops, 5);
    s1.read_callback();
    s1.injected.length = 1;

    // A new VIP set: a new session first, then the old one drained (its queued frame forwarded)
    // and closed for good.
    s1.queue.push(tcpFrame());
    w.postMessage({ type: 'filter', filter: [], hosts: { destinations: [ipv4ToInt(VIP), ipv4ToInt('10.77.0.101')], sources: [] } });
    const s2 = FakeSession.all[1]!;
    assert.match(s2.filter, /dst host 10\.77\.0\.100 or dst host 10\.77\.0\.101/);
    assert.equal(s1.injected.length, 1, 'the drained frame goes out through the current session');
    assert.equal(s2.injected.length, 1);
    assert.equal(s1.closed, false, 'libpcap frees the old handle only when a packet arrives');
    assert.equal(pcapSessionsClosing(), 1, 'kept reachable until then');
    s1.queue.push(tcpFrame());
    s1.read_callback();
    assert.ok(s1.closed, 'freed by the dispatch that returns -2');
    assert.equal(s1.injected.length + s2.injected.length, 2, 'a frame seen by the closing session is not forwarded');
    assert.equal(pcapSessionsClosing(), 0);
    // The same set again changes nothing.
    w.postMessage({ type: 'filter', filter: [], hosts: { destinations: [ipv4ToInt(VIP), ipv4ToInt('10.77.0.101')], sources: [] } });
    assert.equal(FakeSession.all.length, 2);

    const exited = new Promise<number>((resolve) => w.once('exit', resolve));
    w.postMessage({ type: 'stop' });
    assert.equal(await exited, 0);
    assert.ok(s2.breakLoop && !s2.closed, 'stopped: closing, freed on its next readable event');
    s2.queue.push(tcpFrame());
    s2.read_callback!();
    assert.ok(s2.closed);
    assert.equal(pcapSessionsClosing(), 0);
    assert.equal(eth.ethtoolGet('e0', 'gro'), true, 'GRO back on');
    assert.equal(existsSync(path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
