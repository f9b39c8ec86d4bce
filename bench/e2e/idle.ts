// Idle cost: uvsd in the director with its default data plane (no --io, no --workers), three
// virtual services of two real servers each (DR), no checkers, no VRRP, no traffic. After a settling
// pause, the daemon's CPU time (utime + stime of all its threads, /proc/PID/stat fields 14 and 15)
// over `seconds` as a share of one core. Issue 12's target: at most 1%.
import { readFileSync } from 'node:fs';
import type { BenchRow } from '../lib';
import { ADDR, type BenchLab, sleep, threadCpu } from './lab';
import { parsePidStat } from './load';
import { pinned, startUvsd, uvsadm } from './pps';
import { DIRECTOR_CPUS } from './tcp';

export const IDLE_GROUP = 'Idle: uvsd with 3 virtual services, no traffic, % of one core';
export const IDLE_TARGET_PCT = 1;
const SETTLE_MS = 2000;

export function idleSeconds(quick: boolean): number {
  return quick ? 3 : 60;
}

export async function runIdle(lab: BenchLab, seconds: number): Promise<BenchRow> {
  const uvsd = await startUvsd(lab, [], DIRECTOR_CPUS);
  try {
    const services = [['-u', `${ADDR.vip}:53`], ['-t', `${ADDR.vip}:80`], ['-t', `${ADDR.vip}:443`]];
    for (const [proto, vs] of services) {
      uvsadm(lab, ['-A', proto!, vs!, '-s', 'rr']);
      for (const rs of ADDR.rs) uvsadm(lab, ['-a', proto!, vs!, '-r', rs, '-g']);
    }
    await sleep(SETTLE_MS);
    const stat = `/proc/${uvsd.pid}/stat`;
    const t0 = Date.now();
    const c0 = parsePidStat(readFileSync(stat, 'utf8'));
    const th0 = threadCpu(uvsd.pid);
    await sleep(seconds * 1000);
    const c1 = parsePidStat(readFileSync(stat, 'utf8'));
    const th1 = threadCpu(uvsd.pid);
    const wall = (Date.now() - t0) / 1000;
    const pct = ((c1 - c0) / wall) * 100;
    const busy = [...th1].map(([k, v]) => [k.replace(/#\d+$/, ''), v - (th0.get(k) ?? 0)] as const)
      .filter(([, d]) => d > 0).sort((a, b) => b[1] - a[1]).slice(0, 4)
      .map(([k, d]) => `${k} ${((d / wall) * 100).toFixed(2)}%`);
    const row: BenchRow = {
      group: IDLE_GROUP, name: 'uvsd, default data plane', unit: '% of a core', value: pct, samples: [pct], min: pct, max: pct,
      target: `<= ${IDLE_TARGET_PCT}% of a core`, met: pct <= IDLE_TARGET_PCT,
      note: `${(c1 - c0).toFixed(2)} CPU s over ${wall.toFixed(1)} s (/proc/PID/stat, 10 ms ticks), after ${SETTLE_MS / 1000} s settling; ${pinned(DIRECTOR_CPUS, []).join(' ')}; threads: ${busy.length ? busy.join(', ') : 'none used CPU'}`,
    };
    return row;
  } finally {
    await uvsd.stop();
  }
}
