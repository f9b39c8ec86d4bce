// `uvsd --metrics ADDR:PORT`: an HTTP server answering GET /metrics with the Prometheus text
// (exposition.ts), and `--metrics-textfile DIR`: the node_ipvs_* series written every
// TEXTFILE_PERIOD_MS to DIR/uvs_ipvs.prom for node_exporter's textfile collector, so dashboards
// that filter on node_exporter's job see them too. The file is written to a temporary name in
// DIR and renamed over the old one, as the collector's documentation asks: a scrape never reads
// half a file.

import { createServer, type Server, type ServerResponse } from 'node:http';
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { UvsError } from '../runtime/errors';
import type { Logger } from '../runtime/log';
import { MetricsExposition } from './exposition';
import type { MetricsSnapshot } from './snapshot';
import type { ListenAddress } from './listen';

export const TEXTFILE_NAME = 'uvs_ipvs.prom';

/** Writes a scrape's pieces as the socket takes them (one large string would be encoded in one
 *  go, holding the main thread), then ends the response. A closed connection stops it. */
async function sendParts(res: ServerResponse, parts: readonly Buffer[]): Promise<void> {
  for (const part of parts) {
    if (res.destroyed) return;
    const more = res.write(part);
    // A turn between pieces even while the socket takes them: encoding them all in a row would
    // hold the thread as long as one large string.
    await new Promise((resolve) => setImmediate(resolve));
    if (!more && !res.destroyed && res.writableNeedDrain) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  if (!res.destroyed) res.end();
}
/** node_exporter reads the directory on each of its scrapes (15 s by default in Prometheus). */
export const TEXTFILE_PERIOD_MS = 10_000;

export class MetricsError extends UvsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UVS_ERR_METRICS', message, options);
  }
}

export interface MetricsServerOptions {
  listen: ListenAddress | null;
  textfileDir: string | null;
  /** Builds the snapshot of one scrape from the live daemon. */
  collect: () => Promise<MetricsSnapshot>;
  log: Logger;
  textfilePeriodMs?: number;
}

export class MetricsServer {
  readonly exposition = new MetricsExposition();
  private server: Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private textfileFailed = false;

  constructor(private readonly options: MetricsServerOptions) {}

  /** Listens and writes the first textfile; rejects (nothing left open) when the port is taken or
   *  the directory cannot be written. */
  async start(): Promise<void> {
    const { listen, textfileDir } = this.options;
    if (textfileDir !== null) {
      try {
        await this.writeTextfile(true);
      } catch (err) {
        throw new MetricsError(`--metrics-textfile ${textfileDir}: ${(err as Error).message}`, { cause: err });
      }
      this.timer = setInterval(() => void this.writeTextfile(false), this.options.textfilePeriodMs ?? TEXTFILE_PERIOD_MS);
      this.timer.unref();
    }
    if (listen !== null) {
      const server = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        if (path !== '/metrics') {
          res.writeHead(404, { 'Content-Type': 'text/plain' }).end('uvsd: the metrics are at /metrics\n');
          return;
        }
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('uvsd: GET /metrics\n');
          return;
        }
        this.options.collect().then((snap) => this.exposition.renderParts(snap)).then(
          (parts) => {
            res.writeHead(200, { 'Content-Type': this.exposition.contentType });
            if (req.method === 'HEAD') res.end();
            else void sendParts(res, parts);
          },
          (err: unknown) => {
            this.options.log.error(`metrics: scrape failed: ${(err as Error).message}`);
            res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`uvsd: ${(err as Error).message}\n`);
          },
        );
      });
      const where = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port: listen.port, ...(listen.host ? { host: listen.host } : {}) }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        this.stopTimer();
        const e = err as NodeJS.ErrnoException;
        const why = e.code === 'EADDRINUSE' ? 'the address is already in use'
          : e.code === 'EADDRNOTAVAIL' ? 'no interface has this address'
            : e.code === 'EACCES' ? 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)' : e.message;
        throw new MetricsError(`--metrics ${where}: cannot listen: ${why}`, { cause: err });
      }
      server.on('error', (err) => this.options.log.error(`metrics: ${err.message}`));
      this.server = server;
      this.options.log.info(`metrics: Prometheus text at http://${where}/metrics`);
    }
  }

  /** The address the server listens on (its port when started with port 0 in tests). */
  address(): { address: string; port: number } | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { address: a.address, port: a.port } : null;
  }

  /** One write of DIR/uvs_ipvs.prom: to a temporary file in DIR, then renamed over it. */
  writeTextfile(throwing: boolean): Promise<void> {
    const dir = this.options.textfileDir;
    if (dir === null) return Promise.resolve();
    const job = this.writing.then(async () => {
      const parts = await this.exposition.renderIpvsParts(await this.options.collect());
      const target = join(dir, TEXTFILE_NAME);
      const temp = join(dir, `.${TEXTFILE_NAME}.${process.pid}.tmp`);
      try {
        // Piece by piece with a turn of the event loop between: a large table's text is tens of MB.
        const fd = openSync(temp, 'w', 0o644);
        try {
          for (const part of parts) {
            writeSync(fd, part);
            await new Promise((resolve) => setImmediate(resolve));
          }
        } finally {
          closeSync(fd);
        }
        renameSync(temp, target);
      } catch (err) {
        try {
          unlinkSync(temp);
        } catch {
          // nothing was written
        }
        throw err;
      }
      if (this.textfileFailed) this.options.log.info(`metrics: ${target} written again`);
      this.textfileFailed = false;
    });
    this.writing = job.catch((err: Error) => {
      if (throwing) return;
      // Logged once per failure streak, not every period.
      if (!this.textfileFailed) this.options.log.error(`metrics: cannot write ${join(dir, TEXTFILE_NAME)}: ${err.message}`);
      this.textfileFailed = true;
    });
    return throwing ? job : this.writing;
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Closes the listener; the textfile is left in place (node_exporter keeps its last values,
   *  and a restarted uvsd overwrites it). */
  async stop(): Promise<void> {
    this.stopTimer();
    const server = this.server;
    this.server = null;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await this.writing;
  }
}
