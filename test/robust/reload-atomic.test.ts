// A reload is all or nothing: when the VRRP thread refuses the new file (here: its socket cannot
// open on a new instance's interface, which only the thread can find out), the service table, the
// checkers and every VRRP instance run on exactly as before, and the refusal is logged at the
// file:line of the instance it concerns. The VRRP thread runs on the fake io module (no network).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../src/control/daemon';
import { parseUvsdArgs } from '../../src/control/uvsd-options';
import { linesLogger } from '../../src/runtime/log';

function conf(weight: number, priority: number, extra = ''): string {
  return `global_defs {
  vrrp_version 3
}
${extra}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority ${priority}
  advert_int 0.1
  garp_master_delay 0
  virtual_ipaddress {
    10.0.0.100/32
  }
}
virtual_server 10.0.0.100 80 {
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 10.0.1.2 80 {
    weight ${weight}
  }
}
`;
}

const VI_2 = `vrrp_instance VI_2 {
  interface eth0
  unicast_src_ip 10.0.0.77
  unicast_peer {
    10.0.0.2
  }
  virtual_router_id 52
  priority 100
  virtual_ipaddress {
    10.0.0.101/32
  }
}
`;

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a reload the VRRP thread refuses leaves services and VRRP exactly as before, with a file:line error', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-reload-atomic-'));
  const file = join(dir, 'keepalived.conf');
  writeFileSync(file, conf(1, 100));
  const log: string[] = [];
  const daemon = await Daemon.start(
    parseUvsdArgs(['--io', 'none', '--socket', join(dir, 'uvsd.sock'), '-f', file]),
    linesLogger(log, 'E '),
    {},
    {
      vrrp: {
        io: { module: join(__dirname, '..', 'vrrp', 'fake-io.js'), options: { channel: `uvs-reload-atomic-${process.pid}`, refuse: ['10.0.0.77'] } },
        facts: () => ({ ifindex: () => 0, primaryAddress: () => '10.0.0.1' }),
      },
    },
  );
  try {
    const glue = daemon.vrrpGlue!;
    await waitFor('VI_1 MASTER', () => glue.instanceStates().get('VI_1') === 'MASTER');
    const table = JSON.stringify(daemon.model.exportConfig());
    const vrrpBefore = await glue.vrrp!.stats();

    // A good reload first: both parts change (the mechanism works at all).
    writeFileSync(file, conf(2, 110));
    await daemon.reload();
    assert.notEqual(JSON.stringify(daemon.model.exportConfig()), table, log.join('\n'));
    await waitFor('priority 110', async () => (await glue.vrrp!.stats()).instances['VI_1']?.priority === 110);
    const goodTable = JSON.stringify(daemon.model.exportConfig());
    const goodVrrp = await glue.vrrp!.stats();
    assert.equal(vrrpBefore.instances['VI_1']?.priority, 100);

    // The refused one: a weight change, VI_1's priority, and VI_2 (first in the file, so the socket's source address becomes its own) on a source the thread
    // cannot open a socket on.
    writeFileSync(file, conf(3, 150, VI_2));
    await daemon.reload();
    assert.equal(JSON.stringify(daemon.model.exportConfig()), goodTable, 'the table is as before');
    const after = await glue.vrrp!.stats();
    assert.deepEqual(Object.keys(after.instances), Object.keys(goodVrrp.instances), 'no instance added');
    assert.equal(after.instances['VI_1']?.priority, 110, 'VI_1 runs on with its old priority');
    assert.equal(glue.instanceStates().get('VI_1'), 'MASTER');
    assert.equal(glue.serviceActive(0x0a000065), true, '10.0.0.101 is not managed: the refused file was not adopted');
    assert.equal(daemon.currentConfig()?.model.services[0]?.dests[0]?.weight, 2, 'the daemon still runs the previous file');
    const refusal = log.find((l) => l.startsWith('E reload of'));
    assert.ok(refusal, log.join('\n'));
    assert.match(refusal, /keepalived\.conf:4: vrrp_instance VI_2: .*.*10\.0\.0\.77/, refusal);

    // And the next good file still reloads whole.
    writeFileSync(file, conf(4, 120));
    await daemon.reload();
    assert.equal(daemon.model.exportConfig().services[0]?.dests[0]?.weight, 4);
    await waitFor('priority 120', async () => (await glue.vrrp!.stats()).instances['VI_1']?.priority === 120);
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
