// keepalived.conf → VRRP runtime config, through the real parser (src/config/keepalived/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { memoryReader, parseKeepalivedConfig } from '../../src/config/keepalived';
import { VrrpConfigError } from '../../src/vrrp/config';
import { InterfaceFacts, vrrpFromKeepalived } from '../../src/vrrp/from-keepalived';
import { VrrpRouter } from '../../src/vrrp/router';
import { FakeClock } from './fakes';
import { nullLogger } from '../../src/runtime/log';

const facts: InterfaceFacts = {
  ifindex: (name) => (name === 'eth0' ? 2 : name === 'eth1' ? 3 : 0),
  primaryAddress: (name) => (name === 'eth0' ? '192.168.200.2' : name === 'eth1' ? '10.1.0.2' : null),
};

function parse(text: string) {
  const { model, diagnostics } = parseKeepalivedConfig('/etc/keepalived/keepalived.conf', memoryReader({ '/etc/keepalived/keepalived.conf': text }));
  const errors = diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errors, [], 'the parser accepted the config');
  return model;
}

const CONF = `
global_defs {
  vrrp_garp_master_refresh 60
}
vrrp_script chk_haproxy {
  script "/usr/bin/pgrep haproxy"
  interval 2
  weight -20
}
vrrp_sync_group G1 {
  group {
    VI_EXT
    VI_INT
  }
  notify "/etc/keepalived/notify.sh group"
}
vrrp_instance VI_EXT {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  nopreempt
  preempt_delay 30
  garp_master_delay 2
  authentication {
    auth_type PASS
    auth_pass 123456789
  }
  virtual_ipaddress {
    192.168.200.16/24 dev eth0 label eth0:vip scope global
    192.168.200.17
    192.168.200.17
  }
  virtual_ipaddress_excluded {
    192.168.201.16/24
  }
  track_interface {
    eth1 weight -10
  }
  track_script {
    chk_haproxy
  }
  notify_master "/etc/keepalived/master.sh VI_EXT"
  notify "/etc/keepalived/notify.sh"
}
vrrp_instance VI_INT {
  interface eth1
  virtual_router_id 52
  version 3
  advert_int 0.25
  priority 100
  unicast_src_ip 10.1.0.2
  unicast_peer {
    10.1.0.3
  }
  virtual_ipaddress {
    10.1.0.100/24
  }
  track_script {
    chk_haproxy weight 5
  }
}
`;

test('a full instance maps with keepalived\'s defaults and meanings', () => {
  const { config, warnings, trackedScripts } = vrrpFromKeepalived(parse(CONF), facts);
  const ext = config.instances[0]!;
  assert.equal(ext.name, 'VI_EXT');
  assert.equal(ext.interface, 'eth0');
  assert.equal(ext.ifindex, 2);
  assert.equal(ext.primaryAddress, '192.168.200.2');
  assert.equal(ext.version, 2);
  assert.equal(ext.vrid, 51);
  assert.equal(ext.priority, 150);
  assert.equal(ext.initialState, 'MASTER');
  // keepalived clears both for an initial MASTER ("nopreempt will not work with initial state
  // MASTER - clearing", the same for preempt delay), and runs with that.
  assert.equal(ext.preempt, true);
  assert.equal(ext.preemptDelayMs, 0);
  assert.equal(ext.authType, 1);
  assert.equal(ext.authPass, '12345678', 'keepalived keeps 8 bytes');
  assert.equal(ext.garpMasterDelayMs, 2000);
  assert.equal(ext.garpMasterRepeat, 5);
  assert.equal(ext.garpMasterRefreshMs, 60000, 'global vrrp_garp_master_refresh');
  assert.deepEqual(ext.virtualAddresses, [
    { address: '192.168.200.16', prefixLength: 24, dev: 'eth0', label: 'eth0:vip', scope: 'global' },
    { address: '192.168.200.17', prefixLength: 32, dev: 'eth0' },
  ]);
  assert.deepEqual(ext.excludedAddresses, [{ address: '192.168.201.16', prefixLength: 24, dev: 'eth0' }]);
  assert.deepEqual(ext.trackInterfaces, [{ name: 'eth1', weight: -10, reverse: false }]);
  assert.deepEqual(ext.trackScripts, [{ name: 'chk_haproxy', weight: -20, reverse: false }]);
  assert.deepEqual(ext.notify, { master: '/etc/keepalived/master.sh VI_EXT', generic: '/etc/keepalived/notify.sh' });
  assert.ok(warnings.some((w) => /192\.168\.200\.17 is listed twice/.test(w) && /keepalived\.conf:\d+/.test(w)));

  const int = config.instances[1]!;
  assert.equal(int.version, 3);
  assert.equal(int.advertIntMs, 250);
  assert.equal(int.unicastSource, '10.1.0.2');
  assert.deepEqual(int.unicastPeers, ['10.1.0.3']);
  assert.deepEqual(int.trackScripts, [{ name: 'chk_haproxy', weight: 5, reverse: false }], 'the track_script line overrides the weight');
  assert.equal(int.initialState, 'BACKUP');
  assert.equal(int.preempt, true);

  assert.deepEqual(config.syncGroups, [
    { name: 'G1', instances: ['VI_EXT', 'VI_INT'], notify: { generic: '/etc/keepalived/notify.sh group' } },
  ]);
  assert.deepEqual(trackedScripts, ['chk_haproxy']);

  // And it runs.
  const router = new VrrpRouter(config, {
    clock: new FakeClock(),
    socketFactory: () => ({ send: () => undefined, close: () => undefined }),
    vips: { add: () => undefined, remove: () => undefined, gratuitousArp: () => undefined },
    notifier: { run: () => undefined },
    logger: nullLogger,
    observer: { instanceState: () => undefined, groupState: () => undefined },
    interfaces: { isUp: () => true },
  });
  router.setScriptResult('chk_haproxy', true);
  router.start();
  assert.equal(router.instance('VI_EXT').state, 'BACKUP');
  assert.equal(router.instance('VI_INT').effectivePriority, 105);
});

test('errors name the file and line', () => {
  const model = parse(`vrrp_instance VI_9 {\n  interface eth7\n  virtual_router_id 9\n}\n`);
  assert.throws(
    () => vrrpFromKeepalived(model, facts),
    (err: unknown) =>
      err instanceof VrrpConfigError && /keepalived\.conf:1: vrrp_instance VI_9: interface eth7 has no IPv4 address/.test(err.message),
  );
});

test('fractional advert_int on VRRPv2 is rounded with a warning; v3 auth is ignored with a warning', () => {
  const model = parse(`
vrrp_instance A {
  interface eth0
  virtual_router_id 1
  advert_int 1.4
}
vrrp_instance B {
  interface eth0
  virtual_router_id 2
  version 3
  authentication {
    auth_type PASS
    auth_pass x
  }
}
`);
  const { config, warnings } = vrrpFromKeepalived(model, facts);
  assert.equal(config.instances[0]!.advertIntMs, 1000);
  assert.equal(config.instances[1]!.authType, 0);
  assert.ok(warnings.some((w) => w.includes('VRRPv2 advert_int must be whole seconds - using 1')));
  assert.ok(warnings.some((w) => w.includes('VRRPv3 has no authentication')));
});

test('Debian\'s sample configs with VRRP map without a crash', { skip: !existsSync('/usr/share/doc/keepalived/samples') }, () => {
  const dir = '/usr/share/doc/keepalived/samples';
  let mapped = 0;
  for (const name of readdirSync(dir).filter((n) => n.startsWith('keepalived.conf'))) {
    const text = readFileSync(`${dir}/${name}`, 'utf8');
    const { model } = parseKeepalivedConfig(`${dir}/${name}`, memoryReader({ [`${dir}/${name}`]: text }));
    if (model.vrrpInstances.length === 0) continue;
    // Every interface has an address here, so what is left are real refusals with a message.
    try {
      const { config } = vrrpFromKeepalived(model, { ifindex: () => 0, primaryAddress: () => '192.168.0.1' });
      assert.equal(config.instances.length, model.vrrpInstances.length, name);
      mapped++;
    } catch (err) {
      assert.ok(err instanceof VrrpConfigError, `${name}: ${String(err)}`);
      assert.match(err.message, /keepalived\.conf[^:]*:\d+: /, `${name}: ${err.message}`);
    }
  }
  assert.ok(mapped >= 5, `mapped ${mapped} sample configs`);
});
