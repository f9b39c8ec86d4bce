// sendmmsg must not block a worker when the socket's send memory runs out (native PacketSocket.send
// uses MSG_DONTWAIT): the frames that do not fit are shed and counted (txShed; the worker shows
// them as TxShed in `uvsadm --dataplane`). Lab: one namespace, a veth whose qdisc (tbf at 8 kbit/s
// with a long queue) holds every frame, so each one stays charged to the sending socket, and a
// socket with the smallest send buffer. A blocking sendmmsg waited there about a second per frame
// (sock_alloc_send_skb sleeps until the qdisc lets one go): 64 frames, a minute. Needs root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, repoRoot } from './helpers';

const why = cannotRunNetns();
const NS = `uvs${labSuffix('s')}`;
const DEV = `${NS}a`;

after(() => {
  if (!why) spawnSync('ip', ['netns', 'del', NS]);
});

test('send() on a full socket returns at once with the rest shed and counted', { skip: why ?? false }, () => {
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', `${NS}b`]);
  for (const d of [DEV, `${NS}b`]) execFileSync('ip', ['-n', NS, 'link', 'set', d, 'up']);
  execFileSync('ip', ['netns', 'exec', NS, 'tc', 'qdisc', 'add', 'dev', DEV, 'root', 'tbf', 'rate', '8kbit', 'burst', '1600', 'limit', '10000000']);
  const addon = join(repoRoot, 'dist', 'src', 'native', 'addon.js');
  const script = `
    const { loadNative } = require(${JSON.stringify(addon)});
    const fs = require('fs');
    const ifindex = Number(fs.readFileSync('/sys/class/net/${DEV}/ifindex', 'utf8'));
    const s = new (loadNative().PacketSocket)({ ifindex, protocol: 0, sndbuf: 1 });
    const n = 64, len = 1000;
    const buf = new Uint8Array(n * len);
    for (let i = 0; i < n; i++) { buf.fill(0xff, i * len, i * len + 6); buf[i * len + 12] = 0x88; buf[i * len + 13] = 0xb5; }
    const off = new Int32Array(n), lens = new Int32Array(n).fill(len);
    for (let i = 0; i < n; i++) off[i] = i * len;
    const sent = s.send(buf, off, lens, n);
    const st = s.stats();
    console.log(JSON.stringify({ sent, shed: s.txShed, txDropped: st.txDropped, lastTxError: st.lastTxError }));
    s.close();`;
  const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.signal, null, `send() blocked (killed after 20 s): ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { sent: number; shed: number; txDropped: number; lastTxError: string | null };
  assert.ok(out.sent < 64, JSON.stringify(out));
  assert.equal(out.shed, 64 - out.sent, JSON.stringify(out));
  assert.equal(out.lastTxError, 'EAGAIN');
});
