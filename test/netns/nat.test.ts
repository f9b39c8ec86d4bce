// NAT mode end to end: the client and the director on one segment, the real servers on a second
// one behind the director (their default route), uvsd on the director configured with uvsadm -m,
// real curl as the client. Everything the DR test checks, plus port translation, replies
// rewritten by uvs (OutPkts), an upload, and the director's kernel forwarding nothing although
// the replies cross it. Needs root (CI runs it as root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cannotRunNetns, labSuffix, inNs } from './helpers';
import { ModeLab, VIP } from './mode-lab';

const why = cannotRunNetns();
const lab = new ModeLab(labSuffix('n'), 'nat', '-m');
// rs1 through port translation (VIP:80 → RIP:8080), rs2 on the same port.
const RS: [string, string] = ['10.78.0.21:8080', '10.78.0.22:80'];
const UDP_RS: [string, string] = ['10.78.0.21:5353', '10.78.0.22:53'];

before(() => {
  if (!why) lab.up();
});

after(async () => {
  await lab.stopUvsd('SIGKILL');
  if (!why) lab.down();
});

test('NAT with one worker: rr 10/10 with port translation, OutPkts, wrr 15/5, 2 MB down, 3 MB up, no RST, no kernel forwarding', { skip: why ?? false }, async () => {
  await lab.startUvsd(1);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[0], '-m');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[1], '-m');
  const rsts = lab.nstat(lab.DIR, 'TcpOutRsts');
  const fwd = lab.nstat(lab.DIR, 'IpForwDatagrams');

  assert.deepEqual(lab.split(20), { rs1: 10, rs2: 10 });
  const s = lab.stats('TCP', 80);
  assert.equal(s.conns, 20, s.text);
  assert.ok(s.inPkts >= 20 * 5, `InPkts ${s.inPkts}`);
  // NAT sees the replies: at least SYN-ACK, the answer and a FIN per connection.
  assert.ok(s.outPkts >= 20 * 3, `OutPkts ${s.outPkts}: ${s.text}`);
  assert.equal(s.destConns(RS[0]), 10, s.text);
  assert.equal(s.destConns(RS[1]), 10, s.text);
  assert.match(lab.uvsadm('-L', '-n'), /-> 10\.78\.0\.21:8080\s+Masq/);

  lab.uvsadm('-E', '-t', `${VIP}:80`, '-s', 'wrr');
  lab.uvsadm('-e', '-t', `${VIP}:80`, '-r', RS[0], '-m', '-w', '3');
  assert.deepEqual(lab.split(20), { rs1: 15, rs2: 5 });

  lab.download2MB();
  lab.upload3MB();

  // A 3000-byte datagram leaves the client in fragments; the ring hands uvs the reassembled
  // datagram (fanout defrag), which is rewritten and fragmented again toward the real server.
  lab.uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  lab.uvsadm('-a', '-u', `${VIP}:53`, '-r', '10.78.0.21:5353', '-m');
  const py = [
    'import socket',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    's.settimeout(3)',
    `s.sendto(b"y" * 3000, (${JSON.stringify(VIP)}, 53))`,
    'print(s.recvfrom(100)[0].decode().strip())',
  ].join('\n');
  const frag = inNs(lab.CL, 'python3', ['-c', py], 10_000);
  assert.equal(frag.stdout.trim(), 'rs1', `fragmented datagram: ${frag.stderr}\nuvsd log:\n${lab.log}`);

  assert.equal(lab.nstat(lab.DIR, 'TcpOutRsts'), rsts, 'the director kernel sent no RST');
  assert.equal(lab.nstat(lab.DIR, 'IpForwDatagrams'), fwd, 'the director kernel forwarded nothing');

  assert.equal(await lab.stopUvsd(), 0);
  assert.equal(lab.tableLeft(), false, 'no nftables table after a clean exit');
});

test('NAT with two workers: rr 10/10, UDP (with port translation), persistence, quiescing, deletions', { skip: why ?? false }, async () => {
  await lab.startUvsd(2);
  await lab.commonChecks(RS, UDP_RS);
});

// Deliverable 5 of issue 12: a NAT reply goes where its connection's first packet came from. A
// spoofer on the real servers' segment (rs2's namespace, so another interface and MAC of the
// director) floods datagrams whose source is the real client's address. With the old learned
// client-hop table (last writer wins) the client's replies went out toward rs2 and its requests
// failed; now every request is answered while the flood runs.
test('NAT: datagrams spoofed with the client\'s address from another namespace do not misdirect its replies', { skip: why ?? false }, async () => {
  await lab.startUvsd(2);
  lab.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[0], '-m');
  lab.uvsadm('-a', '-t', `${VIP}:80`, '-r', RS[1], '-m');
  lab.uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  lab.uvsadm('-a', '-u', `${VIP}:53`, '-r', UDP_RS[0], '-m');
  // Bounded: at most 20,000 datagrams, at most 15 s; stops early when told to (stdin closes).
  const py = [
    'import socket, struct, time, sys, select',
    's = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)',
    `src = socket.inet_aton("10.77.0.10"); dst = socket.inet_aton(${JSON.stringify(VIP)})`,
    'n = 0; end = time.time() + 15',
    'print("ready", flush=True)',
    'while n < 20000 and time.time() < end:',
    '    if select.select([sys.stdin], [], [], 0)[0]: break',
    '    udp = struct.pack("!HHHH", 20000 + n % 30000, 53, 12, 0) + b"spof"',
    '    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 32, n & 0xffff, 0, 64, 17, 0, src, dst)',
    '    s.sendto(ip + udp, (' + JSON.stringify(VIP) + ', 0)); n += 1',
    '    time.sleep(0.0005)',
    'print(n, flush=True)',
  ].join('\n');
  const spoofer = spawn('ip', ['netns', 'exec', `${lab.P}rs2`, 'python3', '-c', py], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  spoofer.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => spoofer.once('exit', () => resolve()));
  try {
    for (let i = 0; i < 50 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500)); // the flood is on before the first request
    const split = lab.split(12);
    assert.equal((split.rs1 ?? 0) + (split.rs2 ?? 0), 12, JSON.stringify(split));
    const spoofedConns = lab.stats('UDP', 53).conns;
    assert.ok(spoofedConns >= 100, `the spoofed datagrams reached uvs while the client ran: ${spoofedConns} UDP connections`);
  } finally {
    spoofer.stdin.end();
    await exited;
  }
  assert.match(out, /ready\n\d+/, out);
  assert.equal(await lab.stopUvsd(), 0);
});
