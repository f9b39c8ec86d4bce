// ipvsadm's number formatting, sort quirks and connection rows.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FMT_EXACT, FMT_NUMERIC, FMT_PERSISTENTCONN } from '../../src/config/ipvsadm-args';
import { NUMERIC_ONLY, TableResolver } from '../../src/config/ipvsadm-addr';
import { compareServices, largeNum, listConnections } from '../../src/control/format';
import type { ListedService } from '../../src/control/protocol';

test('print_largenum: 9 columns, K/M/G/T beyond them, --exact widens', () => {
  const table: [number, string][] = [
    [0, '        0'], [99999999, ' 99999999'], [100000000, '  100000K'], [999999999, '  999999K'],
    [1000000000, '    1000M'], [99999999999, '   99999M'], [100000000000, '     100G'],
    [99999999999999, '   99999G'], [100000000000000, '     100T'],
  ];
  for (const [n, s] of table) assert.equal(largeNum(n, 0), s, String(n));
  assert.equal(largeNum(123, FMT_EXACT), '      123');
  assert.equal(largeNum(12345678, FMT_EXACT), ' 12345678');
  assert.equal(largeNum(1234567890, FMT_EXACT), ' 1234567890');
});

const listed = (addr: number, port: number, protocol = 6, fwmark = 0): ListedService => ({
  fwmark, af: 4, protocol, addr, port, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '', id: 0,
  dests: [], stats: { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 },
  rates: { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 },
});

test('ipvs_cmp_services: fwmark, protocol, then address as a wrapped int difference', () => {
  const s = [listed(0xc8000001, 80), listed(0x0a000001, 80), listed(0x0a000001, 53, 17), listed(0, 0, 6, 5), listed(0x0a000001, 22)];
  const order = [...s].sort(compareServices).map((x) => `${x.fwmark}/${x.protocol}/${(x.addr >>> 24)}/${x.port}`);
  // libipvs computes ntohl(a) - ntohl(b) in 32 bits and reads it as int: 10.x minus 200.x wraps
  // to a positive number, so 200.0.0.1 sorts before 10.0.0.1 (what ipvsadm really prints).
  assert.deepEqual(order, ['0/6/200/80', '0/6/10/22', '0/6/10/80', '0/17/10/53', '5/6/0/0']);
});

test('-c rows: mm:ss expiry, padded columns, names when not numeric', () => {
  const conns = [
    { protocol: 'TCP', caddr: 0x0a000063, cport: 40000, vaddr: 0xc0a834bc, vport: 80, daddr: 0xc0a83464, dport: 80, state: 'ESTABLISHED', expiresMs: 899_999 },
    { protocol: 'UDP', caddr: 0x0a000063, cport: 5353, vaddr: 0xc0a834bc, vport: 53, daddr: 0xc0a83465, dport: 53, state: 'UDP', expiresMs: 65_000, peName: 'sip', peData: 'abc' },
  ];
  assert.equal(listConnections(conns, FMT_NUMERIC, NUMERIC_ONLY),
    'IPVS connection entries\n' +
    'pro expire state       source             virtual            destination\n' +
    'TCP 14:59  ESTABLISHED 10.0.0.99:40000    192.168.52.188:80  192.168.52.100:80\n' +
    'UDP 01:05  UDP         10.0.0.99:5353     192.168.52.188:53  192.168.52.101:53\n');
  const names = new TableResolver({ hosts: [['client', 0x0a000063]], services: [['http', 80, 'tcp'], ['domain', 53, 'udp']] });
  assert.equal(listConnections(conns, FMT_PERSISTENTCONN, names),
    'IPVS connection entries\n' +
    'pro expire state       source             virtual            destination        pe name          pe_data\n' +
    'TCP 14:59  ESTABLISHED client:40000       192.168.52.188:http 192.168.52.100:http\n' +
    'UDP 01:05  UDP         client:5353        192.168.52.188:domain 192.168.52.101:domain sip                abc\n');
});
