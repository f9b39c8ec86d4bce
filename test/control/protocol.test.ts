// The control socket survives bad requests and answers each with an error, changing nothing.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { startLab, uvsadm } from './helpers';

function exchange(path: string, lines: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let text = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error('no answer within 5 s')); }, 5000);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(lines.map((l) => `${l}\n`).join('')));
    s.on('data', (d: string) => {
      text += d;
      const answers = text.split('\n').filter((l) => l);
      if (answers.length >= lines.length) {
        clearTimeout(timer);
        s.destroy();
        resolve(answers);
      }
    });
    s.on('error', reject);
  });
}

test('malformed requests get errors; the table is unchanged and the daemon keeps answering', async () => {
  const lab = await startLab();
  try {
    await uvsadm(lab, ['-A', '-t', '10.0.0.1:80', '-s', 'rr']);
    const before = (await uvsadm(lab, ['-S', '-n'])).stdout;
    const answers = await exchange(lab.socketPath, [
      'not json',
      JSON.stringify({ id: 2, type: 'nonsense' }),
      JSON.stringify({ id: 3, type: 'command', command: { cmd: 'add-dest', service: { fwmark: 0, af: 4, protocol: 6, addr: 0x0a000001, port: 80 }, dest: { af: 4, addr: 0x0a000002, port: 80, fwd: 9, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 } } }),
      JSON.stringify({ id: 4, type: 'command', command: { cmd: 'add-service', service: { af: 4 } } }),
      JSON.stringify({ id: 5, type: 'ping' }),
    ]).then((a) => a.map((l) => JSON.parse(l) as { id: number; ok: boolean; protocolError?: string; error?: { errno: string } }));
    assert.deepEqual(answers.map((a) => [a.id, a.ok]), [[0, false], [2, false], [3, false], [4, false], [5, true]]);
    assert.match(answers[0]!.protocolError!, /not JSON/);
    assert.equal(answers[2]!.error!.errno, 'EINVAL');
    assert.equal((await uvsadm(lab, ['-S', '-n'])).stdout, before);
  } finally {
    await lab.close();
  }
});

test('-R batches: packed (what uvsadm sends) or as JSON commands (older clients); a malformed packed one changes nothing', async () => {
  const lab = await startLab();
  try {
    const { BatchEncoder, PACKED_BATCH_FORMAT } = await import('../../src/control/batch-codec');
    const before = (await uvsadm(lab, ['-S', '-n'])).stdout;
    const enc = new BatchEncoder();
    enc.add({ cmd: 'add-service', service: { fwmark: 0, af: 4, protocol: 6, addr: 0x0a000009, port: 80, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' } });
    const truncated = Buffer.from(enc.base64(), 'base64').subarray(0, 5).toString('base64');
    const answers = await exchange(lab.socketPath, [
      JSON.stringify({ id: 1, type: 'batch', packed: { format: PACKED_BATCH_FORMAT, count: 1, data: truncated } }),
      JSON.stringify({ id: 2, type: 'batch', packed: { format: 'uvs-batch/9', count: 1, data: enc.base64() } }),
      JSON.stringify({ id: 3, type: 'batch' }),
    ]).then((a) => a.map((l) => JSON.parse(l) as { id: number; ok: boolean; protocolError?: string }));
    assert.deepEqual(answers.map((a) => [a.id, a.ok]), [[1, false], [2, false], [3, false]]);
    assert.match(answers[0]!.protocolError!, /truncated/);
    assert.match(answers[1]!.protocolError!, /format "uvs-batch\/9" unknown/);
    assert.equal((await uvsadm(lab, ['-S', '-n'])).stdout, before);
    const ok = await exchange(lab.socketPath, [
      JSON.stringify({ id: 4, type: 'batch', packed: { format: PACKED_BATCH_FORMAT, count: 1, data: enc.base64() } }),
      JSON.stringify({ id: 5, type: 'batch', commands: [{ cmd: 'add-service', service: { fwmark: 0, af: 4, protocol: 17, addr: 0x0a000009, port: 53, scheduler: 'wlc', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' } }] }),
    ]).then((a) => a.map((l) => JSON.parse(l) as { id: number; ok: boolean }));
    assert.deepEqual(ok.map((a) => [a.id, a.ok]), [[4, true], [5, true]]);
    assert.equal((await uvsadm(lab, ['-S', '-n'])).stdout, `${before}-A -t 10.0.0.9:80 -s rr\n-A -u 10.0.0.9:53 -s wlc\n`);
  } finally {
    await lab.close();
  }
});
