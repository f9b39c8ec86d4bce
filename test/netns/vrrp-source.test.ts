// VRRP adverts follow their interface's primary IPv4 address (src/control/vrrp.ts
// followPrimaryAddresses): a uvsd MASTER on a veth whose address is replaced while it runs sends
// its next adverts from the new address, as keepalived does, without a restart. The adverts are
// captured with tcpdump on the veth's other end. Also checks that `uvsadm --dataplane` shows the
// interface watch's counters. Needs root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, inNs } from './helpers';
import { UVSADM, UvsdProcess } from './uvsd-process';

const why = cannotRunNetns() ?? (spawnSync('tcpdump', ['--version']).status === 0 ? null : 'tcpdump is not installed');
const S = labSuffix('vs');
const DIR = `uvs${S}d`;
const PEER = `uvs${S}p`;
const dir = mkdtempSync(join(tmpdir(), 'uvs-vrrp-source-'));
const daemon = new UvsdProcess(DIR);

after(async () => {
  await daemon.stop('SIGKILL');
  if (!why) for (const ns of [DIR, PEER]) spawnSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
});

function ip(ns: string, ...args: string[]): void {
  const r = inNs(ns, 'ip', args);
  assert.equal(r.status, 0, `ip ${args.join(' ')} in ${ns}: ${r.stderr}`);
}

test('VRRP: the interface\'s primary address replaced under a MASTER, the next adverts come from the new one', { skip: why ?? false, timeout: 60_000 }, async () => {
  for (const ns of [DIR, PEER]) assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0, `ip netns add ${ns}`);
  assert.equal(spawnSync('ip', ['link', 'add', `uvs${S}a`, 'netns', DIR, 'type', 'veth', 'peer', 'name', `uvs${S}b`, 'netns', PEER]).status, 0);
  ip(DIR, 'link', 'set', `uvs${S}a`, 'name', 'eth0');
  ip(PEER, 'link', 'set', `uvs${S}b`, 'name', 'eth0');
  ip(DIR, 'addr', 'add', '10.99.0.1/24', 'dev', 'eth0');
  ip(PEER, 'addr', 'add', '10.99.0.2/24', 'dev', 'eth0');
  for (const ns of [DIR, PEER]) {
    ip(ns, 'link', 'set', 'lo', 'up');
    ip(ns, 'link', 'set', 'eth0', 'up');
  }
  const conf = join(dir, 'keepalived.conf');
  writeFileSync(conf, `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    10.99.0.100/32
  }
}
`);
  // Bounded capture: at most 30 adverts or 25 s.
  const capture = spawn('ip', ['netns', 'exec', PEER, 'timeout', '25', 'tcpdump', '-l', '-n', '-c', '30', '-i', 'eth0', 'ip proto 112'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let captured = '';
  capture.stdout.on('data', (d: Buffer) => (captured += d.toString()));
  const sources = (): string[] => [...captured.matchAll(/ IP (\d+\.\d+\.\d+\.\d+) > 224\.0\.0\.18: VRRPv2/g)].map((m) => m[1]!);
  const waitFor = async (what: string, cond: () => boolean, ms: number): Promise<void> => {
    for (const end = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; captured:\n${captured}\nuvsd:\n${daemon.log}`);
    }
  };
  try {
    await daemon.start(['-f', conf, '--workers', '1']);
    await waitFor('MASTER', () => /\(VI_1\) Entering MASTER STATE/.test(daemon.log), 10_000);
    await waitFor('an advert from 10.99.0.1', () => sources().includes('10.99.0.1'), 5000);

    ip(DIR, 'addr', 'del', '10.99.0.1/24', 'dev', 'eth0');
    ip(DIR, 'addr', 'add', '10.99.1.7/24', 'dev', 'eth0');
    await waitFor('two adverts from 10.99.1.7', () => sources().filter((s) => s === '10.99.1.7').length >= 2, 8000);
    const seen = sources();
    const first = seen.indexOf('10.99.1.7');
    assert.deepEqual([...new Set(seen.slice(first))], ['10.99.1.7'], `after the change, adverts only from the new address: ${seen.join(' ')}`);
    assert.match(daemon.log, /\(VI_1\) primary address of eth0 is now 10\.99\.1\.7 \(was 10\.99\.0\.1\)/);
    assert.equal(daemon.log.match(/Entering MASTER STATE/g)?.length, 1, 'still the one MASTER term: no state change');
    assert.doesNotMatch(daemon.log, /Entering FAULT STATE/);

    // The data plane and VRRP share the daemon's one interface watch: one `ip monitor` child (two
    // before, one per consumer).
    const monitors = descendants(daemon.pid!).filter((pid) => /\bmonitor\0link\0address\b/.test(cmdline(pid)));
    assert.equal(monitors.length, 1, `ip monitor children of uvsd: ${monitors.map((p) => cmdline(p).replace(/\0/g, ' ')).join('; ')}`);

    const dp = spawnSync('ip', ['netns', 'exec', DIR, process.execPath, UVSADM, '--dataplane'], { encoding: 'utf8' });
    assert.equal(dp.status, 0, dp.stderr);
    const line = /^Interface watch: (\d+) events, (\d+) relinks, 0 bad lines, 0 monitor restarts$/m.exec(dp.stdout);
    assert.ok(line, dp.stdout);
    assert.ok(Number(line[1]) >= 2 && Number(line[2]) >= 1, `the address change was counted: ${line[0]}`);
  } finally {
    capture.kill();
    await daemon.stop();
  }
});

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return ''; // gone meanwhile
  }
}

/** Every process below `root` (children, their children, …), from /proc's parent pids. */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}
