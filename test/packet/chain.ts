// Decodes a whole frame through the header classes, the way the data plane will: Ethernet, then
// ARP or IPv4, then the transport (or VRRP), then an ICMP error's quoted header. Test helper.
import { DropReason } from '../../src/packet/drop';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetHeader } from '../../src/packet/ethernet';
import { ArpPacket } from '../../src/packet/arp';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_VRRP, Ipv4Header } from '../../src/packet/ipv4';
import { TcpHeader } from '../../src/packet/tcp';
import { UdpHeader } from '../../src/packet/udp';
import { IcmpHeader } from '../../src/packet/icmp';
import { VrrpPacket } from '../../src/packet/vrrp';

export class DecodedFrame {
  readonly eth = new EthernetHeader();
  readonly arp = new ArpPacket();
  readonly ip = new Ipv4Header();
  readonly tcp = new TcpHeader();
  readonly udp = new UdpHeader();
  readonly icmp = new IcmpHeader();
  readonly vrrp = new VrrpPacket();
  readonly quoted = new Ipv4Header();
  /** Which layers decoded, in order ("eth", "ipv4", "tcp", "quote", ...). */
  layers: string[] = [];
  /** Bytes the headers say the frame needs (Ethernet header + ARP or IPv4 total length). */
  required = 0;

  constructor() {
    this.quoted.quoted = true;
  }

  decode(buf: Uint8Array, view: DataView, length: number): DropReason | 0 {
    this.layers = [];
    this.required = 0;
    let r: DropReason | 0 = this.eth.decode(buf, view, 0, length);
    if (r !== 0) return r;
    this.layers.push('eth');
    const eth = this.eth;
    if (eth.etherType === ETHERTYPE_ARP) {
      r = this.arp.decode(buf, view, eth.payloadOffset, eth.payloadLength);
      if (r === 0) {
        this.layers.push('arp');
        this.required = eth.headerLength + 28;
      }
      return r;
    }
    if (eth.etherType !== ETHERTYPE_IPV4) return DropReason.UNSUPPORTED_ETHERTYPE;
    const ip = this.ip;
    r = ip.decode(buf, view, eth.payloadOffset, eth.payloadLength);
    if (r !== 0) return r;
    this.layers.push('ipv4');
    this.required = eth.headerLength + ip.totalLength;
    if (ip.fragmentOffset !== 0) return 0; // no transport header in later fragments
    switch (ip.protocol) {
      case IPPROTO_TCP:
        r = this.tcp.decode(buf, view, ip.payloadOffset, ip.payloadLength);
        if (r === 0) this.layers.push('tcp');
        return r;
      case IPPROTO_UDP:
        r = this.udp.decode(buf, view, ip.payloadOffset, ip.payloadLength);
        if (r === 0) this.layers.push('udp');
        return r;
      case IPPROTO_VRRP:
        r = this.vrrp.decode(buf, view, ip.payloadOffset, ip.payloadLength);
        if (r === 0) this.layers.push('vrrp');
        return r;
      case IPPROTO_ICMP:
        r = this.icmp.decode(buf, view, ip.payloadOffset, ip.payloadLength);
        if (r !== 0) return r;
        this.layers.push('icmp');
        if (!this.icmp.isError) return 0;
        r = this.icmp.decodeQuote(this.quoted, buf, view);
        if (r === 0) this.layers.push('quote');
        return r;
      default:
        return 0;
    }
  }
}
