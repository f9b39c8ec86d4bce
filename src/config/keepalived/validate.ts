/**
 * The checks `keepalived -t` makes once the file is parsed: cross references (track_script names,
 * sync group members, virtual_server groups), ranges and combinations keepalived refuses, and the
 * checks against this machine (interfaces, script programs, users). The machine is an interface so
 * tests pass a fake one; machine.ts has the Linux implementation.
 *
 * Messages follow keepalived's wording where users search for it; anything keepalived reports
 * through report_config_error() is marked failsConfigTest, as `keepalived -t` exits 5 on it.
 */
import { Diagnostic, DiagnosticSink, EXIT_CONFIG_TEST_SECURITY, Loc } from './diagnostics';
import { KeepalivedConfig, RouteSpec, ConfigScript, VirtualIp, VirtualServer, VrrpInstance } from './model';

export interface MachineInterface {
  name: string;
  loopback: boolean;
}

export interface Machine {
  /** The network interface of that name in this network namespace, or null. */
  getInterface(name: string): MachineInterface | null;
  /** Where a script's program resolves (absolute path, or a PATH search like execvp), or null when not found/executable. */
  findExecutable(program: string): string | null;
  userExists(name: string): boolean;
}

/** RFC 3768 §5.3.10 leaves no room for more than 20 addresses only in strict mode's checks (keepalived's vrrp_strict). */
const STRICT_MAX_VIPS = 20;

function vsName(vs: VirtualServer): string {
  const k = vs.key;
  if (k.kind === 'fwmark') return `FWM ${k.mark}`;
  if (k.kind === 'group') return `group ${k.name}`;
  const addr = `[${k.address.text}]`;
  return `${addr}:${(vs.protocol ?? 'TCP').toLowerCase()}:${k.port}`;
}

export function validateKeepalivedModel(model: KeepalivedConfig, machine: Machine): Diagnostic[] {
  const sink = new DiagnosticSink();
  let missingInterface = false;

  const checkIfExists = (name: string, loc: Loc, what: string): boolean => {
    if (machine.getInterface(name)) return true;
    sink.warnStrict(loc, 'no-such-interface', `WARNING - interface ${name} for ${what} doesn't exist`);
    missingInterface = true;
    return false;
  };
  const checkVips = (vips: VirtualIp[]): void => {
    for (const vip of vips) if (vip.dev !== undefined) checkIfExists(vip.dev, vip.loc, `ip address ${vip.address.text}`);
  };
  const checkRoutes = (routes: RouteSpec[], tracked: boolean): void => {
    for (const r of routes) {
      if (r.dev !== undefined) checkIfExists(r.dev, r.loc, 'VROUTE nexthop');
      else if (tracked && !r.noTrack && r.destination) {
        const d = r.destination;
        sink.warnStrict(r.loc, 'route-not-tracked', `Warning - cannot track route ${d.text}/${d.prefixLen} with no interface specified, not tracking`);
      }
    }
  };

  // --- static addresses and routes
  checkVips(model.staticIpaddress);
  checkRoutes(model.staticRoutes, false);

  // --- vrrp_script: one without a script is dropped, so tracking it later fails too.
  const scripts = new Map<string, (typeof model.vrrpScripts)[number]>();
  for (const s of model.vrrpScripts) {
    if (!s.script) {
      sink.warnStrict(s.loc, 'script-missing', `No script set for vrrp_script ${s.name} - removing`);
      continue;
    }
    scripts.set(s.name, s);
  }
  const trackFiles = new Set(model.vrrpTrackFiles.filter((t) => t.file !== undefined).map((t) => t.name));
  for (const t of model.vrrpTrackFiles) if (t.file === undefined) sink.warnStrict(t.loc, 'track-file-missing', `No file set for track_file ${t.name} - removing`);

  // --- vrrp_instance
  const strict = model.global.vrrpStrict;
  const byVrid = new Map<string, VrrpInstance>();
  const instances = new Map<string, VrrpInstance>();
  for (const v of model.vrrpInstances) {
    if (instances.has(v.name)) sink.error(v.loc, 'duplicate-instance', `vrrp_instance ${v.name} is defined twice (first at ${fmt(instances.get(v.name)!.loc)})`);
    instances.set(v.name, v);
    const tag = `(${v.name})`;

    let ifName: string | null = v.interface ?? null;
    if (ifName !== null) {
      const ifc = machine.getInterface(ifName);
      if (!ifc) {
        sink.warnStrict(v.interfaceLoc ?? v.loc, 'no-such-interface', `WARNING - interface ${ifName} for vrrp_instance ${v.name} doesn't exist`);
        missingInterface = true;
      } else if (ifc.loopback) {
        sink.warnStrict(v.interfaceLoc ?? v.loc, 'loopback-interface', `${tag} cannot use a loopback interface (${ifName}) for vrrp - ignoring`);
        ifName = null;
      }
    }
    if (ifName === null && (v.interface === undefined || machine.getInterface(v.interface)?.loopback)) {
      // keepalived 2.2.7 -t refuses this even when its default interface eth0 exists (crafted/no-interface.conf).
      sink.error(v.loc, 'no-interface', `${tag} Unknown interface! (set 'interface' to a non-loopback interface)`);
    }

    if (v.virtualRouterId === undefined) sink.error(v.loc, 'vrid-missing', `${tag} the virtual router id must be set`);
    else if (ifName !== null) {
      const family = v.virtualIpaddress[0]?.address.family ?? 4;
      const key = `${ifName}/${family}/${v.virtualRouterId}`;
      const other = byVrid.get(key);
      if (other) sink.error(v.loc, 'duplicate-vrid', `${tag} virtual_router_id ${v.virtualRouterId} is already used by ${other.name} (${fmt(other.loc)}) on interface ${ifName}`);
      else byVrid.set(key, v);
    }

    // keepalived's vrrp_complete_instance: an unset priority follows the state (MASTER: 255, the
    // address owner), an unset state the priority; under vrrp_strict they must agree (RFC 3768
    // §6.4.1: only the owner starts as master) and the state is corrected from the priority.
    const priority = v.priority ?? (v.state === 'MASTER' ? 255 : 100);
    if (strict && v.state !== undefined && (v.state === 'MASTER') !== (priority === 255)) {
      sink.fixup(v.stateLoc ?? v.loc, 'strict-master-owner', `${tag} State MASTER must match being address owner`);
    }
    const startsMaster = v.state === undefined || strict ? priority === 255 : v.state === 'MASTER';
    if (startsMaster && v.nopreempt) sink.fixup(v.stateLoc ?? v.loc, 'nopreempt-master', `${tag} Warning - nopreempt will not work with initial state MASTER - clearing`);
    if (startsMaster && v.preemptDelay !== undefined) sink.fixup(v.stateLoc ?? v.loc, 'preempt-delay-master', `${tag} Warning - preempt delay will not work with initial state MASTER - clearing`);
    else if (strict && v.preemptDelay !== undefined) sink.fixup(v.loc, 'strict-preempt-delay', `${tag} preempt_delay is incompatible with strict mode - resetting`);
    if ((v.unicastSrcIp || v.unicastPeerLoc) && !v.unicastPeers.some((p) => p.address.family === (v.unicastSrcIp?.family ?? p.address.family))) {
      sink.warnStrict(v.unicastPeerLoc ?? v.loc, 'unicast-no-peers', `${tag} A unicast keyword has been specified without any unicast peers. Defaulting to multicast.`);
    }
    if (v.priority === 255 && v.state === 'BACKUP') sink.note(v.stateLoc ?? v.loc, 'owner-backup', `${tag} priority 255 (address owner) with state BACKUP: it will become master anyway`);
    const version = v.version ?? model.global.vrrpVersion ?? 2;
    if (version === 2 && v.advertInt !== undefined && !Number.isInteger(v.advertInt)) {
      // RFC 3768 §5.3.7: the v2 Adver Int field counts whole seconds.
      sink.fixup(v.loc, 'advert-int-rounded', `${tag} VRRPv2 advertisement interval ${v.advertInt}s must be an integer. rounding`);
    }

    const auth = v.authentication;
    if (auth) {
      // keepalived 2.2.7 accepts an empty block (crafted/auth-empty.conf): no authentication then.
      if (!auth.type) sink.note(auth.loc, 'auth-type-missing', `${tag} authentication block without auth_type: no authentication`);
      if (auth.type && auth.pass === undefined) sink.error(auth.loc, 'auth-pass-missing', `${tag} auth_type ${auth.type} needs auth_pass`);
      if (auth.type === 'AH' && v.state === 'MASTER') sink.warnStrict(v.stateLoc ?? auth.loc, 'ah-master', `${tag} Initial state master is incompatible with AH authentication - clearing`);
      // keepalived: strict first, else version 3; either way the instance runs without it.
      if (strict) sink.fixup(auth.loc, 'strict-auth', `${tag} Strict mode does not support authentication. Ignoring.`);
      else if (version === 3) sink.fixup(auth.loc, 'auth-v3', `${tag} VRRP version 3 does not support authentication. Ignoring.`);
    }
    // keepalived 2.2.7 accepts unicast_peer with vrrp_strict (crafted/strict-unicast.conf), so no check here.
    if (strict && v.virtualIpaddress.length > STRICT_MAX_VIPS) sink.error(v.loc, 'strict-vips', `${tag} vrrp_strict allows at most ${STRICT_MAX_VIPS} virtual_ipaddress entries, ${v.virtualIpaddress.length} given`);
    if (strict && v.nopreempt) sink.fixup(v.loc, 'strict-nopreempt', `${tag} nopreempt is not allowed with vrrp_strict - ignoring`);
    if (v.virtualIpaddress.length === 0) sink.warnStrict(v.loc, 'no-vip', `${tag} No VIP specified; at least one is sensible`);

    const families = new Set(v.virtualIpaddress.map((a) => a.address.family));
    if (families.size > 1) sink.error(v.loc, 'mixed-family', `${tag} virtual_ipaddress mixes IPv4 and IPv6; use virtual_ipaddress_excluded for the other family`);
    if (v.unicastSrcIp) {
      for (const peer of v.unicastPeers) {
        if (peer.address.family !== v.unicastSrcIp.family) sink.error(peer.loc, 'mixed-family', `${tag} unicast_peer ${peer.address.text} is not of the same family as unicast_src_ip ${v.unicastSrcIp.text}`);
      }
    }

    for (const t of v.trackInterface) {
      if (t.name === v.interface) {
        // keepalived tracks its own interface anyway (vrrp_complete_instance drops the entry).
        sink.fixup(t.loc, 'track-own-interface', `${tag} Ignoring track_interface ${t.name} since own interface`);
      } else if (!machine.getInterface(t.name)) {
        sink.warnStrict(t.loc, 'no-such-interface', `${tag} tracked interface ${t.name} doesn't exist`);
        missingInterface = true;
      }
    }
    for (const t of v.trackScript) if (!scripts.has(t.name)) sink.warnStrict(t.loc, 'unknown-track-script', `${tag} track script ${t.name} not found, ignoring...`);
    for (const t of v.trackFile) if (!trackFiles.has(t.name)) sink.warnStrict(t.loc, 'unknown-track-file', `${tag} track file ${t.name} not found, ignoring...`);
    checkVips(v.virtualIpaddress);
    checkVips(v.virtualIpaddressExcluded);
    checkRoutes(v.virtualRoutes, true);
  }

  // --- vrrp_sync_group
  const inGroup = new Map<string, string>();
  for (const g of model.vrrpSyncGroups) {
    let members = 0;
    for (const m of g.group) {
      if (!instances.has(m.name)) {
        sink.warnStrict(m.loc, 'unknown-instance', `Virtual router ${m.name} specified in sync group ${g.name} doesn't exist - ignoring`);
        continue;
      }
      const prev = inGroup.get(m.name);
      if (prev !== undefined) {
        sink.warnStrict(m.loc, 'instance-in-two-groups', `Virtual router ${m.name} cannot exist in more than one sync group; it is already in ${prev}`);
        continue;
      }
      inGroup.set(m.name, g.name);
      members++;
    }
    if (members === 0) sink.warnStrict(g.loc, 'empty-sync-group', `Sync group ${g.name} has no virtual router(s). removing`);
    else if (members === 1) sink.warnStrict(g.loc, 'single-sync-group', `Sync group ${g.name} has only 1 virtual router(s) - this probably isn't what you want`);
    for (const t of g.trackScript) if (!scripts.has(t.name)) sink.warnStrict(t.loc, 'unknown-track-script', `(${g.name}) track script ${t.name} not found, ignoring...`);
  }

  if (model.global.lvsSyncDaemon) {
    const l = model.global.lvsSyncDaemon;
    checkIfExists(l.interface, l.loc, 'lvs_sync_daemon');
    if (l.vrrpInstance !== undefined && !instances.has(l.vrrpInstance)) sink.warnStrict(l.loc, 'unknown-instance', `lvs_sync_daemon: vrrp_instance ${l.vrrpInstance} doesn't exist`);
  }

  // --- virtual_server
  const groups = new Map(model.virtualServerGroups.map((g) => [g.name, g]));
  for (const g of model.virtualServerGroups) {
    if (g.entries.length === 0) sink.warnStrict(g.loc, 'empty-group', `virtual server group ${g.name} has no entries - removing`);
  }
  const seenVs = new Map<string, Loc>();
  for (const vs of model.virtualServers) {
    const key = `${vsName(vs)}`;
    const first = seenVs.get(key);
    // keepalived -t accepts this (crafted/vs-duplicate.conf); uvs keeps the first.
    if (first) sink.note(vs.loc, 'duplicate-virtual-server', `virtual_server ${key} is defined twice (first at ${fmt(first)})`);
    else seenVs.set(key, vs.loc);
  }
  for (const vs of model.virtualServers) {
    const name = vsName(vs);
    const k = vs.key;
    let fwmarkOnly = k.kind === 'fwmark';
    if (k.kind === 'group') {
      const g = groups.get(k.name);
      // keepalived -t accepts this (crafted/vs-unknown-group.conf); the service simply has no address.
      if (!g) sink.note(vs.loc, 'unknown-group', `Virtual server group ${k.name} is not configured (no virtual_server_group ${k.name}): this service matches nothing`);
      else fwmarkOnly = g.entries.length > 0 && g.entries.every((e) => e.kind === 'fwmark');
    }
    // keepalived 2.2.7 insists on a protocol for address-based services (measured, even for groups).
    if (vs.protocol === undefined && !fwmarkOnly) sink.warnStrict(vs.loc, 'no-protocol', `Virtual server ${name}: no protocol set - defaulting to UDP`);
    if (vs.protocol !== undefined && fwmarkOnly) sink.warnStrict(vs.protocolLoc ?? vs.loc, 'fwmark-protocol', `Warning: Virtual server ${name}: protocol specified for fwmark - protocol will be ignored`);
    if (k.kind === 'ip' && k.port === 0 && vs.persistenceTimeout === undefined) {
      sink.warnStrict(vs.loc, 'zero-port', `Virtual server ${name}: zero port only valid for persistent services - setting`);
    }
    if (vs.scheduler === undefined) sink.warnStrict(vs.loc, 'no-scheduler', `Virtual server ${name}: no scheduler set, setting default 'wlc'`);
    if (vs.forwarding === undefined) sink.warnStrict(vs.loc, 'no-forwarding', `Virtual server ${name}: no forwarding method set, setting default NAT`);
    if (vs.haSuspend && fwmarkOnly) sink.warnStrict(vs.loc, 'fwmark-ha-suspend', `Virtual server ${name}: cannot use ha_suspend with fwmarks - clearing ha_suspend`);
    if (vs.ops && vs.protocol !== 'UDP') sink.warnStrict(vs.loc, 'ops-not-udp', `Virtual server ${name}: one packet scheduling requires UDP - resetting`);
    const vsFamily = k.kind === 'ip' ? k.address.family : undefined;
    const seenRs = new Map<string, Loc>();
    let usable = 0;
    let totalWeight = 0;
    for (const rs of vs.realServers) {
      const method = rs.lvsMethod ?? vs.forwarding ?? 'NAT';
      if (vsFamily !== undefined && rs.address.family !== vsFamily && method !== 'TUN') {
        sink.error(rs.loc, 'mixed-family', `Address family of virtual server ${name} and real server ${rs.address.text} don't match - skipping real server (only TUN can mix)`);
        continue;
      }
      usable++;
      totalWeight += rs.weight ?? 1;
      // DR and TUN cannot change the port (the packet is forwarded unchanged inside).
      if (k.kind === 'ip' && method !== 'NAT' && rs.port !== undefined && rs.port !== 0 && rs.port !== k.port) {
        sink.warnStrict(rs.loc, 'port-mismatch', `WARNING - virtual server ${name} and real server [${rs.address.text}]:${(vs.protocol ?? 'TCP').toLowerCase()}:${rs.port} ports don't match - resetting`);
      }
      const rsKey = `${rs.address.text}/${rs.port ?? 0}`;
      const firstRs = seenRs.get(rsKey);
      if (firstRs) sink.warnStrict(rs.loc, 'duplicate-real-server', `VS ${name}: real server [${rs.address.text}]:${rs.port ?? 0} is duplicated (first at line ${firstRs.line}) - removing second rs`);
      else seenRs.set(rsKey, rs.loc);
      if (rs.uthreshold !== undefined && rs.lthreshold !== undefined && rs.lthreshold > rs.uthreshold) {
        // keepalived does not complain (crafted/rs-thresholds.conf), but the server would flap.
        sink.note(rs.loc, 'thresholds', `Real server ${rs.address.text}: lthreshold ${rs.lthreshold} above uthreshold ${rs.uthreshold}`);
      }
    }
    if (usable === 0) sink.warnStrict(vs.loc, 'no-real-servers', `Virtual server ${name} has no real servers - ignoring`);
    // keepalived lowers an unreachable quorum to the total weight, then keeps hysteresis below it.
    let quorum = vs.quorum;
    if (quorum !== undefined && usable > 0 && quorum > totalWeight) {
      sink.warnStrict(vs.loc, 'quorum-too-high', `Warning - quorum ${quorum} for ${name} VS exceeds total weight of real servers ${totalWeight}, reducing quorum to ${totalWeight}`);
      quorum = totalWeight;
    }
    if (quorum !== undefined && vs.hysteresis !== undefined && vs.hysteresis >= quorum) {
      sink.warnStrict(vs.loc, 'hysteresis', `Virtual server ${name}: hysteresis ${vs.hysteresis} >= quorum ${quorum}; setting hysteresis to ${quorum - 1}`);
    }
  }

  // --- tracked vrrp_scripts must be runnable; notify and checker scripts that are missing are
  // silently never run (samples' vrrp.scripts and misc_check pass keepalived -t).
  const tracked = new Set<string>();
  for (const v of model.vrrpInstances) for (const t of v.trackScript) tracked.add(t.name);
  for (const g of model.vrrpSyncGroups) for (const t of g.trackScript) tracked.add(t.name);
  for (const name of tracked) {
    const program = scripts.get(name)?.script?.argv[0];
    if (program !== undefined && machine.findExecutable(program) === null) {
      sink.warnStrict(scripts.get(name)!.loc, 'script-not-found', `Disabling track script ${name} since not found/accessible ('${program}')`);
    }
  }

  // --- scripts and their security (keepalived's check_script_secure / script_security)
  checkScripts(model, machine, sink);

  // keepalived -t stops here with exit 5, before its script security check (measured: samples'
  // vrrp.localcheck gives 5 on a machine without eth0 but 6 on one with it).
  if (missingInterface) sink.push('error', null, 'non-existent-interface', 'Non-existent interface specified in configuration', true, 5, true);
  return sink.list;
}

function fmt(loc: Loc): string {
  return `${loc.file}:${loc.line}`;
}

/**
 * keepalived refuses to run scripts as root unless `enable_script_security` is set
 * ("SECURITY VIOLATION - scripts are being executed but script_security not enabled", exit 6).
 * Scripts run as script_user, else as keepalived_script when that user exists, else as root;
 * scripts whose program cannot be found are not run and so do not count.
 */
function checkScripts(model: KeepalivedConfig, machine: Machine, sink: DiagnosticSink): void {
  const all: { spec: ConfigScript; user?: string }[] = [];
  const add = (spec: ConfigScript | undefined, user?: string): void => {
    if (spec) all.push({ spec, user: user ?? spec.user });
  };
  for (const s of model.vrrpScripts) add(s.script, s.user);
  // Every field of NotifyScripts is an optional ConfigScript.
  for (const v of model.vrrpInstances) for (const n of Object.values(v.notify as Record<string, ConfigScript | undefined>)) add(n);
  for (const g of model.vrrpSyncGroups) for (const n of Object.values(g.notify as Record<string, ConfigScript | undefined>)) add(n);
  for (const vs of model.virtualServers) {
    add(vs.quorumUp);
    add(vs.quorumDown);
    for (const rs of vs.realServers) {
      add(rs.notifyUp);
      add(rs.notifyDown);
      for (const c of rs.checkers) add(c.miscPath);
    }
  }
  const defaultUser = model.global.scriptUser?.user ?? (machine.userExists('keepalived_script') ? 'keepalived_script' : 'root');
  const firstScript = all[0];
  if (firstScript && model.global.enableScriptSecurity && !model.global.scriptUser && !machine.userExists('keepalived_script')) {
    sink.warnStrict(firstScript.spec.loc, 'no-script-user', 'Unable to set default user keepalived_script for script (create that user or set script_user)');
  }
  if (model.global.scriptUser && !machine.userExists(model.global.scriptUser.user)) {
    sink.warnStrict(model.global.scriptUser.loc, 'unknown-user', `script_user: user '${model.global.scriptUser.user}' does not exist`);
  }
  let runsAsRoot: ConfigScript | null = null;
  for (const { spec, user } of all) {
    const program = spec.argv[0];
    if (program === undefined) continue;
    if (user !== undefined && user !== 'root' && !machine.userExists(user)) {
      sink.warnStrict(spec.loc, 'unknown-user', `${spec.command}: user '${user}' does not exist`);
      continue;
    }
    if (machine.findExecutable(program) === null) continue;
    if ((user ?? defaultUser) === 'root' && !runsAsRoot) runsAsRoot = spec;
  }
  if (runsAsRoot && !model.global.enableScriptSecurity) {
    sink.push('error', runsAsRoot.loc, 'script-security', `SECURITY VIOLATION - scripts are being executed but script_security not enabled (first: '${runsAsRoot.command}' as root; set enable_script_security and script_user)`, true, EXIT_CONFIG_TEST_SECURITY);
  }
}
