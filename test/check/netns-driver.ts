// Runs a CheckRunner from inside a network namespace for test/netns/check.test.ts:
//   ip netns exec <director> node dist/test/check/netns-driver.js '<VirtualServerOptions JSON>'
// Prints one JSON line per runner event (check results summarised) on stdout, and stops cleanly
// on SIGTERM or when stdin closes, so the parent test never leaves it behind. Bounded: it exits
// by itself after 120 s whatever happens.
import { CheckRunner } from '../../src/check/runner';
import type { VirtualServerOptions } from '../../src/check/types';
import { ScriptRunner } from '../../src/notify/script';

const vs = JSON.parse(process.argv[2] ?? '') as VirtualServerOptions;
const runner = new CheckRunner([vs], { checkerContext: { scripts: new ScriptRunner({ scriptUser: { user: 'root' } }) } });
runner.on('event', (e) => {
  const line =
    e.type === 'check'
      ? { type: e.type, rs: e.rs.id, checker: e.checker, ok: e.result.ok, trail: e.result.trail }
      : e.type === 'pool'
        ? { type: e.type, dests: e.dests.map((d) => ({ rs: d.rsId, weight: d.weight, sorry: d.sorry })) }
        : e.type === 'rs-up' || e.type === 'rs-down' || e.type === 'rs-weight'
          ? { type: e.type, rs: e.rs.id, weight: 'weight' in e ? e.weight : undefined }
          : { type: e.type, weightSum: e.weightSum };
  process.stdout.write(JSON.stringify(line) + '\n');
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await runner.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.resume();
setTimeout(() => void stop(), 120_000).unref();
runner.start();
