/**
 * The typed model of a keepalived.conf, as written by the user (defaults that keepalived applies
 * later are documented beside each field and applied by the consumers, so a reload can diff what
 * was written). Every element keeps its file:line for messages.
 */
import type { Loc } from './diagnostics';
import type { IpAddress, IpPrefix, IpRange } from './ip';

/** A keyword uvs accepts (keepalived knows it) but does not model in detail. */
export interface RawSetting {
  keyword: string;
  args: string[];
  loc: Loc;
}

/** A script with its arguments: keepalived splits the (usually quoted) string on spaces, single quotes group. */
export interface ConfigScript {
  /** The text as configured, e.g. "/usr/local/bin/vrrp.sh MASTER VI_1". */
  command: string;
  argv: string[];
  /** Optional "username [groupname]" after the script (keepalived 2.x). */
  user?: string;
  group?: string;
  loc: Loc;
}

export interface SmtpServer {
  host: string;
  port: number;
}

export interface GarpSettings {
  /** Seconds before the second burst of gratuitous ARPs after becoming master (keepalived default 5). */
  masterDelay?: number;
  /** Number of gratuitous ARPs per burst (default 5). */
  masterRepeat?: number;
  /** Seconds between refreshes while master (default 0 = off). */
  masterRefresh?: number;
  masterRefreshRepeat?: number;
  /** Seconds between gratuitous ARPs of one burst. */
  interval?: number;
  lowerPrioDelay?: number;
  lowerPrioRepeat?: number;
}

export interface GlobalDefs {
  routerId?: string;
  notificationEmail: string[];
  notificationEmailFrom?: string;
  smtpServer?: SmtpServer;
  smtpHeloName?: string;
  /** Seconds (default 30). */
  smtpConnectTimeout?: number;
  smtpAlert?: boolean;
  smtpAlertVrrp?: boolean;
  smtpAlertChecker?: boolean;
  vrrpVersion?: 2 | 3;
  garp: GarpSettings;
  /** Seconds between unsolicited neighbour advertisements (IPv6). */
  vrrpGnaInterval?: number;
  vrrpMcastGroup4?: IpAddress;
  vrrpMcastGroup6?: IpAddress;
  vrrpStrict: boolean;
  vrrpSkipCheckAdvAddr: boolean;
  /** vrrp_iptables [in_chain [out_chain]]; empty array when given without chains. */
  vrrpIptables?: string[];
  scriptUser?: { user: string; group?: string; loc: Loc };
  enableScriptSecurity: boolean;
  /** lvs_sync_daemon IF [INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group ADDR]: the
   *  connection-sync daemons (src/sync); a value left out is the kernel's default (id: the
   *  instance's virtual_router_id). */
  lvsSyncDaemon?: LvsSyncDaemon;
  /** Known keywords kept verbatim (net_namespace, max_auto_priority, …). */
  other: RawSetting[];
  loc?: Loc;
}

export interface VirtualIp {
  address: IpPrefix;
  broadcast?: string;
  dev?: string;
  scope?: string;
  label?: string;
  /** Remaining options (no_track, preferred_lft, home, …) kept verbatim. */
  options: string[];
  loc: Loc;
}

export interface RouteSpec {
  /** The words as written, for applying with iproute2 semantics later. */
  words: string[];
  destination?: IpPrefix;
  /** "blackhole", "unreachable", "prohibit", "throw" or undefined for a unicast route. */
  type?: string;
  via?: IpAddress;
  src?: IpAddress;
  dev?: string;
  table?: string;
  noTrack: boolean;
  loc: Loc;
}

export interface RuleSpec {
  words: string[];
  from?: IpPrefix;
  to?: IpPrefix;
  table?: string;
  preference?: number;
  loc: Loc;
}

export interface VrrpScript {
  name: string;
  script?: ConfigScript;
  /** Seconds between runs (default 1). */
  interval?: number;
  /** Seconds before a run counts as failed. */
  timeout?: number;
  /** Added to (or, with `reverse`, subtracted from) the priority; -253..253 (default 0). */
  weight?: number;
  weightReverse: boolean;
  rise?: number;
  fall?: number;
  user?: string;
  group?: string;
  initFail: boolean;
  other: RawSetting[];
  loc: Loc;
}

export interface VrrpTrackFile {
  name: string;
  file?: string;
  weight?: number;
  weightReverse: boolean;
  initFile?: string[];
  loc: Loc;
}

export interface TrackRef {
  name: string;
  weight?: number;
  reverse: boolean;
  loc: Loc;
}

export interface NotifyScripts {
  master?: ConfigScript;
  backup?: ConfigScript;
  fault?: ConfigScript;
  stop?: ConfigScript;
  deleted?: ConfigScript;
  /** `notify`: called on every transition with "INSTANCE|GROUP name state priority". */
  any?: ConfigScript;
}

export interface UnicastPeer {
  address: IpAddress;
  options: string[];
  loc: Loc;
}

export type VrrpState = 'MASTER' | 'BACKUP';

export interface VrrpInstance {
  name: string;
  state?: VrrpState;
  stateLoc?: Loc;
  interface?: string;
  interfaceLoc?: Loc;
  virtualRouterId?: number;
  /** 1-255, 255 = address owner (keepalived default 100). */
  priority?: number;
  /** Seconds, fractions allowed (default 1). */
  advertInt?: number;
  nopreempt: boolean;
  /** Seconds (0-1000). */
  preemptDelay?: number;
  authentication?: { type?: 'PASS' | 'AH'; pass?: string; loc: Loc };
  virtualIpaddress: VirtualIp[];
  virtualIpaddressExcluded: VirtualIp[];
  virtualRoutes: RouteSpec[];
  virtualRules: RuleSpec[];
  trackInterface: TrackRef[];
  trackScript: TrackRef[];
  trackFile: TrackRef[];
  unicastSrcIp?: IpAddress;
  unicastPeers: UnicastPeer[];
  /** Set when `unicast_peer {}` was written, even empty. */
  unicastPeerLoc?: Loc;
  mcastSrcIp?: IpAddress;
  version?: 2 | 3;
  garp: GarpSettings;
  smtpAlert?: boolean;
  notify: NotifyScripts;
  dontTrackPrimary: boolean;
  useVmac?: string;
  vmacXmitBase: boolean;
  strictMode?: boolean;
  lvsSyncDaemonInterface?: string;
  other: RawSetting[];
  loc: Loc;
}

export interface VrrpSyncGroup {
  name: string;
  group: { name: string; loc: Loc }[];
  notify: NotifyScripts;
  smtpAlert?: boolean;
  trackScript: TrackRef[];
  trackInterface: TrackRef[];
  other: RawSetting[];
  loc: Loc;
}

export type CheckerType = 'TCP_CHECK' | 'HTTP_GET' | 'SSL_GET' | 'MISC_CHECK' | 'SMTP_CHECK' | 'DNS_CHECK' | 'UDP_CHECK' | 'PING_CHECK' | 'FILE_CHECK' | 'BFD_CHECK';

export interface HttpUrl {
  path?: string;
  digest?: string;
  /** Accepted status codes: single codes and ranges "200-299" kept as [lo, hi] pairs (default 200-299). */
  statusCodes: [number, number][];
  virtualhost?: string;
  regex?: string;
  loc: Loc;
}

/** The connection part common to the network checkers (and a SMTP_CHECK `host {}` block). */
export interface CheckerEndpoint {
  connectIp?: IpAddress;
  connectPort?: number;
  bindto?: IpAddress;
  bindPort?: number;
  bindIf?: string;
  /** Seconds. */
  connectTimeout?: number;
  fwmark?: number;
}

export interface Checker extends CheckerEndpoint {
  type: CheckerType;
  retry?: number;
  /** Seconds. */
  delayBeforeRetry?: number;
  /** Seconds; the checker's own delay_loop overriding the virtual server's. */
  delayLoop?: number;
  warmup?: number;
  alpha?: boolean;
  /** HTTP_GET / SSL_GET */
  urls: HttpUrl[];
  virtualhost?: string;
  /** MISC_CHECK */
  miscPath?: ConfigScript;
  miscTimeout?: number;
  miscDynamic: boolean;
  /** SMTP_CHECK */
  heloName?: string;
  hosts: (CheckerEndpoint & { loc: Loc })[];
  /** DNS_CHECK */
  dnsType?: string;
  dnsName?: string;
  /** FILE_CHECK */
  trackFile?: string;
  other: RawSetting[];
  loc: Loc;
}

export interface RealServer {
  address: IpAddress;
  /** Absent for fwmark services, where the port comes from the packet. */
  port?: number;
  /** Default 1. */
  weight?: number;
  inhibitOnFailure: boolean;
  notifyUp?: ConfigScript;
  notifyDown?: ConfigScript;
  uthreshold?: number;
  lthreshold?: number;
  lvsMethod?: 'NAT' | 'DR' | 'TUN';
  smtpAlert?: boolean;
  checkers: Checker[];
  other: RawSetting[];
  loc: Loc;
}

export type VirtualServerKey =
  | { kind: 'ip'; address: IpAddress; port: number }
  | { kind: 'fwmark'; mark: number }
  | { kind: 'group'; name: string };

export interface VirtualServer {
  key: VirtualServerKey;
  /** Seconds (default 60). */
  delayLoop?: number;
  /** IPVS scheduler name (lb_algo / lvs_sched); keepalived's default is wlc. */
  scheduler?: string;
  schedulerLoc?: Loc;
  /** lb_kind / lvs_method; keepalived's default is NAT. */
  forwarding?: 'NAT' | 'DR' | 'TUN';
  forwardingLoc?: Loc;
  persistenceTimeout?: number;
  persistenceGranularity?: IpAddress;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  protocolLoc?: Loc;
  sorryServer?: { address: IpAddress; port?: number; loc: Loc };
  sorryServerInhibit: boolean;
  sorryServerLvsMethod?: 'NAT' | 'DR' | 'TUN';
  virtualhost?: string;
  alpha: boolean;
  omega: boolean;
  quorum?: number;
  quorumUp?: ConfigScript;
  quorumDown?: ConfigScript;
  hysteresis?: number;
  ops: boolean;
  haSuspend: boolean;
  retry?: number;
  delayBeforeRetry?: number;
  connectTimeout?: number;
  warmup?: number;
  smtpAlert?: boolean;
  schedulerFlags: string[];
  realServers: RealServer[];
  other: RawSetting[];
  loc: Loc;
}

export type VirtualServerGroupEntry =
  | { kind: 'range'; range: IpRange; port?: number; loc: Loc }
  | { kind: 'fwmark'; mark: number; loc: Loc };

export interface VirtualServerGroup {
  name: string;
  entries: VirtualServerGroupEntry[];
  loc: Loc;
}

/** Where the configuration asks for IPv6; uvs parses it but forwards IPv4 only for now. */
export interface Ipv6Use {
  what: string;
  loc: Loc;
}

export interface KeepalivedConfig {
  /** The main file and every included file, in reading order. */
  files: string[];
  global: GlobalDefs;
  staticIpaddress: VirtualIp[];
  staticRoutes: RouteSpec[];
  staticRules: RuleSpec[];
  vrrpScripts: VrrpScript[];
  vrrpTrackFiles: VrrpTrackFile[];
  vrrpInstances: VrrpInstance[];
  vrrpSyncGroups: VrrpSyncGroup[];
  virtualServers: VirtualServer[];
  virtualServerGroups: VirtualServerGroup[];
  /** Top-level blocks keepalived knows that uvs keeps but does not run (bfd_instance, linkbeat_interfaces, …). */
  otherBlocks: RawSetting[];
  ipv6Uses: Ipv6Use[];
}

export interface LvsSyncDaemon {
  interface: string;
  /** The VRRP instance whose state the daemons follow (master → sync master, otherwise sync
   *  backup); absent: master and backup run together. */
  vrrpInstance?: string;
  syncId?: number;
  maxlen?: number;
  port?: number;
  ttl?: number;
  group?: string;
  /** Set by a vrrp_instance's deprecated lvs_sync_daemon_interface. */
  fromInstance?: boolean;
  loc: Loc;
}
