// keepalived 2.2's log texts for checker results and the table changes they cause, so that log
// alerts written for keepalived keep matching uvsd's lines. The formats are keepalived's
// (check_tcp.c, check_http.c, check_udp.c, check_ping.c, ipwrapper.c):
//   TCP connection to [10.0.0.2]:tcp:80 success.
//   TCP_CHECK on service [10.0.0.2]:tcp:80 failed.
//   Removing service [10.0.0.2]:tcp:80 from VS [10.0.0.1]:tcp:80     (inhibit_on_failure: Disabling)
//   Adding service [10.0.0.2]:tcp:80 to VS [10.0.0.1]:tcp:80         (inhibit_on_failure: Enabling)
//   Changing weight from 1 to 3 for active service [10.0.0.2]:tcp:80 of VS [10.0.0.1]:tcp:80
// An address is keepalived's "trio" (inet_sockaddrtotrio): [address]:protocol:port.

import type { CheckEvent } from './runner';
import type { CheckerKind, VirtualServerOptions } from './types';

function trio(address: string, vs: VirtualServerOptions, port: number): string {
  return `[${address}]:${(vs.protocol ?? 'TCP').toLowerCase()}:${port}`;
}

/** keepalived's failure line of each checker ("TCP_CHECK on service %s failed."). */
function failedText(kind: CheckerKind, rs: string): string {
  switch (kind) {
    case 'TCP_CHECK': return `TCP_CHECK on service ${rs} failed.`;
    case 'HTTP_GET':
    case 'SSL_GET': return `HTTP_CHECK on service ${rs} failed.`;
    case 'UDP_CHECK': return `UDP_CHECK on service ${rs} failed.`;
    case 'PING_CHECK': return `ICMP CHECK on service ${rs} failed.`;
    default: return `${kind} on service ${rs} failed.`;
  }
}

/** keepalived's success line of each checker, where it logs one at info level. */
function succeededText(kind: CheckerKind, rs: string): string {
  switch (kind) {
    case 'TCP_CHECK': return `TCP connection to ${rs} success.`;
    case 'HTTP_GET':
    case 'SSL_GET': return `Remote Web server ${rs} succeed on service.`;
    case 'SMTP_CHECK': return `Remote SMTP server ${rs} succeed on service.`;
    default: return `${kind} on service ${rs} succeeded.`;
  }
}

/** keepalived's detail (-D): every single check with its outcome, logged at debug level. */
export function checkDetailLine(e: CheckEvent): string | null {
  if (e.type !== 'check') return null;
  const rs = trio(e.rs.address, e.vs, e.rs.port);
  const how = e.result.trail.length ? ` (${e.result.trail.join(', ')})` : '';
  return `${e.checker} on service ${rs} of VS ${trio(e.vs.address, e.vs, e.vs.port)}: ${e.result.ok ? 'success' : 'failure'} in ${Math.round(e.result.elapsedMs)} ms${how}`;
}

/** The lines keepalived logs (at LOG_INFO) for a checker event; the reason of a failure last. */
export function keepalivedCheckLines(e: CheckEvent): string[] {
  if (e.type === 'pool' || e.type === 'check') return [];
  const vs = trio(e.vs.address, e.vs, e.vs.port);
  switch (e.type) {
    case 'rs-down': {
      if (e.stopping) return [];
      const rs = trio(e.rs.address, e.vs, e.rs.port);
      const lines = e.checker ? [failedText(e.checker, rs)] : [];
      const why = e.trail[e.trail.length - 1];
      if (why) lines.push(`${e.checker ?? 'check'} on service ${rs}: ${why}`);
      // Under alpha the first failure finds the server never added: nothing to remove.
      if (!e.initial) lines.push(`${e.inhibit ? 'Disabling' : 'Removing'} service ${rs} from VS ${vs}`);
      return lines;
    }
    case 'rs-up': {
      const rs = trio(e.rs.address, e.vs, e.rs.port);
      const inhibit = e.rs.inhibitOnFailure ?? e.vs.inhibitOnFailure ?? false;
      return [...(e.checker ? [succeededText(e.checker, rs)] : []), `${inhibit ? 'Enabling' : 'Adding'} service ${rs} to VS ${vs}`];
    }
    case 'rs-weight':
      return [`Changing weight from ${e.previous} to ${e.weight} for ${e.alive ? '' : 'in'}active service ${trio(e.rs.address, e.vs, e.rs.port)} of VS ${vs}`];
    case 'quorum-lost':
      return e.stopping ? [] : [`Lost quorum ${e.weightSum} < ${e.threshold} for VS ${vs}${e.sorrySwitched ? '; sorry server in' : ''}`];
    case 'quorum-gained':
      return [`Gained quorum ${e.weightSum} >= ${e.threshold} for VS ${vs}${e.sorrySwitched ? '; sorry server out' : ''}`];
  }
}
