/**
 * Address words of keepalived.conf: "10.0.0.1", "10.0.0.1/24", "ae00::1", "192.168.200.3-10"
 * (a range in the last octet, or last 16-bit group for IPv6, as in virtual_server_group).
 * Validation is as strict as inet_pton(3), which keepalived uses.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

export interface IpAddress {
  /** As written (IPv6 zone ids are not accepted). */
  text: string;
  family: IpFamily;
}

export interface IpPrefix extends IpAddress {
  /** Prefix length; 32 or 128 when none was written. */
  prefixLen: number;
  /** True when the text carried an explicit "/len". */
  hasPrefix: boolean;
}

export function parseIp(text: string): IpAddress | null {
  if (isIPv4(text)) return { text, family: 4 };
  if (isIPv6(text) && !text.includes('%')) return { text, family: 6 };
  return null;
}

export function parsePrefix(text: string): IpPrefix | null {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addrText);
  if (!ip) return null;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, prefixLen: max, hasPrefix: false };
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return null;
  const len = Number(lenText);
  if (len > max) return null;
  return { ...ip, prefixLen: len, hasPrefix: true };
}

export interface IpRange extends IpAddress {
  /** Last value of the range in the final octet / 16-bit group (equal to the first when no range). */
  rangeEnd: number;
  rangeStart: number;
}

/** "A.B.C.D-E" or "X::Y-Z" (Z hex); the end must not be below the start and must fit the field. */
export function parseIpRange(text: string): IpRange | null {
  const dash = text.lastIndexOf('-');
  if (dash < 0) {
    const ip = parseIp(text);
    if (!ip) return null;
    const last = lastField(ip);
    return { ...ip, rangeStart: last, rangeEnd: last };
  }
  const ip = parseIp(text.slice(0, dash));
  if (!ip) return null;
  const endText = text.slice(dash + 1);
  const end = ip.family === 4 ? (/^\d{1,3}$/.test(endText) ? Number(endText) : NaN) : /^[0-9a-fA-F]{1,4}$/.test(endText) ? parseInt(endText, 16) : NaN;
  const start = lastField(ip);
  if (Number.isNaN(end) || end > (ip.family === 4 ? 255 : 0xffff) || end < start) return null;
  return { ...ip, rangeStart: start, rangeEnd: end };
}

function lastField(ip: IpAddress): number {
  if (ip.family === 4) return Number(ip.text.split('.')[3]);
  const groups = ip.text.split(':');
  const last = groups[groups.length - 1]!; // split() returns at least one element
  if (last.includes('.')) return Number(last.split('.')[3]);
  return last === '' ? 0 : parseInt(last, 16);
}

export function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}
