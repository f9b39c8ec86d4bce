// `uvsd -t` says what keepalived 2.2.7 says about vrrp_strict and the VRRP global_defs, at the
// same lines, and exits as keepalived -t does; a start runs with keepalived's corrections (it logs
// them), as keepalived does. Fixtures in test/fixtures/keepalived/diagnostics/. Texts are
// keepalived's (global_parser.c, vrrp.c vrrp_complete_instance).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { configTestExitCode, formatDiagnostic, fsReader, parseKeepalivedConfig, validateKeepalivedModel } from '../../src/config/keepalived';
import type { Machine } from '../../src/config/keepalived';
import { loadKeepalivedConfig } from '../../src/control/config-loader';
import { vrrpFromKeepalived } from '../../src/vrrp/from-keepalived';

const DIR = path.resolve(__dirname, '../../../test/fixtures/keepalived/diagnostics');
const machine: Machine = {
  getInterface: (name) => (name === 'eth0' || name === 'lo' ? { name, loopback: name === 'lo' } : null),
  findExecutable: () => null,
  userExists: (u) => u === 'root',
};

function diagnose(file: string): { lines: string[]; exit: number } {
  const { model, diagnostics } = parseKeepalivedConfig(path.join(DIR, file), fsReader, { configId: 'x' });
  const all = [...diagnostics, ...validateKeepalivedModel(model, machine)];
  return { lines: all.map(formatDiagnostic).map((l) => l.replace(`${DIR}/`, '')), exit: configTestExitCode(all) };
}

test('vrrp_strict sample: keepalived\'s six reports, each at its line; -t exits 5 as keepalived -t does', () => {
  const r = diagnose('strict-tutorial.conf');
  assert.deepEqual(r.lines.sort(), [
    "strict-tutorial.conf:9: warning: vrrp_gna_interval '0' is invalid",
    "strict-tutorial.conf:7: warning: iptables not supported, using nftables instead. Please replace 'vrrp_iptables and 'vrrp_ipsets' with 'nftables' config option",
    "strict-tutorial.conf:8: warning: vrrp_garp_interval '0' is invalid",
    'strict-tutorial.conf:14: warning: (VI_1) State MASTER must match being address owner',
    'strict-tutorial.conf:20: warning: (VI_1) Ignoring track_interface eth0 since own interface',
    'strict-tutorial.conf:22: warning: (VI_1) Strict mode does not support authentication. Ignoring.',
  ].sort());
  assert.equal(r.exit, 5);
});

test('vrrp_strict with the owner as MASTER and valid intervals: nothing to report, exit 0', () => {
  assert.deepEqual(diagnose('strict-owner.conf'), { lines: [], exit: 0 });
});

test('a start runs the vrrp_strict sample with keepalived\'s corrections: BACKUP, no authentication, own interface not tracked', () => {
  const loaded = loadKeepalivedConfig(path.join(DIR, 'strict-tutorial.conf'), { reader: fsReader, machine }, 'x', true);
  assert.equal(loaded.warnings.filter((w) => /is invalid|State MASTER|since own interface|Strict mode|nftables/.test(w)).length, 6, loaded.warnings.join('\n'));
  const vrrp = vrrpFromKeepalived(loaded.keepalived, { ifindex: () => 2, primaryAddress: () => '192.168.200.2' });
  const vi1 = vrrp.config.instances[0]!;
  assert.equal(vi1.initialState, 'BACKUP');
  assert.equal(vi1.priority, 100);
  assert.equal(vi1.authType, 0);
  assert.deepEqual(vi1.trackInterfaces, []);
  // -t (not a start) still refuses it with keepalived's exit code.
  assert.throws(() => loadKeepalivedConfig(path.join(DIR, 'strict-tutorial.conf'), { reader: fsReader, machine }, 'x'), (e: Error & { exitCode?: number }) => e.exitCode === 5);
});

test('an unset priority follows state MASTER (255, the owner) as in keepalived', () => {
  const { model } = parseKeepalivedConfig(path.join(DIR, 'strict-owner.conf'), fsReader, { configId: 'x' });
  model.vrrpInstances[0]!.priority = undefined;
  const vrrp = vrrpFromKeepalived(model, { ifindex: () => 2, primaryAddress: () => '192.168.200.2' });
  assert.equal(vrrp.config.instances[0]!.priority, 255);
  assert.equal(vrrp.config.instances[0]!.initialState, 'MASTER');
});
