// A syscall error inside an fd-watcher callback must not kill the process (issue: EIO from the TUN
// device in uvs-tun-decap, a recv error on a VRRP socket). Injected failing fds through fake
// addons: the error is logged and counted and the agent goes on; a socket that keeps failing stops
// the agent cleanly with a clear error; a poll error restarts the watcher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder } from '../../src/packet/builder';
import { ipv4ToInt } from '../../src/packet/addr';
import { TunDecapAgent } from '../../src/tun/decap';
import { RawVrrpSocket, MAX_VRRP_ERRORS_IN_A_ROW } from '../../src/vrrp/raw-io';
import type { NativeAddon } from '../../src/native/addon';
import { linesLogger } from '../../src/runtime/log';

/** The watcher is started again by a timer (POLL_RETRY_MS): waited for, not slept on, since a
 *  loaded machine runs the timer late. The bound only reports a restart that never comes. */
async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const inner = new PacketBuilder().ipv4({ src: '10.77.0.10', dst: '10.77.0.100', ttl: 63 }).udp({ srcPort: 4000, dstPort: 53 }).payload('hi').build();
const datagram = new PacketBuilder().ipv4({ src: '10.77.0.2', dst: '10.79.0.21', ttl: 63, protocol: 4 }).payload(inner).build();

interface Fake {
  native: NativeAddon;
  callback: () => (status: number, events: number) => void;
  starts: () => number;
  /** What recv() and fdWrite() do next. */
  recvFails: { on: boolean };
  writeFails: { on: boolean };
  pending: { n: number };
}

function fakeNative(): Fake {
  let cb: ((status: number, events: number) => void) | null = null;
  let starts = 0;
  const recvFails = { on: false };
  const writeFails = { on: false };
  const pending = { n: 0 };
  class RawSocket {
    readonly fd = 7;
    recv(buf: Uint8Array): number {
      if (recvFails.on) throw new Error('recvmsg(fd=7): EIO: Input/output error');
      if (pending.n === 0) return -1;
      pending.n--;
      buf.set(datagram);
      return datagram.length;
    }
    close(): void {}
  }
  class FdWatcher {
    constructor(_fd: number, c: (status: number, events: number) => void) {
      cb = c;
    }
    start(): void {
      starts++;
    }
    stop(): void {}
    close(): void {}
  }
  const native = {
    tunOpen: (name: string) => ({ fd: 5, name }),
    fdClose: () => undefined,
    fdWrite: (_fd: number, _b: unknown, len: number) => {
      if (writeFails.on) throw new Error('write(fd=5): EIO: Input/output error');
      return len;
    },
    RawSocket,
    FdWatcher,
  } as unknown as NativeAddon;
  return { native, callback: () => cb!, starts: () => starts, recvFails, writeFails, pending };
}

function agentWith(f: Fake, lines: string[], onFatal?: (err: Error) => void): TunDecapAgent {
  const agent = new TunDecapAgent({
    device: 'uvstest0', local: ipv4ToInt('10.79.0.21'), mtu: 1480, log: linesLogger(lines), native: f.native,
    linkUp: () => undefined, ...(onFatal ? { onFatal } : {}),
  });
  agent.start();
  return agent;
}

test('uvs-tun-decap: EIO writing to the TUN device (device down) drops that datagram, logged and counted; the next ones go through', () => {
  const f = fakeNative();
  const lines: string[] = [];
  const agent = agentWith(f, lines);
  f.writeFails.on = true;
  f.pending.n = 3;
  assert.doesNotThrow(() => f.callback()(0, 1));
  f.writeFails.on = false;
  f.pending.n = 2;
  f.callback()(0, 1);
  const s = agent.stats();
  assert.equal(s.received, 5);
  assert.equal(s.delivered, 2);
  assert.equal(s.writeErrors, 3);
  assert.equal(lines.filter((l) => /write to uvstest0 failed: write\(fd=5\): EIO/.test(l)).length, 1, lines.join('\n'));
  agent.stop();
});

test('uvs-tun-decap: a raw socket whose recv keeps failing stops the agent cleanly with a clear error, not an exception', () => {
  const f = fakeNative();
  const lines: string[] = [];
  let fatal: Error | null = null;
  const agent = agentWith(f, lines, (err) => (fatal = err));
  f.recvFails.on = true;
  for (let i = 0; i < 200 && fatal === null; i++) assert.doesNotThrow(() => f.callback()(0, 1));
  assert.ok(fatal, 'onFatal was called');
  assert.match((fatal as Error).message, /raw socket .*failed \d+ times in a row.*EIO/);
  assert.ok(agent.stats().readErrors >= 1);
  agent.stop();
});

test('uvs-tun-decap: a poll error is logged and the watcher started again', async () => {
  const f = fakeNative();
  const lines: string[] = [];
  const agent = agentWith(f, lines);
  const before = f.starts();
  assert.doesNotThrow(() => f.callback()(-9, 0));
  await waitFor('the watcher to start again', () => f.starts() > before);
  assert.equal(f.starts(), before + 1);
  assert.match(lines.join('\n'), /poll error -9/);
  agent.stop();
});

// ---- the VRRP thread's sockets (vrrp/raw-io.ts) ----


function fakeVrrpNative(): { native: NativeAddon; callbacks: ((status: number, events: number) => void)[]; starts: () => number; opened: () => number; fail: { on: boolean } } {
  const callbacks: ((status: number, events: number) => void)[] = [];
  let starts = 0;
  let opened = 0;
  const fail = { on: false };
  class RawSocket {
    readonly fd = 9;
    constructor() {
      opened++;
    }
    recv(): number {
      if (fail.on) throw new Error('recvmsg(fd=9): EIO: Input/output error');
      return -1;
    }
    addMembership(): void {}
    dropMembership(): void {}
    close(): void {}
  }
  class FdWatcher {
    constructor(_fd: number, c: (status: number, events: number) => void) {
      callbacks.push(c);
    }
    start(): void {
      starts++;
    }
    stop(): void {}
    close(): void {}
  }
  const native = { ifIndex: () => 3, RawSocket, FdWatcher } as unknown as NativeAddon;
  return { native, callbacks, starts: () => starts, opened: () => opened, fail };
}

test('VRRP socket: a recv error in the watcher callback is logged, not thrown; failing again and again the socket is reopened', () => {
  const f = fakeVrrpNative();
  const lines: string[] = [];
  const sock = new RawVrrpSocket(f.native, { receive: () => undefined }, linesLogger(lines), [{ interfaceName: 'uvsv0', ifindex: 3, multicastGroup: '224.0.0.18', source: '10.0.0.1' }]);
  f.fail.on = true;
  assert.doesNotThrow(() => f.callbacks[0]!(0, 1));
  assert.match(lines.join('\n'), /vrrp socket on uvsv0: read failed: recvmsg\(fd=9\): EIO/);
  assert.equal(sock.readErrors, 1);
  for (let i = 1; i < MAX_VRRP_ERRORS_IN_A_ROW; i++) f.callbacks[0]!(0, 1);
  assert.match(lines.join('\n'), /vrrp socket on uvsv0 failed \d+ times in a row .*; closed, reopening/);
  f.fail.on = false;
  sock.retry();
  assert.equal(f.opened(), 2, 'reopened by the next retry');
  sock.close();
});

test('VRRP socket: a poll error restarts the watcher', async () => {
  const f = fakeVrrpNative();
  const lines: string[] = [];
  const sock = new RawVrrpSocket(f.native, { receive: () => undefined }, linesLogger(lines), [{ interfaceName: 'uvsv0', ifindex: 3, multicastGroup: undefined, source: '10.0.0.1' }]);
  const before = f.starts();
  f.callbacks[0]!(-9, 0);
  await waitFor('the watcher to start again', () => f.starts() > before);
  assert.equal(f.starts(), before + 1);
  sock.close();
});
