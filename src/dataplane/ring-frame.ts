// What the worker checks in a ring frame's descriptor (native/src/uvs_native.cc: tp_status,
// tp_vlan_tci, sll_pkttype, sll_ifindex) before the frame goes to the pipeline. The capture
// filter (bpf.ts) already refuses all of these in the kernel; this is the same rule where the
// frame is used, so a filter that is missing or replaced (the pcap backend, a socket opened before
// its filter was attached) cannot make uvs forward a frame that is not its own:
//  - an 802.1Q tag with a VID other than 0: the frame is that VLAN device's (bpf.ts, header);
//  - a packet type other than PACKET_HOST, or another interface than the socket's.
import { DropReason } from '../packet/drop';

/** linux/if_packet.h */
export const TP_STATUS_VLAN_VALID = 1 << 4;
export const PACKET_HOST = 0;

/** The drop reason for a frame with this descriptor, or 0 when the pipeline may have it. */
export function ringFrameDrop(status: number, vlanTci: number, pkttype: number, ifindex: number, socketIfindex: number): number {
  if ((status & TP_STATUS_VLAN_VALID) !== 0 && (vlanTci & 0x0fff) !== 0) return DropReason.FOREIGN_VLAN;
  if (pkttype !== PACKET_HOST || (socketIfindex !== 0 && ifindex !== socketIfindex)) return DropReason.NOT_HOST_FRAME;
  return 0;
}
