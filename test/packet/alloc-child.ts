// Child process of alloc.test.ts (run with --expose-gc): decodes captured frames (headers and ICMP
// quotes, the IP header checksum included) in a loop after warm-up and prints {bad, grown, scavenges} as JSON. Argument: comma-separated fixture names.
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { loadFixture } from './fixtures';
import * as p from '../../src/packet';

const names = (process.argv[2] ?? 'http-tcp').split(',');
const frames = names.flatMap(loadFixture);
const count = Number(process.argv[3] ?? 3_000_000);
const eth = new p.EthernetHeader();
const ip = new p.Ipv4Header();
const tcp = new p.TcpHeader();
const udp = new p.UdpHeader();
const icmp = new p.IcmpHeader();
const vrrp = new p.VrrpPacket();
const arp = new p.ArpPacket();
const quoted = new p.Ipv4Header();

function decodeOne(b: Uint8Array, v: DataView): number {
  let r: number = eth.decode(b, v, 0, b.length);
  if (r !== 0) return r;
  if (eth.etherType === p.ETHERTYPE_ARP) return arp.decode(b, v, eth.payloadOffset, eth.payloadLength);
  r = ip.decode(b, v, eth.payloadOffset, eth.payloadLength);
  if (r !== 0) return r;
  switch (ip.protocol) {
    case p.IPPROTO_TCP:
      return tcp.decode(b, v, ip.payloadOffset, ip.payloadLength) || (tcp.mss() === 0 ? 99 : 0);
    case p.IPPROTO_UDP:
      return udp.decode(b, v, ip.payloadOffset, ip.payloadLength);
    case p.IPPROTO_VRRP:
      return vrrp.decode(b, v, ip.payloadOffset, ip.payloadLength);
    case p.IPPROTO_ICMP:
      return icmp.decode(b, v, ip.payloadOffset, ip.payloadLength) || (icmp.isError ? icmp.decodeQuote(quoted, b, v) : 0);
  }
  return 0;
}

function run(n: number): number {
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const f = frames[i % frames.length]!;
    if (decodeOne(f.bytes, f.view) !== 0) bad++;
  }
  return bad;
}

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('alloc-child: run with --expose-gc');
run(300_000);
let scavenges = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (((e as unknown as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
}).observe({ entryTypes: ['gc'] });
gc();
setTimeout(() => {
  scavenges = 0;
  const before = process.memoryUsage().heapUsed;
  const bad = run(count);
  const grown = process.memoryUsage().heapUsed - before;
  setTimeout(() => console.log(JSON.stringify({ bad, grown, scavenges })), 50);
}, 50);
