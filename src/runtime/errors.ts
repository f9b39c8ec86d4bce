// The one error scheme of uvs (after undici's lib/core/errors.js): every error uvs throws on
// purpose is a UvsError subclass with a stable `code` from the list below, so callers and tests
// match on the code, never on the message text, and the message is free to say what was wrong,
// where, and what to do. Classes live beside the code that throws them; their codes live here,
// in one list, so two modules cannot pick the same code for different things.
//
// System call failures keep Node's own errors (err.code 'ENOENT', 'EPERM', ...), and ipvsadm's
// refusals keep their errno (IpvsError.errno, the text ipvsadm prints) besides the code.

export const UVS_ERROR_CODES = [
  // addresses and packets
  'UVS_ERR_BAD_IPV4', 'UVS_ERR_BAD_MAC',
  // schedulers, connection table, service model
  'UVS_ERR_UNKNOWN_SCHEDULER', 'UVS_ERR_CONN_BUFFER', 'UVS_ERR_CONN_OWNER', 'UVS_ERR_IPVS',
  // configuration and command lines
  'UVS_ERR_CONFIG_INVALID', 'UVS_ERR_USAGE', 'UVS_ERR_IPVSADM_EXIT', 'UVS_ERR_SYSCTL',
  // native addon, data plane, kernel guard, network facts, libpcap
  'UVS_ERR_NATIVE_NOT_LOADED', 'UVS_ERR_DATAPLANE', 'UVS_ERR_GUARD', 'UVS_ERR_NETINFO', 'UVS_ERR_PCAP_LOAD',
  // VRRP
  'UVS_ERR_VRRP_CONFIG', 'UVS_ERR_VRRP_START', 'UVS_ERR_VRRP_STOPPED', 'UVS_ERR_VRRP_RELOAD',
  // notify scripts and checkers
  'UVS_ERR_SCRIPT_REFUSED', 'UVS_ERR_SCRIPT_USER', 'UVS_ERR_SCRIPT_SYNTAX',
  // the TUN decapsulation agent
  'UVS_ERR_TUN_DECAP',
  // control socket
  'UVS_ERR_DAEMON_RUNNING', 'UVS_ERR_NO_DAEMON', 'UVS_ERR_CONTROL_CLIENT',
  // metrics (--metrics, --metrics-textfile)
  'UVS_ERR_METRICS',
] as const;

export type UvsErrorCode = (typeof UVS_ERROR_CODES)[number];

export class UvsError extends Error {
  constructor(readonly code: UvsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
