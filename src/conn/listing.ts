// `ipvsadm -L -c -n` output for the connection table (control plane; allocates freely).
//
// ipvsadm reads the kernel's /proc/net/ip_vs_conn, where the time left is whole seconds
// (milliseconds / 1000, rounded down), and prints each entry as
// "%-3s %-6s %-11s %-18s %-18s %s": protocol, mm:ss, state, then client, virtual and real
// server as address:port. Templates show state NONE and client port 0.

import { ipv4ToString, type ConnListing } from './table';
import { connStateName, IPPROTO_TCP, IPPROTO_UDP } from './tcp-state';

export const CONN_LIST_TITLE = 'IPVS connection entries';
export const CONN_LIST_HEADER = `pro expire ${'state'.padEnd(11)} ${'source'.padEnd(18)} ${'virtual'.padEnd(18)} destination`;

/** ip_vs_proto_name. */
export function protocolName(protocol: number): string {
  if (protocol === IPPROTO_TCP) return 'TCP';
  if (protocol === IPPROTO_UDP) return 'UDP';
  if (protocol === 0) return 'IP';
  if (protocol === 132) return 'SCTP';
  return `IP_${protocol}`;
}

/** One line of `ipvsadm -lcn` for one entry. */
export function formatConnLine(row: ConnListing): string {
  const seconds = Math.floor(row.expiresMs / 1000);
  const expire = `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
  const state = connStateName(row.protocol, row.state, row.template);
  const source = `${ipv4ToString(row.caddr)}:${row.cport}`;
  const virtual = `${ipv4ToString(row.vaddr)}:${row.vport}`;
  const destination = `${ipv4ToString(row.daddr)}:${row.dport}`;
  return `${protocolName(row.protocol).padEnd(3)} ${expire.padEnd(6)} ${state.padEnd(11)} ${source.padEnd(18)} ${virtual.padEnd(18)} ${destination}`;
}

/** The whole `ipvsadm -lcn` text, title and header included, one line per entry. */
export function formatConnList(rows: readonly ConnListing[]): string {
  return [CONN_LIST_TITLE, CONN_LIST_HEADER, ...rows.map(formatConnLine)].join('\n') + '\n';
}
