// Overload without livelock (issue 12): a worker fed frames faster than it can forward still takes
// its turns on the event loop — it applies a new snapshot (uvsadm -a returns only once every worker
// acknowledged it, and the new real server then gets traffic), and uvsd answers `uvsadm -L -n`.
//
// Lab: a generator namespace floods the VIP with 64-byte UDP frames from 1024 flows
// (bench/e2e/pktgen.js, bounded in time) to a director running uvsd with one worker, pinned to the
// generator's CPU, so the worker gets at most part of one CPU against a generator that has the rest:
// past its capacity (the test checks the workers' figures show it). The real servers are "sinks":
// addresses with permanent neighbour entries to MACs nobody has behind one veth, whose kernel drops
// the frames at once. Needs root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runUvsadm } from '../../src/control/uvsadm-main';
import { request } from '../../src/control/client';
import type { WorkerReport } from '../../src/dataplane/dataplane';
import { nativeAddonPath } from '../../src/native/addon';
import { systemResolver } from '../../src/config/ipvsadm-addr';
import { Lab, runSuffix, sh, spawnIn } from './native-lab';
import { UvsdProcess } from './uvsd-process';
import type { GenResult, PktgenJob } from '../../bench/e2e/pktgen';

const PKTGEN = join(__dirname, '..', '..', 'bench', 'e2e', 'pktgen.js');

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, AF_PACKET)';
  if (!existsSync(nativeAddonPath())) return `native addon not built at ${nativeAddonPath()}`;
  try {
    sh('taskset', ['-c', '0', 'true']);
  } catch {
    return 'needs taskset (the worker is pinned to the generator CPU to be sure it is overloaded)';
  }
  return false;
}
const skip = skipReason();

const VIP = '10.205.0.100';
const SINKS = ['10.205.1.91', '10.205.1.92', '10.205.1.93'];
const SINK_MACS = ['02:00:00:05:01:91', '02:00:00:05:01:92', '02:00:00:05:01:93'];

describe('overload: a flooded worker still applies snapshots and uvsd still answers', { skip }, () => {
  const lab = new Lab(runSuffix());
  let nsG = '';
  let nsD = '';
  let uvsd: UvsdProcess;
  const dev = { g: '', d0: '', d1: '', r: '' };
  const socket = `/tmp/uvs-overload-${lab.suffix}.sock`;

  before(() => {
    // uvsd listens on `socket`; UvsdProcess's own uvsadm runs (spawned) find it through this.
    process.env['UVS_SOCKET'] = socket;
    nsG = lab.ns('Og');
    nsD = lab.ns('Od');
    const nsR = lab.ns('Or');
    dev.g = lab.dev('g');
    dev.d0 = lab.dev('d0');
    dev.d1 = lab.dev('d1');
    dev.r = lab.dev('r');
    lab.veth(nsG, dev.g, nsD, dev.d0);
    lab.veth(nsD, dev.d1, nsR, dev.r);
    lab.addr(nsG, dev.g, '10.205.0.10/24');
    lab.addr(nsD, dev.d0, '10.205.0.1/24');
    lab.addr(nsD, dev.d0, `${VIP}/32`);
    lab.addr(nsD, dev.d1, '10.205.1.1/24');
    lab.addr(nsR, dev.r, '10.205.1.2/24');
    SINKS.forEach((ip, i) => lab.neigh(nsD, dev.d1, ip, SINK_MACS[i]!));
    lab.neigh(nsG, dev.g, '10.205.0.1', lab.mac(nsD, dev.d0));
    lab.neigh(nsD, dev.d0, '10.205.0.10', lab.mac(nsG, dev.g));
    uvsd = new UvsdProcess(nsD);
  });

  after(async () => {
    await uvsd?.stop('SIGKILL');
    lab.destroy();
  });

  async function adm(...args: string[]): Promise<{ status: number; out: string; ms: number }> {
    let out = '';
    const t0 = performance.now();
    const status = await runUvsadm(args, {
      program: 'uvsadm', stdout: (t) => (out += t), stderr: (t) => (out += t),
      readStdin: () => Promise.resolve(''), env: { UVS_SOCKET: socket }, resolver: systemResolver(),
    });
    return { status, out, ms: performance.now() - t0 };
  }

  it('uvsadm -L -n answers and uvsadm -a takes effect while the worker is flooded past capacity', async () => {
    await uvsd.start(['--workers', '1', '--iface', dev.d0, '--iface', dev.d1, '--socket', socket]);
    uvsd.uvsadm('-A', '-u', `${VIP}:9`, '-s', 'rr');
    for (const s of SINKS.slice(0, 2)) uvsd.uvsadm('-a', '-u', `${VIP}:9`, '-r', s, '-g');
    // Every thread of uvsd on CPU 0, where the generator runs too.
    const pid = sh('ip', ['netns', 'pids', nsD]).split(/\s+/).filter(Boolean);
    for (const p of pid) sh('taskset', ['-a', '-p', '-c', '0', p]);

    const job: PktgenJob = {
      iface: dev.g, dstMac: lab.mac(nsD, dev.d0), srcMac: lab.mac(nsG, dev.g), srcIp: '10.205.0.10', dstIp: VIP, dport: 9,
      sport: 10000, flows: 1024, frameSize: 64, batch: 64, durationMs: 10_000,
    };
    const gen = spawnIn<GenResult>(nsG, ['taskset', '-c', '0', process.execPath, PKTGEN, JSON.stringify(job)], 40_000);
    await gen.ready;
    await new Promise((r) => setTimeout(r, 1500)); // the flood is on

    const before = (await request(socket, { type: 'workers' }, 5000));
    const lists: number[] = [];
    for (let i = 0; i < 5; i++) {
      const l = await adm('-L', '-n');
      assert.equal(l.status, 0, l.out);
      assert.match(l.out, new RegExp(`UDP  ${VIP.replace(/\./g, '\\.')}:9 rr`));
      lists.push(l.ms);
    }
    // A new snapshot: uvsadm -a returns once every worker acknowledged it (DataPlane.apply waits for
    // 'applied' from each, and fails after 5 s): a livelocked worker makes this fail.
    const add = await adm('-a', '-u', `${VIP}:9`, '-r', SINKS[2]!, '-g');
    assert.equal(add.status, 0, `uvsadm -a during the flood: ${add.out}\nuvsd log:\n${uvsd.log}`);
    // The flood's flows have their connections (and keep their real servers): new flows, from a
    // second generator, are scheduled by the new snapshot, round robin over all three.
    const fresh = spawnIn<GenResult>(nsG, ['taskset', '-c', '0', process.execPath, PKTGEN,
      JSON.stringify({ ...job, sport: 40000, flows: 64, durationMs: 1000 })], 30_000);
    const freshResult = await fresh.result;
    // The fresh flows' frames queue behind the flood's in the ring: on a slow, shared machine the
    // worker may take seconds to reach them (CI once saw none 300 ms after the second generator
    // ended). Poll until the new real server has packets; the flood ends by itself, after which the
    // ring drains, so the deadline lies well past it.
    const inPktsOf = (out: string): number => {
      const line = out.split('\n').find((l) => l.includes(`${SINKS[2]}:9`));
      assert.ok(line, `the new real server is listed:\n${out}`);
      return Number(line.trim().split(/\s+/)[2]);
    };
    let stats = await adm('-L', '-n', '--stats');
    const deadline = performance.now() + 20_000;
    while (inPktsOf(stats.out) === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      stats = await adm('-L', '-n', '--stats');
    }
    const after1 = await request(socket, { type: 'workers' }, 5000);
    const genResult = await gen.result;
    assert.ok(inPktsOf(stats.out) > 0,
      `the worker forwards new flows to the real server added during the flood:\n${stats.out}\nsecond generator: ${JSON.stringify(freshResult)}\nworkers: ${JSON.stringify(after1)}`);

    // Evidence that the worker was past its capacity: turns cut short by the drain budget, or ring drops.
    assert.ok(before.ok && after1.ok && after1.result.kind === 'workers');
    const w = (after1.result as { workers: WorkerReport[] }).workers[0]!;
    const sorted = [...lists].sort((a, b) => a - b);
    console.log(`# flood: offered ${Math.round(genResult.pps)} pps; worker rx ${w.stats['rx_frames']} frames, ` +
      `budget-limited turns ${w.stats['yields']}, ring drops ${w.stats['ring_drops']}; ` +
      `uvsadm -L -n ${sorted.map((x) => x.toFixed(0)).join(', ')} ms; uvsadm -a ${add.ms.toFixed(0)} ms`);
    assert.ok((w.stats['yields'] ?? 0) > 0 || (w.stats['ring_drops'] ?? 0) > 0, 'the worker was flooded past capacity');
    // Generous bound (issue 12's target is 200 ms; a shared CI machine can be slow).
    assert.ok(sorted[2]! < 2000, `uvsadm -L -n median ${sorted[2]} ms`);
  });

  it('a capture interface going down and up: the worker receives on it again', async () => {
    // The flood of the first case may still be in the rings: let it go, then measure from here.
    await new Promise((r) => setTimeout(r, 500));
    const burst = async (): Promise<number> => {
      const before = lab.rxPackets(lab.namespaces[2]!, dev.r);
      const job: PktgenJob = {
        iface: dev.g, dstMac: lab.mac(nsD, dev.d0), srcMac: lab.mac(nsG, dev.g), srcIp: '10.205.0.10', dstIp: VIP, dport: 9,
        sport: 50000, flows: 64, frameSize: 64, batch: 64, durationMs: 300,
      };
      await spawnIn<GenResult>(nsG, [process.execPath, PKTGEN, JSON.stringify(job)], 30_000).result;
      await new Promise((r) => setTimeout(r, 300));
      return lab.rxPackets(lab.namespaces[2]!, dev.r) - before;
    };
    assert.ok(await burst() > 0, 'forwarded before');
    // NETDEV_DOWN: packet_notifier sets ENETDOWN on the capture socket (POLLERR, and libuv stops
    // the watcher); NETDEV_UP hooks the socket in again.
    lab.exec(nsD, ['ip', 'link', 'set', dev.d0, 'down']);
    await new Promise((r) => setTimeout(r, 300));
    lab.exec(nsD, ['ip', 'link', 'set', dev.d0, 'up']);
    lab.neigh(nsG, dev.g, '10.205.0.1', lab.mac(nsD, dev.d0));
    await new Promise((r) => setTimeout(r, 1500)); // the veth pair's carrier comes back
    const after = await burst();
    assert.ok(after > 0, `forwarded after the interface came back: ${after}\nuvsd log:\n${uvsd.log}`);
    assert.match(uvsd.log, /is down or gone \(ENETDOWN\); the interface watch follows it/);
  });
});
