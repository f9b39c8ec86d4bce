// The control protocol between uvsadm and uvsd: JSON, one object per line, over the daemon's
// unix socket. A client sends one request and reads one response; the daemon answers requests of
// one connection in order. Formatting happens in uvsadm (format.ts): the daemon returns data.
// One exception: a connection listing asked with `stream: true` comes as several lines with the
// request's id, each marked `more` but the last (server.ts streamConnections).

import type { SyncDaemonInfo } from '../sync/daemon';
import type { IpvsadmCommand } from '../config/ipvsadm-args';
import type { WorkerReport } from '../dataplane/dataplane';
import type { LinkWatchStats } from '../dataplane/link-watch';
import type { FastPathReport } from '../dataplane/fast-path';
import type { ConnRecord } from '../service/conn-list';
import type { DestEntry, Errno, IpvsOp, ServiceEntry, Timeouts } from '../service/model';
import type { Counters, Rates } from '../service/stats';
import type { SysctlValue } from './sysctl';
import type { CheckSnapshot } from '../metrics/snapshot';
import type { VrrpInstanceReport } from './vrrp';

export const PROTOCOL_VERSION = 1;

/** Longest request or response line accepted (a -R batch of a large table fits easily). */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

/** Connection records per line of a streamed `-L -c` (about 300 kB of JSON). */
export const CONN_STREAM_ROWS = 2048;

export type Request =
  /** stream: a `-L -c` answer may come in pieces (CONN_STREAM_ROWS records a line, each but the
   *  last marked `more`), so that neither side holds a big table's whole listing; without it the
   *  listing comes whole, as older uvsadm expect. */
  | { id: number; type: 'command'; command: IpvsadmCommand; stream?: boolean }
  /** -R: the commands of every line, applied in order; the first refused one stops the batch and
   *  nothing is applied. Either `commands` (JSON objects) or `packed` (batch-codec.ts: what
   *  uvsadm sends, a fifth of the bytes and no object per command to parse). */
  | { id: number; type: 'batch'; commands?: IpvsadmCommand[]; packed?: PackedBatchText }
  | { id: number; type: 'ping' }
  /** Per-worker data-plane figures (batches, frames, time per stage, ring drops, drop reasons). */
  | { id: number; type: 'workers' }
  /** `uvsadm --sysctl [NAME[=VALUE]]`: the IPVS knobs (src/conn/knobs.ts). No name: all of
   *  them; a name: that one; with a value: set it first. A bad name or value is answered with
   *  protocolError (its message names the knob) and changes nothing. */
  | { id: number; type: 'sysctl'; name?: string; value?: string }
  /** VRRP instances (uvsadm --vrrp): configuration, state, counters. */
  | { id: number; type: 'vrrp' }
  /** The checkers' view of each virtual server (uvsadm --checks). */
  | { id: number; type: 'checks' };

/** A packed -R batch on the wire (batch-codec.ts). */
export interface PackedBatchText {
  /** PACKED_BATCH_FORMAT. */
  format: string;
  /** Number of commands. */
  count: number;
  /** The records, base64. */
  data: string;
}

export interface ListedDest extends DestEntry {
  stats: Counters;
  rates: Rates;
}

export interface ListedService extends Omit<ServiceEntry, 'dests'> {
  stats: Counters;
  rates: Rates;
  dests: ListedDest[];
}

/** What the daemon says about itself (the header line of `-L`). */
export interface DaemonInfo {
  /** IPVS version ipvsadm prints: 1.2.1. */
  version: string;
  /** Connection hash table size ipvsadm prints: 4096. */
  connTableSize: number;
  pid: number;
}

/** One connection of a streamed `-L -c` piece, as an array (a third of the JSON of a ConnRecord
 *  object, and as much faster to write and read): protocol, caddr, cport, vaddr, vport, daddr,
 *  dport, state, expiresMs, then peName and peData when there is a persistence engine. */
export type ConnRow = [string, number, number, number, number, number, number, string, number, ...string[]];

export function connRow(c: ConnRecord): ConnRow {
  const row: ConnRow = [c.protocol, c.caddr, c.cport, c.vaddr, c.vport, c.daddr, c.dport, c.state, c.expiresMs];
  if (c.peName !== undefined) row.push(c.peName, c.peData ?? '');
  return row;
}

export function connRecordOfRow(r: ConnRow): ConnRecord {
  const c: ConnRecord = { protocol: r[0], caddr: r[1], cport: r[2], vaddr: r[3], vport: r[4], daddr: r[5], dport: r[6], state: r[7], expiresMs: r[8] };
  if (r.length > 9) {
    c.peName = r[9];
    c.peData = r[10];
  }
  return c;
}

export type Result =
  | { kind: 'ok' }
  /** A piece of a streamed `-L -c` (Request stream: true). */
  | { kind: 'connection-rows'; rows: ConnRow[] }
  | { kind: 'services'; info: DaemonInfo; services: ListedService[] }
  | { kind: 'service'; service: ListedService }
  | { kind: 'timeouts'; timeouts: Timeouts }
  | { kind: 'connections'; connections: ConnRecord[] }
  | { kind: 'daemons'; daemons: SyncDaemonInfo[] }
  | { kind: 'pong'; info: DaemonInfo }
  | { kind: 'workers'; workers: WorkerReport[]; /** The interface watch's counters; null: not watching. */ linkWatch?: LinkWatchStats | null; /** The in-kernel fast path; null: off. */ fastPath?: FastPathReport | null }
  | { kind: 'sysctl'; values: SysctlValue[] }
  | { kind: 'vrrp'; instances: VrrpInstanceReport[] }
  | { kind: 'checks'; checks: CheckSnapshot[] };

/** A refused command, as the kernel refuses it: uvsadm prints libipvs's message for (op, errno). */
export interface IpvsFailure {
  op: IpvsOp;
  errno: Errno;
  detail: string;
  /** For a batch: the index of the refused command (those before it were applied). */
  index?: number;
}

export type Response =
  /** more: a piece of a streamed listing; further lines with the same id follow. */
  | { id: number; ok: true; result: Result; more?: true }
  | { id: number; ok: false; error: IpvsFailure }
  /** The request itself was malformed (a client bug, or a version mismatch). */
  | { id: number; ok: false; protocolError: string };

/** Splits a byte stream into lines; calls `onLine` for each complete one. A line's pieces are
 *  kept apart until its newline arrives and only the new chunk is searched, so a 10 MB request
 *  (a -R of 100,000 lines) costs O(size), not a re-scan of the whole buffer per chunk. */
export class LineSplitter {
  private parts: string[] = [];
  private partsLength = 0;

  constructor(private readonly onLine: (line: string) => void, private readonly onOverflow: () => void) {}

  push(chunk: string): void {
    let from = 0;
    let nl: number;
    while ((nl = chunk.indexOf('\n', from)) >= 0) {
      let line = chunk.slice(from, nl);
      if (this.parts.length > 0) {
        this.parts.push(line);
        line = this.parts.join('');
        this.parts = [];
        this.partsLength = 0;
      }
      from = nl + 1;
      if (line.trim() !== '') this.onLine(line);
    }
    if (from < chunk.length) {
      this.parts.push(chunk.slice(from));
      this.partsLength += chunk.length - from;
    }
    if (this.partsLength > MAX_LINE_BYTES) {
      this.parts = [];
      this.partsLength = 0;
      this.onOverflow();
    }
  }
}

