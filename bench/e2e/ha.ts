// Connection sync across a failover: what a client's download loses when the VRRP master dies,
// with and without sync, in netns-scripts/lab.sh's ha lab (two directors, VRRP +
// lvs_sync_daemon, DR real servers; the real server paces the download, rs-server.mjs /paced).
// A trial: curl fetches SIZE bytes at RATE bytes/s through the master;
// once a fifth has arrived the master's uvsd gets SIGKILL; the file's size is sampled every
// SAMPLE_MS until curl ends (it gives up after CURL_MAX_S). Rows: the longest time the file did
// not grow after the kill (the stall a user sees), and the bytes that never arrived. "Without
// sync" is the same lab with the backup's sync daemon stopped (`uvsadm --stop-daemon backup`):
// the backup has no entry for the download, drops its packets, and the download never resumes.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchRow } from '../lib';
import { labSuffix, lab } from '../../test/netns/helpers';
import { sleep, UVSD } from './lab';
import type { Progress, Step } from './progress';

export const HA_GROUP = 'Connection sync: a 3 MB download at 200 KB/s across a SIGKILL of the VRRP master';
const SIZE = 3_000_000;
const RATE = 204_800;
const SAMPLE_MS = 50;
const CURL_MAX_S = 40;
const UVSADM = join(UVSD, '..', 'uvsadm.js');

export function haPlan(): Step[] {
  return [
    { label: 'ha: with sync (lab, download, kill)', seconds: 35 },
    { label: 'ha: without sync (lab, download, kill)', seconds: 60 },
  ];
}

interface Trial {
  stallMs: number;
  lostBytes: number;
  resumed: boolean;
}

function uvsdPid(ns: string): number | null {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('uvsd.js')) return pid;
    } catch {
      // gone
    }
  }
  return null;
}

async function trial(withSync: boolean): Promise<Trial> {
  const S = labSuffix(withSync ? 'y' : 'z');
  const P = `uvs${S}`;
  lab(S, 'up', 'ha');
  try {
    if (!withSync) spawnSync('ip', ['netns', 'exec', `${P}d2`, process.execPath, UVSADM, '--stop-daemon', 'backup'], { timeout: 10_000 });
    // The health checkers bring the real servers in within a few seconds (bounded).
    for (let i = 0; i < 50; i++) {
      if (spawnSync('ip', ['netns', 'exec', `${P}cl`, 'curl', '-s', '-m', '1', 'http://10.77.0.100/'], { timeout: 5000 }).status === 0) break;
      await sleep(200);
    }
    const file = `/run/uvs-lab/${S}/bench-download.bin`;
    const size = (): number => {
      try {
        return statSync(file).size;
      } catch {
        return 0;
      }
    };
    const curl = spawn('ip', ['netns', 'exec', `${P}cl`, 'curl', '-s', '-m', String(CURL_MAX_S), '-o', file, `http://10.77.0.100/paced/${SIZE}/${RATE}`], { stdio: 'ignore' });
    const ended = new Promise<void>((resolve) => curl.once('exit', () => resolve()));
    let done = false;
    void ended.then(() => (done = true));
    for (let i = 0; i < 200 && !done && size() < SIZE / 5; i++) await sleep(SAMPLE_MS);
    const pid = uvsdPid(`${P}d1`);
    if (pid === null) throw new Error('no uvsd in d1');
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    let last = size();
    let lastGrowth = killedAt;
    let stall = 0;
    while (!done) {
      await sleep(SAMPLE_MS);
      const now = Date.now();
      const s = size();
      if (s > last) {
        stall = Math.max(stall, now - lastGrowth);
        last = s;
        lastGrowth = now;
      }
    }
    const final = size();
    const resumed = lastGrowth > killedAt;
    if (final < SIZE) stall = Math.max(stall, Date.now() - lastGrowth);
    return { stallMs: stall, lostBytes: SIZE - final, resumed };
  } finally {
    lab(S, 'down');
  }
}

export async function runHaFailover(progress: Progress): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const withSync of [true, false]) {
    const name = withSync ? 'with sync' : 'without sync';
    progress.begin(`ha: ${name} (lab, download, kill)`);
    try {
      const t = await trial(withSync);
      const note = t.resumed ? undefined : `the download never resumed; curl gave up after ${CURL_MAX_S} s`;
      rows.push({ group: HA_GROUP, name: `${name}: longest stall after the kill`, value: t.stallMs, unit: 'ms', ...(note ? { note } : {}) });
      rows.push({ group: HA_GROUP, name: `${name}: bytes lost`, value: t.lostBytes, unit: 'bytes' });
    } catch (err) {
      progress.log(`bench: ha ${name} failed: ${(err as Error).message.split('\n')[0]}`);
      rows.push({ group: HA_GROUP, name: `${name}: bytes lost`, value: NaN, unit: 'bytes', note: `failed: ${(err as Error).message.slice(0, 300)}` });
    }
  }
  return rows;
}
