// Receive offload off while the pcap backend captures, restored on exit.
//
// libpcap hands userspace each skb as one frame. With GRO the kernel merges a flow's segments
// into super-frames of up to 64 KiB, which cannot go back out through pcap_inject (larger than the
// MTU, and no vnet header to let the kernel segment them). The backend can cut TCP super-frames
// itself (pcap-loop.ts, for the ones neighbours' TSO sends over a veth or bridge anyway), but that
// costs a copy per segment and works for TCP only, so GRO is turned off on the interfaces it
// captures on. LRO is off on veths and bridges and not offered by the addon's legacy ethtool
// calls; a NIC with LRO on gets its TCP super-frames cut like the others.
//
// TSO/GSO stay as they are, on purpose: they shape only what the director's own stack sends, and
// libpcap sizes its ring frames (TPACKET_V2 in immediate mode) for 64 KiB only while one of these
// offloads is on (pcap-linux.c create_ring/iface_get_offload); with all of them off it cuts every
// frame at MTU + 18 bytes, and a neighbour's TSO frame would arrive truncated.
//
// The original settings are written to /run/uvs/pcap-offloads-<netns inode>.json before anything
// changes, so a uvsd that was killed leaves a record the next start restores from first.

import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { EthtoolFeature } from '../native/addon';
import { SOCKET_DIR, netnsInode } from '../runtime/paths';
import { type Logger } from '../runtime/log';

/** The features the pcap backend turns off. */
export const PCAP_OFFLOADS: readonly EthtoolFeature[] = ['gro'];

export interface EthtoolOps {
  ethtoolGet(ifname: string, feature: EthtoolFeature): boolean;
  ethtoolSet(ifname: string, feature: EthtoolFeature, on: boolean): void;
}

/** interface name → feature → was it on. */
export type OffloadState = Record<string, Partial<Record<EthtoolFeature, boolean>>>;

interface StateFile {
  pid: number;
  state: OffloadState;
}

export function defaultOffloadStatePath(): string {
  return join(SOCKET_DIR, `pcap-offloads-${netnsInode()}.json`);
}

export class PcapOffloads {
  private saved: OffloadState | null = null;

  constructor(
    private readonly ethtool: EthtoolOps,
    private readonly statePath: string,
    private readonly log: Logger,
    private readonly features: readonly EthtoolFeature[] = PCAP_OFFLOADS,
  ) {}

  /**
   * Restores what a previous run left recorded, records the current settings, then turns the
   * offloads off on `ifnames`. A feature the driver will not change is reported and left alone.
   */
  disable(ifnames: readonly string[]): void {
    this.recoverLeftover();
    const state: OffloadState = {};
    for (const ifname of ifnames) {
      const features: Partial<Record<EthtoolFeature, boolean>> = {};
      for (const f of this.features) {
        try {
          features[f] = this.ethtool.ethtoolGet(ifname, f);
        } catch (err) {
          this.log.warn(`pcap: cannot read ${f} of ${ifname}: ${(err as Error).message}`);
        }
      }
      state[ifname] = features;
    }
    // Written before the first change: a crash between two changes still leaves the record.
    mkdirSync(dirname(this.statePath), { recursive: true, mode: 0o700 });
    writeFileSync(this.statePath, JSON.stringify({ pid: process.pid, state } satisfies StateFile) + '\n', { mode: 0o600 });
    this.saved = state;
    const changed: string[] = [];
    for (const [ifname, features] of Object.entries(state)) {
      for (const f of this.features) {
        if (features[f] !== true) continue;
        try {
          this.ethtool.ethtoolSet(ifname, f, false);
          changed.push(`${ifname} ${f}`);
        } catch (err) {
          this.log.warn(`pcap: cannot turn ${f} off on ${ifname} (${(err as Error).message}); TCP super-frames from it are cut in userspace, others dropped (GSO_UNSUPPORTED)`);
        }
      }
    }
    if (changed.length > 0) this.log.info(`pcap: offloads off while capturing: ${changed.join(', ')} (restored on exit)`);
  }

  /** Puts back what disable() found and removes the record. */
  restore(): void {
    if (!this.saved) return;
    this.apply(this.saved);
    this.saved = null;
    removeQuietly(this.statePath);
  }

  private recoverLeftover(): void {
    if (!existsSync(this.statePath)) return;
    let file: StateFile;
    try {
      file = JSON.parse(readFileSync(this.statePath, 'utf8')) as StateFile;
      if (typeof file !== 'object' || file === null || typeof file.state !== 'object') throw new Error('no "state" object');
    } catch (err) {
      this.log.warn(`pcap: ignoring unreadable offload record ${this.statePath}: ${(err as Error).message}`);
      removeQuietly(this.statePath);
      return;
    }
    this.log.info(`pcap: restoring the offloads recorded by uvsd ${file.pid}, which did not exit cleanly (${this.statePath})`);
    this.apply(file.state);
    removeQuietly(this.statePath);
  }

  private apply(state: OffloadState): void {
    // In the reverse order of disable(), so each feature comes back after the ones it was
    // turned off after.
    for (const [ifname, features] of Object.entries(state)) {
      // The record's own features (a record from another version may name others).
      const names = Object.keys(features) as EthtoolFeature[];
      for (let i = names.length - 1; i >= 0; i--) {
        const f = names[i]!;
        const was = features[f];
        if (typeof was !== 'boolean') continue;
        try {
          if (this.ethtool.ethtoolGet(ifname, f) !== was) this.ethtool.ethtoolSet(ifname, f, was);
        } catch (err) {
          this.log.warn(`pcap: cannot restore ${f} ${was ? 'on' : 'off'} on ${ifname}: ${(err as Error).message}`);
        }
      }
    }
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
