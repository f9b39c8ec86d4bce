// Helpers for checker tests: temp dirs, servers on loopback that close themselves, a signal.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `uvs-${tag}-`));
}

/** Writes an executable script (mode 0755 by default) and returns its path. */
export function writeScript(dir: string, name: string, body: string, mode = 0o755): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, body, { mode });
  fs.chmodSync(file, mode);
  return file;
}

export function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound then released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function never(): AbortSignal {
  return new AbortController().signal;
}
