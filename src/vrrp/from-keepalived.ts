// keepalived.conf model (src/config/keepalived/) → VRRP runtime config. Pure: the facts about the
// machine (ifindex and primary IPv4 address of an interface) are passed in. Applies keepalived's
// defaults where the model keeps "not written", and says file:line for everything it refuses
// or changes.

import type { KeepalivedConfig, ConfigScript, TrackRef, VirtualIp, VrrpInstance as KaInstance } from '../config/keepalived/model';
import type { Loc } from '../config/keepalived/diagnostics';
import {
  DEFAULT_GARP_MASTER_DELAY_MS,
  DEFAULT_GARP_MASTER_REFRESH_REPEAT,
  DEFAULT_GARP_MASTER_REPEAT,
  DEFAULT_PRIORITY,
  VrrpConfigError,
  VrrpInstanceConfig,
  VrrpRuntimeConfig,
  instanceConfig,
  validateRuntimeConfig,
} from './config';
import { AUTH_NONE, AUTH_PASS, NotifyScripts, TrackedObject, VRRP_MCAST_GROUP4, VirtualAddress } from './types';

export interface InterfaceFacts {
  /** ifindex, or 0 when unknown. */
  ifindex(name: string): number;
  /** The interface's primary IPv4 address, or null when it has none (or does not exist). */
  primaryAddress(name: string): string | null;
}

export interface VrrpMapping {
  config: VrrpRuntimeConfig;
  /** Things keepalived also only warns about, with file:line. */
  warnings: string[];
  /** vrrp_script names some instance tracks: the main thread runs these and reports results. */
  trackedScripts: string[];
}

function at(loc: Loc | undefined): string {
  return loc ? `${loc.file}:${loc.line}: ` : '';
}

function script(spec: ConfigScript | undefined): string | undefined {
  return spec?.command;
}

function notifyOf(n: { master?: ConfigScript; backup?: ConfigScript; fault?: ConfigScript; stop?: ConfigScript; any?: ConfigScript }): NotifyScripts {
  const out: NotifyScripts = {};
  const master = script(n.master);
  const backup = script(n.backup);
  const fault = script(n.fault);
  const stop = script(n.stop);
  const generic = script(n.any);
  if (master !== undefined) out.master = master;
  if (backup !== undefined) out.backup = backup;
  if (fault !== undefined) out.fault = fault;
  if (stop !== undefined) out.stop = stop;
  if (generic !== undefined) out.generic = generic;
  return out;
}

function hasKeyword(other: { keyword: string }[], keyword: string): boolean {
  return other.some((o) => o.keyword === keyword);
}

export function vrrpFromKeepalived(model: KeepalivedConfig, facts: InterfaceFacts): VrrpMapping {
  const warnings: string[] = [];
  const tracked = new Set<string>();
  const g = model.global;
  const scriptsByName = new Map(model.vrrpScripts.map((s) => [s.name, s]));
  const groupOf = new Map<string, (typeof model.vrrpSyncGroups)[number]>();
  for (const sg of model.vrrpSyncGroups) for (const m of sg.group) groupOf.set(m.name, sg);

  const vips = (list: VirtualIp[], inst: KaInstance, what: string): VirtualAddress[] => {
    const out: VirtualAddress[] = [];
    for (const v of list) {
      if (v.address.family !== 4) {
        warnings.push(`${at(v.loc)}(${inst.name}) ${what} ${v.address.text} is IPv6, which uvs does not run yet - ignored`);
        continue;
      }
      if (out.some((o) => o.address === v.address.text)) {
        warnings.push(`${at(v.loc)}(${inst.name}) ${what} ${v.address.text} is listed twice - the first entry is used`);
        continue;
      }
      const vip: VirtualAddress = { address: v.address.text, prefixLength: v.address.prefixLen, dev: v.dev ?? inst.interface ?? '' };
      if (v.label !== undefined) vip.label = v.label;
      if (v.scope !== undefined) vip.scope = v.scope;
      if (v.broadcast !== undefined) vip.broadcast = v.broadcast;
      out.push(vip);
    }
    return out;
  };

  const scriptTrack = (ref: TrackRef, inst: KaInstance): TrackedObject | null => {
    const def = scriptsByName.get(ref.name);
    if (def === undefined) {
      // keepalived: "track script X not found, ignoring".
      warnings.push(`${at(ref.loc)}(${inst.name}) track_script ${ref.name} is not a defined vrrp_script - ignored`);
      return null;
    }
    tracked.add(ref.name);
    // A weight written on the track_script line overrides the vrrp_script's own.
    if (ref.weight !== undefined) return { name: ref.name, weight: ref.weight, reverse: ref.reverse };
    return { name: ref.name, weight: def.weight ?? 0, reverse: def.weightReverse };
  };

  const instances: VrrpInstanceConfig[] = [];
  for (const inst of model.vrrpInstances) {
    const where = `${at(inst.loc)}vrrp_instance ${inst.name}`;
    if (inst.virtualRouterId === undefined) throw new VrrpConfigError(where, 'virtual_router_id is required');
    if (inst.interface === undefined) throw new VrrpConfigError(where, 'interface is required');
    const version = inst.version ?? g.vrrpVersion ?? 2;
    let advertIntMs = Math.round((inst.advertInt ?? 1) * 1000);
    if (version === 2 && advertIntMs % 1000 !== 0) {
      const rounded = Math.max(1, Math.round(advertIntMs / 1000)) * 1000;
      warnings.push(`${where}: VRRPv2 advert_int must be whole seconds - using ${rounded / 1000}`);
      advertIntMs = rounded;
    } else if (version === 3) {
      advertIntMs = Math.round(advertIntMs / 10) * 10;
    }
    let authType = AUTH_NONE;
    let authPass = '';
    // keepalived's corrections at load (vrrp_complete_instance), which validate.ts reports as
    // fixups: vrrp_strict runs without authentication; an unset priority follows the state
    // (MASTER: 255) and, under vrrp_strict, the state follows the priority (only the address
    // owner starts as master, RFC 3768 §6.4.1); a master start clears nopreempt and
    // preempt_delay, as does vrrp_strict.
    const strict = g.vrrpStrict;
    const priority = inst.priority ?? (inst.state === 'MASTER' ? 255 : DEFAULT_PRIORITY);
    const initialState = inst.state === undefined || strict ? (priority === 255 ? 'MASTER' : 'BACKUP') : inst.state;
    const preempt = !inst.nopreempt || initialState === 'MASTER' || strict;
    const preemptDelay = initialState === 'MASTER' || strict ? 0 : inst.preemptDelay ?? 0;
    if (strict) {
      // Reported by validate.ts ("Strict mode does not support authentication. Ignoring.").
    } else if (inst.authentication !== undefined) {
      if (version === 3) {
        warnings.push(`${at(inst.authentication.loc)}(${inst.name}) VRRPv3 has no authentication - authentication block ignored`);
      } else if (inst.authentication.type === 'AH') {
        throw new VrrpConfigError(`${at(inst.authentication.loc)}vrrp_instance ${inst.name}`, 'auth_type AH is not supported (RFC 3768 removed it); use PASS or none');
      } else if (inst.authentication.type === 'PASS') {
        authType = AUTH_PASS;
        authPass = inst.authentication.pass ?? '';
      }
    }
    const source = inst.unicastSrcIp?.text ?? inst.mcastSrcIp?.text;
    const primary = source ?? facts.primaryAddress(inst.interface);
    if (primary === null) {
      throw new VrrpConfigError(where, `interface ${inst.interface} has no IPv4 address to send adverts from (set unicast_src_ip or mcast_src_ip)`);
    }
    const peers: string[] = [];
    for (const p of inst.unicastPeers) {
      if (p.address.family !== 4) warnings.push(`${at(p.loc)}(${inst.name}) unicast_peer ${p.address.text} is IPv6 - ignored`);
      else peers.push(p.address.text);
    }
    const group = groupOf.get(inst.name);
    // Tracking the instance's own interface is implicit: keepalived drops the entry.
    const trackInterfaces: TrackedObject[] = [...inst.trackInterface.filter((t) => t.name !== inst.interface), ...(group?.trackInterface ?? [])].map((t) => ({
      name: t.name,
      weight: t.weight ?? 0,
      reverse: t.reverse,
    }));
    const trackScripts: TrackedObject[] = [];
    for (const ref of [...inst.trackScript, ...(group?.trackScript ?? [])]) {
      const t = scriptTrack(ref, inst);
      if (t !== null) trackScripts.push(t);
    }
    if (inst.trackFile.length) warnings.push(`${where}: track_file is not supported yet - ignored`);
    if (inst.virtualRoutes.length || inst.virtualRules.length) {
      warnings.push(`${where}: virtual_routes/virtual_rules are not supported yet - ignored`);
    }
    if (inst.useVmac !== undefined) warnings.push(`${where}: use_vmac is not supported - the instance runs on ${inst.interface}`);
    const garp = (own: number | undefined, global: number | undefined, dflt: number): number => own ?? global ?? dflt;
    instances.push(
      instanceConfig({
        name: inst.name,
        interface: inst.interface,
        ifindex: facts.ifindex(inst.interface),
        primaryAddress: primary,
        version,
        vrid: inst.virtualRouterId,
        priority,
        initialState,
        advertIntMs,
        preempt,
        preemptDelayMs: Math.round(preemptDelay * 1000),
        authType,
        authPass,
        virtualAddresses: vips(inst.virtualIpaddress, inst, 'virtual_ipaddress'),
        excludedAddresses: vips(inst.virtualIpaddressExcluded, inst, 'virtual_ipaddress_excluded'),
        unicastSource: inst.unicastSrcIp?.text,
        unicastPeers: peers,
        multicastGroup: g.vrrpMcastGroup4?.text ?? VRRP_MCAST_GROUP4,
        garpMasterDelayMs: Math.round(garp(inst.garp.masterDelay, g.garp.masterDelay, DEFAULT_GARP_MASTER_DELAY_MS / 1000) * 1000),
        garpMasterRepeat: garp(inst.garp.masterRepeat, g.garp.masterRepeat, DEFAULT_GARP_MASTER_REPEAT),
        garpMasterRefreshMs: Math.round(garp(inst.garp.masterRefresh, g.garp.masterRefresh, 0) * 1000),
        garpMasterRefreshRepeat: garp(inst.garp.masterRefreshRepeat, g.garp.masterRefreshRepeat, DEFAULT_GARP_MASTER_REFRESH_REPEAT),
        trackInterfaces,
        trackScripts,
        dontTrackPrimary: inst.dontTrackPrimary,
        skipCheckAdvAddr: g.vrrpSkipCheckAdvAddr || hasKeyword(inst.other, 'skip_check_adv_addr'),
        checkUnicastSource: hasKeyword(inst.other, 'check_unicast_src') || hasKeyword(g.other, 'vrrp_check_unicast_src'),
        lowerPrioNoAdvert: hasKeyword(inst.other, 'lower_prio_no_advert') || hasKeyword(g.other, 'vrrp_lower_prio_no_advert'),
        notify: notifyOf(inst.notify),
      }),
    );
  }
  const syncGroups = model.vrrpSyncGroups
    .map((sg) => ({ name: sg.name, instances: sg.group.map((m) => m.name), notify: notifyOf(sg.notify) }))
    .filter((sg) => {
      const missing = sg.instances.filter((n) => !instances.some((i) => i.name === n));
      if (missing.length) {
        // keepalived: "Virtual router X specified in sync group Y doesn't exist - ignoring".
        const loc = model.vrrpSyncGroups.find((s) => s.name === sg.name)?.loc;
        warnings.push(`${at(loc)}sync group ${sg.name}: instance(s) ${missing.join(', ')} do not exist - ignored`);
        sg.instances = sg.instances.filter((n) => !missing.includes(n));
      }
      return sg.instances.length > 0;
    });
  const config: VrrpRuntimeConfig = { instances, syncGroups };
  validateRuntimeConfig(config);
  return { config, warnings, trackedScripts: [...tracked].sort() };
}
