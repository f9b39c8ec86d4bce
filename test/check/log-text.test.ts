// keepalived 2.2's checker log texts (check/log-text.ts), checked against the format strings in
// keepalived's source (check_tcp.c, check_http.c, ipwrapper.c) so log alerts written for
// keepalived match uvsd's lines.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDetailLine, keepalivedCheckLines } from '../../src/check/log-text';
import type { CheckEvent } from '../../src/check/runner';
import type { RealServerOptions, VirtualServerOptions } from '../../src/check/types';

const vs = { id: 1, address: '10.0.0.1', port: 80, protocol: 'TCP' } as unknown as VirtualServerOptions;
const rs = { id: 2, address: '10.0.0.2', port: 80 } as unknown as RealServerOptions;

test('failure, removal, recovery, weight and quorum lines in keepalived\'s words', () => {
  const down: CheckEvent = { type: 'rs-down', vs, rs, inhibit: false, checker: 'TCP_CHECK', trail: ['connect 10.0.0.2:80', 'ECONNREFUSED'], initial: false, stopping: false };
  assert.deepEqual(keepalivedCheckLines(down), [
    'TCP_CHECK on service [10.0.0.2]:tcp:80 failed.',
    'TCP_CHECK on service [10.0.0.2]:tcp:80: ECONNREFUSED',
    'Removing service [10.0.0.2]:tcp:80 from VS [10.0.0.1]:tcp:80',
  ]);
  assert.equal(keepalivedCheckLines({ ...down, inhibit: true, checker: 'HTTP_GET', trail: [] }).join('|'),
    'HTTP_CHECK on service [10.0.0.2]:tcp:80 failed.|Disabling service [10.0.0.2]:tcp:80 from VS [10.0.0.1]:tcp:80');
  assert.deepEqual(keepalivedCheckLines({ ...down, initial: true, trail: [] }), ['TCP_CHECK on service [10.0.0.2]:tcp:80 failed.']);
  assert.deepEqual(keepalivedCheckLines({ ...down, stopping: true }), []);
  const up: CheckEvent = { type: 'rs-up', vs, rs, weight: 1, checker: 'TCP_CHECK', trail: [] };
  assert.deepEqual(keepalivedCheckLines(up), ['TCP connection to [10.0.0.2]:tcp:80 success.', 'Adding service [10.0.0.2]:tcp:80 to VS [10.0.0.1]:tcp:80']);
  assert.deepEqual(keepalivedCheckLines({ ...up, rs: { ...rs, inhibitOnFailure: true }, checker: null }), ['Enabling service [10.0.0.2]:tcp:80 to VS [10.0.0.1]:tcp:80']);
  const udpVs = { ...vs, protocol: 'UDP' } as VirtualServerOptions;
  assert.deepEqual(keepalivedCheckLines({ type: 'rs-weight', vs: udpVs, rs, weight: 3, previous: 1, alive: true }),
    ['Changing weight from 1 to 3 for active service [10.0.0.2]:udp:80 of VS [10.0.0.1]:udp:80']);
  assert.deepEqual(keepalivedCheckLines({ type: 'rs-weight', vs, rs, weight: 0, previous: 1, alive: false }),
    ['Changing weight from 1 to 0 for inactive service [10.0.0.2]:tcp:80 of VS [10.0.0.1]:tcp:80']);
  assert.deepEqual(keepalivedCheckLines({ type: 'quorum-lost', vs, weightSum: 1, threshold: 2, init: false, stopping: false, sorrySwitched: true }),
    ['Lost quorum 1 < 2 for VS [10.0.0.1]:tcp:80; sorry server in']);
  assert.deepEqual(keepalivedCheckLines({ type: 'quorum-gained', vs, weightSum: 2, threshold: 2, init: false, stopping: false, sorrySwitched: false }),
    ['Gained quorum 2 >= 2 for VS [10.0.0.1]:tcp:80']);
});

test('-D detail: one line per check, only for check events', () => {
  assert.equal(checkDetailLine({ type: 'check', vs, rs, checker: 'HTTP_GET', index: 0, result: { ok: false, trail: ['status 503'], elapsedMs: 3.4 } }),
    'HTTP_GET on service [10.0.0.2]:tcp:80 of VS [10.0.0.1]:tcp:80: failure in 3 ms (status 503)');
  assert.equal(checkDetailLine({ type: 'rs-weight', vs, rs, weight: 3, previous: 1, alive: true }), null);
});
