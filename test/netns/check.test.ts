// Health checks from a director namespace to real servers in their own namespaces (needs root).
// Lab: uvs<S>d (director, 10.201.1.1 and 10.201.2.1) — veth — uvs<S>1 (10.201.1.2, RS1 HTTP)
//                                                  — veth — uvs<S>2 (10.201.2.2, RS2 HTTP)
// The runner runs inside uvs<S>d (test/check/netns-driver.ts) with HTTP_GET on both servers and a
// misc_dynamic MISC_CHECK on RS1. The test stops and starts the real servers' HTTP processes
// and checks what keepalived would do: RS1 (weight 2) out after retry failures, quorum 2 lost,
// sorry server in (RS2, inhibit_on_failure, listed at weight 0); RS1 back, quorum regained;
// RS2 down stays listed with weight 0; MISC_CHECK exit 7 sets RS1's weight to 5.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { cannotRunNetns, labSuffix, inNs, repoRoot } from './helpers';

const why = cannotRunNetns();
const S = labSuffix('k');
const director = `uvs${S}d`;
const rsNs = [`uvs${S}1`, `uvs${S}2`];
const rsAddr = ['10.201.1.2', '10.201.2.2'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'uvs-checkns-'));
const weightFile = path.join(tmp, 'exit-code');
const children: ChildProcess[] = [];

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe', timeout: 10_000 });
}

function startHttp(i: number): ChildProcess {
  const code = `require('http').createServer((q,r)=>r.end('rs${i + 1}')).listen(80,'${rsAddr[i]}',()=>console.log('ready'))`;
  const child = spawn('ip', ['netns', 'exec', rsNs[i]!, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return child;
}

async function ready(child: ChildProcess): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('HTTP server did not start in 10 s')), 10_000);
    child.stdout!.once('data', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

before(() => {
  if (why) return;
  ip(['netns', 'add', director]);
  for (let i = 0; i < 2; i++) {
    ip(['netns', 'add', rsNs[i]!]);
    ip(['link', 'add', `uvs${S}d${i + 1}`, 'netns', director, 'type', 'veth', 'peer', 'name', `uvs${S}r${i + 1}`, 'netns', rsNs[i]!]);
    inNs(director, 'ip', ['addr', 'add', `10.201.${i + 1}.1/24`, 'dev', `uvs${S}d${i + 1}`]);
    inNs(director, 'ip', ['link', 'set', `uvs${S}d${i + 1}`, 'up']);
    inNs(rsNs[i]!, 'ip', ['addr', 'add', `${rsAddr[i]}/24`, 'dev', `uvs${S}r${i + 1}`]);
    inNs(rsNs[i]!, 'ip', ['link', 'set', `uvs${S}r${i + 1}`, 'up']);
    inNs(rsNs[i]!, 'ip', ['link', 'set', 'lo', 'up']);
  }
  inNs(director, 'ip', ['link', 'set', 'lo', 'up']);
});

after(async () => {
  for (const c of children) await kill(c);
  for (const ns of [director, ...rsNs]) {
    try {
      ip(['netns', 'del', ns]);
    } catch {
      /* not created */
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Line {
  type: string;
  rs?: number;
  weight?: number;
  dests?: Array<{ rs: number; weight: number; sorry: boolean }>;
}

test('checks from the director namespace: retry, quorum, sorry server, inhibit, misc_dynamic weights', { skip: why ?? false, timeout: 90_000 }, async () => {
  let http1 = startHttp(0);
  let http2 = startHttp(1);
  await Promise.all([ready(http1), ready(http2)]);
  fs.writeFileSync(weightFile, '0');
  const misc = path.join(tmp, 'weight.sh');
  fs.writeFileSync(misc, `#!/bin/sh\nexit $(cat ${weightFile})\n`, { mode: 0o755 });

  const vs = {
    id: 1,
    address: '10.201.0.100',
    port: 80,
    delayLoop: 0.2,
    warmup: 0,
    retry: 2,
    delayBeforeRetry: 0.1,
    quorum: 2,
    sorryServer: { address: '10.201.1.9', port: 80 },
    realServers: [
      {
        id: 1,
        address: rsAddr[0],
        port: 80,
        weight: 2,
        checkers: [
          { kind: 'HTTP_GET', connectTimeout: 1, url: [{ path: '/' }] },
          { kind: 'MISC_CHECK', miscPath: misc, miscDynamic: true, miscTimeout: 2 },
        ],
      },
      { id: 2, address: rsAddr[1], port: 80, weight: 1, inhibitOnFailure: true, checkers: [{ kind: 'HTTP_GET', connectTimeout: 1, url: [{ path: '/' }] }] },
    ],
  };
  const driver = spawn('ip', ['netns', 'exec', director, process.execPath, path.join(repoRoot, 'dist', 'test', 'check', 'netns-driver.js'), JSON.stringify(vs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(driver);
  const lines: Line[] = [];
  readline.createInterface({ input: driver.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Line));
  const waitFor = async (what: string, pred: (l: Line) => boolean, from: number): Promise<number> => {
    const end = Date.now() + 15_000;
    for (;;) {
      const i = lines.findIndex((l, idx) => idx >= from && pred(l));
      if (i >= 0) return i;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; saw:\n${lines.slice(from).map((l) => JSON.stringify(l)).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const pool = (l: Line): string => (l.dests ?? []).map((d) => `${d.sorry ? 'sorry' : d.rs}:${d.weight}`).join(',');
  try {
    let at = await waitFor('first checks pass', (l) => l.type === 'check' && l.rs === 2, 0);
    assert.equal(pool(lines.find((l) => l.type === 'pool')!), '1:2,2:1');

    // RS1's HTTP dies: down after 1 + retry failures; weight 1 < quorum 2 → sorry server.
    await kill(http1);
    const failFrom = lines.length;
    at = await waitFor('RS1 down', (l) => l.type === 'rs-down' && l.rs === 1, failFrom);
    const httpFails = lines.slice(failFrom, at).filter((l) => l.type === 'check' && l.rs === 1 && (l as { checker?: string }).checker === 'HTTP_GET');
    assert.ok(httpFails.length >= 3, `3 HTTP failures before down, saw ${httpFails.length}`);
    at = await waitFor('quorum lost', (l) => l.type === 'quorum-lost', at);
    at = await waitFor('sorry pool', (l) => l.type === 'pool', at);
    assert.equal(pool(lines[at]!), '2:0,sorry:1');

    // RS1 back: quorum regained, the sorry server leaves.
    http1 = startHttp(0);
    await ready(http1);
    at = await waitFor('RS1 up', (l) => l.type === 'rs-up' && l.rs === 1, at);
    at = await waitFor('quorum gained', (l) => l.type === 'quorum-gained', at);
    at = await waitFor('pool back', (l) => l.type === 'pool', at);
    assert.equal(pool(lines[at]!), '1:2,2:1');

    // RS2 (inhibit_on_failure) dies: listed at weight 0; quorum (2) holds with RS1's weight 2.
    await kill(http2);
    at = await waitFor('RS2 down', (l) => l.type === 'rs-down' && l.rs === 2, at);
    at = await waitFor('inhibited pool', (l) => l.type === 'pool', at);
    assert.equal(pool(lines[at]!), '1:2,2:0');
    assert.ok(!lines.slice(at).some((l) => l.type === 'quorum-lost'));

    // MISC_CHECK exit 7 → weight 5.
    fs.writeFileSync(weightFile, '7');
    at = await waitFor('weight 5', (l) => l.type === 'rs-weight' && l.rs === 1 && l.weight === 5, at);
    at = await waitFor('pool with weight 5', (l) => l.type === 'pool', at);
    assert.equal(pool(lines[at]!), '1:5,2:0');

    // MISC_CHECK exit 1 → RS1 down too; nothing left, quorum lost, sorry server.
    fs.writeFileSync(weightFile, '1');
    at = await waitFor('RS1 down by MISC', (l) => l.type === 'rs-down' && l.rs === 1, at);
    at = await waitFor('sorry again', (l) => l.type === 'pool' && pool(l).includes('sorry'), at);
    assert.equal(pool(lines[at]!), '2:0,sorry:1');
    http2 = startHttp(1);
    await ready(http2);
  } finally {
    driver.stdin.end();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        driver.kill('SIGKILL');
        resolve();
      }, 5000);
      driver.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  // Stopping emptied the pool.
  assert.equal(lines.at(-1)?.type, 'pool');
  assert.equal(pool(lines.at(-1)!), '');
});
