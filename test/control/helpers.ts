// Test helpers: an in-process control plane on a temporary socket, and uvsadm run against it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableResolver } from '../../src/config/ipvsadm-addr';
import type { NameResolver } from '../../src/config/ipvsadm-addr';
import { ControlHandler } from '../../src/control/handler';
import { NO_CONNECTIONS } from '../../src/service/conn-list';
import { ControlServer } from '../../src/control/server';
import { runUvsadm } from '../../src/control/uvsadm-main';
import { ServiceModel } from '../../src/service/model';
import { StatsBook } from '../../src/service/stats';
import { ConnTable } from '../../src/conn/table';
import { SyncError, SyncManager } from '../../src/sync/daemon';
import type { Logger } from '../../src/runtime/log';

const QUIET: Logger = { error() {}, warn() {}, notice() {}, info() {}, debug() {} };

/** The sync daemons of a golden lab: the interfaces eth0 (MTU 1500) and eth1 (MTU 9000) exist;
 *  the daemons open no socket. */
function labSync(model: ServiceModel): SyncManager {
  const mtus: Record<string, number> = { eth0: 1500, eth1: 9000 };
  return new SyncManager(
    new ConnTable(64, model.destTable, { workerId: 255 }),
    () => -1,
    () => 0,
    QUIET,
    (name) => {
      const mtu = mtus[name];
      if (mtu === undefined) throw new SyncError('ENODEV', `Unknown mcast interface: ${name}`);
      return { name, address: '192.0.2.1', mtu };
    },
    (info) => ({ info, counters: { messages: 0, conns: 0, dropped: new Map(), skipped: 0, full: 0, sendErrors: 0 }, start() {}, stop() {} }),
  );
}

/** The names the golden files assume: http is 80/tcp, domain 53/tcp and 53/udp; no host names. */
export const FIXTURE_RESOLVER: NameResolver = new TableResolver({
  hosts: [],
  services: [['http', 80, 'tcp'], ['www', 80, 'tcp'], ['domain', 53, 'tcp'], ['domain', 53, 'udp']],
});

export interface Lab {
  dir: string;
  socketPath: string;
  model: ServiceModel;
  stats: StatsBook;
  handler: ControlHandler;
  server: ControlServer;
  close(): Promise<void>;
}

export async function startLab(): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-control-'));
  const socketPath = join(dir, 'uvsd.sock');
  const model = new ServiceModel({ destCapacity: 256 });
  const stats = new StatsBook();
  const sync = labSync(model);
  const handler = new ControlHandler(model, stats, { version: '1.2.1', connTableSize: 4096, pid: process.pid }, {
    conns: () => NO_CONNECTIONS,
    settle: () => Promise.resolve(),
    workers: () => [],
    sync: () => sync,
  });
  const server = new ControlServer(handler);
  await server.listen(socketPath);
  return {
    dir, socketPath, model, stats, handler, server,
    async close() {
      sync.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export async function uvsadm(lab: { socketPath: string }, argv: readonly string[], stdin = '', resolver = FIXTURE_RESOLVER): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const status = await runUvsadm(argv, {
    program: 'uvsadm',
    stdout: (t) => { stdout += t; },
    stderr: (t) => { stderr += t; },
    readStdin: () => Promise.resolve(stdin),
    env: { UVS_SOCKET: lab.socketPath },
    resolver,
  });
  return { status, stdout, stderr };
}

export interface GoldenStep {
  line: number;
  argv: string[];
  stdin: string;
  stdout: string;
  stderr: string;
  status: number;
}

/** Reads a golden file: "$ uvsadm ARGS", then "< " stdin lines, stdout lines, "!" stderr lines,
 *  "=exit N". Lines starting with "#" before the first command are comments. */
export function parseGolden(text: string): GoldenStep[] {
  const steps: GoldenStep[] = [];
  let current: GoldenStep | null = null;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    if (line.startsWith('$ uvsadm')) {
      current = { line: i + 1, argv: line.slice('$ uvsadm'.length).split(/\s+/).filter((w) => w !== ''), stdin: '', stdout: '', stderr: '', status: 0 };
      steps.push(current);
      return;
    }
    if (!current) {
      if (line.startsWith('#') || line === '') return;
      throw new Error(`golden line ${i + 1}: text before the first command: ${line}`);
    }
    const step: GoldenStep = current;
    if (line.startsWith('< ')) step.stdin += `${line.slice(2)}\n`;
    else if (line.startsWith('!')) step.stderr += `${line.slice(1)}\n`;
    else if (line.startsWith('=exit ')) step.status = Number(line.slice(6));
    else step.stdout += `${line}\n`;
  });
  return steps;
}
