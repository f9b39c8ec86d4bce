// TCP_CHECK, HTTP_GET and SSL_GET against real servers on loopback (no root needed).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { TcpChecker } from '../../src/check/tcp';
import { HttpChecker, buildRequest, hostHeader } from '../../src/check/http';
import { parseStatusCodes } from '../../src/check/types';
import { closedPort, listen, never, tempDir } from './helpers';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

let httpServer: http.Server;
let httpPort = 0;
const seen: Array<{ url: string; host: string; ua: string; version: string; connection: string }> = [];

before(async () => {
  httpServer = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', host: req.headers.host ?? '', ua: req.headers['user-agent'] ?? '', version: req.httpVersion, connection: req.headers.connection ?? '' });
    if (req.url === '/ok') res.end('hello');
    else if (req.url === '/moved') {
      res.writeHead(302, { location: '/ok' });
      res.end();
    } else if (req.url === '/chunked') {
      res.write('chunk-one,');
      setTimeout(() => res.end('chunk-two'), 10);
    } else if (req.url === '/hang') {
      /* never answers: the check must time out */
    } else {
      res.writeHead(404);
      res.end('nope');
    }
  });
  httpPort = await listen(httpServer);
});

after(() => {
  httpServer.closeAllConnections();
  httpServer.close();
});

test('TCP_CHECK: open port is up, closed port is down with the errno in the trail', async () => {
  const up = await new TcpChecker({ kind: 'TCP_CHECK' }).check({ address: '127.0.0.1', port: httpPort }, never());
  assert.equal(up.ok, true, up.trail.join(' | '));
  const port = await closedPort();
  const down = await new TcpChecker({ kind: 'TCP_CHECK' }).check({ address: '127.0.0.1', port }, never());
  assert.equal(down.ok, false);
  assert.match(down.trail.join('\n'), /ECONNREFUSED/);
});

test('TCP_CHECK: connect_port overrides the real server port and bindto sets the source', async () => {
  const sources: string[] = [];
  const s = net.createServer((c) => {
    sources.push(c.remoteAddress ?? '');
    c.destroy();
  });
  const port = await listen(s);
  try {
    const r = await new TcpChecker({ kind: 'TCP_CHECK', connectPort: port, bindTo: '127.0.0.2' }).check({ address: '127.0.0.1', port: 1 }, never());
    assert.equal(r.ok, true, r.trail.join(' | '));
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(sources, ['127.0.0.2']);
  } finally {
    s.close();
  }
});

test('TCP_CHECK: an aborted signal ends the check as a failure', async () => {
  const ac = new AbortController();
  ac.abort(new Error('stop now'));
  const r = await new TcpChecker({ kind: 'TCP_CHECK' }).check({ address: '127.0.0.1', port: httpPort }, ac.signal);
  assert.equal(r.ok, false);
});

test("HTTP_GET: sends keepalived's request line and headers", async () => {
  seen.length = 0;
  const r = await new HttpChecker({ kind: 'HTTP_GET', url: [{ path: '/ok' }] }).check({ address: '127.0.0.1', port: httpPort }, never());
  assert.equal(r.ok, true, r.trail.join(' | '));
  assert.deepEqual(seen[0], { url: '/ok', host: `127.0.0.1:${httpPort}`, ua: 'KeepAliveClient', version: '1.0', connection: '' });
  assert.equal(buildRequest('/x', 'h', '1.0'), 'GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: h\r\n\r\n');
  assert.equal(hostHeader(undefined, { address: '10.0.0.1', port: 80 }, false), '10.0.0.1');
  assert.equal(hostHeader(undefined, { address: 'fd00::1', port: 8443 }, true), '[fd00::1]:8443');
});

test('HTTP_GET: digest of the body must match; status_code default 200-299', async () => {
  const target = { address: '127.0.0.1', port: httpPort };
  const good = await new HttpChecker({ kind: 'HTTP_GET', url: [{ path: '/ok', digest: md5('hello') }] }).check(target, never());
  assert.equal(good.ok, true, good.trail.join(' | '));
  const bad = await new HttpChecker({ kind: 'HTTP_GET', url: [{ path: '/ok', digest: md5('other') }] }).check(target, never());
  assert.equal(bad.ok, false);
  assert.match(bad.trail.at(-1)!, /digest mismatch/);
  const missing = await new HttpChecker({ kind: 'HTTP_GET', url: [{ path: '/missing' }] }).check(target, never());
  assert.equal(missing.ok, false);
  assert.match(missing.trail.at(-1)!, /status 404 not in status_code 200-299/);
});

test('HTTP_GET: status_code ranges as keepalived allows them; every url must pass', async () => {
  const target = { address: '127.0.0.1', port: httpPort };
  const codes = parseStatusCodes('200 300-399 503');
  assert.deepEqual(codes, [[200, 200], [300, 399], [503, 503]]);
  const moved = await new HttpChecker({ kind: 'HTTP_GET', url: [{ path: '/moved', statusCode: codes }] }).check(target, never());
  assert.equal(moved.ok, true, moved.trail.join(' | '));
  const notFound = await new HttpChecker({ kind: 'HTTP_GET', url: [{ path: '/missing', statusCode: parseStatusCodes('400-499') }] }).check(target, never());
  assert.equal(notFound.ok, true);
  const oneBad = await new HttpChecker({ kind: 'HTTP_GET', url: [{ path: '/ok' }, { path: '/missing' }] }).check(target, never());
  assert.equal(oneBad.ok, false);
  assert.throws(() => parseStatusCodes('2xx'), /"2xx" is not a code/);
  assert.throws(() => parseStatusCodes('299-200'), /reversed/);
});

test('HTTP_GET: virtualhost sets the Host header (url beats checker beats real server)', async () => {
  seen.length = 0;
  const target = { address: '127.0.0.1', port: httpPort };
  await new HttpChecker({ kind: 'HTTP_GET', url: [{ path: '/ok' }] }, 'rs.example').check(target, never());
  await new HttpChecker({ kind: 'HTTP_GET', virtualhost: 'checker.example', url: [{ path: '/ok' }] }, 'rs.example').check(target, never());
  await new HttpChecker({ kind: 'HTTP_GET', virtualhost: 'checker.example', url: [{ path: '/ok', virtualhost: 'url.example' }] }).check(target, never());
  assert.deepEqual(seen.map((s) => s.host), ['rs.example', 'checker.example', 'url.example']);
});

test('HTTP_GET: http_protocol 1.1 reads a chunked body and hashes the de-chunked bytes', async () => {
  seen.length = 0;
  const r = await new HttpChecker({ kind: 'HTTP_GET', httpProtocol: '1.1', url: [{ path: '/chunked', digest: md5('chunk-one,chunk-two') }] }).check({ address: '127.0.0.1', port: httpPort }, never());
  assert.equal(r.ok, true, r.trail.join(' | '));
  assert.equal(seen[0]!.version, '1.1');
  assert.equal(seen[0]!.connection, 'close');
});

test('HTTP_GET: a server that never answers fails after connect_timeout', async () => {
  const started = Date.now();
  const r = await new HttpChecker({ kind: 'HTTP_GET', connectTimeout: 0.3, url: [{ path: '/hang' }] }).check({ address: '127.0.0.1', port: httpPort }, never());
  assert.equal(r.ok, false);
  assert.match(r.trail.at(-1)!, /no data for 300 ms|timed out/);
  assert.ok(Date.now() - started < 2000, 'bounded by the timeout');
});

test('HTTP_GET: bad options are refused at construction with the reason', () => {
  assert.throws(() => new HttpChecker({ kind: 'HTTP_GET', url: [] }), /at least one url/);
  assert.throws(() => new HttpChecker({ kind: 'HTTP_GET', url: [{ path: 'x' }] }), /must start with "\/"/);
  assert.throws(() => new HttpChecker({ kind: 'HTTP_GET', url: [{ path: '/', digest: 'abc' }] }), /not 32 hex digits/);
});

test('SSL_GET: self-signed certificate accepted (no verification, as keepalived), digest checked', async (t) => {
  if (spawnSync('openssl', ['version']).status !== 0) {
    t.skip('openssl not installed');
    return;
  }
  const dir = tempDir('ssl');
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=uvs-test'], { stdio: 'ignore', timeout: 30_000 });
    const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => res.end(`tls:${req.url}`));
    const port = await listen(server);
    try {
      const target = { address: '127.0.0.1', port };
      const ok = await new HttpChecker({ kind: 'SSL_GET', url: [{ path: '/a', digest: md5('tls:/a') }] }).check(target, never());
      assert.equal(ok.ok, true, ok.trail.join(' | '));
      assert.ok(ok.trail.some((s) => /^TLS TLSv1\.[23] established$/.test(s)), ok.trail.join(' | '));
      // Plain HTTP_GET against the TLS port fails: the answer is not HTTP.
      const plain = await new HttpChecker({ kind: 'HTTP_GET', connectTimeout: 0.5, url: [{ path: '/a' }] }).check(target, never());
      assert.equal(plain.ok, false);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
