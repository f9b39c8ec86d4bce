// Issue 14's "show it", as a new user of the seed tutorial would try it: Debian's
// /usr/share/doc/keepalived/samples/keepalived.conf.sample copied to the default path
// /etc/keepalived/keepalived.conf (a bind mount inside this test's own private mount namespace,
// so the machine's /etc/keepalived never changes) with its interface name adapted, in a lab where
// the sample's real server 192.168.200.2:1358 has its address (an HTTP server in a second
// namespace, on the director's link). uvsd runs as systemd/uvsd.service's ExecStart runs it, with
// `--metrics` in the environment file's DAEMON_ARGS, a /dev/log listener standing in for syslog
// (UVS_SYSLOG_SOCKET) and one for systemd's readiness socket. Then:
//   - the VRRP transition is in the system log with keepalived's text "(VI_1) Entering MASTER STATE";
//   - /metrics has node_ipvs_backend_* series for the real server (and, once its failed check
//     removes it, for the sample's sorry server), uvs_vrrp_state MASTER and the checker's state;
//   - SIGUSR1/SIGUSR2 write keepalived.data/.stats (in $TMPDIR) and `uvsadm --vrrp --json` answers.
// Everything made here (namespaces, processes, temp files) is removed in `after`, even on failure.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cannotRunNetns, labSuffix } from './helpers';
import { UVSADM, UVSD } from './uvsd-process';
import { execStart, startListener, waitFor } from './unit-harness';

const SAMPLE = '/usr/share/doc/keepalived/samples/keepalived.conf.sample';
const skip = cannotRunNetns() ?? (existsSync(SAMPLE) ? null : `keepalived's sample is not installed (${SAMPLE})`)
  ?? (existsSync('/etc/keepalived') ? null : '/etc/keepalived does not exist to bind-mount over');
const sfx = labSuffix('sh');
const NS = `uvs${sfx}d`;
const RS = `uvs${sfx}r`;
const IF = `uvs${sfx}a`;
const PEER = `uvs${sfx}b`;
const METRICS = '127.0.0.1:9100';
const dir = mkdtempSync(join(tmpdir(), 'uvs-show-it-'));
const children: ChildProcess[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  spawnSync('ip', ['netns', 'del', NS]);
  spawnSync('ip', ['netns', 'del', RS]);
  rmSync(dir, { recursive: true, force: true });
});

/** node_exporter's backend series for one real server of the sample's virtual server. */
function backendLine(name: string, rs: string, value: string): RegExp {
  const labels = `local_address="10\\.10\\.10\\.2",local_mark="",local_port="1358",proto="TCP",remote_address="${rs.replace(/\./g, '\\.')}",remote_port="1358"`;
  return new RegExp(`^${name}\\{${labels}\\} ${value}$`, 'm');
}

test('show it: the tutorial\'s sample at the default path, uvsd as the unit starts it, keepalived\'s log text, node_ipvs_* per real server',
  { skip: skip ?? false, timeout: 150_000 }, async () => {
    const run = (args: string[]): void => {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
    };
    run(['netns', 'add', NS]);
    run(['netns', 'add', RS]);
    run(['-n', NS, 'link', 'add', IF, 'type', 'veth', 'peer', 'name', PEER, 'netns', RS]);
    run(['-n', NS, 'addr', 'add', '192.168.200.1/24', 'dev', IF]);
    run(['-n', RS, 'addr', 'add', '192.168.200.2/24', 'dev', PEER]);
    for (const d of ['lo', IF]) run(['-n', NS, 'link', 'set', d, 'up']);
    for (const d of ['lo', PEER]) run(['-n', RS, 'link', 'set', d, 'up']);

    // The sample's real server answers HTTP on 192.168.200.2:1358 (its page is not the one whose
    // MD5 digest the sample expects, so the check fails as it would against any real site).
    const www = join(dir, 'www');
    mkdirSync(join(www, 'testurl3'), { recursive: true });
    writeFileSync(join(www, 'testurl3', 'test.jsp'), 'hello from the real server\n');
    const server = spawn('ip', ['netns', 'exec', RS, '/usr/bin/python3', '-m', 'http.server', '1358', '--bind', '192.168.200.2', '--directory', www],
      { stdio: ['ignore', 'ignore', 'ignore'] });
    children.push(server);

    // The seed tutorial: copy the sample to the default path and adapt its interface name.
    const etc = join(dir, 'keepalived');
    mkdirSync(etc);
    writeFileSync(join(etc, 'keepalived.conf'), readFileSync(SAMPLE, 'utf8').replace(/interface eth0/g, `interface ${IF}`));
    const envFile = join(dir, 'uvsd.default');
    // --io none: the control plane, VRRP and the checkers; this lab has no client traffic.
    writeFileSync(envFile, `DAEMON_ARGS="--io none --metrics ${METRICS}"\n`);

    const { logSock, notifySock, got } = startListener(dir, children);
    let stderr = '';
    let lastScrape = '';
    const shown = (): string => got.map((g) => `${g.sock}: ${g.text}`).join('\n') + `\nuvsd stderr:\n${stderr}\nlast scrape:\n${lastScrape}`;
    await waitFor('the listeners', () => got.some((g) => g.sock === 'up'), shown);

    const socket = join(dir, 'uvsd.sock');
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const env = { ...process.env, NOTIFY_SOCKET: notifySock, UVS_SYSLOG_SOCKET: logSock, JOURNAL_STREAM: '', UVS_SOCKET: socket, TMPDIR: tmp };
    // The bind mount lives in the private mount namespace unshare makes: the machine's
    // /etc/keepalived is never written.
    const uvsd = spawn('ip', ['netns', 'exec', NS, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c',
      'mount --bind "$0" /etc/keepalived && exec "$@"', etc, ...execStart(envFile)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(uvsd);
    uvsd.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const logs = (): string[] => got.filter((g) => g.sock === 'log').map((g) => g.text);
    const notes = (): string[] => got.filter((g) => g.sock === 'notify').map((g) => g.text);
    const scrape = (): string => {
      const r = spawnSync('ip', ['netns', 'exec', NS, 'curl', '-s', '--max-time', '5', `http://${METRICS}/metrics`], { encoding: 'utf8', timeout: 10_000 });
      lastScrape = r.stdout ?? '';
      return lastScrape;
    };

    await waitFor('READY=1', () => notes().some((n) => n.startsWith('READY=1')), shown);
    const pid = Number(/MAINPID=(\d+)/.exec(notes().find((n) => n.startsWith('READY=1'))!)![1]);

    // The real server is in the table from the start (keepalived's checkers start it up): its
    // three node_ipvs_backend_* series, with node_exporter's labels.
    const first = scrape();
    assert.match(first, backendLine('node_ipvs_backend_weight', '192.168.200.2', '1'), shown());
    assert.match(first, backendLine('node_ipvs_backend_connections_active', '192.168.200.2', '0'), shown());
    assert.match(first, backendLine('node_ipvs_backend_connections_inactive', '192.168.200.2', '0'), shown());
    assert.match(first, /^node_ipvs_connections_total 0$/m);

    // syslog(3)'s format, facility daemon: <30> is daemon.info.
    await waitFor('the VRRP transition in syslog', () => logs().some((l) => /^<30>\w{3} [ \d]\d \d\d:\d\d:\d\d Keepalived_vrrp\[\d+\]: \(VI_1\) Entering MASTER STATE$/.test(l)), shown);
    await waitFor('uvs_vrrp_state MASTER', () => new RegExp(`^uvs_vrrp_state\\{instance="VI_1",vrid="50",interface="${IF}"\\} 2$`, 'm').test(scrape()), shown);
    assert.match(lastScrape, /^uvs_vrrp_transitions_total\{instance="VI_1",state="MASTER"\} 1$/m);

    // The dumps, in $TMPDIR, and uvsadm's view over the control socket.
    process.kill(pid, 'SIGUSR1');
    process.kill(pid, 'SIGUSR2');
    await waitFor('keepalived.data and keepalived.stats', () => existsSync(join(tmp, 'keepalived.data')) && existsSync(join(tmp, 'keepalived.stats')), shown);
    await waitFor('the data file written whole', () => readFileSync(join(tmp, 'keepalived.data'), 'utf8').includes('------< Health checkers >------'), shown);
    const data = readFileSync(join(tmp, 'keepalived.data'), 'utf8');
    for (const line of [' VRRP Instance = VI_1', '   State = MASTER', '   Virtual Router ID = 50', '   Preempt = disabled', '     192.168.200.11/32 dev ' + IF + ' scope global',
      ' Virtual server = [10.10.10.2]:1358', '   Real server = [192.168.200.2]:1358']) {
      assert.ok(data.split('\n').includes(line), `keepalived.data lacks "${line}":\n${data}`);
    }
    assert.match(readFileSync(join(tmp, 'keepalived.stats'), 'utf8'), /^VRRP Instance: VI_1\n {2}Advertisements:\n {4}Received: \d+\n {4}Sent: [1-9]\d*\n {2}Became master: 1\n/);
    const uvsadm = spawnSync('ip', ['netns', 'exec', NS, process.execPath, UVSADM, '--vrrp', '--json'], { env, encoding: 'utf8', timeout: 15_000 });
    assert.equal(uvsadm.status, 0, uvsadm.stderr);
    const json = JSON.parse(uvsadm.stdout) as { data: { iname: string; state: number } }[];
    assert.deepEqual(json.map((i) => [i.data.iname, i.data.state]), [['VI_1', 2]]);

    // The sample's check fails (digest), so after its retries the real server leaves the table
    // with keepalived's text, and the sorry server takes its place: the scrape follows.
    await waitFor('the checker removing the real server', () => logs().some((l) => /Keepalived_healthcheckers\[\d+\]: Removing service \[192\.168\.200\.2\]:tcp:1358 from VS \[10\.10\.10\.2\]:tcp:1358$/.test(l)), shown, 60_000);
    await waitFor('the sorry server in /metrics', () => backendLine('node_ipvs_backend_weight', '192.168.200.200', '\\d+').test(scrape()), shown);
    assert.doesNotMatch(lastScrape, backendLine('node_ipvs_backend_weight', '192.168.200.2', '\\d+'));
    assert.match(lastScrape, /^uvs_check_real_server_up\{virtual_server="\[10\.10\.10\.2\]:1358",real_server="\[192\.168\.200\.2\]:1358"\} 0$/m);
    assert.match(lastScrape, /^uvs_check_quorum_up\{virtual_server="\[10\.10\.10\.2\]:1358"\} 0$/m);
    const checks = spawnSync('ip', ['netns', 'exec', NS, process.execPath, UVSADM, '--checks'], { env, encoding: 'utf8', timeout: 15_000 });
    assert.equal(checks.status, 0, checks.stderr);
    assert.match(checks.stdout, /^ Virtual server = \[10\.10\.10\.2\]:1358\n {3}Quorum = down, sorry server in use\n {3}Real server = \[192\.168\.200\.2\]:1358\n {5}State = DOWN\n {5}Weight = \d+\n {5}HTTP_GET = DOWN$/m);
    // keepalived's JSON dump on the signal `uvsd --signum=JSON` names.
    const jsonSignal = Number(spawnSync(process.execPath, [UVSD, '--signum=JSON'], { encoding: 'utf8', timeout: 10_000 }).stdout.trim());
    process.kill(pid, jsonSignal);
    await waitFor('keepalived.json', () => existsSync(join(tmp, 'keepalived.json')), shown);
    await waitFor('keepalived.json written whole', () => readFileSync(join(tmp, 'keepalived.json'), 'utf8').endsWith(']'), shown);
    const dumped = JSON.parse(readFileSync(join(tmp, 'keepalived.json'), 'utf8')) as { data: { iname: string; state: number; vrid: number }; stats: { become_master: number } }[];
    assert.deepEqual(dumped.map((i) => [i.data.iname, i.data.state, i.data.vrid, i.stats.become_master]), [['VI_1', 2, 50, 1]]);

    uvsd.kill('SIGTERM');
    const code = await new Promise<number | null>((res) => uvsd.once('exit', (c) => res(c)));
    assert.equal(code, 0, shown());
    assert.equal(stderr, '', 'nothing on stderr when syslog takes the lines');
    assert.equal(existsSync('/etc/keepalived/keepalived.conf'), false, 'the default path of the machine stays untouched');
  });
