#!/usr/bin/env node
// The ECMP lab's health hook (README "Scale-out with ECMP"): a director announces its VIP over BGP
// only while its uvsd is healthy. Every --interval ms this asks the uvsd of its network namespace,
// over the control socket as uvsadm does, for its data-plane workers and its table; healthy =
// answers within --timeout ms listing at least one worker, all alive, and a virtual service with
// a real server of positive weight. A uvsd that is gone, whose data plane has not started yet, or
// that has not been given its services yet (just restarted) is not: announcing the VIP then would
// send flows to a director that cannot forward them. On a change it enables or disables BIRD's protocol that
// originates the VIP route (`birdc enable|disable PROTO`), so BGP withdraws the route at once;
// a BGP hold time cannot go below 3 s, so waiting for the session to drop would be too slow.
// Unhealthy needs --fails answers in a row (one slow answer on a busy machine is not a failure):
// with the defaults the route goes within about 0.5 s of uvsd dying.
//
// Usage: vip-health.mjs --birdc-socket PATH --protocol NAME [--interval 150] [--timeout 300] [--fails 2]
// Runs until SIGTERM; logs each transition with a timestamp.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { request } = await import(join(here, '..', 'dist', 'src', 'control', 'client.js'));
const { resolveSocketPath } = await import(join(here, '..', 'dist', 'src', 'runtime', 'paths.js'));

const args = process.argv.slice(2);
function opt(flag, dflt) {
  const i = args.indexOf(flag);
  if (i >= 0 && args[i + 1] !== undefined) return args[i + 1];
  if (dflt === undefined) {
    console.error(`vip-health.mjs: ${flag} is required`);
    process.exit(2);
  }
  return dflt;
}
const birdSocket = opt('--birdc-socket');
const protocol = opt('--protocol');
const intervalMs = Number(opt('--interval', '150'));
const timeoutMs = Number(opt('--timeout', '300'));
const failsNeeded = Number(opt('--fails', '2'));
const uvsdSocket = resolveSocketPath(undefined, process.env);

const log = (text) => console.log(`${new Date().toISOString()} ${text}`);

async function healthy() {
  try {
    const res = await request(uvsdSocket, { type: 'workers' }, timeoutMs);
    if (!(res.ok && res.result.kind === 'workers' && res.result.workers.length > 0 && res.result.workers.every((w) => w.alive))) return false;
    const list = await request(uvsdSocket, { type: 'command', command: { cmd: 'list', what: 'all', service: null, format: 0 } }, timeoutMs);
    return list.ok && list.result.kind === 'services' && list.result.services.some((s) => s.dests.some((d) => d.weight > 0));
  } catch {
    return false;
  }
}

function birdc(verb) {
  return new Promise((resolve) => {
    execFile('birdc', ['-s', birdSocket, verb, protocol], { timeout: 2000 }, (err, stdout) => {
      // "vip: enabled", "vip: already enabled" (and the same for disabled) are both success.
      resolve(!err && /(enabled|disabled)/.test(stdout));
    });
  });
}

let announced = null; // what BIRD was last told successfully: true, false, or null (not yet)
let fails = 0;
let stopping = false;
process.on('SIGTERM', () => { stopping = true; });
process.on('SIGINT', () => { stopping = true; });

while (!stopping) {
  const ok = await healthy();
  fails = ok ? 0 : fails + 1;
  const want = ok ? true : fails >= failsNeeded ? false : announced ?? false;
  if (want !== announced) {
    if (await birdc(want ? 'enable' : 'disable')) {
      log(`uvsd ${ok ? 'healthy' : `unhealthy (${fails} checks)`}: ${want ? 'announcing' : 'withdrew'} the VIP (birdc ${want ? 'enable' : 'disable'} ${protocol})`);
      announced = want;
    }
  }
  await new Promise((r) => setTimeout(r, intervalMs));
}
// Leaving: the VIP must not stay announced without its watcher.
if (announced !== false) await birdc('disable');
log('stopped');
