// `uvsd --io xdp` end to end, in the DR, NAT and TUN labs (mode-lab.ts): the frames uvs forwards
// come through AF_XDP (XdpFrames in `uvsadm --dataplane`), the client's TCP segments whose
// checksum its veth left to offload arrive at the real servers with a correct one (the addon
// completes them: XdpCsumFixed), super-frames still go through the ring, and the XDP programs go
// away with uvsd, after a clean stop and after a SIGKILL. With two workers and a 2-queue veth, native
// mode spreads the frames over both workers' sockets and a worker with no socket on its egress sends
// through its packet socket, while generic mode (veth records no RX queue for it) gives them all to
// worker 0 and uvsd says so. Needs root (CI runs it as root).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, dataplaneWorkerRow, labSuffix, inNs } from './helpers';
import { ModeLab, VIP } from './mode-lab';

const why = cannotRunNetns();

class XdpModeLab extends ModeLab {
  constructor(
    suffix: string,
    mode: 'dr' | 'nat' | 'tun',
    flag: '-g' | '-m' | '-i',
    /** queues: the director's segment-A interface's RX/TX queues (lab.sh UVS_LAB_DIR_QUEUES). */
    readonly opts: { queues?: number; xdpMode?: 'generic' | 'native' } = {},
  ) {
    super(suffix, mode, flag);
  }

  protected override labEnv(): Record<string, string> {
    return { ...super.labEnv(), ...(this.opts.queues !== undefined ? { UVS_LAB_DIR_QUEUES: String(this.opts.queues) } : {}) };
  }

  protected override uvsdArgs(workers: number): string[] {
    return ['--io', 'xdp', ...(this.opts.xdpMode !== undefined ? ['--xdp-mode', this.opts.xdpMode] : []), '--workers', String(workers)];
  }

  /** The director's interfaces that have an XDP program attached. */
  withXdp(): string[] {
    const r = inNs(this.DIR, 'ip', ['-d', '-o', 'link', 'show']);
    return r.stdout.split('\n').filter((l) => /\bxdp(generic)?\b/.test(l)).map((l) => l.split(':')[1]!.trim().replace(/@.*/, ''));
  }

  /** Worker `id`'s row of `uvsadm --dataplane`, by column name. */
  worker(id = 0): Map<string, number> {
    return dataplaneWorkerRow(this.uvsadm('--dataplane'), id);
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
  assert.match(l.log, /data plane: 1 worker\(s\) with AF_XDP (and the fast path )?on /);
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
  const w = l.worker();
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

test('two workers over AF_XDP: native mode spreads a 2-queue veth over both, worker 1 forwards out of the 1-queue side through its packet socket; generic mode on veth says it cannot spread', { skip: why ?? false, timeout: 120_000 }, async () => {
  // NAT lab, the director's client side (e0) with 2 RX queues, the real servers' side (e1) with 1:
  // worker 1 binds queue 1 of e0 and has no AF_XDP socket on e1, so the requests it takes leave
  // through its plain packet socket on e1 (worker.ts flush); the replies come in on e1's only
  // queue, to worker 0.
  const l = new XdpModeLab(labSuffix('xq'), 'nat', '-m', { queues: 2, xdpMode: 'native' });
  labs.push(l);
  l.up();
  const service = (): void => {
    l.uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
    l.uvsadm('-a', '-u', `${VIP}:53`, '-r', '10.78.0.21:5353', '-m');
    l.uvsadm('-a', '-u', `${VIP}:53`, '-r', '10.78.0.22:53', '-m');
  };
  // 64 flows: the switch port picks e0's queue by flow hash, so both queues get some (all on one: 2^-63).
  const ask = (what: string): void => {
    const names = l.udpNames(53, 64);
    assert.equal(names.filter((n) => n === 'rs1').length, 32, `${what}: ${JSON.stringify(names)}\nuvsd log:\n${l.log}`);
    assert.equal(names.filter((n) => n === 'rs2').length, 32, `${what}: ${JSON.stringify(names)}`);
  };

  await l.startUvsd(2);
  assert.match(l.log, /uvs\w+e1 has 1 RX queue\(s\): worker\(s\) 1\.\.1 get no AF_XDP socket on it/);
  assert.doesNotMatch(l.log, /sees every frame on RX queue 0/);
  service();
  ask('native');
  await new Promise((r) => setTimeout(r, 1200)); // the workers copy their AF_XDP figures every second
  const w0 = l.worker(0);
  const w1 = l.worker(1);
  const rows = `worker 0 ${JSON.stringify(Object.fromEntries(w0))}\nworker 1 ${JSON.stringify(Object.fromEntries(w1))}`;
  assert.ok(w0.get('XdpFrames')! > 0, `worker 0 took AF_XDP frames: ${rows}`);
  assert.ok(w1.get('XdpFrames')! > 0, `worker 1 took AF_XDP frames from e0's second queue: ${rows}`);
  assert.equal(w1.get('TxDropped'), 0, rows);
  assert.equal(await l.stopUvsd(), 0);

  // Generic mode: veth records no RX queue, so every AF_XDP frame goes to queue 0's socket.
  l.opts.xdpMode = 'generic';
  await l.startUvsd(2);
  assert.match(l.log, /generic XDP on veth uvs\w+e0 sees every frame on RX queue 0/);
  service();
  ask('generic');
  await new Promise((r) => setTimeout(r, 1200));
  const g0 = l.worker(0);
  const g1 = l.worker(1);
  const grows = `worker 0 ${JSON.stringify(Object.fromEntries(g0))}\nworker 1 ${JSON.stringify(Object.fromEntries(g1))}`;
  assert.ok(g0.get('XdpFrames')! >= 64, `worker 0 took every request through AF_XDP: ${grows}`);
  assert.equal(g1.get('XdpFrames'), 0, `what the warning says (a kernel whose veth records the queue would spread them): ${grows}`);
  assert.equal(await l.stopUvsd(), 0);
});
