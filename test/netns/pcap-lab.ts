// ModeLab (mode-lab.ts) with uvsd on the libpcap backend, for the NAT and TUN tests over pcap;
// and the cleanup of the offload record a killed pcap uvsd leaves behind. Needs root.
import { spawnSync } from 'node:child_process';
import { ModeLab } from './mode-lab';

/** ModeLab whose uvsd runs with --io pcap (the worker count does not apply to it). */
export class PcapModeLab extends ModeLab {
  protected override uvsdArgs(_workers: number): string[] {
    return ['--io', 'pcap'];
  }
}

/** Removes the offload record of namespace `ns` (a killed pcap uvsd's; the namespace goes away). */
export function removeOffloadRecord(ns: string): void {
  const ino = spawnSync('ip', ['netns', 'exec', ns, 'stat', '-L', '-c', '%i', '/proc/self/ns/net'], { encoding: 'utf8' }).stdout.trim();
  if (/^\d+$/.test(ino)) spawnSync('rm', ['-f', `/run/uvs/pcap-offloads-${ino}.json`]);
}
