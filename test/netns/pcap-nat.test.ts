// NAT over `uvsd --io pcap`: the NAT lab (real servers behind the director), the same checks the
// ring's NAT test makes (mode-lab.ts), with uvsd started on the libpcap backend. The replies of a
// download reach the director as the real servers' 64 KiB TSO super-frames, which the backend
// cuts into segments itself (pcap-loop.ts). Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, repoRoot } from './helpers';
import { ModeLab, VIP } from './mode-lab';

const UVSD = join(repoRoot, 'dist', 'src', 'cli', 'uvsd.js');
const UVSADM = join(repoRoot, 'dist', 'src', 'cli', 'uvsadm.js');

/** ModeLab whose uvsd runs with --io pcap (the worker count does not apply to it). */
class PcapModeLab extends ModeLab {
  private pcapUvsd: ChildProcess | null = null;

  override async startUvsd(_workers: number): Promise<void> {
    await this.stopUvsd('SIGKILL');
    this.log = '';
    const child = spawn('ip', ['netns', 'exec', this.DIR, process.execPath, UVSD, '-n', '-l', '--io', 'pcap'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.pcapUvsd = child;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`uvsd exited (${child.exitCode}):\n${this.log}`);
      const r = spawnSync('ip', ['netns', 'exec', this.DIR, process.execPath, UVSADM, '-L', '-n'], { encoding: 'utf8' });
      if (r.status === 0 && /data plane: libpcap/.test(this.log)) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`uvsd did not come up:\n${this.log}`);
  }

  override async stopUvsd(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.pcapUvsd;
    this.pcapUvsd = null;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

const why = cannotRunNetns();
const lab = new PcapModeLab(labSuffix('q'), 'nat', '-m');
// rs1 through port translation (VIP:80 → RIP:8080), rs2 on the same port.
const RS: [string, string] = ['10.78.0.21:8080', '10.78.0.22:80'];
const UDP_RS: [string, string] = ['10.78.0.21:5353', '10.78.0.22:53'];

before(() => {
  if (!why) lab.up();
});

after(async () => {
  await lab.stopUvsd('SIGKILL');
  if (!why) {
    // A killed pcap uvsd leaves its offload record for the next start; this namespace goes away.
    const ino = spawnSync('ip', ['netns', 'exec', lab.DIR, 'stat', '-L', '-c', '%i', '/proc/self/ns/net'], { encoding: 'utf8' }).stdout.trim();
    if (/^\d+$/.test(ino)) spawnSync('rm', ['-f', `/run/uvs/pcap-offloads-${ino}.json`]);
    lab.down();
  }
});

test('NAT over libpcap: rr 10/10 with port translation, OutPkts, wrr 15/5, 2 MB down, 3 MB up, no RST, no kernel forwarding', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[0], '-m');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[1], '-m');
  const rsts = lab.nstat(lab.DIR, 'TcpOutRsts');
  const fwd = lab.nstat(lab.DIR, 'IpForwDatagrams');

  assert.deepEqual(lab.split(20), { rs1: 10, rs2: 10 });
  const s = lab.stats('TCP', 80);
  assert.equal(s.conns, 20, s.text);
  assert.ok(s.outPkts >= 20 * 3, `OutPkts ${s.outPkts}: ${s.text}`);
  assert.equal(s.destConns(RS[0]), 10, s.text);
  assert.equal(s.destConns(RS[1]), 10, s.text);

  lab.uvsadm('-E', '-t', `${VIP}:80`, '-s', 'wrr');
  lab.uvsadm('-e', '-t', `${VIP}:80`, '-r', RS[0], '-m', '-w', '3');
  assert.deepEqual(lab.split(20), { rs1: 15, rs2: 5 });

  lab.download2MB();
  lab.upload3MB();

  assert.equal(lab.nstat(lab.DIR, 'TcpOutRsts'), rsts, 'the director kernel sent no RST');
  assert.equal(lab.nstat(lab.DIR, 'IpForwDatagrams'), fwd, 'the director kernel forwarded nothing');

  assert.equal(await lab.stopUvsd(), 0);
  assert.equal(lab.tableLeft(), false, 'no nftables table after a clean exit');
});

test('NAT over libpcap: UDP with port translation, persistence, quiescing, deletions, a killed daemon', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  await lab.commonChecks(RS, UDP_RS);
});
