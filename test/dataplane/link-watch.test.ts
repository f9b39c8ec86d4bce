// The interface watch (src/dataplane/link-watch.ts) over a stand-in for `ip -o monitor`: lines of
// the monitor's form count as notifications and a burst makes one re-evaluation; other lines are
// counted as bad and ignored; a monitor that dies is restarted (and one re-evaluation catches up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkWatcher } from '../../src/dataplane/link-watch';
import { linesLogger } from '../../src/runtime/log';

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a burst of notifications makes one re-evaluation; malformed lines are counted, not acted on', async () => {
  let changes = 0;
  const logs: string[] = [];
  const script = "printf '2: eth0: <BROADCAST,UP> mtu 1500\\n3: eth1    inet 10.0.0.1/24 scope global eth1\\nnot a monitor line\\nDeleted 3: eth1@NONE: <BROADCAST> mtu 1500\\n'; sleep 5";
  const w = new LinkWatcher(() => changes++, linesLogger(logs, 'E '), ['sh', '-c', script]);
  try {
    w.start();
    await wait(800);
    assert.equal(changes, 1, 'one re-evaluation for the burst');
    assert.deepEqual({ events: w.stats.events, bad: w.stats.bad, relinks: w.stats.relinks }, { events: 3, bad: 1, relinks: 1 });
  } finally {
    w.stop();
  }
});

test('a monitor that ends is restarted, and a re-evaluation follows', async () => {
  let changes = 0;
  const logs: string[] = [];
  const w = new LinkWatcher(() => changes++, linesLogger(logs, 'E '), ['sh', '-c', 'exit 3']);
  try {
    w.start();
    await wait(1200);
    assert.ok(w.stats.restarts >= 1, JSON.stringify(w.stats));
    assert.ok(changes >= 1, 'changes while it was down are picked up');
    assert.equal(w.stats.relinks, changes, 'each re-evaluation asked for is counted');
    assert.ok(logs.some((l) => /interface watch: sh ended \(exit 3\); restarting in \d+ ms/.test(l)), logs.join('\n'));
  } finally {
    w.stop();
  }
});
