import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressError, intToIpv4, intToMac, ipv4ToInt, macToInt, readMac, writeMac } from '../../src/packet/addr';

test('ipv4ToInt / intToIpv4: host-order uint32, round trip', () => {
  assert.equal(ipv4ToInt('10.0.0.1'), 0x0a000001);
  assert.equal(ipv4ToInt('255.255.255.255'), 0xffffffff);
  assert.equal(ipv4ToInt('0.0.0.0'), 0);
  assert.equal(ipv4ToInt('224.0.0.18'), 0xe0000012);
  assert.equal(intToIpv4(0xc0a80101), '192.168.1.1');
  for (const s of ['1.2.3.4', '10.201.0.100', '172.16.254.3']) assert.equal(intToIpv4(ipv4ToInt(s)), s);
});

test('ipv4ToInt is strict and says what is wrong', () => {
  for (const bad of ['', '10.0.0', '10.0.0.1.2', '10.0.0.256', ' 10.0.0.1', '10.0.0.1 ', '10.00.0.1', '010.0.0.1', '0x0a.0.0.1', '10.0.0.-1', '1e1.0.0.1', '10..0.1']) {
    assert.throws(
      () => ipv4ToInt(bad),
      (e: unknown) => e instanceof AddressError && e.code === 'UVS_ERR_BAD_IPV4' && e.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
  assert.throws(() => ipv4ToInt('10.0.0.300'), /part 4 is 300, above 255/);
  assert.throws(() => ipv4ToInt('10.01.0.1'), /leading zero/);
  for (const bad of [-1, 2 ** 32, 1.5, NaN]) assert.throws(() => intToIpv4(bad), AddressError);
});

test('MAC parse/format and packet-path read/write', () => {
  assert.equal(macToInt('ff:ff:ff:ff:ff:ff'), 0xffffffffffff);
  assert.equal(macToInt('02:00:00:00:00:01'), 0x020000000001);
  assert.equal(intToMac(macToInt('4A:4a:D0:b0:4c:47')), '4a:4a:d0:b0:4c:47');
  for (const bad of ['', '02:00:00:00:00', '02-00-00-00-00-01', '0200.0000.0001', '02:00:00:00:00:0g', '2:00:00:00:00:01']) {
    assert.throws(() => macToInt(bad), (e: unknown) => e instanceof AddressError && e.code === 'UVS_ERR_BAD_MAC', bad);
  }
  assert.throws(() => intToMac(2 ** 48), AddressError);
  const buf = new Uint8Array(8);
  const view = new DataView(buf.buffer);
  writeMac(view, 1, 0x0a0b0c0d0e0f);
  assert.deepEqual([...buf], [0, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0]);
  assert.equal(readMac(view, 1), 0x0a0b0c0d0e0f);
});
