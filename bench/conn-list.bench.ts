// `uvsadm -L -n -c` on a big connection table (issue 13, "Listing a big table"): the time to the
// first line of output, the time to the whole listing, and how much uvsd's memory grew meanwhile.
// The daemon side (ControlServer over a ConnTable filled directly) runs here; uvsadm runs as its
// own process (bin/uvsadm), as an administrator runs it. 1,000,000 entries (--quick: 50,000).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnTable, StateFlag } from '../src/conn/table';
import { DestField, DestTable, ForwardMethod } from '../src/tables/dest-table';
import { connTableLister } from '../src/dataplane/conn-lister';
import { ControlHandler } from '../src/control/handler';
import { ControlServer } from '../src/control/server';
import { ServiceModel } from '../src/service/model';
import { StatsBook } from '../src/service/stats';
import { requestStream } from '../src/control/client';
import { FMT_NUMERIC } from '../src/config/ipvsadm-args';
import type { BenchOptions, BenchRow } from './lib';

const GROUP = 'uvsadm -L -n -c';

export async function collect(opts: BenchOptions): Promise<BenchRow[]> {
  const n = opts.quick ? 50_000 : 1_000_000;
  const dests = new DestTable(4);
  const slot = dests.allocate();
  dests.set(slot, DestField.ADDR, 0x0a000101);
  dests.set(slot, DestField.PORT, 8080);
  dests.set(slot, DestField.FWD, ForwardMethod.DROUTE);
  const table = new ConnTable(Math.max(n, 1024), dests, { workerId: 0 });
  const now = 1e9;
  for (let i = 0; i < n; i++) {
    table.insert(6, (0x64400000 + (i >>> 6)) | 0, 1024 + (i & 63), 0x0a000064, 80, 0x0a000101, 8080, slot, ForwardMethod.DROUTE, 0, 1 | StateFlag.NOOUTPUT, 900_000, now, -1);
  }
  const dir = mkdtempSync(join(tmpdir(), 'uvs-bench-list-'));
  const socketPath = join(dir, 'uvsd.sock');
  const handler = new ControlHandler(new ServiceModel({ destCapacity: 16 }), new StatsBook(), { version: '1.2.1', connTableSize: 4096, pid: process.pid }, {
    conns: () => connTableLister(table, () => now),
    settle: () => Promise.resolve(),
    workers: () => [],
  });
  const server = new ControlServer(handler);
  await server.listen(socketPath);
  try {
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let rssMax = rss0;
    const sampler = setInterval(() => {
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
    }, 20);
    // The daemon's side alone: request sent → first piece, from a client in this process.
    let firstPieceMs = -1;
    const tReq = performance.now();
    const last = await requestStream(socketPath, { type: 'command', command: { cmd: 'list', what: 'connections', service: null, format: FMT_NUMERIC }, stream: true }, () => {
      if (firstPieceMs < 0) firstPieceMs = performance.now() - tReq;
    });
    const inProcessMs = performance.now() - tReq;
    if (!last.ok) throw new Error('streamed listing refused');
    if (firstPieceMs < 0) firstPieceMs = inProcessMs;
    // uvsadm's own start (node and its modules), to read the process rows against.
    const startup = await runUvsadm(socketPath, ['--uvs-version']);
    const r = await runUvsadm(socketPath, ['-L', '-n', '-c']);
    clearInterval(sampler);
    const lines = r.lines;
    if (r.status !== 0 || lines !== n + 2) throw new Error(`uvsadm -L -n -c: exit ${r.status}, ${lines} lines for ${n} entries: ${r.stderr.slice(0, 200)}`);
    const grewMiB = (rssMax - rss0) / 2 ** 20;
    const note = `${n} entries, ${(r.bytes / 2 ** 20).toFixed(0)} MiB of text; uvsadm is its own process`;
    return [
      { group: GROUP, name: `daemon: request → first piece at ${n} entries`, value: firstPieceMs, unit: 'ms', target: '<= 100 ms', met: firstPieceMs <= 100, note: 'client in the daemon\'s process (requestStream), no uvsadm start-up' },
      { group: GROUP, name: `daemon: request → last piece of ${n} entries`, value: inProcessMs, unit: 'ms', note: 'the same client; records parsed, not formatted' },
      { group: GROUP, name: 'uvsadm start-up alone (--uvs-version, first output)', value: startup.firstMs, unit: 'ms' },
      { group: GROUP, name: `uvsadm process: first line of output at ${n} entries`, value: r.firstMs, unit: 'ms', note: `${note}; includes uvsadm's start-up` },
      { group: GROUP, name: `uvsadm process: whole listing of ${n} entries`, value: r.totalMs, unit: 'ms', target: n >= 1_000_000 ? '<= 10 s (uvsadm timeout)' : undefined, met: n >= 1_000_000 ? r.totalMs <= 10_000 : undefined, note },
      { group: GROUP, name: `uvsd RSS growth while listing ${n} entries`, value: grewMiB, unit: 'MiB', note: 'sampled every 20 ms; bounded by the socket buffers, not the table' },
    ];
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function runUvsadm(socketPath: string, args: string[]): Promise<{ status: number; firstMs: number; totalMs: number; lines: number; bytes: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const bin = join(__dirname, '..', '..', 'bin', 'uvsadm');
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, UVS_SOCKET: socketPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    let firstMs = -1;
    let lines = 0;
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      if (firstMs < 0) firstMs = performance.now() - t0;
      bytes += b.length;
      for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) lines++;
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? 1, firstMs, totalMs: performance.now() - t0, lines, bytes, stderr }));
  });
}
