// The kernel's sync knobs (net.ipv4.vs.*, Documentation/networking/ipvs-sysctl.rst), at their
// defaults, in one place. uvs has no knob interface for them yet: when one exists, these are the
// values it starts from and the names it uses.

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
  /** net.ipv4.vs.sync_qlen_max: messages queued before the master drops new ones; the kernel's
   *  default is 1/32 of memory in pages, far above what a scan produces, so uvs bounds one scan's
   *  output instead (MAX_MESSAGES_PER_SCAN in daemon.ts). */
  /** net.ipv4.vs.sync_ports: 1 (one master thread, one port). */
  syncPorts: 1,
  /** net.ipv4.vs.sync_sock_size: 0 (the socket buffers' defaults). */
  syncSockSize: 0,
} as const;

/** IPVS_SYNC_FLUSH_TIME: a partly filled message waits at most 2 s before it is sent. uvs scans
 *  the table more often (SCAN_INTERVAL_MS) and sends what a scan found at once. */
export const SYNC_FLUSH_TIME_MS = 2000;
