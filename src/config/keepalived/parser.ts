/**
 * Statements → typed model (model.ts). Pure: files come through a ConfigReader, problems go to the
 * returned diagnostics with file:line. The keyword sets follow keepalived.conf(5) of keepalived 2.2;
 * a keyword keepalived does not know in that block is reported like keepalived reports it
 * ("Unknown keyword 'xxx'", which makes `keepalived -t` fail), and a keyword keepalived knows but
 * uvs does not model is kept verbatim in `other` without complaint.
 */
import { Diagnostic, DiagnosticSink, Loc } from './diagnostics';
import { ConfigReader } from './reader';
import { buildTree, preprocess, Statement } from './lexer';
import { IpAddress, parseIp, parseIpRange, parsePort, parsePrefix } from './ip';
import {
  Checker, CheckerEndpoint, CheckerType, GarpSettings, GlobalDefs, HttpUrl, KeepalivedConfig, LvsSyncDaemon, NotifyScripts, RawSetting, RealServer,
  RouteSpec, RuleSpec, ConfigScript, TrackRef, VirtualIp, VirtualServer, VirtualServerGroup, VrrpInstance, VrrpScript, VrrpSyncGroup,
  VrrpTrackFile,
} from './model';

export interface ParseOptions {
  /** keepalived's -i config id, matched by @id lines; keepalived defaults it to the host name up to the first dot. */
  configId?: string;
  /** Source of ${_RANDOM}, for deterministic tests. */
  random?: () => number;
}

export interface ParseResult {
  model: KeepalivedConfig;
  diagnostics: Diagnostic[];
}

type Handler<T> = (s: Statement, target: T, p: Parser) => void;

const CHECKER_TYPES: readonly CheckerType[] = ['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'SMTP_CHECK', 'DNS_CHECK', 'UDP_CHECK', 'PING_CHECK', 'FILE_CHECK', 'BFD_CHECK'];

/** Splits a script command line into argv: spaces separate, single quotes group (keepalived.conf(5), "Quoted strings"). */
export function splitScriptArgs(command: string): string[] {
  const argv: string[] = [];
  let cur = '';
  let inWord = false;
  let inQuote = false;
  for (const c of command) {
    if (inQuote) {
      if (c === "'") inQuote = false;
      else cur += c;
    } else if (c === "'") {
      inQuote = true;
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) argv.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) argv.push(cur);
  return argv;
}

/** Helpers shared by the block handlers: argument checks with keepalived-like messages. */
export class Parser {
  constructor(readonly sink: DiagnosticSink) {}

  unknown(s: Statement): void {
    this.sink.warnStrict(s.loc, 'unknown-keyword', `Unknown keyword '${s.keyword}'`);
  }

  raw(s: Statement): RawSetting {
    return { keyword: s.keyword, args: s.args.slice(), loc: s.loc };
  }

  /** The statement's first argument, or an error naming the keyword when it is missing. */
  arg(s: Statement, what = 'a value'): string | null {
    const first = s.args[0];
    if (first === undefined) {
      this.sink.error(s.loc, 'missing-argument', `'${s.keyword}' needs ${what}`);
      return null;
    }
    return first;
  }

  integer(s: Statement, text: string | undefined, min: number, max: number): number | undefined {
    if (text === undefined) {
      this.sink.error(s.loc, 'missing-argument', `'${s.keyword}' needs a number`);
      return undefined;
    }
    if (!/^[-+]?\d+$/.test(text)) {
      this.sink.error(s.loc, 'invalid-number', `${s.keyword}: invalid number '${text}'`);
      return undefined;
    }
    const n = Number(text);
    if (n < min || n > max) {
      this.sink.error(s.loc, 'number-out-of-range', `${s.keyword}: number '${text}' outside range [${min}, ${max}]`);
      return undefined;
    }
    return n;
  }

  /** A time in seconds; keepalived accepts decimals (microsecond resolution) for timers. */
  seconds(s: Statement, text: string | undefined, min: number, max: number): number | undefined {
    if (text === undefined) {
      this.sink.error(s.loc, 'missing-argument', `'${s.keyword}' needs a time in seconds`);
      return undefined;
    }
    if (!/^\d+(\.\d{1,6})?$|^\.\d{1,6}$/.test(text)) {
      this.sink.error(s.loc, 'invalid-number', `${s.keyword}: invalid time '${text}' (seconds, up to 6 decimals)`);
      return undefined;
    }
    const n = Number(text);
    if (n < min || n > max) {
      this.sink.error(s.loc, 'number-out-of-range', `${s.keyword}: time '${text}' outside range [${min}, ${max}]`);
      return undefined;
    }
    return n;
  }

  /** Bare keyword → true; otherwise keepalived's <BOOL>: on|off|true|false|yes|no. */
  bool(s: Statement): boolean {
    const first = s.args[0];
    if (first === undefined) return true;
    const v = first.toLowerCase();
    if (v === 'on' || v === 'true' || v === 'yes') return true;
    if (v === 'off' || v === 'false' || v === 'no') return false;
    this.sink.error(s.loc, 'invalid-bool', `${s.keyword}: invalid boolean '${first}' (on|off|true|false|yes|no)`);
    return true;
  }

  ip(s: Statement, text: string | undefined, what: string): IpAddress | undefined {
    if (text === undefined) {
      this.sink.error(s.loc, 'missing-argument', `'${s.keyword}' needs ${what}`);
      return undefined;
    }
    const ip = parseIp(text);
    if (!ip) this.sink.error(s.loc, 'invalid-address', `${s.keyword}: invalid ${what} '${text}'`);
    return ip ?? undefined;
  }

  /**
   * A script: for notify-like keywords keepalived takes the (quoted) command as one word followed by
   * an optional user and group; for vrrp_script's `script` and misc_path all words form the command.
   */
  script(s: Statement, withUser: boolean): ConfigScript | undefined {
    const first = s.args[0];
    if (first === undefined) {
      this.sink.error(s.loc, 'missing-argument', `'${s.keyword}' needs a script`);
      return undefined;
    }
    const command = withUser ? first : s.args.join(' ');
    const spec: ConfigScript = { command, argv: splitScriptArgs(command), loc: s.loc };
    if (withUser) {
      if (s.args.length > 3) this.sink.warnStrict(s.loc, 'extra-arguments', `${s.keyword}: too many arguments; quote the script and its parameters`);
      if (s.args.length > 1) spec.user = s.args[1];
      if (s.args.length > 2) spec.group = s.args[2];
    }
    return spec;
  }

  /** Runs `handlers` over a block's statements; statements that open an unexpected block are errors. */
  block<T>(stmts: Statement[] | null, target: T, handlers: Record<string, Handler<T>>, known: ReadonlySet<string>, other?: RawSetting[]): void {
    if (!stmts) return;
    for (const s of stmts) {
      const h = Object.prototype.hasOwnProperty.call(handlers, s.keyword) ? handlers[s.keyword] : undefined;
      if (h) h(s, target, this);
      else if (known.has(s.keyword)) other?.push(this.raw(s));
      else this.unknown(s);
    }
  }

  /** The statement must open a block; reports when it does not. */
  needBlock(s: Statement): Statement[] {
    if (s.block === null) {
      this.sink.error(s.loc, 'missing-block', `'${s.keyword}' must be followed by a '{ … }' block`);
      return [];
    }
    return s.block;
  }
}

// ---------------------------------------------------------------------------------------------
// global_defs

const GLOBAL_KNOWN = new Set(
  ('net_namespace net_namespace_ipvs namespace_with_ipsets instance use_pid_dir linkbeat_use_polling child_wait_time ' +
    'tmp_config_directory config_save_dir process_names process_name vrrp_process_name checker_process_name bfd_process_name ' +
    'startup_script startup_script_timeout shutdown_script shutdown_script_timeout smtp_alert_checker no_email_faults ' +
    'default_interface disable_local_igmp dynamic_interfaces enable_dbus dbus_service_name enable_snmp_checker enable_snmp_rfc ' +
    'enable_snmp_rfcv2 enable_snmp_rfcv3 enable_snmp_vrrp enable_snmp_keepalived enable_traps snmp_socket checker_log_all_failures ' +
    'fifo_write_vrrp_states_on_reload include_check log_unknown_vrids lvs_flush lvs_flush_on_stop lvs_netlink_cmd_rcv_bufs ' +
    'lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs lvs_netlink_monitor_rcv_bufs_force lvs_notify_fifo lvs_notify_fifo_script ' +
    'lvs_timeouts max_auto_priority min_auto_priority_delay nftables nftables_counters nftables_ifindex nftables_ipvs ' +
    'nftables_ipvs_priority nftables_ipvs_start_fwmark nftables_priority no_checker_emails notify_fifo notify_fifo_script ' +
    'process_monitor_rcv_bufs process_monitor_rcv_bufs_force random_seed reload_check_config reload_file reload_repeat reload_time_file ' +
    'rs_init_notifies umask vmac_addr_prefix vmac_prefix vrrp_check_unicast_src vrrp_cpu_affinity vrrp_down_timer_adverts ' +
    'vrrp_garp_extra_if vrrp_higher_prio_send_advert vrrp_ipsets vrrp_lower_prio_no_advert vrrp_min_garp vrrp_netlink_cmd_rcv_bufs ' +
    'vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs vrrp_netlink_monitor_rcv_bufs_force vrrp_no_swap vrrp_notify_fifo ' +
    'vrrp_notify_fifo_script vrrp_notify_priority_changes vrrp_priority vrrp_rlimit_rttime vrrp_rt_priority vrrp_rx_bufs_multiplier ' +
    'vrrp_rx_bufs_policy vrrp_startup_delay checker_cpu_affinity checker_no_swap checker_priority checker_rlimit_rttime checker_rt_priority ' +
    'bfd_cpu_affinity bfd_no_swap bfd_priority bfd_rlimit_rttime bfd_rt_priority data_use_instance vrrp_garp_lower_prio_no_advert ' +
    'lvs_id lvs_sync_daemon_interface').split(/\s+/),
);

function garpHandlers<T>(prefix: string, get: (t: T) => GarpSettings): Record<string, Handler<T>> {
  return {
    [`${prefix}garp_master_delay`]: (s, t, p) => (get(t).masterDelay = p.integer(s, s.args[0], 0, 1000)),
    [`${prefix}garp_master_repeat`]: (s, t, p) => (get(t).masterRepeat = p.integer(s, s.args[0], 1, 1000)),
    [`${prefix}garp_master_refresh`]: (s, t, p) => (get(t).masterRefresh = p.integer(s, s.args[0], 0, 1000000)),
    [`${prefix}garp_master_refresh_repeat`]: (s, t, p) => (get(t).masterRefreshRepeat = p.integer(s, s.args[0], 1, 1000)),
    [`${prefix}garp_lower_prio_delay`]: (s, t, p) => (get(t).lowerPrioDelay = p.integer(s, s.args[0], 0, 1000)),
    [`${prefix}garp_lower_prio_repeat`]: (s, t, p) => (get(t).lowerPrioRepeat = p.integer(s, s.args[0], 0, 1000)),
  };
}

const GLOBAL_HANDLERS: Record<string, Handler<GlobalDefs>> = {
  router_id: (s, g, p) => {
    const v = p.arg(s, 'a name');
    if (v !== null) g.routerId = v;
  },
  notification_email: (s, g, p) => {
    for (const e of p.needBlock(s)) g.notificationEmail.push([e.keyword, ...e.args].join(' '));
  },
  notification_email_from: (s, g, p) => {
    const v = p.arg(s, 'an email address');
    if (v !== null) g.notificationEmailFrom = v;
  },
  smtp_server: (s, g, p) => {
    const host = p.arg(s, 'an address or host name');
    if (host === null) return;
    let port = 25;
    const portText = s.args[1];
    if (portText !== undefined) {
      const pp = parsePort(portText);
      if (pp === null) p.sink.error(s.loc, 'invalid-port', `smtp_server: invalid port '${portText}'`);
      else port = pp;
    }
    g.smtpServer = { host, port };
  },
  smtp_helo_name: (s, g, p) => {
    const v = p.arg(s, 'a name');
    if (v !== null) g.smtpHeloName = v;
  },
  smtp_connect_timeout: (s, g, p) => (g.smtpConnectTimeout = p.seconds(s, s.args[0], 0, 86400)),
  smtp_alert: (s, g, p) => (g.smtpAlert = p.bool(s)),
  smtp_alert_vrrp: (s, g, p) => (g.smtpAlertVrrp = p.bool(s)),
  smtp_alert_checker: (s, g, p) => (g.smtpAlertChecker = p.bool(s)),
  vrrp_version: (s, g, p) => {
    const v = p.integer(s, s.args[0], 2, 3);
    if (v !== undefined) g.vrrpVersion = v as 2 | 3;
  },
  ...garpHandlers<GlobalDefs>('vrrp_', (g) => g.garp),
  vrrp_garp_interval: (s, g, p) => (g.garp.interval = garpInterval(s, p, g.garp.interval)),
  vrrp_gna_interval: (s, g, p) => (g.vrrpGnaInterval = garpInterval(s, p, g.vrrpGnaInterval)),
  vrrp_mcast_group4: (s, g, p) => {
    const ip = p.ip(s, s.args[0], 'IPv4 multicast address');
    if (ip && (ip.family !== 4 || !isMulticast(ip))) p.sink.error(s.loc, 'invalid-address', `vrrp_mcast_group4: '${ip.text}' is not an IPv4 multicast address`);
    else if (ip) g.vrrpMcastGroup4 = ip;
  },
  vrrp_mcast_group6: (s, g, p) => {
    const ip = p.ip(s, s.args[0], 'IPv6 multicast address');
    if (ip && (ip.family !== 6 || !isMulticast(ip))) p.sink.error(s.loc, 'invalid-address', `vrrp_mcast_group6: '${ip.text}' is not an IPv6 multicast address`);
    else if (ip) g.vrrpMcastGroup6 = ip;
  },
  vrrp_strict: (_s, g) => void (g.vrrpStrict = true),
  vrrp_skip_check_adv_addr: (s, g, p) => (g.vrrpSkipCheckAdvAddr = p.bool(s)),
  vrrp_iptables: (s, g, p) => {
    g.vrrpIptables = s.args.slice();
    // keepalived 2.2 built with nftables and without iptables (Debian's 2.2.7), global_parser.c
    // vrrp_iptables_handler, text verbatim (its unbalanced quote included).
    p.sink.fixup(s.loc, 'iptables-nftables', "iptables not supported, using nftables instead. Please replace 'vrrp_iptables and 'vrrp_ipsets' with 'nftables' config option");
  },
  script_user: (s, g, p) => {
    const user = p.arg(s, 'a user name');
    if (user === null) return;
    g.scriptUser = { user, loc: s.loc };
    if (s.args.length > 1) g.scriptUser.group = s.args[1];
  },
  enable_script_security: (s, g, p) => (g.enableScriptSecurity = p.bool(s)),
  lvs_sync_daemon: (s, g, p) => parseLvsSyncDaemon(s, g, p),
};

const LVS_SYNCD_OPTIONS = new Set(['id', 'maxlen', 'port', 'ttl', 'group', 'inst']);

/**
 * keepalived 2.2's lvs_syncd_handler: `lvs_sync_daemon IF [INSTANCE] [id N] [maxlen N] [port N]
 * [ttl N] [group ADDR]` (also `inst INSTANCE`, and a bare syncid after the instance, which
 * keepalived accepts with a request to write "id"). A bad value is reported with keepalived's
 * text and left at its default, as keepalived does.
 */
function parseLvsSyncDaemon(s: Statement, g: GlobalDefs, p: Parser): void {
  if (g.lvsSyncDaemon) {
    p.sink.warnStrict(s.loc, 'lvs-syncd-twice', `lvs_sync_daemon has already been specified as ${g.lvsSyncDaemon.interface} ${g.lvsSyncDaemon.vrrpInstance ?? ''} - ignoring`);
    return;
  }
  const iface = s.args[0];
  if (iface === undefined) {
    p.sink.warnStrict(s.loc, 'lvs-syncd-interface', 'lvs_sync_daemon requires interface');
    return;
  }
  if (iface.length >= 16) {
    p.sink.warnStrict(s.loc, 'lvs-syncd-interface', `lvs_sync_daemon interface name '${iface}' too long - ignoring`);
    return;
  }
  const d: LvsSyncDaemon = { interface: iface, loc: s.loc };
  let i = 1;
  if (s.args[1] !== undefined && !LVS_SYNCD_OPTIONS.has(s.args[1])) {
    d.vrrpInstance = s.args[1];
    i = 2;
    if (s.args[2] !== undefined && /^\d/.test(s.args[2])) {
      p.sink.warnStrict(s.loc, 'lvs-syncd-id', 'Please use keyword "id" before lvs_sync_daemon syncid value');
      const v = unsignedIn(s.args[2], 0, 255);
      if (v === null) p.sink.warnStrict(s.loc, 'lvs-syncd-id', `Invalid syncid (${s.args[2]}) - defaulting to vrid`);
      else d.syncId = v;
      i = 3;
    }
  }
  const ranges: Record<string, [keyof LvsSyncDaemon, number, number, string]> = {
    id: ['syncId', 0, 255, 'Invalid syncid (%s) - defaulting to vrid'],
    maxlen: ['maxlen', 0, 65535 - 20 - 8, 'Invalid lvs_sync_daemon maxlen (%s) - ignoring'],
    port: ['port', 0, 65535, 'Invalid lvs_sync_daemon port (%s) - ignoring'],
    ttl: ['ttl', 0, 255, 'Invalid lvs_sync_daemon ttl (%s) - ignoring'],
  };
  for (; i < s.args.length; i++) {
    const key = s.args[i]!;
    const value = s.args[i + 1];
    if (!LVS_SYNCD_OPTIONS.has(key)) {
      p.sink.warnStrict(s.loc, 'lvs-syncd-option', `Unknown option ${key} specified for lvs_sync_daemon`);
      continue;
    }
    if (value === undefined) {
      p.sink.warnStrict(s.loc, 'lvs-syncd-option', key === 'id' ? 'No value specified for lvs_sync_daemon id, defaulting to vrid' : `No value specified for lvs_sync_daemon ${key} - ignoring`);
      continue;
    }
    i++;
    if (key === 'inst') {
      if (d.vrrpInstance !== undefined) p.sink.warnStrict(s.loc, 'lvs-syncd-inst', `lvs_sync_daemon vrrp instance has already been specified as ${d.vrrpInstance} - ignoring`);
      else d.vrrpInstance = value;
    } else if (key === 'group') {
      const ip = parseIp(value);
      if (!ip) p.sink.warnStrict(s.loc, 'lvs-syncd-group', `Invalid lvs_sync_daemon group (${value}) - ignoring`);
      else if (!isMulticast(ip)) p.sink.warnStrict(s.loc, 'lvs-syncd-group', `lvs_sync_daemon group address ${value} is not multicast - ignoring`);
      else if (ip.family !== 4) p.sink.note(s.loc, 'lvs-syncd-group', `lvs_sync_daemon group ${value}: uvs syncs over IPv4 only - ignoring`);
      else d.group = ip.text;
    } else {
      const [field, min, max, message] = ranges[key]!;
      const v = unsignedIn(value, min, max);
      if (v === null) p.sink.warnStrict(s.loc, `lvs-syncd-${key}`, message.replace('%s', value));
      else (d as unknown as Record<string, number>)[field] = v;
    }
  }
  g.lvsSyncDaemon = d;
}

/** read_unsigned_strvec: a whole decimal number in min..max, else null. */
function unsignedIn(text: string, min: number, max: number): number | null {
  if (!/^\d+$/.test(text)) return null;
  const v = Number(text);
  return v >= min && v <= max ? v : null;
}

function isMulticast(ip: IpAddress): boolean {
  if (ip.family === 4) {
    const first = Number(ip.text.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return ip.text.toLowerCase().startsWith('ff');
}

// ---------------------------------------------------------------------------------------------
// addresses, routes, rules (virtual_ipaddress, static_ipaddress, virtual_routes, …)

/** Options of an address line besides brd/dev/scope/label (keepalived.conf(5), virtual_ipaddress). */
const VIP_FLAGS = new Set(['no_track', 'home', 'nodad', '-nodad', 'noprefixroute', 'autojoin', 'mngtmpaddr']);
const VIP_VALUE_OPTIONS = new Set(['preferred_lft', 'peer', 'track_group']);

/** "ADDR[/LEN] [brd X] [dev IF] [scope S] [label L] [options…]" (keepalived.conf(5), virtual_ipaddress). */
function parseVirtualIp(s: Statement, p: Parser, ipv6Uses: KeepalivedConfig['ipv6Uses'], block: string): VirtualIp | null {
  const words = [s.keyword, ...s.args];
  const address = parsePrefix(s.keyword);
  if (!address) {
    p.sink.error(s.loc, 'invalid-address', `${block}: invalid IP address '${s.keyword}'`);
    return null;
  }
  if (address.family === 6) ipv6Uses.push({ what: `${block} ${s.keyword}`, loc: s.loc });
  const vip: VirtualIp = { address, options: [], loc: s.loc };
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!; // i < words.length
    const takesValue = w === 'brd' || w === 'broadcast' || w === 'dev' || w === 'scope' || w === 'label';
    if (takesValue || VIP_VALUE_OPTIONS.has(w)) {
      const value = words[++i];
      if (value === undefined) {
        // keepalived drops the address then (crafted/vip-dev-no-value.conf).
        p.sink.error(s.loc, 'missing-argument', `${block}: No ${w} parameter specified for ${s.keyword}`);
        return null;
      }
      if (w === 'brd' || w === 'broadcast') vip.broadcast = value;
      else if (w === 'dev') vip.dev = value;
      else if (w === 'scope') {
        if (!/^(site|link|host|nowhere|global|\d+)$/.test(value)) p.sink.warnStrict(s.loc, 'invalid-scope', `${block}: invalid scope '${value}'`);
        vip.scope = value;
      } else if (w === 'label') vip.label = value;
      else vip.options.push(w, value);
    } else if (VIP_FLAGS.has(w)) vip.options.push(w);
    else p.sink.warnStrict(s.loc, 'unknown-keyword', `${block}: Unknown configuration entry '${w}' for ip address - ignoring`);
  }
  return vip;
}

const ROUTE_TYPES = new Set(['blackhole', 'unreachable', 'prohibit', 'throw', 'local', 'broadcast', 'multicast', 'anycast', 'nat', 'unicast']);
const ROUTE_VALUE_WORDS = new Set(['table', 'metric', 'preference', 'priority', 'protocol', 'scope', 'mtu', 'advmss', 'rtt', 'rttvar', 'reordering', 'window', 'cwnd', 'ssthresh', 'realms', 'rto_min', 'initcwnd', 'initrwnd', 'features', 'quickack', 'congctl', 'pref', 'fastopen_no_cookie', 'tos', 'dsfield', 'weight', 'hoplimit', 'expires', 'onlink', 'nexthop', 'encap']);

/** An iproute2-like route line; keepalived's deprecated "gw" and "or" are accepted with its warnings. */
function parseRoute(s: Statement, p: Parser, ipv6Uses: KeepalivedConfig['ipv6Uses'], block: string): RouteSpec {
  const words = [s.keyword, ...s.args];
  const r: RouteSpec = { words, noTrack: false, loc: s.loc };
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!; // i < words.length
    const next = words[i + 1];
    if (w === 'src' || w === 'via' || w === 'gw' || w === 'or') {
      if (w === 'gw') p.sink.warnStrict(s.loc, 'deprecated', `"gw" for routes is deprecated. Please use "via"`);
      if (w === 'or') p.sink.warnStrict(s.loc, 'deprecated', `"or" for routes is deprecated. Please use "nexthop"`);
      const ip = next === undefined ? null : parseIp(next);
      if (!ip) p.sink.error(s.loc, 'invalid-address', `${block}: '${w}' needs an IP address, got '${next ?? ''}'`);
      else if (w === 'src') r.src = ip;
      else if (w !== 'or') r.via = ip;
      i++;
    } else if (w === 'dev' || w === 'oif') {
      if (next === undefined) p.sink.error(s.loc, 'missing-argument', `${block}: '${w}' needs an interface`);
      else r.dev = next;
      i++;
    } else if (w === 'table') {
      r.table = next;
      i++;
    } else if (w === 'no_track') r.noTrack = true;
    else if (ROUTE_TYPES.has(w) && r.destination === undefined && r.type === undefined) r.type = w;
    else if (ROUTE_VALUE_WORDS.has(w)) i++;
    else if (r.destination === undefined) {
      const dst = w === 'default' ? parsePrefix('0.0.0.0/0') : parsePrefix(w);
      if (!dst) p.sink.error(s.loc, 'invalid-address', `${block}: invalid route destination '${w}'`);
      else {
        r.destination = dst;
        if (dst.family === 6) ipv6Uses.push({ what: `${block} ${w}`, loc: s.loc });
      }
    }
  }
  if (!r.destination) p.sink.error(s.loc, 'invalid-route', `${block}: route has no destination`);
  return r;
}

function parseRule(s: Statement, p: Parser, block: string): RuleSpec {
  const words = [s.keyword, ...s.args];
  const r: RuleSpec = { words, loc: s.loc };
  let badAddress = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    const next = words[i + 1];
    if (w === 'from' || w === 'to') {
      const pref = next === undefined ? null : next === 'all' ? parsePrefix('0.0.0.0/0') : parsePrefix(next);
      if (!pref) {
        p.sink.error(s.loc, 'invalid-address', `${block}: invalid rule ${w} address '${next ?? ''}'`);
        badAddress = true;
      } else if (w === 'from') r.from = pref;
      else r.to = pref;
      i++;
    } else if (w === 'table' || w === 'lookup') {
      r.table = next;
      i++;
    } else if (w === 'preference' || w === 'pref' || w === 'priority') {
      r.preference = p.integer(s, next, 0, 0xffffffff);
      i++;
    }
  }
  // keepalived drops a rule with a bad address before it looks at the preference.
  if (r.preference === undefined && !badAddress) p.sink.warnStrict(s.loc, 'rule-no-preference', `${block}: rule has no preference specified; keepalived picks one, which is probably not what you want`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// vrrp_script, vrrp_track_file

/** UINT_MAX / TIMER_HZ: the largest whole-second interval keepalived can hold in microseconds. */
const MAX_SCRIPT_SECONDS = 4294;

function scriptSeconds(s: Statement, v: VrrpScript, p: Parser, what: string): number | undefined {
  const text = s.args[0] ?? '';
  if (!/^\d+$/.test(text) || Number(text) > MAX_SCRIPT_SECONDS) {
    p.sink.error(s.loc, 'invalid-number', `(${v.name}): vrrp script ${what} '${text}' must be between 1 and ${MAX_SCRIPT_SECONDS} (whole seconds) - ignoring`);
    return undefined;
  }
  if (Number(text) === 0) {
    p.sink.warnStrict(s.loc, 'number-out-of-range', `(${v.name}): vrrp script ${what} must be greater than 0, setting to 1`);
    return 1;
  }
  return Number(text);
}

const SCRIPT_HANDLERS: Record<string, Handler<VrrpScript>> = {
  script: (s, v, p) => (v.script = p.script(s, false)),
  // keepalived reads these two as whole seconds (vrrp_parser.c), unlike most other timers.
  interval: (s, v, p) => (v.interval = scriptSeconds(s, v, p, 'interval')),
  timeout: (s, v, p) => (v.timeout = scriptSeconds(s, v, p, 'timeout')),
  weight: (s, v, p) => {
    v.weight = p.integer(s, s.args[0], -253, 253);
    if (s.args[1] === 'reverse') v.weightReverse = true;
    else if (s.args.length > 1) p.sink.warnStrict(s.loc, 'extra-arguments', `weight: unknown option '${s.args[1]}'`);
  },
  rise: (s, v, p) => (v.rise = p.integer(s, s.args[0], 1, 0x7fffffff)),
  fall: (s, v, p) => (v.fall = p.integer(s, s.args[0], 1, 0x7fffffff)),
  user: (s, v, p) => {
    const u = p.arg(s, 'a user name');
    if (u !== null) v.user = u;
    if (s.args.length > 1) v.group = s.args[1];
  },
  init_fail: (_s, v) => void (v.initFail = true),
};

const TRACK_FILE_HANDLERS: Record<string, Handler<VrrpTrackFile>> = {
  file: (s, t, p) => {
    const f = p.arg(s, 'a file name');
    if (f !== null) t.file = f;
  },
  weight: (s, t, p) => {
    t.weight = p.integer(s, s.args[0], -254, 254);
    if (s.args[1] === 'reverse') t.weightReverse = true;
  },
  init_file: (s, t) => (t.initFile = s.args.slice()),
};

// ---------------------------------------------------------------------------------------------
// vrrp_instance, vrrp_sync_group

/**
 * vrrp_garp_interval / vrrp_gna_interval: keepalived reads a time of 1 µs up to UINT_MAX µs
 * (read_double_strvec with 1/TIMER_HZ .. UINT_MAX/TIMER_HZ); anything else, 0 included, is
 * "'X' is invalid" and the setting keeps its previous value (default: no delay).
 */
function garpInterval(s: Statement, p: Parser, previous: number | undefined): number | undefined {
  const text = s.args[0];
  const n = text !== undefined && /^\d+(\.\d+)?$|^\.\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1e-6 && n <= 4294.967295)) {
    p.sink.fixup(s.loc, 'garp-interval-invalid', `${s.keyword} '${text ?? ''}' is invalid`);
    return previous;
  }
  return n;
}

function trackRefs(s: Statement, p: Parser, min: number, max: number): TrackRef[] {
  const out: TrackRef[] = [];
  for (const e of p.needBlock(s)) {
    const ref: TrackRef = { name: e.keyword, reverse: false, loc: e.loc };
    for (let i = 0; i < e.args.length; i++) {
      if (e.args[i] === 'weight') {
        ref.weight = p.integer(e, e.args[i + 1], min, max);
        i++;
      } else if (e.args[i] === 'reverse') ref.reverse = true;
      else p.sink.warnStrict(e.loc, 'unknown-keyword', `${s.keyword}: unknown option '${e.args[i]}' for '${e.keyword}'`);
    }
    out.push(ref);
  }
  return out;
}

function notifyHandlers<T extends { notify: NotifyScripts }>(): Record<string, Handler<T>> {
  return {
    notify_master: (s, t, p) => (t.notify.master = p.script(s, true)),
    notify_backup: (s, t, p) => (t.notify.backup = p.script(s, true)),
    notify_fault: (s, t, p) => (t.notify.fault = p.script(s, true)),
    notify_stop: (s, t, p) => (t.notify.stop = p.script(s, true)),
    notify_deleted: (s, t, p) => (t.notify.deleted = p.script(s, true)),
    notify: (s, t, p) => (t.notify.any = p.script(s, true)),
  };
}

const INSTANCE_KNOWN = new Set(
  ('accept no_accept check_unicast_src debug down_timer_adverts garp_extra_if higher_prio_send_advert kernel_rx_buf_size ' +
    'linkbeat_use_polling lower_prio_no_advert mcast_dst_ip native_ipv6 notify_master_rx_lower_pri notify_priority_changes ' +
    'old_unicast_checksum preempt promote_secondaries skip_check_adv_addr track_bfd track_process track_src_ip ' +
    'unicast_fault_no_peer unicast_ttl use_ipvlan use_vmac_addr vrf').split(/\s+/),
);

function makeInstance(name: string, loc: Loc): VrrpInstance {
  return {
    name, nopreempt: false, virtualIpaddress: [], virtualIpaddressExcluded: [], virtualRoutes: [], virtualRules: [], trackInterface: [],
    trackScript: [], trackFile: [], unicastPeers: [], garp: {}, notify: {}, dontTrackPrimary: false, vmacXmitBase: false, other: [], loc,
  };
}

function instanceHandlers(model: KeepalivedConfig): Record<string, Handler<VrrpInstance>> {
  const v6 = model.ipv6Uses;
  return {
    state: (s, v, p) => {
      const st = p.arg(s, 'MASTER or BACKUP');
      if (st === 'MASTER' || st === 'BACKUP') {
        v.state = st;
        v.stateLoc = s.loc;
      } else if (st !== null) p.sink.error(s.loc, 'invalid-state', `(${v.name}) unknown state '${st}', must be MASTER or BACKUP`);
    },
    interface: (s, v, p) => {
      const i = p.arg(s, 'an interface name');
      if (i !== null) {
        v.interface = i;
        v.interfaceLoc = s.loc;
      }
    },
    virtual_router_id: (s, v, p) => {
      const n = p.integer(s, s.args[0], 1, 255);
      if (n === undefined) p.sink.error(s.loc, 'invalid-vrid', `(${v.name}): VRID '${s.args[0] ?? ''}' not valid - must be between 1 & 255`);
      else v.virtualRouterId = n;
    },
    priority: (s, v, p) => {
      const n = p.integer(s, s.args[0], 1, 255);
      if (n === undefined) p.sink.error(s.loc, 'invalid-priority', `(${v.name}) Priority not valid! must be between 1 & 255`);
      else v.priority = n;
    },
    advert_int: (s, v, p) => {
      const t = p.seconds(s, s.args[0], 0.01, 255);
      if (t !== undefined) v.advertInt = t;
    },
    nopreempt: (_s, v) => void (v.nopreempt = true),
    preempt_delay: (s, v, p) => (v.preemptDelay = p.seconds(s, s.args[0], 0, 1000)),
    authentication: (s, v, p) => {
      const auth: NonNullable<VrrpInstance['authentication']> = { loc: s.loc };
      v.authentication = auth;
      p.block(p.needBlock(s), auth, {
        auth_type: (a, t, pp) => {
          const ty = pp.arg(a, 'PASS or AH');
          if (ty === 'PASS' || ty === 'AH') t.type = ty;
          else if (ty !== null) pp.sink.error(a.loc, 'invalid-auth-type', `(${v.name}) unknown authentication type '${ty}', must be PASS or AH`);
        },
        auth_pass: (a, t, pp) => {
          const pw = pp.arg(a, 'a password');
          if (pw === null) return;
          // VRRPv2 carries 8 octets of password (RFC 2338 §5.3.10); keepalived truncates longer ones.
          if (Buffer.byteLength(pw) > 8) pp.sink.warnStrict(a.loc, 'auth-pass-truncated', `(${v.name}) Truncating auth_pass to 8 characters`);
          t.pass = Buffer.from(pw).subarray(0, 8).toString();
        },
      }, new Set());
    },
    virtual_ipaddress: (s, v, p) => {
      for (const e of p.needBlock(s)) {
        const vip = parseVirtualIp(e, p, v6, 'virtual_ipaddress');
        if (vip) v.virtualIpaddress.push(vip);
      }
    },
    virtual_ipaddress_excluded: (s, v, p) => {
      for (const e of p.needBlock(s)) {
        const vip = parseVirtualIp(e, p, v6, 'virtual_ipaddress_excluded');
        if (vip) v.virtualIpaddressExcluded.push(vip);
      }
    },
    virtual_routes: (s, v, p) => {
      for (const e of p.needBlock(s)) v.virtualRoutes.push(parseRoute(e, p, v6, 'virtual_routes'));
    },
    virtual_rules: (s, v, p) => {
      for (const e of p.needBlock(s)) v.virtualRules.push(parseRule(e, p, 'virtual_rules'));
    },
    track_interface: (s, v, p) => v.trackInterface.push(...trackRefs(s, p, -253, 253)),
    track_script: (s, v, p) => v.trackScript.push(...trackRefs(s, p, -254, 254)),
    track_file: (s, v, p) => v.trackFile.push(...trackRefs(s, p, -254, 254)),
    unicast_src_ip: (s, v, p) => {
      v.unicastSrcIp = p.ip(s, s.args[0], 'IP address');
      if (v.unicastSrcIp?.family === 6) v6.push({ what: `unicast_src_ip ${v.unicastSrcIp.text}`, loc: s.loc });
    },
    unicast_peer: (s, v, p) => {
      v.unicastPeerLoc = s.loc;
      for (const e of p.needBlock(s)) {
        const ip = parseIp(e.keyword);
        if (!ip) p.sink.error(e.loc, 'invalid-address', `(${v.name}) unicast_peer: invalid IP address '${e.keyword}'`);
        else v.unicastPeers.push({ address: ip, options: e.args.slice(), loc: e.loc });
      }
    },
    mcast_src_ip: (s, v, p) => (v.mcastSrcIp = p.ip(s, s.args[0], 'IP address')),
    version: (s, v, p) => {
      const n = p.integer(s, s.args[0], 2, 3);
      if (n !== undefined) v.version = n as 2 | 3;
    },
    ...garpHandlers<VrrpInstance>('', (v) => v.garp),
    smtp_alert: (s, v, p) => (v.smtpAlert = p.bool(s)),
    ...notifyHandlers<VrrpInstance>(),
    dont_track_primary: (_s, v) => void (v.dontTrackPrimary = true),
    use_vmac: (s, v) => void (v.useVmac = s.args[0] ?? ''),
    vmac_xmit_base: (_s, v) => void (v.vmacXmitBase = true),
    strict_mode: (s, v, p) => (v.strictMode = p.bool(s)),
    lvs_sync_daemon_interface: (s, v, p) => {
      const i = p.arg(s, 'an interface');
      if (i !== null) v.lvsSyncDaemonInterface = i;
      p.sink.warnStrict(s.loc, 'deprecated', `(${v.name}) Specifying lvs_sync_daemon_interface against a vrrp is deprecated. Please use global lvs_sync_daemon`);
    },
  };
}

const SYNC_KNOWN = new Set(['global_tracking', 'sync_group_tracking_weight', 'track_bfd', 'track_process', 'notify_priority_changes']);

const SYNC_HANDLERS: Record<string, Handler<VrrpSyncGroup>> = {
  group: (s, g, p) => {
    for (const e of p.needBlock(s)) {
      g.group.push({ name: e.keyword, loc: e.loc });
      if (e.args.length > 0) p.sink.warnStrict(e.loc, 'extra-arguments', `vrrp_sync_group ${g.name}: one instance name per line, ignoring '${e.args.join(' ')}'`);
    }
  },
  smtp_alert: (s, g, p) => (g.smtpAlert = p.bool(s)),
  track_script: (s, g, p) => g.trackScript.push(...trackRefs(s, p, -254, 254)),
  track_interface: (s, g, p) => g.trackInterface.push(...trackRefs(s, p, -254, 254)),
  track_file: (s, _g, p) => void trackRefs(s, p, -254, 254),
  ...notifyHandlers<VrrpSyncGroup>(),
};

// ---------------------------------------------------------------------------------------------
// virtual_server, real_server, checkers, virtual_server_group

function lvsMethod(s: Statement, p: Parser): 'NAT' | 'DR' | 'TUN' | undefined {
  const m = p.arg(s, 'NAT, DR or TUN');
  if (m === 'NAT' || m === 'DR' || m === 'TUN') return m;
  if (m !== null) p.sink.error(s.loc, 'invalid-lvs-method', `${s.keyword}: unknown forwarding method '${m}', must be NAT, DR or TUN`);
  return undefined;
}

function endpointHandlers<T extends CheckerEndpoint>(v6: KeepalivedConfig['ipv6Uses']): Record<string, Handler<T>> {
  const ipOf = (s: Statement, p: Parser): IpAddress | undefined => {
    const ip = p.ip(s, s.args[0], 'IP address');
    if (ip?.family === 6) v6.push({ what: `${s.keyword} ${ip.text}`, loc: s.loc });
    return ip;
  };
  return {
    connect_ip: (s, c, p) => (c.connectIp = ipOf(s, p)),
    connect_port: (s, c, p) => (c.connectPort = p.integer(s, s.args[0], 0, 65535)),
    bindto: (s, c, p) => (c.bindto = ipOf(s, p)),
    bind_port: (s, c, p) => (c.bindPort = p.integer(s, s.args[0], 0, 65535)),
    bind_if: (s, c, p) => {
      const i = p.arg(s, 'an interface');
      if (i !== null) c.bindIf = i;
    },
    connect_timeout: (s, c, p) => (c.connectTimeout = p.seconds(s, s.args[0], 0, 86400)),
    fwmark: (s, c, p) => (c.fwmark = p.integer(s, s.args[0], 0, 0xffffffff)),
  };
}

const CHECKER_KNOWN = new Set(
  ('log_all_failures enable_sni fast_recovery http_protocol tls_compliant include_inhibit fail_on_status ' +
    'payload require_reply min_reply_length max_reply_length type name ping_tos user weight dynamic').split(/\s+/),
);

function parseStatusCodes(s: Statement, p: Parser): [number, number][] {
  const out: [number, number][] = [];
  for (const a of s.args) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(a);
    if (!m) {
      p.sink.error(s.loc, 'invalid-status-code', `status_code: invalid HTTP status '${a}' (NNN or NNN-NNN)`);
      continue;
    }
    const lo = Number(m[1]);
    const hi = m[2] ? Number(m[2]) : lo;
    if (lo < 100 || hi > 599 || hi < lo) p.sink.error(s.loc, 'invalid-status-code', `status_code: '${a}' outside 100-599`);
    else out.push([lo, hi]);
  }
  return out;
}

const URL_HANDLERS: Record<string, Handler<HttpUrl>> = {
  path: (s, u, p) => {
    const v = p.arg(s, 'a path');
    if (v !== null) u.path = v;
  },
  digest: (s, u, p) => {
    const d = p.arg(s, 'an MD5 digest');
    if (d === null) return;
    if (!/^[0-9a-fA-F]{32}$/.test(d)) p.sink.error(s.loc, 'invalid-digest', `digest: '${d}' is not an MD5 digest (32 hex digits)`);
    else u.digest = d.toLowerCase();
  },
  status_code: (s, u, p) => u.statusCodes.push(...parseStatusCodes(s, p)),
  virtualhost: (s, u, p) => {
    const v = p.arg(s, 'a host name');
    if (v !== null) u.virtualhost = v;
  },
  regex: (s, u, p) => {
    const v = p.arg(s, 'a regular expression');
    if (v !== null) u.regex = v;
  },
};
const URL_KNOWN = new Set(['regex_no_match', 'regex_options', 'regex_stack', 'regex_min_offset', 'regex_max_offset', 'fail_on_status']);

function checkerHandlers(v6: KeepalivedConfig['ipv6Uses']): Record<string, Handler<Checker>> {
  return {
    ...endpointHandlers<Checker>(v6),
    retry: (s, c, p) => (c.retry = p.integer(s, s.args[0], 0, 0x7fffffff)),
    nb_get_retry: (s, c, p) => (c.retry = p.integer(s, s.args[0], 0, 0x7fffffff)),
    delay_before_retry: (s, c, p) => (c.delayBeforeRetry = p.seconds(s, s.args[0], 0, 86400)),
    delay_loop: (s, c, p) => (c.delayLoop = p.seconds(s, s.args[0], 0, 86400)),
    warmup: (s, c, p) => (c.warmup = p.seconds(s, s.args[0], 0, 86400)),
    alpha: (s, c, p) => (c.alpha = p.bool(s)),
    url: (s, c, p) => {
      if (c.type !== 'HTTP_GET' && c.type !== 'SSL_GET') return p.unknown(s);
      const u: HttpUrl = { statusCodes: [], loc: s.loc };
      p.block(p.needBlock(s), u, URL_HANDLERS, URL_KNOWN);
      if (u.path === undefined) p.sink.error(s.loc, 'url-no-path', `HTTP/SSL_GET checker url has no path - ignoring`);
      c.urls.push(u);
    },
    virtualhost: (s, c, p) => {
      const v = p.arg(s, 'a host name');
      if (v !== null) c.virtualhost = v;
    },
    misc_path: (s, c, p) => (c.miscPath = p.script(s, false)),
    misc_timeout: (s, c, p) => (c.miscTimeout = p.seconds(s, s.args[0], 0, 86400)),
    misc_dynamic: (_s, c) => void (c.miscDynamic = true),
    helo_name: (s, c, p) => {
      const v = p.arg(s, 'a name');
      if (v !== null) c.heloName = v;
    },
    host: (s, c, p) => {
      if (c.type !== 'SMTP_CHECK') return p.unknown(s);
      const h: CheckerEndpoint & { loc: Loc } = { loc: s.loc };
      p.block(p.needBlock(s), h, endpointHandlers(v6), new Set());
      c.hosts.push(h);
    },
    type: (s, c, p) => {
      if (c.type !== 'DNS_CHECK') return void c.other.push(p.raw(s));
      const t = p.arg(s, 'a DNS query type');
      if (t !== null) c.dnsType = t;
    },
    name: (s, c, p) => {
      if (c.type !== 'DNS_CHECK') return void c.other.push(p.raw(s));
      const n = p.arg(s, 'a DNS name');
      if (n !== null) c.dnsName = n;
    },
    track_file: (s, c, p) => {
      const f = p.arg(s, 'a track_file name');
      if (f !== null) c.trackFile = f;
    },
  };
}

function makeChecker(type: CheckerType, loc: Loc): Checker {
  return { type, urls: [], miscDynamic: false, hosts: [], other: [], loc };
}

const REAL_SERVER_KNOWN = new Set(['log_all_failures', 'snmp_name', 'connect_ip', 'connect_port', 'bindto', 'bind_port', 'bind_if', 'connect_timeout', 'retry', 'delay_before_retry', 'delay_loop', 'warmup', 'alpha', 'fwmark', 'virtualhost']);

function realServerHandlers(v6: KeepalivedConfig['ipv6Uses']): Record<string, Handler<RealServer>> {
  const ch = checkerHandlers(v6);
  const handlers: Record<string, Handler<RealServer>> = {
    // IPVS weights are non-negative ints; keepalived 2.2.7 takes 70000 (crafted/rs-weight-range.conf).
    weight: (s, r, p) => (r.weight = p.integer(s, s.args[0], 0, 0x7fffffff)),
    inhibit_on_failure: (s, r, p) => (r.inhibitOnFailure = p.bool(s)),
    notify_up: (s, r, p) => (r.notifyUp = p.script(s, true)),
    notify_down: (s, r, p) => (r.notifyDown = p.script(s, true)),
    uthreshold: (s, r, p) => (r.uthreshold = p.integer(s, s.args[0], 0, 0xffffffff)),
    lthreshold: (s, r, p) => (r.lthreshold = p.integer(s, s.args[0], 0, 0xffffffff)),
    lvs_method: (s, r, p) => (r.lvsMethod = lvsMethod(s, p)),
    smtp_alert: (s, r, p) => (r.smtpAlert = p.bool(s)),
  };
  for (const type of CHECKER_TYPES) {
    handlers[type] = (s, r, p) => {
      const c = makeChecker(type, s.loc);
      p.block(p.needBlock(s), c, ch, CHECKER_KNOWN, c.other);
      if (type === 'MISC_CHECK' && !c.miscPath) p.sink.error(s.loc, 'misc-no-path', 'No script path has been specified for MISC_CHECKER - skipping');
      if ((type === 'HTTP_GET' || type === 'SSL_GET') && c.urls.every((u) => u.path === undefined)) {
        p.sink.warnStrict(s.loc, 'no-urls', `${type} checker has no urls specified - ignoring`);
      }
      r.checkers.push(c);
    };
  }
  return handlers;
}

/**
 * The scheduler names keepalived 2.2 accepts (its lvs_schedulers[] table, the IPVS schedulers of
 * net/netfilter/ipvs); anything else is refused while parsing.
 */
export const LVS_SCHEDULERS: ReadonlySet<string> = new Set(['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh']);

const VS_KNOWN = new Set(['ip_family', 'persistence_engine', 'snmp_name', 'flag-1', 'flag-2', 'flag-3', 'sh-port', 'sh-fallback', 'mh-port', 'mh-fallback', 'ops', 'bind_if']);

function virtualServerHandlers(v6: KeepalivedConfig['ipv6Uses']): Record<string, Handler<VirtualServer>> {
  const rsHandlers = realServerHandlers(v6);
  const scheduler: Handler<VirtualServer> = (s, vs, p) => {
    const a = p.arg(s, 'a scheduler name');
    if (a !== null && !LVS_SCHEDULERS.has(a)) {
      p.sink.error(s.loc, 'invalid-scheduler', `Invalid lvs_scheduler '${a}' - ignoring (one of ${[...LVS_SCHEDULERS].join(' ')})`);
    } else if (a !== null) {
      vs.scheduler = a;
      vs.schedulerLoc = s.loc;
    }
  };
  const forwarding: Handler<VirtualServer> = (s, vs, p) => {
    vs.forwarding = lvsMethod(s, p);
    vs.forwardingLoc = s.loc;
  };
  return {
    delay_loop: (s, vs, p) => (vs.delayLoop = p.seconds(s, s.args[0], 0, 86400)),
    lb_algo: scheduler,
    lvs_sched: scheduler,
    lb_kind: forwarding,
    lvs_method: forwarding,
    persistence_timeout: (s, vs, p) => (vs.persistenceTimeout = p.integer(s, s.args[0] ?? '360', 1, 0x7fffffff)),
    persistence_granularity: (s, vs, p) => (vs.persistenceGranularity = p.ip(s, s.args[0], 'netmask')),
    protocol: (s, vs, p) => {
      const pr = p.arg(s, 'TCP, UDP or SCTP');
      if (pr === null) return;
      const up = pr.toUpperCase();
      if (up === 'TCP' || up === 'UDP' || up === 'SCTP') {
        vs.protocol = up;
        vs.protocolLoc = s.loc;
      } else p.sink.error(s.loc, 'invalid-protocol', `protocol: unknown protocol '${pr}', must be TCP, UDP or SCTP`);
    },
    sorry_server: (s, vs, p) => {
      const ip = p.ip(s, s.args[0], 'IP address');
      if (!ip) return;
      vs.sorryServer = { address: ip, loc: s.loc };
      if (s.args.length > 1) vs.sorryServer.port = p.integer(s, s.args[1], 0, 65535);
    },
    sorry_server_inhibit: (s, vs, p) => (vs.sorryServerInhibit = p.bool(s)),
    sorry_server_lvs_method: (s, vs, p) => (vs.sorryServerLvsMethod = lvsMethod(s, p)),
    virtualhost: (s, vs, p) => {
      const v = p.arg(s, 'a host name');
      if (v !== null) vs.virtualhost = v;
    },
    alpha: (s, vs, p) => (vs.alpha = p.bool(s)),
    omega: (s, vs, p) => (vs.omega = p.bool(s)),
    quorum: (s, vs, p) => (vs.quorum = p.integer(s, s.args[0], 1, 0xffffffff)),
    quorum_up: (s, vs, p) => (vs.quorumUp = p.script(s, true)),
    quorum_down: (s, vs, p) => (vs.quorumDown = p.script(s, true)),
    hysteresis: (s, vs, p) => (vs.hysteresis = p.integer(s, s.args[0], 0, 0xffffffff)),
    ops: (s, vs, p) => (vs.ops = p.bool(s)),
    ha_suspend: (s, vs, p) => (vs.haSuspend = p.bool(s)),
    retry: (s, vs, p) => (vs.retry = p.integer(s, s.args[0], 0, 0x7fffffff)),
    delay_before_retry: (s, vs, p) => (vs.delayBeforeRetry = p.seconds(s, s.args[0], 0, 86400)),
    connect_timeout: (s, vs, p) => (vs.connectTimeout = p.seconds(s, s.args[0], 0, 86400)),
    warmup: (s, vs, p) => (vs.warmup = p.seconds(s, s.args[0], 0, 86400)),
    smtp_alert: (s, vs, p) => (vs.smtpAlert = p.bool(s)),
    flag: (s, vs) => void vs.schedulerFlags.push(...s.args),
    real_server: (s, vs, p) => {
      const ip = p.ip(s, s.args[0], 'real server IP address');
      if (!ip) return;
      if (ip.family === 6) v6.push({ what: `real_server ${ip.text}`, loc: s.loc });
      const rs: RealServer = { address: ip, inhibitOnFailure: false, checkers: [], other: [], loc: s.loc };
      const portText = s.args[1];
      if (portText !== undefined) {
        const port = parsePort(portText);
        if (port === null) p.sink.error(s.loc, 'invalid-port', `real_server: invalid port '${portText}'`);
        else rs.port = port;
      }
      p.block(s.block, rs, rsHandlers, REAL_SERVER_KNOWN, rs.other);
      vs.realServers.push(rs);
    },
  };
}

function parseVirtualServerKey(s: Statement, p: Parser, v6: KeepalivedConfig['ipv6Uses']): VirtualServer['key'] | null {
  const [a, b] = s.args;
  if (a === 'fwmark') {
    const mark = p.integer(s, b, 1, 0xffffffff);
    return mark === undefined ? null : { kind: 'fwmark', mark };
  }
  if (a === 'group') {
    if (b === undefined) {
      p.sink.error(s.loc, 'missing-argument', `virtual_server group needs a group name`);
      return null;
    }
    return { kind: 'group', name: b };
  }
  const ip = p.ip(s, a, 'virtual server IP address');
  if (!ip) return null;
  if (ip.family === 6) v6.push({ what: `virtual_server ${ip.text}`, loc: s.loc });
  if (b === undefined) {
    p.sink.error(s.loc, 'missing-argument', `virtual_server ${ip.text}: a port is required (use 0 for all ports with persistence)`);
    return null;
  }
  const port = parsePort(b);
  if (port === null) {
    p.sink.error(s.loc, 'invalid-port', `virtual_server ${ip.text}: invalid port '${b}'`);
    return null;
  }
  return { kind: 'ip', address: ip, port };
}

function parseVirtualServerGroup(s: Statement, p: Parser, v6: KeepalivedConfig['ipv6Uses']): VirtualServerGroup {
  const g: VirtualServerGroup = { name: s.args[0] ?? '', entries: [], loc: s.loc };
  if (s.args.length === 0) p.sink.error(s.loc, 'missing-argument', 'virtual_server_group needs a name');
  for (const e of p.needBlock(s)) {
    if (e.keyword === 'fwmark') {
      const mark = p.integer(e, e.args[0], 1, 0xffffffff);
      if (mark !== undefined) g.entries.push({ kind: 'fwmark', mark, loc: e.loc });
      continue;
    }
    const range = parseIpRange(e.keyword);
    if (!range) {
      p.sink.error(e.loc, 'invalid-address', `virtual_server_group ${g.name}: invalid address or range '${e.keyword}'`);
      continue;
    }
    if (range.family === 6) v6.push({ what: `virtual_server_group ${g.name} ${e.keyword}`, loc: e.loc });
    const entry: VirtualServerGroupEntry = { kind: 'range', range, loc: e.loc };
    const portText = e.args[0];
    if (portText !== undefined) {
      const port = parsePort(portText);
      if (port === null) p.sink.error(e.loc, 'invalid-port', `virtual_server_group ${g.name}: invalid port '${portText}'`);
      else entry.port = port;
    }
    g.entries.push(entry);
  }
  return g;
}
type VirtualServerGroupEntry = VirtualServerGroup['entries'][number];

// ---------------------------------------------------------------------------------------------
// top level

const TOP_KNOWN = new Set(['net_namespace', 'net_namespace_ipvs', 'namespace_with_ipsets', 'instance', 'use_pid_dir', 'linkbeat_use_polling', 'child_wait_time', 'static_track_group', 'linkbeat_interfaces', 'interface_up_down_delays', 'garp_group', 'vrrp_track_process', 'bfd_instance']);

function emptyModel(): KeepalivedConfig {
  return {
    files: [],
    global: { notificationEmail: [], garp: {}, vrrpStrict: false, vrrpSkipCheckAdvAddr: false, enableScriptSecurity: false, other: [] },
    staticIpaddress: [], staticRoutes: [], staticRules: [], vrrpScripts: [], vrrpTrackFiles: [], vrrpInstances: [], vrrpSyncGroups: [],
    virtualServers: [], virtualServerGroups: [], otherBlocks: [], ipv6Uses: [],
  };
}

/** Builds the model from already-split statements (exported for tests and for tools that generate configs). */
export function parseStatements(stmts: Statement[], sink: DiagnosticSink): KeepalivedConfig {
  const model = emptyModel();
  const p = new Parser(sink);
  const v6 = model.ipv6Uses;
  const instHandlers = instanceHandlers(model);
  const vsHandlers = virtualServerHandlers(v6);
  const named = (s: Statement, what: string): string => {
    if (s.args.length === 0) sink.error(s.loc, 'missing-argument', `${what} needs a name`);
    return s.args[0] ?? '';
  };
  for (const s of stmts) {
    switch (s.keyword) {
      case 'global_defs':
        model.global.loc ??= s.loc;
        p.block(p.needBlock(s), model.global, GLOBAL_HANDLERS, GLOBAL_KNOWN, model.global.other);
        break;
      case 'static_ipaddress':
        for (const e of p.needBlock(s)) {
          const vip = parseVirtualIp(e, p, v6, 'static_ipaddress');
          if (vip) model.staticIpaddress.push(vip);
        }
        break;
      case 'static_routes':
        for (const e of p.needBlock(s)) model.staticRoutes.push(parseRoute(e, p, v6, 'static_routes'));
        break;
      case 'static_rules':
        for (const e of p.needBlock(s)) model.staticRules.push(parseRule(e, p, 'static_rules'));
        break;
      case 'vrrp_script': {
        const vs: VrrpScript = { name: named(s, 'vrrp_script'), weightReverse: false, initFail: false, other: [], loc: s.loc };
        p.block(p.needBlock(s), vs, SCRIPT_HANDLERS, new Set(), vs.other);
        model.vrrpScripts.push(vs);
        break;
      }
      case 'vrrp_track_file':
      case 'track_file': {
        const tf: VrrpTrackFile = { name: named(s, s.keyword), weightReverse: false, loc: s.loc };
        p.block(p.needBlock(s), tf, TRACK_FILE_HANDLERS, new Set());
        model.vrrpTrackFiles.push(tf);
        break;
      }
      case 'vrrp_instance': {
        const inst = makeInstance(named(s, 'vrrp_instance'), s.loc);
        p.block(p.needBlock(s), inst, instHandlers, INSTANCE_KNOWN, inst.other);
        model.vrrpInstances.push(inst);
        break;
      }
      case 'vrrp_sync_group': {
        const g: VrrpSyncGroup = { name: named(s, 'vrrp_sync_group'), group: [], notify: {}, trackScript: [], trackInterface: [], other: [], loc: s.loc };
        p.block(p.needBlock(s), g, SYNC_HANDLERS, SYNC_KNOWN, g.other);
        model.vrrpSyncGroups.push(g);
        break;
      }
      case 'virtual_server_group':
        model.virtualServerGroups.push(parseVirtualServerGroup(s, p, v6));
        break;
      case 'virtual_server': {
        const key = parseVirtualServerKey(s, p, v6);
        const vs: VirtualServer = {
          key: key ?? { kind: 'fwmark', mark: 0 }, sorryServerInhibit: false, alpha: false, omega: false, ops: false, haSuspend: false,
          schedulerFlags: [], realServers: [], other: [], loc: s.loc,
        };
        // Parse the block even when the key is bad, so its own errors are reported too.
        p.block(p.needBlock(s), vs, vsHandlers, VS_KNOWN, vs.other);
        if (key) model.virtualServers.push(vs);
        break;
      }
      default:
        if (TOP_KNOWN.has(s.keyword)) model.otherBlocks.push(p.raw(s));
        else p.unknown(s);
    }
  }
  return model;
}

/**
 * The entry point: reads `file` (and its includes) through `reader` and returns the model and
 * every diagnostic, each with file:line. Never throws on bad input.
 */
export function parseKeepalivedConfig(file: string, reader: ConfigReader, options: ParseOptions = {}): ParseResult {
  const sink = new DiagnosticSink();
  const files: string[] = [];
  const tracking: ConfigReader = {
    readFile(f) {
      const t = reader.readFile(f);
      if (t !== null && !files.includes(f)) files.push(f);
      return t;
    },
    listDir: (d) => reader.listDir(d),
  };
  const lines = preprocess(file, { reader: tracking, sink, configId: options.configId ?? '', random: options.random });
  const stmts = buildTree(lines, sink);
  const model = parseStatements(stmts, sink);
  model.files = files;
  return { model, diagnostics: sink.list };
}
