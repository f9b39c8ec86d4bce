// What the NAT and TUN end-to-end tests share (the DR test's harness, generalised): a lab from
// lab.sh with a per-run suffix, uvsd on its director, uvsadm, curl and UDP from the client, the
// director kernel's counters, and the checks every mode runs (rr, wrr, 2 MB, UDP, persistence,
// quiescing, deletions). Needs root; the caller's after() tears the lab down.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lab, labWith, inNs, curlFrom, splitFrom, nstatIn } from './helpers';
import { UvsdProcess } from './uvsd-process';

export const VIP = '10.77.0.100';

export class ModeLab {
  readonly P: string;
  readonly DIR: string;
  readonly CL: string;
  readonly daemon: UvsdProcess;

  constructor(readonly suffix: string, readonly mode: 'dr' | 'nat' | 'tun', readonly flag: '-g' | '-m' | '-i') {
    this.P = `uvs${suffix}`;
    this.DIR = `${this.P}dir`;
    this.CL = `${this.P}cl`;
    this.daemon = new UvsdProcess(this.DIR);
  }

  /** How a tun lab's real servers decapsulate (lab.sh UVS_LAB_TUN_DECAP): the kernel's tc
   *  ingress program with the TUN device as the slow path, or the TUN device alone. */
  tunDecap: 'kernel' | 'user' = 'kernel';

  /** More environment for lab.sh's `up` (UVS_LAB_DIR_QUEUES, ...). */
  protected labEnv(): Record<string, string> {
    return this.mode === 'tun' ? { UVS_LAB_TUN_DECAP: this.tunDecap } : {};
  }

  up(): void {
    labWith(this.suffix, this.labEnv(), 'up', this.mode);
  }

  down(): void {
    lab(this.suffix, 'down');
  }

  uvsadm(...args: string[]): string {
    return this.daemon.uvsadm(...args);
  }

  /** Extra uvsd arguments besides --workers (a subclass picks another backend). */
  protected uvsdArgs(workers: number): string[] {
    return ['--workers', String(workers)];
  }

  /** `extra`: more uvsd options after --workers. */
  async startUvsd(workers: number, extra: readonly string[] = []): Promise<void> {
    await this.daemon.start([...this.uvsdArgs(workers), ...extra]);
  }

  stopUvsd(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    return this.daemon.stop(signal);
  }

  get log(): string {
    return this.daemon.log;
  }

  curl(path = '/', timeoutSec = 3): { status: number; body: string } {
    return curlFrom(this.CL, `http://${VIP}${path}`, timeoutSec);
  }

  split(n: number): Record<string, number> {
    return splitFrom(this.CL, `http://${VIP}/`, n, () => `uvsd log:\n${this.log}`);
  }

  nstat(ns: string, name: string): number {
    return nstatIn(ns, name);
  }

  tableLeft(): boolean {
    return /table ip uvs\b/.test(inNs(this.DIR, 'nft', ['list', 'tables']).stdout);
  }

  /** GET /bytes/2097152 through the VIP: the pattern arrives intact. */
  download2MB(): void {
    const want = Buffer.alloc(2097152);
    for (let i = 0; i < want.length; i++) want[i] = (i * 31 + 7) & 0xff;
    const got = spawnSync('ip', ['netns', 'exec', this.CL, 'curl', '-s', '-m', '20', `http://${VIP}/bytes/2097152`], { timeout: 25_000, maxBuffer: 8 << 20 }).stdout;
    assert.equal(got.length, want.length, `download: ${got.length} bytes\nuvsd log:\n${this.log}`);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(want).digest('hex'));
  }

  /** The last counters each uvs-tun-decap printed (lab.sh runs them with -l --stats-interval 1);
   *  with the kernel path, its program's counters are under `bpf`, per device. */
  decapStats(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (let i = 1; i <= 2; i++) {
      let text: string;
      try {
        text = readFileSync(`/run/uvs-lab/${this.suffix}/decap${i}.log`, 'utf8');
      } catch {
        continue;
      }
      const last = text.split('\n').filter((l) => l.startsWith('uvs-tun-decap: {')).pop();
      if (last) out.push(JSON.parse(last.slice('uvs-tun-decap: '.length)) as Record<string, unknown>);
    }
    return out;
  }

  /** POST of 3 MB through the VIP: the real server reports the same SHA-256 (full-size segments from the client). */
  upload3MB(): void {
    const body = Buffer.alloc(3 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 3) & 0xff;
    const r = spawnSync('ip', ['netns', 'exec', this.CL, 'curl', '-s', '-m', '20', '--data-binary', '@-', `http://${VIP}/sha256`], { input: body, timeout: 25_000, encoding: 'utf8' });
    const [, hash, length] = (r.stdout ?? '').trim().split(' ');
    assert.equal(length, String(body.length), `upload answer: ${r.stdout}\nuvsd log:\n${this.log}`);
    assert.equal(hash, createHash('sha256').update(body).digest('hex'));
  }

  /** `count` (default ten) datagrams from as many source ports to VIP:port; the names that answered. */
  udpNames(port: number, count = 10): string[] {
    const script = `
      const dgram = require('dgram'); const names = [];
      let pending = ${count};
      for (let i = 0; i < ${count}; i++) {
        const s = dgram.createSocket('udp4');
        const t = setTimeout(() => { names.push('timeout'); s.close(); if (--pending === 0) done(); }, 3000);
        s.on('message', (m) => { clearTimeout(t); names.push(m.toString().trim()); s.close(); if (--pending === 0) done(); });
        s.send('who', ${port}, ${JSON.stringify(VIP)});
      }
      function done() { console.log(JSON.stringify(names)); }`;
    const r = inNs(this.CL, process.execPath, ['-e', script], 10_000);
    return JSON.parse(r.stdout) as string[];
  }

  /** The service line's Conns, InPkts, OutPkts of `uvsadm -L -n --stats --exact`, and the text. */
  stats(proto: 'TCP' | 'UDP', port: number): { conns: number; inPkts: number; outPkts: number; text: string; destConns: (addr: string) => number } {
    const text = this.uvsadm('-L', '-n', '--stats', '--exact');
    const line = text.split('\n').find((l) => l.startsWith(`${proto}  ${VIP}:${port}`));
    assert.ok(line, text);
    const [, , conns, inPkts, outPkts] = line.split(/\s+/);
    return {
      conns: Number(conns), inPkts: Number(inPkts), outPkts: Number(outPkts), text,
      destConns: (addr) => Number(text.split('\n').find((l) => l.includes(`-> ${addr}`))!.split(/\s+/)[3]),
    };
  }

  /**
   * The DR test's second half, for this mode: rr with the workers given, UDP, persistence,
   * quiescing (an open request completes while new ones go elsewhere), deletions, and a killed
   * daemon's table removed by the next start. `rs` are "addr:port" of the two real servers.
   */
  async commonChecks(rs: [string, string], udpRs: [string, string]): Promise<void> {
    const f = this.flag;
    this.uvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
    this.uvsadm('-a', '-t', `${VIP}:80`, '-r', rs[0], f);
    this.uvsadm('-a', '-t', `${VIP}:80`, '-r', rs[1], f);
    assert.deepEqual(this.split(20), { rs1: 10, rs2: 10 });

    this.uvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
    this.uvsadm('-a', '-u', `${VIP}:53`, '-r', udpRs[0], f);
    this.uvsadm('-a', '-u', `${VIP}:53`, '-r', udpRs[1], f);
    const names = this.udpNames(53);
    assert.equal(names.filter((n) => n === 'rs1').length, 5, JSON.stringify(names));
    assert.equal(names.filter((n) => n === 'rs2').length, 5, JSON.stringify(names));

    this.uvsadm('-E', '-t', `${VIP}:80`, '-s', 'rr', '-p', '60');
    const sticky = this.split(10);
    assert.equal(Object.keys(sticky).length, 1, JSON.stringify(sticky));
    this.uvsadm('-E', '-t', `${VIP}:80`, '-s', 'rr');

    const held = spawn('ip', ['netns', 'exec', this.CL, 'curl', '-s', '-m', '10', `http://${VIP}/slow/2500`]);
    let heldOut = '';
    held.stdout.on('data', (d: Buffer) => (heldOut += d.toString()));
    const heldDone = new Promise<number | null>((resolve) => held.once('exit', resolve));
    await new Promise((r) => setTimeout(r, 500));
    const conns = this.uvsadm('-L', '-n', '-c');
    const heldOn = conns.includes(rs[0]) ? rs[0] : rs[1];
    const other = heldOn === rs[0] ? 'rs2' : 'rs1';
    this.uvsadm('-e', '-t', `${VIP}:80`, '-r', heldOn, f, '-w', '0');
    assert.deepEqual(this.split(6), { [other]: 6 });
    assert.equal(await heldDone, 0);
    assert.equal(heldOut.trim(), other === 'rs1' ? 'rs2' : 'rs1');

    this.uvsadm('-e', '-t', `${VIP}:80`, '-r', heldOn, f, '-w', '1');
    this.uvsadm('-d', '-t', `${VIP}:80`, '-r', rs[0]);
    assert.deepEqual(this.split(4), { rs2: 4 });
    assert.match(this.uvsadm('-L', '-n', '-c'), new RegExp(rs[0].replace(/\./g, '\\.')));

    this.uvsadm('-D', '-t', `${VIP}:80`);
    assert.equal(this.curl('/', 2).status, 7, 'connection refused by the director itself');

    await this.stopUvsd('SIGKILL');
    assert.equal(this.tableLeft(), true);
    await this.startUvsd(1);
    await this.stopUvsd();
    assert.equal(this.tableLeft(), false);
  }
}
