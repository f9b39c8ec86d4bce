// keepalived.conf → typed model: every keyword family, IPv6 marking, unknown keywords and
// argument errors with file:line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryReader, parseKeepalivedConfig } from '../../src/config/keepalived';
import type { Diagnostic, KeepalivedConfig } from '../../src/config/keepalived';

const MAIN = '/etc/keepalived/keepalived.conf';

function parse(text: string, extra: Record<string, string> = {}, configId = 'uvs'): { model: KeepalivedConfig; diagnostics: Diagnostic[] } {
  return parseKeepalivedConfig(MAIN, memoryReader({ [MAIN]: text, ...extra }), { configId });
}

function clean(text: string, expected: string[] = []): KeepalivedConfig {
  const { model, diagnostics } = parse(text);
  assert.deepEqual(diagnostics.map((d) => `${d.line}: ${d.message}`), expected);
  return model;
}

/** What keepalived 2.2.7 (built with nftables, as Debian's) says of any vrrp_iptables line. */
const IPTABLES_NOTE = "iptables not supported, using nftables instead. Please replace 'vrrp_iptables and 'vrrp_ipsets' with 'nftables' config option";

test('global_defs', () => {
  const m = clean(`
global_defs {
  router_id LVS_1
  notification_email {
    ops@example.com
    admin@example.com
  }
  notification_email_from lb@example.com
  smtp_server 10.0.0.25 2525
  smtp_connect_timeout 30
  vrrp_version 3
  vrrp_garp_master_delay 2
  vrrp_garp_master_repeat 3
  vrrp_garp_master_refresh 60
  vrrp_garp_interval 0.001
  vrrp_garp_lower_prio_repeat 1
  vrrp_gna_interval 0.5
  vrrp_mcast_group4 224.0.0.18
  vrrp_mcast_group6 ff02::12
  vrrp_strict
  vrrp_skip_check_adv_addr
  vrrp_iptables IN OUT
  script_user nobody nogroup
  enable_script_security
  lvs_sync_daemon eth1 VI_1 id 5
  max_auto_priority 50
}`, [`22: ${IPTABLES_NOTE}`]);
  const g = m.global;
  assert.equal(g.routerId, 'LVS_1');
  assert.deepEqual(g.notificationEmail, ['ops@example.com', 'admin@example.com']);
  assert.equal(g.notificationEmailFrom, 'lb@example.com');
  assert.deepEqual(g.smtpServer, { host: '10.0.0.25', port: 2525 });
  assert.equal(g.smtpConnectTimeout, 30);
  assert.equal(g.vrrpVersion, 3);
  assert.deepEqual(g.garp, { masterDelay: 2, masterRepeat: 3, masterRefresh: 60, interval: 0.001, lowerPrioRepeat: 1 });
  assert.equal(g.vrrpGnaInterval, 0.5);
  assert.deepEqual(g.vrrpMcastGroup4, { text: '224.0.0.18', family: 4 });
  assert.equal(g.vrrpMcastGroup6?.family, 6);
  assert.equal(g.vrrpStrict, true);
  assert.equal(g.vrrpSkipCheckAdvAddr, true);
  assert.deepEqual(g.vrrpIptables, ['IN', 'OUT']);
  assert.equal(g.scriptUser?.user, 'nobody');
  assert.equal(g.scriptUser?.group, 'nogroup');
  assert.equal(g.enableScriptSecurity, true);
  assert.deepEqual({ ...g.lvsSyncDaemon, loc: undefined }, { interface: 'eth1', vrrpInstance: 'VI_1', syncId: 5, loc: undefined });
  assert.deepEqual(g.other.map((o) => [o.keyword, o.args]), [['max_auto_priority', ['50']]]);
  assert.equal(parse('global_defs {\n smtp_server mail.example.com\n}').model.global.smtpServer?.port, 25);
});

test('static_ipaddress, static_routes, static_rules are kept', () => {
  const { model, diagnostics } = parse(`
static_ipaddress {
  192.168.200.16/24 dev eth0 scope link label eth0:1
}
static_routes {
  src 192.168.100.1 192.168.109.0/24 via 192.168.200.254 dev eth1 table 5
  blackhole 10.9.9.0/24
}
static_rules {
  from 192.168.28.0/24 table 1 priority 100
}`);
  assert.deepEqual(diagnostics, []);
  assert.equal(model.staticIpaddress[0]!.address.prefixLen, 24);
  assert.equal(model.staticIpaddress[0]!.scope, 'link');
  assert.equal(model.staticIpaddress[0]!.label, 'eth0:1');
  const [r1, r2] = model.staticRoutes;
  assert.ok(r1 && r2);
  assert.equal(r1.src?.text, '192.168.100.1');
  assert.equal(r1.destination?.text, '192.168.109.0');
  assert.equal(r1.via?.text, '192.168.200.254');
  assert.equal(r1.dev, 'eth1');
  assert.equal(r1.table, '5');
  assert.equal(r2.type, 'blackhole');
  assert.equal(model.staticRules[0]!.preference, 100);
  assert.equal(model.staticRules[0]!.from?.prefixLen, 24);
});

test('vrrp_script and vrrp_track_file', () => {
  const m = clean(`
vrrp_script chk_haproxy {
  script "/usr/bin/killall -0 'ha proxy'"
  interval 2
  timeout 3
  weight -20 reverse
  rise 2
  fall 3
  user nobody nogroup
  init_fail
}
vrrp_track_file tf1 {
  file /run/tf1
  weight 10
}`);
  const s = m.vrrpScripts[0];
  assert.ok(s);
  assert.equal(s.name, 'chk_haproxy');
  assert.deepEqual(s.script?.argv, ['/usr/bin/killall', '-0', 'ha proxy']);
  assert.deepEqual([s.interval, s.timeout, s.weight, s.weightReverse, s.rise, s.fall, s.user, s.group, s.initFail], [2, 3, -20, true, 2, 3, 'nobody', 'nogroup', true]);
  assert.deepEqual([m.vrrpTrackFiles[0]!.name, m.vrrpTrackFiles[0]!.file, m.vrrpTrackFiles[0]!.weight], ['tf1', '/run/tf1', 10]);
});

test('vrrp_instance: every modelled keyword', () => {
  const m = clean(`
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 0.5
  nopreempt
  preempt_delay 5
  authentication {
    auth_type PASS
    auth_pass secret1
  }
  virtual_ipaddress {
    10.1.1.1/24 brd 10.1.1.255 dev eth0 scope global label eth0:vip
    10.1.1.2
  }
  virtual_ipaddress_excluded {
    fd00::1/64
  }
  virtual_routes {
    10.2.0.0/16 via 10.1.1.254 dev eth0
  }
  track_interface {
    eth1 weight -10
    eth2
  }
  track_script {
    chk weight 20
  }
  unicast_src_ip 10.1.1.10
  unicast_peer {
    10.1.1.11
    10.1.1.12
  }
  mcast_src_ip 10.1.1.10
  version 3
  garp_master_delay 1
  garp_master_repeat 2
  garp_master_refresh 30
  smtp_alert
  notify_master "/etc/keepalived/notify.sh MASTER" root
  notify_backup /etc/keepalived/backup.sh
  notify_fault "/etc/keepalived/notify.sh FAULT"
  notify_stop "/etc/keepalived/notify.sh STOP"
  notify /etc/keepalived/any.sh
  dont_track_primary
  use_vmac vrrp51
  promote_secondaries
}`);
  const v = m.vrrpInstances[0];
  assert.ok(v);
  assert.deepEqual([v.name, v.state, v.interface, v.virtualRouterId, v.priority, v.advertInt, v.nopreempt, v.preemptDelay], ['VI_1', 'MASTER', 'eth0', 51, 150, 0.5, true, 5]);
  assert.deepEqual([v.authentication?.type, v.authentication?.pass], ['PASS', 'secret1']);
  const [a, b] = v.virtualIpaddress;
  assert.ok(a && b);
  assert.deepEqual([a.address.text, a.address.prefixLen, a.broadcast, a.dev, a.scope, a.label], ['10.1.1.1', 24, '10.1.1.255', 'eth0', 'global', 'eth0:vip']);
  assert.deepEqual([b.address.prefixLen, b.address.hasPrefix], [32, false]);
  assert.equal(v.virtualIpaddressExcluded[0]!.address.family, 6);
  assert.equal(v.virtualRoutes[0]!.via?.text, '10.1.1.254');
  assert.deepEqual(v.trackInterface.map((t) => [t.name, t.weight]), [['eth1', -10], ['eth2', undefined]]);
  assert.deepEqual(v.trackScript.map((t) => [t.name, t.weight]), [['chk', 20]]);
  assert.equal(v.unicastSrcIp?.text, '10.1.1.10');
  assert.deepEqual(v.unicastPeers.map((p) => p.address.text), ['10.1.1.11', '10.1.1.12']);
  assert.equal(v.mcastSrcIp?.text, '10.1.1.10');
  assert.equal(v.version, 3);
  assert.deepEqual(v.garp, { masterDelay: 1, masterRepeat: 2, masterRefresh: 30 });
  assert.equal(v.smtpAlert, true);
  assert.deepEqual(v.notify.master?.argv, ['/etc/keepalived/notify.sh', 'MASTER']);
  assert.equal(v.notify.master?.user, 'root');
  assert.equal(v.notify.backup?.command, '/etc/keepalived/backup.sh');
  assert.deepEqual(v.notify.fault?.argv, ['/etc/keepalived/notify.sh', 'FAULT']);
  assert.equal(v.notify.stop?.command, '/etc/keepalived/notify.sh STOP');
  assert.equal(v.notify.any?.command, '/etc/keepalived/any.sh');
  assert.equal(v.dontTrackPrimary, true);
  assert.equal(v.useVmac, 'vrrp51');
  assert.deepEqual(v.other.map((o) => o.keyword), ['promote_secondaries']);
  assert.equal(v.loc.line, 2);
  // IPv6 is marked for the daemon to say it is not forwarded yet.
  assert.deepEqual(m.ipv6Uses.map((u) => [u.what, u.loc.line]), [['virtual_ipaddress_excluded fd00::1/64', 19]]);
});

test('vrrp_sync_group', () => {
  const m = clean(`
vrrp_sync_group G1 {
  group {
    VI_1
    VI_2
  }
  notify_master "/bin/n.sh master"
  notify "/bin/n.sh"
  smtp_alert
}`);
  const g = m.vrrpSyncGroups[0];
  assert.ok(g);
  assert.deepEqual(g.group.map((x) => x.name), ['VI_1', 'VI_2']);
  assert.equal(g.notify.master?.command, '/bin/n.sh master');
  assert.equal(g.notify.any?.command, '/bin/n.sh');
  assert.equal(g.smtpAlert, true);
});

test('virtual_server by IP, fwmark and group, with real servers and every checker', () => {
  const m = clean(`
virtual_server_group VSG {
  10.0.0.1 80
  10.0.0.3-10 80
  fd00::2-ff 443
  fwmark 7
}
virtual_server 10.0.0.1 80 {
  delay_loop 6.5
  lb_algo wrr
  lb_kind DR
  persistence_timeout 300
  persistence_granularity 255.255.255.0
  protocol TCP
  sorry_server 10.0.1.99 8080
  sorry_server_inhibit
  virtualhost www.example.com
  alpha
  omega
  quorum 2
  quorum_up "/bin/q.sh up"
  quorum_down "/bin/q.sh down"
  hysteresis 1
  ha_suspend
  retry 4
  delay_before_retry 2
  real_server 10.0.1.1 80 {
    weight 3
    inhibit_on_failure
    notify_up "/bin/rs.sh up"
    notify_down "/bin/rs.sh down"
    uthreshold 100
    lthreshold 10
    TCP_CHECK {
      connect_ip 10.0.1.1
      connect_port 80
      bindto 10.0.0.250
      connect_timeout 2.5
      retry 3
      delay_before_retry 1
    }
    HTTP_GET {
      url {
        path /health
        digest 9b3a0c85a887a256d6939da88aabd8cd
        status_code 200-299 301
        virtualhost h.example.com
      }
      nb_get_retry 2
    }
    SSL_GET {
      url {
        path /
      }
    }
    MISC_CHECK {
      misc_path "/bin/check.sh 10.0.1.1"
      misc_timeout 5
      misc_dynamic
      user nobody
    }
    SMTP_CHECK {
      helo_name lb.example.com
      host {
        connect_ip 10.0.1.1
        connect_port 25
      }
    }
    DNS_CHECK {
      type A
      name example.com
    }
    UDP_CHECK {
      connect_port 53
    }
    PING_CHECK {
      retry 2
    }
    FILE_CHECK {
      track_file tf1
    }
  }
  real_server 10.0.1.2 80 {
    lvs_method TUN
  }
}
virtual_server fwmark 7 {
  lvs_sched sh
  lvs_method NAT
  real_server 10.0.1.3 {
  }
}
virtual_server group VSG {
  lb_algo rr
  lb_kind NAT
  ops
  protocol UDP
}`);
  const [g] = m.virtualServerGroups;
  assert.ok(g);
  assert.equal(g.name, 'VSG');
  const ranges = g.entries.map((e) => (e.kind === 'fwmark' ? `fwmark ${e.mark}` : `${e.range.text} ${e.range.rangeStart}-${e.range.rangeEnd} ${e.port}`));
  assert.deepEqual(ranges, ['10.0.0.1 1-1 80', '10.0.0.3 3-10 80', 'fd00::2 2-255 443', 'fwmark 7']);
  const [vs, fw, grp] = m.virtualServers;
  assert.ok(vs && fw && grp);
  assert.deepEqual(vs.key, { kind: 'ip', address: { text: '10.0.0.1', family: 4 }, port: 80 });
  assert.deepEqual([vs.delayLoop, vs.scheduler, vs.forwarding, vs.persistenceTimeout, vs.persistenceGranularity?.text, vs.protocol], [6.5, 'wrr', 'DR', 300, '255.255.255.0', 'TCP']);
  assert.deepEqual([vs.sorryServer?.address.text, vs.sorryServer?.port, vs.sorryServerInhibit, vs.virtualhost], ['10.0.1.99', 8080, true, 'www.example.com']);
  assert.deepEqual([vs.alpha, vs.omega, vs.quorum, vs.quorumUp?.command, vs.quorumDown?.command, vs.hysteresis, vs.haSuspend, vs.retry, vs.delayBeforeRetry], [true, true, 2, '/bin/q.sh up', '/bin/q.sh down', 1, true, 4, 2]);
  const rs = vs.realServers[0];
  assert.ok(rs);
  assert.deepEqual([rs.address.text, rs.port, rs.weight, rs.inhibitOnFailure, rs.notifyUp?.command, rs.notifyDown?.command, rs.uthreshold, rs.lthreshold], ['10.0.1.1', 80, 3, true, '/bin/rs.sh up', '/bin/rs.sh down', 100, 10]);
  assert.deepEqual(rs.checkers.map((c) => c.type), ['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'SMTP_CHECK', 'DNS_CHECK', 'UDP_CHECK', 'PING_CHECK', 'FILE_CHECK']);
  const [tcp, http, , misc, smtp, dns, udp, ping, file] = rs.checkers;
  assert.ok(tcp && http && misc && smtp && dns && udp && ping && file);
  assert.deepEqual([tcp.connectIp?.text, tcp.connectPort, tcp.bindto?.text, tcp.connectTimeout, tcp.retry, tcp.delayBeforeRetry], ['10.0.1.1', 80, '10.0.0.250', 2.5, 3, 1]);
  assert.deepEqual(http.urls[0]!.statusCodes, [[200, 299], [301, 301]]);
  assert.deepEqual([http.urls[0]!.path, http.urls[0]!.digest, http.urls[0]!.virtualhost, http.retry], ['/health', '9b3a0c85a887a256d6939da88aabd8cd', 'h.example.com', 2]);
  assert.deepEqual([misc.miscPath?.argv, misc.miscTimeout, misc.miscDynamic, misc.other[0]?.keyword], [['/bin/check.sh', '10.0.1.1'], 5, true, 'user']);
  assert.deepEqual([smtp.heloName, smtp.hosts[0]!.connectIp?.text, smtp.hosts[0]!.connectPort], ['lb.example.com', '10.0.1.1', 25]);
  assert.deepEqual([dns.dnsType, dns.dnsName, udp.connectPort, ping.retry, file.trackFile], ['A', 'example.com', 53, 2, 'tf1']);
  assert.equal(vs.realServers[1]!.lvsMethod, 'TUN');
  assert.deepEqual(fw.key, { kind: 'fwmark', mark: 7 });
  assert.deepEqual([fw.scheduler, fw.forwarding, fw.realServers[0]!.port], ['sh', 'NAT', undefined]);
  assert.deepEqual(grp.key, { kind: 'group', name: 'VSG' });
  assert.equal(grp.ops, true);
  assert.deepEqual(m.ipv6Uses.map((u) => u.what), ['virtual_server_group VSG fd00::2-ff']);
});

test('IPv6 addresses parse, validate and are marked', () => {
  const { model, diagnostics } = parse(`
virtual_server 2001:db8::10 80 {
  lb_algo rr
  lb_kind NAT
  real_server 2001:db8::1:1 80 {
  }
}
vrrp_instance V6 {
  interface eth0
  virtual_router_id 9
  virtual_ipaddress {
    2001:db8::10/64
    2001:db8::zz/64
  }
}`);
  assert.deepEqual(diagnostics.map((d) => [d.line, d.code]), [[13, 'invalid-address']]);
  assert.match(diagnostics[0]!.message, /invalid IP address '2001:db8::zz\/64'/);
  assert.deepEqual(model.ipv6Uses.map((u) => [u.what, u.loc.line]), [
    ['virtual_server 2001:db8::10', 2],
    ['real_server 2001:db8::1:1', 5],
    ['virtual_ipaddress 2001:db8::10/64', 12],
  ]);
});

test('unknown keywords are warned about with file:line like keepalived, in every block and in includes', () => {
  const { diagnostics } = parse('global_defs {\n  routerid x\n}\ninclude /etc/keepalived/conf.d/*.conf\nfoo_bar {\n}\n', {
    '/etc/keepalived/conf.d/a.conf': 'vrrp_instance V {\n  interface eth0\n  bogus 1\n}\nvirtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    TCP_CHECK {\n      conect_port 80\n    }\n  }\n}\n',
  });
  assert.deepEqual(diagnostics.map((d) => `${d.file}:${d.line}: ${d.severity}: ${d.message}`), [
    `${MAIN}:2: warning: Unknown keyword 'routerid'`,
    '/etc/keepalived/conf.d/a.conf:3: warning: Unknown keyword \'bogus\'',
    '/etc/keepalived/conf.d/a.conf:8: warning: Unknown keyword \'conect_port\'',
    `${MAIN}:5: warning: Unknown keyword 'foo_bar'`,
  ]);
  assert.ok(diagnostics.every((d) => d.failsConfigTest && d.code === 'unknown-keyword'));
});

test('bad values are errors naming the keyword, the value and file:line', () => {
  const { diagnostics, model } = parse(`
vrrp_instance V {
  state LEADER
  virtual_router_id 256
  priority abc
  advert_int 1.2.3
  authentication {
    auth_type MD5
    auth_pass 123456789
  }
  unicast_peer {
    10.0.0.300
  }
}
virtual_server 10.0.0.1 99999 {
}
virtual_server 10.0.0.1 80 {
  lb_algo fastest
  lb_kind NATT
  protocol ICMP
  real_server 10.0.0.2 80 {
    weight -1
    HTTP_GET {
      url {
        digest xyz
        status_code 2xx
      }
    }
    MISC_CHECK {
    }
  }
}
vrrp_script s {
  interval 1.5
}`);
  const got = diagnostics.map((d) => `${d.line} ${d.code}`);
  assert.deepEqual(got, [
    '3 invalid-state',
    '4 number-out-of-range', '4 invalid-vrid',
    '5 invalid-number', '5 invalid-priority',
    '6 invalid-number',
    '8 invalid-auth-type', '9 auth-pass-truncated',
    '12 invalid-address',
    '15 invalid-port',
    '18 invalid-scheduler', '19 invalid-lvs-method', '20 invalid-protocol',
    '22 number-out-of-range',
    '25 invalid-digest', '26 invalid-status-code', '24 url-no-path', '23 no-urls',
    '29 misc-no-path',
    '34 invalid-number',
  ]);
  assert.match(diagnostics[1]!.message, /virtual_router_id: number '256' outside range \[1, 255\]/);
  assert.equal(model.vrrpInstances[0]!.authentication?.pass, '12345678', 'keepalived truncates to 8 octets (RFC 3768 §5.3.10)');
  assert.equal(model.virtualServers.length, 1, 'the service with a bad port is not in the model');
});

test('time values: decimals where keepalived takes them, whole seconds for vrrp_script', () => {
  const m = clean('virtual_server 10.0.0.1 80 {\n  delay_loop .25\n  lb_algo rr\n  lb_kind NAT\n  connect_timeout 0.000001\n}\nvrrp_script s {\n  script /bin/true\n  interval 10\n}\n');
  assert.equal(m.virtualServers[0]!.delayLoop, 0.25);
  assert.equal(m.virtualServers[0]!.connectTimeout, 0.000001);
  assert.equal(m.vrrpScripts[0]!.interval, 10);
  const { diagnostics } = parse('virtual_server 10.0.0.1 80 {\n  delay_loop 1.0000001\n}\n');
  assert.deepEqual(diagnostics.map((d) => d.code), ['invalid-number']);
});

test('@id lines and $PARAM feed the model', () => {
  const text = '@main $PRIO=200\n@^main $PRIO=100\nvrrp_instance V {\n  interface eth0\n  virtual_router_id 1\n  priority $PRIO\n  @main state MASTER\n}\n';
  assert.equal(parse(text, {}, 'main').model.vrrpInstances[0]!.priority, 200);
  assert.equal(parse(text, {}, 'main').model.vrrpInstances[0]!.state, 'MASTER');
  assert.equal(parse(text, {}, 'backup').model.vrrpInstances[0]!.priority, 100);
  assert.equal(parse(text, {}, 'backup').model.vrrpInstances[0]!.state, undefined);
});

test('files lists the main file and every include; nothing is thrown for garbage', () => {
  const { model } = parse('include a.conf\n', { '/etc/keepalived/a.conf': 'global_defs {\n}\n' });
  assert.deepEqual(model.files, [MAIN, '/etc/keepalived/a.conf']);
  for (const junk of ['{{{{', '}}}}', '"unterminated', '$X=\\', '~SEQ(', '@', 'virtual_server', 'vrrp_instance {', '\u0000\u00ff', 'real_server 1.2.3.4 {']) {
    const r = parse(junk);
    assert.ok(Array.isArray(r.diagnostics));
  }
});

test('lvs_sync_daemon: options, no instance, keepalived\'s messages for bad values (file:line)', () => {
  const sd = (line: string) => parse(`global_defs {\n  ${line}\n}\n`);
  const all = sd('lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 239.1.2.3');
  assert.deepEqual(all.diagnostics, []);
  assert.deepEqual({ ...all.model.global.lvsSyncDaemon, loc: undefined }, { interface: 'eth1', vrrpInstance: 'VI_1', syncId: 7, maxlen: 1400, port: 8849, ttl: 2, group: '239.1.2.3', loc: undefined });
  // No instance: the second word is an option keyword.
  const none = sd('lvs_sync_daemon eth1 id 3');
  assert.deepEqual({ ...none.model.global.lvsSyncDaemon, loc: undefined }, { interface: 'eth1', syncId: 3, loc: undefined });
  assert.equal(sd('lvs_sync_daemon eth1 inst VI_2').model.global.lvsSyncDaemon?.vrrpInstance, 'VI_2');
  const msgs = (line: string) => sd(line).diagnostics.map((d) => `${d.file}:${d.line}: ${d.message}`);
  assert.deepEqual(msgs('lvs_sync_daemon eth1 VI_1 id 300 maxlen 70000 port x ttl 256 group 10.0.0.1 color red'), [
    `${MAIN}:2: Invalid syncid (300) - defaulting to vrid`,
    `${MAIN}:2: Invalid lvs_sync_daemon maxlen (70000) - ignoring`,
    `${MAIN}:2: Invalid lvs_sync_daemon port (x) - ignoring`,
    `${MAIN}:2: Invalid lvs_sync_daemon ttl (256) - ignoring`,
    `${MAIN}:2: lvs_sync_daemon group address 10.0.0.1 is not multicast - ignoring`,
    `${MAIN}:2: Unknown option color specified for lvs_sync_daemon`,
    `${MAIN}:2: Unknown option red specified for lvs_sync_daemon`,
  ]);
  assert.deepEqual(msgs('lvs_sync_daemon eth1 VI_1 5'), [`${MAIN}:2: Please use keyword "id" before lvs_sync_daemon syncid value`]);
  assert.equal(sd('lvs_sync_daemon eth1 VI_1 5').model.global.lvsSyncDaemon?.syncId, 5);
  assert.deepEqual(msgs('lvs_sync_daemon eth1 VI_1 ttl'), [`${MAIN}:2: No value specified for lvs_sync_daemon ttl - ignoring`]);
  assert.deepEqual(msgs('lvs_sync_daemon'), [`${MAIN}:2: lvs_sync_daemon requires interface`]);
  assert.deepEqual(msgs('lvs_sync_daemon eth1\n  lvs_sync_daemon eth2'), [`${MAIN}:3: lvs_sync_daemon has already been specified as eth1  - ignoring`]);
  // A bad value is left at the kernel's default.
  assert.equal(sd('lvs_sync_daemon eth1 VI_1 ttl 256').model.global.lvsSyncDaemon?.ttl, undefined);
});
