// ModeLab (mode-lab.ts) with uvsd on the libpcap backend, for the NAT and TUN tests over pcap;
// and the cleanup of the offload record a killed pcap uvsd leaves behind. Needs root.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './helpers';
import { ModeLab } from './mode-lab';

const UVSD = join(repoRoot, 'dist', 'src', 'cli', 'uvsd.js');
const UVSADM = join(repoRoot, 'dist', 'src', 'cli', 'uvsadm.js');

/** ModeLab whose uvsd runs with --io pcap (the worker count does not apply to it). */
export class PcapModeLab extends ModeLab {
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

/** Removes the offload record of namespace `ns` (a killed pcap uvsd's; the namespace goes away). */
export function removeOffloadRecord(ns: string): void {
  const ino = spawnSync('ip', ['netns', 'exec', ns, 'stat', '-L', '-c', '%i', '/proc/self/ns/net'], { encoding: 'utf8' }).stdout.trim();
  if (/^\d+$/.test(ino)) spawnSync('rm', ['-f', `/run/uvs/pcap-offloads-${ino}.json`]);
}
