// NAT over `uvsd --io pcap`: the NAT lab (real servers behind the director), the same checks the
// ring's NAT test makes (mode-lab.ts), with uvsd started on the libpcap backend. The replies of a
// download reach the director as the real servers' 64 KiB TSO super-frames, which the backend
// cuts into segments itself (pcap-loop.ts). Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, labSuffix } from './helpers';
import { VIP } from './mode-lab';
import { PcapModeLab, removeOffloadRecord } from './pcap-lab';

const why = cannotRunNetns();
const lab = new PcapModeLab(labSuffix('q'), 'nat', '-m');
// rs1 through port translation (VIP:80 → RIP:8080), rs2 on the same port.
const RS: [string, string] = ['10.78.0.21:8080', '10.78.0.22:80'];
const UDP_RS: [string, string] = ['10.78.0.21:5353', '10.78.0.22:53'];

before(() => {
  if (!why) lab.up();
});

after(async () => {
  await lab.stopUvsd('SIGKILL');
  if (!why) {
    removeOffloadRecord(lab.DIR);
    lab.down();
  }
});

test('NAT over libpcap: rr 10/10 with port translation, OutPkts, wrr 15/5, 2 MB down, 3 MB up, no RST, no kernel forwarding', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[0], '-m');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[1], '-m');
  const rsts = lab.nstat(lab.DIR, 'TcpOutRsts');
  const fwd = lab.nstat(lab.DIR, 'IpForwDatagrams');

  assert.deepEqual(lab.split(20), { rs1: 10, rs2: 10 });
  const s = lab.stats('TCP', 80);
  assert.equal(s.conns, 20, s.text);
  assert.ok(s.outPkts >= 20 * 3, `OutPkts ${s.outPkts}: ${s.text}`);
  assert.equal(s.destConns(RS[0]), 10, s.text);
  assert.equal(s.destConns(RS[1]), 10, s.text);

  lab.uvsadm('-E', '-t', `${VIP}:80`, '-s', 'wrr');
  lab.uvsadm('-e', '-t', `${VIP}:80`, '-r', RS[0], '-m', '-w', '3');
  assert.deepEqual(lab.split(20), { rs1: 15, rs2: 5 });

  lab.download2MB();
  lab.upload3MB();

  assert.equal(lab.nstat(lab.DIR, 'TcpOutRsts'), rsts, 'the director kernel sent no RST');
  assert.equal(lab.nstat(lab.DIR, 'IpForwDatagrams'), fwd, 'the director kernel forwarded nothing');

  assert.equal(await lab.stopUvsd(), 0);
  assert.equal(lab.tableLeft(), false, 'no nftables table after a clean exit');
});

test('NAT over libpcap: UDP with port translation, persistence, quiescing, deletions, a killed daemon', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  await lab.commonChecks(RS, UDP_RS);
});
