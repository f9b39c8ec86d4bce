// Why a frame was not accepted by a decoder or by the data plane.
//
// The numeric codes are stable: they index per-worker counter arrays in shared memory and appear in
// `uvsadm` listings, so a code is never reused or renumbered. New reasons are appended at the end
// (before DROP_REASON_COUNT) and get a row in DROP_REASON_NAMES. 0 is never a reason: decoders
// return `DropReason | 0` and 0 means "accepted".

export const enum DropReason {
  /** Frame shorter than the 14-byte Ethernet II header. */
  TRUNCATED_ETH = 1,
  /** EtherType says 802.1Q/802.1ad but the 4-byte tag is not all there. */
  TRUNCATED_VLAN = 2,
  /** Fewer than 28 bytes of ARP (Ethernet/IPv4 form). */
  TRUNCATED_ARP = 3,
  /** ARP for something else than Ethernet hardware and IPv4 protocol addresses (htype/ptype/hlen/plen). */
  BAD_ARP_FORMAT = 4,
  /** Fewer than 20 bytes of IPv4 header, or fewer than IHL×4, or fewer than the total length says. */
  TRUNCATED_IP = 5,
  /** IP version nibble is not 4. */
  BAD_IP_VERSION = 6,
  /** IHL below 5 (a header is at least 20 bytes). */
  BAD_IHL = 7,
  /** Total length smaller than the header itself. */
  BAD_IP_TOTAL_LENGTH = 8,
  /** Header checksum does not verify (RFC 1071 sum over the header is not 0xffff). */
  BAD_IP_CHECKSUM = 9,
  /** An option's length byte is below 2 or runs past the header (the kernel's ip_options_compile refuses these). */
  BAD_IP_OPTIONS = 10,
  /** Fewer than 20 bytes of TCP header, or fewer than data offset × 4. */
  TRUNCATED_TCP = 11,
  /** TCP data offset below 5 (tcp_v4_rcv's bad_packet). */
  BAD_TCP_OFFSET = 12,
  /** TCP checksum (with the pseudo-header) does not verify. */
  BAD_TCP_CHECKSUM = 13,
  /** Fewer than 8 bytes of UDP header. */
  TRUNCATED_UDP = 14,
  /** UDP length field below 8 or beyond the IP payload. */
  BAD_UDP_LENGTH = 15,
  /** UDP checksum (non-zero, with the pseudo-header) does not verify. */
  BAD_UDP_CHECKSUM = 16,
  /** Fewer than 8 bytes of ICMP header. */
  TRUNCATED_ICMP = 17,
  /** ICMP checksum does not verify. */
  BAD_ICMP_CHECKSUM = 18,
  /** An ICMP error quotes less than an IP header + 8 bytes (RFC 792), so the flow cannot be found. */
  TRUNCATED_ICMP_QUOTE = 19,
  /** Fewer bytes of VRRP than the fixed part, the address list and (v2) the auth data need. */
  TRUNCATED_VRRP = 20,
  /** VRRP version other than 2 or 3. */
  BAD_VRRP_VERSION = 21,
  /** VRRP packet type other than 1 (advertisement), RFC 3768 5.3.2 / RFC 5798 5.2.2. */
  BAD_VRRP_TYPE = 22,
  /** VRRP checksum does not verify. */
  BAD_VRRP_CHECKSUM = 23,
  /** VRRP advert with IP TTL other than 255 (RFC 3768 7.1 / RFC 5798 7.1: must be discarded). */
  BAD_VRRP_TTL = 24,
  /** VRRP v2 authentication type or data does not match the instance (RFC 3768 7.1). */
  BAD_VRRP_AUTH = 25,
  /** Asked to strip IP-in-IP from a packet whose protocol is not 4. */
  NOT_IPIP = 26,
  /** A fragment other than the first: it has no transport header to classify on. */
  IP_FRAGMENT = 27,
  /** EtherType the data plane does not handle. */
  UNSUPPORTED_ETHERTYPE = 28,
  /** IP protocol the data plane does not handle. */
  UNSUPPORTED_IP_PROTOCOL = 29,
  /** TTL would reach 0 when forwarded. */
  TTL_EXPIRED = 30,
  /** The packet would not fit in the MTU after encapsulation and DF is set. */
  TOO_BIG = 31,
  // Data-plane verdicts (src/dataplane/pipeline.ts), beyond what a header decoder can say.
  /** A packet for a service whose VIP this director does not hold now (VRRP backup). */
  SERVICE_INACTIVE = 32,
  /** No connection, and this packet may not start one (TCP without SYN while sloppy_tcp is 0). */
  NO_CONN = 33,
  /** The scheduler found no available real server (IPVS: "no destination available"). */
  NO_DEST = 34,
  /** The connection table is full: a new connection was refused. */
  CONN_TABLE_FULL = 35,
  /** The connection's real server was deleted (expire_nodest_conn decides what follows). */
  DEST_UNAVAILABLE = 36,
  /** The next hop's MAC is not resolved (yet). */
  NO_NEXT_HOP = 37,
  /** DR toward a real server that is not on the director's L2 segment. */
  NOT_ON_LINK = 38,
  /** A forwarding method this data plane does not implement yet. */
  METHOD_UNSUPPORTED = 39,
  /** A NAT reply whose connection entry has no next hop toward the client (created by
   *  connection sync) and no route through a resolved gateway contains the client. */
  NO_CLIENT_HOP = 40,
  /** A GSO super-frame of a kind the data plane cannot segment (TUN needs TCPv4 segments). */
  GSO_UNSUPPORTED = 41,
  /** The worker's transmit buffer had no room for the packet it built (TUN, ICMP errors). */
  TX_BUFFER_FULL = 42,
  /** A new connection dropped by the flood defence's drop_packet (src/conn/defense.ts). */
  DROP_PACKET = 43,
  /**
   * A packet to a virtual service from a martian source: 0/8, 127/8, multicast (224/4), the
   * limited broadcast, or the destination VIP itself. The kernel drops these before routing
   * (ip_route_input_slow, fib_validate_source); uvs taps earlier, so it checks them itself.
   */
  MARTIAN_SOURCE = 44,
  /**
   * A frame with an 802.1Q tag whose VID is not 0 (the ring's TP_STATUS_VLAN_VALID, tp_vlan_tci) on
   * the device it was tapped on: it belongs to that VID's VLAN device, which sees it untagged, or
   * to no one (the kernel drops it as PACKET_OTHERHOST). The capture filter refuses these already.
   */
  FOREIGN_VLAN = 45,
  /**
   * A tapped frame that is not addressed to this host on the capture device: packet type other
   * than PACKET_HOST (another host's, broadcast, multicast, our own outgoing copy) or a frame
   * reported on another interface than the socket's. The capture filter refuses these already.
   */
  NOT_HOST_FRAME = 46,
  /**
   * Not a dropped packet but an ICMP error uvs did not send: the per-destination or the global
   * rate limit (forward/icmp.ts IcmpRateLimit, the kernel's icmp_ratelimit / icmp_msgs_per_sec)
   * was exhausted. The packet that earned it is counted under its own reason too.
   */
  ICMP_RATELIMITED = 47,
}

/** One past the largest code; size counter arrays with it. */
export const DROP_REASON_COUNT = 48;

/** Counter/listing names, indexed by code; index 0 is "OK". */
export const DROP_REASON_NAMES: readonly string[] = Object.freeze([
  'OK',
  'TRUNCATED_ETH',
  'TRUNCATED_VLAN',
  'TRUNCATED_ARP',
  'BAD_ARP_FORMAT',
  'TRUNCATED_IP',
  'BAD_IP_VERSION',
  'BAD_IHL',
  'BAD_IP_TOTAL_LENGTH',
  'BAD_IP_CHECKSUM',
  'BAD_IP_OPTIONS',
  'TRUNCATED_TCP',
  'BAD_TCP_OFFSET',
  'BAD_TCP_CHECKSUM',
  'TRUNCATED_UDP',
  'BAD_UDP_LENGTH',
  'BAD_UDP_CHECKSUM',
  'TRUNCATED_ICMP',
  'BAD_ICMP_CHECKSUM',
  'TRUNCATED_ICMP_QUOTE',
  'TRUNCATED_VRRP',
  'BAD_VRRP_VERSION',
  'BAD_VRRP_TYPE',
  'BAD_VRRP_CHECKSUM',
  'BAD_VRRP_TTL',
  'BAD_VRRP_AUTH',
  'NOT_IPIP',
  'IP_FRAGMENT',
  'UNSUPPORTED_ETHERTYPE',
  'UNSUPPORTED_IP_PROTOCOL',
  'TTL_EXPIRED',
  'TOO_BIG',
  'SERVICE_INACTIVE',
  'NO_CONN',
  'NO_DEST',
  'CONN_TABLE_FULL',
  'DEST_UNAVAILABLE',
  'NO_NEXT_HOP',
  'NOT_ON_LINK',
  'METHOD_UNSUPPORTED',
  'NO_CLIENT_HOP',
  'GSO_UNSUPPORTED',
  'TX_BUFFER_FULL',
  'DROP_PACKET',
  'MARTIAN_SOURCE',
  'FOREIGN_VLAN',
  'NOT_HOST_FRAME',
  'ICMP_RATELIMITED',
]);

/** Name of a code for logs and listings; unknown codes are shown as numbers, never thrown on. */
export function dropReasonName(code: number): string {
  return DROP_REASON_NAMES[code] ?? `DROP_${code}`;
}
