// Interfaces that come and go (issue 13): uvsd runs on a NAT lab's director; then a second client
// segment is plugged into the director (a new veth pair, its own namespace) and clients there reach
// the VIP through uvs without a restart; its link goes down (no longer captured) and up again
// (captured again); then the veth is deleted: no errors, the counters and listings carry on.
// Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cannotRunNetns, labSuffix, curlFrom } from './helpers';
import { ModeLab, VIP } from './mode-lab';

const why = cannotRunNetns();
const lab = new ModeLab(labSuffix('i'), 'nat', '-m');
const C2 = `${lab.P}c2`;
const DIR_IF = `${lab.P}n0`;
const C2_IF = `${lab.P}n1`;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe', timeout: 10_000 });
}

async function waitFor(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}\nuvsd log:\n${lab.log}`);
}

before(() => {
  if (!why) lab.up();
});

after(async () => {
  await lab.stopUvsd('SIGKILL');
  spawnSync('ip', ['netns', 'del', C2]);
  if (!why) lab.down();
});

test('a client segment plugged in after start is captured, follows link down/up, and leaves cleanly', { skip: why ?? false, timeout: 180_000 }, async () => {
  await lab.startUvsd(1);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', '10.78.0.21:80', '-m');
  assert.equal(lab.curl().body.trim(), 'rs1', lab.log);

  // A new segment: director 10.80.0.1/24 on a new veth, a client 10.80.0.10 routing the VIP there.
  ip('netns', 'add', C2);
  ip('link', 'add', DIR_IF, 'netns', lab.DIR, 'type', 'veth', 'peer', 'name', C2_IF, 'netns', C2);
  ip('-n', lab.DIR, 'addr', 'add', '10.80.0.1/24', 'dev', DIR_IF);
  ip('-n', C2, 'addr', 'add', '10.80.0.10/24', 'dev', C2_IF);
  ip('-n', lab.DIR, 'link', 'set', DIR_IF, 'up');
  ip('-n', C2, 'link', 'set', C2_IF, 'up');
  ip('-n', C2, 'link', 'set', 'lo', 'up');
  ip('-n', C2, 'route', 'add', `${VIP}/32`, 'via', '10.80.0.1');
  // Without the interface watch this never succeeds: nothing captures the new segment, and the
  // kernel guard keeps the director's kernel from answering for the VIP.
  await waitFor('a request from the new segment served through uvs', () => curlFrom(C2, `http://${VIP}/`, 2).body.trim() === 'rs1');
  // (The log is read while the test waits: curl runs synchronously.)
  await waitFor(`capturing ${DIR_IF} in the log`, () => new RegExp(`capturing ${DIR_IF}`).test(lab.log));

  // Link down: no longer captured; up: captured again, and served.
  ip('-n', lab.DIR, 'link', 'set', DIR_IF, 'down');
  await waitFor(`no longer ${DIR_IF}`, () => new RegExp(`no longer ${DIR_IF}`).test(lab.log));
  ip('-n', lab.DIR, 'link', 'set', DIR_IF, 'up');
  await waitFor(`capturing ${DIR_IF} again`, () => (lab.log.match(new RegExp(`capturing ${DIR_IF}`, 'g')) ?? []).length >= 2);
  await waitFor('served again', () => curlFrom(C2, `http://${VIP}/`).body.trim() === 'rs1');

  // Deleted: dropped from the capture without errors; the old segment and the counters carry on.
  ip('-n', lab.DIR, 'link', 'del', DIR_IF);
  await waitFor(`${DIR_IF} gone`, () => (lab.log.match(new RegExp(`no longer ${DIR_IF}`, 'g')) ?? []).length >= 2);
  assert.equal(lab.curl().body.trim(), 'rs1', lab.log);
  const s = lab.stats('TCP', 80);
  assert.ok(s.conns >= 4, s.text);
  assert.doesNotMatch(lab.log, /worker \d+ (failed|exited)|interfaces: |\berror\b/i, lab.log);
  assert.equal(await lab.stopUvsd(), 0);
});
