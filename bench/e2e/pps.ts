// Packet-rate cases: UDP frames of one size from the generator (bench/e2e/pktgen.ts, pinned to
// CPU 0, 1024 source ports) through the director, counted at the real servers' veths.
//
//   kernel ip_forward   the director's kernel routes 10.201.9.0/24 to sink 1 (no uvsd running)
//   uvs DR …            uvsd in the director, UDP service VIP:9 rr with the two sinks as -g dests
//
// Offered = what the generator's sendmmsg calls took; forwarded = frames counted at the sinks per
// second of generator time. Every row's ratio is to the kernel row of the same frame size and run.
// Adding a mode or backend is one line in CASES.
//   uvs NAT / TUN …     the same service with -m / -i destinations (TUN: IP-in-IP to the sinks)
import { readFileSync } from 'node:fs';
import type { BenchRow } from '../lib';
import { ADDR, BenchLab, canPin, PKTGEN, sleep, threadCpu, UVSADM, UVSD } from './lab';
import type { GenResult, PktgenJob } from './pktgen';
import { applyRatios, median, sampledRow, type Progress, type Step } from './progress';
import { spawnIn } from '../../test/netns/native-lab';
import { request } from '../../src/control/client';
import type { WorkerReport } from '../../src/dataplane/dataplane';

export interface PpsCase {
  name: string;
  /** null: the kernel forwards (baseline); otherwise uvsd with these data-plane options. */
  uvs: null | { io: 'ring' | 'pcap'; workers: number; forward: '-g' | '-m' | '-i' };
  /**
   * Where the work may go, best first guess first. With more than one, each is tried for a short
   * run at the first frame size and the fastest is kept for the case (the note says which).
   */
  placements: Placement[];
}

export interface Placement {
  /** uvsd's CPUs (taskset list); unused for the kernel case. */
  cpus: string;
  /** RPS mask of the director's front veth (hex; 0 = receive work stays on the sending CPU). */
  rps: string;
}

// The generator always runs on CPU 0. On a 2-core machine the choices are where the director's
// receive work runs (RPS on its front veth: CPU 1, or inline in the generator's send on CPU 0) and,
// for uvsd, which CPU its threads share with it.
const KERNEL_PLACEMENTS: Placement[] = [{ cpus: '1', rps: '2' }, { cpus: '1', rps: '0' }];
const UVS1_PLACEMENTS: Placement[] = [{ cpus: '1', rps: '0' }, { cpus: '1', rps: '2' }, { cpus: '0', rps: '2' }];
const UVS2_PLACEMENTS: Placement[] = [{ cpus: '0-1', rps: '0' }, { cpus: '0-1', rps: '2' }];

export const CASES: PpsCase[] = [
  { name: 'kernel ip_forward', uvs: null, placements: KERNEL_PLACEMENTS },
  { name: 'uvs DR ring, 1 worker', uvs: { io: 'ring', workers: 1, forward: '-g' }, placements: UVS1_PLACEMENTS },
  { name: 'uvs DR ring, 2 workers', uvs: { io: 'ring', workers: 2, forward: '-g' }, placements: UVS2_PLACEMENTS },
  { name: 'uvs DR pcap', uvs: { io: 'pcap', workers: 1, forward: '-g' }, placements: UVS1_PLACEMENTS },
  // NAT rewrites the destination (and checksums) and tracks a connection per flow; TUN prepends an
  // outer IPv4 header (IP-in-IP) to the sinks' addresses. Both are one-way here: the sinks drop.
  { name: 'uvs NAT ring, 1 worker', uvs: { io: 'ring', workers: 1, forward: '-m' }, placements: UVS1_PLACEMENTS },
  { name: 'uvs TUN ring, 1 worker', uvs: { io: 'ring', workers: 1, forward: '-i' }, placements: UVS1_PLACEMENTS },
];
const PROBE_MS = 1000;

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
      if (size === FRAME_SIZES[0] && c.placements.length > 1) steps.push({ label: `pps ${c.name}: choosing CPU placement`, seconds: c.placements.length * (PROBE_MS / 1000 + 0.5) + (c.uvs ? 3 : 0) });
      for (let r = 1; r <= o.runs; r++) steps.push({ label: `pps ${size}B ${c.name} (run ${r}/${o.runs})`, seconds: o.durationMs / 1000 + 0.7 });
    }
  }
  return steps;
}

// Pinned, and at nice -20: the machine may be shared, and the kernel's forwarding runs in softirq
// context, ahead of every user process; the userspace forwarder and the generator get the best a
// user process can have without a real-time class (which could starve ksoftirqd).
function pinned(cpus: string, argv: string[]): string[] {
  return ['nice', '-n', '-20', ...(canPin() ? ['taskset', '-c', cpus] : []), ...argv];
}

export interface Uvsd {
  pid: number;
  log: { text: string };
  socket: string;
  stop(): Promise<void>;
}

/** The data plane's per-worker figures, summed over the workers (the 'workers' control request). */
export async function workerTotals(u: Uvsd): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  const res = await request(u.socket, { type: 'workers' }, 5000);
  if (!res.ok || res.result.kind !== 'workers') return totals;
  const add = (k: string, v: number): void => void totals.set(k, (totals.get(k) ?? 0) + v);
  for (const w of res.result.workers as WorkerReport[]) {
    for (const [k, v] of Object.entries(w.stats)) add(k, v);
    for (const [k, v] of Object.entries(w.drops)) add(`drop:${k}`, v);
  }
  return totals;
}

/** What the workers did between two readings, in words: frames per batch, ns per frame per stage, drops. */
export function explainWorkers(a: Map<string, number>, b: Map<string, number>): string {
  const d = (k: string): number => (b.get(k) ?? 0) - (a.get(k) ?? 0);
  const frames = d('rx_frames');
  if (frames <= 0) return 'workers saw no frames';
  const parts = [
    `${(frames / Math.max(1, d('rx_batches'))).toFixed(1)} frames/batch`,
    `process ${(d('process_ns') / frames).toFixed(0)} ns/frame`,
    `send ${(d('send_ns') / frames).toFixed(0)} ns/frame`,
  ];
  if (d('ring_drops') > 0) parts.push(`ring drops ${d('ring_drops')}`);
  if (d('tx_dropped') > 0) parts.push(`tx refused ${d('tx_dropped')}`);
  for (const k of b.keys()) if (k.startsWith('drop:') && d(k) > 0) parts.push(`${k.slice(5)} ${d(k)}`);
  return parts.join(', ');
}

export function uvsadm(lab: BenchLab, args: string[]): string {
  return lab.exec(lab.ns.d, ['env', `UVS_SOCKET=/tmp/uvs-bench-${lab.lab.suffix}.sock`, process.execPath, UVSADM, ...args], 20_000);
}

/** Starts uvsd in the director and waits until it answers and its data plane is up. */
export async function startUvsd(lab: BenchLab, argv: string[], cpus: string): Promise<Uvsd> {
  const log = { text: '' };
  const socket = `/tmp/uvs-bench-${lab.lab.suffix}.sock`;
  // UVS_BENCH_UVSD_NODE_ARGS: extra node flags for uvsd, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  // (one profile per thread, workers included, written when uvsd exits).
  const nodeArgs = (process.env['UVS_BENCH_UVSD_NODE_ARGS'] ?? '').split(/\s+/).filter(Boolean);
  const p = lab.start(lab.ns.d, pinned(cpus, [process.execPath, ...nodeArgs, UVSD, '-n', '-l', ...(argv.includes('-f') ? [] : ['--no-config']), '--socket', socket, ...argv]), log);
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
  return { pid: p.pid!, log, socket, stop: () => lab.stop(p) };
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
    let place = c.placements[0]!;
    let probeNote = '';
    const applyPlacement = (p: Placement): void => {
      lab.setRps(lab.ns.d, lab.dev.d0, p.rps);
      if (uvsd && canPin()) lab.exec(lab.ns.d, ['taskset', '-a', '-p', '-c', p.cpus, String(uvsd.pid)]);
    };
    try {
      if (c.uvs) {
        uvsd = await startUvsd(lab, ['--io', c.uvs.io, '--workers', String(c.uvs.workers)], place.cpus);
        uvsadm(lab, ['-A', '-u', `${ADDR.vip}:${PORT}`, '-s', 'rr']);
        for (const sink of ADDR.sink) uvsadm(lab, ['-a', '-u', `${ADDR.vip}:${PORT}`, '-r', sink, c.uvs.forward]);
        await sleep(300); // next hops resolved (they are permanent neighbours), filters attached
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
        if (size === FRAME_SIZES[0] && c.placements.length > 1) {
          progress.begin(`pps ${c.name}: choosing CPU placement`);
          let best = -1;
          const tried: string[] = [];
          for (const p of c.placements) {
            applyPlacement(p);
            const before = lab.sinkPackets();
            const g = await generate(lab, { ...job, durationMs: PROBE_MS });
            await sleep(100);
            const rate = (lab.sinkPackets() - before) / g.elapsed;
            tried.push(`${placementText(c, p)} ${fmtPps(rate)}`);
            if (rate > best) {
              best = rate;
              place = p;
            }
          }
          probeNote = `placement chosen from ${size}B probes of ${PROBE_MS / 1000} s: ${tried.join(', ')}`;
        }
        applyPlacement(place);
        const fwd: number[] = [];
        const offered: number[] = [];
        const cpu: number[] = [];
        let drops = 0;
        const explain: string[] = [];
        for (let r = 1; r <= o.runs; r++) {
          progress.begin(`pps ${size}B ${c.name} (run ${r}/${o.runs})`);
          const before = lab.sinkPackets();
          const sn0 = softnetDrops();
          const cpu0 = uvsd ? threadCpu(uvsd.pid) : null;
          const w0 = uvsd ? await workerTotals(uvsd) : null;
          const g = await generate(lab, job);
          await sleep(100); // the last batches drain
          const cpu1 = uvsd ? threadCpu(uvsd.pid) : null;
          if (uvsd && w0) explain.push(explainWorkers(w0, await workerTotals(uvsd)));
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
        notes.push(placementText(c, place));
        if (probeNote) notes.push(probeNote);
        if (explain.length) notes.push(`workers (last run): ${explain[explain.length - 1]}`);
        const row = sampledRow(ppsGroup(size), c.name, 'pps', fwd, notes.join('; '));
        if (c.uvs && c.uvs.io === 'ring' && c.uvs.workers === 1 && c.uvs.forward === '-g') row.target = '>= 0.85x kernel';
        if (c.uvs && c.uvs.io === 'pcap') row.target = '<= ring / 3';
        rows.push(row);
      }
    } catch (err) {
      progress.log(`bench: case "${c.name}" failed: ${(err as Error).message.split('\n')[0]}`);
      for (const size of FRAME_SIZES) {
        if (rows.some((r) => r.group === ppsGroup(size) && r.name === c.name)) continue; // measured before the failure
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

function placementText(c: PpsCase, p: Placement): string {
  const rx = p.rps === '0' ? 'director receive inline on the generator CPU 0' : `director receive RPS mask ${p.rps}`;
  return c.uvs ? `uvsd on CPU ${p.cpus}, ${rx}` : rx;
}

export function fmtPps(v: number): string {
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)} Mpps` : `${(v / 1e3).toFixed(0)} kpps`;
}
