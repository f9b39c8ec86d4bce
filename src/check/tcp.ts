// TCP_CHECK: the server is up when a TCP connection to connect_ip:connect_port completes within
// connect_timeout (keepalived's check_tcp.c: connect, then close at once; no data exchanged).
import * as net from 'node:net';
import type { CheckTarget, CheckResult, Checker } from './checker';
import { Trail, abortReason, connectTimeoutMs, deadline, endpoint, errorText } from './checker';
import type { ConnectionOptions, TcpCheckOptions } from './types';

/**
 * Opens a TCP connection honouring bindto/bind_port and a deadline. Resolves with the connected
 * socket or rejects with an error naming the step; the caller owns (and must destroy) the socket.
 */
export function connectTcp(options: ConnectionOptions, to: CheckTarget, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error(abortReason(signal)));
      return;
    }
    const socket = net.connect({
      host: to.address,
      port: to.port,
      localAddress: options.bindTo,
      localPort: options.bindPort,
      // a health check must not wait on the resolver: addresses only
      family: net.isIP(to.address) || undefined,
    });
    const onAbort = (): void => {
      socket.destroy();
      reject(new Error(abortReason(signal)));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    });
  });
}

export class TcpChecker implements Checker {
  readonly kind = 'TCP_CHECK' as const;

  constructor(readonly options: TcpCheckOptions) {}

  async check(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const trail = new Trail();
    const to = endpoint(this.options, target);
    const limit = connectTimeoutMs(this.options);
    trail.add(`connect ${to.address}:${to.port}${this.options.bindTo ? ` from ${this.options.bindTo}` : ''} (timeout ${limit} ms)`);
    const d = deadline(signal, limit, 'connect');
    try {
      const socket = await connectTcp(this.options, to, d.signal);
      socket.destroy();
      return trail.ok('connected');
    } catch (err) {
      return trail.fail(`connect failed: ${errorText(err)}`);
    } finally {
      d.dispose();
    }
  }
}
