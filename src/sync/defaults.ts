// The kernel's sync knobs (net.ipv4.vs.*, Documentation/networking/ipvs-sysctl.rst), at their
// defaults, in one place: the values uvs starts from. They are set at run time through the knob
// registry (src/sync/knobs.ts; `uvsadm --sysctl`, uvsd --sysctl-file), and the daemons read the
// values in force from a SyncTunables object, never these constants directly.

export const SYNC_DEFAULTS = {
  /** net.ipv4.vs.sync_version: 1 (uvs speaks only version 1). */
  syncVersion: 1,
  /** net.ipv4.vs.sync_threshold "3 50": a connection is synced when its in-packet count
   *  reaches `syncThreshold`, then every `syncPeriod` packets (pkts % period == threshold). */
  syncThreshold: 3,
  syncPeriod: 50,
  /** net.ipv4.vs.sync_refresh_period: 0 (seconds; 0 = off: sync on state change and by packet
   *  count only). */
  syncRefreshPeriod: 0,
  /** net.ipv4.vs.sync_retries: 0 (resends of a refresh; used only with sync_refresh_period). */
  syncRetries: 0,
  /** net.ipv4.vs.sync_persist_mode: 0 (1 = do not sync connections controlled by a template). */
  syncPersistMode: 0,
  /** net.ipv4.vs.sync_qlen_max: messages that may wait to be sent. The kernel's default is 1/32
   *  of memory in pages; uvs's waiting entries are JavaScript objects (a few hundred bytes each),
   *  so it starts from 16384 messages (about a million entries at maxlen 1472). */
  syncQlenMax: 16384,
  /** net.ipv4.vs.sync_ports: 1 (one master thread, one port). */
  syncPorts: 1,
  /** net.ipv4.vs.sync_sock_size: 0 (the socket buffers' defaults). */
  syncSockSize: 0,
} as const;

/** IPVS_SYNC_FLUSH_TIME: a partly filled message waits at most 2 s before it is sent. uvs scans
 *  the table more often (SCAN_INTERVAL_MS) and sends what a scan found at once. */
export const SYNC_FLUSH_TIME_MS = 2000;
