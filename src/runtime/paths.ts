// Where the control socket of this network namespace lives.
//
// /run/uvs/<id>.sock, where <id> is the inode number of /proc/self/ns/net: every process in the
// same network namespace sees the same inode, so `ip netns exec NS uvsadm ...` reaches the uvsd of
// NS without flags, and two namespaces never share a socket. `--socket PATH` or UVS_SOCKET override.

import { statSync } from 'node:fs';
import { join } from 'node:path';

export const SOCKET_DIR = '/run/uvs';

/** The inode of this process's network namespace (`ip netns identify` compares the same). */
export function netnsInode(): number {
  try {
    return statSync('/proc/self/ns/net').ino;
  } catch (err) {
    throw new Error(`cannot identify the network namespace: stat /proc/self/ns/net: ${(err as Error).message}`, { cause: err });
  }
}

export function defaultSocketPath(): string {
  return join(SOCKET_DIR, `${netnsInode()}.sock`);
}

/** --socket wins, then UVS_SOCKET, then the namespace's default. */
export function resolveSocketPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  const fromEnv = env['UVS_SOCKET'];
  if (fromEnv) return fromEnv;
  return defaultSocketPath();
}
