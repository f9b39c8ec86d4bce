// The sync codec against byte layouts written out by hand from the kernel's structs
// (net/netfilter/ipvs/ip_vs_sync.c: struct ip_vs_sync_mesg, struct ip_vs_sync_v4, the options).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConnFlag,
  decodeSyncMessage,
  encodeSyncMessages,
  SyncDecodeError,
  SyncMessageWriter,
  type SyncConn,
} from '../../src/sync/codec';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+|#[^\n]*/g, ''), 'hex');

// One established DR connection 10.0.0.1:40000 → VIP 10.0.0.100:80 → RIP 10.0.1.2:80,
// timeout 900 s, syncid 7, as a kernel master sends it.
const ONE_DR = hex(`
  00 07 002c   # reserved 0, syncid 7, size 44 (8 + 36)
  01 01 0000   # nr_conns 1, version 1, spare 0
  00 06 0024   # type 0 (IPv4), protocol TCP, ver_size: version 0, size 36
  00000003     # flags: IP_VS_CONN_F_DROUTE
  0001         # state: ESTABLISHED
  9c40 0050 0050         # cport 40000, vport 80, dport 80
  00000000     # fwmark
  00000384     # timeout 900 s
  0a000001 0a000064 0a000102   # caddr, vaddr, daddr
`);

const ip = (s: string): number => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);

const dr: SyncConn = {
  af: 4, protocol: 6, flags: ConnFlag.DROUTE, state: 1, cport: 40000, vport: 80, dport: 80,
  fwmark: 0, timeout: 900, caddr: ip('10.0.0.1'), vaddr: ip('10.0.0.100'), daddr: ip('10.0.1.2'),
};

test('sync codec: one v4 entry encodes to the kernel layout byte for byte and decodes back', () => {
  const [msg, ...rest] = encodeSyncMessages([dr], 7, 1472);
  assert.equal(rest.length, 0);
  assert.deepEqual(msg, ONE_DR);
  const d = decodeSyncMessage(ONE_DR);
  assert.ok(d);
  assert.equal(d.syncid, 7);
  assert.deepEqual(d.conns, [dr]);
  assert.deepEqual(d.skipped, []);
});

// A persistence template (TEMPLATE | MASQ, client port 0, vport 0 of a port-zero template is
// possible; here -p on port 80), UDP entry with SEQ_DATA, padding between entries.
const THREE = hex(`
  00 00 0094   # syncid 0, size 148
  03 01 0000   # 3 conns
  # [8] template: TCP, flags TEMPLATE|DROUTE, state 0, cport 0, vport 80, dport 80, timeout 360
  00 06 0024  00001003  0000 0000 0050 0050  00000000 00000168  c0a80005 0a000064 0a000102
  # [44] NAT entry (flags SEQ_MASK, MASQ) with a SEQ_DATA option: size 36 + 2 + 24 = 62, so 2 bytes of padding follow
  00 06 003e  00000600  0007 d431 0050 1f90  00000000 00000078  c0a80006 0a000064 0a000103
  01 18  00000001 00000002 00000003  00000004 00000005 00000006
  0000         # padding to the 4-byte boundary
  # [108] UDP entry, flags TUNNEL, state 0, 53 → 53, timeout 300
  00 11 0024  00000002  0000 d432 0035 0035  00000000 0000012c  c0a80007 0a000065 0a000104
  0000 0000    # 4 bytes the header size counts (148 = 108 + 36 + 4): trailing room is allowed
`);

test('sync codec: template, SEQ_DATA option with padding, UDP entry', () => {
  const d = decodeSyncMessage(THREE);
  assert.ok(d);
  assert.equal(d.conns.length, 3);
  const [t, nat, udp] = d.conns;
  assert.equal(t!.flags, ConnFlag.TEMPLATE | ConnFlag.DROUTE);
  assert.equal(t!.cport, 0);
  assert.equal(t!.timeout, 360);
  assert.equal(nat!.state, 7);
  assert.equal(nat!.dport, 8080);
  assert.deepEqual(nat!.seq, { in: { initSeq: 1, delta: 2, previousDelta: 3 }, out: { initSeq: 4, delta: 5, previousDelta: 6 } });
  assert.equal(udp!.protocol, 17);
  assert.equal(udp!.flags, ConnFlag.TUNNEL);
  assert.equal(udp!.vaddr, ip('10.0.0.101'));
  // The encoder writes the same padding (the trailing 4 bytes aside).
  const again = encodeSyncMessages([t!, nat!, udp!], 0, 1472);
  assert.equal(again.length, 1);
  assert.deepEqual(again[0]!.subarray(8), THREE.subarray(8, 144));
  assert.equal(again[0]!.readUInt16BE(2), 144);
});

test('sync codec: PE_DATA and PE_NAME options (sip) round-trip; a skippable unknown option is ignored', () => {
  const c: SyncConn = { ...dr, flags: ConnFlag.TEMPLATE | ConnFlag.DROUTE, peData: Buffer.from('call-42'), peName: 'sip' };
  const [m] = encodeSyncMessages([c], 1, 1472);
  // 36 + (2 + 7) + (2 + 3) = 50 bytes
  assert.equal(m!.readUInt16BE(8 + 2), 50);
  assert.deepEqual([...m!.subarray(8 + 36, 8 + 38)], [2, 7]);
  assert.equal(m!.toString('latin1', 8 + 47, 8 + 50), 'sip');
  const d = decodeSyncMessage(m!);
  assert.equal(d!.conns[0]!.peName, 'sip');
  assert.equal(Buffer.from(d!.conns[0]!.peData!).toString(), 'call-42');
  // option type 5 | IPVS_OPT_F_PARAM (0x40), length 2: skipped by the receiver
  const opt = Buffer.concat([ONE_DR.subarray(8), hex('45 02 abcd')]);
  opt.writeUInt16BE(40, 2);
  const msg = Buffer.concat([hex('00 00 0030 01 01 0000'), opt]);
  const d2 = decodeSyncMessage(msg);
  assert.equal(d2!.conns.length, 1);
});

test('sync codec: an unusable entry is skipped alone, with its reason', () => {
  const body = Buffer.from(ONE_DR);
  const second = Buffer.from(ONE_DR.subarray(8));
  second[1] = 132; // SCTP
  const third = Buffer.from(ONE_DR.subarray(8));
  third.writeUInt16BE(11, 8); // TCP state 11 does not exist
  const fourth = Buffer.concat([ONE_DR.subarray(8), hex('05 02 0000')]); // mandatory unknown option 5
  fourth.writeUInt16BE(40, 2);
  const msg = Buffer.concat([body, second, third, fourth]);
  msg.writeUInt16BE(msg.length, 2);
  msg[4] = 4;
  const d = decodeSyncMessage(msg);
  assert.equal(d!.conns.length, 1);
  assert.deepEqual(d!.skipped.map((s) => s.reason), ['unsupported protocol 132', 'invalid TCP state 11', 'unknown mandatory option 5']);
});

test('sync codec: an IPv6 entry (struct ip_vs_sync_v6, 72 bytes) is framed and skipped', () => {
  const v6 = Buffer.alloc(72);
  v6[0] = 1; // STYPE_F_INET6
  v6[1] = 6;
  v6.writeUInt16BE(72, 2);
  const msg = Buffer.concat([hex('00 00 0074 02 01 0000'), v6, ONE_DR.subarray(8)]);
  const d = decodeSyncMessage(msg);
  assert.equal(d!.conns.length, 1);
  assert.deepEqual(d!.skipped, [{ index: 0, reason: 'IPv6 entry (uvs serves IPv4 only)' }]);
});

test('sync codec: every framing error drops the message and names the field', () => {
  const bad = (mutate: (b: Buffer) => Buffer, field: string): void => {
    const b = mutate(Buffer.from(ONE_DR));
    assert.throws(() => decodeSyncMessage(b), (e: unknown) => e instanceof SyncDecodeError && e.field === field, field);
  };
  bad((b) => b.subarray(0, 3), 'header');
  bad((b) => b.subarray(0, 40), 'size'); // datagram shorter than the header says
  bad((b) => (b.writeUInt16BE(4, 2), b.subarray(0, 4)), 'header');
  bad((b) => ((b[5] = 2), b), 'version');
  bad((b) => ((b[0] = 1), b), 'reserved');
  bad((b) => (b.writeUInt16BE(1, 6), b), 'spare');
  bad((b) => ((b[4] = 2), b), 'conn[1]');
  bad((b) => (b.writeUInt16BE(37, 10), b), 'conn[0].size');
  bad((b) => (b.writeUInt16BE(0x1024, 10), b), 'conn[0].version');
  bad((b) => ((b[8] = 2), b), 'conn[0].type');
  bad((b) => (b.writeUInt16BE(20, 10), b), 'conn[0].size'); // shorter than the fixed part
  const withOpt = (opt: string, size: number): Buffer => {
    const o = Buffer.concat([ONE_DR.subarray(8), hex(opt)]);
    o.writeUInt16BE(size, 2);
    const m = Buffer.concat([hex('00 00 0000 01 01 0000'), o]);
    m.writeUInt16BE(m.length, 2);
    return m;
  };
  assert.throws(() => decodeSyncMessage(withOpt('01', 37)), /conn\[0\]\.option/);
  assert.throws(() => decodeSyncMessage(withOpt('01 00', 38)), /conn\[0\]\.option/);
  assert.throws(() => decodeSyncMessage(withOpt('01 04 00000000', 42)), /conn\[0\]\.seq_data: length 4/);
  assert.throws(() => decodeSyncMessage(withOpt('03 11 ' + '61'.repeat(17), 55)), /pe_name: length 17/);
});

test('sync codec: syncid filter, maxlen splitting, 4-byte alignment', () => {
  assert.equal(decodeSyncMessage(ONE_DR, 8), null);
  assert.ok(decodeSyncMessage(ONE_DR, 7));
  const many = Array.from({ length: 100 }, (_, i) => ({ ...dr, cport: 1000 + i }));
  const msgs = encodeSyncMessages(many, 3, 1472);
  // (1472 - 8) / 36 = 40 entries per message
  assert.deepEqual(msgs.map((m) => m[4]), [40, 40, 20]);
  for (const m of msgs) assert.ok(m.length <= 1472);
  const back = msgs.flatMap((m) => decodeSyncMessage(m)!.conns.map((c) => c.cport));
  assert.deepEqual(back, many.map((c) => c.cport));
  assert.throws(() => new SyncMessageWriter(20, 0), /maxlen/);
  assert.throws(() => new SyncMessageWriter(1472, 256), /syncid/);
});
