// The daemon with health checkers, in-process (--io none: no packet I/O, no root): MISC_CHECK
// scripts whose exit codes come from files the test writes decide the live table; reloads are
// applied by diff against the configured table, so a real server held down stays down, unchanged
// real servers keep their slots, a changed weight applies at once, and a broken file changes
// nothing. Real timers, delay_loop 0.2 s, every wait bounded.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Daemon } from '../../src/control/daemon';
import { parseUvsdArgs } from '../../src/control/uvsd-options';
import { intToIpv4 } from '../../src/packet/addr';
import { linesLogger } from '../../src/runtime/log';

interface Row {
  rs: string;
  weight: number;
  slot: number;
}

function table(daemon: Daemon): Row[] {
  const out: Row[] = [];
  for (const s of daemon.model.list())
    for (const d of s.dests) out.push({ rs: `${intToIpv4(d.addr)}:${d.port}`, weight: d.weight, slot: d.slot });
  return out.sort((a, b) => a.rs.localeCompare(b.rs));
}

function weights(daemon: Daemon): Record<string, number> {
  return Object.fromEntries(table(daemon).map((r) => [r.rs, r.weight]));
}

async function waitFor(what: string, cond: () => boolean, log: string[], ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}\nlog:\n${log.join('\n')}`);
}

interface Setup {
  dir: string;
  conf: string;
  exit: (rs: number, code: number) => void;
  write: (body: string) => void;
}

function setup(): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'uvs-health-'));
  const conf = join(dir, 'keepalived.conf');
  for (const i of [1, 2, 3]) {
    writeFileSync(join(dir, `rs${i}.code`), '0');
    writeFileSync(join(dir, `rs${i}.sh`), `#!/bin/sh\nexit $(cat ${join(dir, `rs${i}.code`)})\n`, { mode: 0o755 });
  }
  return {
    dir,
    conf,
    exit: (rs, code) => writeFileSync(join(dir, `rs${rs}.code`), String(code)),
    write: (body) => writeFileSync(conf, body),
  };
}

function misc(dir: string, i: number, extra = ''): string {
  return `    MISC_CHECK {
      misc_path "${join(dir, `rs${i}.sh`)}"
      misc_timeout 2
      ${extra}
    }`;
}

/** One virtual server, three real servers (rs3 has no checker: always in). keepalived's parser
 *  reads a block per line, so the file is written the way keepalived.conf(5) shows it. */
function config(dir: string, o: { w2?: number; inhibit2?: boolean; quorum?: number; sorry?: boolean; drop1?: boolean } = {}): string {
  const rs1 = `  real_server 10.0.1.1 80 {
    weight 1
${misc(dir, 1, 'misc_dynamic')}
  }`;
  return `global_defs {
  router_id test
  script_user root
  enable_script_security
}
virtual_server 10.0.0.1 80 {
  delay_loop 0.2
  lb_algo wrr
  lb_kind DR
  protocol TCP
  ${o.quorum ? `quorum ${o.quorum}` : ''}
  ${o.sorry ? 'sorry_server 10.0.1.9 80' : ''}
${o.drop1 ? '' : rs1}
  real_server 10.0.1.2 80 {
    weight ${o.w2 ?? 1}
    ${o.inhibit2 ? 'inhibit_on_failure' : ''}
${misc(dir, 2)}
  }
  real_server 10.0.1.3 80 {
    weight 1
  }
}
`;
}

async function withDaemon(s: Setup, body: (daemon: Daemon, log: string[]) => Promise<void>): Promise<void> {
  const log: string[] = [];
  const daemon = await Daemon.start(
    parseUvsdArgs(['--io', 'none', '--socket', join(s.dir, 'uvsd.sock'), '-f', s.conf]),
    linesLogger(log, 'E '),
    {},
  );
  try {
    await body(daemon, log);
  } finally {
    await daemon.stop();
  }
}

test('checkers take real servers out and back; reload keeps slots, applies weights, resurrects nothing', async () => {
  const s = setup();
  try {
    s.write(config(s.dir));
    await withDaemon(s, async (daemon, log) => {
      assert.deepEqual(weights(daemon), { '10.0.1.1:80': 1, '10.0.1.2:80': 1, '10.0.1.3:80': 1 });
      const slots = Object.fromEntries(table(daemon).map((r) => [r.rs, r.slot]));

      // MISC_CHECK exit 1 (retry 0 by default for MISC_CHECK): rs2 leaves the table.
      s.exit(2, 1);
      await waitFor('rs2 out', () => !('10.0.1.2:80' in weights(daemon)), log);
      assert.ok(log.some((l) => /Keepalived_healthcheckers: Removing service \[10\.0\.1\.2\]:tcp:80 from VS \[10\.0\.0\.1\]:tcp:80$/.test(l)), log.join('\n'));

      // Reload with rs1's neighbour weight changed: rs2 stays out (its checker holds it down), the
      // others keep their slots, rs2's new configured weight waits for its recovery.
      s.write(config(s.dir, { w2: 4 }));
      await daemon.reload();
      assert.deepEqual(weights(daemon), { '10.0.1.1:80': 1, '10.0.1.3:80': 1 });
      for (const r of table(daemon)) assert.equal(r.slot, slots[r.rs], `${r.rs} keeps its slot`);

      // A broken file: reported, the table and the checkers carry on.
      s.write(config(s.dir, { w2: 4 }).replace('lb_algo wrr', 'lb_algo nosuch'));
      await daemon.reload();
      assert.ok(log.some((l) => /^E reload of .* failed, the running table is unchanged: .*keepalived\.conf:\d+/s.test(l)), log.join('\n'));
      s.write(config(s.dir, { w2: 4 }));

      // Recovery brings rs2 back with the weight configured now.
      s.exit(2, 0);
      await waitFor('rs2 back', () => weights(daemon)['10.0.1.2:80'] === 4, log);

      // misc_dynamic: exit 2+w sets the weight (exit 7 → 5); the slot is kept.
      s.exit(1, 7);
      await waitFor('rs1 weight 5', () => weights(daemon)['10.0.1.1:80'] === 5, log);
      const rs1 = table(daemon).find((r) => r.rs === '10.0.1.1:80')!;
      assert.equal(rs1.slot, slots['10.0.1.1:80']);

      // A reload that changes nothing else keeps the dynamic weight (the checker's view).
      await daemon.reload();
      assert.equal(weights(daemon)['10.0.1.1:80'], 5);

      // Removing rs1 from the file removes it from the table; the others stay where they were.
      s.write(config(s.dir, { w2: 4, drop1: true }));
      await daemon.reload();
      assert.deepEqual(weights(daemon), { '10.0.1.2:80': 4, '10.0.1.3:80': 1 });
      assert.equal(table(daemon).find((r) => r.rs === '10.0.1.3:80')!.slot, slots['10.0.1.3:80']);
    });
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('inhibit_on_failure keeps a failed real server at weight 0; quorum lost brings the sorry server in and out', async () => {
  const s = setup();
  try {
    s.write(config(s.dir, { inhibit2: true, quorum: 3, sorry: true }));
    await withDaemon(s, async (daemon, log) => {
      assert.deepEqual(weights(daemon), { '10.0.1.1:80': 1, '10.0.1.2:80': 1, '10.0.1.3:80': 1 });
      s.exit(2, 1);
      // Sum of live weights 2 < quorum 3: the sorry server stands in alone; rs2 (inhibited) stays
      // listed at weight 0, the live ones leave.
      await waitFor('sorry server in', () => '10.0.1.9:80' in weights(daemon), log);
      assert.deepEqual(weights(daemon), { '10.0.1.2:80': 0, '10.0.1.9:80': 1 });
      assert.ok(log.some((l) => /Lost quorum 2 < 3 .*sorry server in/.test(l)), log.join('\n'));
      s.exit(2, 0);
      await waitFor('sorry server out', () => !('10.0.1.9:80' in weights(daemon)), log);
      assert.deepEqual(weights(daemon), { '10.0.1.1:80': 1, '10.0.1.2:80': 1, '10.0.1.3:80': 1 });
    });
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('quorum with hysteresis: lost only below quorum - hysteresis, regained only at quorum + hysteresis', async () => {
  const s = setup();
  try {
    const rs = (i: number, weight: number): string => `  real_server 10.0.1.${i} 80 {
    weight ${weight}
${misc(s.dir, i)}
  }`;
    s.write(`global_defs {
  script_user root
  enable_script_security
}
virtual_server 10.0.0.1 80 {
  delay_loop 0.2
  lb_algo wrr
  lb_kind DR
  protocol TCP
  quorum 2
  hysteresis 1
  sorry_server 10.0.1.9 80
${rs(1, 2)}
${rs(2, 1)}
${rs(3, 1)}
}
`);
    await withDaemon(s, async (daemon, log) => {
      assert.deepEqual(weights(daemon), { '10.0.1.1:80': 2, '10.0.1.2:80': 1, '10.0.1.3:80': 1 });
      // Live weight 1 is below quorum 2 but not below 2 - 1: quorum holds, no sorry server.
      s.exit(1, 1);
      s.exit(2, 1);
      await waitFor('rs1 and rs2 out', () => Object.keys(weights(daemon)).join() === '10.0.1.3:80', log);
      await new Promise((r) => setTimeout(r, 500)); // a few more check rounds
      assert.deepEqual(weights(daemon), { '10.0.1.3:80': 1 });
      // Live weight 0: quorum lost, the sorry server alone.
      s.exit(3, 1);
      await waitFor('sorry server in', () => Object.keys(weights(daemon)).join() === '10.0.1.9:80', log);
      // rs1 back: live weight 2 is quorum but not quorum + 1: still the sorry server.
      s.exit(1, 0);
      await waitFor('rs1 counted', () => log.some((l) => /Adding service \[10\.0\.1\.1\]:tcp:80/.test(l)), log);
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(weights(daemon), { '10.0.1.9:80': 1 });
      // rs2 back too: 3 = quorum + hysteresis, the sorry server leaves, the live ones return.
      s.exit(2, 0);
      await waitFor('sorry server out', () => !('10.0.1.9:80' in weights(daemon)), log);
      assert.deepEqual(weights(daemon), { '10.0.1.1:80': 2, '10.0.1.2:80': 1 });
    });
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a reload whose checker cannot run is refused whole: table and checkers stay as they were', async () => {
  const s = setup();
  try {
    s.write(config(s.dir));
    await withDaemon(s, async (daemon, log) => {
      s.exit(2, 1);
      await waitFor('rs2 out', () => !('10.0.1.2:80' in weights(daemon)), log);
      const before = table(daemon);
      // enable_script_security refuses a world-writable script (keepalived: "unsafe permissions").
      const unsafe = join(s.dir, 'unsafe.sh');
      writeFileSync(unsafe, '#!/bin/sh\nexit 0\n', { mode: 0o777 });
      chmodSync(unsafe, 0o777);
      s.write(config(s.dir, { w2: 7 }).replace(join(s.dir, 'rs1.sh'), unsafe));
      await daemon.reload();
      // Refused by the checker, named by file:line.
      assert.ok(log.some((l) => /^E reload of .* failed, the running table is unchanged: .*keepalived\.conf:\d+: .*MISC_CHECK #1: script .*unsafe\.sh.* refused/.test(l)), log.join('\n'));
      assert.deepEqual(table(daemon), before);
      // The old checkers still run: rs2 recovers with the weight of the running configuration.
      s.exit(2, 0);
      await waitFor('rs2 back at weight 1', () => weights(daemon)['10.0.1.2:80'] === 1, log);
    });
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('alpha: a real server starts out of the table until its first success; checkers leave hand-added real servers alone', async () => {
  const s = setup();
  try {
    s.exit(2, 1);
    s.write(config(s.dir).replace('  protocol TCP', '  protocol TCP\n  alpha'));
    await withDaemon(s, async (daemon, log) => {
      // rs1's and rs2's checkers start failed: only rs3 (no checker) is in from the start.
      assert.deepEqual(weights(daemon), { '10.0.1.3:80': 1 });
      await waitFor('rs1 in after its first success', () => '10.0.1.1:80' in weights(daemon), log);
      // rs2's first check fails: notify_down would run, it never enters.
      await new Promise((r) => setTimeout(r, 600));
      assert.equal('10.0.1.2:80' in weights(daemon), false);

      // A real server added by hand to the configured service survives the checkers' changes.
      const svc = daemon.model.list()[0]!;
      const d = svc.dests[0]!;
      daemon.model.addDest(svc, { ...d, addr: 0x0a000163, weight: 2 }); // 10.0.1.99
      s.exit(2, 0);
      await waitFor('rs2 in', () => '10.0.1.2:80' in weights(daemon), log);
      s.exit(1, 1);
      await waitFor('rs1 out', () => !('10.0.1.1:80' in weights(daemon)), log);
      assert.deepEqual(weights(daemon), { '10.0.1.2:80': 1, '10.0.1.3:80': 1, '10.0.1.99:80': 2 });
    });
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});
