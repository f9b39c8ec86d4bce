// `uvsadm -L -n -c` on a big table is streamed (control/server.ts streamConnections): the table is
// listed in pieces of CONN_STREAM_ROWS, the first piece leaves before the rest is read, a client
// that reads slowly holds the daemon back (back-pressure, so memory stays bounded), other clients
// are answered in between, and the text is the same bytes as the listing made whole.
// No timings here: the speed figures are in bench/ (conn-list bench, "first line" and "1M total").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { ConnTable, StateFlag } from '../../src/conn/table';
import { DestTable, ForwardMethod } from '../../src/tables/dest-table';
import { connTableLister } from '../../src/dataplane/conn-lister';
import { ControlHandler } from '../../src/control/handler';
import { ControlServer } from '../../src/control/server';
import { request } from '../../src/control/client';
import { CONN_STREAM_ROWS, LineSplitter, type Response } from '../../src/control/protocol';
import { listConnections } from '../../src/control/format';
import { FMT_NUMERIC } from '../../src/config/ipvsadm-args';
import { ServiceModel } from '../../src/service/model';
import { StatsBook } from '../../src/service/stats';
import type { ConnLister } from '../../src/service/conn-list';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addDest, ip } from '../conn/helpers';
import { FIXTURE_RESOLVER, uvsadm } from './helpers';
import { runUvsadm } from '../../src/control/uvsadm-main';

const NOW = 5_000_000;
const ENTRIES = 200_000;

/** A connection table filled directly with `n` entries, and a lister over it that counts what it
 *  was asked for. */
function bigTable(n: number): { lister: ConnLister; produced: () => number; largestPiece: () => number } {
  const dests = new DestTable(16);
  const slot = addDest(dests, '10.0.1.1', 8080, ForwardMethod.DROUTE);
  const table = new ConnTable(262_144, dests, { workerId: 0 });
  for (let i = 0; i < n; i++) {
    const c = (ip('10.100.0.0') + (i >>> 8)) >>> 0;
    const r = table.insert(6, c, 1024 + (i & 0xff), ip('10.0.0.100'), 80, ip('10.0.1.1'), 8080, slot, ForwardMethod.DROUTE, 0, 1 | StateFlag.NOOUTPUT, 900_000, NOW, -1);
    if (r < 0) throw new Error(`insert ${i} refused (${r})`);
  }
  const base = connTableLister(table, () => NOW);
  let produced = 0;
  let largest = 0;
  return {
    lister: {
      list: (limit) => base.list(limit),
      chunk: (cursor, maxRows) => {
        const piece = base.chunk!(cursor, maxRows);
        produced += piece.rows.length;
        largest = Math.max(largest, piece.rows.length);
        return piece;
      },
    },
    produced: () => produced,
    largestPiece: () => largest,
  };
}

async function startServer(lister: ConnLister): Promise<{ socketPath: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-stream-'));
  const socketPath = join(dir, 'uvsd.sock');
  const handler = new ControlHandler(new ServiceModel({ destCapacity: 16 }), new StatsBook(), { version: '1.2.1', connTableSize: 4096, pid: process.pid }, {
    conns: () => lister,
    settle: () => Promise.resolve(),
    workers: () => [],
  });
  const server = new ControlServer(handler);
  await server.listen(socketPath);
  return {
    socketPath,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const turns = (n: number): Promise<void> => new Promise((resolve) => {
  const again = (k: number): void => (k === 0 ? resolve() : void setTimeout(() => again(k - 1), 5));
  again(n);
});

test('a 200k-entry -L -c is streamed: first piece before the rest is listed, a paused reader holds the daemon back, others are answered meanwhile', async () => {
  const big = bigTable(ENTRIES);
  const srv = await startServer(big.lister);
  try {
    const socket = connect(srv.socketPath);
    socket.setEncoding('utf8');
    const pieces: Response[] = [];
    let receivedRows = 0;
    let producedAtFirst = -1;
    let firstPiece!: () => void;
    const gotFirst = new Promise<void>((resolve) => (firstPiece = resolve));
    let lastPiece!: () => void;
    const gotLast = new Promise<void>((resolve) => (lastPiece = resolve));
    const splitter = new LineSplitter((line) => {
      const res = JSON.parse(line) as Response;
      pieces.push(res);
      assert.ok(res.ok && res.result.kind === 'connection-rows', line.slice(0, 200));
      receivedRows += res.result.rows.length;
      if (pieces.length === 1) {
        producedAtFirst = big.produced();
        // Read nothing more for now: the daemon must stop listing once the socket is full.
        socket.pause();
        firstPiece();
      }
      if (!res.more) lastPiece();
    }, () => assert.fail('line too long'));
    socket.on('data', (chunk: string) => splitter.push(chunk));
    socket.write(`${JSON.stringify({ id: 7, type: 'command', stream: true, command: { cmd: 'list', what: 'connections', service: null, format: FMT_NUMERIC } })}\n`);
    await gotFirst;
    assert.ok(producedAtFirst > 0, 'the table was listed in pieces (ConnLister.chunk)');
    assert.ok(producedAtFirst < ENTRIES / 2, `the first piece arrived after ${producedAtFirst} of ${ENTRIES} entries were listed`);

    // Another client is answered while the listing is under way.
    const pong = await request(srv.socketPath, { type: 'ping' });
    assert.equal(pong.ok, true);
    await turns(20);
    const stalled = big.produced();
    assert.ok(stalled < ENTRIES, 'the listing is not finished while its reader is paused');
    // What the daemon listed beyond what was read is bounded by the socket's buffers, not the table.
    assert.ok(stalled - receivedRows <= 64 * CONN_STREAM_ROWS, `listed ${stalled}, read ${receivedRows}`);
    await turns(10);
    assert.equal(big.produced(), stalled, 'no progress without the reader (back-pressure)');

    socket.resume();
    await gotLast;
    socket.destroy();
    assert.equal(receivedRows, ENTRIES);
    assert.equal(big.produced(), ENTRIES);
    assert.ok(pieces.length >= Math.ceil(ENTRIES / CONN_STREAM_ROWS));
    assert.ok(big.largestPiece() <= CONN_STREAM_ROWS, `a piece of ${big.largestPiece()} records`);
    pieces.forEach((p, i) => {
      assert.equal(p.id, 7);
      assert.equal(p.ok && p.more === true, i < pieces.length - 1, `piece ${i}: more`);
    });
  } finally {
    await srv.close();
  }
});

test('uvsadm -L -n -c over the stream prints the same bytes as the whole listing (200k entries, and an empty table)', async () => {
  const big = bigTable(ENTRIES);
  const srv = await startServer(big.lister);
  try {
    const r = await uvsadm(srv, ['-L', '-n', '-c']);
    assert.equal(r.status, 0, r.stderr);
    const whole = listConnections(big.lister.list(1_000_000), FMT_NUMERIC, FIXTURE_RESOLVER);
    assert.equal(r.stdout.length, whole.length);
    assert.ok(r.stdout === whole, 'streamed output differs from the whole listing');
    assert.equal(r.stdout.split('\n').length - 1, ENTRIES + 2);
  } finally {
    await srv.close();
  }
  const empty = bigTable(0);
  const srv2 = await startServer(empty.lister);
  try {
    const r = await uvsadm(srv2, ['-L', '-n', '-c']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, listConnections([], FMT_NUMERIC, FIXTURE_RESOLVER));
  } finally {
    await srv2.close();
  }
});

test('a lister that cannot list in pieces is sent whole, once, on the streamed request', async () => {
  const rows = bigTable(10).lister.list(100);
  const srv = await startServer({ list: () => rows });
  try {
    const r = await uvsadm(srv, ['-L', '-n', '-c']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, listConnections(rows, FMT_NUMERIC, FIXTURE_RESOLVER));
  } finally {
    await srv.close();
  }
});

test('uvsadm waits for a backed-up stdout before reading more of the stream, and loses nothing', async () => {
  const big = bigTable(50_000);
  const srv = await startServer(big.lister);
  try {
    // stdout modelled as a slow pipe: text is queued, and written out only when it drains.
    let out = '';
    let queued = '';
    let flushedRows = -2; // the two heading lines
    let waits = 0;
    let maxAhead = 0;
    let draining: Promise<void> | undefined;
    const status = await runUvsadm(['-L', '-n', '-c'], {
      program: 'uvsadm',
      stdout: (t) => {
        queued += t;
      },
      stdoutBackedUp: () => {
        if (queued === '') return undefined;
        // One drain at a time, as a pipe has: whatever is written meanwhile waits for it too.
        if (draining !== undefined) return draining;
        waits++;
        // The first time, the output stays backed up until the daemon (same process) has listed
        // everything or 100 turns have passed: with back-pressure it stalls far short of that.
        const turnsLeft = waits === 1 ? 100 : 1;
        draining = new Promise<void>((resolve) => {
          const drain = (k: number): void => {
            if (k > 0 && big.produced() < 50_000) {
              setTimeout(() => drain(k - 1), 5);
              return;
            }
            maxAhead = Math.max(maxAhead, big.produced() - flushedRows);
            for (let i = queued.indexOf('\n'); i >= 0; i = queued.indexOf('\n', i + 1)) flushedRows++;
            out += queued;
            queued = '';
            draining = undefined;
            resolve();
          };
          drain(turnsLeft);
        });
        return draining;
      },
      stderr: (t) => assert.fail(t),
      readStdin: () => Promise.resolve(''),
      env: { UVS_SOCKET: srv.socketPath },
      resolver: FIXTURE_RESOLVER,
    });
    assert.equal(status, 0);
    out += queued;
    assert.ok(out === listConnections(big.lister.list(1_000_000), FMT_NUMERIC, FIXTURE_RESOLVER), 'same bytes as the whole listing');
    assert.ok(waits >= Math.floor(50_000 / CONN_STREAM_ROWS) - 1, `${waits} waits`);
    // While uvsadm waited, the daemon listed at most what the socket buffers hold.
    assert.ok(maxAhead < 25_000, `the daemon ran ${maxAhead} records ahead of the output`);
  } finally {
    await srv.close();
  }
});
