// uvs-tun-decap --bpf's attach logic with a fake addon: every device or none, errors that name the
// device and say what to do, counters per device, close() detaching everything once. The program
// itself (native/src/tc-decap.cc) runs on real IPIP in test/netns/tun.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KernelDecap } from '../../src/tun/kernel-decap';
import { DecapError } from '../../src/tun/decap';
import type { NativeAddon, TcDecapCounters, TcDecapOptions } from '../../src/native/addon';

interface Attached {
  ifindex: number;
  options: TcDecapOptions;
  closed: number;
}

function fakeNative(devices: Record<string, number>, attached: Attached[], failOn?: { ifindex: number; code: string }): NativeAddon {
  // devices and failOn are read at each call: a test changes them to move the 'kernel' along.
  const fake: Partial<NativeAddon> = {
    ifIndex: (name: string) => {
      const i = devices[name];
      if (i === undefined) throw Object.assign(new Error(`if_nametoindex(${name}): No such device`), { code: 'ENODEV' });
      return i;
    },
    tcDecapAttach: (ifindex: number, options: TcDecapOptions) => {
      if (failOn && failOn.ifindex === ifindex) {
        throw Object.assign(new Error(`bpf(BPF_LINK_CREATE, tcx ingress, ifindex=${ifindex}): Invalid argument`), { code: failOn.code });
      }
      const a: Attached = { ifindex, options, closed: 0 };
      attached.push(a);
      const counters: TcDecapCounters = { decapsulated: ifindex * 10, notAllowed: 1, fragments: 2, failed: 0, notLocal: 3 };
      return { linkFd: 10 + ifindex, progFd: 20 + ifindex, countersFd: 30 + ifindex, counters: () => counters, close: () => { a.closed++; } };
    },
  };
  return fake as NativeAddon;
}

test('attaches to each device with --local and --allow; counters per device; close() detaches each once', () => {
  const attached: Attached[] = [];
  const k = new KernelDecap({ devices: ['eth0', 'eth1'], local: 0x0a4f0015, allow: [0x0a4d0002], native: fakeNative({ eth0: 2, eth1: 3 }, attached) });
  assert.deepEqual(k.devices, ['eth0', 'eth1']);
  assert.deepEqual(attached.map((a) => [a.ifindex, a.options]), [[2, { local: 0x0a4f0015, allow: [0x0a4d0002] }], [3, { local: 0x0a4f0015, allow: [0x0a4d0002] }]]);
  const c = k.counters();
  assert.equal(c['eth0']!.decapsulated, 20);
  assert.equal(c['eth1']!.decapsulated, 30);
  k.close();
  k.close();
  assert.deepEqual(attached.map((a) => a.closed), [1, 1]);
  assert.equal(k.counters()['eth0']!.attached, false);
});

test('refresh(): a device that goes is detached, one that comes back (a new ifindex) gets the program again; counters add up', () => {
  const attached: Attached[] = [];
  const devices: Record<string, number> = { eth0: 2, eth1: 3 };
  const k = new KernelDecap({ devices: ['eth0', 'eth1'], local: 0, allow: [], native: fakeNative(devices, attached) });
  assert.deepEqual(k.refresh(), [], 'nothing changed');
  delete devices['eth0'];
  assert.deepEqual(k.refresh().map((e) => [e.device, e.what]), [['eth0', 'detached']]);
  assert.equal(attached[0]!.closed, 1, 'the defunct link is closed');
  assert.deepEqual(k.refresh(), [], 'still gone: nothing to do');
  assert.equal(k.counters()['eth0']!.attached, false);
  assert.equal(k.counters()['eth0']!.decapsulated, 20, 'the first attachment\'s counters are kept');
  devices['eth0'] = 7;
  assert.deepEqual(k.refresh().map((e) => [e.device, e.what, e.detail]), [['eth0', 'attached', 'ifindex 7']]);
  assert.equal(attached[2]!.ifindex, 7);
  assert.equal(k.counters()['eth0']!.decapsulated, 20 + 70, 'both attachments in sum');
  assert.equal(k.counters()['eth0']!.attached, true);
  // Re-created between two refreshes: detached and attached in one go.
  devices['eth1'] = 9;
  assert.deepEqual(k.refresh().map((e) => [e.device, e.what]), [['eth1', 'detached'], ['eth1', 'attached']]);
  k.close();
});

test('refresh(): an attach that fails is reported and retried at the next refresh', () => {
  const attached: Attached[] = [];
  const devices: Record<string, number> = { eth0: 2 };
  const fail = { ifindex: 5, code: 'EPERM' };
  const k = new KernelDecap({ devices: ['eth0'], local: 0, allow: [], native: fakeNative(devices, attached, fail) });
  devices['eth0'] = 5;
  const e = k.refresh();
  assert.deepEqual(e.map((x) => [x.device, x.what]), [['eth0', 'detached'], ['eth0', 'failed']]);
  assert.match(e[1]!.detail, /--bpf eth0: bpf\(BPF_LINK_CREATE/);
  fail.ifindex = -1;
  assert.deepEqual(k.refresh().map((x) => [x.device, x.what]), [['eth0', 'attached']]);
  k.close();
});

test('an unknown device: a DecapError naming it, and the devices already done are detached', () => {
  const attached: Attached[] = [];
  assert.throws(
    () => new KernelDecap({ devices: ['eth0', 'nope0'], local: 0, allow: [], native: fakeNative({ eth0: 2 }, attached) }),
    (err: unknown) => err instanceof DecapError && /--bpf nope0: no such device/.test(err.message),
  );
  assert.deepEqual(attached.map((a) => a.closed), [1]);
});

test('a kernel without tcx (EINVAL): the error says what is needed and that user space remains', () => {
  const attached: Attached[] = [];
  assert.throws(
    () => new KernelDecap({ devices: ['eth0', 'eth1'], local: 0, allow: [], native: fakeNative({ eth0: 2, eth1: 3 }, attached, { ifindex: 3, code: 'EINVAL' }) }),
    (err: unknown) => err instanceof DecapError && /--bpf eth1: bpf\(BPF_LINK_CREATE.*Linux 6\.6 or later.*user space/.test(err.message),
  );
  assert.deepEqual(attached.map((a) => a.closed), [1], 'eth0 was detached again');
  // Any other errno is passed on without the hint.
  assert.throws(
    () => new KernelDecap({ devices: ['eth0'], local: 0, allow: [], native: fakeNative({ eth0: 2 }, [], { ifindex: 2, code: 'EPERM' }) }),
    (err: unknown) => err instanceof DecapError && !/Linux 6\.6/.test(err.message),
  );
});

test('no device at all is refused', () => {
  assert.throws(() => new KernelDecap({ devices: [], local: 0, allow: [], native: fakeNative({}, []) }), DecapError);
});
