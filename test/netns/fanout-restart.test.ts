// `--fanout cpu` after a worker crash: worker i is pinned to the CPUs c with c mod N = i
// (src/dataplane/placement.ts) and must stay fanout member i, the one PACKET_FANOUT_CPU hands those
// CPUs' frames to. A socket that leaves has its place taken by the last member and a new one joins
// at the end (af_packet.c __fanout_unlink, __fanout_link): worker 0 restarted alone became member 1
// and took CPU 1's frames while pinned to CPU 0. Here frames are sent from one CPU at a time (the
// sender pinned there: veth delivers in the sender's softirq) and each must be counted by the worker
// pinned to that CPU, before and after worker 0 is killed and restarted. Needs root and 2 CPUs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, lab, childLines } from './helpers';

const S = labSuffix('f');
const P = `uvs${S}`;
const FRAMES = 200;

function why(): string | null {
  const netns = cannotRunNetns();
  if (netns) return netns;
  if (cpus().length < 2) return 'needs 2 CPUs';
  if (spawnSync('taskset', ['-c', '1', 'true']).status !== 0) return 'taskset cannot pin to CPU 1 here';
  return null;
}
const skip = why();
let child: ChildProcess | null = null;

after(() => {
  child?.kill('SIGKILL');
  if (!skip) lab(S, 'down');
});

/** FRAMES UDP datagrams to the VIP's UDP service from the client, sent from CPU `cpu` only. */
function sendFrom(cpu: number): void {
  const script = `const s=require('dgram').createSocket('udp4');let n=0;const b=Buffer.alloc(32);` +
    `(function next(){if(n++===${FRAMES})return s.close();s.send(b,5353,'10.77.0.100',next)})()`;
  const r = spawnSync('taskset', ['-c', String(cpu), 'ip', 'netns', 'exec', `${P}cl`, process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `sender on CPU ${cpu}: ${r.stderr}`);
}

test('--fanout cpu: frames of CPU i go to worker i, also after worker 0 was killed and restarted', { skip: skip ?? false, timeout: 120_000 }, async () => {
  lab(S, 'up', 'dr');
  // The child on both CPUs: worker 0 pins itself to CPU 0, worker 1 to CPU 1.
  const proc = spawn('taskset', ['-c', '0,1', 'ip', 'netns', 'exec', `${P}dir`, process.execPath, join(__dirname, 'worker-restart-child.js'), 'cpu'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child = proc;
  const { nextLine, stderr } = childLines(proc);
  type Reports = { reports: { id: number; alive: boolean; restarts: number; stats: Record<string, number> }[] };
  const rx = async (): Promise<number[]> => {
    proc.stdin.write('REPORTS\n');
    return (JSON.parse(await nextLine()) as Reports).reports.map((r) => r.stats['rx_frames'] ?? 0);
  };
  /** Frames sent from each CPU: counted by the worker of that CPU, (almost) none by the other. */
  const checkPlacement = async (when: string): Promise<void> => {
    for (const cpu of [0, 1]) {
      const before = await rx();
      sendFrom(cpu);
      await new Promise((r) => setTimeout(r, 300));
      const got = (await rx()).map((n, i) => n - before[i]!);
      assert.ok(got[cpu]! >= FRAMES * 0.9 && got[1 - cpu]! <= FRAMES * 0.1,
        `${when}: ${FRAMES} frames sent from CPU ${cpu}, counted by worker 0: ${got[0]}, worker 1: ${got[1]}; stderr:\n${stderr()}`);
    }
  };
  assert.equal(await nextLine(), 'READY');
  await checkPlacement('at start');

  proc.stdin.write('KILL 0\n');
  const killed = JSON.parse(await nextLine()) as Reports;
  assert.deepEqual(killed.reports.map((r) => [r.alive, r.restarts]), [[true, 1], [true, 0]], stderr());
  await new Promise((r) => setTimeout(r, 500)); // both have joined their fanout groups
  await checkPlacement('after worker 0 was restarted');

  proc.stdin.write('STOP\n');
  await new Promise((resolve) => proc.once('exit', resolve));
  child = null;
});
