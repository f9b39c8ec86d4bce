// -S | -C | -R | -S gives the same table back; -R is all or nothing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLab, uvsadm } from './helpers';

const SETUP = [
  '-A -t 192.168.52.188:80 -s rr',
  '-a -t 192.168.52.188:80 -r 192.168.52.100:80 -g',
  '-a -t 192.168.52.188:80 -r 192.168.52.101:80 -g -w 3',
  '-A -t 10.0.0.2:443 -s sh -b sh-port -p 120 -M 255.255.255.0',
  '-a -t 10.0.0.2:443 -r 10.0.1.1:8443 -m -w 0',
  '-A -u 10.0.0.1:53 -s wlc -o',
  '-a -u 10.0.0.1:53 -r 10.0.1.9 -i',
  '-A -f 42 -s mh -b mh-port',
  '-a -f 42 -r 10.0.1.7:0 -m',
  '-A -t 10.0.0.9:80 -s rr',
  '-a -t 10.0.0.9:80 -r 10.0.1.5:80 -i --tun-type gue --tun-port 6080 --tun-remcsum',
];

test('-S | -C | -R | -S round trip, numeric and with service names', async () => {
  const lab = await startLab();
  try {
    for (const line of SETUP) assert.equal((await uvsadm(lab, line.split(' '))).status, 0, line);
    for (const saveArgs of [['-S', '-n'], ['-S']]) {
      const first = await uvsadm(lab, saveArgs);
      assert.equal(first.status, 0);
      assert.equal(first.stdout.split('\n').filter((l) => l).length, SETUP.length);
      const listed = (await uvsadm(lab, ['-L', '-n'])).stdout;
      assert.equal((await uvsadm(lab, ['-C'])).status, 0);
      assert.equal((await uvsadm(lab, ['-S', '-n'])).stdout, '');
      const restored = await uvsadm(lab, ['-R'], first.stdout);
      assert.deepEqual(restored, { status: 0, stdout: '', stderr: '' });
      assert.equal((await uvsadm(lab, saveArgs)).stdout, first.stdout, `${saveArgs.join(' ')} after -R`);
      assert.equal((await uvsadm(lab, ['-L', '-n'])).stdout, listed);
    }
  } finally {
    await lab.close();
  }
});

test('-R applies nothing when one line is refused or does not parse', async () => {
  const lab = await startLab();
  try {
    await uvsadm(lab, ['-A', '-t', '10.0.0.1:80', '-s', 'rr']);
    const before = (await uvsadm(lab, ['-S', '-n'])).stdout;
    const refused = await uvsadm(lab, ['-R'], '-A -t 10.0.0.2:80 -s rr\n-a -t 10.0.0.2:80 -r 10.0.1.1\n-A -t 10.0.0.1:80 -s rr\n');
    assert.deepEqual(refused, { status: 255, stdout: '', stderr: 'Service already exists\nuvsadm: -R: nothing restored: line 3: -A -t 10.0.0.1:80 -s rr\n' });
    assert.equal((await uvsadm(lab, ['-S', '-n'])).stdout, before);
    const unparsable = await uvsadm(lab, ['-R'], '-A -t 10.0.0.3:80 -s rr\n-a -t 10.0.0.3:80 -r 10.0.1.1 -w 70000\n');
    assert.deepEqual(unparsable, { status: 2, stdout: '', stderr: 'illegal weight specified\nuvsadm: -R: nothing restored: line 2: -a -t 10.0.0.3:80 -r 10.0.1.1 -w 70000\n' });
    // Line numbers count the input's lines, comments and blank lines included.
    const later = await uvsadm(lab, ['-R'], '# a comment\n\n-A -t 10.0.0.4:80 -s rr\n-A -t 10.0.0.4:80 -s rr # again\n');
    assert.deepEqual(later, { status: 255, stdout: '', stderr: 'Service already exists\nuvsadm: -R: nothing restored: line 4: -A -t 10.0.0.4:80 -s rr\n' });
    assert.equal((await uvsadm(lab, ['-S', '-n'])).stdout, before);
  } finally {
    await lab.close();
  }
});

test('uvsadm says in one line that no daemon runs, and exits non-zero', async () => {
  const r = await uvsadm({ socketPath: '/nonexistent/uvs-test.sock' }, ['-L', '-n']);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'uvsadm: no uvsd is running in this network namespace (no socket on /nonexistent/uvs-test.sock)\n');
});
