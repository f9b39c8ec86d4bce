// The kernel guard's scripts for port-0 services (all ports; guard.ts): their tuples go to the
// *_any sets as "address . protocol", which the rules match without a port; a real `nft -c` checks
// the whole ruleset where nft runs (root). The netns half: test/netns/guard-port0.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { KernelGuard, type CommandRunner } from '../../src/dataplane/guard';

function recording(): { runner: CommandRunner; scripts: string[] } {
  const scripts: string[] = [];
  return {
    scripts,
    runner: {
      run: (_cmd, args, input) => {
        if (args[0] === 'list') return Promise.resolve({ status: 0, stdout: '', stderr: '' });
        scripts.push(input ?? '');
        return Promise.resolve({ status: 0, stdout: '', stderr: '' });
      },
    },
  };
}

test('guard: a port-0 service and a port-0 NAT real server go to services_any / nat_replies_any, in setTuples and update', async () => {
  const { runner, scripts } = recording();
  const g = new KernelGuard(runner);
  await g.install();
  assert.match(scripts[0]!, /ip daddr \. meta l4proto @services_any counter drop/);
  assert.match(scripts[0]!, /ip saddr \. meta l4proto @nat_replies_any fib daddr type != local counter drop/);
  await g.setTuples([{ addr: '10.0.0.100', protocol: 'tcp', port: 0 }, { addr: '10.0.0.100', protocol: 'udp', port: 53 }], [{ addr: '10.0.0.21', protocol: 'tcp', port: 0 }]);
  const set = scripts[1]!;
  assert.match(set, /add element ip uvs services_any \{ 10\.0\.0\.100 \. tcp \}/);
  assert.match(set, /add element ip uvs services \{ 10\.0\.0\.100 \. udp \. 53 \}/);
  assert.match(set, /add element ip uvs nat_replies_any \{ 10\.0\.0\.21 \. tcp \}/);
  assert.doesNotMatch(set, /\. 0\b/);
  await g.update({ addServices: [], delServices: [{ addr: '10.0.0.100', protocol: 'tcp', port: 0 }], addNatReplies: [], delNatReplies: [], addNatSources: [], delNatSources: [] });
  assert.equal(scripts[2], 'delete element ip uvs services_any { 10.0.0.100 . tcp }\n');
});

test('guard: nft -c accepts the base ruleset and port-0 elements', { skip: process.getuid?.() !== 0 || spawnSync('nft', ['--version']).status !== 0 ? 'needs root and nft' : false }, async () => {
  const { runner, scripts } = recording();
  const g = new KernelGuard(runner, 'uvsck');
  await g.install();
  await g.setTuples([{ addr: '10.0.0.100', protocol: 'tcp', port: 0 }], [{ addr: '10.0.0.21', protocol: 'udp', port: 0 }]);
  const r = spawnSync('nft', ['-c', '-f', '-'], { input: scripts.join(''), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
