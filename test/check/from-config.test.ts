// The adapter from the keepalived.conf parser's model to checker/runner/notifier options, on a
// config text parsed by the real parser; then a runner built from it checks a real server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { parseKeepalivedConfig, memoryReader } from '../../src/config/keepalived';
import { checkConfigFromModel } from '../../src/check/from-config';
import { CheckRunner } from '../../src/check/runner';
import { HealthService } from '../../src/check/service';
import type { CheckEvent } from '../../src/check/runner';
import { ScriptRunner } from '../../src/notify/script';
import { listen, tempDir, writeScript } from './helpers';

const dir = tempDir('fromcfg');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function parse(text: string) {
  const r = parseKeepalivedConfig('/etc/keepalived/keepalived.conf', memoryReader({ '/etc/keepalived/keepalived.conf': text }));
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errors, [], 'the test config parses');
  return checkConfigFromModel(r.model);
}

test('keepalived.conf → checker, runner and notifier options', () => {
  const cfg = parse(`
global_defs {
  router_id LVS_A
  notification_email {
    ops@example.test
  }
  notification_email_from lvs@example.test
  smtp_server 127.0.0.1 2525
  smtp_connect_timeout 5
  script_user nobody
  enable_script_security
}
virtual_server 10.0.0.100 80 {
  delay_loop 6
  quorum 2
  hysteresis 1
  omega
  sorry_server 10.0.0.200 8080
  quorum_down "/usr/local/bin/q.sh down"
  real_server 10.0.0.1 80 {
    weight 3
    inhibit_on_failure
    notify_down "/usr/local/bin/rs.sh '1 down'"
    HTTP_GET {
      url {
        path /health
        status_code 200-299 503
        digest 9b3a0c85a887a256d6939da88aabd8cd
      }
      http_protocol 1.1
      connect_timeout 2
      retry 4
      delay_before_retry 2
    }
    MISC_CHECK {
      misc_path "/usr/local/bin/w.sh 10.0.0.1"
      misc_dynamic
      misc_timeout 3
    }
  }
  real_server 10.0.0.2 80 {
    UDP_CHECK {
      connect_port 53
      payload 0a0b 0c
      require_reply 0a Xb
    }
    DNS_CHECK {
      type a
      name example.org
    }
    SMTP_CHECK {
      helo_name me
      host {
        connect_ip 10.0.0.3
        connect_port 25
      }
      host {
        connect_ip 10.0.0.4
      }
    }
    FILE_CHECK {
      track_file f
    }
  }
}
`);
  assert.equal(cfg.smtp?.routerId, 'LVS_A');
  assert.deepEqual(cfg.smtp?.smtpServer, { host: '127.0.0.1', port: 2525 });
  assert.deepEqual(cfg.scripts, { scriptUser: { user: 'nobody', group: undefined }, enableScriptSecurity: true });
  const vs = cfg.virtualServers[0]!;
  assert.equal(vs.address, '10.0.0.100');
  assert.equal(vs.delayLoop, 6);
  assert.equal(vs.quorum, 2);
  assert.equal(vs.hysteresis, 1);
  assert.equal(vs.omega, true);
  assert.deepEqual(vs.sorryServer, { address: '10.0.0.200', port: 8080, inhibit: false });
  assert.deepEqual(vs.quorumDown?.argv, ['/usr/local/bin/q.sh', 'down']);
  const rs1 = vs.realServers[0]!;
  assert.equal(rs1.weight, 3);
  assert.equal(rs1.inhibitOnFailure, true);
  assert.deepEqual(rs1.notifyDown?.argv, ['/usr/local/bin/rs.sh', '1 down']);
  const http = rs1.checkers[0]!;
  assert.equal(http.kind, 'HTTP_GET');
  if (http.kind === 'HTTP_GET') {
    assert.equal(http.httpProtocol, '1.1');
    assert.equal(http.connectTimeout, 2);
    assert.equal(http.retry, 4);
    assert.deepEqual(http.url, [{ path: '/health', digest: '9b3a0c85a887a256d6939da88aabd8cd', statusCode: [[200, 299], [503, 503]], virtualhost: undefined }]);
  }
  const misc = rs1.checkers[1]!;
  assert.ok(misc.kind === 'MISC_CHECK' && misc.miscDynamic && misc.miscTimeout === 3);
  const rs2 = vs.realServers[1]!;
  assert.deepEqual(rs2.checkers.map((c) => c.kind), ['UDP_CHECK', 'DNS_CHECK', 'SMTP_CHECK', 'SMTP_CHECK']);
  const udp = rs2.checkers[0]!;
  if (udp.kind === 'UDP_CHECK') {
    assert.equal(udp.payload?.toString('hex'), '0a0b0c');
    assert.equal(udp.requireReply, true);
    assert.equal(udp.expectedReply?.mask.toString('hex'), 'ff0f');
  }
  const dns = rs2.checkers[1]!;
  assert.ok(dns.kind === 'DNS_CHECK' && dns.type === 'A' && dns.name === 'example.org');
  assert.deepEqual(rs2.checkers.slice(2).map((c) => ('connectIp' in c ? c.connectIp : '')), ['10.0.0.3', '10.0.0.4']);
  assert.equal(cfg.problems.length, 1);
  assert.match(cfg.problems[0]!, /keepalived\.conf:\d+: real_server 10\.0\.0\.2:80 FILE_CHECK is not supported/);
});

test('a runner built from a parsed config checks a real server and names a bad checker', async () => {
  const s = net.createServer((c) => c.destroy());
  const port = await listen(s);
  const script = writeScript(dir, 'ok.sh', '#!/bin/sh\nexit 0\n');
  try {
    const cfg = parse(`
virtual_server 10.0.0.100 80 {
  delay_loop 0.1
  warmup 0
  real_server 127.0.0.1 ${port} {
    TCP_CHECK {
      connect_timeout 1
    }
    MISC_CHECK {
      misc_path "${script}"
    }
  }
}
`);
    const runner = new CheckRunner(cfg.virtualServers, { checkerContext: { scripts: new ScriptRunner({ scriptUser: { user: 'root' } }) } });
    const results: Array<{ kind: string; ok: boolean }> = [];
    runner.on('event', (e: CheckEvent) => e.type === 'check' && results.push({ kind: e.checker, ok: e.result.ok }));
    runner.start();
    const end = Date.now() + 5000;
    while (results.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await runner.stop();
    assert.deepEqual(results.slice(0, 2).sort((a, b) => a.kind.localeCompare(b.kind)), [
      { kind: 'MISC_CHECK', ok: true },
      { kind: 'TCP_CHECK', ok: true },
    ]);
    const bad = parse(`
virtual_server 10.0.0.100 80 {
  real_server 10.0.0.1 80 {
    MISC_CHECK {
      misc_path "${dir}/missing.sh"
    }
  }
}
`);
    assert.throws(
      () => new CheckRunner(bad.virtualServers, { checkerContext: { scripts: new ScriptRunner({ scriptUser: { user: 'root' } }) } }),
      /virtual_server \[10\.0\.0\.100\]:80 real_server \[10\.0\.0\.1\]:80 MISC_CHECK #1: script .* refused: Script .*missing\.sh cannot be accessed/,
    );
  } finally {
    s.close();
  }
});

test('HealthService: parsed config → pools for the data plane, reload changes a weight, stop empties', async () => {
  const s = net.createServer((c) => c.destroy());
  const port = await listen(s);
  const text = (weight: number): string => `
global_defs {
  script_user root
}
virtual_server 10.0.0.100 80 {
  delay_loop 0.1
  warmup 0
  real_server 127.0.0.1 ${port} {
    weight ${weight}
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`;
  const model = (w: number) => parseKeepalivedConfig('/k.conf', memoryReader({ '/k.conf': text(w) })).model;
  const pools: string[] = [];
  const health = HealthService.fromModel(model(1), { onPool: (vsId, dests) => pools.push(`${vsId}:${dests.map((d) => `${d.address}:${d.port}w${d.weight}`).join(',')}`) });
  try {
    health.start();
    health.reload(model(5));
    health.reload(model(5)); // same again: nothing
    await health.stop();
    assert.deepEqual(pools, [`0:127.0.0.1:${port}w1`, `0:127.0.0.1:${port}w5`, '0:']);
  } finally {
    s.close();
  }
});
