// DNS_CHECK (keepalived's check_dns.c): one query over UDP, built by hand, for `name` (default
// ".") and `type` (default SOA), to connect_ip:connect_port (default the real server, usually
// port 53). The server is up when a reply with our id, QR set and RCODE NOERROR arrives within
// connect_timeout. keepalived counts a reply as success without requiring answers (a server
// that is not authoritative for the name still proves it is serving); we do the same and add
// the answer count to the trail.
//
// RFC 1035 §4.1.1 header:
//                                 1  1  1  1  1  1
//   0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
//  +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//  |                      ID                       |
//  |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
//  |                    QDCOUNT                    |
//  |                    ANCOUNT                    |
//  |                    NSCOUNT                    |
//  |                    ARCOUNT                    |
//  +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
import * as dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import * as net from 'node:net';
import type { CheckTarget, CheckResult, Checker } from './checker';
import { Trail, abortReason, connectTimeoutMs, deadline, endpoint, errorText } from './checker';
import type { DnsCheckOptions, DnsQueryType } from './types';
import { CHECK_DEFAULTS } from './types';

/** RFC 1035 §3.2.2 / RFC 3596 TYPE values. */
export const DNS_TYPES: Record<DnsQueryType, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 };

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** Encodes a domain name as RFC 1035 §3.1 labels; "." is the root (a single zero byte). */
export function encodeName(name: string): Buffer {
  const labels = name === '.' || name === '' ? [] : name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [];
  for (const label of labels) {
    const b = Buffer.from(label, 'ascii');
    if (b.length === 0 || b.length > 63) throw new Error(`DNS_CHECK name "${name}": label "${label}" must be 1..63 bytes`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new Error(`DNS_CHECK name "${name}" is longer than 255 bytes encoded`);
  return out;
}

/** Builds a standard query (opcode 0, RD set as keepalived does) with one question, class IN. */
export function buildQuery(id: number, name: string, type: DnsQueryType): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(DNS_TYPES[type], 0);
  tail.writeUInt16BE(1, 2); // class IN
  return Buffer.concat([header, encodeName(name), tail]);
}

export interface DnsReplySummary {
  id: number;
  isResponse: boolean;
  rcode: number;
  answers: number;
}

export function parseReplyHeader(msg: Buffer): DnsReplySummary {
  if (msg.length < 12) throw new Error(`DNS reply of ${msg.length} bytes is shorter than the 12-byte header`);
  const flags = msg.readUInt16BE(2);
  return { id: msg.readUInt16BE(0), isResponse: (flags & 0x8000) !== 0, rcode: flags & 0xf, answers: msg.readUInt16BE(6) };
}

export class DnsChecker implements Checker {
  readonly kind = 'DNS_CHECK' as const;
  private readonly type: DnsQueryType;
  private readonly name: string;

  constructor(readonly options: DnsCheckOptions) {
    this.type = options.type ?? CHECK_DEFAULTS.dnsType;
    this.name = options.name ?? CHECK_DEFAULTS.dnsName;
    if (!(this.type in DNS_TYPES)) throw new Error(`DNS_CHECK type "${String(this.type)}" is not one of ${Object.keys(DNS_TYPES).join('|')}`);
    encodeName(this.name); // validate now, not at the first check
  }

  async check(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const trail = new Trail();
    const to = endpoint(this.options, target);
    const id = randomInt(0, 0x10000);
    const query = buildQuery(id, this.name, this.type);
    const limit = connectTimeoutMs(this.options);
    trail.add(`query ${this.name} ${this.type} id ${id} to ${to.address}:${to.port}`);
    const d = deadline(signal, limit, 'DNS reply');
    const socket = dgram.createSocket(net.isIPv6(to.address) ? 'udp6' : 'udp4');
    try {
      const reply = await new Promise<DnsReplySummary>((resolve, reject) => {
        const onAbort = (): void => reject(new Error(abortReason(d.signal)));
        if (d.signal.aborted) return onAbort();
        d.signal.addEventListener('abort', onAbort, { once: true });
        socket.on('error', reject);
        // A connected socket (as keepalived's) only receives from the server asked, and gets
        // its ICMP port unreachable as ECONNREFUSED instead of waiting for the timeout.
        socket.on('message', (msg) => {
          // Only our id: anything else is ignored, not a failure.
          try {
            const r = parseReplyHeader(msg);
            if (r.id !== id || !r.isResponse) return;
            resolve(r);
          } catch (err) {
            reject(err instanceof Error ? err : new Error(errorText(err)));
          }
        });
        socket.bind({ address: this.options.bindTo, port: this.options.bindPort ?? 0 }, () =>
          socket.connect(to.port, to.address, (err?: Error) => {
            if (err) return reject(err);
            socket.send(query, (e) => e && reject(e));
          }),
        );
      });
      const rcodeName = RCODE_NAMES[reply.rcode] ?? `RCODE${reply.rcode}`;
      trail.add(`reply ${rcodeName}, ${reply.answers} answer(s)`);
      if (reply.rcode !== 0) return trail.fail(`server answered ${rcodeName}`);
      return trail.ok();
    } catch (err) {
      return trail.fail(`DNS check failed: ${errorText(err)}`);
    } finally {
      socket.close();
      d.dispose();
    }
  }
}
