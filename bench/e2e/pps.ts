// Packet-rate cases: UDP frames of one size from the generator (bench/e2e/pktgen.ts, pinned to
// CPU 0, 1024 source ports) through the director, counted at the real servers' veths.
//
//   kernel ip_forward   the director's kernel routes 10.201.9.0/24 to sink 1 (no uvsd running)
//   uvs DR …            uvsd in the director, UDP service VIP:9 rr with the two sinks as -g dests
//
// Offered = what the generator's sendmmsg calls took; forwarded = frames counted at the sinks per
// second of generator time. Every row's ratio is to the kernel row of the same frame size and run.
// Adding a mode or backend is one line in CASES.
import { readFileSync } from 'node:fs';
import type { BenchRow } from '../lib';
import { ADDR, BenchLab, canPin, PKTGEN, sleep, threadCpu, UVSADM, UVSD } from './lab';
import type { GenResult, PktgenJob } from './pktgen';
import { applyRatios, median, sampledRow, type Progress, type Step } from './progress';
import { spawnIn } from '../../test/netns/native-lab';

export interface PpsCase {
  name: string;
  /** null: the kernel forwards (baseline); otherwise uvsd with these data-plane options. */
  uvs: null | { io: 'ring' | 'pcap'; workers: number; forward: '-g' | '-m' | '-i' };
  /** CPUs the director's side may use: uvsd's taskset list, or where RPS steers receive work. */
  cpus: string;
}

// Where the work goes on this 2-core machine (measured, see the README of bench/e2e): the
// generator owns CPU 0. The kernel case does best with RPS steering the director's receive work to
// CPU 1. uvsd with one worker does best pinned to CPU 1 without RPS: the tap copy into its ring then
// stays in the generator's send path on CPU 0 and CPU 1 is left to the worker and the transmit.
export const CASES: PpsCase[] = [
  { name: 'kernel ip_forward', uvs: null, cpus: '1' },
  { name: 'uvs DR ring, 1 worker', uvs: { io: 'ring', workers: 1, forward: '-g' }, cpus: '1' },
  { name: 'uvs DR ring, 2 workers', uvs: { io: 'ring', workers: 2, forward: '-g' }, cpus: '0-1' },
  { name: 'uvs DR pcap', uvs: { io: 'pcap', workers: 1, forward: '-g' }, cpus: '1' },
  // NAT and TUN: { name: 'uvs NAT ring, 1 worker', uvs: { io: 'ring', workers: 1, forward: '-m' }, cpus: '1' },
];

export const FRAME_SIZES = [64, 1400];
const PORT = 9;

export interface PpsOptions {
  quick: boolean;
  runs: number;
  durationMs: number;
}

export function ppsGroup(size: number): string {
  return `UDP ${size}-byte frames, packets/s forwarded`;
}

export function ppsPlan(o: PpsOptions): Step[] {
  const steps: Step[] = [];
  for (const c of CASES) {
    for (const size of FRAME_SIZES) {
      for (let r = 1; r <= o.runs; r++) steps.push({ label: `pps ${size}B ${c.name} (run ${r}/${o.runs})`, seconds: o.durationMs / 1000 + 1.5 + (r === 1 && size === FRAME_SIZES[0] && c.uvs ? 3 : 0) });
    }
  }
  return steps;
}

function pinned(cpus: string, argv: string[]): string[] {
  return canPin() ? ['taskset', '-c', cpus, ...argv] : argv;
}

interface Uvsd {
  pid: number;
  log: { text: string };
  stop(): Promise<void>;
}

export function uvsadm(lab: BenchLab, args: string[]): string {
  return lab.exec(lab.ns.d, [process.execPath, UVSADM, ...args], 20_000);
}

/** Starts uvsd in the director and waits until it answers and its data plane is up. */
export async function startUvsd(lab: BenchLab, argv: string[], cpus: string): Promise<Uvsd> {
  const log = { text: '' };
  const p = lab.start(lab.ns.d, pinned(cpus, [process.execPath, UVSD, '-n', '-l', ...argv]), log);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`uvsd exited (${p.exitCode}):\n${log.text.slice(-3000)}`);
    if (/data plane/.test(log.text)) {
      try {
        uvsadm(lab, ['-L', '-n']);
        break;
      } catch {
        /* not listening yet */
      }
    }
    if (Date.now() > deadline) throw new Error(`uvsd did not come up within 20 s:\n${log.text.slice(-3000)}`);
    await sleep(100);
  }
  return { pid: p.pid!, log, stop: () => lab.stop(p) };
}

async function generate(lab: BenchLab, job: PktgenJob): Promise<GenResult> {
  const argv = pinned('0', [process.execPath, PKTGEN, JSON.stringify(job)]);
  return spawnIn<GenResult>(lab.ns.c, argv, job.durationMs + 30_000).result;
}

function softnetDrops(): number {
  // /proc/net/softnet_stat: one line per CPU, the second column counts backlog (netdev_max_backlog) drops.
  const text = readFileSync('/proc/net/softnet_stat', 'utf8');
  return text.trim().split('\n').reduce((s, l) => s + Number.parseInt(l.trim().split(/\s+/)[1] ?? '0', 16), 0);
}

export async function runPps(lab: BenchLab, o: PpsOptions, progress: Progress): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const c of CASES) {
    let uvsd: Uvsd | null = null;
    try {
      if (c.uvs) {
        lab.setRps(lab.ns.d, lab.dev.d0, '0');
        uvsd = await startUvsd(lab, ['--io', c.uvs.io, '--workers', String(c.uvs.workers)], c.cpus);
        uvsadm(lab, ['-A', '-u', `${ADDR.vip}:${PORT}`, '-s', 'rr']);
        for (const sink of ADDR.sink) uvsadm(lab, ['-a', '-u', `${ADDR.vip}:${PORT}`, '-r', sink, c.uvs.forward]);
        await sleep(300); // next hops resolved (they are permanent neighbours), filters attached
      } else {
        // The kernel's best setting: receive work of the director's front veth on CPU 1, away from
        // the generator's CPU 0 (RPS). Without it both would share CPU 0.
        lab.setRps(lab.ns.d, lab.dev.d0, c.cpus === '1' ? '2' : '3');
      }
      for (const size of FRAME_SIZES) {
        const job: PktgenJob = {
          iface: lab.dev.c0, dstMac: lab.mac.d0, srcMac: lab.mac.c0, srcIp: ADDR.client,
          dstIp: c.uvs ? ADDR.vip : ADDR.fwdDst, dport: PORT, sport: 10000, flows: 1024,
          frameSize: size, batch: 64, durationMs: o.durationMs,
        };
        // Warm-up: flows scheduled, caches and neighbour state hot; also proves the path works.
        const before0 = lab.sinkPackets();
        await generate(lab, { ...job, durationMs: 300 });
        await sleep(100);
        if (lab.sinkPackets() === before0) {
          throw new Error(`nothing reached the sinks in the warm-up${uvsd ? `; uvsd log:\n${uvsd.log.text.slice(-2000)}` : ''}`);
        }
        const fwd: number[] = [];
        const offered: number[] = [];
        const cpu: number[] = [];
        let drops = 0;
        for (let r = 1; r <= o.runs; r++) {
          progress.begin(`pps ${size}B ${c.name} (run ${r}/${o.runs})`);
          const before = lab.sinkPackets();
          const sn0 = softnetDrops();
          const cpu0 = uvsd ? threadCpu(uvsd.pid) : null;
          const g = await generate(lab, job);
          await sleep(100); // the last batches drain
          const cpu1 = uvsd ? threadCpu(uvsd.pid) : null;
          fwd.push((lab.sinkPackets() - before) / g.elapsed);
          offered.push(g.pps);
          drops += softnetDrops() - sn0;
          if (cpu0 && cpu1) {
            // The busiest uvsd thread's share of one CPU over the run (a worker at 100% is the bottleneck).
            let busiest = 0;
            for (const [k, v] of cpu1) busiest = Math.max(busiest, (v - (cpu0.get(k) ?? v)) / g.elapsed);
            cpu.push(busiest);
          }
        }
        const notes = [`offered ${fmtPps(median(offered))} (${fmtPps(Math.min(...offered))}–${fmtPps(Math.max(...offered))})`];
        if (cpu.length) notes.push(`busiest uvsd thread ${Math.round(median(cpu) * 100)}% CPU`);
        if (drops > 0) notes.push(`backlog drops ${fmtPps(drops / o.runs / (o.durationMs / 1000))}`);
        notes.push(c.uvs ? `uvsd on CPU ${c.cpus}, no RPS` : `RPS to CPU ${c.cpus}`);
        const row = sampledRow(ppsGroup(size), c.name, 'pps', fwd, notes.join('; '));
        if (c.uvs && c.uvs.io === 'ring' && c.uvs.workers === 1 && c.uvs.forward === '-g') row.target = '>= 0.85x kernel';
        if (c.uvs && c.uvs.io === 'pcap') row.target = '<= ring / 3';
        rows.push(row);
      }
    } catch (err) {
      progress.log(`bench: case "${c.name}" failed: ${(err as Error).message.split('\n')[0]}`);
      for (const size of FRAME_SIZES) {
        rows.push({ group: ppsGroup(size), name: c.name, value: NaN, unit: 'pps', note: `failed: ${(err as Error).message.slice(0, 300)}` });
      }
    } finally {
      if (uvsd) await uvsd.stop();
    }
  }
  for (const size of FRAME_SIZES) {
    const g = ppsGroup(size);
    applyRatios(rows, g, CASES[0]!.name);
    const ring1 = rows.find((r) => r.group === g && r.name === 'uvs DR ring, 1 worker');
    if (ring1?.ratio !== undefined && Number.isFinite(ring1.ratio)) ring1.met = ring1.ratio >= 0.85;
    const pcap = rows.find((r) => r.group === g && r.name === 'uvs DR pcap');
    if (pcap && ring1 && Number.isFinite(pcap.value) && Number.isFinite(ring1.value)) pcap.met = ring1.value >= 3 * pcap.value;
  }
  return rows;
}

export function fmtPps(v: number): string {
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)} Mpps` : `${(v / 1e3).toFixed(0)} kpps`;
}
