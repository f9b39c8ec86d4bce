// DR mode end to end: a lab (client, director, two real servers on one L2), uvsd on the director,
// configured with uvsadm the way the seed tutorial configures ipvsadm, real curl as the client.
// Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cannotRunNetns, labSuffix, lab, inNs, curlFrom, splitFrom, nstatIn } from './helpers';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns();
const S = labSuffix('d');
const P = `uvs${S}`;
const DIR = `${P}dir`;
const CL = `${P}cl`;
const VIP = '10.77.0.100';
const RS = ['10.77.0.21', '10.77.0.22'];

const daemon = new UvsdProcess(DIR);
const uvsadm = (...args: string[]): string => daemon.uvsadm(...args);
const startUvsd = (workers: number): Promise<void> => daemon.start(['--workers', String(workers)]);
const stopUvsd = (signal?: NodeJS.Signals): Promise<number | null> => daemon.stop(signal);

const curl = (path = '/', timeoutSec = 3): { status: number; body: string } => curlFrom(CL, `http://${VIP}${path}`, timeoutSec);
const split = (n: number): Record<string, number> => splitFrom(CL, `http://${VIP}/`, n, () => `uvsd log:\n${daemon.log}`);
const nstat = nstatIn;

function tableLeft(): boolean {
  return /table ip uvs\b/.test(inNs(DIR, 'nft', ['list', 'tables']).stdout);
}

before(() => {
  if (!why) lab(S, 'up', 'dr');
});

after(async () => {
  await stopUvsd('SIGKILL');
  if (!why) lab(S, 'down');
});

test('DR with one worker: rr 10/10, wrr 15/5, 2 MB intact, stats, no RST and no kernel forwarding', { skip: why ?? false }, async () => {
  await startUvsd(1);
  uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS[0]}:80`, '-g');
  uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS[1]}:80`, '-g');
  const rsts = nstat(DIR, 'TcpOutRsts');
  const fwd = nstat(DIR, 'IpForwDatagrams');

  assert.deepEqual(split(20), { rs1: 10, rs2: 10 });

  // The listing counts what the test did: 20 connections, 10 per real server. DR sees only the
  // client's direction (no OutPkts).
  const stats = uvsadm('-L', '-n', '--stats', '--exact');
  const svcLine = stats.split('\n').find((l) => l.startsWith(`TCP  ${VIP}:80`))!;
  const [, , conns, inPkts, outPkts] = svcLine.split(/\s+/);
  assert.equal(conns, '20', stats);
  assert.ok(Number(inPkts) >= 20 * 5, `InPkts ${inPkts}: a curl sends at least 5 packets`);
  assert.equal(outPkts, '0');
  for (const rs of RS) {
    const line = stats.split('\n').find((l) => l.includes(`-> ${rs}:80`))!;
    assert.equal(line.split(/\s+/)[3], '10', stats);
  }

  uvsadm('-E', '-t', `${VIP}:80`, '-s', 'wrr');
  uvsadm('-e', '-t', `${VIP}:80`, '-r', `${RS[0]}:80`, '-g', '-w', '3');
  assert.deepEqual(split(20), { rs1: 15, rs2: 5 });

  const want = Buffer.alloc(2097152);
  for (let i = 0; i < want.length; i++) want[i] = (i * 31 + 7) & 0xff;
  const got = spawnSync('ip', ['netns', 'exec', CL, 'curl', '-s', '-m', '20', `http://${VIP}/bytes/2097152`], { timeout: 25_000, maxBuffer: 8 << 20 }).stdout;
  assert.equal(got.length, want.length);
  assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(want).digest('hex'));

  // An upload: the client's TCP stack hands the veth 64 KB GSO super-frames, which reach the
  // director's ring whole and must leave it whole (vnet header) or correctly segmented.
  const upload = Buffer.alloc(4 << 20);
  for (let i = 0; i < upload.length; i++) upload[i] = (i * 7 + 3) & 0xff;
  const posted = spawnSync('ip', ['netns', 'exec', CL, 'curl', '-s', '-m', '20', '--data-binary', '@-', `http://${VIP}/sha256`], { input: upload, timeout: 25_000, encoding: 'utf8' });
  assert.equal(posted.status, 0, posted.stderr);
  assert.match(posted.stdout, new RegExp(`^rs[12] ${createHash('sha256').update(upload).digest('hex')} ${upload.length}\n$`));

  assert.equal(nstat(DIR, 'TcpOutRsts'), rsts, 'the director kernel sent no RST');
  assert.equal(nstat(DIR, 'IpForwDatagrams'), fwd, 'the director kernel forwarded nothing');

  // uvsadm --dataplane: one worker, which saw the upload's super-frames and sent what it received.
  const dp = uvsadm('--dataplane');
  const row = dp.split('\n')[1]!.trim().split(/\s+/);
  assert.equal(row[0], '0', dp);
  assert.equal(row[1], 'running', dp);
  assert.ok(Number(row[5]) > 0, `TxFrames: ${dp}`);
  assert.ok(Number(row[9]) > 0, `GSO super-frames seen: ${dp}`);

  assert.equal(await stopUvsd(), 0);
  assert.equal(tableLeft(), false, 'no nftables table after a clean exit');
});

test('DR with two workers and ip_forward on: rr 10/10, UDP, persistence, quiescing, deletions', { skip: why ?? false }, async () => {
  // The kernel guard must hold whether the user left forwarding on or off.
  inNs(DIR, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await startUvsd(2);
  const rsts = nstat(DIR, 'TcpOutRsts');
  const fwd = nstat(DIR, 'IpForwDatagrams');
  uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS[0]}:80`, '-g');
  uvsadm('-a', '-t', `${VIP}:80`, '-r', `${RS[1]}:80`, '-g');
  assert.deepEqual(split(20), { rs1: 10, rs2: 10 });

  // UDP: ten datagrams from ten source ports, answered by the real servers' names.
  uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  uvsadm('-a', '-u', `${VIP}:53`, '-r', `${RS[0]}:53`, '-g');
  uvsadm('-a', '-u', `${VIP}:53`, '-r', `${RS[1]}:53`, '-g');
  const udpScript = `
    const dgram = require('dgram'); const names = [];
    let pending = 10;
    for (let i = 0; i < 10; i++) {
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => { names.push('timeout'); s.close(); if (--pending === 0) done(); }, 3000);
      s.on('message', (m) => { clearTimeout(t); names.push(m.toString().trim()); s.close(); if (--pending === 0) done(); });
      s.send('who', 53, ${JSON.stringify(VIP)});
    }
    function done() { console.log(JSON.stringify(names)); }`;
  const udp = inNs(CL, process.execPath, ['-e', udpScript], 10_000);
  const names = JSON.parse(udp.stdout) as string[];
  assert.equal(names.filter((n) => n === 'rs1').length, 5, udp.stdout);
  assert.equal(names.filter((n) => n === 'rs2').length, 5, udp.stdout);

  // -p: one client sticks to one real server.
  uvsadm('-E', '-t', `${VIP}:80`, '-s', 'rr', '-p', '60');
  const sticky = split(10);
  assert.equal(Object.keys(sticky).length, 1, JSON.stringify(sticky));
  uvsadm('-E', '-t', `${VIP}:80`, '-s', 'rr');

  assert.equal(nstat(DIR, 'TcpOutRsts'), rsts, 'the director kernel sent no RST');
  assert.equal(nstat(DIR, 'IpForwDatagrams'), fwd, 'the director kernel forwarded nothing');

  // Quiescing: an open (slow) request to rs1 completes; new requests all go to rs2.
  const held = spawn('ip', ['netns', 'exec', CL, 'curl', '-s', '-m', '10', `http://${VIP}/slow/2500`]);
  let heldOut = '';
  held.stdout.on('data', (d: Buffer) => (heldOut += d.toString()));
  const heldDone = new Promise<number | null>((resolve) => held.once('exit', resolve));
  await new Promise((r) => setTimeout(r, 500));
  const heldOn = uvsadm('-L', '-n', '-c').includes(`${RS[0]}:80`) ? RS[0]! : RS[1]!;
  const other = heldOn === RS[0] ? 'rs2' : 'rs1';
  uvsadm('-e', '-t', `${VIP}:80`, '-r', `${heldOn}:80`, '-g', '-w', '0');
  assert.deepEqual(split(6), { [other]: 6 });
  assert.equal(await heldDone, 0);
  assert.equal(heldOut.trim(), other === 'rs1' ? 'rs2' : 'rs1');

  // Deleting a real server keeps its connection entries (expire_nodest_conn is 0); new
  // connections go to the other one.
  uvsadm('-e', '-t', `${VIP}:80`, '-r', `${heldOn}:80`, '-g', '-w', '1');
  uvsadm('-d', '-t', `${VIP}:80`, '-r', `${RS[0]}:80`);
  assert.deepEqual(split(4), { rs2: 4 });
  assert.match(uvsadm('-L', '-n', '-c'), new RegExp(`${RS[0]!.replace(/\./g, '\\.')}:80`));

  // Deleting the service stops forwarding: the director's kernel answers (nothing listens).
  uvsadm('-D', '-t', `${VIP}:80`);
  assert.equal(curl('/', 2).status, 7, 'connection refused by the director itself');

  // Killed: the table stays behind, and the next start removes it.
  await stopUvsd('SIGKILL');
  assert.equal(tableLeft(), true);
  await startUvsd(1);
  await stopUvsd();
  assert.equal(tableLeft(), false);
});
