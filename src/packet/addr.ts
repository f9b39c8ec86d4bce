// Address helpers for configuration, tests and listings (not the packet path: they allocate strings
// and throw). IPv4 addresses are host-order uint32 numbers (10.0.0.1 = 0x0a000001), MACs are 48-bit
// integers (exact in a double), which is how the header classes store them.

import { UvsError } from '../runtime/errors';
/** A malformed address; `code` is stable, the message says what and where. */
export class AddressError extends UvsError {
  constructor(code: 'UVS_ERR_BAD_IPV4' | 'UVS_ERR_BAD_MAC', message: string) {
    super(code, message);
  }
}

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Strict dotted-quad parser: exactly four decimal parts 0..255, no leading zeros (which inet_aton
 * would read as octal), no spaces, no shorthand like "10.1". Returns a host-order uint32.
 */
export function ipv4ToInt(text: string): number {
  const m = DOTTED_QUAD.exec(text);
  if (m === null) {
    throw new AddressError('UVS_ERR_BAD_IPV4', `invalid IPv4 address ${JSON.stringify(text)}: expected four dot-separated decimal numbers like 10.0.0.1`);
  }
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part[0] === '0') {
      throw new AddressError('UVS_ERR_BAD_IPV4', `invalid IPv4 address ${JSON.stringify(text)}: part ${i} "${part}" has a leading zero (ambiguous: octal in inet_aton)`);
    }
    const n = Number(part);
    if (n > 255) {
      throw new AddressError('UVS_ERR_BAD_IPV4', `invalid IPv4 address ${JSON.stringify(text)}: part ${i} is ${n}, above 255`);
    }
    value = value * 256 + n;
  }
  return value;
}

/**
 * Dotted quad of a host-order uint32; throws on anything that is not an integer in 0..2^32-1
 * (an Int32Array cell holding an address is passed as `cell >>> 0`).
 */
export function intToIpv4(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new AddressError('UVS_ERR_BAD_IPV4', `invalid IPv4 address value ${n}: expected an integer 0..4294967295`);
  }
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** A strict dotted quad (see ipv4ToInt) or an address that is already a host-order number. */
export function toIpv4Int(addr: string | number): number {
  if (typeof addr === 'string') return ipv4ToInt(addr);
  if (!Number.isInteger(addr) || addr < 0 || addr > 0xffffffff) {
    throw new AddressError('UVS_ERR_BAD_IPV4', `invalid IPv4 address value ${addr}: expected an integer 0..4294967295`);
  }
  return addr;
}

const MAC_TEXT = /^([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})$/;

/** Parses "aa:bb:cc:dd:ee:ff" (exactly six two-digit hex groups, either case) into a 48-bit integer. */
export function macToInt(text: string): number {
  const m = MAC_TEXT.exec(text);
  if (m === null) {
    throw new AddressError('UVS_ERR_BAD_MAC', `invalid MAC address ${JSON.stringify(text)}: expected six colon-separated two-digit hex bytes like 02:00:00:00:00:01`);
  }
  let value = 0;
  for (let i = 1; i <= 6; i++) value = value * 256 + parseInt(m[i]!, 16);
  return value;
}

/** "aa:bb:cc:dd:ee:ff" (lower case, like ip link) of a 48-bit integer. */
export function intToMac(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffffffff) {
    throw new AddressError('UVS_ERR_BAD_MAC', `invalid MAC address value ${n}: expected an integer 0..2^48-1`);
  }
  const hi = Math.floor(n / 0x100000000);
  const lo = n % 0x100000000;
  const bytes = [(hi >>> 8) & 0xff, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Reads a 6-byte MAC at `offset` as a 48-bit integer (packet path: no allocation). Caller checks bounds. */
export function readMac(view: DataView, offset: number): number {
  return view.getUint16(offset) * 0x100000000 + view.getUint32(offset + 2);
}

/** Writes a 48-bit integer MAC at `offset`. Caller checks bounds. */
export function writeMac(view: DataView, offset: number, mac: number): void {
  view.setUint16(offset, Math.floor(mac / 0x100000000));
  view.setUint32(offset + 2, mac % 0x100000000);
}

export const BROADCAST_MAC = 0xffffffffffff;
