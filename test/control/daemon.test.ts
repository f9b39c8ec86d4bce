// The daemon object in-process: starts on a socket, runs stop hooks newest first, applies configs
// by diff (a refused config changes nothing), attach points for the data plane.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Daemon } from '../../src/control/daemon';
import { parseUvsdArgs } from '../../src/control/uvsd-options';
import { ForwardMethod } from '../../src/tables/dest-table';
import { IpvsError, TunnelType } from '../../src/service/model';
import { IPPROTO_TCP } from '../../src/packet/ipv4';
import type { ModelConfig } from '../../src/service/model';
import { uvsadm } from './helpers';
import { linesLogger } from '../../src/runtime/log';

const config = (weight: number, scheduler = 'rr'): ModelConfig => ({
  services: [{
    fwmark: 0, af: 4, protocol: IPPROTO_TCP, addr: 0x0a000001, port: 80, scheduler, flags: 0, timeout: 0,
    netmask: 0xffffffff, peName: '',
    dests: [{ af: 4, addr: 0x0a000102, port: 80, fwd: ForwardMethod.DROUTE, weight, uThreshold: 0, lThreshold: 0, tunType: TunnelType.IPIP, tunPort: 0, tunFlags: 0 }],
  }],
  timeouts: { tcp: 900, tcpFin: 120, udp: 300 },
});

test('daemon: config by diff, data-plane attach points, stop hooks newest first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-daemon-'));
  const socket = join(dir, 'd.sock');
  const log: string[] = [];
  const daemon = await Daemon.start(parseUvsdArgs(['--no-config', '--socket', socket]), linesLogger(log, 'E '), {});
  try {
    daemon.applyConfig(config(1));
    const slot = daemon.model.list()[0]!.dests[0]!.slot;
    daemon.applyConfig(config(5));
    assert.equal(daemon.model.list()[0]!.dests[0]!.slot, slot, 'a weight change keeps the real server in place');
    const before = JSON.stringify(daemon.model.exportConfig());
    assert.throws(() => daemon.applyConfig(config(5, 'nosuch')), IpvsError);
    assert.equal(JSON.stringify(daemon.model.exportConfig()), before);

    let total = 7;
    daemon.attachCounters({
      readService: (_id, out) => { out.conns = total; out.inpkts = out.outpkts = out.inbytes = out.outbytes = 0; },
      readDest: (_s, out) => { out.conns = total; out.inpkts = out.outpkts = out.inbytes = out.outbytes = 0; },
    });
    total = 10;
    daemon.attachConnections({
      list: () => [{ protocol: 'TCP', caddr: 0x0a000063, cport: 1234, vaddr: 0x0a000001, vport: 80, daddr: 0x0a000102, dport: 80, state: 'SYN_RECV', expiresMs: 59_000 }],
    });
    const conns = await uvsadm({ socketPath: socket }, ['-Lnc']);
    assert.equal(conns.stdout.split('\n')[2], 'TCP 00:59  SYN_RECV    10.0.0.99:1234     10.0.0.1:80        10.0.1.2:80');
    // Attached counters count from the moment of attachment: 10 - 7.
    const stats = await uvsadm({ socketPath: socket }, ['-Ln', '--stats']);
    assert.equal(stats.stdout.split('\n')[3], `${'TCP  10.0.0.1:80'.padEnd(33)}${'3'.padStart(9)}${'0'.padStart(9).repeat(4)}`);
  } finally {
    const order: string[] = [];
    daemon.onStop('first', () => { order.push('first'); });
    daemon.onStop('second', () => { order.push('second'); return Promise.reject(new Error('boom')); });
    await daemon.stop();
    assert.deepEqual(order, ['second', 'first']);
    assert.ok(log.some((l) => l === 'E shutdown of second failed: boom'));
    assert.equal(existsSync(socket), false);
    rmSync(dir, { recursive: true, force: true });
  }
});
