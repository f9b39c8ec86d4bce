// An IPVS knob set at run time changes what the data plane does, and a SIGHUP reload keeps it
// (README "IPVS knobs"). DR lab, uvsd --sysctl-file saying net.ipv4.vs.sloppy_tcp = 0; the client
// sends bare TCP ACKs to the VIP (a flow this director never saw the SYN of, as after an ECMP
// remap), each from a new source port:
//   - sloppy_tcp 0 (the file): no entry is made;
//   - `uvsadm --sysctl net.ipv4.vs.sloppy_tcp=1`: the ACK makes an ESTABLISHED entry;
//   - SIGHUP (the file still says 0): the runtime value stays, and the next ACK makes one too;
//   - a file line with a bad value at reload: refused with file:line, nothing changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, lab, inNs } from './helpers';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns();
const S = labSuffix('k');
const P = `uvs${S}`;
const VIP = '10.77.0.100';
const tmp = fs.mkdtempSync(join(os.tmpdir(), 'uvs-sysctl-'));
const file = join(tmp, 'ipvs.conf');
const daemon = new UvsdProcess(`${P}dir`);

// One TCP segment with only ACK set, from 10.77.0.10:SPORT to the VIP, through a raw socket (the
// kernel adds the IP header).
const SEND_ACK = `
import socket, struct, sys
src, dst, sport = '10.77.0.10', sys.argv[1], int(sys.argv[2])
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff
tcp = struct.pack('!HHIIBBHHH', sport, 80, 1000, 2000, 5 << 4, 0x10, 64240, 0, 0)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
s.sendto(tcp, (dst, 0))
`;

/** Sends a bare ACK from `sport`, then says whether the director made an entry for it. */
async function ackMakesEntry(sport: number): Promise<boolean> {
  const r = inNs(`${P}cl`, 'python3', ['-c', SEND_ACK, VIP, String(sport)]);
  assert.equal(r.status, 0, r.stderr);
  // Bounded: the worker handles the frame within milliseconds; give a busy machine a second.
  for (let i = 0; i < 10; i++) {
    await new Promise((res) => setTimeout(res, 100));
    if (new RegExp(`ESTABLISHED 10\\.77\\.0\\.10:${sport}\\s`).test(daemon.uvsadm('-L', '-n', '-c'))) return true;
  }
  return false;
}

before(() => {
  if (!why) lab(S, 'up', 'dr');
});

after(async () => {
  await daemon.stop('SIGKILL');
  if (!why) lab(S, 'down');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('uvsadm --sysctl net.ipv4.vs.sloppy_tcp=1 lets a mid-flow ACK make an entry, and SIGHUP keeps it', { skip: why ?? false, timeout: 120_000 }, async () => {
  fs.writeFileSync(file, 'net.ipv4.vs.sloppy_tcp = 0\n');
  await daemon.start(['--workers', '1', '--sysctl-file', file]);
  daemon.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  daemon.uvsadm('-a', '-t', `${VIP}:80`, '-r', '10.77.0.21:80', '-g');
  assert.equal(daemon.uvsadm('--sysctl', 'net.ipv4.vs.sloppy_tcp'), 'net.ipv4.vs.sloppy_tcp = 0\n');
  assert.equal(await ackMakesEntry(40001), false, 'sloppy_tcp 0: an ACK without an entry is not scheduled');

  assert.equal(daemon.uvsadm('--sysctl', 'net.ipv4.vs.sloppy_tcp=1'), 'net.ipv4.vs.sloppy_tcp = 1\n');
  assert.equal(await ackMakesEntry(40002), true, 'sloppy_tcp 1: the ACK made an entry');

  const mark = daemon.log.length;
  daemon.signal('SIGHUP');
  for (let i = 0; i < 50 && !/reloaded /.test(daemon.log.slice(mark)); i++) await new Promise((res) => setTimeout(res, 100));
  assert.match(daemon.log.slice(mark), /sloppy_tcp: .* says 0, the value set at run time \(uvsadm --sysctl\) stays: 1/);
  assert.equal(daemon.uvsadm('--sysctl', 'sloppy_tcp'), 'net.ipv4.vs.sloppy_tcp = 1\n');
  assert.equal(await ackMakesEntry(40003), true, 'after the reload, sloppy_tcp is still 1 in the data plane');

  fs.writeFileSync(file, 'net.ipv4.vs.sloppy_tcp = 0\nnet.ipv4.vs.conn_reuse_mode = two\n');
  const mark2 = daemon.log.length;
  daemon.signal('SIGHUP');
  for (let i = 0; i < 50 && !/failed, the IPVS knobs are unchanged/.test(daemon.log.slice(mark2)); i++) await new Promise((res) => setTimeout(res, 100));
  assert.match(daemon.log.slice(mark2), /ipvs\.conf:2: net\.ipv4\.vs\.conn_reuse_mode: "two" is not an integer/);
  assert.equal(daemon.uvsadm('--sysctl', 'conn_reuse_mode'), 'net.ipv4.vs.conn_reuse_mode = 1\n');
});
