// The interface watch (src/dataplane/link-watch.ts) over a stand-in for `ip -o monitor`: lines of
// the monitor's form count as notifications and a burst makes one re-evaluation; other lines are
// counted as bad and ignored; a monitor that dies is restarted (and one re-evaluation catches up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkWatcher } from '../../src/dataplane/link-watch';
import { linesLogger } from '../../src/runtime/log';

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for a condition (the monitor child and the debounce run on their own time; a loaded
 *  machine starts `sh` late): the bound only reports one that never comes. */
async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await wait(20)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

test('a burst of notifications makes one re-evaluation; malformed lines are counted, not acted on', async () => {
  let changes = 0;
  const logs: string[] = [];
  const script = "printf '2: eth0: <BROADCAST,UP> mtu 1500\\n3: eth1    inet 10.0.0.1/24 scope global eth1\\nnot a monitor line\\nDeleted 3: eth1@NONE: <BROADCAST> mtu 1500\\n'; sleep 5";
  const w = new LinkWatcher(() => changes++, linesLogger(logs, 'E '), ['sh', '-c', script]);
  try {
    w.start();
    await until('the burst to be read', () => w.stats.events + w.stats.bad === 4 && changes > 0);
    // Anything that would make a second re-evaluation has had its debounce time.
    await wait(300);
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
    await until('a restart and the re-evaluation after it', () => w.stats.restarts >= 1 && changes >= 1);
    assert.ok(w.stats.restarts >= 1, JSON.stringify(w.stats));
    assert.ok(changes >= 1, 'changes while it was down are picked up');
    assert.equal(w.stats.relinks, changes, 'each re-evaluation asked for is counted');
    assert.ok(logs.some((l) => /interface watch: sh ended \(exit 3\); restarting in \d+ ms/.test(l)), logs.join('\n'));
  } finally {
    w.stop();
  }
});

test('one watcher, several consumers: each burst tells every subscriber once and counts one relink; a subscription ends alone, the owner stops the child', async () => {
  const told = { dataPlane: 0, vrrp: 0, gone: 0 };
  const logs: string[] = [];
  // Each line written to the FIFO-like file is one notification; the child lives until stopped.
  const script = "printf '2: eth0: <BROADCAST,UP> mtu 1500\\n'; sleep 1; printf '3: eth1    inet 10.0.0.1/24 scope global eth1\\n'; sleep 30";
  const w = new LinkWatcher(null, linesLogger(logs, 'E '), ['sh', '-c', script]);
  try {
    const gone = w.subscribe(() => told.gone++);
    gone.stop();
    w.subscribe(() => told.dataPlane++);
    w.subscribe(() => {
      told.vrrp++;
      throw new Error('boom'); // one consumer's failure does not silence the others
    });
    assert.equal(w.subscriberCount, 2);
    await until('two bursts', () => w.stats.relinks === 2);
    assert.deepEqual(told, { dataPlane: 2, vrrp: 2, gone: 0 });
    assert.deepEqual({ events: w.stats.events, relinks: w.stats.relinks, restarts: w.stats.restarts }, { events: 2, relinks: 2, restarts: 0 });
    assert.ok(logs.some((l) => /interface watch: a consumer failed: boom/.test(l)), logs.join('\n'));
  } finally {
    w.stop();
  }
  // stop() ended the child: no restart is logged for it.
  await wait(100);
  assert.ok(!logs.some((l) => /restarting/.test(l)), logs.join('\n'));
});
