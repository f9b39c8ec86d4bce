// Loss right after a fresh start: what a director that starts under load (uvsd started or
// restarted, a VRRP backup taking over, a worker restarted) does with the first traffic its
// workers ever see. uvsd starts in the director (one worker, pinned to CPU 1, the director's
// receive inline on the generator's CPU 0: the packet-rate cases' usual best placement), its UDP
// service VIP:9 rr over the two sinks (-g) is added, and the generator (built before uvsd starts,
// pinned to CPU 0) sends 64-byte frames of 1024 flows paced at START_RATE for START_MS at once;
// the sinks count what arrived. The packet-rate cases run a warm-up burst before they measure, so
// they never see this. Each backend twice: with the workers' JIT warm-up (the default,
// src/dataplane/warmup.ts) and without it (UVS_WORKER_WARMUP=0: how a worker started before).
import type { BenchRow } from '../lib';
import { ADDR, type BenchLab, canPin, sleep } from './lab';
import type { PktgenJob } from './pktgen';
import { fmtLoss, NICE, startUvsd, uvsadm, workerTotals, type Uvsd } from './pps';
import { median, type Progress, type Step } from './progress';
import { measureStep, SteppedGen } from './load';

export const START_RATE = 100_000;
const START_MS = 2000;
const PORT = 9;
export const START_GROUP = `UDP 64-byte frames at ${START_RATE / 1000} kpps from the moment a fresh uvsd's service is in: lost in the first ${START_MS / 1000} s`;
/** Our own bar, the stepped load's: at most 0.1% lost. */
const TARGET_PCT = 0.1;

interface StartCase {
  name: string;
  io: 'ring' | 'xdp';
  warmup: boolean;
}

const CASES: StartCase[] = [
  { name: 'uvs DR ring, 1 worker', io: 'ring', warmup: true },
  { name: 'uvs DR ring, 1 worker, no warm-up (UVS_WORKER_WARMUP=0: before)', io: 'ring', warmup: false },
  { name: 'uvs DR xdp, 1 worker', io: 'xdp', warmup: true },
  { name: 'uvs DR xdp, 1 worker, no warm-up (UVS_WORKER_WARMUP=0: before)', io: 'xdp', warmup: false },
];

function startCases(cases?: RegExp): StartCase[] {
  return CASES.filter((c) => !cases || cases.test(c.name));
}

function runsOf(quick: boolean): number {
  return quick ? 1 : 3;
}

export function startPlan(quick: boolean, cases?: RegExp): Step[] {
  return startCases(cases).map((c) => ({ label: `start: ${c.name}`, seconds: runsOf(quick) * (START_MS / 1000 + 6) }));
}

/** One start: frames sent, frames that reached the sinks, the worker's ring drops. */
async function once(lab: BenchLab, c: StartCase): Promise<{ sent: number; lost: number; ringDrops: number }> {
  const job: PktgenJob = {
    iface: lab.dev.c0, dstMac: lab.mac.d0, srcMac: lab.mac.c0, srcIp: ADDR.client, dstIp: ADDR.vip, dport: PORT, sport: 10000,
    flows: 1024, frameSize: 64, batch: 64, durationMs: START_MS, steps: 1,
  };
  lab.setRps(lab.ns.d, lab.dev.d0, '0');
  const gen = await SteppedGen.start(lab, job, NICE);
  let uvsd: Uvsd | null = null;
  try {
    uvsd = await startUvsd(lab, ['--io', c.io, '--workers', '1'], '1', c.warmup ? {} : { UVS_WORKER_WARMUP: '0' });
    uvsadm(lab, ['-A', '-u', `${ADDR.vip}:${PORT}`, '-s', 'rr']);
    for (const sink of ADDR.sink) uvsadm(lab, ['-a', '-u', `${ADDR.vip}:${PORT}`, '-r', sink, '-g']);
    await sleep(300); // as the packet-rate cases: next hops resolved, filters attached
    const s = await measureStep(gen, START_RATE, () => lab.sinkPackets());
    const w = await workerTotals(uvsd);
    return { sent: s.gen.sent, lost: Math.max(0, s.gen.sent - s.received), ringDrops: w.get('ring_drops') ?? 0 };
  } finally {
    await gen.close();
    if (uvsd) await uvsd.stop();
  }
}

export async function runStart(lab: BenchLab, quick: boolean, progress: Progress, cases?: RegExp): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const c of startCases(cases)) {
    progress.begin(`start: ${c.name}`);
    const pct: number[] = [];
    const notes: string[] = [];
    try {
      for (let r = 0; r < runsOf(quick); r++) {
        const o = await once(lab, c);
        pct.push(o.sent > 0 ? (100 * o.lost) / o.sent : NaN);
        notes.push(`${o.lost} of ${o.sent} (ring drops ${o.ringDrops})`);
      }
      const v = median(pct);
      rows.push({
        group: START_GROUP, name: c.name, value: v, unit: '% lost', samples: pct, min: Math.min(...pct), max: Math.max(...pct),
        ...(c.warmup ? { target: `<= ${TARGET_PCT}% lost`, met: v <= TARGET_PCT } : {}),
        note: `frames lost per start: ${notes.join(', ')}; loss ${pct.map((p) => fmtLoss(p / 100)).join(', ')}; uvsd on CPU 1, director receive inline on the generator CPU 0${canPin() ? '' : ' (not pinned: no taskset)'}`,
      });
    } catch (err) {
      progress.log(`bench: start case ${c.name} failed: ${(err as Error).message.split('\n')[0]}`);
      rows.push({ group: START_GROUP, name: c.name, value: NaN, unit: '% lost', note: `failed: ${(err as Error).message.slice(0, 300)}` });
    }
  }
  return rows;
}
