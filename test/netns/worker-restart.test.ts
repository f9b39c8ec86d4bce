// A worker thread that dies is restarted, and the connections survive it: the connection table
// lives in shared memory, so an open connection keeps working across the restart of every worker.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, lab, inNs, childLines } from './helpers';

const why = cannotRunNetns();
const S = labSuffix('w');
const P = `uvs${S}`;
let child: ChildProcess | null = null;

after(() => {
  child?.kill('SIGKILL');
  if (!why) lab(S, 'down');
});

test('killing every worker thread: they come back, an open connection completes, new ones work', { skip: why ?? false }, async () => {
  lab(S, 'up', 'dr');
  const proc = spawn('ip', ['netns', 'exec', `${P}dir`, process.execPath, join(__dirname, 'worker-restart-child.js')], { stdio: ['pipe', 'pipe', 'pipe'] });
  child = proc;
  const { nextLine, stderr } = childLines(proc);
  assert.equal(await nextLine(), 'READY');

  const held = spawn('ip', ['netns', 'exec', `${P}cl`, 'curl', '-s', '-m', '10', 'http://10.77.0.100/slow/2000']);
  let heldOut = '';
  held.stdout.on('data', (d: Buffer) => (heldOut += d.toString()));
  const heldDone = new Promise<number | null>((resolve) => held.once('exit', resolve));
  await new Promise((r) => setTimeout(r, 400));

  proc.stdin.write('KILL\n');
  const after = JSON.parse(await nextLine()) as { reports: { alive: boolean; restarts: number }[]; conns: { dport: number }[] };
  assert.deepEqual(after.reports.map((r) => [r.alive, r.restarts]), [[true, 1], [true, 1]], stderr());
  assert.equal(after.conns.length, 1, 'the open connection is still in the table');

  assert.equal(await heldDone, 0, `the held request failed; stderr:\n${stderr()}`);
  assert.match(heldOut, /^rs[12]\n$/);
  const names = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const r = inNs(`${P}cl`, 'curl', ['-s', '-m', '3', 'http://10.77.0.100/']);
    assert.equal(r.status, 0);
    names.add(r.stdout.trim());
  }
  assert.deepEqual([...names].sort(), ['rs1', 'rs2']);
  proc.stdin.write('STOP\n');
  await new Promise((resolve) => proc.once('exit', resolve));
  child = null;
  assert.doesNotMatch(inNs(`${P}dir`, 'nft', ['list', 'tables']).stdout, /table ip uvs\b/);
});

test('--io xdp: a killed worker closes its AF_XDP sockets with its thread; the new one binds the queue again and forwards through it', { skip: why ?? false, timeout: 60_000 }, async () => {
  const X = labSuffix('wx');
  const PX = `uvs${X}`;
  lab(X, 'up', 'dr');
  const proc = spawn('ip', ['netns', 'exec', `${PX}dir`, process.execPath, join(__dirname, 'worker-restart-child.js'), 'xdp'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child = proc;
  try {
    const { nextLine, stderr } = childLines(proc);
    assert.equal(await nextLine(), 'READY');
    const get = (): void => {
      for (let i = 0; i < 4; i++) assert.equal(inNs(`${PX}cl`, 'curl', ['-s', '-m', '3', 'http://10.77.0.100/']).status, 0, stderr());
    };
    /** Worker 0's AF_XDP frames (copied from its sockets at each 1 s sweep, so wait for one). */
    const xdpFrames = async (): Promise<number> => {
      await new Promise((r) => setTimeout(r, 1200));
      proc.stdin.write('REPORTS\n');
      const r = JSON.parse(await nextLine()) as { reports: { id: number; stats: Record<string, number> }[] };
      return r.reports.find((w) => w.id === 0)!.stats['xdp_frames']!;
    };
    get();
    const before = await xdpFrames();
    assert.ok(before > 0, `frames came through AF_XDP before the kill: ${stderr()}`);
    proc.stdin.write('KILL\n');
    const killed = JSON.parse(await nextLine()) as { reports: { alive: boolean; restarts: number }[] };
    assert.deepEqual(killed.reports.map((r) => [r.alive, r.restarts]), [[true, 1], [true, 1]], stderr());
    get();
    const afterKill = await xdpFrames();
    assert.ok(afterKill > before, `the restarted worker took frames through AF_XDP again (${before} → ${afterKill}): ${stderr()}`);
    assert.doesNotMatch(stderr(), /EBUSY|could not start/, 'the queue was free for the new socket');
    proc.stdin.write('STOP\n');
    await new Promise((resolve) => proc.once('exit', resolve));
    child = null;
    assert.doesNotMatch(inNs(`${PX}dir`, 'ip', ['-d', 'link', 'show']).stdout, /xdpgeneric/, 'the programs went with the data plane');
  } finally {
    child?.kill('SIGKILL');
    child = null;
    lab(X, 'down');
  }
});
