import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumpDir, formatChecks, formatVrrpData, formatVrrpStats, vrrpJson } from '../../src/control/dumps';
import type { VrrpInstanceReport } from '../../src/control/vrrp';
import { instanceConfig } from '../../src/vrrp/config';
import { emptyStats } from '../../src/vrrp/types';

function report(): VrrpInstanceReport {
  const config = instanceConfig({
    name: 'VI_1', interface: 'eth0', vrid: 51, primaryAddress: '192.168.200.1', priority: 100, authType: 1, authPass: '1111',
    virtualAddresses: [{ address: '192.168.200.16', prefixLength: 32, dev: 'eth0' }, { address: '192.168.200.17', prefixLength: 32, dev: 'eth0' }],
  });
  return {
    config, state: 'MASTER', effectivePriority: 100, lastTransition: 1_765_000_000_000, transitions: { BACKUP: 1, MASTER: 1 },
    stats: { ...emptyStats(), advertsSent: 42, becameMaster: 1, authFailure: 2, priorityZeroReceived: 1 },
  };
}

test('keepalived.stats: vrrp_print_stats\'s lines for each instance', () => {
  assert.equal(formatVrrpStats([report()]), `VRRP Instance: VI_1
  Advertisements:
    Received: 0
    Sent: 42
  Became master: 1
  Released master: 0
  Packet Errors:
    Length: 0
    TTL: 0
    Invalid Type: 0
    Advertisement Interval: 0
    Address List: 0
  Authentication Errors:
    Invalid Type: 0
    Type Mismatch: 0
    Failure: 2
  Priority Zero:
    Received: 1
    Sent: 0
`);
});

test('keepalived.data: the VRRP topology (state, priority, VIPs) and the checkers', () => {
  const text = formatVrrpData([report()]) + formatChecks([{
    virtualServer: '[192.168.200.100]:443', quorumUp: true, sorryActive: false,
    servers: [{ realServer: '[192.168.201.100]:443', alive: false, weight: 1, checkers: [{ kind: 'SSL_GET', up: false }] }],
  }]);
  for (const line of [
    '------< VRRP Topology >------', ' VRRP Instance = VI_1', ' VRRP Version = 2', '   State = MASTER', '   Listening device = eth0',
    '   Virtual Router ID = 51', '   Priority = 100', '   Advert interval = 1 sec', '   Authentication type = SIMPLE_PASSWORD',
    '   Virtual IP = 2', '     192.168.200.16/32 dev eth0 scope global', '------< Health checkers >------',
    ' Virtual server = [192.168.200.100]:443', '   Real server = [192.168.201.100]:443', '     State = DOWN', '     SSL_GET = DOWN',
  ]) assert.ok(text.split('\n').includes(line), `missing line "${line}" in\n${text}`);
  assert.match(text, /^ {3}Last transition = 1765000000 \(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\)$/m);
});

test('keepalived.json: vrrp_json.c\'s {data, stats} objects', () => {
  const [one] = vrrpJson([report()]) as [{ data: Record<string, unknown>; stats: Record<string, number> }];
  assert.equal(one.data['iname'], 'VI_1');
  assert.equal(one.data['state'], 2);
  assert.equal(one.data['vrid'], 51);
  assert.equal(one.data['base_priority'], 100);
  assert.equal(one.data['ifp_ifname'], 'eth0');
  assert.deepEqual(one.data['vips'], ['192.168.200.16/32 dev eth0 scope global', '192.168.200.17/32 dev eth0 scope global']);
  assert.equal(one.data['last_transition'], 1_765_000_000);
  assert.equal(one.data['auth_data'], '1111');
  assert.deepEqual(Object.keys(one.stats), ['advert_rcvd', 'advert_sent', 'become_master', 'release_master', 'packet_len_err',
    'advert_interval_err', 'ip_ttl_err', 'invalid_type_rcvd', 'addr_list_err', 'invalid_authtype', 'authtype_mismatch', 'auth_failure',
    'pri_zero_rcvd', 'pri_zero_sent']);
  assert.equal(one.stats['advert_sent'], 42);
});

test('the dump directory is $TMPDIR when absolute, else /tmp (keepalived\'s tmp_dir)', () => {
  assert.equal(dumpDir({}), '/tmp');
  assert.equal(dumpDir({ TMPDIR: '/var/tmp/x' }), '/var/tmp/x');
  assert.equal(dumpDir({ TMPDIR: 'relative' }), '/tmp');
});
