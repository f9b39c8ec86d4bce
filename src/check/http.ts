// HTTP_GET and SSL_GET (keepalived's check_http.c). For each `url { }` block, one request
// "GET path HTTP/1.0" with keepalived's headers, over TCP or TLS; the url passes when the status
// is in status_code (default 200-299) and, when digest is set, the MD5 of the body equals it.
// The server is up only when every url passes. The request is written by hand, as keepalived
// does, so the bytes on the wire are keepalived's:
//   GET <path> HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: <host>[:<port>]\r\n\r\n
// (1.0C adds "Connection: close", 1.1 uses HTTP/1.1 and "Connection: close").
// SSL_GET verifies nothing about the certificate, like keepalived without an SSL { ca } block.
// connect_timeout bounds every step (keepalived re-arms it per read/write); the whole url is
// additionally bounded so a server trickling bytes cannot hold a check forever.
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { CheckTarget, CheckResult, Checker } from './checker';
import { Trail, abortReason, connectTimeoutMs, deadline, endpoint, errorText } from './checker';
import { connectTcp } from './tcp';
import type { HttpGetOptions, HttpUrlOptions } from './types';

/** Bodies larger than this are hashed as they stream but the check refuses to buffer more. */
const MAX_HEADER_BYTES = 64 * 1024;
/** A chunk-size line (hex size, extensions) or a trailer line longer than this fails the check. */
export const MAX_CHUNK_LINE_BYTES = 4096;

/**
 * RFC 9112 §7.1 chunked transfer coding, decoded as it streams: chunk data goes to `onData` as it
 * arrives, never buffered whole, whatever size a chunk announces; only a size or trailer line is
 * held, and at most MAX_CHUNK_LINE_BYTES of it. One real server cannot make the director hold
 * more than that (the check's timeout bounds the time).
 */
export class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-cr' | 'data-lf' | 'trailer' | 'done' = 'size';
  private remaining = 0;
  private line = '';

  constructor(private readonly onData: (data: Buffer) => void) {}

  /** Bytes held back (a partial size or trailer line). */
  get held(): number {
    return this.line.length;
  }

  /** 'more', 'done' (the last chunk and the trailers ended), or else an error message. */
  feed(data: Buffer): string {
    let at = 0;
    while (at < data.length) {
      switch (this.state) {
        case 'data': {
          const take = Math.min(this.remaining, data.length - at);
          this.onData(data.subarray(at, at + take));
          this.remaining -= take;
          at += take;
          if (this.remaining === 0) this.state = 'data-cr';
          break;
        }
        case 'data-cr':
        case 'data-lf': {
          const want = this.state === 'data-cr' ? 0x0d : 0x0a;
          if (data[at] !== want) return 'chunk data not followed by CRLF in chunked body';
          at++;
          this.state = this.state === 'data-cr' ? 'data-lf' : 'size';
          break;
        }
        case 'size':
        case 'trailer': {
          const nl = data.indexOf(0x0a, at);
          const end = nl < 0 ? data.length : nl;
          this.line += data.subarray(at, end).toString('latin1');
          if (this.line.length > MAX_CHUNK_LINE_BYTES) {
            return `${this.state === 'size' ? 'chunk-size' : 'trailer'} line longer than ${MAX_CHUNK_LINE_BYTES} bytes in chunked body`;
          }
          if (nl < 0) return 'more';
          at = nl + 1;
          const text = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
          this.line = '';
          if (this.state === 'trailer') {
            if (text === '') {
              this.state = 'done';
              return 'done';
            }
            break;
          }
          const sizeText = text.split(';')[0]!.trim();
          if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return `bad chunk-size line ${JSON.stringify(text.slice(0, 40))} in chunked body`;
          this.remaining = parseInt(sizeText, 16);
          this.state = this.remaining === 0 ? 'trailer' : 'data';
          break;
        }
        case 'done':
          return 'done';
      }
    }
    return this.state === 'done' ? 'done' : 'more';
  }
}

export interface HttpResponse {
  status: number;
  bodyMd5: string;
  bodyBytes: number;
}

function statusAccepted(status: number, ranges: Array<[number, number]> | undefined): boolean {
  const list = ranges ?? [[200, 299]];
  for (const [lo, hi] of list) if (status >= lo && status <= hi) return true;
  return false;
}

/** Host header: virtualhost wins; otherwise the address, "[v6]" bracketed, with ":port" unless default. */
export function hostHeader(virtualhost: string | undefined, to: CheckTarget, tlsDefault: boolean): string {
  if (virtualhost) return virtualhost;
  const host = net.isIPv6(to.address) ? `[${to.address}]` : to.address;
  const defaultPort = tlsDefault ? 443 : 80;
  return to.port === defaultPort ? host : `${host}:${to.port}`;
}

export function buildRequest(path: string, host: string, protocol: '1.0' | '1.0C' | '1.1'): string {
  const version = protocol === '1.1' ? 'HTTP/1.1' : 'HTTP/1.0';
  const close = protocol === '1.0' ? '' : 'Connection: close\r\n';
  return `GET ${path} ${version}\r\nUser-Agent: KeepAliveClient\r\nHost: ${host}\r\n${close}\r\n`;
}

/**
 * Reads one HTTP response from `socket` until the peer closes (HTTP/1.0 semantics: the request
 * asked for no keep-alive) or Content-Length bytes of body have arrived; hashes the body with MD5
 * as it streams. Chunked bodies (HTTP/1.1) are de-chunked before hashing, as keepalived does.
 */
function readResponse(socket: net.Socket, signal: AbortSignal): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let headerDone = false;
    let status = 0;
    let contentLength = -1;
    let chunked = false;
    let bodyBytes = 0;
    const md5 = createHash('md5');
    const chunks = new ChunkedDecoder((data) => {
      md5.update(data);
      bodyBytes += data.length;
    });
    let settled = false;

    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve({ status, bodyMd5: md5.digest('hex'), bodyBytes });
    };
    const onAbort = (): void => finish(new Error(abortReason(signal)));
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) {
      onAbort();
      return;
    }

    const feedBody = (data: Buffer): void => {
      if (!chunked) {
        const take = contentLength >= 0 ? Math.min(data.length, contentLength - bodyBytes) : data.length;
        md5.update(data.subarray(0, take));
        bodyBytes += take;
        if (contentLength >= 0 && bodyBytes >= contentLength) finish();
        return;
      }
      const verdict = chunks.feed(data);
      if (verdict === 'done') finish();
      else if (verdict !== 'more') finish(new Error(verdict));
    };

    socket.on('data', (data: Buffer) => {
      if (settled) return;
      if (headerDone) {
        feedBody(data);
        return;
      }
      head = Buffer.concat([head, data]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEADER_BYTES) finish(new Error(`response header longer than ${MAX_HEADER_BYTES} bytes`));
        return;
      }
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/\d\.\d (\d{3})/.exec(lines[0] ?? '');
      if (!m) {
        finish(new Error(`not an HTTP status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`));
        return;
      }
      status = Number(m[1]);
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon < 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'content-length') contentLength = Number(value);
        else if (name === 'transfer-encoding' && /chunked/i.test(value)) chunked = true;
      }
      headerDone = true;
      const rest = head.subarray(end + 4);
      if (contentLength === 0 && !chunked) {
        finish();
        return;
      }
      if (rest.length) feedBody(rest);
    });
    socket.on('end', () => {
      if (!headerDone) finish(new Error('connection closed before the response header ended'));
      else if (chunked) finish(new Error('connection closed inside a chunked body'));
      else if (contentLength >= 0 && bodyBytes < contentLength)
        finish(new Error(`connection closed after ${bodyBytes} of ${contentLength} body bytes`));
      else finish();
    });
    socket.on('error', (err) => finish(err));
  });
}

function tlsWrap(socket: net.Socket, servername: string | undefined, signal: AbortSignal): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // keepalived's SSL_GET without an SSL { ca } block does not verify the peer.
    const secure = tls.connect({ socket, rejectUnauthorized: false, servername });
    const onAbort = (): void => {
      secure.destroy();
      reject(new Error(abortReason(signal)));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    secure.once('secureConnect', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(secure);
    });
    secure.once('error', (err: Error) => {
      signal.removeEventListener('abort', onAbort);
      secure.destroy();
      reject(err);
    });
  });
}

export class HttpChecker implements Checker {
  readonly kind: 'HTTP_GET' | 'SSL_GET';

  /**
   * @param inheritedVirtualhost virtualhost from the real server or virtual server, used when
   *   neither the url nor the checker sets one (keepalived's precedence).
   */
  constructor(
    readonly options: HttpGetOptions,
    private readonly inheritedVirtualhost?: string,
  ) {
    this.kind = options.kind;
    if (options.url.length === 0) throw new Error(`${options.kind}: at least one url { path ... } block is required`);
    for (const u of options.url) {
      if (!u.path.startsWith('/')) throw new Error(`${options.kind}: url path "${u.path}" must start with "/"`);
      if (u.digest !== undefined && !/^[0-9a-f]{32}$/i.test(u.digest))
        throw new Error(`${options.kind}: digest "${u.digest}" is not 32 hex digits (MD5)`);
    }
  }

  async check(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const trail = new Trail();
    const to = endpoint(this.options, target);
    for (const url of this.options.url) {
      const failure = await this.checkUrl(url, to, signal, trail);
      if (failure) return trail.fail(failure);
    }
    return trail.ok(`${this.options.url.length} url(s) passed`);
  }

  /** Returns a failure message, or null when the url passed. */
  private async checkUrl(url: HttpUrlOptions, to: CheckTarget, signal: AbortSignal, trail: Trail): Promise<string | null> {
    const tlsOn = this.kind === 'SSL_GET';
    const stepMs = connectTimeoutMs(this.options);
    const virtualhost = url.virtualhost ?? this.options.virtualhost ?? this.inheritedVirtualhost;
    const host = hostHeader(virtualhost, to, tlsOn);
    trail.add(`${tlsOn ? 'https' : 'http'} GET ${url.path} at ${to.address}:${to.port} Host ${host}`);
    // Whole-url bound: connect + TLS + request + response, each of which keepalived bounds by
    // connect_timeout; three steps' worth is the outer limit.
    const d = deadline(signal, stepMs * 3, 'http request');
    let socket: net.Socket | undefined;
    try {
      const c = deadline(d.signal, stepMs, 'connect');
      try {
        socket = await connectTcp(this.options, to, c.signal);
      } finally {
        c.dispose();
      }
      if (tlsOn) {
        const t = deadline(d.signal, stepMs, 'TLS handshake');
        const servername = this.options.enableSni ? (this.options.sniName ?? virtualhost) : undefined;
        try {
          socket = await tlsWrap(socket, servername && !net.isIP(servername) ? servername : undefined, t.signal);
        } finally {
          t.dispose();
        }
        trail.add(`TLS ${(socket as tls.TLSSocket).getProtocol() ?? '?'} established`);
      }
      socket.setTimeout(stepMs, () => socket?.destroy(new Error(`no data for ${stepMs} ms`)));
      const responseP = readResponse(socket, d.signal);
      socket.write(buildRequest(url.path, host, this.options.httpProtocol ?? '1.0'));
      const res = await responseP;
      trail.add(`status ${res.status}, ${res.bodyBytes} body bytes, md5 ${res.bodyMd5}`);
      if (!statusAccepted(res.status, url.statusCode)) {
        const want = (url.statusCode ?? [[200, 299]]).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(' ');
        return `status ${res.status} not in status_code ${want}`;
      }
      if (url.digest !== undefined && url.digest.toLowerCase() !== res.bodyMd5)
        return `digest mismatch: body md5 ${res.bodyMd5}, expected ${url.digest.toLowerCase()}`;
      return null;
    } catch (err) {
      return `${url.path}: ${errorText(err)}`;
    } finally {
      socket?.destroy();
      d.dispose();
    }
  }
}
