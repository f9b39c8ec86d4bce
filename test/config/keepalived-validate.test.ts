// validateKeepalivedModel with a fake machine: the checks keepalived -t makes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configTestExitCode, memoryReader, parseKeepalivedConfig, validateKeepalivedModel } from '../../src/config/keepalived';
import type { Diagnostic, Machine } from '../../src/config/keepalived';

const MAIN = '/etc/keepalived/keepalived.conf';

interface FakeMachine extends Machine {
  lookups: string[];
}

function machine(opts: { interfaces?: string[]; programs?: string[]; users?: string[] } = {}): FakeMachine {
  const ifs = new Set(opts.interfaces ?? ['lo', 'eth0', 'eth1']);
  const programs = new Set(opts.programs ?? []);
  const users = new Set(['root', ...(opts.users ?? [])]);
  const lookups: string[] = [];
  return {
    lookups,
    getInterface(name) {
      lookups.push(name);
      return ifs.has(name) ? { name, loopback: name === 'lo' } : null;
    },
    findExecutable: (p) => (programs.has(p) ? `/usr/bin/${p}` : null),
    userExists: (u) => users.has(u),
  };
}

function check(text: string, m: Machine = machine()): { diagnostics: Diagnostic[]; codes: string[]; exit: number } {
  const parsed = parseKeepalivedConfig(MAIN, memoryReader({ [MAIN]: text }), { configId: 'uvs' });
  const diagnostics = [...parsed.diagnostics, ...validateKeepalivedModel(parsed.model, m)];
  return { diagnostics, codes: diagnostics.map((d) => `${d.line} ${d.code}`), exit: configTestExitCode(diagnostics) };
}

const INSTANCE = (name: string, body: string): string => `vrrp_instance ${name} {\n${body}\n}\n`;
const GOOD = 'interface eth0\nvirtual_router_id 51\npriority 100\nvirtual_ipaddress {\n10.0.0.100/24\n}';

test('a good instance and a good service pass', () => {
  const r = check(INSTANCE('VI_1', GOOD) + 'virtual_server 10.0.0.100 80 {\nlb_algo rr\nlb_kind NAT\nprotocol TCP\nreal_server 10.0.1.1 80 {\nweight 1\n}\n}\n');
  assert.deepEqual(r.codes, []);
  assert.equal(r.exit, 0);
});

test('interface must exist on this machine and must not be loopback', () => {
  const missing = check(INSTANCE('VI_1', GOOD.replace('eth0', 'eth7')));
  assert.deepEqual(missing.codes, ['2 no-such-interface', '0 non-existent-interface']);
  assert.equal(missing.diagnostics[0]!.message, "WARNING - interface eth7 for vrrp_instance VI_1 doesn't exist");
  assert.equal(missing.diagnostics[0]!.file, MAIN);
  assert.equal(missing.exit, 5);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD.replace('eth0', 'lo'))).codes, ['2 loopback-interface', '1 no-interface']);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD.replace('interface eth0', ''))).codes, ['1 no-interface']);
  // The same config is fine on a machine that has the interface.
  assert.deepEqual(check(INSTANCE('VI_1', GOOD.replace('eth0', 'eth7')), machine({ interfaces: ['eth7'] })).codes, []);
});

test('VRID: required, 1-255, unique per interface and family', () => {
  assert.deepEqual(check(INSTANCE('VI_1', GOOD.replace('virtual_router_id 51', ''))).codes, ['1 vrid-missing']);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD.replace('51', '0'))).codes, ['3 number-out-of-range', '3 invalid-vrid', '1 vrid-missing']);
  const dup = check(INSTANCE('VI_1', GOOD) + INSTANCE('VI_2', GOOD));
  assert.deepEqual(dup.codes, ['9 duplicate-vrid']);
  assert.match(dup.diagnostics[0]!.message, /\(VI_2\) virtual_router_id 51 is already used by VI_1 \(.*keepalived.conf:1\) on interface eth0/);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD) + INSTANCE('VI_2', GOOD.replace('eth0', 'eth1'))).codes, []);
  const v6 = GOOD.replace('10.0.0.100/24', 'fd00::100/64');
  assert.deepEqual(check(INSTANCE('VI_1', GOOD) + INSTANCE('VI_2', v6)).codes, [], 'IPv4 and IPv6 instances may share a VRID');
});

test('priority range, VIP presence, v2 whole-second adverts', () => {
  assert.deepEqual(check(INSTANCE('VI_1', GOOD.replace('priority 100', 'priority 256'))).codes, ['4 number-out-of-range', '4 invalid-priority']);
  assert.deepEqual(check(INSTANCE('VI_1', 'interface eth0\nvirtual_router_id 51')).codes, ['1 no-vip']);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + '\nadvert_int 0.5')).codes, ['1 advert-int-rounded']);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + '\nadvert_int 0.5\nversion 3')).codes, []);
  assert.deepEqual(check('global_defs {\nvrrp_version 3\n}\n' + INSTANCE('VI_1', GOOD + '\nadvert_int 0.5')).codes, []);
});

test('authentication: auth_pass length, AH with MASTER, VRRPv3, vrrp_strict', () => {
  const auth = (t: string, p: string): string => `\nauthentication {\nauth_type ${t}\nauth_pass ${p}\n}`;
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + auth('PASS', '12345678'))).codes, []);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + auth('PASS', '123456789'))).codes, ['10 auth-pass-truncated']);
  assert.deepEqual(check(INSTANCE('VI_1', 'state MASTER\n' + GOOD + auth('AH', '1111'))).codes, ['2 ah-master']);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + '\nversion 3' + auth('PASS', 'x'))).codes, ['9 auth-v3']);
  assert.deepEqual(check('global_defs {\nvrrp_strict\n}\n' + INSTANCE('VI_1', GOOD + auth('PASS', 'x'))).codes, ['11 strict-auth']);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + '\nauthentication {\nauth_type PASS\n}')).codes, ['8 auth-pass-missing']);
});

test('unicast peers: same family as unicast_src_ip; accepted with vrrp_strict like keepalived 2.2.7', () => {
  const uni = '\nunicast_src_ip 10.0.0.1\nunicast_peer {\n10.0.0.2\nfd00::2\n}';
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + uni)).codes, ['11 mixed-family']);
  assert.deepEqual(check('global_defs {\nvrrp_strict\n}\n' + INSTANCE('VI_1', GOOD + '\nunicast_peer {\n10.0.0.2\n}')).codes, []);
});

test('tracked interfaces, scripts and files must exist; VIP and route devices too', () => {
  const body = GOOD + '\ntrack_interface {\neth1\neth9 weight 5\n}\ntrack_script {\nnope\n}\ntrack_file {\ntf\n}\nvirtual_routes {\n10.5.0.0/16 via 10.0.0.1 dev eth8\n10.6.0.0/16 via 10.0.0.1\n10.7.0.0/16 via 10.0.0.1 no_track\n}';
  const r = check(INSTANCE('VI_1', body.replace('10.0.0.100/24', '10.0.0.100/24 dev eth6')));
  assert.deepEqual(r.codes, ['10 no-such-interface', '13 unknown-track-script', '16 unknown-track-file', '6 no-such-interface', '19 no-such-interface', '20 route-not-tracked', '0 non-existent-interface']);
  assert.equal(r.diagnostics[3]!.message, "WARNING - interface eth6 for ip address 10.0.0.100 doesn't exist");
  assert.equal(r.diagnostics[5]!.message, 'Warning - cannot track route 10.6.0.0/16 with no interface specified, not tracking');
});

test('vrrp_script without script is removed, so tracking it fails too', () => {
  const r = check('vrrp_script chk {\ninterval 2\n}\n' + INSTANCE('VI_1', GOOD + '\ntrack_script {\nchk\n}'));
  assert.deepEqual(r.codes, ['1 script-missing', '12 unknown-track-script']);
});

test('sync groups: members must exist, once, and a group of one is suspicious', () => {
  const two = INSTANCE('VI_1', GOOD) + INSTANCE('VI_2', GOOD.replace('51', '52'));
  assert.deepEqual(check('vrrp_sync_group G {\ngroup {\nVI_1\nVI_2\n}\n}\n' + two).codes, []);
  assert.deepEqual(check('vrrp_sync_group G {\ngroup {\nVI_1\nVI_X\n}\n}\n' + two).codes, ['4 unknown-instance', '1 single-sync-group']);
  assert.deepEqual(check('vrrp_sync_group G {\nVI_1\n}\n' + two).codes, ['2 unknown-keyword', '1 empty-sync-group']);
  assert.deepEqual(check('vrrp_sync_group G {\ngroup {\nVI_1\nVI_2\n}\n}\nvrrp_sync_group H {\ngroup {\nVI_1\nVI_2\n}\n}\n' + two).codes, ['9 instance-in-two-groups', '10 instance-in-two-groups', '7 empty-sync-group']);
});

test('virtual_server: defaults keepalived complains about, fwmark protocol, ops, quorum', () => {
  // Address services get `protocol TCP` unless the body sets one, since keepalived wants it.
  const vs = (head: string, body: string, rs = 'real_server 10.0.1.1 80 {\n}'): string =>
    `virtual_server ${head} {\n${body}${/protocol|fwmark/.test(body + head) ? '' : '\nprotocol TCP'}\n${rs}\n}\n`;
  assert.deepEqual(check('virtual_server 10.0.0.1 80 {\nlb_algo rr\nlb_kind NAT\nreal_server 10.0.1.1 80 {\n}\n}\n').codes, ['1 no-protocol']);
  assert.deepEqual(check('virtual_server 10.0.0.1 80 {\nlb_algo rr\nlb_kind NAT\nprotocol TCP\n}\n').codes, ['1 no-real-servers']);
  assert.deepEqual(check(vs('10.0.0.1 80', 'lb_kind NAT')).codes, ['1 no-scheduler']);
  assert.deepEqual(check(vs('10.0.0.1 80', 'lb_algo rr')).codes, ['1 no-forwarding']);
  assert.deepEqual(check(vs('fwmark 1', 'lb_algo rr\nlb_kind DR\nprotocol TCP', 'real_server 10.0.1.1 {\n}')).codes, ['4 fwmark-protocol']);
  assert.deepEqual(check(vs('10.0.0.1 80', 'lb_algo rr\nlb_kind NAT\nops')).codes, ['1 ops-not-udp']);
  assert.deepEqual(check(vs('10.0.0.1 53', 'lb_algo rr\nlb_kind NAT\nops\nprotocol UDP')).codes, []);
  assert.deepEqual(check(vs('10.0.0.1 0', 'lb_algo rr\nlb_kind NAT')).codes, ['1 zero-port']);
  assert.deepEqual(check(vs('10.0.0.1 0', 'lb_algo rr\nlb_kind NAT\npersistence_timeout 60')).codes, []);
  assert.deepEqual(check(vs('10.0.0.1 80', 'lb_algo rr\nlb_kind NAT\nquorum 2\nhysteresis 2')).codes, ['1 quorum-too-high', '1 hysteresis']);
  assert.deepEqual(check(vs('10.0.0.1 80', 'lb_algo rr\nlb_kind NAT', 'real_server fd00::1 80 {\n}')).codes, ['5 mixed-family', '1 no-real-servers']);
  assert.deepEqual(check(vs('10.0.0.1 80', 'lb_algo rr\nlb_kind TUN', 'real_server fd00::1 80 {\n}')).codes, []);
  // Notes that keepalived does not give do not fail the test.
  const g = check(vs('group NOPE', 'lb_algo rr\nlb_kind NAT'));
  assert.deepEqual(g.codes, ['1 unknown-group']);
  assert.equal(g.exit, 0);
  const fwGroup = 'virtual_server_group FW {\nfwmark 3\n}\n' + vs('group FW', 'lb_algo rr\nlb_kind NAT\nprotocol UDP', 'real_server 10.0.1.1 {\n}');
  assert.deepEqual(check(fwGroup).codes, ['7 fwmark-protocol']);
});

test('script security: root scripts need enable_script_security (exit 6); missing programs do not count', () => {
  const script = 'vrrp_script chk {\nscript "pidof haproxy"\n}\n';
  const inst = INSTANCE('VI_1', GOOD + '\ntrack_script {\nchk\n}');
  const found = machine({ programs: ['pidof'] });
  const bad = check(script + inst, found);
  assert.deepEqual(bad.codes, ['2 script-security']);
  assert.equal(bad.exit, 6);
  // A tracked script whose program is missing is disabled (an error), but it is not run as root.
  const missing = check(script + inst, machine());
  assert.deepEqual(missing.codes, ['1 script-not-found']);
  assert.equal(missing.exit, 5);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + '\nnotify_master "/nowhere/n.sh"')).codes, [], 'missing notify scripts are never run and not reported');
  assert.deepEqual(check('global_defs {\nenable_script_security\nscript_user root\n}\n' + script + inst, found).codes, []);
  assert.deepEqual(check('global_defs {\nenable_script_security\n}\n' + script + inst, found).codes, ['5 no-script-user']);
  assert.deepEqual(check('global_defs {\nenable_script_security\n}\n' + script + inst, machine({ programs: ['pidof'], users: ['keepalived_script'] })).codes, []);
  // Run as keepalived_script when that user exists: no root, no violation.
  assert.deepEqual(check(script + inst, machine({ programs: ['pidof'], users: ['keepalived_script'] })).codes, []);
  // notify scripts and checker scripts count too.
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + '\nnotify_master "pidof x"'), found).codes, ['8 script-security']);
  // An ordinary config error hides the security verdict, as keepalived stops before that check.
  assert.equal(check(script + INSTANCE('VI_1', GOOD.replace('eth0', 'eth9') + '\ntrack_script {\nchk\n}'), found).exit, 5);
});

test('lvs_sync_daemon interface and instance', () => {
  assert.deepEqual(check('global_defs {\nlvs_sync_daemon eth5 VI_9\n}\n').codes, ['2 no-such-interface', '2 unknown-instance', '0 non-existent-interface']);
});

test('initial state MASTER clears nopreempt and preempt_delay, as keepalived warns', () => {
  const r = check(INSTANCE('VI_1', 'state MASTER\n' + GOOD + '\nnopreempt\npreempt_delay 5'));
  assert.deepEqual(r.codes, ['2 nopreempt-master', '2 preempt-delay-master']);
  assert.equal(r.diagnostics[0]!.message, '(VI_1) Warning - nopreempt will not work with initial state MASTER - clearing');
  assert.deepEqual(check(INSTANCE('VI_1', 'state BACKUP\n' + GOOD + '\nnopreempt\npreempt_delay 5')).codes, []);
});

test('unicast keywords without a usable peer fall back to multicast', () => {
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + '\nunicast_src_ip 10.0.0.1')).codes, ['1 unicast-no-peers']);
  assert.deepEqual(check(INSTANCE('VI_1', GOOD + '\nunicast_peer {\n}')).codes, ['8 unicast-no-peers']);
});

test('real servers: DR/TUN port must match, duplicates are removed; groups need entries', () => {
  const svc = (kind: string, rs: string): string => `virtual_server 10.0.0.1 80 {\nlb_algo rr\nlb_kind ${kind}\nprotocol TCP\n${rs}\n}\n`;
  const dr = check(svc('DR', 'real_server 10.0.1.1 8080 {\n}'));
  assert.deepEqual(dr.codes, ['5 port-mismatch']);
  assert.equal(dr.diagnostics[0]!.message, "WARNING - virtual server [10.0.0.1]:tcp:80 and real server [10.0.1.1]:tcp:8080 ports don't match - resetting");
  assert.deepEqual(check(svc('NAT', 'real_server 10.0.1.1 8080 {\n}')).codes, []);
  assert.deepEqual(check(svc('NAT', 'real_server 10.0.1.1 80 {\n}\nreal_server 10.0.1.1 80 {\n}')).codes, ['7 duplicate-real-server']);
  assert.deepEqual(check('virtual_server_group G {\n10.0.0.9-3 80\n}\n').codes, ['2 invalid-address', '1 empty-group']);
  const twice = check(svc('NAT', 'real_server 10.0.1.1 80 {\n}') + svc('NAT', 'real_server 10.0.1.2 80 {\n}'));
  assert.deepEqual(twice.codes, ['8 duplicate-virtual-server']);
  assert.equal(twice.exit, 0, 'keepalived -t accepts a service defined twice');
});
