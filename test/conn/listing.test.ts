import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DestTable, ForwardMethod } from '../../src/service/dest-table';
import { ConnTable, Meta, StateFlag } from '../../src/conn/table';
import { formatConnList } from '../../src/conn/listing';
import { TcpState } from '../../src/conn/tcp-state';
import { addDest, ip } from './helpers';

test('ipvsadm -lcn format: expiry as mm:ss, state names, templates with port 0', () => {
  const dests = new DestTable(2);
  const slot = addDest(dests, '192.168.56.102', 80, ForwardMethod.DROUTE);
  const table = new ConnTable(8, dests, { workerId: 0 });
  const now = 1_000_000;
  table.insert(6, ip('192.168.56.1'), 56954, ip('192.168.56.200'), 80, ip('192.168.56.102'), 80, slot, ForwardMethod.DROUTE, 0, TcpState.ESTABLISHED, 231_400, now, -1);
  table.insert(6, ip('192.168.56.0'), 0, ip('192.168.56.200'), 80, ip('192.168.56.102'), 80, slot, ForwardMethod.DROUTE, Meta.TEMPLATE, StateFlag.INACTIVE, 3_599_000, now, -1);
  table.insert(17, ip('192.168.56.1'), 5353, ip('192.168.56.200'), 53, ip('192.168.56.102'), 53, slot, ForwardMethod.DROUTE, 0, StateFlag.INACTIVE, 300_000, now, -1);
  assert.equal(
    formatConnList(table.list(now)),
    [
      'IPVS connection entries',
      'pro expire state       source             virtual            destination',
      'TCP 03:51  ESTABLISHED 192.168.56.1:56954 192.168.56.200:80  192.168.56.102:80',
      'TCP 59:59  NONE        192.168.56.0:0     192.168.56.200:80  192.168.56.102:80',
      'UDP 05:00  UDP         192.168.56.1:5353  192.168.56.200:53  192.168.56.102:53',
      '',
    ].join('\n'),
  );
});
