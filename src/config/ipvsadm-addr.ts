// Address, port and number parsing as ipvsadm does it: inet_aton(3) for addresses (so "10.1" is
// 10.0.0.1 and "0x0a.1" is too), strtol(3)-style numbers, and host/service names from /etc/hosts and
// /etc/services (ipvsadm asks gethostbyname/getservbyname; uvs reads the files only, so it never
// waits on DNS).

import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';

/** inet_aton(3): 1 to 4 parts separated by dots, each decimal, octal (leading 0) or hex (0x);
 *  the last part fills the remaining bytes. Returns the address (host order, unsigned) or null. */
export function inetAton(text: string): number | null {
  const quick = dottedQuad(text);
  if (quick >= 0) return quick;
  // glibc stops at the first whitespace and accepts what came before it.
  const ws = text.search(/\s/);
  const s = ws >= 0 ? text.slice(0, ws) : text;
  if (s === '') return null;
  const parts = s.split('.');
  if (parts.length > 4) return null;
  const values: number[] = [];
  for (const p of parts) {
    const v = parseCNumber(p);
    if (v === null) return null;
    values.push(v);
  }
  const last = values[values.length - 1]!;
  const maxLast = [0xffffffff, 0xffffff, 0xffff, 0xff][values.length - 1]!;
  if (last > maxLast) return null;
  let addr = 0;
  for (let i = 0; i < values.length - 1; i++) {
    if (values[i]! > 0xff) return null;
    addr += values[i]! * 2 ** (24 - 8 * i);
  }
  return (addr + last) >>> 0;
}

/**
 * The common spelling, four plain decimal parts ("10.1.2.3", no leading zero, each at most 255),
 * read without regexes or arrays: -R of 110,000 lines parses two addresses per line. Returns -1
 * for anything else, which inetAton then reads in full (octal, hex, fewer parts, spaces).
 */
function dottedQuad(s: string): number {
  const n = s.length;
  if (n < 7 || n > 15) return -1;
  let addr = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? s.charCodeAt(i) : 46; // '.' ends the last part
    if (c === 46) {
      if (digits === 0 || part > 255 || parts === 4) return -1;
      addr = addr * 256 + part;
      parts++;
      part = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57) return -1;
    // A leading zero makes the part octal (or hex): leave it to the full reader.
    if (digits === 1 && part === 0) return -1;
    part = part * 10 + (c - 48);
    digits++;
  }
  return parts === 4 ? addr >>> 0 : -1;
}

/** One inet_aton part: strtoul with base 0, digits only (no sign, no spaces). */
function parseCNumber(p: string): number | null {
  let v: number;
  if (/^0[xX][0-9a-fA-F]*$/.test(p)) v = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
  else if (/^0[0-7]*$/.test(p)) v = parseInt(p, 8);
  else if (/^[1-9][0-9]*$/.test(p)) v = parseInt(p, 10);
  else return null;
  return v > 0xffffffff ? null : v;
}

/** ipvsadm's string_to_number: strtol base 10, the whole string, within [min, max]; else -1. */
export function stringToNumber(s: string, min: number, max: number): number {
  // Plain digits (the usual case) without a regex; anything else (spaces, a sign) below.
  const len = s.length;
  if (len > 0 && len <= 9) {
    let v = 0;
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
    }
    if (i === len) return v < min || v > max ? -1 : v;
  }
  // strtol skips leading whitespace and takes an optional sign.
  const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)$/.exec(s);
  if (!m) return -1;
  const n = Number(m[1]);
  if (!Number.isSafeInteger(n) || n < min || n > max) return -1;
  return n;
}

export function isAllDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

export function isIPv6Literal(s: string): boolean {
  // Every IPv6 literal has at least two colons ("::" or seven separators); "10.0.0.1:80" has
  // one, and skipping node's IPv6 regex for it matters when -R reads 100,000 lines.
  const first = s.indexOf(':');
  if (first < 0 || s.indexOf(':', first + 1) < 0) return false;
  return isIPv6(s);
}

// ---- names ---------------------------------------------------------------------------------------

/** Host and service names, both ways. An interface so tests and formatting use fixed tables. */
export interface NameResolver {
  hostToAddr(name: string): number | null;
  addrToHost(addr: number): string | null;
  /** protocol: 'tcp' | 'udp' */
  serviceToPort(name: string, protocol: string): number | null;
  portToService(port: number, protocol: string): string | null;
}

export interface NameTables {
  /** name → address; and address → first name (gethostbyaddr's h_name). */
  hosts: [string, number][];
  /** [name, port, protocol] in file order; aliases too. */
  services: [string, number, string][];
}

export function parseHostsFile(text: string): [string, number][] {
  const out: [string, number][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [addrText, ...names] = line.split(/\s+/);
    if (!addrText || !/^\d+\.\d+\.\d+\.\d+$/.test(addrText)) continue;
    const addr = inetAton(addrText);
    if (addr === null) continue;
    for (const n of names) out.push([n, addr]);
  }
  return out;
}

export function parseServicesFile(text: string): [string, number, string][] {
  const out: [string, number, string][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [name, portProto, ...aliases] = line.split(/\s+/);
    const m = /^(\d+)\/(\w+)$/.exec(portProto ?? '');
    if (!name || !m) continue;
    const port = Number(m[1]);
    const proto = m[2]!.toLowerCase();
    out.push([name, port, proto]);
    for (const a of aliases) out.push([a, port, proto]);
  }
  return out;
}

export class TableResolver implements NameResolver {
  private readonly byName = new Map<string, number>();
  private readonly byAddr = new Map<number, string>();
  private readonly svcByName = new Map<string, number>();
  private readonly svcByPort = new Map<string, string>();

  constructor(tables: NameTables) {
    for (const [name, addr] of tables.hosts) {
      if (!this.byName.has(name)) this.byName.set(name, addr);
      if (!this.byAddr.has(addr)) this.byAddr.set(addr, name);
    }
    for (const [name, port, proto] of tables.services) {
      const nk = `${proto}/${name}`;
      if (!this.svcByName.has(nk)) this.svcByName.set(nk, port);
      const pk = `${proto}/${port}`;
      // The first line for a port is its canonical name (getservbyport's s_name); aliases follow it.
      if (!this.svcByPort.has(pk)) this.svcByPort.set(pk, name);
    }
  }

  hostToAddr(name: string): number | null {
    return this.byName.get(name) ?? null;
  }

  addrToHost(addr: number): string | null {
    return this.byAddr.get(addr >>> 0) ?? null;
  }

  serviceToPort(name: string, protocol: string): number | null {
    return this.svcByName.get(`${protocol}/${name}`) ?? null;
  }

  portToService(port: number, protocol: string): string | null {
    return this.svcByPort.get(`${protocol}/${port}`) ?? null;
  }
}

/** The system's /etc/hosts and /etc/services, read once, lazily; missing files mean no names. */
export function systemResolver(hostsPath = '/etc/hosts', servicesPath = '/etc/services'): NameResolver {
  let table: TableResolver | null = null;
  const load = (): TableResolver => {
    if (table) return table;
    table = new TableResolver({
      hosts: parseHostsFile(readOrEmpty(hostsPath)),
      services: parseServicesFile(readOrEmpty(servicesPath)),
    });
    return table;
  };
  return {
    hostToAddr: (n) => load().hostToAddr(n),
    addrToHost: (a) => load().addrToHost(a),
    serviceToPort: (n, p) => load().serviceToPort(n, p),
    portToService: (port, p) => load().portToService(port, p),
  };
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** A resolver that knows no names: addresses and ports stay numeric. */
export const NUMERIC_ONLY: NameResolver = {
  hostToAddr: () => null,
  addrToHost: () => null,
  serviceToPort: () => null,
  portToService: () => null,
};
