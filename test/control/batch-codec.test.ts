// The packed -R batch (src/control/batch-codec.ts): every command kind comes back as it went in,
// and malformed bytes are refused before anything is applied.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchEncoder, PackedBatch, PackedBatchError } from '../../src/control/batch-codec';
import type { IpvsadmCommand } from '../../src/config/ipvsadm-args';
import { parseIpvsadmArgs } from '../../src/config/ipvsadm-args';
import { FIXTURE_RESOLVER } from './helpers';

const parse = (line: string): IpvsadmCommand =>
  parseIpvsadmArgs(line.split(' ').filter((w) => w), { program: 'uvsadm', resolver: FIXTURE_RESOLVER, readingStdin: true });

const LINES = [
  '-A -t 10.0.0.1:80 -s rr',
  '-E -t 10.0.0.1:80 -s sh -b sh-port -p 120 -M 255.255.255.0',
  '-A -u 10.0.0.2:53 -s wlc -o --pe sip',
  '-A -f 42 -s mh -b mh-port',
  '-A -f 7 -6 -s rr',
  '-A -t [2001:db8::1]:80 -s rr',
  '-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 65535 -x 2147483647 -y 3',
  '-a -t 10.0.0.1:80 -r 10.0.1.2 -i --tun-type gue --tun-port 6080 --tun-remcsum',
  '-e -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 0',
  '-d -t 10.0.0.1:80 -r 10.0.1.1:8080',
  '-a -f 42 -r 10.0.1.7:0 -m',
  '-D -u 10.0.0.2:53',
  '-Z -t 10.0.0.1:80',
  '-Z',
  '-C',
  '--set 10 20 30',
];

test('a packed batch decodes to the commands that were packed, in order', () => {
  const commands = LINES.map(parse);
  const enc = new BatchEncoder();
  for (const c of commands) enc.add(c);
  const batch = new PackedBatch(enc.base64(), enc.count);
  assert.equal(batch.count, LINES.length);
  for (let round = 0; round < 2; round++) {
    const got: IpvsadmCommand[] = [];
    batch.forEach((c, i) => {
      assert.equal(i, got.length);
      got.push(c);
    });
    assert.deepEqual(got, commands, `visit ${round + 1}`);
  }
});

test('names of any characters survive packing', () => {
  const c: IpvsadmCommand = { cmd: 'add-service', service: { fwmark: 0, af: 4, protocol: 6, addr: 1, port: 1, scheduler: 'ü\ud83d', flags: 0, timeout: 0, netmask: 0xffffffff, peName: 'x' } };
  const enc = new BatchEncoder();
  enc.add(c);
  const got: IpvsadmCommand[] = [];
  new PackedBatch(enc.base64(), 1).forEach((x) => got.push(x));
  assert.deepEqual(got, [c]);
});

test('a run of real servers of one service shares one decoded key', () => {
  const enc = new BatchEncoder();
  for (const l of ['-a -t 10.0.0.1:80 -r 10.0.1.1', '-a -t 10.0.0.1:80 -r 10.0.1.2', '-a -t 10.0.0.2:80 -r 10.0.1.2']) enc.add(parse(l));
  const keys: unknown[] = [];
  new PackedBatch(enc.base64(), 3).forEach((c) => keys.push(c.cmd === 'add-dest' ? c.service : null));
  assert.equal(keys[0], keys[1]);
  assert.notEqual(keys[1], keys[2]);
});

test('malformed packed batches are refused whole', () => {
  const enc = new BatchEncoder();
  enc.add(parse('-a -t 10.0.0.1:80 -r 10.0.1.1'));
  const bytes = Buffer.from(enc.base64(), 'base64');
  const refused = (data: Buffer, count: number, why: RegExp): void => {
    const seen: number[] = [];
    assert.throws(() => new PackedBatch(data.toString('base64'), count).forEach((_, i) => seen.push(i)), (e: unknown) => e instanceof PackedBatchError && why.test(e.message));
    assert.ok(seen.length <= count, 'no command past the count is visited');
  };
  refused(bytes.subarray(0, bytes.length - 1), 1, /truncated/);
  refused(Buffer.from([99]), 1, /unknown command 99/);
  refused(bytes, 2, /1 commands, the request says 2/);
  refused(Buffer.concat([bytes, bytes]), 1, /more than the 1 commands/);
  const badAf = Buffer.from(bytes);
  badAf[8] = 5; // the service key's address family
  refused(badAf, 1, /address family 5/);
  assert.throws(() => new BatchEncoder().add({ cmd: 'restore' }), RangeError);
});
