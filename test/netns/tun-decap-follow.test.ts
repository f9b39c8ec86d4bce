// uvs-tun-decap --bpf follows its device: the kernel takes a tc program off a device that is
// deleted, and a device re-created under the same name is a new device. The agent notices within
// a second (KernelDecap.refresh), attaches again, and its counters stay cumulative. Two namespaces
// of this test's own, a veth between them; IPIP from one (a raw socket for protocol 4) to the other,
// where the inner UDP datagram must reach a socket on the VIP. Needs root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cannotRunNetns, sendIpip } from './helpers';
import { Lab, runSuffix } from './native-lab';

const why = cannotRunNetns();
const DECAP = join(__dirname, '..', '..', 'src', 'cli', 'uvs-tun-decap.js');
const lab = new Lab(runSuffix());
const VIP = '10.91.9.9';
let agent: ChildProcess | null = null;

after(() => {
  agent?.kill('SIGKILL');
  if (!why) lab.destroy();
});

/** One IPIP packet from `ns` (outer destination 10.91.0.2) carrying UDP to VIP:5353 with `text`. */
function sendTo(ns: string, text: string): void {
  sendIpip(ns, { outerDst: '10.91.0.2', innerSrc: '10.91.0.1', innerDst: VIP, dport: 5353, payload: text });
}

/** Receives one datagram on VIP:5353 in `ns` while `send` runs; returns its text ('' on timeout). */
async function receiveWhile(ns: string, send: () => void): Promise<string> {
  const py = `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind((${JSON.stringify(VIP)}, 5353))\nprint("ready", flush=True)\ns.settimeout(3)\ntry:\n    print(s.recv(100).decode(), flush=True)\nexcept socket.timeout:\n    print("", flush=True)\n`;
  const p = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', py]);
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<void>((resolve) => p.on('close', () => resolve()));
  for (let i = 0; i < 50 && !out.includes('ready'); i++) await sleep(50);
  send();
  await done;
  return out.replace(/^ready\n/, '').trim();
}

function plug(a: string, b: string, x: string, y: string): void {
  lab.veth(a, x, b, y);
  lab.addr(a, x, '10.91.0.1/24');
  lab.addr(b, y, '10.91.0.2/24');
  lab.exec(b, ['sysctl', '-qw', `net.ipv4.conf.${y}.rp_filter=0`]);
}

test('uvs-tun-decap --bpf: a deleted and re-created device gets the program again, counters cumulative', { skip: why ?? false }, async () => {
  const a = lab.ns('Fa');
  const b = lab.ns('Fb');
  const x = lab.dev('fx');
  const y = lab.dev('fy');
  lab.exec(b, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
  lab.exec(b, ['ip', 'addr', 'add', `${VIP}/32`, 'dev', 'lo']);
  plug(a, b, x, y);
  let log = '';
  agent = spawn('ip', ['netns', 'exec', b, process.execPath, DECAP, '--dev', lab.dev('ft'), '--local', '10.91.0.2', '--allow', '10.91.0.1', '--bpf', y, '-l', '--stats-interval', '1']);
  agent.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const waitFor = async (re: RegExp, what: string): Promise<void> => {
    for (let i = 0; i < 100 && !re.test(log); i++) await sleep(50);
    assert.match(log, re, `${what}; agent log:\n${log}`);
  };
  const lastStats = (): { received: number; bpf: Record<string, { decapsulated: number; attached: boolean }> } => {
    const line = log.split('\n').filter((l) => l.startsWith('uvs-tun-decap: {')).pop();
    assert.ok(line, `a stats line; agent log:\n${log}`);
    return JSON.parse(line.slice('uvs-tun-decap: '.length)) as { received: number; bpf: Record<string, { decapsulated: number; attached: boolean }> };
  };
  await waitFor(/in the kernel on/, 'the agent attached');

  assert.equal(await receiveWhile(b, () => sendTo(a, 'one')), 'one', 'the first datagram arrived');
  // The device goes (both ends of the veth), and comes back under the same names.
  lab.exec(a, ['ip', 'link', 'del', x]);
  await waitFor(/--bpf \S+: detached \(the device is gone\)/, 'the agent saw the device go');
  plug(a, b, x, y);
  await waitFor(/--bpf \S+: attached \(ifindex \d+\)/, 'the agent attached to the new device');
  assert.equal(await receiveWhile(b, () => sendTo(a, 'two')), 'two', 'the second datagram arrived');

  await sleep(1300); // a stats line after the second datagram
  const s = lastStats();
  assert.deepEqual(s.bpf[y], { ...s.bpf[y], decapsulated: 2, attached: true }, `both decapsulated in the kernel: ${JSON.stringify(s)}`);
  assert.equal(s.received, 0, 'nothing went to the user-space path');
});
