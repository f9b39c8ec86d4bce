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
