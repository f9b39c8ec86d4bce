// The connection table as `uvsadm -L -c` lists it: whole (ConnLister.list) or in pieces
// (ConnLister.chunk, for the streamed listing of a big table, see control/server.ts).

import { connNowMs, type ConnListing, type ConnTable } from '../conn/table';
import { connStateName } from '../conn/tcp-state';
import type { ConnLister, ConnRecord } from '../service/conn-list';

/** A connection-table entry as `-L -c` lists it. */
export function connRecordOf(c: ConnListing): ConnRecord {
  return {
    protocol: c.protocol === 17 ? 'UDP' : 'TCP',
    caddr: c.caddr >>> 0, cport: c.cport, vaddr: c.vaddr >>> 0, vport: c.vport, daddr: c.daddr >>> 0, dport: c.dport,
    state: connStateName(c.protocol, c.state, c.template),
    expiresMs: c.expiresMs,
  };
}

/** Lists `table`; `now` gives the table clock (tests pass a fixed one). */
export function connTableLister(table: ConnTable, now: () => number = connNowMs): ConnLister {
  return {
    list(limit: number): ConnRecord[] {
      const out: ConnRecord[] = [];
      for (const c of table.list(now())) {
        if (out.length >= limit) break;
        out.push(connRecordOf(c));
      }
      return out;
    },
    chunk(cursor: number, maxRows: number): { rows: ConnRecord[]; next: number } {
      const listed: ConnListing[] = [];
      const next = table.listFrom(cursor, maxRows, now(), listed);
      return { rows: listed.map(connRecordOf), next };
    },
  };
}
