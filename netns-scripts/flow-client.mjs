#!/usr/bin/env node
// Long-lived client connections for the ECMP lab and its test: N HTTP/1.1 keep-alive connections
// to HOST:PORT, each sending `GET /` every --interval ms and reading the real server's name back.
// Each connection must keep its real server (the x-server header of rs-server.mjs): a connection that is reset or closed, a request not
// answered within --timeout ms, or an answer from another server is a failure. Runs until SIGTERM
// (or --max-seconds), then prints one JSON report on stdout:
//   { connections: [{ port, servers: {name: count}, ok, failures: [..], maxGapMs }], ... }
// --ports-file FILE: the local ports, one per line, written once all connections are open.
// Usage: flow-client.mjs HOST PORT [--connections 24] [--interval 250] [--timeout 8000] [--max-seconds 180]
import net from 'node:net';
import { writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
function opt(flag, dflt) {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
}
const [host, portText] = args;
const port = Number(portText);
if (!host || !(port > 0)) {
  console.error('usage: flow-client.mjs HOST PORT [--connections N] [--interval MS] [--timeout MS] [--max-seconds S] [--ports-file F]');
  process.exit(2);
}
const count = Number(opt('--connections', '24'));
const intervalMs = Number(opt('--interval', '250'));
const timeoutMs = Number(opt('--timeout', '8000'));
const maxSeconds = Number(opt('--max-seconds', '180'));
const portsFile = opt('--ports-file', null);

const started = Date.now();
const flows = [];
let stopping = false;

function openFlow(i) {
  return new Promise((resolve, reject) => {
    const f = { i, port: 0, servers: {}, ok: 0, failures: [], maxGapMs: 0, lastAnswer: 0, sentAt: 0, waiting: false, buf: '', sock: null, dead: false };
    const sock = net.connect({ host, port }, () => {
      f.port = sock.localPort;
      f.lastAnswer = Date.now();
      resolve(f);
    });
    f.sock = sock;
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    sock.on('data', (chunk) => {
      f.buf += chunk;
      // Responses are small: headers naming the server (x-server: rsN), then a Content-Length
      // body or a chunked one ending with the zero-length chunk.
      for (;;) {
        const head = f.buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const headers = f.buf.slice(0, head);
        const m = /content-length:\s*(\d+)/i.exec(headers);
        let end;
        if (m) {
          end = head + 4 + Number(m[1]);
          if (f.buf.length < end) return;
        } else {
          const z = f.buf.indexOf('0\r\n\r\n', head + 4);
          if (z < 0) return;
          end = z + 5;
        }
        const body = (/x-server:\s*(\S+)/i.exec(headers) ?? [])[1] ?? '?';
        f.buf = f.buf.slice(end);
        const now = Date.now();
        f.maxGapMs = Math.max(f.maxGapMs, now - f.lastAnswer);
        f.lastAnswer = now;
        f.waiting = false;
        f.ok++;
        f.servers[body] = (f.servers[body] ?? 0) + 1;
      }
    });
    const fail = (why) => {
      if (f.dead || stopping) return;
      f.dead = true;
      f.failures.push(`${((Date.now() - started) / 1000).toFixed(2)}s ${why}`);
    };
    sock.on('error', (err) => { fail(`error ${err.code ?? err.message}`); reject(err); });
    sock.on('close', () => fail('closed'));
  });
}

function tick() {
  const now = Date.now();
  for (const f of flows) {
    if (f.dead) continue;
    if (f.waiting) {
      if (now - f.sentAt > timeoutMs) {
        f.failures.push(`${((now - started) / 1000).toFixed(2)}s no answer within ${timeoutMs} ms`);
        f.dead = true;
        f.sock.destroy();
      }
      continue;
    }
    if (now - f.sentAt >= intervalMs) {
      f.sentAt = now;
      f.waiting = true;
      f.sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
    }
  }
}

function report() {
  stopping = true;
  const connections = flows.map((f) => ({ port: f.port, servers: f.servers, ok: f.ok, failures: f.failures, maxGapMs: f.maxGapMs }));
  process.stdout.write(`${JSON.stringify({ seconds: (Date.now() - started) / 1000, connections })}\n`);
  for (const f of flows) f.sock.destroy();
  process.exit(0);
}

for (let i = 0; i < count; i++) flows.push(await openFlow(i));
if (portsFile) writeFileSync(portsFile, `${flows.map((f) => f.port).join('\n')}\n`);
const timer = setInterval(tick, 20);
process.on('SIGTERM', () => { clearInterval(timer); report(); });
process.on('SIGINT', () => { clearInterval(timer); report(); });
setTimeout(() => { clearInterval(timer); report(); }, maxSeconds * 1000).unref();
