// A bare persistence in keepalived.conf (`persistence_timeout` with no value) and in ipvsadm (`-p`
// with no value) is IPVS_SVC_PERSISTENT_TIMEOUT, (6*60) = 360 s in libipvs/libipvs.h — not the 300
// that ipvsadm(8) states. What `ipvsadm -Ln` and `-Sn` print for such a service, byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKeepalivedConfig } from '../../src/control/config-loader';
import { applyChange, planReload } from '../../src/service/model';
import { startLab, uvsadm } from './helpers';

const CONF = `virtual_server 10.0.0.2 443 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    persistence_timeout
    protocol TCP
    real_server 10.0.1.3 443 {
        weight 1
    }
}
`;

test('keepalived.conf: a bare persistence_timeout lists and saves as persistent 360, like keepalived + ipvsadm 1.31', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-persist-'));
  const lab = await startLab();
  try {
    const file = join(dir, 'keepalived.conf');
    writeFileSync(file, CONF);
    const loaded = loadKeepalivedConfig(file);
    for (const change of planReload(lab.model, loaded.model)) applyChange(lab.model, change);
    const listed = await uvsadm(lab, ['-Ln']);
    assert.equal(listed.status, 0, listed.stderr);
    assert.equal(listed.stdout.split('\n')[3], 'TCP  10.0.0.2:443 wrr persistent 360');
    const saved = await uvsadm(lab, ['-Sn']);
    assert.equal(saved.stdout.split('\n')[0], '-A -t 10.0.0.2:443 -s wrr -p 360');
  } finally {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uvsadm: a bare -p lists and saves as persistent 360', async () => {
  const lab = await startLab();
  try {
    assert.equal((await uvsadm(lab, ['-A', '-t', '10.0.0.2:443', '-s', 'wrr', '-p'])).status, 0);
    assert.equal((await uvsadm(lab, ['-Ln'])).stdout.split('\n')[3], 'TCP  10.0.0.2:443 wrr persistent 360');
    assert.equal((await uvsadm(lab, ['-Sn'])).stdout, '-A -t 10.0.0.2:443 -s wrr -p 360\n');
  } finally {
    await lab.close();
  }
});

test('keepalived.conf: a fwmark virtual_server loads with a warning at its line (at load and with -t): uvs does not forward it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-fwmark-'));
  try {
    const file = join(dir, 'keepalived.conf');
    writeFileSync(file, 'virtual_server fwmark 7 {\n    lb_algo rr\n    lb_kind NAT\n    real_server 10.0.1.3 80 {\n        weight 1\n    }\n}\n');
    const loaded = loadKeepalivedConfig(file);
    assert.equal(loaded.model.services.length, 1);
    assert.equal(loaded.model.services[0]!.fwmark, 7);
    assert.deepEqual(loaded.warnings.filter((w) => /fwmark/.test(w)),
      [`${file}:1: warning: virtual_server fwmark 7: firewall-mark services are kept and listed, but uvs does not forward them (it captures frames before netfilter sets marks)`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
