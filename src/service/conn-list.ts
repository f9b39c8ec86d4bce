// What `uvsadm -L -c` lists: one record per connection-table entry, the fields of the kernel's
// /proc/net/ip_vs_conn (ip_vs_conn_seq_show), which ipvsadm reads and formats.
//
// The connection table (src/conn/) implements ConnLister; until it is attached the daemon lists
// NO_CONNECTIONS, which is the truth while no data plane runs.

export interface ConnRecord {
  /** 'TCP' or 'UDP' (the kernel prints ip_vs_proto_name()). */
  protocol: string;
  /** IPv4 addresses in host byte order, unsigned; ports in host byte order. */
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  daddr: number;
  dport: number;
  /** The protocol's state name: ESTABLISHED, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT,
   *  LAST_ACK, LISTEN, SYNACK, NONE for TCP; UDP for UDP (ip_vs_proto_tcp.c tcp_state_name). */
  state: string;
  /** Time left before the entry expires, in milliseconds. */
  expiresMs: number;
  /** Persistence engine name and data (`--persistent-conn`), absent when none. */
  peName?: string;
  peData?: string;
}

export interface ConnLister {
  /** At most `limit` records, in table order (ipvsadm does not sort them). */
  list(limit: number): ConnRecord[];
  /**
   * The listing in pieces, for a streamed `-L -c` (a big table is never held whole): at most
   * `maxRows` records from `cursor` (0 to start) on, and the cursor to continue from, -1 at the
   * end. Listers without it are listed whole with list().
   */
  chunk?(cursor: number, maxRows: number): { rows: ConnRecord[]; next: number };
}

export const NO_CONNECTIONS: ConnLister = {
  list(): ConnRecord[] {
    return [];
  },
};
