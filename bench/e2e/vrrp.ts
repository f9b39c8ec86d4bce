// VRRP failover: how long the VIP is gone when its master stops, for uvs against uvs and
// keepalived against keepalived, in a lab of its own (needs root):
//
//   uvsV1<S> d1 (priority 150) ─┐
//   uvsV2<S> d2 (priority 100) ─┴─ bridge in uvsVc<S> client 10.202.0.10     VIP 10.202.0.100/32
//
// Both directors run rs-server.mjs, which answers a UDP datagram with the director's name, so the
// client knows who holds the VIP. A probe (vrrp-probe.ts) in the client sends a datagram to the VIP
// every PROBE_MS. A trial: the probe sees d1 answer; d1 is stopped — cleanly (SIGTERM: the master
// sends a priority-0 advertisement and the backup takes over after Skew_Time, RFC 5798 6.4.2) or
// killed (the backup waits Master_Down_Interval = 3 × Advertisement_Interval + Skew_Time); the
// figure is the time from the signal to d2's first answer. Then d1 starts again, preempts, and the
// next trial begins. advert_int 1 (the default) on both sides, VRRPv2 with PASS authentication.
//
// uvsd runs as `uvsd -n -l --io none -f CONF` (VRRP only, no packet I/O). keepalived runs as
// `keepalived -n -l -D -P -f CONF -p PID -r VRRP_PID`; its kill is a crash of the VRRP child: the
// parent is frozen (SIGSTOP) so it neither restarts the child nor, by dying, makes it stop cleanly,
// the child gets SIGKILL, then the parent. A killed daemon leaves its VIP on d1 (nothing removes
// it, as after a crash); d1 still answers until the client follows d2's gratuitous ARP, and that is
// part of the failover as a client sees it. Before d1 restarts, the stale VIP is removed by hand
// (as a reboot would), for both daemons alike.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchRow } from '../lib';
import { Lab, runSuffix } from '../../test/netns/native-lab';
import { RS_SERVER, sleep, UVSD } from './lab';
import { sampledRow, type Progress, type Step } from './progress';

export const FAILOVER_GROUP = 'VRRP failover, ms until the VIP answers again';
const PROBE = join(__dirname, 'vrrp-probe.js');
const NET = '10.202.0';
const VIP = `${NET}.100`;
const CLIENT = `${NET}.10`;
const PROBE_MS = 10;
const UDP_PORT = 5353;
/** No trial waits longer than this for the backup (kill: ~3.6 s expected). */
const BOUND_MS = 10_000;

type Daemon = 'uvs' | 'keepalived';
type Way = 'clean stop' | 'kill -9';

export interface FailoverOptions {
  runs: number;
}

const PAIRS: Daemon[] = ['uvs', 'keepalived'];
const WAYS: Way[] = ['clean stop', 'kill -9'];

function rowName(d: Daemon, w: Way): string {
  return `${d} ↔ ${d}, ${w}`;
}

export function failoverPlan(o: FailoverOptions): Step[] {
  const steps: Step[] = [];
  for (const d of PAIRS) {
    steps.push({ label: `vrrp ${d}: election`, seconds: 5 });
    for (const w of WAYS) {
      for (let r = 1; r <= o.runs; r++) steps.push({ label: `vrrp ${rowName(d, w)} (run ${r}/${o.runs})`, seconds: w === 'kill -9' ? 7 : 4 });
    }
  }
  return steps;
}

interface Running {
  proc: ChildProcess;
  log: { text: string };
  /** keepalived: the VRRP child's pid file. */
  vrrpPidFile?: string;
  pidFile?: string;
}

class FailoverLab {
  readonly lab = new Lab(runSuffix());
  readonly c: string;
  readonly d: [string, string];
  readonly dev: string;
  readonly dir = mkdtempSync(join(tmpdir(), 'uvs-bench-vrrp-'));
  private readonly procs: ChildProcess[] = [];
  private starts = 0;

  constructor() {
    const L = this.lab;
    try {
      this.c = L.ns('Vc');
      this.d = [L.ns('V1'), L.ns('V2')];
      this.dev = L.dev('vd');
      const br = L.dev('vr');
      L.exec(this.c, ['ip', 'link', 'add', br, 'type', 'bridge']);
      L.exec(this.c, ['ip', 'link', 'set', br, 'up']);
      L.addr(this.c, br, `${CLIENT}/24`);
      for (let i = 0; i < 2; i++) {
        const port = L.dev(i === 0 ? 'va' : 'vb');
        L.veth(this.c, port, this.d[i]!, this.dev);
        L.exec(this.c, ['ip', 'link', 'set', port, 'master', br]);
        L.addr(this.d[i]!, this.dev, `${NET}.${2 + i}/24`);
        this.start(this.d[i]!, [process.execPath, RS_SERVER, `d${i + 1}`, '--port', '8080', '--udp-port', String(UDP_PORT)], { text: '' });
      }
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  start(ns: string, argv: string[], log: { text: string }): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    const add = (b: Buffer): void => {
      if (log.text.length < 100_000) log.text += b.toString();
    };
    p.stdout.on('data', add);
    p.stderr.on('data', add);
    p.on('error', () => undefined);
    this.procs.push(p);
    return p;
  }

  conf(i: number): string {
    const file = join(this.dir, `d${i + 1}.conf`);
    writeFileSync(file, [
      'global_defs {', `  router_id uvsbench-d${i + 1}`, '}',
      'vrrp_instance VI_1 {', '  state BACKUP', `  interface ${this.dev}`, '  virtual_router_id 52',
      `  priority ${i === 0 ? 150 : 100}`, '  advert_int 1',
      '  authentication {', '    auth_type PASS', '    auth_pass uvsbench', '  }',
      '  virtual_ipaddress {', `    ${VIP}/32 dev ${this.dev}`, '  }', '}', '',
    ].join('\n'));
    return file;
  }

  async daemon(kind: Daemon, i: number): Promise<Running> {
    const log = { text: '' };
    const n = ++this.starts;
    if (kind === 'uvs') {
      const proc = this.start(this.d[i]!, [process.execPath, UVSD, '-n', '-l', '--io', 'none', '-f', this.conf(i), '--socket', join(this.dir, `uvsd${n}.sock`)], log);
      const deadline = Date.now() + 15_000;
      while (!/vrrp: 1 instance\(s\) running/.test(log.text)) {
        if (proc.exitCode !== null) throw new Error(`uvsd exited (${proc.exitCode}): ${log.text.slice(-1000)}`);
        if (Date.now() > deadline) throw new Error(`uvsd's VRRP did not start: ${log.text.slice(-1000)}`);
        await sleep(50);
      }
      return { proc, log };
    }
    // Pid files of our own, new for every start: /run is shared by every namespace, and keepalived
    // refuses to start while a pid file names a live process.
    const pidFile = join(this.dir, `ka${n}.pid`);
    const vrrpPidFile = join(this.dir, `ka${n}-vrrp.pid`);
    const proc = this.start(this.d[i]!, ['keepalived', '-n', '-l', '-D', '-P', '-f', this.conf(i), '-p', pidFile, '-r', vrrpPidFile], log);
    const deadline = Date.now() + 10_000;
    while (!existsSync(vrrpPidFile)) {
      if (proc.exitCode !== null) throw new Error(`keepalived exited (${proc.exitCode}): ${log.text.slice(-1000)}`);
      if (Date.now() > deadline) throw new Error(`keepalived's VRRP child did not start: ${log.text.slice(-1000)}`);
      await sleep(50);
    }
    return { proc, log, pidFile, vrrpPidFile };
  }

  holds(i: number): boolean {
    return this.lab.exec(this.d[i]!, ['ip', '-o', '-4', 'addr', 'show', 'dev', this.dev]).includes(` ${VIP}/`);
  }

  /** Waits (bounded) until d<i+1> alone holds the VIP. */
  async waitHolder(i: number, what: string): Promise<void> {
    const deadline = Date.now() + BOUND_MS;
    while (!(this.holds(i) && !this.holds(1 - i))) {
      if (Date.now() > deadline) throw new Error(`${what}: d${i + 1} does not hold the VIP alone after ${BOUND_MS / 1000} s`);
      await sleep(50);
    }
  }

  async stopDaemon(r: Running, way: Way): Promise<number> {
    const exited = new Promise<void>((resolve) => (r.proc.exitCode !== null || r.proc.signalCode !== null ? resolve() : r.proc.once('exit', () => resolve())));
    const pid = (f: string | undefined): number => (f && existsSync(f) ? Number(readFileSync(f, 'utf8').trim()) : NaN);
    let t0: number;
    if (way === 'clean stop') {
      t0 = Date.now();
      r.proc.kill('SIGTERM');
    } else if (r.vrrpPidFile) {
      const parent = Number.isFinite(pid(r.pidFile)) ? pid(r.pidFile) : r.proc.pid!;
      const child = pid(r.vrrpPidFile);
      process.kill(parent, 'SIGSTOP');
      t0 = Date.now();
      if (Number.isFinite(child)) process.kill(child, 'SIGKILL');
      process.kill(parent, 'SIGKILL');
    } else {
      t0 = Date.now();
      r.proc.kill('SIGKILL');
    }
    const timer = setTimeout(() => r.proc.kill('SIGKILL'), BOUND_MS);
    await exited;
    clearTimeout(timer);
    return t0;
  }

  destroy(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const ns of this.lab.namespaces) {
      // keepalived's VRRP child is not our child: whatever still runs in the lab goes.
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split(/\s+/).filter(Boolean) ?? [];
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    this.lab.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One trial: probe, stop d1's daemon the given way, ms until d2 answers (NaN: not within BOUND_MS). */
async function trial(f: FailoverLab, master: Running, way: Way): Promise<{ ms: number; lost: number }> {
  const probe = f.start(f.c, [process.execPath, PROBE, VIP, String(UDP_PORT), String(PROBE_MS), String(BOUND_MS + 3000)], { text: '' });
  let out = '';
  probe.stdout!.on('data', (b: Buffer) => void (out += b.toString()));
  const answers = (): Array<[number, string]> => out.split('\n').filter(Boolean).map((l) => {
    const [t, who] = l.split(' ');
    return [Number(t), who ?? ''];
  });
  try {
    const ready = Date.now() + 3000;
    while (answers().filter(([, who]) => who === 'd1').length < 5) {
      if (Date.now() > ready) throw new Error('the probe gets no answers from d1 (the master) before the stop');
      await sleep(20);
    }
    const t0 = await f.stopDaemon(master, way);
    const deadline = t0 + BOUND_MS;
    for (;;) {
      const first = answers().find(([t, who]) => who === 'd2' && t >= t0);
      if (first) {
        // Probes sent in the window that got no answer (one every PROBE_MS).
        const answered = answers().filter(([t]) => t >= t0 && t <= first[0]).length;
        return { ms: first[0] - t0, lost: Math.max(0, Math.round((first[0] - t0) / PROBE_MS) - answered) };
      }
      if (Date.now() > deadline) return { ms: NaN, lost: 0 };
      await sleep(10);
    }
  } finally {
    probe.kill('SIGTERM');
  }
}

export async function runFailover(o: FailoverOptions, progress: Progress): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const kind of PAIRS) {
    const samples = new Map<Way, number[]>(WAYS.map((w) => [w, []]));
    const lost = new Map<Way, number[]>(WAYS.map((w) => [w, []]));
    let failure = '';
    let f: FailoverLab | null = null;
    try {
      if (kind === 'keepalived' && spawnSync('keepalived', ['--version']).error) throw new Error('keepalived is not installed');
      progress.begin(`vrrp ${kind}: election`);
      f = new FailoverLab();
      const lab = f;
      await lab.daemon(kind, 1);
      let master = await lab.daemon(kind, 0);
      await lab.waitHolder(0, `${kind}: first election`);
      for (const way of WAYS) {
        for (let r = 1; r <= o.runs; r++) {
          progress.begin(`vrrp ${rowName(kind, way)} (run ${r}/${o.runs})`);
          const t = await trial(lab, master, way);
          if (!Number.isFinite(t.ms)) throw new Error(`${rowName(kind, way)}: d2 did not answer within ${BOUND_MS / 1000} s`);
          samples.get(way)!.push(t.ms);
          lost.get(way)!.push(t.lost);
          // d1 comes back (a killed daemon's stale VIP removed first, as a reboot would) and preempts.
          if (lab.holds(0)) lab.lab.exec(lab.d[0], ['ip', 'addr', 'del', `${VIP}/32`, 'dev', lab.dev]);
          master = await lab.daemon(kind, 0);
          await lab.waitHolder(0, `${kind}: d1 preempts after its restart`);
          await sleep(300);
        }
      }
    } catch (err) {
      failure = (err as Error).message.split('\n')[0]!.slice(0, 300);
      progress.log(`bench: VRRP ${kind} failed: ${failure}`);
    } finally {
      f?.destroy();
    }
    for (const way of WAYS) {
      const s = samples.get(way)!;
      const name = rowName(kind, way);
      if (s.length === 0) {
        rows.push({ group: FAILOVER_GROUP, name, value: NaN, unit: 'ms', note: `failed: ${failure}` });
        continue;
      }
      const expect = way === 'clean stop' ? 'expected ~Skew_Time = (256 − 100)/256 s ≈ 0.61 s' : 'expected Master_Down_Interval (3 s + Skew_Time ≈ 3.61 s) after the last advertisement, sent 0–1 s before the kill: 2.6–3.6 s';
      const l = lost.get(way)!;
      const note = `advert_int 1, backup priority 100; ${expect}; probes unanswered per failover ${l.join(', ')} (one every ${PROBE_MS} ms)${failure ? `; later runs failed: ${failure}` : ''}`;
      rows.push(sampledRow(FAILOVER_GROUP, name, 'ms', s, note));
    }
  }
  // Each uvs row against keepalived's row for the same way of failing.
  for (const way of WAYS) {
    const ka = rows.find((r) => r.name === rowName('keepalived', way));
    const uvs = rows.find((r) => r.name === rowName('uvs', way));
    if (ka && uvs && Number.isFinite(ka.value) && Number.isFinite(uvs.value) && ka.value > 0) {
      uvs.note = `${uvs.note ?? ''}; ${(uvs.value / ka.value).toFixed(2)}x keepalived's`;
    }
  }
  return rows;
}
