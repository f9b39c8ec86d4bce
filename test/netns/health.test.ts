// Health checks driving the table, end to end in the DR lab (needs root; CI runs it as root):
// uvsd -f keepalived.conf on the director, real HTTP servers (netns-scripts/rs-server.mjs) in the
// real servers' namespaces, curl from the client namespace, a real SMTP server (npm smtp-server)
// in the director's namespace receiving smtp_alert mails, notify scripts writing what they got.
//
// - HTTP_GET with retry 1: stopping rs1's HTTP server takes it out after the retry fails, requests
//   keep succeeding on rs2; starting it again brings it back. notify_down / notify_up run with the
//   arguments written in the config (keepalived passes no others), and a mail arrives for each.
// - inhibit_on_failure: a failed rs2 stays listed with weight 0.
// - MISC_CHECK misc_dynamic: exit 2+w sets the weight; quorum lost brings the sorry server (rs3)
//   in alone, quorum regained takes it out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import * as readline from 'node:readline';
import { cannotRunNetns, labSuffix, lab, inNs, repoRoot } from './helpers';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns();
const S = labSuffix('h');
const P = `uvs${S}`;
const DIR = `${P}dir`;
const CL = `${P}cl`;
const VIP = '10.77.0.100';
const RS = ['10.77.0.21', '10.77.0.22', '10.77.0.23'];
const RS_SERVER = join(repoRoot, 'netns-scripts', 'rs-server.mjs');
const SMTP_SINK = join(repoRoot, 'dist', 'test', 'netns', 'health-smtp-sink.js');
const SMTP_PORT = 2525;
const tmp = fs.mkdtempSync(join(os.tmpdir(), 'uvs-health-'));
const conf = join(tmp, 'keepalived.conf');
const notifyLog = join(tmp, 'notify.log');

const daemon = new UvsdProcess(DIR);
const uvsadm = (...args: string[]): string => daemon.uvsadm(...args);
const startUvsd = (): Promise<void> => daemon.start(['--workers', '1', '-f', conf]);
const stopUvsd = (signal?: NodeJS.Signals): Promise<number | null> => daemon.stop(signal);
let smtp: ChildProcess | null = null;
const mails: Array<{ from: string; to: string[]; subject: string; data: string }> = [];

/** The real servers listed for the VIP, with their weights (uvsadm -L -n). */
function listed(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of uvsadm('-L', '-n').split('\n')) {
    const m = /^\s+->\s+(\d+\.\d+\.\d+\.\d+):80\s+\w+\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

async function waitFor<T>(what: string, probe: () => T | null | undefined | false, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}\ntable: ${JSON.stringify(listed())}\nuvsd log:\n${daemon.log}`);
}

function curl(timeoutSec = 3): { status: number; body: string } {
  const r = inNs(CL, 'curl', ['-s', '-m', String(timeoutSec), `http://${VIP}/`], (timeoutSec + 2) * 1000);
  return { status: r.status, body: r.stdout.trim() };
}

/** n requests, every one must succeed; returns how many each real server answered. */
function split(n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const { status, body } = curl();
    assert.equal(status, 0, `request ${i} failed (curl exit ${status})\ntable: ${JSON.stringify(listed())}\nuvsd log:\n${daemon.log}`);
    counts[body] = (counts[body] ?? 0) + 1;
  }
  return counts;
}

/** The rs-server.mjs processes of real server i's namespace (lab.sh's pid file holds the pid of
 *  the shell that started it, so the namespace's own process list is asked). */
function realServerPids(i: number): number[] {
  const r = spawnSync('ip', ['netns', 'pids', `${P}rs${i}`], { encoding: 'utf8', timeout: 5000 });
  return (r.stdout ?? '').split(/\s+/).filter(Boolean).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('rs-server.mjs');
    } catch {
      return false; // already gone
    }
  });
}

function stopRealServer(i: number): void {
  const pids = realServerPids(i);
  assert.ok(pids.length > 0, `no rs-server.mjs runs in ${P}rs${i}`);
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  // Bounded: the port is closed once the process is gone.
  for (let k = 0; k < 50; k++) {
    if (inNs(CL, 'curl', ['-s', '-m', '1', `http://${RS[i - 1]}/`], 3000).status !== 0) return;
    spawnSync('sleep', ['0.1']);
  }
  throw new Error(`rs${i} still answers after SIGKILL`);
}

async function startRealServer(i: number): Promise<void> {
  // lab.sh down ends every process of the lab's namespaces, this one included.
  spawn('ip', ['netns', 'exec', `${P}rs${i}`, process.execPath, RS_SERVER, `rs${i}`, '--port', '80', '--udp-port', '53'], { stdio: 'ignore' });
  await waitFor(`rs${i} to answer`, () => inNs(CL, 'curl', ['-s', '-m', '1', `http://${RS[i - 1]}/`], 3000).status === 0, 10_000);
}

async function startSmtp(): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', DIR, process.execPath, SMTP_SINK, '127.0.0.1', String(SMTP_PORT)], { stdio: ['pipe', 'pipe', 'inherit'] });
  smtp = child;
  const lines = readline.createInterface({ input: child.stdout });
  let ready = false;
  lines.on('line', (line) => {
    if (line === 'ready') ready = true;
    else if (line.startsWith('{')) mails.push(JSON.parse(line) as { from: string; to: string[]; subject: string; data: string });
  });
  await waitFor('the SMTP server', () => ready, 10_000);
}

function notifyLines(): string[] {
  return fs.existsSync(notifyLog) ? fs.readFileSync(notifyLog, 'utf8').split('\n').filter(Boolean) : [];
}

const GLOBALS = `global_defs {
  router_id uvstest
  script_user root
  enable_script_security
  notification_email {
    ops@example.test
  }
  notification_email_from uvsd@example.test
  smtp_server 127.0.0.1 ${SMTP_PORT}
  smtp_connect_timeout 5
}`;

const HTTP_CHECK = `    HTTP_GET {
      url {
        path /
        status_code 200
      }
      connect_timeout 1
      retry 1
      delay_before_retry 1
    }`;

before(async () => {
  if (why) return;
  lab(S, 'up', 'dr', '--rs', '3');
  await startSmtp();
  // notify_up/notify_down: records its arguments, one line per call.
  fs.writeFileSync(join(tmp, 'notify.sh'), `#!/bin/sh\nprintf '%s|' "$@" >> ${notifyLog}\necho >> ${notifyLog}\n`, { mode: 0o755 });
});

after(async () => {
  await stopUvsd('SIGKILL');
  smtp?.stdin?.end();
  smtp?.kill('SIGKILL');
  if (!why) lab(S, 'down');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('HTTP_GET takes a stopped real server out after retry and back when it returns; inhibit keeps weight 0; notify and SMTP', { skip: why ?? false, timeout: 120_000 }, async () => {
  fs.writeFileSync(conf, `${GLOBALS}
virtual_server ${VIP} 80 {
  delay_loop 1
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server ${RS[0]} 80 {
    weight 1
    notify_up "${join(tmp, 'notify.sh')} UP rs1 'two words'"
    notify_down "${join(tmp, 'notify.sh')} DOWN rs1"
${HTTP_CHECK}
  }
  real_server ${RS[1]} 80 {
    weight 1
    inhibit_on_failure
${HTTP_CHECK}
  }
}
`);
  await startUvsd();
  assert.deepEqual(listed(), { [RS[0]!]: 1, [RS[1]!]: 1 });
  assert.deepEqual(split(10), { rs1: 5, rs2: 5 });

  // rs1's HTTP server stops: the first failure is retried once after delay_before_retry (1 s),
  // so rs1 leaves no sooner than about a second later.
  const stoppedAt = Date.now();
  stopRealServer(1);
  await waitFor('rs1 taken out', () => !(RS[0]! in listed()));
  const tookMs = Date.now() - stoppedAt;
  assert.ok(tookMs >= 900, `rs1 left after ${tookMs} ms: the retry was not waited for`);
  assert.deepEqual(split(10), { rs2: 10 }, 'requests keep succeeding on the other real server');
  await waitFor('notify_down', () => notifyLines().includes('DOWN|rs1|'));
  const down = await waitFor('the DOWN mail', () => mails.find((m) => m.subject.includes('- DOWN')));
  assert.equal(down.subject, `[uvstest] Realserver [${RS[0]}]:80 of virtual server [${VIP}]:80 - DOWN`);
  assert.match(down.data, /=> HTTP_GET CHECK failed on service <=/);
  assert.match(down.data, /ECONNREFUSED 10\.77\.0\.21:80/, 'the mail says why: the check\'s trail');
  assert.deepEqual(down.to, ['ops@example.test']);
  assert.equal(down.from, 'uvsd@example.test');

  // rs1 returns: the next successful check brings it back.
  await startRealServer(1);
  await waitFor('rs1 back', () => listed()[RS[0]!] === 1);
  await waitFor('notify_up', () => notifyLines().includes('UP|rs1|two words|'));
  await waitFor('the UP mail', () => mails.find((m) => m.subject === `[uvstest] Realserver [${RS[0]}]:80 of virtual server [${VIP}]:80 - UP`));
  assert.deepEqual(split(10), { rs1: 5, rs2: 5 });

  // inhibit_on_failure: rs2 stays listed with weight 0 and gets no new connection.
  stopRealServer(2);
  await waitFor('rs2 at weight 0', () => listed()[RS[1]!] === 0);
  assert.deepEqual(listed(), { [RS[0]!]: 1, [RS[1]!]: 0 });
  assert.deepEqual(split(6), { rs1: 6 });
  await startRealServer(2);
  await waitFor('rs2 at weight 1 again', () => listed()[RS[1]!] === 1);
  assert.deepEqual(split(10), { rs1: 5, rs2: 5 });
  assert.equal(await stopUvsd(), 0);
});

test('MISC_CHECK misc_dynamic sets weights; quorum lost brings the sorry server in, regained takes it out', { skip: why ?? false, timeout: 120_000 }, async () => {
  const code = join(tmp, 'rs1.exit');
  fs.writeFileSync(code, '0');
  fs.writeFileSync(join(tmp, 'misc.sh'), `#!/bin/sh\nexit $(cat ${code})\n`, { mode: 0o755 });
  fs.writeFileSync(conf, `${GLOBALS}
virtual_server ${VIP} 80 {
  delay_loop 1
  lb_algo wrr
  lb_kind DR
  protocol TCP
  quorum 2
  sorry_server ${RS[2]} 80
  real_server ${RS[0]} 80 {
    weight 1
    MISC_CHECK {
      misc_path "${join(tmp, 'misc.sh')}"
      misc_timeout 2
      misc_dynamic
    }
  }
  real_server ${RS[1]} 80 {
    weight 1
${HTTP_CHECK}
  }
}
`);
  await startUvsd();
  assert.deepEqual(listed(), { [RS[0]!]: 1, [RS[1]!]: 1 });

  // misc_dynamic: exit 5 → weight 3, so wrr sends 3 of every 4 requests to rs1.
  fs.writeFileSync(code, '5');
  await waitFor('rs1 at weight 3', () => listed()[RS[0]!] === 3);
  assert.deepEqual(split(20), { rs1: 15, rs2: 5 });

  // rs2 stops: live weight 3 still meets quorum 2, nothing else changes.
  stopRealServer(2);
  await waitFor('rs2 out', () => !(RS[1]! in listed()));
  assert.deepEqual(listed(), { [RS[0]!]: 3 });

  // rs1 fails its MISC_CHECK (exit 1): live weight 0 < 2, quorum lost, the sorry server alone.
  fs.writeFileSync(code, '1');
  await waitFor('the sorry server in', () => RS[2]! in listed());
  assert.deepEqual(listed(), { [RS[2]!]: 1 });
  assert.deepEqual(split(5), { rs3: 5 });
  await waitFor('the quorum-lost log line', () => /Lost quorum 0 < 2 for VS \[10\.77\.0\.100\]:tcp:80; sorry server in/.test(daemon.log));

  // Both come back (rs1's exit 3 = weight 1): live weight 2 meets quorum 2 again, the sorry
  // server leaves, the real servers return.
  fs.writeFileSync(code, '3');
  await startRealServer(2);
  await waitFor('the sorry server out', () => !(RS[2]! in listed()) && RS[0]! in listed() && RS[1]! in listed());
  assert.deepEqual(listed(), { [RS[0]!]: 1, [RS[1]!]: 1 });
  assert.deepEqual(split(10), { rs1: 5, rs2: 5 });
  await waitFor('the quorum-gained log line', () => /Gained quorum 2 >= 2 for VS \[10\.77\.0\.100\]:tcp:80; sorry server out/.test(daemon.log));
  assert.equal(await stopUvsd(), 0);
});
