// track_interface from /sys/class/net: a link counts as up when its administrative IFF_UP flag
// is set and its operstate is "up" or "unknown" (loopback and some virtual links never report
// "up"). keepalived learns the same from netlink; polling sysfs is enough for a link that
// changes a few times a day, and needs no privileges.

import { readFileSync } from 'node:fs';
import { InterfaceWatcher } from './router';

const IFF_UP = 0x1;

export function linkIsUp(name: string, sysfs = '/sys/class/net'): boolean {
  if (name.includes('/') || name === '.' || name === '..') return false;
  try {
    const flags = Number.parseInt(readFileSync(`${sysfs}/${name}/flags`, 'utf8').trim(), 16);
    if (!(flags & IFF_UP)) return false;
    const oper = readFileSync(`${sysfs}/${name}/operstate`, 'utf8').trim();
    return oper === 'up' || oper === 'unknown';
  } catch {
    // A missing interface is a down one (keepalived puts such an instance in FAULT).
    return false;
  }
}

export class SysfsInterfaceWatcher implements InterfaceWatcher {
  private timer: NodeJS.Timeout | undefined;
  private readonly known = new Map<string, boolean>();

  constructor(private readonly sysfs = '/sys/class/net') {}

  isUp(name: string): boolean {
    const up = linkIsUp(name, this.sysfs);
    this.known.set(name, up);
    return up;
  }

  /** Polls the interfaces asked about so far and reports changes. */
  watch(intervalMs: number, onChange: (name: string, up: boolean) => void): void {
    this.stop();
    this.timer = setInterval(() => {
      for (const [name, was] of this.known) {
        const up = linkIsUp(name, this.sysfs);
        if (up !== was) {
          this.known.set(name, up);
          onChange(name, up);
        }
      }
    }, intervalMs);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
