// ipvsadm's command-line parsing details: popt clusters, optional -p, inet_aton, port defaults.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inetAton, stringToNumber } from '../../src/config/ipvsadm-addr';
import { IpvsadmExit, parseIpvsadmArgs, splitRestoreLines } from '../../src/config/ipvsadm-args';
import type { IpvsadmCommand } from '../../src/config/ipvsadm-args';
import { ForwardMethod } from '../../src/tables/dest-table';
import { FIXTURE_RESOLVER } from './helpers';

const parse = (line: string): IpvsadmCommand =>
  parseIpvsadmArgs(line.split(' ').filter((w) => w), { program: 'uvsadm', resolver: FIXTURE_RESOLVER });

function exitOf(line: string): IpvsadmExit {
  try {
    parse(line);
  } catch (err) {
    if (err instanceof IpvsadmExit) return err;
    throw err;
  }
  assert.fail(`"${line}" parsed without an exit`);
}

test('inet_aton forms', () => {
  const table: [string, string | null][] = [
    ['10.0.0.1', '10.0.0.1'], ['10.1', '10.0.0.1'], ['10.1.2', '10.1.0.2'], ['0x0a.1', '10.0.0.1'],
    ['012.0.0.1', '10.0.0.1'], ['167772161', '10.0.0.1'], ['10.65536', '10.1.0.0'], ['4294967295', '255.255.255.255'],
    ['1.2.3.4.5', null], ['256.1', null], ['1..2', null], ['', null], ['09.1', null], ['1.2.3.256', null], ['x', null],
    // The four-decimal-parts spelling has its own quick reader: its edges, and what it leaves to the full one.
    ['0.0.0.0', '0.0.0.0'], ['255.255.255.255', '255.255.255.255'], ['01.2.3.4', '1.2.3.4'], ['1.2.3.04', '1.2.3.4'],
    ['1.2.3.4 x', '1.2.3.4'], ['1.2.3.', null], ['.1.2.3', null], ['1000.2.3.4', null], ['1.2.3.4.', null], ['1.2.3.1000', null],
  ];
  for (const [text, want] of table) {
    const got = inetAton(text);
    assert.equal(got === null ? null : [got >>> 24, (got >>> 16) & 255, (got >>> 8) & 255, got & 255].join('.'), want, text);
  }
});

test('string_to_number is strtol over the whole string', () => {
  assert.equal(stringToNumber('65535', 0, 65535), 65535);
  assert.equal(stringToNumber('65536', 0, 65535), -1);
  assert.equal(stringToNumber(' +7', 0, 10), 7);
  assert.equal(stringToNumber('7 ', 0, 10), -1);
  assert.equal(stringToNumber('', 0, 10), -1);
  assert.equal(stringToNumber('0x10', 0, 100), -1);
  assert.equal(stringToNumber('007', 0, 10), 7);
  assert.equal(stringToNumber('999999999', 0, 2147483647), 999999999);
  assert.equal(stringToNumber('2147483648', 0, 2147483647), -1);
  assert.equal(stringToNumber('5', 6, 10), -1);
});

test('combined short options and attached arguments', () => {
  assert.deepEqual(parse('-Ln'), { cmd: 'list', what: 'all', service: null, format: 1 });
  const lnc = parse('-lnc');
  assert.equal(lnc.cmd === 'list' && lnc.what, 'connections');
  const a = parse('-At10.0.0.1:80 -srr');
  assert.equal(a.cmd, 'add-service');
  if (a.cmd === 'add-service') {
    assert.equal(a.service.addr, 0x0a000001);
    assert.equal(a.service.port, 80);
    assert.equal(a.service.scheduler, 'rr');
  }
  const b = parse('--add-service --tcp-service=10.0.0.1:http --scheduler=wrr');
  assert.ok(b.cmd === 'add-service' && b.service.port === 80 && b.service.scheduler === 'wrr');
});

test('-p takes an optional argument; bare -p is 360 seconds (IPVS_SVC_PERSISTENT_TIMEOUT), as ipvsadm 1.31 gives', () => {
  const timeoutOf = (line: string): number => {
    const c = parse(line);
    assert.ok(c.cmd === 'add-service');
    assert.equal(c.service.flags & 1, 1);
    return c.service.timeout;
  };
  assert.equal(timeoutOf('-A -t 10.0.0.1:80 -p'), 360);
  assert.equal(timeoutOf('-A -t 10.0.0.1:80 -p 600'), 600);
  assert.equal(timeoutOf('-A -t 10.0.0.1:80 -p600'), 600);
  assert.equal(timeoutOf('-A -t 10.0.0.1:80 --persistent=60'), 60);
  assert.equal(timeoutOf('-A -t 10.0.0.1:80 -p -s rr'), 360);
  assert.equal(timeoutOf('-A -t 10.0.0.1 -p'), 360); // port 0 is fine when persistent
  assert.equal(exitOf('-A -t 10.0.0.1:80 -p rr').stderr, "invalid timeout value `rr' specified\n");
});

test('real-server ports: DR and TUN take the service port, NAT keeps its own or inherits it', () => {
  const destOf = (line: string): { port: number; fwd: number; weight: number } => {
    const c = parse(line);
    assert.ok(c.cmd === 'add-dest');
    return c.dest;
  };
  assert.equal(destOf('-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -g').port, 80);
  assert.equal(destOf('-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -i').port, 80);
  assert.equal(destOf('-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m').port, 8080);
  assert.equal(destOf('-a -t 10.0.0.1:80 -r 10.0.0.2 -m').port, 80);
  // -r before -t: the service port was still 0 when -r was read (ipvsadm parses in order).
  assert.equal(destOf('-a -r 10.0.0.2 -t 10.0.0.1:80 -m').port, 0);
  const d = destOf('-a -t 10.0.0.1:80 -r 10.0.0.2');
  assert.equal(d.fwd, ForwardMethod.DROUTE);
  assert.equal(d.weight, 1);
  assert.equal(destOf('-a -f 3 -r 10.0.0.2:0 -m -w 65535').weight, 65535);
});

test('help and version print to stdout and exit 0', () => {
  const h = exitOf('-h');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^ipvsadm v1\.31 2019\/12\/24 \(compiled with popt and IPVS v1\.2\.1\)\nUsage:\n {2}uvsadm -A\|E virtual-service/);
  const v = exitOf('--version');
  assert.equal(v.stdout, 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n');
});

test('-R input lines: words, "ipvsadm" skipped, comments dropped', () => {
  assert.deepEqual(splitRestoreLines('ipvsadm -A -t 1.2.3.4:80 -s rr\n\n  # only a comment\n-a -t 1.2.3.4:80 -r 5.6.7.8 # tail\n'), [
    ['-A', '-t', '1.2.3.4:80', '-s', 'rr'],
    ['-a', '-t', '1.2.3.4:80', '-r', '5.6.7.8'],
  ]);
  // Tabs and CRs separate words; a '#' inside a word keeps that word and ends the line; no
  // newline at the end still ends the last line.
  assert.deepEqual(splitRestoreLines('-A\t-t 1.2.3.4:80#x -s rr\r\n#-C\n \t\n-D -t 1.2.3.4:80'), [
    ['-A', '-t', '1.2.3.4:80#x'],
    ['-D', '-t', '1.2.3.4:80'],
  ]);
  // A -R inside -R input is refused as ipvsadm refuses it (restore_table).
  assert.throws(
    () => parseIpvsadmArgs(['-R'], { program: 'uvsadm', resolver: FIXTURE_RESOLVER, readingStdin: true }),
    (e: unknown) => e instanceof IpvsadmExit && e.status === 255,
  );
});
