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
