// TUN mode end to end: the real servers are one router away from the director (DR could not
// reach them), run uvs-tun-decap (this kernel has no ipip module) with the VIP on lo, and answer
// the client directly. They decapsulate in the kernel (uvs-tun-decap --bpf: a tc ingress program),
// with the agent's TUN device for what the program leaves; the last test feeds the program what
// it must refuse or leave. Everything the DR test checks, plus the tunnel's 20 bytes of MTU: a DF
// datagram that no longer fits is answered with ICMP "fragmentation needed" (MTU − 20), and
// path-MTU discovery lets a large upload (full-size segments from the client) complete.
// Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { cannotRunNetns, labSuffix, inNs, sendIpip } from './helpers';
import { ModeLab, VIP } from './mode-lab';

const why = cannotRunNetns();
const lab = new ModeLab(labSuffix('t'), 'tun', '-i');
const RS: [string, string] = ['10.79.0.21:80', '10.79.0.22:80'];
const UDP_RS: [string, string] = ['10.79.0.21:53', '10.79.0.22:53'];

before(() => {
  if (!why) lab.up();
});

after(async () => {
  await lab.stopUvsd('SIGKILL');
  if (!why) lab.down();
});

interface KernelCounters { decapsulated: number; notAllowed: number; fragments: number; failed: number; notLocal: number }

/** The tc program's counters in one uvs-tun-decap stats line (`bpf`: per device, one here). */
function kernelCounters(stats: Record<string, unknown>): KernelCounters {
  const bpf = stats['bpf'] as Record<string, KernelCounters> | undefined;
  assert.ok(bpf && Object.keys(bpf).length === 1, `uvs-tun-decap runs the kernel path on one device: ${JSON.stringify(stats)}`);
  return Object.values(bpf)[0]!;
}

/** One IPIP packet from `ns` to real server 1, carrying a UDP datagram from the client to VIP:53
 *  with `payload` bytes; without DF, so a long one leaves in outer fragments. */
function sendIpipToRs1(ns: string, payload: number): void {
  sendIpip(ns, { outerDst: '10.79.0.21', innerSrc: '10.77.0.10', innerDst: VIP, dport: 53, payload: 'q'.repeat(payload), fragmentable: true });
}

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

test('TUN with one worker: rr 10/10, wrr 15/5, stats, ICMP frag-needed for a DF packet, 2 MB down, 3 MB up via PMTU discovery', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[0], '-i');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[1], '-i');
  const rsts = lab.nstat(lab.DIR, 'TcpOutRsts');
  const fwd = lab.nstat(lab.DIR, 'IpForwDatagrams');

  assert.deepEqual(lab.split(20), { rs1: 10, rs2: 10 });
  const s = lab.stats('TCP', 80);
  assert.equal(s.conns, 20, s.text);
  assert.ok(s.inPkts >= 20 * 5, `InPkts ${s.inPkts}`);
  assert.equal(s.outPkts, 0, 'replies go from the real servers to the client directly');
  assert.equal(s.destConns(RS[0]), 10, s.text);
  assert.match(lab.uvsadm('-L', '-n'), /-> 10\.79\.0\.21:80\s+Tunnel/);

  lab.uvsadm('-E', '-t', `${VIP}:80`, '-s', 'wrr');
  lab.uvsadm('-e', '-t', `${VIP}:80`, '-r', RS[0], '-i', '-w', '3');
  assert.deepEqual(lab.split(20), { rs1: 15, rs2: 5 });

  // A DF datagram of 1472 bytes of payload (1500 on the wire) does not fit in the tunnel.
  lab.uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  lab.uvsadm('-a', '-u', `${VIP}:53`, '-r', '10.79.0.21:53', '-i');
  inNs(lab.CL, 'ip', ['route', 'flush', 'cache']);
  assert.equal(dfProbe(1000), 1500, 'a datagram that fits changes nothing');
  assert.equal(dfProbe(1472), 1480, 'ICMP fragmentation needed with MTU - 20 reached the client');

  lab.download2MB();
  inNs(lab.CL, 'ip', ['route', 'flush', 'cache']);
  lab.upload3MB();
  const route = inNs(lab.CL, 'ip', ['route', 'get', VIP]).stdout;
  assert.match(route, /mtu 1480/, `the upload went through path-MTU discovery: ${route}`);
  // All of it was decapsulated in the kernel (uvs-tun-decap --bpf on the real servers' uvs<S>e0):
  // the program counted it, and nothing reached the user-space path (pcap-tun.test.ts covers that).
  await sleep(1300);
  const decap = lab.decapStats();
  const kernel = decap.map((s) => kernelCounters(s));
  assert.ok(kernel.every((k) => k.decapsulated > 100 && k.failed === 0), `the tc program decapsulated on both real servers: ${JSON.stringify(decap)}`);
  assert.ok(decap.every((s) => Number(s['received']) === 0), `the TUN device path saw nothing: ${JSON.stringify(decap)}`);

  assert.equal(lab.nstat(lab.DIR, 'TcpOutRsts'), rsts, 'the director kernel sent no RST');
  assert.equal(lab.nstat(lab.DIR, 'IpForwDatagrams'), fwd, 'the director kernel forwarded nothing');
  assert.equal(await lab.stopUvsd(), 0);
  assert.equal(lab.tableLeft(), false);
});

test('TUN with two workers: rr 10/10, UDP, persistence, quiescing, deletions', { skip: why ?? false }, async () => {
  await lab.startUvsd(2);
  await lab.commonChecks(RS, UDP_RS);
});

test('TUN kernel decapsulation: IPIP from a source not allowed is dropped and counted, outer fragments go to the TUN device', { skip: why ?? false }, async () => {
  // Real server 1's uvs-tun-decap runs with --allow 10.77.0.2 (the director) and --local 10.79.0.21.
  const before = lab.decapStats()[0]!;
  const k0 = kernelCounters(before);
  // From the client (10.77.0.10): not a director. The program drops it; the agent never sees it.
  sendIpipToRs1(lab.CL, 100);
  // From the director, 1800 bytes of payload without DF: two outer fragments. The program leaves
  // both to the stack, which reassembles them and hands the datagram to the agent's raw socket.
  sendIpipToRs1(lab.DIR, 1800);
  let after = before;
  for (let i = 0; i < 30; i++) {
    await sleep(200);
    after = lab.decapStats()[0]!;
    if (kernelCounters(after).notAllowed > k0.notAllowed && Number(after['delivered']) > Number(before['delivered'])) break;
  }
  const k1 = kernelCounters(after);
  assert.equal(k1.notAllowed - k0.notAllowed, 1, `the client's IPIP was refused in the kernel: ${JSON.stringify(after)}`);
  assert.equal(k1.fragments - k0.fragments, 2, `both outer fragments were left to the stack: ${JSON.stringify(after)}`);
  assert.equal(k1.decapsulated, k0.decapsulated, 'neither was decapsulated by the program');
  assert.equal(Number(after['notAllowed']), Number(before['notAllowed']), 'the refused packet never reached the agent');
  assert.equal(Number(after['received']) - Number(before['received']), 1, `the agent received the reassembled datagram: ${JSON.stringify(after)}`);
  assert.equal(Number(after['delivered']) - Number(before['delivered']), 1, 'and wrote its inner packet to the TUN device');
});
