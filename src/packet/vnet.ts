// struct virtio_net_hdr (legacy, 10 bytes; virtio spec 5.1.6, include/uapi/linux/virtio_net.h).
// With PACKET_VNET_HDR an AF_PACKET socket puts one in front of every frame it receives and
// expects one in front of every frame it sends: it carries the offloads a frame still needs
// (a partial checksum to complete, a GSO super-frame to segment).
//
//   0               1               2               3
//  +---------------+---------------+-------------------------------+
//  |     flags     |   gso_type    |            hdr_len            |
//  +---------------+---------------+-------------------------------+
//  |           gso_size            |          csum_start           |
//  +-------------------------------+-------------------------------+
//  |          csum_offset          |
//  +-------------------------------+

import { endianness } from 'node:os';

export const VNET_HDR_LEN = 10;
/** flags */
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
/** gso_type */
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_ECN = 0x80;

/** The virtio_net_hdr fields (virtio spec 5.1.6). */
export interface VnetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function newVnetHdr(): VnetHdr {
  return { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
}

// The kernel writes the legacy header in the host's byte order for packet sockets (vio_le() is
// virtio_legacy_is_little_endian()).
const vnetLittleEndian = endianness() === 'LE';

/** Reads the virtio_net_hdr that precedes the frame at frameOffset (vnetHdr sockets). No allocation. */
export function readVnetHdr(view: DataView, frameOffset: number, out: VnetHdr): void {
  const at = frameOffset - VNET_HDR_LEN;
  out.flags = view.getUint8(at);
  out.gsoType = view.getUint8(at + 1);
  out.hdrLen = view.getUint16(at + 2, vnetLittleEndian);
  out.gsoSize = view.getUint16(at + 4, vnetLittleEndian);
  out.csumStart = view.getUint16(at + 6, vnetLittleEndian);
  out.csumOffset = view.getUint16(at + 8, vnetLittleEndian);
}

/** Writes a virtio_net_hdr at `at` (the start of a frame to send on a vnetHdr socket). */
export function writeVnetHdr(view: DataView, at: number, hdr: VnetHdr): void {
  view.setUint8(at, hdr.flags);
  view.setUint8(at + 1, hdr.gsoType);
  view.setUint16(at + 2, hdr.hdrLen, vnetLittleEndian);
  view.setUint16(at + 4, hdr.gsoSize, vnetLittleEndian);
  view.setUint16(at + 6, hdr.csumStart, vnetLittleEndian);
  view.setUint16(at + 8, hdr.csumOffset, vnetLittleEndian);
}
