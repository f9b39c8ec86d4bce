// Sequential request/response round trips for the added-latency rows (bench/e2e/latency.ts), run
// inside the client namespace:
//   node rtt.js '{"proto":"udp"|"tcp","targets":[{"host":"…","port":N},…],"count":N,"intervalMs":N,"timeoutMs":N}'
// One request at a time, alternating between the targets (the direct path and the path through the
// director: both see the same machine load), the next intervalMs after the answer (low rate: the
// path is idle between requests, so the figure is the path's latency, not a queue's). Prints one
// JSON line: an RttResult per target.
//
// - udp: one datagram to rs-server.mjs's UDP port, which answers with its name. The socket is not
//   connected: DR and TUN real servers answer from their reply-link address, not from the VIP.
// - tcp: one keep-alive connection; each request is `GET / HTTP/1.1` and the answer is complete when
//   its headers and Content-Length bytes of body arrived (rs-server.mjs's HTTP server).
// A request with no answer within timeoutMs counts as lost; the run is bounded by count and by
// count × (intervalMs + timeoutMs).
import dgram from 'node:dgram';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface RttJob {
  proto: 'udp' | 'tcp';
  /** Asked in turn, one request at a time. */
  targets: Array<{ host: string; port: number }>;
  count: number;
  intervalMs: number;
  timeoutMs: number;
}

export interface RttResult {
  /** Round trips in µs, in the order measured. */
  samplesUs: number[];
  lost: number;
}

const MAX_COUNT = 100_000;

/**
 * Bytes of one complete HTTP/1.1 response at the start of buf, or 0 when it is not complete yet:
 * headers, then Content-Length bytes of body, or chunks up to the last (zero-size) one (RFC 9112 §7.1;
 * Node's server chunks a body given only to end()).
 */
export function httpResponseLength(buf: Buffer): number {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return 0;
  const head = buf.subarray(0, end).toString('latin1');
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (m) {
    const total = end + 4 + Number(m[1]);
    return buf.length >= total ? total : 0;
  }
  if (!/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) throw new Error(`response with neither Content-Length nor chunked body: ${head.slice(0, 200)}`);
  let at = end + 4;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return 0;
    const size = Number.parseInt(buf.subarray(at, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) throw new Error(`bad chunk size line: ${buf.subarray(at, eol).toString('latin1').slice(0, 40)}`);
    if (size === 0) {
      // No trailers from rs-server: the last chunk is "0\r\n\r\n".
      const fin = eol + 4;
      return buf.length >= fin ? fin : 0;
    }
    at = eol + 2 + size + 2;
    if (buf.length < at) return 0;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One request/response target: ask() resolves true with the answer, false after timeoutMs. */
interface Prober {
  ask(timeoutMs: number): Promise<boolean>;
  failed(): Error | null;
  close(): void;
}

/**
 * One request: installs a waiter (the prober calls it when the answer arrives, and drops it),
 * sends, and resolves true on the answer or false after timeoutMs (the waiter is then removed, so a
 * late answer is ignored).
 */
function askOnce(timeoutMs: number, setWaiter: (w: (() => void) | null) => void, send: () => void): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      setWaiter(null);
      resolve(false);
    }, timeoutMs);
    setWaiter(() => {
      clearTimeout(timer);
      resolve(true);
    });
    send();
  });
}

async function udpProber(host: string, port: number): Promise<Prober> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, () => resolve()));
  const probe = Buffer.from('?');
  let waiter: (() => void) | null = null;
  sock.on('message', () => {
    const w = waiter;
    waiter = null;
    w?.(); // a late answer to a request already counted lost is ignored
  });
  sock.on('error', () => undefined);
  return {
    ask: (timeoutMs) => askOnce(timeoutMs, (w) => (waiter = w), () => sock.send(probe, port, host)),
    failed: () => null,
    close: () => sock.close(),
  };
}

async function tcpProber(host: string, port: number): Promise<Prober> {
  const sock = net.connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
    setTimeout(() => reject(new Error(`no TCP connection to ${host}:${port} within 5 s`)), 5000).unref();
  });
  const req = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  let buf: Buffer = Buffer.alloc(0);
  let waiter: (() => void) | null = null;
  let failed: Error | null = null;
  sock.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    try {
      const n = httpResponseLength(buf);
      if (n > 0) {
        buf = buf.subarray(n);
        const w = waiter;
        waiter = null;
        w?.();
      }
    } catch (err) {
      failed = err as Error;
    }
  });
  sock.on('error', (err) => {
    failed = err;
  });
  return {
    ask: (timeoutMs) => askOnce(timeoutMs, (w) => (waiter = w), () => sock.write(req)),
    failed: () => failed,
    close: () => sock.destroy(),
  };
}

/**
 * Round trips to every target, alternating request by request (target 1, target 2, target 1, …),
 * so a comparison between them sees the same machine load.
 */
export async function measure(job: RttJob): Promise<RttResult[]> {
  const probers: Prober[] = [];
  try {
    for (const t of job.targets) probers.push(await (job.proto === 'udp' ? udpProber(t.host, t.port) : tcpProber(t.host, t.port)));
    const out: RttResult[] = job.targets.map(() => ({ samplesUs: [], lost: 0 }));
    // A keep-alive TCP stream that lost an answer is out of step: that target stops asking.
    const stopped = job.targets.map(() => false);
    for (let i = 0; i < job.count; i++) {
      for (let k = 0; k < probers.length; k++) {
        if (stopped[k]) {
          out[k]!.lost++;
          continue;
        }
        const t0 = performance.now();
        const answered = await probers[k]!.ask(job.timeoutMs);
        const t1 = performance.now();
        const err = probers[k]!.failed();
        if (err) throw err;
        if (answered) out[k]!.samplesUs.push((t1 - t0) * 1000);
        else {
          out[k]!.lost++;
          if (job.proto === 'tcp') stopped[k] = true;
        }
        await sleep(job.intervalMs);
      }
    }
    return out;
  } finally {
    for (const p of probers) p.close();
  }
}

if (require.main === module) {
  const job = JSON.parse(process.argv[2] ?? '') as RttJob;
  const bad = !(job.proto === 'udp' || job.proto === 'tcp') || !Array.isArray(job.targets) || job.targets.length < 1 || job.targets.length > 4
    || job.targets.some((t) => !(t.port > 0 && t.port < 65536) || typeof t.host !== 'string')
    || !(Number.isInteger(job.count) && job.count >= 1 && job.count <= MAX_COUNT)
    || !(job.intervalMs >= 0 && job.intervalMs <= 1000) || !(job.timeoutMs >= 1 && job.timeoutMs <= 5000);
  if (bad) {
    process.stderr.write(`rtt: bad job ${process.argv[2] ?? ''} (count 1..${MAX_COUNT}, intervalMs 0..1000, timeoutMs 1..5000)\n`);
    process.exit(2);
  }
  measure(job).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (err: Error) => {
      process.stderr.write(`rtt: ${err.message}\n`);
      process.exit(1);
    },
  );
}
