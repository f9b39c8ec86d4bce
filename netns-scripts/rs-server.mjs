#!/usr/bin/env node
// A real server for the labs: answers HTTP with its own name and UDP datagrams with its name.
//   GET /            -> "<name>\n"
//   GET /bytes/N     -> N deterministic bytes (byte i = (i * 31 + 7) & 0xff), for integrity checks
//   GET /slow/MS     -> "<name>\n" after MS milliseconds (bounded to 60 s), to hold a connection open
//   GET /paced/N/BPS -> the same N bytes as /bytes/N, written at BPS bytes per second (in 20 slices a
//                       second), so a download lasts N/BPS seconds whatever the path's speed (a client's
//                       curl --limit-rate paces only loosely: its bursts follow the round-trip time)
//   POST /sha256     -> "<name> <sha256 hex of the request body> <length>\n" (uploads through the director)
//   UDP any payload  -> "<name>\n"
// Usage: rs-server.mjs NAME [--port 80] [--udp-port 53] [--bind 0.0.0.0]
import http from 'node:http';
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';

const args = process.argv.slice(2);
const name = args[0];
if (!name || name.startsWith('-')) {
  console.error('usage: rs-server.mjs NAME [--port 80] [--udp-port 53] [--bind ADDR]');
  process.exit(2);
}
function opt(flag, dflt) {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
}
const port = Number(opt('--port', '80'));
const udpPort = Number(opt('--udp-port', '53'));
const bind = opt('--bind', '0.0.0.0');
const MAX_BYTES = 256 * 1024 * 1024;

export function patternBytes(n, from = 0) {
  const buf = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) buf[i] = ((from + i) * 31 + 7) & 0xff;
  return buf;
}

/** /paced/N/BPS: N pattern bytes, BPS/20 of them every 50 ms. */
function paced(res, n, bps) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n, 'x-server': name });
  const slice = Math.max(1, Math.floor(bps / 20));
  let sent = 0;
  const timer = setInterval(() => {
    const k = Math.min(slice, n - sent);
    res.write(patternBytes(k, sent));
    sent += k;
    if (sent >= n) {
      clearInterval(timer);
      res.end();
    }
  }, 50);
  res.on('close', () => clearInterval(timer));
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  let m;
  if (req.method === 'POST' && url === '/sha256') {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => res.writeHead(200, { 'x-server': name }).end(`${name} ${hash.digest('hex')} ${length}\n`));
    return;
  }
  if ((m = /^\/bytes\/(\d+)$/.exec(url))) {
    const n = Number(m[1]);
    if (n > MAX_BYTES) {
      res.writeHead(400).end(`at most ${MAX_BYTES} bytes\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n, 'x-server': name });
    res.end(patternBytes(n));
  } else if ((m = /^\/paced\/(\d+)\/(\d+)$/.exec(url))) {
    const n = Number(m[1]);
    const bps = Number(m[2]);
    if (n > MAX_BYTES || bps < 20) {
      res.writeHead(400).end(`at most ${MAX_BYTES} bytes, at least 20 bytes/s\n`);
      return;
    }
    paced(res, n, bps);
  } else if ((m = /^\/slow\/(\d+)$/.exec(url))) {
    const ms = Math.min(Number(m[1]), 60000);
    setTimeout(() => res.writeHead(200, { 'x-server': name }).end(`${name}\n`), ms);
  } else {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-server': name }).end(`${name}\n`);
  }
});
server.keepAliveTimeout = 5000;
server.listen(port, bind);

const udp = dgram.createSocket('udp4');
udp.on('message', (_msg, rinfo) => udp.send(`${name}\n`, rinfo.port, rinfo.address));
udp.bind(udpPort, bind);

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    udp.close();
    process.exit(0);
  });
}
