// The runner's state machine, step by step with a fake clock and scripted check results:
// retry counting and delay_before_retry, alpha, inhibit_on_failure, misc_dynamic weights,
// quorum with hysteresis, the sorry server, several checkers per server, omega on stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Checker, CheckResult, CheckTarget } from '../../src/check/checker';
import type { CheckEvent } from '../../src/check/runner';
import { CheckRunner } from '../../src/check/runner';
import type { CheckerOptions, RealServerOptions, VirtualServerOptions } from '../../src/check/types';
import { ScriptRunner } from '../../src/notify/script';
import { FakeClock } from './fake-clock';

/** Check results the test controls: `health[key]` is true/false, or a number = misc_dynamic weight. */
const health = new Map<string, boolean | number>();
const calls: Array<{ key: string; at: number }> = [];

class ScriptedChecker implements Checker {
  constructor(
    readonly kind: CheckerOptions['kind'],
    private readonly key: string,
    private readonly clock: FakeClock,
  ) {}
  check(_t: CheckTarget, _s: AbortSignal): Promise<CheckResult> {
    calls.push({ key: this.key, at: this.clock.now() });
    const h = health.get(this.key) ?? true;
    if (typeof h === 'number') return Promise.resolve({ ok: true, trail: [`exit ${h + 2}`], dynamicWeight: h, elapsedMs: 0 });
    return Promise.resolve({ ok: h, trail: [h ? 'fine' : 'refused'], elapsedMs: 0 });
  }
}

function rs(id: number, extra: Partial<RealServerOptions> = {}, checkerKeys: string[] = [`rs${id}`]): RealServerOptions {
  return {
    id,
    address: `10.0.0.${id}`,
    port: 80,
    checkers: checkerKeys.map((k) => ({ kind: 'TCP_CHECK', connectIp: k })),
    ...extra,
  };
}

function setup(vs: VirtualServerOptions): { clock: FakeClock; runner: CheckRunner; events: Array<CheckEvent & { at: number }> } {
  health.clear();
  calls.length = 0;
  const clock = new FakeClock();
  const runner = new CheckRunner([vs], {
    clock,
    checkerContext: { scripts: new ScriptRunner({ scriptUser: { user: 'root' } }) },
    // The connectIp field carries the test's key for the scripted result.
    makeChecker: (o) => new ScriptedChecker(o.kind, (o as { connectIp: string }).connectIp, clock),
  });
  const events: Array<CheckEvent & { at: number }> = [];
  runner.on('event', (e) => {
    if (e.type !== 'check') events.push({ ...e, at: clock.now() });
  });
  return { clock, runner, events };
}

const summary = (events: Array<CheckEvent & { at: number }>): string[] =>
  events.map((e) => {
    switch (e.type) {
      case 'rs-up':
        return `${e.at} up ${e.rs.id} w${e.weight}`;
      case 'rs-down':
        return `${e.at} down ${e.rs.id}${e.inhibit ? ' inhibit' : ''}${e.initial ? ' initial' : ''}${e.stopping ? ' stopping' : ''}`;
      case 'rs-weight':
        return `${e.at} weight ${e.rs.id} ${e.previous}->${e.weight}`;
      case 'quorum-gained':
      case 'quorum-lost':
        return `${e.at} ${e.type} sum${e.weightSum} thr${e.threshold}${e.sorrySwitched ? ' sorry' : ''}${e.init ? ' init' : ''}${e.stopping ? ' stopping' : ''}`;
      case 'pool':
        return `${e.at} pool ${e.dests.map((d) => `${d.sorry ? 'sorry' : d.rsId}:${d.weight}`).join(',')}`;
      default:
        return e.type;
    }
  });

const base = (servers: RealServerOptions[], extra: Partial<VirtualServerOptions> = {}): VirtualServerOptions => ({
  id: 1,
  address: '10.0.0.100',
  port: 80,
  delayLoop: 10,
  warmup: 0,
  realServers: servers,
  ...extra,
});

test('retry: an alive server goes down only after `retry` extra failures, spaced by delay_before_retry', async () => {
  const { clock, runner, events } = setup(base([rs(1)], { retry: 2, delayBeforeRetry: 3 }));
  runner.start();
  await clock.advance(0);
  assert.deepEqual(summary(events), ['0 pool 1:1']);
  health.set('rs1', false);
  await clock.advance(20_000);
  // checks at 0 (ok), 10 (fail, retry 1), 13 (retry 2), 16 (third failure: down), then every 10 s
  assert.deepEqual(calls.map((c) => c.at), [0, 10_000, 13_000, 16_000]);
  assert.deepEqual(summary(events).slice(1), ['16000 down 1', '16000 quorum-lost sum0 thr1', '16000 pool ']);
  // A failure while down changes nothing and is not retried.
  await clock.advance(10_000);
  assert.deepEqual(calls.map((c) => c.at).slice(4), [26_000]);
  health.set('rs1', true);
  await clock.advance(10_000);
  assert.deepEqual(summary(events).slice(4), ['36000 up 1 w1', '36000 quorum-gained sum1 thr1', '36000 pool 1:1']);
  await runner.stop();
  assert.equal(clock.pending, 0, 'no timer left after stop');
});

test('retry resets on success: isolated failures never take the server down', async () => {
  const { clock, runner, events } = setup(base([rs(1)], { retry: 1, delayBeforeRetry: 1 }));
  runner.start();
  await clock.advance(0);
  for (let i = 0; i < 5; i++) {
    health.set('rs1', false);
    await clock.advance(10_000); // fail
    health.set('rs1', true);
    await clock.advance(1_000); // retry succeeds
  }
  assert.deepEqual(summary(events), ['0 pool 1:1']);
  await runner.stop();
});

test('alpha: the server starts out of the pool; a first failure runs notify_down; success adds it', async () => {
  const { clock, runner, events } = setup(base([rs(1, { alpha: true }), rs(2)], { quorum: 1 }));
  health.set('rs1', false);
  runner.start();
  await clock.advance(0);
  assert.deepEqual(summary(events), ['0 pool 2:1', '0 down 1 initial']);
  health.set('rs1', true);
  await clock.advance(10_000);
  assert.deepEqual(summary(events).slice(2), ['10000 up 1 w1', '10000 pool 1:1,2:1']);
  await runner.stop();
});

test('inhibit_on_failure: a dead server stays listed with weight 0', async () => {
  const { clock, runner, events } = setup(base([rs(1, { inhibitOnFailure: true, weight: 3 }), rs(2)], { retry: 0 }));
  runner.start();
  await clock.advance(0);
  health.set('rs1', false);
  await clock.advance(10_000);
  assert.deepEqual(summary(events), ['0 pool 1:3,2:1', '10000 down 1 inhibit', '10000 pool 1:0,2:1']);
  health.set('rs1', true);
  await clock.advance(10_000);
  assert.deepEqual(summary(events).slice(3), ['20000 up 1 w3', '20000 pool 1:3,2:1']);
  await runner.stop();
});

test('misc_dynamic: the exit status sets the weight (exit-2), and back', async () => {
  const { clock, runner, events } = setup(base([rs(1, { weight: 2 }), rs(2)]));
  health.set('rs1', 5);
  runner.start();
  await clock.advance(0);
  assert.deepEqual(summary(events), ['0 pool 1:2,2:1', '0 weight 1 2->5', '0 pool 1:5,2:1']);
  health.set('rs1', 0);
  await clock.advance(10_000);
  assert.deepEqual(summary(events).slice(3), ['10000 weight 1 5->0', '10000 pool 1:0,2:1']);
  health.set('rs1', 0); // same weight again: no event
  await clock.advance(10_000);
  assert.equal(events.length, 5);
  await runner.stop();
});

test('quorum with hysteresis: lost below quorum-hysteresis, regained at quorum+hysteresis', async () => {
  const servers = [1, 2, 3, 4].map((i) => rs(i));
  const { clock, runner, events } = setup(base(servers, { quorum: 3, hysteresis: 1, retry: 0 }));
  runner.start();
  await clock.advance(0);
  const step = async (id: number, up: boolean): Promise<void> => {
    health.set(`rs${id}`, up);
    await clock.advance(10_000);
  };
  await step(1, false); // sum 3 >= 2: up
  await step(2, false); // sum 2, not < 2: still up
  assert.ok(!summary(events).some((s) => s.includes('quorum')));
  await step(3, false); // sum 1 < 2: lost
  assert.ok(summary(events).includes('30000 quorum-lost sum1 thr2'), summary(events).join('\n'));
  await step(1, true); // sum 2 < 4
  await step(2, true); // sum 3 < 4
  assert.ok(!summary(events).some((s) => s.includes('quorum-gained')));
  await step(3, true); // sum 4 >= 4: gained
  assert.ok(summary(events).includes('60000 quorum-gained sum4 thr4'), summary(events).join('\n'));
  await runner.stop();
});

test('sorry_server: switched in alone when quorum is lost, out when it is regained', async () => {
  const vs = base([rs(1), rs(2)], { quorum: 2, retry: 0, sorryServer: { address: '10.0.0.200', port: 80 } });
  const { clock, runner, events } = setup(vs);
  runner.start();
  await clock.advance(0);
  health.set('rs1', false);
  await clock.advance(10_000);
  assert.deepEqual(summary(events), [
    '0 pool 1:1,2:1',
    '10000 down 1',
    '10000 quorum-lost sum1 thr2 sorry',
    '10000 pool sorry:1',
  ]);
  assert.deepEqual(runner.pool(1), [{ rsId: -1, address: '10.0.0.200', port: 80, weight: 1, sorry: true }]);
  health.set('rs1', true);
  await clock.advance(10_000);
  assert.deepEqual(summary(events).slice(4), ['20000 up 1 w1', '20000 quorum-gained sum2 thr2 sorry', '20000 pool 1:1,2:1']);
  await runner.stop();
});

test('sorry_server at start: quorum already short, the sorry server is the pool from the first moment', async () => {
  const vs = base([rs(1, { alpha: true }), rs(2, { alpha: true })], { quorum: 1, sorryServer: { address: '10.0.0.200', port: 8080 } });
  const { clock, runner, events } = setup(vs);
  health.set('rs1', false);
  health.set('rs2', false);
  runner.start();
  await clock.advance(0);
  assert.deepEqual(summary(events).slice(0, 2), ['0 quorum-lost sum0 thr1 sorry init', '0 pool sorry:1']);
  await runner.stop();
});

test('several checkers: down when any fails, up only when all pass', async () => {
  const { clock, runner, events } = setup(base([rs(1, {}, ['a', 'b'])], { retry: 0 }));
  runner.start();
  await clock.advance(0);
  health.set('a', false);
  health.set('b', false);
  await clock.advance(10_000);
  health.set('a', true);
  await clock.advance(10_000);
  assert.deepEqual(summary(events), ['0 pool 1:1', '10000 down 1', '10000 quorum-lost sum0 thr1', '10000 pool '], 'one checker back is not enough');
  health.set('b', true);
  await clock.advance(10_000);
  assert.deepEqual(summary(events).slice(4), ['30000 up 1 w1', '30000 quorum-gained sum1 thr1', '30000 pool 1:1']);
  await runner.stop();
});

test('omega: stop reports live servers down and quorum lost; without omega it reports nothing', async () => {
  for (const omega of [true, false]) {
    const { clock, runner, events } = setup(base([rs(1), rs(2)], { omega }));
    runner.start();
    await clock.advance(0);
    events.length = 0;
    await runner.stop();
    assert.deepEqual(
      summary(events),
      omega ? ['0 down 1 stopping', '0 down 2 stopping', '0 quorum-lost sum0 thr1 stopping', '0 pool '] : ['0 pool '],
      `omega=${omega}`,
    );
  }
});

test('keepalived defaults: retry 1 with delay_before_retry 1 s for TCP_CHECK, delay_loop 60 s', async () => {
  const vs: VirtualServerOptions = { id: 1, address: '10.0.0.100', port: 80, warmup: 0, realServers: [rs(1)] };
  const { clock, runner } = setup(vs);
  runner.start();
  await clock.advance(0);
  health.set('rs1', false);
  await clock.advance(62_000);
  assert.deepEqual(calls.map((c) => c.at), [0, 60_000, 61_000]);
  assert.equal(runner.status()[0]!.servers[0]!.alive, false);
  await runner.stop();
});

test('reconfigure: an identical config disturbs nothing — no event, same check cadence', async () => {
  const vs = base([rs(1), rs(2)], { retry: 2, delayBeforeRetry: 3 });
  const { clock, runner, events } = setup(vs);
  runner.start();
  await clock.advance(0);
  health.set('rs1', false);
  await clock.advance(10_000); // rs1 fails once: retry 1 pending at 13 s
  events.length = 0;
  runner.reconfigure([base([rs(1), rs(2)], { retry: 2, delayBeforeRetry: 3 })]);
  await clock.advance(5_000);
  assert.deepEqual(events, []);
  // the retry count survived: the failure at 13 s was the 2nd, the one at 16 s takes it down
  await clock.advance(1_000);
  assert.deepEqual(calls.filter((c) => c.key === 'rs1').map((c) => c.at), [0, 10_000, 13_000, 16_000]);
  assert.deepEqual(summary(events), ['16000 down 1', '16000 pool 2:1']);
  await runner.stop();
});

test('reconfigure: a changed weight applies at once; removed servers leave, added ones join', async () => {
  const { clock, runner, events } = setup(base([rs(1), rs(2)]));
  runner.start();
  await clock.advance(0);
  events.length = 0;
  runner.reconfigure([base([rs(1, { weight: 4 }), rs(3)])]);
  await clock.advance(0);
  assert.deepEqual(summary(events), ['0 weight 1 1->4', '0 pool 1:4,3:1']);
  calls.length = 0;
  await clock.advance(10_000);
  assert.deepEqual(calls.map((c) => c.key).sort(), ['rs1', 'rs3'], 'rs2 is no longer checked, rs3 is');
  await runner.stop();
});

test('reconfigure: a down server whose failing checker is removed comes back; a new virtual server starts', async () => {
  const { clock, runner, events } = setup(base([rs(1, {}, ['a', 'b']), rs(2)], { retry: 0 }));
  runner.start();
  await clock.advance(0);
  health.set('b', false);
  await clock.advance(10_000);
  assert.ok(summary(events).includes('10000 down 1'));
  events.length = 0;
  const second: VirtualServerOptions = { ...base([rs(5)]), id: 2, address: '10.0.0.101' };
  runner.reconfigure([base([rs(1, {}, ['a']), rs(2)], { retry: 0 }), second]);
  await clock.advance(0);
  assert.deepEqual(summary(events), ['10000 up 1 w1', '10000 pool 1:1,2:1', '10000 pool 5:1']);
  await runner.stop();
});

test('reconfigure: a checker that cannot be built throws and the running config is untouched', async () => {
  const { clock, runner, events } = setup(base([rs(1)]));
  runner.start();
  await clock.advance(0);
  events.length = 0;
  const bad = base([{ id: 1, address: '10.0.0.1', port: 80, checkers: [{ kind: 'HTTP_GET', url: [] }] }]);
  // the scripted makeChecker accepts anything, so use the real factory through a fresh runner
  const real = new CheckRunner([base([rs(1)])], { clock, checkerContext: { scripts: new ScriptRunner({ scriptUser: { user: 'root' } }) } });
  assert.throws(() => real.reconfigure([bad]), /real_server \[10\.0\.0\.1\]:80 HTTP_GET #1: HTTP_GET: at least one url/);
  assert.equal(real.status()[0]!.servers[0]!.alive, true);
  await runner.stop();
  assert.deepEqual(events.filter((e) => e.type !== 'pool'), []);
});
