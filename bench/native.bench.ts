// Forwarding through the native addon against the kernel's own IPv4 forwarding, in one lab:
//
//   gen namespace ── veth ── fwd namespace ── veth ── sink namespace
//
// The generator is the addon's own sendmmsg batch sender (64-byte UDP frames, pinned to CPU 0); the
// sink counts with its veth's rx_packets. Cases: the fwd kernel with ip_forward=1; the addon
// forwarder (ring RX → MAC rewrite in JavaScript → sendmmsg from the ring, pinned to CPU 1, off the
// CPU where the generator's veth transmit runs the receive softirq) with ip_forward=0; the same with
// PACKET_VNET_HDR. Each case runs a few seconds. Needs root; without it there are no rows.
import { existsSync } from 'node:fs';
import type { BenchOptions, BenchRow } from './lib';
import { buildHostFilter } from '../src/dataplane/bpf';
import { nativeAddonPath } from '../src/native/addon';
import type { ForwardJob, ForwardResult, GenJob } from '../test/netns/native-child';
import { CHILD_PATH, hex, Lab, runSuffix, sh, spawnIn, udpFrame } from '../test/netns/native-lab';

const GROUP = 'native forward, 64-byte UDP, 3 netns';

interface GenResult {
  sent: number;
  elapsed: number;
  pps: number;
}

function cpuPinning(): string[] {
  try {
    sh('taskset', ['-c', '0', 'true']);
    return ['taskset', '-c'];
  } catch {
    return [];
  }
}

export async function collect(opts: BenchOptions): Promise<BenchRow[]> {
  if (process.getuid?.() !== 0) {
    console.log('native.bench: skipped: needs root (network namespaces, AF_PACKET)');
    return [];
  }
  if (!existsSync(nativeAddonPath())) {
    console.log(`native.bench: skipped: addon not built at ${nativeAddonPath()} (run npm install)`);
    return [];
  }
  const durationMs = opts.quick ? 1000 : 3000;
  const pin = cpuPinning();
  const onCpu = (cpu: number, argv: string[]): string[] => (pin.length ? [...pin, String(cpu), ...argv] : argv);
  const lab = new Lab(runSuffix());
  const rows: BenchRow[] = [];
  try {
    const nsG = lab.ns('Bg');
    const nsF = lab.ns('Bf');
    const nsS = lab.ns('Bs');
    const dev = { g: lab.dev('g'), fg: lab.dev('fg'), fs: lab.dev('fs'), s: lab.dev('s') };
    lab.veth(nsG, dev.g, nsF, dev.fg);
    lab.veth(nsF, dev.fs, nsS, dev.s);
    const ip = { g: '10.204.1.2', fg: '10.204.1.1', fs: '10.204.2.1', s: '10.204.2.2' };
    lab.addr(nsG, dev.g, `${ip.g}/24`);
    lab.addr(nsF, dev.fg, `${ip.fg}/24`);
    lab.addr(nsF, dev.fs, `${ip.fs}/24`);
    lab.addr(nsS, dev.s, `${ip.s}/24`);
    lab.exec(nsS, ['ip', 'route', 'add', 'default', 'via', ip.fs]);
    // The sink's next-hop MAC is one nobody has: the sink counts each frame (veth rx_packets) and
    // drops it at once as PACKET_OTHERHOST, so neither case pays for a UDP stack or ICMP errors at
    // the sink (on veth that work would land on the forwarding CPU).
    const mac = { g: lab.mac(nsG, dev.g), fg: lab.mac(nsF, dev.fg), s: '02:00:00:00:00:99' };
    // Static neighbours: no ARP in the middle of a measurement.
    lab.neigh(nsF, dev.fs, ip.s, mac.s);
    lab.neigh(nsF, dev.fg, ip.g, mac.g);
    const frame = udpFrame({ dstMac: mac.fg, srcMac: mac.g, srcIp: ip.g, dstIp: ip.s, sport: 40000, dport: 9, payload: new Uint8Array(18) });
    const gen: GenJob = { mode: 'gen', iface: dev.g, frame: hex(frame), durationMs, batch: 64 };

    const measure = async (): Promise<{ offered: number; forwarded: number }> => {
      const before = lab.rxPackets(nsS, dev.s);
      const g = spawnIn<GenResult>(nsG, onCpu(0, [process.execPath, CHILD_PATH, JSON.stringify(gen)]), durationMs + 20_000);
      const r = await g.result;
      await new Promise((resolve) => setTimeout(resolve, 50)); // let the last batch drain
      const after = lab.rxPackets(nsS, dev.s);
      return { offered: r.pps, forwarded: (after - before) / r.elapsed };
    };

    lab.exec(nsF, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const kernel = await measure();
    rows.push({ group: GROUP, name: 'generator (addon sendmmsg, batch 64), offered', value: kernel.offered, unit: 'pps' });
    rows.push({ group: GROUP, name: 'kernel ip_forward', value: kernel.forwarded, unit: 'pps' });
    lab.exec(nsF, ['sysctl', '-qw', 'net.ipv4.ip_forward=0']);

    const variants = [
      { vnetHdr: false, label: 'qdisc bypass' },
      { vnetHdr: true, label: 'vnet header' },
    ];
    for (const { vnetHdr, label } of variants) {
      const job: ForwardJob = {
        mode: 'forward', oneWay: true, durationMs: durationMs + 3000, idleStopMs: 500, vnetHdr, qdiscBypass: !vnetHdr, batch: 64,
        sides: [
          { iface: dev.fg, peerMac: mac.s, filter: buildHostFilter({ destinations: [ip.s] }) },
          { iface: dev.fs, peerMac: mac.g, filter: buildHostFilter({ destinations: [ip.g] }) },
        ],
      };
      const fwd = spawnIn<ForwardResult>(nsF, onCpu(1, [process.execPath, CHILD_PATH, JSON.stringify(job)]), durationMs + 20_000);
      await fwd.ready;
      const m = await measure();
      const fr = await fwd.result;
      const name = `uvs addon: ring → JS MAC rewrite → sendmmsg, batch 64, ${label}`;
      rows.push({ group: GROUP, name, value: m.forwarded, unit: 'pps' });
      rows.push({
        group: GROUP, name: `${name} / kernel`, value: m.forwarded / kernel.forwarded, unit: 'ratio',
        target: '>= 0.85', met: m.forwarded / kernel.forwarded >= 0.85,
      });
      rows.push({ group: GROUP, name: `${name}: rx() + JS rewrite per frame`, value: fr.rxNsPerFrame, unit: 'ns/op' });
      rows.push({ group: GROUP, name: `${name}: send() per frame`, value: fr.txNsPerFrame, unit: 'ns/op' });
      if (fr.stats[0] && fr.stats[0].drops > 0) console.log(`native.bench: ring drops during "${name}": ${fr.stats[0].drops}`);
    }
  } finally {
    lab.destroy();
  }
  return rows;
}
