// Hardening of the control socket: a slow or hostile local client cannot lock the administrator
// out. Idle connections are bounded (the longest idle one makes room for a new one), an overlong
// line closes its connection at once, and uvsadm keeps its answers meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { MAX_CONNECTIONS } from '../../src/control/server';
import { MAX_LINE_BYTES } from '../../src/control/protocol';
import { startLab, uvsadm } from '../control/helpers';

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once('error', reject);
  });
}

test('2000 idle connections do not lock uvsadm out: the longest idle ones are closed to make room', async () => {
  const lab = await startLab();
  const held: Socket[] = [];
  try {
    for (let i = 0; i < 2000; i++) {
      const s = await open(lab.socketPath);
      s.on('error', () => undefined);
      held.push(s);
    }
    const r = await uvsadm(lab, ['-L', '-n']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^IP Virtual Server version/);
    const open_ = held.filter((s) => !s.destroyed && !s.readableEnded).length;
    assert.ok(open_ <= MAX_CONNECTIONS, `${open_} idle connections still open (cap ${MAX_CONNECTIONS})`);
  } finally {
    for (const s of held) s.destroy();
    await lab.close();
  }
});

test('a line longer than the cap closes its connection, and nothing of it is kept; uvsadm still answers', async () => {
  const lab = await startLab();
  try {
    const s = await open(lab.socketPath);
    let answer = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (answer += d));
    s.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    const chunk = 'x'.repeat(1 << 20);
    // Bounded: at most twice the cap, stopping as soon as the daemon closes the connection.
    for (let sent = 0; sent < 2 * MAX_LINE_BYTES && !s.destroyed && !s.writableEnded; sent += chunk.length) {
      if (!s.write(chunk)) await new Promise((r) => setTimeout(r, 1));
      if (answer.includes('too long')) break;
    }
    await closed;
    assert.match(answer, /request line too long/);
    const r = await uvsadm(lab, ['-L', '-n']);
    assert.equal(r.status, 0, r.stderr);
  } finally {
    await lab.close();
  }
});
