// Hardening: one real server must not run the director out of memory through HTTP_GET's chunked
// decoding. A chunk's data is hashed as it streams (never buffered whole, whatever size it
// announces), and a chunk-size line is capped like the header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { HttpChecker } from '../../src/check/http';
import { ChunkedDecoder, MAX_CHUNK_LINE_BYTES } from '../../src/check/http';
import { never } from '../check/helpers';

/** A raw TCP server that answers every connection with `respond`. */
async function rawServer(respond: (socket: net.Socket) => void): Promise<{ port: number; close(): void }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => respond(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

test('HTTP_GET: a chunk-size line longer than the cap fails the check at once, with a clear error', async () => {
  const server = await rawServer((s) => {
    s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
    s.write('f'.repeat(MAX_CHUNK_LINE_BYTES + 10)); // no CRLF: an endless size line
  });
  try {
    const r = await new HttpChecker({ kind: 'HTTP_GET', httpProtocol: '1.1', connectTimeout: 5, url: [{ path: '/' }] })
      .check({ address: '127.0.0.1', port: server.port }, never());
    assert.equal(r.ok, false);
    assert.match(r.trail.join('\n'), /chunk-size line longer than \d+ bytes/);
  } finally {
    server.close();
  }
});

test('chunked decoding: a huge announced chunk is hashed as it streams; what is held stays bounded', () => {
  const md5 = createHash('md5');
  let bytes = 0;
  const decoder = new ChunkedDecoder((data) => {
    md5.update(data);
    bytes += data.length;
  });
  const expected = createHash('md5');
  assert.equal(decoder.feed(Buffer.from('7fffffff\r\n')), 'more');
  const block = Buffer.alloc(1 << 20, 0x61);
  let maxHeld = 0;
  for (let i = 0; i < 64; i++) {
    assert.equal(decoder.feed(block), 'more');
    expected.update(block);
    maxHeld = Math.max(maxHeld, decoder.held);
  }
  assert.equal(bytes, 64 << 20);
  assert.equal(md5.digest('hex'), expected.digest('hex'));
  assert.ok(maxHeld <= MAX_CHUNK_LINE_BYTES, `the decoder held ${maxHeld} bytes`);
});

test('chunked decoding: sizes, extensions, split CRLFs, the last chunk and trailers; bad input says what', () => {
  const parts: string[] = [];
  const d = new ChunkedDecoder((data) => parts.push(data.toString()));
  const input = '4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n';
  let verdict = 'more';
  for (const ch of input) verdict = d.feed(Buffer.from(ch)); // one byte at a time: every split point
  assert.equal(verdict, 'done');
  assert.equal(parts.join(''), 'Wikipedia in\r\n\r\nchunks.');
  const bad = new ChunkedDecoder(() => undefined);
  assert.match(String(bad.feed(Buffer.from('zz\r\n'))), /bad chunk-size line "zz"/);
  const noCrlf = new ChunkedDecoder(() => undefined);
  assert.match(String(noCrlf.feed(Buffer.from('2\r\nabXY'))), /chunk data not followed by CRLF/);
});
