// The gratuitous ARP a new master broadcasts for each VIP (RFC 3768 §6.4.2: "broadcast a
// gratuitous ARP request containing the virtual router MAC address for each IP address"; uvs,
// like keepalived without use_vmac, announces the interface's own MAC). An ARP request whose
// sender and target IP are both the VIP, target MAC all-ones, to the broadcast address — what
// keepalived's send_gratuitous_arp() and `arping -U` put on the wire.

import { ARP_LENGTH, ARP_OP_REQUEST, ArpPacket } from '../packet/arp';
import { ETHERNET_HEADER_LENGTH, ETHERTYPE_ARP, EthernetHeader } from '../packet/ethernet';
import { BROADCAST_MAC } from '../packet/addr';
import { viewOf } from '../packet/layer';

/** Ethernet's minimum frame without FCS: AF_PACKET sends what it is given, so pad here. */
export const MIN_FRAME_LENGTH = 60;

/** One gratuitous ARP frame; mac is a 48-bit integer, ip a host-order uint32. */
export function gratuitousArpFrame(mac: number, ip: number): Uint8Array {
  const frame = new Uint8Array(MIN_FRAME_LENGTH);
  const view = viewOf(frame);
  const eth = new EthernetHeader();
  eth.dst = BROADCAST_MAC;
  eth.src = mac;
  eth.etherType = ETHERTYPE_ARP;
  eth.encode(frame, view, 0);
  const arp = new ArpPacket();
  arp.setEthernetIpv4(ARP_OP_REQUEST);
  arp.senderMac = mac;
  arp.senderIp = ip;
  arp.targetMac = BROADCAST_MAC;
  arp.targetIp = ip;
  arp.encode(frame, view, ETHERNET_HEADER_LENGTH);
  return frame;
}

/** Bytes of the frame that carry content (the rest is padding). */
export const GARP_CONTENT_LENGTH = ETHERNET_HEADER_LENGTH + ARP_LENGTH;
