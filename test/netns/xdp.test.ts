// `uvsd --io xdp` end to end, in the DR, NAT and TUN labs (mode-lab.ts): the frames uvs forwards
// come through AF_XDP (XdpFrames in `uvsadm --dataplane`), the client's TCP segments whose
// checksum its veth left to offload arrive at the real servers with a correct one (the addon
// completes them: XdpCsumFixed), super-frames still go through the ring, and the XDP programs go
// away with uvsd, after a clean stop and after a SIGKILL. Needs root (CI runs it as root).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, labSuffix, inNs } from './helpers';
import { ModeLab, VIP } from './mode-lab';

const why = cannotRunNetns();

class XdpModeLab extends ModeLab {
  protected override uvsdArgs(workers: number): string[] {
    return ['--io', 'xdp', '--workers', String(workers)];
  }

  /** The director's interfaces that have an XDP program attached. */
  withXdp(): string[] {
    const r = inNs(this.DIR, 'ip', ['-d', '-o', 'link', 'show']);
    return r.stdout.split('\n').filter((l) => /\bxdp(generic)?\b/.test(l)).map((l) => l.split(':')[1]!.trim().replace(/@.*/, ''));
  }

  /** Worker 0's row of `uvsadm --dataplane`, by column name. */
  worker0(): Map<string, number> {
    const lines = this.uvsadm('--dataplane').split('\n');
    const names = lines[0]!.trim().split(/\s{2,}/);
    const cells = lines[1]!.trim().split(/\s+/);
    return new Map(names.map((n, i) => [n, Number(cells[i])]));
  }
}

const labs: XdpModeLab[] = [];

after(async () => {
  for (const l of labs) {
    await l.stopUvsd('SIGKILL');
    if (!why) l.down();
  }
});

/** rr over TCP, a 2 MB download and a 3 MB upload (super-frames both ways), UDP; then the checks
 *  that frames came through AF_XDP and that the programs leave with uvsd. */
async function run(l: XdpModeLab, rs: [string, string], udpRs: [string, string]): Promise<void> {
  labs.push(l);
  l.up();
  await l.startUvsd(1);
  assert.match(l.log, /data plane: 1 worker\(s\) with AF_XDP on /);
  assert.ok(l.withXdp().length >= 1, `an XDP program on the captured interfaces: ${inNs(l.DIR, 'ip', ['-d', '-o', 'link', 'show']).stdout}`);
  const f = l.flag;
  l.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  l.uvsadm('-a', '-t', `${VIP}:80`, '-r', rs[0], f);
  l.uvsadm('-a', '-t', `${VIP}:80`, '-r', rs[1], f);
  const rsts = l.nstat(l.DIR, 'TcpOutRsts');
  const fwd = l.nstat(l.DIR, 'IpForwDatagrams');
  assert.deepEqual(l.split(20), { rs1: 10, rs2: 10 });
  l.download2MB();
  l.upload3MB();
  l.uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
  l.uvsadm('-a', '-u', `${VIP}:53`, '-r', udpRs[0], f);
  l.uvsadm('-a', '-u', `${VIP}:53`, '-r', udpRs[1], f);
  const names = l.udpNames(53);
  assert.equal(names.filter((n) => n === 'rs1').length, 5, JSON.stringify(names));
  assert.equal(names.filter((n) => n === 'rs2').length, 5, JSON.stringify(names));
  assert.equal(l.nstat(l.DIR, 'TcpOutRsts'), rsts, 'the director kernel sent no RST');
  assert.equal(l.nstat(l.DIR, 'IpForwDatagrams'), fwd, 'the director kernel forwarded nothing');

  // The worker copies its AF_XDP figures at its sweeps (every second).
  await new Promise((r) => setTimeout(r, 1200));
  const w = l.worker0();
  const row = JSON.stringify(Object.fromEntries(w));
  assert.ok(w.get('XdpFrames')! > 0, `frames came through AF_XDP: ${row}`);
  assert.ok(w.get('XdpFrames')! < w.get('RxFrames')!, `and the super-frames through the ring: ${row}`);
  assert.ok(w.get('XdpCsumFixed')! > 0, `the client's offloaded TCP checksums were completed: ${row}`);

  // A clean stop detaches the programs; so does a SIGKILL (the BPF links die with the process).
  assert.equal(await l.stopUvsd(), 0);
  assert.deepEqual(l.withXdp(), [], 'no XDP program after a clean stop');
  await l.startUvsd(1);
  assert.ok(l.withXdp().length >= 1);
  l.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
  l.uvsadm('-a', '-t', `${VIP}:80`, '-r', rs[0], f);
  l.uvsadm('-a', '-t', `${VIP}:80`, '-r', rs[1], f);
  assert.deepEqual(l.split(4), { rs1: 2, rs2: 2 }, 'forwards again after a restart (the queues were free again)');
  await l.stopUvsd('SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(l.withXdp(), [], 'no XDP program after a SIGKILL');
  // The guard a killed uvsd leaves is removed by the next start's clean exit.
  await l.startUvsd(1);
  assert.equal(await l.stopUvsd(), 0);
  assert.equal(l.tableLeft(), false);
}

test('DR over AF_XDP: rr, 2 MB down, 3 MB up, UDP, offloaded checksums completed, programs gone after stop and SIGKILL', { skip: why ?? false, timeout: 120_000 }, async () => {
  await run(new XdpModeLab(labSuffix('x'), 'dr', '-g'), ['10.77.0.21:80', '10.77.0.22:80'], ['10.77.0.21:53', '10.77.0.22:53']);
});

test('NAT over AF_XDP: the same, with port translation and the replies through AF_XDP', { skip: why ?? false, timeout: 120_000 }, async () => {
  await run(new XdpModeLab(labSuffix('xn'), 'nat', '-m'), ['10.78.0.21:8080', '10.78.0.22:80'], ['10.78.0.21:5353', '10.78.0.22:53']);
});

test('TUN over AF_XDP: the same, with the IPIP packets built in the worker', { skip: why ?? false, timeout: 120_000 }, async () => {
  await run(new XdpModeLab(labSuffix('xt'), 'tun', '-i'), ['10.79.0.21:80', '10.79.0.22:80'], ['10.79.0.21:53', '10.79.0.22:53']);
});
