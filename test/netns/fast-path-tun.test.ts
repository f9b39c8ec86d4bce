// The fast path's TUN (native/src/xdp.cc marks after bpf_check_mtu, native/src/fast-path.cc's tc
// program adds the outer IPv4 header) in TUN labs, through real sockets: an established flow's
// requests leave user space and still reach the real server one router away, counted; the real
// servers' kernels accept the inner checksums whether the client left them partial (veth's
// default, kept partial through the tunnel) or whole; a datagram too big for the tunnel goes to
// user space, which answers "fragmentation needed" (DF: the flow stays offloaded) or fragments it
// (no DF: the flow is taken back); an upload's super-frames are encapsulated in the kernel; with
// --fast-path-early on, short connections are encapsulated from their SYN on and read back closed. With real servers that decapsulate in user space (a raw socket, where
// nobody completes a partial checksum), uvs-tun-decap completes them. Needs root (CI runs it as
// root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, dataplaneWorkerRow, fastPathLine, inNs, keepAlive, labSuffix, nstatIn, txChecksumOff, udpExchange } from './helpers';
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

/** From source port `sport` of the client, one datagram of each size to VIP:53 without DF
 *  (IP_PMTUDISC_DONT, which Node's dgram cannot set), each waiting for its answer: the answers. */
function noDfExchange(lab: ModeLab, sport: number, sizes: number[]): string[] {
  const script = [
    'import socket, sys',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    's.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT',
    `s.bind(('0.0.0.0', ${sport}))`,
    's.settimeout(1)',
    'out = []',
    `for n in ${JSON.stringify(sizes)}:`,
    `    s.sendto(b'w' * n, ('${VIP}', 53))`,
    '    try:',
    '        out.append(s.recv(2000).decode().strip())',
    '    except socket.timeout:',
    "        out.append('timeout')",
    "print(','.join(out))",
  ].join('\n');
  const r = inNs(lab.CL, 'python3', ['-c', script], 30_000);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split(',');
}

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

test('fast path, TUN: requests encapsulated in the kernel, super-frames too, counted, inner checksums accepted partial and whole; too big goes to user space', { skip: why ?? false }, async () => {
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

  // An offloaded flow, then one datagram that fits the link but not the tunnel (1500 bytes; 1520
  // with the outer header). With DF: user space answers "fragmentation needed" and drops it, and
  // the flow stays in the kernel. Without DF: user space sends it in outer fragments (answered),
  // and takes the flow back, so that it stays on one path.
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40003, 10), Array(10).fill('rs1'));
  const f4 = fast(lab);
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40003, 1, 0, false, 1472), ['timeout']);
  const f5 = fast(lab);
  assert.equal(f5.takenBack, f4.takenBack, 'DF: not taken back');
  assert.equal(f5.inKernel, f4.inKernel);
  assert.match(lab.uvsadm('--dataplane'), /TOO_BIG/);
  assert.deepEqual(noDfExchange(lab, 40004, [100, 100, 100, 100, 100, 100, 100, 100, 100, 100]), Array(10).fill('rs1'));
  const f6 = fast(lab);
  assert.equal(f6.offloaded - f5.offloaded, 1);
  assert.deepEqual(noDfExchange(lab, 40004, [1472]), ['rs1'], 'sent in outer fragments and answered');
  const f7 = fast(lab);
  assert.equal(f7.takenBack - f6.takenBack, 1, 'no DF: taken back by the datagram that left in fragments');

  // A 3 MB upload: the client's TSO super-frames (its checksum offload is still on) go through
  // the kernel whole, each an IPIP GSO frame whose segments are 20 bytes shorter; the real
  // server's kernel decapsulates them.
  const rxU = rxFrames(lab);
  lab.upload3MB();
  const fu = fast(lab);
  assert.equal(fu.offloaded - f7.offloaded, 1, 'the upload was offloaded');
  assert.ok(fu.packets - f7.packets >= 20, `the kernel carried its frames (${fu.packets - f7.packets})`);
  assert.ok(rxFrames(lab) - rxU < 60, `user space saw only its start and end (${rxFrames(lab) - rxU} frames)`);

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

test('fast path, TUN: real servers decapsulating in user space get whole inner checksums (uvs-tun-decap completes partial ones), super-frames too', { skip: why ?? false }, async () => {
  const lab = userLab;
  await services(lab);
  const errors0 = csumErrors(lab);
  assert.deepEqual(udpExchange(lab.CL, VIP, 53, 40001, 40), Array(40).fill('rs1'));
  assert.deepEqual(keepAlive(lab.CL, VIP, 30), Array(30).fill('200'));
  const f = fast(lab);
  assert.equal(f.offloaded, 2);
  assert.ok(f.packets >= 32 + 20, `the kernel forwarded them (${f.packets})`);
  assert.equal(csumErrors(lab), errors0, 'no checksum errors at the real server');
  // An upload's IPIP super-frames reach the agent's raw socket whole (up to 64 KiB each).
  lab.upload3MB();
  const fu = fast(lab);
  assert.equal(fu.offloaded - f.offloaded, 1, 'the upload was offloaded');
  assert.ok(fu.packets - f.packets >= 20, `the kernel carried its frames (${fu.packets - f.packets})`);
  await sleep(1500);
  const decap = lab.decapStats()[0] as { checksumsCompleted: number };
  assert.ok(decap.checksumsCompleted >= f.packets - 5, `uvs-tun-decap completed the partial ones: ${JSON.stringify(decap)}`);
});

test('fast path, TUN, --fast-path-early on: short connections encapsulated in the kernel from their SYN on, read back closed by the client\'s FIN', { skip: why ?? false }, async () => {
  const lab = kernelLab;
  await lab.stopUvsd('SIGKILL');
  await lab.startUvsd(1, ['--fast-path-early', 'on']);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS1, '-i');
  const f0 = fast(lab);
  const rx0 = rxFrames(lab);
  for (let i = 0; i < 3; i++) {
    const r = inNs(lab.CL, 'curl', ['-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Connection: close', `http://${VIP}/`], 10_000);
    assert.equal(r.stdout, '200', r.stderr);
  }
  const f1 = fast(lab);
  assert.equal(f1.offloaded - f0.offloaded, 3, 'each offered at its SYN');
  const rx = rxFrames(lab) - rx0;
  assert.ok(rx >= 3 && rx <= 5, `user space saw the SYNs only (${rx} frames)`);
  const deadline = Date.now() + 5000;
  while (fast(lab).takenBack - f0.takenBack < 3 && Date.now() < deadline) await sleep(100);
  assert.equal(fast(lab).takenBack - f0.takenBack, 3, 'the client\'s FINs read back');
  assert.equal(fast(lab).inKernel, 0);
  const listed = lab.uvsadm('-L', '-n', '-c');
  assert.equal((listed.match(/^TCP .*FIN_WAIT/gm) ?? []).length, 3, listed);
});
