// Restart without loss (issue 15): a uvsd stopped with SIGTERM saves its connections (the state
// file, src/dataplane/conn-state.ts) and hands its kernel guard over; the next uvsd, started with
// the same configuration, takes them back. A rate-limited download (~10 s) through the VIP is cut
// by a restart half-way, in a DR lab and in a NAT lab, and arrives whole. Needs root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, inNs } from './helpers';
import { ModeLab, VIP } from './mode-lab';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns();
const dir = mkdtempSync(join(tmpdir(), 'uvs-restart-'));
const labs: ModeLab[] = [];

after(async () => {
  for (const l of labs) {
    await l.stopUvsd('SIGKILL');
    if (!why) l.down();
  }
  rmSync(dir, { recursive: true, force: true });
});

const SIZE = 2_097_152;
function pattern(): Buffer {
  const want = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) want[i] = (i * 31 + 7) & 0xff;
  return want;
}

async function restartDuringDownload(mode: 'dr' | 'nat', flag: '-g' | '-m', rs: [string, string]): Promise<void> {
  const lab = new ModeLab(labSuffix(mode === 'dr' ? 'r' : 'q'), mode, flag);
  labs.push(lab);
  lab.up();
  const state = join(dir, `${mode}.conns`);
  const args = ['--conn-state', state];
  const configure = (): void => {
    lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
    lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', rs[0], flag);
    lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', rs[1], flag);
  };
  await lab.daemon.start(['--workers', '1', ...args]);
  configure();
  // 2 MiB at 200 KiB/s, paced by the real server (rs-server.mjs /paced): about 10 s whatever the
  // path's speed (established flows cross the director in the kernel's fast path).
  const curl = spawn('ip', ['netns', 'exec', lab.CL, 'curl', '-sS', '-m', '60', `http://${VIP}/paced/${SIZE}/204800`]);
  const chunks: Buffer[] = [];
  let errors = '';
  curl.stdout.on('data', (d: Buffer) => chunks.push(d));
  curl.stderr.on('data', (d: Buffer) => (errors += d.toString()));
  let exited: number | null = null;
  const done = new Promise<number | null>((resolve) => curl.once('exit', (c) => resolve((exited = c))));
  await new Promise((r) => setTimeout(r, 3000));
  const received = chunks.reduce((n, c) => n + c.length, 0);
  const before = lab.uvsadm('-L', '-n', '-c');
  assert.match(before, /ESTABLISHED/, `${before}\ncurl: exit ${exited}, ${received} bytes, ${errors}`);
  assert.ok(received > 0 && received < SIZE, `mid-transfer: ${received} bytes so far`);

  assert.equal(await lab.stopUvsd('SIGTERM'), 0, lab.log);
  assert.match(lab.log, /connection state: \d+ connection\(s\) saved to /, lab.log);
  assert.ok(existsSync(state), 'the state file is written');
  const saved = readFileSync(state);
  const tables = inNs(lab.DIR, 'nft', ['list', 'tables']).stdout;
  assert.match(tables, /table ip uvs_keep\b/, `the guard is handed over: ${tables}`);
  assert.doesNotMatch(tables, /table ip uvs\n/, tables);

  await lab.daemon.start(['--workers', '1', ...args]);
  assert.equal(existsSync(state), false, 'the state file is taken');
  configure();
  const code = await done;
  const got = Buffer.concat(chunks);
  assert.equal(code, 0, `curl exit ${code}; uvsd log:\n${lab.log}`);
  assert.equal(got.length, SIZE);
  assert.ok(got.equals(pattern()), 'the download arrives intact');
  assert.match(lab.log, /connection state: [1-9]\d* connection\(s\) restored/, lab.log);
  assert.doesNotMatch(inNs(lab.DIR, 'nft', ['list', 'tables']).stdout, /uvs_keep/, 'the handover guard is released');

  // A corrupt file is refused with a clear line and ignored: the start goes on.
  await lab.stopUvsd();
  writeFileSync(state, Buffer.from('UVSCONNS garbage'));
  await lab.daemon.start(['--workers', '1', ...args]);
  // Logged just after the data plane's ready line.
  for (let i = 0; i < 50 && !/refused and ignored/.test(lab.log); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(lab.log, /connection state: .* refused and ignored: not a uvs connection state file|truncated/, lab.log);
  assert.equal(existsSync(state), false, 'the refused file is removed');
  await lab.stopUvsd();
  if (mode === 'dr') await refusedInAnotherNamespace(lab, saved);
}

/**
 * The kernel reuses network namespace inode numbers, and the default state file is named by it
 * (/run/uvs/<inode>.conns): a namespace created after another was deleted may find the dead
 * one's file at its own default path. Simulated here: the file the lab's director saved, with
 * the client namespace's inode written into it (as if the dead namespace had had that number), at
 * the client namespace's default path; a uvsd started there must refuse it (the namespace cookie
 * differs) and restore nothing.
 */
async function refusedInAnotherNamespace(lab: ModeLab, saved: Buffer): Promise<void> {
  const inode = Number(inNs(lab.CL, 'stat', ['-L', '-c', '%i', '/proc/self/ns/net']).stdout.trim());
  assert.ok(inode > 0, 'the client namespace has an inode');
  const image = Buffer.from(saved);
  image.writeDoubleLE(inode, 48);
  // uvsd's default: the control socket's path (/run/uvs/<inode>.sock) with .conns (conn-state.ts).
  const path = `/run/uvs/${inode}.conns`;
  mkdirSync('/run/uvs', { recursive: true, mode: 0o755 });
  writeFileSync(path, image, { mode: 0o600 });
  const other = new UvsdProcess(lab.CL);
  try {
    await other.start(['--workers', '1', '--conn-state', path]);
    for (let i = 0; i < 50 && !/refused and ignored/.test(other.log); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(other.log, new RegExp(`connection state: ${path} refused and ignored: foreign: written in another network namespace \\(cookie [0-9a-f]{16}, inode ${inode};`), other.log);
    assert.doesNotMatch(other.log, /connection\(s\) from uvsd/, other.log);
    assert.equal(existsSync(path), false, 'the refused file is removed');
  } finally {
    await other.stop('SIGTERM');
    rmSync(path, { force: true });
  }
}

test('DR: uvsd restarted (SIGTERM, start) mid-download keeps the connection; the download completes intact', { skip: why ?? false, timeout: 120_000 }, async () => {
  await restartDuringDownload('dr', '-g', ['10.77.0.21:80', '10.77.0.22:80']);
});

test('NAT: uvsd restarted (SIGTERM, start) mid-download keeps the connection; the download completes intact', { skip: why ?? false, timeout: 120_000 }, async () => {
  await restartDuringDownload('nat', '-m', ['10.78.0.21:8080', '10.78.0.22:80']);
});
