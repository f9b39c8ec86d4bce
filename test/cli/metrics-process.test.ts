// uvsd --metrics / --metrics-textfile as a process (no root: --io none): a live table changed with
// uvsadm is scraped over HTTP, the textfile follows it, and the start-up errors are clear.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const root = join(__dirname, '..', '..', '..');
const UVSD = join(root, 'dist', 'src', 'cli', 'uvsd.js');
const UVSADM = join(root, 'dist', 'src', 'cli', 'uvsadm.js');
const dir = mkdtempSync(join(tmpdir(), 'uvs-metrics-'));
const children = new Set<ChildProcess>();

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A port nothing listens on right now (bound to 0, then closed). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))));
    }).on('error', reject);
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | null> | T | null, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function uvsadm(socket: string, args: string[]): void {
  const r = spawnSync(process.execPath, [UVSADM, ...args], { env: { ...process.env, UVS_SOCKET: socket }, encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, `uvsadm ${args.join(' ')}: ${r.stderr}`);
}

test('a live uvsd serves node_ipvs_* for the table uvsadm builds, and writes the textfile', async () => {
  const socket = join(dir, 'a.sock');
  const port = await freePort();
  const child = spawn(process.execPath, [UVSD, '-n', '-G', '--no-config', '--io', 'none', '--socket', socket,
    '--metrics', `127.0.0.1:${port}`, '--metrics-textfile', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor('the control socket', () => (existsSync(socket) ? true : null));
  uvsadm(socket, ['-A', '-t', '10.0.0.1:80', '-s', 'wrr']);
  uvsadm(socket, ['-a', '-t', '10.0.0.1:80', '-r', '10.0.1.2:80', '-g', '-w', '3']);
  uvsadm(socket, ['-A', '-f', '7', '-s', 'rr']);
  uvsadm(socket, ['-a', '-f', '7', '-r', '10.0.1.3', '-g', '-w', '2']);
  const text = await scrape(port);
  assert.match(text, /^node_ipvs_backend_weight\{local_address="10\.0\.0\.1",local_mark="",local_port="80",proto="TCP",remote_address="10\.0\.1\.2",remote_port="80"\} 3$/m);
  assert.match(text, /^node_ipvs_backend_weight\{local_address="",local_mark="00000007",local_port="0",proto="FWM",remote_address="10\.0\.1\.3",remote_port="0"\} 2$/m);
  assert.match(text, /^node_ipvs_connections_total 0$/m);
  assert.match(text, /^# TYPE uvs_vrrp_state gauge$/m);
  uvsadm(socket, ['-e', '-t', '10.0.0.1:80', '-r', '10.0.1.2:80', '-g', '-w', '5']);
  assert.match(await scrape(port), /remote_address="10\.0\.1\.2",remote_port="80"\} 5$/m);
  // The textfile catches up within its period (10 s).
  await waitFor('the textfile with weight 5', () => {
    const file = readFileSync(join(dir, 'uvs_ipvs.prom'), 'utf8');
    return /^node_ipvs_backend_weight\{.*remote_address="10\.0\.1\.2".*\} 5$/m.test(file) && !/uvs_/.test(file) ? true : null;
  }, 20_000);

  // A second uvsd on the same metrics port: refused at start, naming the option, nothing left running.
  const second = spawnSync(process.execPath, [UVSD, '-G', '--no-config', '--io', 'none', '--socket', join(dir, 'b.sock'),
    '--metrics', `127.0.0.1:${port}`], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(second.status, 1, second.stderr);
  assert.match(second.stderr, new RegExp(`^uvsd: --metrics 127\\.0\\.0\\.1:${port}: cannot listen: the address is already in use$`, 'm'));
  assert.equal(existsSync(join(dir, 'b.sock')), false);

  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  assert.equal(child.exitCode, 0, stderr);
});

test('a bad --metrics value is a usage error naming the option (exit 2)', () => {
  const r = spawnSync(process.execPath, [UVSD, '-G', '--no-config', '--io', 'none', '--metrics', 'localhost:9100'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^uvsd: --metrics: "localhost" in "localhost:9100" is not an IPv4 address/);
});

test('SIGUSR1, SIGUSR2 and --signum=JSON\'s signal write keepalived.data/.stats/.json in $TMPDIR and uvsd goes on; uvsadm --vrrp/--checks answer', async () => {
  const socket = join(dir, 'd.sock');
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const child = spawn(process.execPath, [UVSD, '-n', '-G', '--no-config', '--io', 'none', '--socket', socket],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
  children.add(child);
  await waitFor('the control socket', () => (existsSync(socket) ? true : null));
  const jsonSignal = Number(spawnSync(process.execPath, [UVSD, '--signum=JSON'], { encoding: 'utf8', timeout: 10_000 }).stdout.trim());
  // uvsd rewrites a dump in place as keepalived does (open with O_TRUNC, then write): the file can
  // exist and still be empty for a moment, so each is waited for with its whole content.
  const expected = {
    'keepalived.data': /^------< VRRP Topology >------\n------< Health checkers >------\n$/,
    'keepalived.stats': /^$/, // no vrrp_instance: nothing to count
    'keepalived.json': /^\[\]$/,
  } as const;
  for (const [signal, file] of [['SIGUSR1', 'keepalived.data'], ['SIGUSR2', 'keepalived.stats'], [jsonSignal, 'keepalived.json']] as const) {
    process.kill(child.pid!, signal);
    await waitFor(file, () => (existsSync(join(tmp, file)) && expected[file].test(readFileSync(join(tmp, file), 'utf8')) ? true : null));
  }
  assert.match(readFileSync(join(tmp, 'keepalived.data'), 'utf8'), expected['keepalived.data']);
  assert.equal(readFileSync(join(tmp, 'keepalived.json'), 'utf8'), '[]');
  const run = (args: string[]): { status: number | null; stdout: string } =>
    spawnSync(process.execPath, [UVSADM, ...args], { env: { ...process.env, UVS_SOCKET: socket }, encoding: 'utf8', timeout: 10_000 });
  const vrrp = run(['--vrrp']);
  assert.equal(vrrp.status, 0);
  assert.equal(vrrp.stdout, 'no vrrp_instance runs in this uvsd\n');
  assert.equal(run(['--vrrp', '--json']).stdout, '[]\n');
  assert.equal(run(['--checks']).stdout, 'no health checkers run in this uvsd\n');
  assert.equal(run(['--checks', '--json']).stdout, '[]\n');
  assert.equal(run(['--checks', '-n']).status, 2);
  assert.equal(child.exitCode, null, 'uvsd still runs after the dump signals');
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  assert.equal(child.exitCode, 0);
});
