/**
 * The Linux implementation of validate.ts's Machine: interfaces of the current network namespace
 * from /sys/class/net, programs through PATH like execvp(3), users from /etc/passwd.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Machine, MachineInterface } from './validate';

/** IFF_LOOPBACK from <linux/if.h>. */
const IFF_LOOPBACK = 0x8;

export function linuxMachine(env: NodeJS.ProcessEnv = process.env): Machine {
  let users: Set<string> | null = null;
  return {
    getInterface(name: string): MachineInterface | null {
      if (name.length === 0 || name.includes('/') || name === '.' || name === '..') return null;
      try {
        const flags = parseInt(fs.readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
        return { name, loopback: (flags & IFF_LOOPBACK) !== 0 };
      } catch {
        return null;
      }
    },
    findExecutable(program: string): string | null {
      const candidates = program.includes('/') ? [program] : (env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').map((d) => path.join(d || '.', program));
      for (const c of candidates) {
        try {
          if (fs.statSync(c).isFile()) {
            fs.accessSync(c, fs.constants.X_OK);
            return c;
          }
        } catch {
          // not here; try the next PATH entry
        }
      }
      return null;
    },
    userExists(name: string): boolean {
      if (!users) {
        users = new Set();
        try {
          for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
            const user = line.split(':', 1)[0];
            if (user) users.add(user);
          }
        } catch {
          // no passwd file: only root is known
        }
        users.add('root');
      }
      return users.has(name);
    },
  };
}

/** keepalived's default config id for @id lines (without -i): the host name up to the first dot. */
export function defaultConfigId(): string {
  return os.hostname().split('.')[0]!; // split() returns at least one element
}
