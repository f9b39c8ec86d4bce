// The gratuitous ARP frame against one captured from `arping -U` (test/fixtures/packets/arp-gratuitous.txt),
// and the socket endpoints the router asks the io for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { macToInt, ipv4ToInt } from '../../src/packet/addr';
import { GARP_CONTENT_LENGTH, MIN_FRAME_LENGTH, gratuitousArpFrame } from '../../src/vrrp/garp';
import { loadFixture } from '../packet/fixtures';
import { config, harness } from './fakes';

test('gratuitous ARP: the same bytes as arping -U, padded to the Ethernet minimum', () => {
  const [captured] = loadFixture('arp-gratuitous');
  const frame = gratuitousArpFrame(macToInt('4a:4a:d0:b0:4c:47'), ipv4ToInt('10.201.0.1'));
  assert.equal(frame.length, MIN_FRAME_LENGTH);
  assert.deepEqual(Buffer.from(frame.subarray(0, GARP_CONTENT_LENGTH)), Buffer.from(captured!.bytes.subarray(0, GARP_CONTENT_LENGTH)));
  assert.ok(frame.subarray(GARP_CONTENT_LENGTH).every((b) => b === 0));
});

test('socket endpoints: one per interface, joining the group only where some instance multicasts', () => {
  const h = harness([
    config({ name: 'A', vrid: 1, interface: 'eth0', ifindex: 2 }),
    config({ name: 'B', vrid: 2, interface: 'eth0', ifindex: 2 }),
    config({ name: 'C', vrid: 3, interface: 'eth1', primaryAddress: '10.1.0.2', unicastPeers: ['10.1.0.3'] }),
  ]);
  assert.deepEqual(h.router.endpoints(), [
    { interfaceName: 'eth0', ifindex: 2, multicastGroup: '224.0.0.18', source: '10.0.0.2' },
    { interfaceName: 'eth1', ifindex: 0, multicastGroup: undefined, source: '10.1.0.2' },
  ]);
});
