// What the two-director lab tests share (vrrp-lab.test.ts, sync-failover.test.ts): uvsadm in a
// director's namespace, the tail of both directors' uvsd logs for failure messages, and whether a
// namespace holds the VIP.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNs } from './helpers';
import { UVSADM } from './uvsd-process';

export interface DirectorPair {
  /** uvsadm ARGS in `ns`; throws with both logs unless it exits 0. */
  uvsadm: (ns: string, ...args: string[]) => string;
  /** The last lines of d1's and d2's uvsd logs (lab.sh keeps them in its state dir). */
  logs: () => string;
  /** Whether `ns` holds the VIP on any interface. */
  holds: (ns: string) => boolean;
}

export function directorPair(stateDir: string, vip: string, tailLines = 25): DirectorPair {
  const logs = (): string => {
    const read = (name: string): string => {
      try {
        return readFileSync(join(stateDir, name), 'utf8').split('\n').slice(-tailLines).join('\n');
      } catch {
        return '(none)';
      }
    };
    return `--- d1\n${read('uvsd-d1.log')}\n--- d2\n${read('uvsd-d2.log')}`;
  };
  return {
    uvsadm: (ns, ...args) => {
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, UVSADM, ...args], { encoding: 'utf8', timeout: 20_000 });
      if (r.status !== 0) throw new Error(`uvsadm ${args.join(' ')} in ${ns} failed (${r.status}): ${r.stderr}\n${logs()}`);
      return r.stdout;
    },
    logs,
    holds: (ns) => inNs(ns, 'ip', ['-4', '-o', 'addr', 'show']).stdout.includes(` ${vip}/`),
  };
}
