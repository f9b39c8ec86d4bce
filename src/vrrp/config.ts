// The VRRP runtime configuration: what one vrrp_instance / vrrp_sync_group means to the state
// machine, with keepalived's defaults. The keepalived.conf parser (src/config/keepalived/)
// produces its own model; mapping that model onto these records is a small pure step done by
// the caller. Everything here is plain data so it crosses into the worker thread unchanged.

import {
  AUTH_NONE,
  AUTH_PASS,
  NotifyScripts,
  PRIORITY_OWNER,
  TrackedObject,
  VRRP_MCAST_GROUP4,
  VirtualAddress,
  VrrpVersion,
} from './types';
import { UvsError } from '../runtime/errors';

export interface VrrpInstanceConfig {
  name: string;
  /** keepalived `interface`: where adverts go and VIPs live by default. */
  interface: string;
  /** ifindex of `interface` when known; adverts from other interfaces are not ours. 0 = any. */
  ifindex: number;
  /**
   * Our primary IPv4 address on `interface` (or unicast_src_ip): the source of our adverts
   * and our side of the RFC 3768 §6.4.3 / RFC 5798 §6.4.3 equal-priority tie-break.
   */
  primaryAddress: string;
  version: VrrpVersion;
  vrid: number;
  /** 1..255; 255 = address owner (RFC 3768 §5.3.4). */
  priority: number;
  /** keepalived `state`: the wished initial state (only a hint unless priority is 255). */
  initialState: 'MASTER' | 'BACKUP';
  /** `advert_int` in milliseconds: whole seconds for v2, centisecond steps for v3. */
  advertIntMs: number;
  /** `nopreempt` sets this false; RFC default is true (Preempt_Mode, RFC 3768 §6.1). */
  preempt: boolean;
  /** `preempt_delay` in milliseconds (0 = none). */
  preemptDelayMs: number;
  /** v2 only: AUTH_NONE or AUTH_PASS (`authentication { auth_type PASS auth_pass ... }`). */
  authType: number;
  /** PASS password as its 8 bytes at most (a latin1 byte string: UTF-8 of the configured text, cut at 8 bytes as keepalived does). */
  authPass: string;
  virtualAddresses: VirtualAddress[];
  /** `virtual_ipaddress_excluded`: added and removed with the VIPs but not listed in adverts. */
  excludedAddresses: VirtualAddress[];
  /** `unicast_src_ip`; undefined = primaryAddress. */
  unicastSource: string | undefined;
  /** `unicast_peer { ... }`; empty = multicast. */
  unicastPeers: string[];
  /** global_defs `vrrp_mcast_group4`. */
  multicastGroup: string;
  /** `garp_master_delay` in ms: the second round of GARPs after becoming master (0 = none). */
  garpMasterDelayMs: number;
  /** `garp_master_repeat`: GARPs per VIP per round. */
  garpMasterRepeat: number;
  /** `garp_master_refresh` in ms: periodic GARP while master (0 = off). */
  garpMasterRefreshMs: number;
  /** `garp_master_refresh_repeat`: GARPs per VIP per refresh. */
  garpMasterRefreshRepeat: number;
  trackInterfaces: TrackedObject[];
  trackScripts: TrackedObject[];
  /** `dont_track_primary`: the instance's own interface going down does not mean FAULT. */
  dontTrackPrimary: boolean;
  /** `skip_check_adv_addr`: check the address list only when the master's address changes. */
  skipCheckAdvAddr: boolean;
  /** `check_unicast_src`: drop unicast adverts whose source is not a configured peer. */
  checkUnicastSource: boolean;
  /** `lower_prio_no_advert`: a master does not answer a lower-priority advert with its own. */
  lowerPrioNoAdvert: boolean;
  notify: NotifyScripts;
}

export interface VrrpSyncGroupConfig {
  name: string;
  /** Instance names (`group { VI_1 VI_2 }`). */
  instances: string[];
  notify: NotifyScripts;
}

export interface VrrpRuntimeConfig {
  instances: VrrpInstanceConfig[];
  syncGroups: VrrpSyncGroupConfig[];
}

/** Thrown when a configuration cannot run; says which instance and which setting. */
export class VrrpConfigError extends UvsError {
  constructor(where: string, message: string) {
    super('UVS_ERR_VRRP_CONFIG', `vrrp ${where}: ${message}`);
  }
}

/** keepalived's defaults (keepalived.conf(5), vrrp_data.c alloc_vrrp). */
export const DEFAULT_ADVERT_INT_MS = 1000;
export const DEFAULT_GARP_MASTER_DELAY_MS = 5000;
export const DEFAULT_GARP_MASTER_REPEAT = 5;
export const DEFAULT_GARP_MASTER_REFRESH_REPEAT = 1;
export const DEFAULT_PRIORITY = 100;

export type VrrpInstanceInput = Partial<VrrpInstanceConfig> &
  Pick<VrrpInstanceConfig, 'name' | 'interface' | 'vrid' | 'primaryAddress'>;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}


/** Fills keepalived's defaults and checks every value the state machine relies on. */
export function instanceConfig(input: VrrpInstanceInput): VrrpInstanceConfig {
  const c: VrrpInstanceConfig = {
    ifindex: 0,
    version: 2,
    priority: DEFAULT_PRIORITY,
    initialState: 'BACKUP',
    advertIntMs: DEFAULT_ADVERT_INT_MS,
    preempt: true,
    preemptDelayMs: 0,
    authType: AUTH_NONE,
    authPass: '',
    virtualAddresses: [],
    excludedAddresses: [],
    unicastSource: undefined,
    unicastPeers: [],
    multicastGroup: VRRP_MCAST_GROUP4,
    garpMasterDelayMs: DEFAULT_GARP_MASTER_DELAY_MS,
    garpMasterRepeat: DEFAULT_GARP_MASTER_REPEAT,
    garpMasterRefreshMs: 0,
    garpMasterRefreshRepeat: DEFAULT_GARP_MASTER_REFRESH_REPEAT,
    trackInterfaces: [],
    trackScripts: [],
    dontTrackPrimary: false,
    skipCheckAdvAddr: false,
    checkUnicastSource: false,
    lowerPrioNoAdvert: false,
    notify: {},
    ...input,
  };
  const where = `instance ${c.name}`;
  if (!c.name) throw new VrrpConfigError('instance', 'a name is required');
  if (c.version !== 2 && c.version !== 3) {
    throw new VrrpConfigError(where, `version ${String(c.version)} is not 2 or 3`);
  }
  if (!Number.isInteger(c.vrid) || c.vrid < 1 || c.vrid > 255) {
    throw new VrrpConfigError(where, `virtual_router_id ${c.vrid} is outside 1..255 (RFC 3768 §5.3.3)`);
  }
  if (!Number.isInteger(c.priority) || c.priority < 1 || c.priority > 255) {
    throw new VrrpConfigError(where, `priority ${c.priority} is outside 1..255 (RFC 3768 §5.3.4)`);
  }
  if (!isIPv4(c.primaryAddress)) {
    throw new VrrpConfigError(where, `primary address "${c.primaryAddress}" is not an IPv4 address`);
  }
  if (c.unicastSource !== undefined && !isIPv4(c.unicastSource)) {
    throw new VrrpConfigError(where, `unicast_src_ip "${c.unicastSource}" is not an IPv4 address`);
  }
  for (const peer of c.unicastPeers) {
    if (!isIPv4(peer)) throw new VrrpConfigError(where, `unicast_peer "${peer}" is not an IPv4 address`);
  }
  if (!isIPv4(c.multicastGroup)) {
    throw new VrrpConfigError(where, `multicast group "${c.multicastGroup}" is not an IPv4 address`);
  }
  if (c.version === 2) {
    // RFC 3768 §5.3.7: an 8-bit count of whole seconds.
    if (!Number.isInteger(c.advertIntMs / 1000) || c.advertIntMs < 1000 || c.advertIntMs > 255000) {
      throw new VrrpConfigError(where, `advert_int ${c.advertIntMs / 1000}s must be whole seconds 1..255 for VRRPv2`);
    }
  } else {
    // RFC 5798 §5.2.7: a 12-bit count of centiseconds.
    const cs = c.advertIntMs / 10;
    if (!Number.isInteger(Math.round(cs * 1e6) / 1e6) || cs < 1 || cs > 4095) {
      throw new VrrpConfigError(where, `advert_int ${c.advertIntMs / 1000}s must be 0.01..40.95 in steps of 0.01 for VRRPv3`);
    }
  }
  if (c.authType !== AUTH_NONE && c.authType !== AUTH_PASS) {
    throw new VrrpConfigError(where, `auth_type ${c.authType} is not supported (only PASS; AH is obsolete, RFC 3768 §5.3.6.3)`);
  }
  if (c.version === 3 && c.authType !== AUTH_NONE) {
    throw new VrrpConfigError(where, 'VRRPv3 has no authentication (RFC 5798 §9); remove the authentication block');
  }
  // The configured text as the 8 bytes keepalived sends and compares: UTF-8, cut at 8 bytes (not
  // characters), kept as a byte string (latin1) so the wire's bytes compare one to one.
  c.authPass = Buffer.from(c.authPass, 'utf8').subarray(0, 8).toString('latin1');
  if (c.preemptDelayMs < 0 || c.preemptDelayMs > 1000000) {
    throw new VrrpConfigError(where, `preempt_delay ${c.preemptDelayMs / 1000}s is outside 0..1000`);
  }
  if (c.garpMasterRepeat < 0 || c.garpMasterRefreshRepeat < 0 || c.garpMasterDelayMs < 0 || c.garpMasterRefreshMs < 0) {
    throw new VrrpConfigError(where, 'garp_master_* values must not be negative');
  }
  for (const vip of [...c.virtualAddresses, ...c.excludedAddresses]) {
    if (!isIPv4(vip.address)) {
      throw new VrrpConfigError(where, `virtual_ipaddress "${vip.address}" is not IPv4 (IPv6 VIPs are not supported yet)`);
    }
    if (!Number.isInteger(vip.prefixLength) || vip.prefixLength < 0 || vip.prefixLength > 32) {
      throw new VrrpConfigError(where, `virtual_ipaddress ${vip.address}/${vip.prefixLength}: bad prefix length`);
    }
  }
  if (c.virtualAddresses.length > 255) {
    throw new VrrpConfigError(where, `${c.virtualAddresses.length} virtual addresses; an advert holds at most 255`);
  }
  for (const t of [...c.trackInterfaces, ...c.trackScripts]) {
    if (!Number.isInteger(t.weight) || t.weight < -254 || t.weight > 254) {
      throw new VrrpConfigError(where, `track ${t.name} weight ${t.weight} is outside -254..254`);
    }
  }
  return c;
}

/** Checks the whole set: unique names, unique (interface, vrid), sync groups naming real instances. */
export function validateRuntimeConfig(config: VrrpRuntimeConfig): void {
  const names = new Set<string>();
  const vrids = new Set<string>();
  for (const inst of config.instances) {
    if (names.has(inst.name)) throw new VrrpConfigError(`instance ${inst.name}`, 'defined twice');
    names.add(inst.name);
    const key = `${inst.interface}/${inst.unicastPeers.length ? 'u' : 'm'}/${inst.vrid}`;
    if (vrids.has(key)) {
      throw new VrrpConfigError(`instance ${inst.name}`, `virtual_router_id ${inst.vrid} is already used on ${inst.interface}`);
    }
    vrids.add(key);
  }
  const grouped = new Set<string>();
  for (const group of config.syncGroups) {
    for (const member of group.instances) {
      if (!names.has(member)) {
        throw new VrrpConfigError(`sync group ${group.name}`, `instance ${member} does not exist`);
      }
      if (grouped.has(member)) {
        throw new VrrpConfigError(`sync group ${group.name}`, `instance ${member} is already in another sync group`);
      }
      grouped.add(member);
    }
  }
}

/** The address owner always wants MASTER (keepalived forces `state MASTER` for priority 255). */
export function wantsMasterAtStart(c: VrrpInstanceConfig): boolean {
  return c.priority === PRIORITY_OWNER || c.initialState === 'MASTER';
}
