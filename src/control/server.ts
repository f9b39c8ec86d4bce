// uvsd's control socket: a unix stream socket, mode 0600, JSON lines (protocol.ts).
//
// Starting: a socket file left by a crashed daemon is replaced; one that still answers belongs to a
// live uvsd in this namespace, and this one refuses to start.

import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { dirname } from 'node:path';
import { IpvsError } from '../service/model';
import type { ControlHandler } from './handler';
import { CONN_STREAM_ROWS, connRow, LineSplitter, MAX_LINE_BYTES, PROTOCOL_VERSION } from './protocol';
import { CONN_LIST_LIMIT } from './handler';
import type { ConnRecord } from '../service/conn-list';
import type { Request, Response } from './protocol';
import { nullLogger, type Logger } from '../runtime/log';
import { UvsError } from '../runtime/errors';
import { SysctlError, formatSysctl } from './sysctl';
import { arrayBatch, PACKED_BATCH_FORMAT, PackedBatch, PackedBatchError, type BatchSource } from './batch-codec';

/** Real servers (with their statistics) a turn in a `-L` / `-S` answer (3-4 ms of work here). */
export const LIST_PIECE_DESTS = 500;

/** Connections open at once; at the cap the one idle the longest is closed for a new one. */
export const MAX_CONNECTIONS = 64;
/** A connection that sends nothing and waits for nothing this long is closed. */
export const IDLE_TIMEOUT_MS = 30_000;

export class DaemonAlreadyRunningError extends UvsError {
  constructor(readonly socketPath: string) {
    super('UVS_ERR_DAEMON_RUNNING', `another uvsd already runs in this network namespace: it answers on ${socketPath}; stop it first`);
  }
}

/** True when something accepts connections on `path` (within `timeoutMs`). */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (v: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(true), timeoutMs); // a live but busy daemon: do not steal
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

export class ControlServer {
  private server: Server | null = null;
  /** Open connections, least recently active first (a Map keeps insertion order; touch() moves
   *  one to the end), each with whether a request of it is being answered. */
  private readonly sockets = new Map<Socket, { busy: () => boolean }>();
  private socketIno = -1;
  path = '';

  constructor(private readonly handler: ControlHandler, private readonly log: Logger = nullLogger) {}

  async listen(path: string): Promise<void> {
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (let attempt = 0; attempt < 3; attempt++) {
      await this.clearStale(path);
      try {
        await this.bind(path);
        this.path = path;
        this.socketIno = lstatSync(path).ino;
        return;
      } catch (err) {
        // Another uvsd bound between our check and our bind: check again who answers.
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    throw new DaemonAlreadyRunningError(path);
  }

  private async clearStale(path: string): Promise<void> {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return;
    }
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; remove it or choose another --socket`);
    if (await socketAnswers(path)) throw new DaemonAlreadyRunningError(path);
    this.log.notice(`replacing stale control socket ${path} (no daemon answers on it)`);
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private bind(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.serve(socket));
      // The socket file is created 0600 from the start: no window where others could connect.
      const oldMask = process.umask(0o177);
      const onError = (err: Error): void => {
        process.umask(oldMask);
        reject(err);
      };
      server.once('error', onError);
      server.listen(path, () => {
        process.umask(oldMask);
        server.off('error', onError);
        chmodSync(path, 0o600);
        server.on('error', (err) => this.log.error(`control socket error: ${err.message}`));
        this.server = server;
        resolve();
      });
    });
  }

  private serve(socket: Socket): void {
    // At the cap, the connection idle the longest makes room: a client that opens connections and
    // sends nothing cannot lock the administrator out, and a busy one (a request in flight) is kept.
    if (this.sockets.size >= MAX_CONNECTIONS) this.evictIdlest();
    let inFlight = 0;
    let closing = false;
    this.sockets.set(socket, { busy: () => inFlight > 0 });
    socket.setEncoding('utf8');
    const splitter = new LineSplitter(
      (line) => {
        inFlight++;
        this.answer(socket, line, () => {
          inFlight--;
          this.touch(socket);
        });
      },
      () => {
        // Nothing more of this connection is read or kept: answer, then close it.
        closing = true;
        this.send(socket, { id: 0, ok: false, protocolError: `request line too long (more than ${MAX_LINE_BYTES} bytes)` });
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      },
    );
    socket.on('data', (chunk: string) => {
      if (closing) return;
      this.touch(socket);
      splitter.push(chunk);
    });
    // Idle: nothing received and nothing in flight for IDLE_TIMEOUT_MS (uvsadm sends its request
    // at once and waits for the answer; a request being applied is not idle).
    socket.setTimeout(IDLE_TIMEOUT_MS, () => {
      if (inFlight === 0) socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private touch(socket: Socket): void {
    const entry = this.sockets.get(socket);
    if (entry === undefined) return;
    this.sockets.delete(socket);
    this.sockets.set(socket, entry);
  }

  private evictIdlest(): void {
    for (const [socket, entry] of this.sockets) {
      if (entry.busy()) continue;
      this.sockets.delete(socket);
      socket.destroy();
      return;
    }
  }

  /** Answers one request line; `done` runs once its answer is sent (now, or once the data plane
   *  has settled for a change). */
  private answer(socket: Socket, line: string, done: () => void): void {
    if (!this.answerRequest(socket, line, done)) done();
  }

  /** True when the answer is sent later, by the returned promise chain, which then calls `finish`. */
  private answerRequest(socket: Socket, line: string, finish: () => void): boolean {
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch {
      this.send(socket, { id: 0, ok: false, protocolError: 'request is not JSON' });
      return false;
    }
    const id = typeof req.id === 'number' ? req.id : 0;
    try {
      switch (req.type) {
        case 'ping':
          this.send(socket, { id, ok: true, result: { kind: 'pong', info: this.handler.info } });
          return false;
        case 'workers':
          this.send(socket, { id, ok: true, result: { kind: 'workers', workers: this.handler.workers(), linkWatch: this.handler.linkWatch(), fastPath: this.handler.fastPath() } });
          return false;
        case 'sysctl': {
          let values;
          try {
            values = this.handler.sysctl(req.name, req.value);
          } catch (err) {
            if (!(err instanceof SysctlError)) throw err;
            this.send(socket, { id, ok: false, protocolError: err.message });
            return false;
          }
          if (req.value !== undefined) this.log.info(`uvsadm --sysctl: ${values.map(formatSysctl).join(', ')}`);
          this.send(socket, { id, ok: true, result: { kind: 'sysctl', values } });
          return false;
        }
        case 'checks':
          this.send(socket, { id, ok: true, result: { kind: 'checks', checks: this.handler.checks() } });
          return false;
        case 'vrrp':
          // The VRRP thread is asked for its counters (bounded by 1 s there).
          void this.handler.vrrp().then(
            (instances) => this.send(socket, { id, ok: true, result: { kind: 'vrrp', instances } }),
            (err: Error) => this.send(socket, { id, ok: false, protocolError: `vrrp: ${err.message}` }),
          ).finally(finish);
          return true;
        case 'command': {
          const c = req.command;
          if (req.stream === true && c.cmd === 'list' && c.what === 'connections') {
            this.streamConnections(socket, id, finish);
            return true;
          }
          if ((c.cmd === 'list' && c.what === 'all') || c.cmd === 'save') {
            this.sendListing(socket, id, finish);
            return true;
          }
          const result = this.handler.execute(req.command);
          // Answer once the data plane runs the change, as ipvsadm returns once the kernel has it.
          void this.handler.settle().then(() => {
            this.send(socket, { id, ok: true, result });
            finish();
          });
          return true;
        }
        case 'batch': {
          let batch: BatchSource;
          try {
            batch = batchOf(req);
          } catch (err) {
            if (!(err instanceof PackedBatchError)) throw err;
            this.send(socket, { id, ok: false, protocolError: err.message });
            return false;
          }
          let r: ReturnType<ControlHandler['executeBatch']>;
          try {
            r = this.handler.executeBatch(batch);
          } catch (err) {
            // Found while the batch was tried on the check copy: nothing live has changed.
            if (!(err instanceof PackedBatchError)) throw err;
            this.send(socket, { id, ok: false, protocolError: err.message });
            return false;
          }
          if ('error' in r) {
            if (r.error.errno === 'ENOMEM') this.log.error(`uvsadm -R refused at command ${(r.error.index ?? 0) + 1} of ${batch.count}, nothing applied: ${r.error.detail}`);
            this.send(socket, { id, ok: false, error: r.error });
          }
          else {
            void this.handler.settle().then(() => {
              this.send(socket, { id, ok: true, result: r.result });
              finish();
            });
            return true;
          }
          return false;
        }
        default:
          this.send(socket, { id, ok: false, protocolError: `unknown request type (protocol version ${PROTOCOL_VERSION})` });
      }
    } catch (err) {
      if (err instanceof IpvsError) {
        // A full table is the operator's to fix (a uvsd option), and uvsadm can only print
        // ipvsadm's "Memory allocation problem": say here which cap was reached.
        if (err.errno === 'ENOMEM') this.log.error(`uvsadm command refused: ${err.message}`);
        this.send(socket, { id, ok: false, error: { op: err.op, errno: err.errno, detail: err.message } });
      } else {
        this.log.error(`request failed: ${(err as Error).stack ?? String(err)}`);
        this.send(socket, { id, ok: false, protocolError: `uvsd: ${(err as Error).message}` });
      }
    }
    return false;
  }

  /**
   * A streamed `-L -c`: the connection table is walked CONN_STREAM_ROWS records at a time, each
   * piece sent as one line as soon as it is read, so the first line leaves at once and neither
   * side ever holds the whole listing (ipvsadm reads the kernel's table the same way, through
   * /proc/net/ip_vs_conn). Between pieces the event loop runs (setImmediate), so other clients
   * are answered meanwhile; when the client reads slower than we list, the next piece waits
   * for the socket to drain (back-pressure), so memory stays bounded by the socket's buffer.
   */
  private streamConnections(socket: Socket, id: number, finish: () => void): void {
    let cursor = 0;
    let sent = 0;
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      socket.off('close', end);
      finish();
    };
    socket.once('close', end);
    const step = (): void => {
      if (ended) return;
      if (socket.destroyed) return end();
      let piece: { rows: ConnRecord[]; next: number };
      try {
        piece = this.handler.connChunk(cursor, Math.min(CONN_STREAM_ROWS, CONN_LIST_LIMIT - sent));
      } catch (err) {
        this.log.error(`connection listing failed: ${(err as Error).stack ?? String(err)}`);
        this.send(socket, { id, ok: false, protocolError: `uvsd: ${(err as Error).message}` });
        return end();
      }
      cursor = piece.next;
      sent += piece.rows.length;
      const last = cursor < 0 || sent >= CONN_LIST_LIMIT;
      const rows = piece.rows.map(connRow);
      const res: Response = last
        ? { id, ok: true, result: { kind: 'connection-rows', rows } }
        : { id, ok: true, more: true, result: { kind: 'connection-rows', rows } };
      const flushed = socket.write(`${JSON.stringify(res)}\n`);
      this.touch(socket);
      if (last) return end();
      if (flushed) setImmediate(step);
      else socket.once('drain', step);
    };
    step();
  }

  /**
   * `-L` and `-S`: the same one-line answer as any command's, built over several turns
   * (ControlHandler.listedPieces, LIST_PIECE_DESTS real servers a turn, each piece encoded as it
   * is made) and written at the end in one turn, so no other answer on this socket can come
   * between its parts. Sent once the data plane has settled, as every command's answer.
   */
  private sendListing(socket: Socket, id: number, finish: () => void): void {
    const pieces = this.handler.listedPieces(LIST_PIECE_DESTS);
    const empty: Response = { id, ok: true, result: { kind: 'services', info: this.handler.info, services: [] } };
    const whole = JSON.stringify(empty);
    const cut = whole.lastIndexOf('[]') + 1;
    const parts: Buffer[] = [Buffer.from(whole.slice(0, cut))];
    let first = true;
    const step = (): void => {
      if (socket.destroyed) return finish();
      let piece: IteratorResult<string, void>;
      try {
        piece = pieces.next();
      } catch (err) {
        this.log.error(`listing failed: ${(err as Error).stack ?? String(err)}`);
        this.send(socket, { id, ok: false, protocolError: `uvsd: ${(err as Error).message}` });
        return finish();
      }
      if (piece.done !== true) {
        // An empty piece: a turn spent building the listing's entries (listedPieces).
        if (piece.value !== '') {
          parts.push(Buffer.from(first ? piece.value : `,${piece.value}`));
          first = false;
        }
        setImmediate(step);
        return;
      }
      parts.push(Buffer.from(`${whole.slice(cut)}\n`));
      for (const part of parts) socket.write(part);
      finish();
    };
    void this.handler.settle().then(step);
  }

  private send(socket: Socket, res: Response): void {
    if (!socket.destroyed) socket.write(`${JSON.stringify(res)}\n`);
  }

  /** Stops accepting, drops open connections and removes the socket file if it is still ours. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    for (const s of this.sockets.keys()) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      if (lstatSync(this.path).ino === this.socketIno) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

/** A batch request's commands: packed (uvsadm) or as JSON objects (older clients). */
function batchOf(req: Request & { type: 'batch' }): BatchSource {
  if (req.packed !== undefined) {
    const p = req.packed;
    if (p === null || typeof p !== 'object' || typeof p.data !== 'string' || !Number.isInteger(p.count)) throw new PackedBatchError('packed batch: malformed');
    if (p.format !== PACKED_BATCH_FORMAT) throw new PackedBatchError(`packed batch: format "${String(p.format)}" unknown (this uvsd reads ${PACKED_BATCH_FORMAT})`);
    return new PackedBatch(p.data, p.count);
  }
  if (!Array.isArray(req.commands)) throw new PackedBatchError('batch: neither commands nor packed');
  return arrayBatch(req.commands);
}
