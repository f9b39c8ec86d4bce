// The addon without a network: it loads in two worker threads at once (each gets its own instance),
// its constants match src/native/addon.ts, errors name the call and carry the errno name, bad arguments are
// refused with a message that says which.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadNative, nativeAddonPath, newVnetHdr, readVnetHdr, ringFrameSize, writeMac, writeVnetHdr } from '../../src/native/addon';

const skip = existsSync(nativeAddonPath()) ? false : `native addon not built at ${nativeAddonPath()} (run npm install)`;

interface WorkerReport {
  instance: number;
  loIndex: number;
  loMtu: number;
  enodev: { code: string; message: string };
}

const WORKER_JS = `
const { parentPort, workerData } = require('node:worker_threads');
const { loadNative } = require(workerData.nativeJs);
const native = loadNative();
let enodev;
try { native.ifIndex('uvs-no-such-if'); } catch (e) { enodev = { code: e.code, message: e.message }; }
const lo = native.ifInfo('lo');
parentPort.postMessage({ instance: native.instanceId(), loIndex: native.ifIndex('lo'), loMtu: lo.mtu, enodev });
`;

describe('native addon: loading and errors', { skip }, () => {
  it('loads and works in two worker threads at once, each with its own instance', async () => {
    const nativeJs = join(__dirname, '..', '..', 'src', 'native', 'addon.js');
    // Loaded here first and both workers kept alive until both answered: instance numbers count
    // loads of one dlopen'ed library, which Node may unload once no thread holds it.
    const main = loadNative();
    const workers: Worker[] = [];
    const run = (): Promise<WorkerReport> => new Promise((resolve, reject) => {
      const w = new Worker(WORKER_JS, { eval: true, workerData: { nativeJs } });
      workers.push(w);
      w.once('message', (m: WorkerReport) => resolve(m));
      w.once('error', reject);
    });
    let a: WorkerReport;
    let b: WorkerReport;
    try {
      [a, b] = await Promise.all([run(), run()]);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
    assert.notEqual(a.instance, b.instance);
    assert.notEqual(a.instance, main.instanceId());
    assert.notEqual(b.instance, main.instanceId());
    for (const r of [a, b]) {
      assert.equal(r.loIndex, main.ifIndex('lo'));
      assert.equal(r.loMtu, main.ifInfo('lo').mtu);
      assert.equal(r.enodev.code, 'ENODEV');
      assert.match(r.enodev.message, /^if_nametoindex\(uvs-no-such-if\): No such device$/);
    }
  });

  it('ifInfo reports lo as up, loopback hardware, MAC zero', () => {
    const lo = loadNative().ifInfo('lo');
    assert.equal(lo.up, true);
    assert.equal(lo.hwType, 772);
    assert.equal(lo.mac, '00:00:00:00:00:00');
    assert.ok(lo.flags & loadNative().constants.IFF_LOOPBACK);
  });

  it('bad arguments say which option and why', () => {
    const native = loadNative();
    assert.throws(() => new native.PacketSocket({} as never), /option ifindex is required/);
    assert.throws(() => new native.PacketSocket({ ifindex: 1, ring: { blockSize: 5000 } }), /ring\.blockSize 5000 must be a multiple of the page size/);
    assert.throws(() => new native.PacketSocket({ ifindex: 1, fanout: { group: 1, mode: 'fast' as never } }), /fanout\.mode 'fast' is not one of/);
    assert.throws(() => new native.PacketSocket({ ifindex: 1, ring: { blockTimeoutMs: 1 } }), /ring\.blockTimeoutMs applies to version 3 only/);
    assert.throws(() => new native.PacketSocket({ ifindex: 1, ring: { blockCount: 4 } }), /ring\.blockCount applies to version 3 only \(V2: ring\.frameCount\)/);
    assert.throws(() => new native.PacketSocket({ ifindex: 1, ring: { version: 3, overflowSlots: 2 } }), /apply to version 2 only/);
    assert.throws(() => new native.PacketSocket({ ifindex: 1, ring: { version: 4 as never } }), /option version must be an integer in \[2, 3\]/);
    assert.throws(() => new native.PacketSocket({ ifindex: 1, ring: { frameSize: 3000 } }), /ring\.frameSize 3000 must be a multiple of 16 dividing blockSize 65536/);
    assert.throws(() => new native.PacketSocket({ ifindex: -1 }), /option ifindex must be an integer in \[0, /);
    assert.throws(() => new native.RawSocket({ protocol: 300 }), /option protocol must be an integer in \[1, 255\]/);
    assert.throws(() => native.ethtoolGet('lo', 'lro' as never), /ethtool feature 'lro' is not one of/);
    assert.throws(() => native.ifInfo('a-name-far-too-long-for-linux'), /must have 1\.\.15 characters/);
  });

  it('a failing system call names the call with its arguments and carries the errno name', { skip: process.getuid?.() === 0 ? false : 'needs root for AF_PACKET' }, () => {
    const native = loadNative();
    try {
      new native.PacketSocket({ ifindex: 0x7ffffff0, ring: { frameCount: 64 } });
      assert.fail('bind to a missing ifindex succeeded');
    } catch (err) {
      const e = err as Error & { code: string; syscall: string };
      assert.equal(e.code, 'ENODEV');
      assert.equal(e.syscall, 'bind');
      assert.equal(e.message, `bind(AF_PACKET, protocol=0x0003, ifindex=${0x7ffffff0}): No such device`);
    }
  });

  it('send refuses a frame outside its buffer, naming the frame', { skip: process.getuid?.() === 0 ? false : 'needs root for AF_PACKET' }, () => {
    const native = loadNative();
    // Send-only socket on lo (protocol 0: it receives nothing); the bounds check fails before any send.
    const s = new native.PacketSocket({ ifindex: native.ifIndex('lo'), protocol: 0 });
    try {
      assert.throws(() => s.send(new Uint8Array(100), new Uint32Array([0, 90]), new Uint32Array([60, 20]), 2),
        /frame 1 \(offset 90, length 20\) is outside the buffer of 100 bytes/);
      assert.throws(() => s.send(new Uint8Array(100), new Uint32Array([0]), new Uint32Array([60]), 2), /count 2 exceeds/);
      assert.equal(s.ring, undefined);
      assert.throws(() => s.rx(new Uint32Array(8)), /opened without a ring/);
    } finally {
      s.close();
    }
    assert.throws(() => s.wait(0), /socket is closed/);
  });
});

describe('src/native/addon.ts helpers', () => {
  it('ringFrameSize: a TPACKET_V2 slot holds the 90-byte slot header area plus an MTU-sized packet', () => {
    assert.equal(ringFrameSize(1500), 2048);
    assert.equal(ringFrameSize(1952), 2048);
    assert.equal(ringFrameSize(1953), 4096);
    assert.equal(ringFrameSize(9000), 16384);
  });

  it('virtio_net_hdr round-trips through a DataView in host order', () => {
    const view = new DataView(new ArrayBuffer(64));
    const h = { flags: 1, gsoType: 1, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16 };
    writeVnetHdr(view, 20, h);
    const out = newVnetHdr();
    readVnetHdr(view, 30, out);
    assert.deepEqual(out, h);
  });

  it('writeMac parses and rejects', () => {
    const b = new Uint8Array(8);
    writeMac(b, 1, '02:aB:0c:dd:ee:0f');
    assert.deepEqual([...b], [0, 2, 0xab, 0x0c, 0xdd, 0xee, 0x0f, 0]);
    assert.throws(() => writeMac(b, 0, '02:ab:0c:dd:ee'), /is not a MAC address/);
    assert.throws(() => writeMac(b, 0, '02:ab:0c:dd:ee:zz'), /is not a MAC address/);
  });
});
