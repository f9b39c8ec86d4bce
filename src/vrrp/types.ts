// The narrow interfaces the VRRP state machine depends on. Everything that touches the
// network, the kernel or wall-clock time sits behind one of these, so the state machine in
// instance.ts is tested step by step with fakes (seesaw's HAConn habit) and runs for real
// in the vrrp worker thread with the raw-socket implementation plugged in.

/** States as keepalived names them; the strings are the ones its `notify` script receives. */
export type VrrpState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT' | 'STOP';

export type VrrpVersion = 2 | 3;

/** RFC 3768 §5.3.6: 0 = no authentication, 1 = simple text password, 2 = IP AH (obsolete). */
export const AUTH_NONE = 0;
export const AUTH_PASS = 1;
export const AUTH_AH = 2;

/** RFC 3768 §5.3.2 / RFC 5798 §5.2.2: the only defined type. */
export const VRRP_TYPE_ADVERTISEMENT = 1;
/** RFC 3768 §5.2.3 / RFC 5798 §5.1.1.3: adverts are sent, and must arrive, with TTL 255. */
export const VRRP_TTL = 255;
/** RFC 3768 §5.2.2: the IPv4 multicast group for VRRP. */
export const VRRP_MCAST_GROUP4 = '224.0.0.18';
/** RFC 3768 §5.3.4: priority of the address owner. */
export const PRIORITY_OWNER = 255;
/** RFC 3768 §5.3.4: priority 0 = "the master stopped participating". */
export const PRIORITY_STOP = 0;

/**
 * One advertisement as decoded from the wire (or about to be encoded). The codec in
 * src/packet/vrrp.ts owns the byte layout; this record is what crosses into the state machine.
 */
export interface VrrpAdvert {
  /** Version nibble as received (2 or 3 when sane). */
  version: number;
  /** Type nibble as received (1 = ADVERTISEMENT). */
  type: number;
  vrid: number;
  priority: number;
  /**
   * Advertisement interval in centiseconds. v3 carries centiseconds in its 12-bit field
   * (RFC 5798 §5.2.7); v2 carries whole seconds (RFC 3768 §5.3.7), given here × 100.
   */
  advertIntCs: number;
  /** v2 Auth Type (RFC 3768 §5.3.6); 0 for v3, which has no authentication. */
  authType: number;
  /** v2 PASS: the 8 bytes of authentication data as a latin1 byte string, trailing zero padding removed; '' otherwise. */
  authData: string;
  /** The IPvX address list, dotted quads, in packet order. */
  addresses: readonly string[];
}

/** What the receive path knows about an advert besides its fields. */
export interface AdvertReceipt {
  /** IP source address: the sender's primary address, used for the RFC tie-break. */
  source: string;
  /** IP destination: the multicast group, or our address for unicast peers. */
  destination: string;
  /** IP TTL as received (RFC 3768 §7.1: must be 255). */
  ttl: number;
  /** Interface the packet arrived on; 0 when unknown. */
  ifindex: number;
  /** The codec verified the VRRP checksum (v3: with the IPv4 pseudo-header). */
  checksumOk: boolean;
  /** The packet held the complete VRRP header plus Count IPvX Addr addresses (and v2 auth data). */
  lengthOk: boolean;
}

/** An advert the state machine wants on the wire. */
export interface OutgoingAdvert extends VrrpAdvert {
  /** Interface to send on (keepalived `interface`). */
  interfaceName: string;
  /** IP source to use; undefined = the interface's primary address. */
  source: string | undefined;
  /** Multicast group, or one unicast peer (one send per peer). */
  destination: string;
  /** Always VRRP_TTL here; carried so the socket does not have to know. */
  ttl: number;
}

/** Where received adverts go; the socket calls this for every VRRP packet it reads. */
export interface AdvertSink {
  receive(advert: VrrpAdvert, receipt: AdvertReceipt): void;
}

/** The send half of a VRRP raw socket (IP protocol 112); receiving pushes into an AdvertSink. */
export interface VrrpSocket {
  send(advert: OutgoingAdvert): void;
  close(): void;
}

/** Where adverts must be received: one entry per interface (and unicast source) the instances use. */
export interface SocketEndpoint {
  interfaceName: string;
  /** 0 when the config did not know it. */
  ifindex: number;
  /** Group to join (IP_ADD_MEMBERSHIP) when some instance here multicasts; undefined for unicast only. */
  multicastGroup: string | undefined;
  /** Source address of our adverts on this interface. */
  source: string;
}

/**
 * Makes the socket for a set of instances; injected so tests and the real addon both fit. It
 * must listen on every endpoint from the start: a backup receives without ever sending.
 */
export type VrrpSocketFactory = (sink: AdvertSink, endpoints: readonly SocketEndpoint[]) => VrrpSocket;


/** Time in milliseconds (may be fractional) and one-shot timers. */
export type { Clock, TimerId } from '../runtime/clock';

/** One `virtual_ipaddress` entry: `10.0.0.1/24 dev eth0 label eth0:1 scope global`. */
export interface VirtualAddress {
  address: string;
  prefixLength: number;
  dev: string;
  label?: string;
  scope?: string;
  broadcast?: string;
}

/** Adds and removes VIPs and announces them; the real one talks netlink and AF_PACKET. */
export interface VipManager {
  add(vip: VirtualAddress): void;
  remove(vip: VirtualAddress): void;
  /** One gratuitous ARP (IPv4) for this VIP on its dev. */
  gratuitousArp(vip: VirtualAddress): void;
  /** Remove the VIP if it is present (start-up clean-up after a crash); optional. */
  purge?(vip: VirtualAddress): void;
}

/** Runs notify scripts (in the main thread for the real daemon). */
export interface Notifier {
  /**
   * `script` is the configured string as written (it may carry its own arguments);
   * `args` are appended: empty for notify_master/backup/fault/stop, and
   * ["INSTANCE"|"GROUP", name, state, priority] for the generic `notify`.
   */
  run(script: string, args: readonly string[]): void;
}

export type { Logger } from '../runtime/log';

/** State changes, for the host thread (the data plane forwards a VIP's services only on MASTER). */
export interface VrrpObserver {
  instanceState(name: string, state: VrrpState, previous: VrrpState, priority: number): void;
  groupState(name: string, state: VrrpState): void;
}

/** `track_interface` / `track_script` entry. weight 0 = failure means FAULT. */
export interface TrackedObject {
  name: string;
  /** keepalived range -253..253 (track_script -254..254); 0 = unweighted. */
  weight: number;
  /** keepalived `weight N reverse`: the sign of the weight's effect flips. */
  reverse: boolean;
}

export interface NotifyScripts {
  master?: string;
  backup?: string;
  fault?: string;
  stop?: string;
  /** The generic `notify` script: called with TYPE NAME STATE PRIORITY. */
  generic?: string;
}

/** Per-instance counters; every receive check has its own, as RFC 2787/6527's MIBs do. */
export interface VrrpStats {
  advertsReceived: number;
  advertsSent: number;
  priorityZeroReceived: number;
  priorityZeroSent: number;
  becameMaster: number;
  releasedMaster: number;
  /** Drops by reason. */
  lengthError: number;
  ttlError: number;
  versionError: number;
  typeError: number;
  checksumError: number;
  invalidAuthType: number;
  authTypeMismatch: number;
  authFailure: number;
  intervalMismatch: number;
  addressListError: number;
  castMismatch: number;
  unicastSourceError: number;
}

export type AdvertDropReason =
  | 'lengthError'
  | 'ttlError'
  | 'versionError'
  | 'typeError'
  | 'checksumError'
  | 'invalidAuthType'
  | 'authTypeMismatch'
  | 'authFailure'
  | 'intervalMismatch'
  | 'addressListError'
  | 'castMismatch'
  | 'unicastSourceError';

export function emptyStats(): VrrpStats {
  return {
    advertsReceived: 0,
    advertsSent: 0,
    priorityZeroReceived: 0,
    priorityZeroSent: 0,
    becameMaster: 0,
    releasedMaster: 0,
    lengthError: 0,
    ttlError: 0,
    versionError: 0,
    typeError: 0,
    checksumError: 0,
    invalidAuthType: 0,
    authTypeMismatch: 0,
    authFailure: 0,
    intervalMismatch: 0,
    addressListError: 0,
    castMismatch: 0,
    unicastSourceError: 0,
  };
}
