// UDP_CHECK (keepalived's check_udp.c): send `payload` (random bytes when unset) from a connected
// UDP socket. A connected socket receives the ICMP errors for it (port/host/net unreachable) as
// ECONNREFUSED / EHOSTUNREACH / ENETUNREACH, which fail the check. Without require_reply, no error
// within connect_timeout is success; with it, a reply must arrive, its length within
// [min_reply_length, max_reply_length], and with a require_reply HEX_STR, its bytes must match
// the expected ones up to the shorter of the two, X nibbles ignored.
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import type { CheckTarget, CheckResult, Checker } from './checker';
import { Trail, abortReason, connectTimeoutMs, deadline, endpoint, errorText } from './checker';
import type { UdpCheckOptions } from './types';
import { CHECK_DEFAULTS } from './types';

export function replyMatches(reply: Buffer, expected: { bytes: Buffer; mask: Buffer }): boolean {
  const n = Math.min(reply.length, expected.bytes.length);
  for (let i = 0; i < n; i++) if ((reply[i]! & expected.mask[i]!) !== (expected.bytes[i]! & expected.mask[i]!)) return false;
  return true;
}

export class UdpChecker implements Checker {
  readonly kind = 'UDP_CHECK' as const;

  constructor(readonly options: UdpCheckOptions) {}

  async check(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const trail = new Trail();
    const to = endpoint(this.options, target);
    const limit = connectTimeoutMs(this.options);
    const payload = this.options.payload ?? randomBytes(16);
    const wantReply = this.options.requireReply === true || this.options.expectedReply !== undefined;
    const minLen = this.options.minReplyLength ?? 0;
    const maxLen = this.options.maxReplyLength ?? CHECK_DEFAULTS.udpMaxReplyLength;
    trail.add(`send ${payload.length} bytes to ${to.address}:${to.port}${wantReply ? ', reply required' : ''}`);
    const d = deadline(signal, limit, 'UDP reply');
    const socket = dgram.createSocket(net.isIPv6(to.address) ? 'udp6' : 'udp4');
    try {
      const outcome = await new Promise<{ reply: Buffer | null }>((resolve, reject) => {
        const onAbort = (): void => {
          // Without require_reply, silence until the deadline is success; the parent's abort is not.
          if (!wantReply && !signal.aborted) resolve({ reply: null });
          else reject(new Error(abortReason(d.signal)));
        };
        if (d.signal.aborted) return onAbort();
        d.signal.addEventListener('abort', onAbort, { once: true });
        socket.on('error', reject);
        socket.on('message', (msg) => resolve({ reply: msg }));
        socket.bind({ address: this.options.bindTo, port: this.options.bindPort ?? 0 }, () => {
          socket.connect(to.port, to.address, (err?: Error) => {
            if (err) return reject(err);
            socket.send(payload, (e) => e && reject(e));
          });
        });
      });
      if (!outcome.reply) return trail.ok(`no ICMP error within ${limit} ms`);
      const reply = outcome.reply;
      trail.add(`reply of ${reply.length} bytes`);
      if (!wantReply) return trail.ok();
      if (reply.length < minLen || reply.length > maxLen)
        return trail.fail(`reply length ${reply.length} outside ${minLen}..${maxLen}`);
      if (this.options.expectedReply && !replyMatches(reply, this.options.expectedReply))
        return trail.fail(`reply ${reply.subarray(0, 32).toString('hex')} does not match ${this.options.expectedReply.bytes.toString('hex')}`);
      return trail.ok('reply accepted');
    } catch (err) {
      return trail.fail(`UDP check failed: ${errorText(err)}`);
    } finally {
      socket.close();
      d.dispose();
    }
  }
}
