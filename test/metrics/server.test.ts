import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsServer, TEXTFILE_NAME } from '../../src/metrics/server';
import { parseListenAddress } from '../../src/metrics/listen';
import { parseUvsdArgs } from '../../src/control/uvsd-options';
import { createLogger } from '../../src/runtime/log';
import { knownSnapshot } from './fixtures';

const quiet = createLogger({ sink: () => undefined });

function fetchText(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

test('--metrics ADDR:PORT: IPv4, [IPv6], :PORT; anything else is refused naming the option', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9100'), { host: '127.0.0.1', port: 9100 });
  assert.deepEqual(parseListenAddress('[::1]:9101'), { host: '::1', port: 9101 });
  assert.deepEqual(parseListenAddress(':9102'), { host: '', port: 9102 });
  assert.deepEqual(parseUvsdArgs(['--metrics', '0.0.0.0:9100']).metrics, { host: '0.0.0.0', port: 9100 });
  for (const bad of ['9100', '127.0.0.1', '127.0.0.1:', '127.0.0.1:0', '127.0.0.1:65536', 'localhost:9100', '10.0.0.300:80', '::1:9100', '[10.0.0.1]:80', '1.2.3.4:80x']) {
    assert.throws(() => parseUvsdArgs(['--metrics', bad]), (err: Error) => err.message.startsWith('--metrics: '), bad);
  }
  assert.throws(() => parseUvsdArgs(['--metrics-textfile', '']), /--metrics-textfile: empty directory name/);
});

test('GET /metrics answers the exposition; other paths 404; the snapshot is taken per scrape', async () => {
  let scrapes = 0;
  const server = new MetricsServer({
    listen: { host: '127.0.0.1', port: 0 }, textfileDir: null, log: quiet,
    collect: () => {
      scrapes++;
      return Promise.resolve(knownSnapshot({ totals: { conns: scrapes, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 } }));
    },
  });
  await server.start();
  try {
    const port = server.address()!.port;
    assert.equal(scrapes, 0, 'nothing is collected before a scrape');
    const first = await fetchText(port, '/metrics');
    assert.equal(first.status, 200);
    assert.match(first.type, /^text\/plain; version=0\.0\.4/);
    assert.match(first.body, /^node_ipvs_connections_total 1$/m);
    assert.match((await fetchText(port, '/metrics')).body, /^node_ipvs_connections_total 2$/m);
    assert.equal((await fetchText(port, '/')).status, 404);
  } finally {
    await server.stop();
  }
});

test('a port in use is a clear error at start, naming --metrics and the address', async () => {
  const first = new MetricsServer({ listen: { host: '127.0.0.1', port: 0 }, textfileDir: null, log: quiet, collect: () => Promise.resolve(knownSnapshot()) });
  await first.start();
  try {
    const port = first.address()!.port;
    const second = new MetricsServer({ listen: { host: '127.0.0.1', port }, textfileDir: null, log: quiet, collect: () => Promise.resolve(knownSnapshot()) });
    await assert.rejects(second.start(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'UVS_ERR_METRICS');
      assert.equal(err.message, `--metrics 127.0.0.1:${port}: cannot listen: the address is already in use`);
      return true;
    });
  } finally {
    await first.stop();
  }
});

test('--metrics-textfile: DIR/uvs_ipvs.prom holds only node_ipvs_*, written by rename (no temporary left)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-textfile-'));
  try {
    let conns = 1;
    const server = new MetricsServer({
      listen: null, textfileDir: dir, log: quiet, textfilePeriodMs: 50,
      collect: () => Promise.resolve(knownSnapshot({ totals: { conns, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 } })),
    });
    await server.start();
    const text = readFileSync(join(dir, TEXTFILE_NAME), 'utf8');
    assert.match(text, /^node_ipvs_connections_total 1$/m);
    assert.doesNotMatch(text, /uvs_/);
    conns = 5;
    const deadline = Date.now() + 5000;
    while (!/^node_ipvs_connections_total 5$/m.test(readFileSync(join(dir, TEXTFILE_NAME), 'utf8'))) {
      assert.ok(Date.now() < deadline, 'the file was not rewritten within 5 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    await server.stop();
    assert.deepEqual(readdirSync(dir), [TEXTFILE_NAME]);
    const missing = new MetricsServer({ listen: null, textfileDir: join(dir, 'nope'), log: quiet, collect: () => Promise.resolve(knownSnapshot()) });
    await assert.rejects(missing.start(), (err: Error) => /^--metrics-textfile .*nope: ENOENT/.test(err.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
