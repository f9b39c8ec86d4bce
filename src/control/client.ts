// uvsadm's side of the control socket: one request, one response.

import { connect } from 'node:net';
import { LineSplitter } from './protocol';
import type { Request, Response } from './protocol';
import { UvsError } from '../runtime/errors';

/** No daemon answers on the socket (none started, or it died and left its socket behind). */
export class NoDaemonError extends UvsError {
  constructor(readonly socketPath: string, readonly reason: string) {
    super('UVS_ERR_NO_DAEMON', `no uvsd is running in this network namespace (${reason} on ${socketPath})`);
  }
}

export class ControlClientError extends UvsError {
  constructor(message: string) {
    super('UVS_ERR_CONTROL_CLIENT', message);
  }
}

type RequestBody = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

let nextId = 1;

/** Sends one request and resolves with the daemon's response. */
export function request(socketPath: string, body: RequestBody, timeoutMs = 10_000): Promise<Response> {
  return exchange(socketPath, body, timeoutMs, null);
}

/**
 * Sends one request whose answer may come in pieces (a streamed `-L -c`): `onPart` gets each
 * piece marked `more`, the promise the last one. `timeoutMs` is the longest silence between two
 * pieces, not the whole: a listing of a million entries takes longer than one answer may.
 */
export function requestStream(socketPath: string, body: RequestBody, onPart: (res: Response) => void | Promise<void>, timeoutMs = 10_000): Promise<Response> {
  return exchange(socketPath, body, timeoutMs, onPart);
}

function exchange(socketPath: string, body: RequestBody, timeoutMs: number, onPart: ((res: Response) => void | Promise<void>) | null): Promise<Response> {
  const id = nextId++;
  const req = { ...body, id };
  return new Promise((resolve, reject) => {
    let settled = false;
    const socket = connect(socketPath);
    const finish = (err: Error | null, res?: Response): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(res!);
    };
    const silence = (): Error => new ControlClientError(`uvsd did not answer within ${timeoutMs} ms on ${socketPath}`);
    let timer = setTimeout(() => finish(silence()), timeoutMs);
    const splitter = new LineSplitter(
      (line) => {
        if (settled) return;
        let parsed: Response;
        try {
          parsed = JSON.parse(line) as Response;
        } catch {
          finish(new ControlClientError(`uvsd sent a malformed response on ${socketPath}`));
          return;
        }
        if (parsed.id !== id) return;
        if (onPart !== null && parsed.ok && parsed.more === true) {
          clearTimeout(timer);
          timer = setTimeout(() => finish(silence()), timeoutMs);
          let wait: void | Promise<void>;
          try {
            wait = onPart(parsed);
          } catch (err) {
            finish(err as Error);
            return;
          }
          if (wait !== undefined) {
            // Our output is backed up: stop reading (the daemon then stops listing) until it drains.
            clearTimeout(timer);
            socket.pause();
            wait.then(() => {
              if (settled) return;
              timer = setTimeout(() => finish(silence()), timeoutMs);
              socket.resume();
            }, (err: unknown) => finish(err as Error));
          }
          return;
        }
        finish(null, parsed);
      },
      () => finish(new ControlClientError(`uvsd sent an oversized response on ${socketPath}`)),
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('data', (chunk: string) => splitter.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') {
        finish(new NoDaemonError(socketPath, err.code === 'ENOENT' ? 'no socket' : 'no answer'));
      } else {
        finish(new ControlClientError(`cannot talk to uvsd on ${socketPath}: ${err.message}`));
      }
    });
    socket.on('close', () => finish(new ControlClientError(`uvsd closed the connection on ${socketPath} without answering`)));
  });
}
