// Persistent port-0 services (all ports of a VIP, ipvsadm -A -t VIP:0 -p) and the kernel guard:
// the director's kernel must not answer their packets itself. Before, the guard had no element
// for port 0 (its sets match one port), so every SYN to such a service also earned a RST from the
// director's kernel (the VIP is a local address and nothing listens), racing the real server's
// SYN-ACK. Lab: lab.sh "dr" (client, director, two real servers on one L2). Needs root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, labSuffix, lab, inNs, curlFrom, nstatIn } from './helpers';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns();
const S = labSuffix('z');
const P = `uvs${S}`;
const DIR = `${P}dir`;
const CL = `${P}cl`;
const VIP = '10.77.0.100';
const RS = '10.77.0.21';
const daemon = new UvsdProcess(DIR);

before(() => {
  if (!why) lab(S, 'up', 'dr');
});

after(async () => {
  await daemon.stop('SIGKILL');
  if (!why) lab(S, 'down');
});

test('a persistent port-0 service: the guard covers every port of the VIP, the director sends no RST and the kernel ruleset has it', { skip: why ?? false }, async () => {
  await daemon.start(['--workers', '1'], /data plane: \d+ worker/);
  daemon.uvsadm('-A', '-t', `${VIP}:0`, '-s', 'rr', '-p', '60');
  daemon.uvsadm('-a', '-t', `${VIP}:0`, '-r', `${RS}:0`, '-g');
  const ruleset = inNs(DIR, 'nft', ['list', 'table', 'ip', 'uvs']).stdout;
  const rsts = nstatIn(DIR, 'TcpOutRsts');
  for (let i = 0; i < 5; i++) {
    const r = curlFrom(CL, `http://${VIP}:80/`);
    assert.equal(r.status, 0, `curl ${i}: exit ${r.status}\n${daemon.log}`);
    assert.equal(r.body.trim(), 'rs1');
  }
  assert.equal(nstatIn(DIR, 'TcpOutRsts') - rsts, 0, `the director's kernel answered port-0 service packets with RSTs\n${ruleset}`);
  assert.match(ruleset, new RegExp(`set services_any \\{[^}]*elements = \\{ ${VIP.replace(/\./g, '\\.')} \\. tcp`), ruleset);
  // Another protocol on the VIP stays the kernel's.
  assert.doesNotMatch(ruleset, /udp/);
});
