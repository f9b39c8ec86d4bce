// The fast path's TUN (native/src/xdp.cc marks after bpf_check_mtu, native/src/fast-path.cc's tc
// program adds the outer IPv4 header) in TUN labs, through real sockets: an established flow's
// requests leave user space and still reach the real server one router away, counted; the real
// servers' kernels accept the inner checksums whether the client left them partial (veth's
// default, kept partial through the tunnel) or whole; a datagram too big for the tunnel takes its
// flow back to user space, which answers "fragmentation needed"; an upload's super-frames keep
// their flow in user space. With real servers that decapsulate in user space (a raw socket, where
// nobody completes a partial checksum), uvs-tun-decap completes them. Needs root (CI runs it as
// root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, dataplaneWorkerRow, fastPathLine, keepAlive, labSuffix, nstatIn, txChecksumOff, udpExchange } from './helpers';
import { ModeLab, VIP } from './mode-lab';

const why = cannotRunNetns();
const RS1 = '10.79.0.21';
const kernelLab = new ModeLab(labSuffix('ft'), 'tun', '-i');
const userLab = new ModeLab(labSuffix('fu'), 'tun', '-i');
userLab.tunDecap = 'user';

const fast = (lab: ModeLab): ReturnType<typeof fastPathLine> => fastPathLine(lab.uvsadm('--dataplane'));
const rxFrames = (lab: ModeLab): number => dataplaneWorkerRow(lab.uvsadm('--dataplane')).get('RxFrames')!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Checksum errors real server 1 counted (UDP and TCP). */
const csumErrors = (lab: ModeLab): number => nstatIn(`${lab.P}rs1`, 'UdpInCsumErrors') + nstatIn(`${lab.P}rs1`, 'TcpInCsumErrors');

async function services(lab: ModeLab): Promise<void> {
  await lab.startUvsd(1);
  lab.uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  lab.uvsadm('-a', '-u', `${VIP}:53`, '-r', RS1, '-i');
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS1, '-i');
  for (let i = 0; i < 50 && !/fast path: XDP programs on/.test(lab.log); i++) await sleep(100);
  assert.match(lab.log, /fast path: XDP programs on uvs\w+ \(a DR, NAT or TUN real server is configured\)/);
  assert.doesNotMatch(lab.log, /stay in user space/);
}

before(() => {
  if (why) return;
  kernelLab.up();
  userLab.up();
});

after(async () => {
  await kernelLab.stopUvsd('SIGKILL');
  await userLab.stopUvsd('SIGKILL');
  if (why) return;
  kernelLab.down();
  userLab.down();
});

test('fast path, TUN: requests encapsulated in the kernel, counted, inner checksums accepted partial and whole; too big or super-frames go back to user space', { skip: why ?? false }, async () => {
  const lab = kernelLab;
  await services(lab);
  const rx0 = rxFrames(lab);
  const errors0 = csumErrors(lab);
  // 40 requests of one flow: user space forwards the first 8 (the 8th offloads it), the kernel
  // the other 32. The answers go from the real server to the client directly.
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40001, 40), Array(40).fill('rs1'));
  const f1 = fast(lab);
  assert.equal(f1.offloaded, 1);
  assert.equal(f1.packets, 32, 'the kernel encapsulated 32 requests');
  assert.equal(rxFrames(lab) - rx0, 8, 'user space saw 8 frames of 40');
  const s1 = lab.stats('UDP', 53);
  assert.deepEqual([s1.conns, s1.inPkts], [1, 40], s1.text);

  // Keep-alive HTTP with the client's partial checksums (whole ones below).
  assert.deepEqual(keepAlive(lab.CL, VIP, 30), Array(30).fill('200'));
  const f2 = fast(lab);
  assert.equal(f2.offloaded, 2);
  assert.ok(f2.packets - f1.packets >= 20, `the kernel forwarded the requests (${f2.packets - f1.packets})`);

  // An offloaded flow, then one datagram that fits the link but not the tunnel (1500 bytes with
  // DF; 1520 with the outer header): the program demotes the flow, user space answers
  // "fragmentation needed" and the flow stays in user space.
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40003, 10), Array(10).fill('rs1'));
  const f4 = fast(lab);
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40003, 1, 0, false, 1472), ['timeout']);
  const f5 = fast(lab);
  assert.equal(f5.takenBack - f4.takenBack, 1, 'taken back by the too-big datagram');
  assert.match(lab.uvsadm('--dataplane'), /TOO_BIG/);

  // A 3 MB upload: TSO super-frames (the client's checksum offload is still on), which would need
  // IPIP segmentation, keep its flow in user space.
  lab.upload3MB();
  const fu = fast(lab);
  assert.ok(fu.packets - f5.packets < 20, `the kernel carried at most the frames before the first super-frame (${fu.packets - f5.packets})`);
  assert.equal(fu.inKernel, f5.inKernel, 'the upload is not in the kernel\'s map');

  // Whole checksums from the client (and no more TSO: it needs checksum offload).
  txChecksumOff(lab.CL);
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40002, 20), Array(20).fill('rs1'));
  assert.deepEqual(keepAlive(lab.CL, VIP, 30), Array(30).fill('200'));
  const f3 = fast(lab);
  assert.ok(f3.packets - fu.packets >= 12 + 20, `the kernel forwarded them (${f3.packets - fu.packets})`);
  assert.equal(csumErrors(lab), errors0, 'no checksum errors at the real server');
  await sleep(1500);
  const decap = lab.decapStats()[0] as { bpf?: Record<string, { decapsulated: number }> };
  const decapsulated = Object.values(decap.bpf ?? {}).reduce((n, c) => n + c.decapsulated, 0);
  assert.ok(decapsulated >= f3.packets, `the real server's kernel decapsulated them (${JSON.stringify(decap)})`);
});

test('fast path, TUN: real servers decapsulating in user space get whole inner checksums (uvs-tun-decap completes partial ones)', { skip: why ?? false }, async () => {
  const lab = userLab;
  await services(lab);
  const errors0 = csumErrors(lab);
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40001, 40), Array(40).fill('rs1'));
  assert.deepEqual(keepAlive(lab.CL, VIP, 30), Array(30).fill('200'));
  const f = fast(lab);
  assert.equal(f.offloaded, 2);
  assert.ok(f.packets >= 32 + 20, `the kernel forwarded them (${f.packets})`);
  assert.equal(csumErrors(lab), errors0, 'no checksum errors at the real server');
  await sleep(1500);
  const decap = lab.decapStats()[0] as { checksumsCompleted: number };
  assert.ok(decap.checksumsCompleted >= f.packets - 5, `uvs-tun-decap completed the partial ones: ${JSON.stringify(decap)}`);
});
