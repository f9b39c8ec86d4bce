// MISC_CHECK, SMTP_CHECK, DNS_CHECK, UDP_CHECK and PING_CHECK against real scripts and servers on
// loopback. MISC scripts live in a temp dir made by the test.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { SMTPServer } from 'smtp-server';
import { MiscChecker } from '../../src/check/misc';
import { SmtpChecker } from '../../src/check/smtp';
import { DnsChecker, buildQuery, encodeName } from '../../src/check/dns';
import { UdpChecker, replyMatches } from '../../src/check/udp';
import { PingChecker } from '../../src/check/ping';
import { parseHexString } from '../../src/check/types';
import { ScriptRunner } from '../../src/notify/script';
import { listen, never, tempDir, writeScript } from './helpers';

const dir = tempDir('misc');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
// Security off (keepalived's default): the temp dir is world-writable's child, which is fine here.
const scripts = new ScriptRunner({ scriptUser: { user: 'root' } });
const target = { address: '127.0.0.1', port: 80 };

test('MISC_CHECK: exit 0 is up, exit 1 is down, arguments split like keepalived', async () => {
  const out = `${dir}/args.txt`;
  const s = writeScript(dir, 'check.sh', `#!/bin/sh\nprintf '%s|' "$@" > ${out}\nexit "$1"\n`);
  const up = await new MiscChecker({ kind: 'MISC_CHECK', miscPath: `${s} 0 'two words' "x y"` }, scripts).check(target, never());
  assert.equal(up.ok, true, up.trail.join(' | '));
  assert.equal(fs.readFileSync(out, 'utf8'), '0|two words|x y|');
  const down = await new MiscChecker({ kind: 'MISC_CHECK', miscPath: `${s} 1` }, scripts).check(target, never());
  assert.equal(down.ok, false);
  assert.match(down.trail.at(-1)!, /exit 1/);
});

test('MISC_CHECK: misc_dynamic exit 2..255 is up with weight exit-2; without it, down', async () => {
  const s = writeScript(dir, 'dyn.sh', '#!/bin/sh\nexit "$1"\n');
  const r7 = await new MiscChecker({ kind: 'MISC_CHECK', miscPath: `${s} 7`, miscDynamic: true }, scripts).check(target, never());
  assert.equal(r7.ok, true);
  assert.equal(r7.dynamicWeight, 5);
  const r255 = await new MiscChecker({ kind: 'MISC_CHECK', miscPath: `${s} 255`, miscDynamic: true }, scripts).check(target, never());
  assert.equal(r255.dynamicWeight, 253);
  const r1 = await new MiscChecker({ kind: 'MISC_CHECK', miscPath: `${s} 1`, miscDynamic: true }, scripts).check(target, never());
  assert.equal(r1.ok, false);
  const static7 = await new MiscChecker({ kind: 'MISC_CHECK', miscPath: `${s} 7` }, scripts).check(target, never());
  assert.equal(static7.ok, false);
  assert.equal(static7.dynamicWeight, undefined);
});

test('MISC_CHECK: misc_timeout kills the script and its children', async () => {
  const marker = `${dir}/child-survived`;
  const s = writeScript(dir, 'slow.sh', `#!/bin/sh\n(sleep 2; touch ${marker}) &\nsleep 30\n`);
  const started = Date.now();
  const r = await new MiscChecker({ kind: 'MISC_CHECK', miscPath: s, miscTimeout: 0.3 }, scripts).check(target, never());
  assert.equal(r.ok, false);
  assert.match(r.trail.at(-1)!, /timed out after 300 ms/);
  assert.ok(Date.now() - started < 2500);
  await new Promise((res) => setTimeout(res, 2300));
  assert.equal(fs.existsSync(marker), false, 'the process group was killed');
});

test('MISC_CHECK: a script without #! runs through /bin/sh, as keepalived falls back to system()', async () => {
  const s = writeScript(dir, 'noshebang', 'test "$1" = yes\n');
  const checker = new MiscChecker({ kind: 'MISC_CHECK', miscPath: `${s} yes` }, scripts);
  const r = await checker.check(target, never());
  assert.equal(r.ok, true, r.trail.join(' | '));
  assert.match(r.trail[0]!, /via \/bin\/sh/);
  assert.equal((await new MiscChecker({ kind: 'MISC_CHECK', miscPath: `${s} no` }, scripts).check(target, never())).ok, false);
});

test('SMTP_CHECK: 220 greeting, HELO answered 250, QUIT', async () => {
  const helos: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onConnect: (_s, cb) => cb(),
    onClose: (session) => helos.push(session.hostNameAppearsAs),
    logger: false,
  });
  server.on('error', () => undefined);
  const port = await listen(server.server);
  try {
    const r = await new SmtpChecker({ kind: 'SMTP_CHECK', heloName: 'uvs-checker' }).check({ address: '127.0.0.1', port }, never());
    assert.equal(r.ok, true, r.trail.join(' | '));
    assert.ok(r.trail.includes('HELO uvs-checker: 250'));
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(helos, ['uvs-checker']);
  } finally {
    server.close();
  }
});

test('SMTP_CHECK: a 554 greeting (multi-line) is a failure', async () => {
  const s = net.createServer((c) => c.end('554-busy\r\n554 go away\r\n'));
  const port = await listen(s);
  try {
    const r = await new SmtpChecker({ kind: 'SMTP_CHECK' }).check({ address: '127.0.0.1', port }, never());
    assert.equal(r.ok, false);
    assert.match(r.trail.at(-1)!, /greeting 554, expected 220/);
  } finally {
    s.close();
  }
});

/** A tiny DNS responder: answers every query with `rcode` and one answer, echoing the question. */
async function dnsResponder(rcode: number, mangleId = false): Promise<{ port: number; close: () => void; questions: Buffer[] }> {
  const sock = dgram.createSocket('udp4');
  const questions: Buffer[] = [];
  sock.on('message', (msg, rinfo) => {
    questions.push(msg);
    const reply = Buffer.from(msg);
    if (mangleId) reply.writeUInt16BE((msg.readUInt16BE(0) + 1) & 0xffff, 0);
    reply.writeUInt16BE(0x8180 | rcode, 2); // QR, RD, RA
    reply.writeUInt16BE(rcode === 0 ? 1 : 0, 6);
    sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { port: sock.address().port, close: () => sock.close(), questions };
}

test('DNS_CHECK: a hand-built query; NOERROR is up, REFUSED is down, foreign ids ignored', async () => {
  assert.deepEqual(encodeName('.'), Buffer.from([0]));
  assert.deepEqual(encodeName('a.bc'), Buffer.from([1, 0x61, 2, 0x62, 0x63, 0]));
  assert.equal(buildQuery(0x1234, 'example.org', 'A').toString('hex'), '123401000001000000000000076578616d706c65036f72670000010001');
  const ok = await dnsResponder(0);
  const refused = await dnsResponder(5);
  const wrongId = await dnsResponder(0, true);
  try {
    const up = await new DnsChecker({ kind: 'DNS_CHECK', type: 'A', name: 'example.org' }).check({ address: '127.0.0.1', port: ok.port }, never());
    assert.equal(up.ok, true, up.trail.join(' | '));
    assert.ok(up.trail.includes('reply NOERROR, 1 answer(s)'));
    // default: SOA for "."
    const q = ok.questions.length;
    await new DnsChecker({ kind: 'DNS_CHECK' }).check({ address: '127.0.0.1', port: ok.port }, never());
    assert.equal(ok.questions[q]!.subarray(12).toString('hex'), '0000060001');
    const down = await new DnsChecker({ kind: 'DNS_CHECK' }).check({ address: '127.0.0.1', port: refused.port }, never());
    assert.equal(down.ok, false);
    assert.match(down.trail.at(-1)!, /REFUSED/);
    const ignored = await new DnsChecker({ kind: 'DNS_CHECK', connectTimeout: 0.3 }).check({ address: '127.0.0.1', port: wrongId.port }, never());
    assert.equal(ignored.ok, false);
    assert.match(ignored.trail.at(-1)!, /timed out/);
    // Nothing listening: the ICMP port unreachable fails the check at once.
    const gone = refused.port;
    refused.close();
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    const closed = await new DnsChecker({ kind: 'DNS_CHECK', connectTimeout: 3 }).check({ address: '127.0.0.1', port: gone }, never());
    assert.equal(closed.ok, false);
    assert.match(closed.trail.at(-1)!, /ECONNREFUSED/);
    assert.ok(Date.now() - started < 2000);
  } finally {
    ok.close();
    wrongId.close();
  }
  assert.throws(() => new DnsChecker({ kind: 'DNS_CHECK', name: 'a..b' }), /label "" must be 1..63 bytes/);
});

test('UDP_CHECK: reply required and matched against a HEX_STR with X nibbles', async () => {
  const echo = dgram.createSocket('udp4');
  echo.on('message', (msg, rinfo) => echo.send(Buffer.concat([Buffer.from([0xab, 0x12]), msg]), rinfo.port, rinfo.address));
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
  const port = echo.address().port;
  try {
    const payload = parseHexString('dead beef').bytes;
    assert.equal(payload.toString('hex'), 'deadbeef');
    assert.equal(parseHexString('Ab12f 3 456').bytes.toString('hex'), 'ab120f034506');
    const expected = parseHexString('aX 12 de', true);
    assert.ok(replyMatches(Buffer.from([0xa7, 0x12, 0xde, 0x00]), expected));
    const up = await new UdpChecker({ kind: 'UDP_CHECK', payload, expectedReply: expected }).check({ address: '127.0.0.1', port }, never());
    assert.equal(up.ok, true, up.trail.join(' | '));
    const mismatch = await new UdpChecker({ kind: 'UDP_CHECK', payload, expectedReply: parseHexString('ff', true) }).check({ address: '127.0.0.1', port }, never());
    assert.equal(mismatch.ok, false);
    const tooLong = await new UdpChecker({ kind: 'UDP_CHECK', payload, requireReply: true, maxReplyLength: 3 }).check({ address: '127.0.0.1', port }, never());
    assert.equal(tooLong.ok, false);
    assert.match(tooLong.trail.at(-1)!, /length 6 outside 0..3/);
  } finally {
    echo.close();
  }
});

test('UDP_CHECK: ICMP port unreachable fails; silence without require_reply is up', async () => {
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
  const closedPort = probe.address().port;
  probe.close();
  const refused = await new UdpChecker({ kind: 'UDP_CHECK', connectTimeout: 1 }).check({ address: '127.0.0.1', port: closedPort }, never());
  assert.equal(refused.ok, false);
  assert.match(refused.trail.at(-1)!, /ECONNREFUSED/);
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  try {
    const r = await new UdpChecker({ kind: 'UDP_CHECK', connectTimeout: 0.3 }).check({ address: '127.0.0.1', port: silent.address().port }, never());
    assert.equal(r.ok, true, r.trail.join(' | '));
    const needReply = await new UdpChecker({ kind: 'UDP_CHECK', connectTimeout: 0.3, requireReply: true }).check({ address: '127.0.0.1', port: silent.address().port }, never());
    assert.equal(needReply.ok, false);
  } finally {
    silent.close();
  }
});

test('PING_CHECK: echo reply from 127.0.0.1 is up; ping exiting 1 is down; missing binary is down', async (t) => {
  const r = await new PingChecker({ kind: 'PING_CHECK', connectTimeout: 2 }).check({ address: '127.0.0.1', port: 0 }, never());
  if (!r.ok && /cannot run|Operation not permitted|socket/.test(r.trail.join(' '))) {
    t.skip(`ping unusable here: ${r.trail.join(' | ')}`);
    return;
  }
  assert.equal(r.ok, true, r.trail.join(' | '));
  assert.ok(r.trail.includes('1 sent, 1 received'));
  const no = await new PingChecker({ kind: 'PING_CHECK' }, '/bin/false').check({ address: '127.0.0.1', port: 0 }, never());
  assert.equal(no.ok, false);
  assert.equal(no.trail.at(-1), 'no echo reply');
  const missing = await new PingChecker({ kind: 'PING_CHECK' }, '/nonexistent/ping').check({ address: '127.0.0.1', port: 0 }, never());
  assert.equal(missing.ok, false);
  assert.match(missing.trail.at(-1)!, /cannot run/);
});
