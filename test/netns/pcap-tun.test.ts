// TUN over `uvsd --io pcap`: the TUN lab (real servers one router away, running uvs-tun-decap),
// the checks of the ring's TUN test (tun.test.ts) with uvsd on the libpcap backend: the frames
// uvs builds (IPIP packets, ICMP "fragmentation needed") go out through pcap_inject, and the
// client's TSO super-frames are cut into segments that still fit the tunnel. Needs root.
// The real servers decapsulate with uvs-tun-decap's user-space path alone (UVS_LAB_TUN_DECAP=user),
// so this file also covers that path and its GRO; tun.test.ts covers the kernel path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { cannotRunNetns, labSuffix, inNs } from './helpers';
import { VIP } from './mode-lab';
import { PcapModeLab, removeOffloadRecord } from './pcap-lab';

const why = cannotRunNetns();
const lab = new PcapModeLab(labSuffix('u'), 'tun', '-i');
lab.tunDecap = 'user';
const RS: [string, string] = ['10.79.0.21:80', '10.79.0.22:80'];
const UDP_RS: [string, string] = ['10.79.0.21:53', '10.79.0.22:53'];

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

/** Sends a DF datagram of `size` bytes of payload to VIP:53 and reports the path MTU the client's kernel then holds. */
function dfProbe(size: number): number {
  const py = [
    'import socket, time',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    's.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO',
    `s.connect((${JSON.stringify(VIP)}, 53))`,
    `s.send(b"x" * ${size})`,
    'time.sleep(0.5)',
    'print(s.getsockopt(socket.IPPROTO_IP, 14))  # IP_MTU',
  ].join('\n');
  const r = inNs(lab.CL, 'python3', ['-c', py], 10_000);
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

test('TUN over libpcap: rr 10/10, wrr 15/5, ICMP frag-needed for a DF packet, 2 MB down, 3 MB up', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[0], '-i');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[1], '-i');
  const rsts = lab.nstat(lab.DIR, 'TcpOutRsts');
  const fwd = lab.nstat(lab.DIR, 'IpForwDatagrams');

  assert.deepEqual(lab.split(20), { rs1: 10, rs2: 10 });
  const s = lab.stats('TCP', 80);
  assert.equal(s.conns, 20, s.text);
  assert.equal(s.outPkts, 0, 'replies go from the real servers to the client directly');

  lab.uvsadm('-E', '-t', `${VIP}:80`, '-s', 'wrr');
  lab.uvsadm('-e', '-t', `${VIP}:80`, '-r', RS[0], '-i', '-w', '3');
  assert.deepEqual(lab.split(20), { rs1: 15, rs2: 5 });

  lab.uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  lab.uvsadm('-a', '-u', `${VIP}:53`, '-r', '10.79.0.21:53', '-i');
  inNs(lab.CL, 'ip', ['route', 'flush', 'cache']);
  assert.equal(dfProbe(1000), 1500, 'a datagram that fits changes nothing');
  assert.equal(dfProbe(1472), 1480, 'ICMP fragmentation needed with MTU - 20 reached the client');

  lab.download2MB();
  inNs(lab.CL, 'ip', ['route', 'flush', 'cache']);
  lab.upload3MB();
  // The upload's segments reached the real server's stack joined (uvs-tun-decap's GRO: GSO
  // super-frames written with a virtio_net_hdr, which this kernel accepted: the hash matched).
  await sleep(1300);
  const decap = lab.decapStats();
  assert.ok(decap.some((s) => Number(s['superFrames']) > 0), `uvs-tun-decap joined segments: ${JSON.stringify(decap)}`);
  assert.ok(decap.every((s) => Number(s['writeErrors']) === 0), `no failed TUN write: ${JSON.stringify(decap)}`);

  assert.equal(lab.nstat(lab.DIR, 'TcpOutRsts'), rsts, 'the director kernel sent no RST');
  assert.equal(lab.nstat(lab.DIR, 'IpForwDatagrams'), fwd, 'the director kernel forwarded nothing');
  assert.equal(await lab.stopUvsd(), 0);
  assert.equal(lab.tableLeft(), false);
});

test('TUN over libpcap: UDP, persistence, quiescing, deletions, a killed daemon', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  await lab.commonChecks(RS, UDP_RS);
});
