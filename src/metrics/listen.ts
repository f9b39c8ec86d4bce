// The value of `uvsd --metrics ADDR:PORT`, parsed apart from the server so that reading the
// command line does not load prom-client (about 200 ms of a start without --metrics).

import { isIP } from 'node:net';

export interface ListenAddress {
  /** '' = every address (IPv4 and IPv6). */
  host: string;
  port: number;
}

/** --metrics ADDR:PORT: an IPv4 address, a bracketed IPv6 address or nothing (every address),
 *  then a port 1-65535. Throws a message naming what is wrong; the caller names the option. */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(text);
  if (!m) throw new Error(`"${text}" is not ADDR:PORT (e.g. 127.0.0.1:9100, [::1]:9100 or :9100 for every address)`);
  const host = m[1] ?? m[2] ?? '';
  if (m[1] !== undefined && isIP(host) !== 6) throw new Error(`"${host}" in "${text}" is not an IPv6 address`);
  if (m[1] === undefined && host !== '' && isIP(host) !== 4) throw new Error(`"${host}" in "${text}" is not an IPv4 address (IPv6 goes in brackets)`);
  const port = m[3]!;
  if (!/^[0-9]+$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new Error(`port "${port}" in "${text}" is not 1-65535`);
  return { host, port: Number(port) };
}
