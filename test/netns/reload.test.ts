// SIGHUP reload under load, end to end in the DR lab (needs root; CI runs it as root): uvsd -f
// keepalived.conf with HTTP_GET checkers, `wrk` from the client namespace against the VIP, and
// ten reloads during the run, each changing rs1's weight. The reload is applied by diff, so the
// connections wrk holds open, the real servers' slots (and their counters) and the checkers'
// states are left alone: wrk sees no socket error and no non-2xx answer. A broken file in the
// middle is refused with file:line and changes nothing; removing a real server from the file
// stops new connections to it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, lab, inNs } from './helpers';
import { UvsdProcess } from './uvsd-process';

const why = cannotRunNetns() ?? (spawnSync('wrk', ['-v']).error ? 'wrk is not installed' : null);
const S = labSuffix('r');
const P = `uvs${S}`;
const DIR = `${P}dir`;
const CL = `${P}cl`;
const VIP = '10.77.0.100';
const RS = ['10.77.0.21', '10.77.0.22'];
const tmp = fs.mkdtempSync(join(os.tmpdir(), 'uvs-reload-'));
const conf = join(tmp, 'keepalived.conf');

const daemon = new UvsdProcess(DIR);
const uvsadm = (...args: string[]): string => daemon.uvsadm(...args);
const startUvsd = (): Promise<void> => daemon.start(['--workers', '2', '-f', conf]);
const stopUvsd = (signal?: NodeJS.Signals): Promise<number | null> => daemon.stop(signal);

/** Real servers of the VIP with weight and total connections (uvsadm -L -n --stats --exact has
 *  no weight, so two listings). */
function listed(): Record<string, { weight: number; conns: number }> {
  const out: Record<string, { weight: number; conns: number }> = {};
  for (const line of uvsadm('-L', '-n').split('\n')) {
    const m = /^\s+->\s+(\d+\.\d+\.\d+\.\d+):80\s+\w+\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = { weight: Number(m[2]), conns: 0 };
  }
  for (const line of uvsadm('-L', '-n', '--stats', '--exact').split('\n')) {
    const m = /^\s+->\s+(\d+\.\d+\.\d+\.\d+):80\s+(\d+)/.exec(line);
    if (m && out[m[1]!]) out[m[1]!]!.conns = Number(m[2]);
  }
  return out;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what: string, probe: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (probe()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}\nuvsd log:\n${daemon.log}`);
}

function config(rs1Weight: number, withRs2 = true): string {
  const realServer = (addr: string, weight: number): string => `  real_server ${addr} 80 {
    weight ${weight}
    HTTP_GET {
      url {
        path /
        status_code 200
      }
      connect_timeout 1
      retry 1
      delay_before_retry 1
    }
  }`;
  return `global_defs {
  router_id uvsreload
}
virtual_server ${VIP} 80 {
  delay_loop 1
  lb_algo wrr
  lb_kind DR
  protocol TCP
${realServer(RS[0]!, rs1Weight)}
${withRs2 ? realServer(RS[1]!, 1) : ''}
}
`;
}

/** SIGHUP, then waits (bounded) until the daemon says how it went; returns what it logged from
 *  that line on (a refusal lists the file's errors on the lines after it). */
async function reload(): Promise<string> {
  const mark = daemon.log.length;
  daemon.signal('SIGHUP');
  let said = '';
  await waitFor('the reload to be logged', () => {
    // -l lines start with an ISO timestamp.
    const m = /^(?:\S+Z )?(reloaded |uvsd: reload of .* failed)/m.exec(daemon.log.slice(mark));
    if (m) said = daemon.log.slice(mark + m.index + m[0].length - m[1]!.length);
    return m !== null;
  }, 5000);
  await sleep(50); // the rest of a multi-line refusal
  return daemon.log.slice(mark + daemon.log.slice(mark).indexOf(said.split('\n')[0]!));
}

before(() => {
  if (!why) lab(S, 'up', 'dr');
});

after(async () => {
  await stopUvsd('SIGKILL');
  if (!why) lab(S, 'down');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('ten reloads during a wrk run fail no request; connections, slots and checkers undisturbed', { skip: why ?? false, timeout: 120_000 }, async (t) => {
  fs.writeFileSync(conf, config(1));
  await startUvsd();
  assert.deepEqual(Object.keys(listed()).sort(), RS);
  // Warm up: a few requests so rs2 has counted connections to lose if it were re-created.
  for (let i = 0; i < 4; i++) assert.equal(inNs(CL, 'curl', ['-s', '-m', '3', `http://${VIP}/`], 5000).status, 0);
  const rs2Before = listed()[RS[1]!]!.conns;
  assert.ok(rs2Before >= 2, `rs2 counted ${rs2Before} connections`);

  const wrkOut: string[] = [];
  const wrk = spawn('ip', ['netns', 'exec', CL, 'wrk', '-t1', '-c4', '-d8s', '--timeout', '3s', `http://${VIP}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
  wrk.stdout.on('data', (d: Buffer) => wrkOut.push(d.toString()));
  wrk.stderr.on('data', (d: Buffer) => wrkOut.push(d.toString()));
  const wrkDone = new Promise<number | null>((resolve) => wrk.once('exit', (code) => resolve(code)));
  const killTimer = setTimeout(() => wrk.kill('SIGKILL'), 30_000);
  try {
    await sleep(800);
    for (let i = 1; i <= 10; i++) {
      fs.writeFileSync(conf, config(i + 1));
      assert.match(await reload(), /^reloaded /, daemon.log);
      if (i === 5) {
        // A broken file in the middle: refused with file:line, the table keeps weight 6.
        fs.writeFileSync(conf, config(99).replace('lb_algo wrr', 'lb_algo nosuch'));
        const refused = await reload();
        assert.match(refused, /reload of .*keepalived\.conf failed, the running table is unchanged: .*keepalived\.conf:\d+/s, daemon.log);
        assert.equal(listed()[RS[0]!]!.weight, 6);
      }
      assert.equal(listed()[RS[0]!]!.weight, i + 1, `reload ${i} applied rs1's weight at once`);
      await sleep(500);
    }
  } finally {
    const code = await wrkDone;
    clearTimeout(killTimer);
    assert.equal(code, 0, wrkOut.join(''));
  }
  const report = wrkOut.join('');
  const requests = /(\d+) requests in/.exec(report);
  t.diagnostic(`wrk: ${requests?.[0] ?? '?'}, 11 SIGHUPs (one refused)`);
  assert.ok(requests && Number(requests[1]) > 100, `wrk made requests:\n${report}`);
  assert.doesNotMatch(report, /Socket errors/, `wrk saw socket errors:\n${report}\nuvsd log:\n${daemon.log}`);
  assert.doesNotMatch(report, /Non-2xx or 3xx responses/, `wrk saw failed answers:\n${report}`);

  // The real servers stayed in place: rs2's counters carried on (a re-created real server would
  // start from a new slot at zero), and no checker changed its mind.
  const after = listed();
  assert.ok(after[RS[1]!]!.conns >= rs2Before, `rs2's connection count went from ${rs2Before} to ${after[RS[1]!]!.conns}`);
  assert.doesNotMatch(daemon.log, /Removing service|Adding service/, 'reloads did not disturb the checkers');

  // Removing rs2 from the file: it leaves the table, new connections all go to rs1.
  fs.writeFileSync(conf, config(11, false));
  assert.match(await reload(), /^reloaded /);
  assert.deepEqual(Object.keys(listed()), [RS[0]]);
  for (let i = 0; i < 6; i++) {
    const r = inNs(CL, 'curl', ['-s', '-m', '3', `http://${VIP}/`], 5000);
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), 'rs1');
  }
  assert.equal(await stopUvsd(), 0);
});
