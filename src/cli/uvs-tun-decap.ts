#!/usr/bin/env node
// uvs-tun-decap: the IPIP receive side of LVS-TUN for real servers without the kernel's `ipip`
// module. Thin entry point: options, start, signals; the work is in src/tun/decap.ts.

import { DecapError, TunDecapAgent } from '../tun/decap';
import { KernelDecap, REFRESH_MS } from '../tun/kernel-decap';
import { ipv4ToInt } from '../packet/addr';
import { consoleSink, createLogger } from '../runtime/log';
import { uvsVersion } from '../runtime/version';

const USAGE = `usage: uvs-tun-decap [--dev NAME] [--local ADDR] [--allow ADDR[,ADDR...]] [--bpf IFACE[,IFACE...]] [--mtu N] [--no-gro] [-l] [--stats-interval S]
  Receives IP-in-IP packets for this host, strips the outer header and hands the inner packet
  to the local stack through a TUN device, so an LVS-TUN real server works without the ipip module.
  --bpf IFACE[,IFACE]   decapsulate in the kernel too: an eBPF program on IFACE's tc ingress
                        (Linux 6.6 or later) takes the outer header off IPIP arriving there, with
                        the same --local and --allow; the TUN device stays for what it leaves
                        (outer fragments, IPIP on other devices). Repeatable
  --dev NAME            TUN device to create (default uvstun0)
  --local ADDR          only packets whose outer destination is ADDR (default: any local address)
  --allow ADDR[,ADDR]   only packets whose outer source is one of these (the directors);
                        repeatable. Default: any source (a warning says so)
  --mtu N               MTU of the TUN device (default 1480)
  --no-gro              write every TCP segment alone; by default consecutive segments of a
                        flow are joined into one super-frame (IFF_VNET_HDR, GSO), as NIC GRO does
  -l, --log-console     log start, stop and periodic counters to stdout
  --stats-interval S    with -l, print counters every S seconds (default 0: only at exit)
  -v, --version         uvs's version
Real-server set-up, as for tunl0: the VIP on lo (ip addr add VIP/32 dev lo),
  sysctl net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.NAME.rp_filter=0,
  arp_ignore=1 and arp_announce=2 on all.
SIGTERM/SIGINT: closes the device and exits 0.
`;

interface Args {
  device: string;
  local: number;
  allow: number[];
  bpf: string[];
  mtu: number;
  gro: boolean;
  log: boolean;
  statsInterval: number;
}

function fail(message: string): never {
  process.stderr.write(`uvs-tun-decap: ${message}\n${USAGE}`);
  process.exit(2);
}

function parse(argv: string[]): Args {
  const a: Args = { device: 'uvstun0', local: 0, allow: [], bpf: [], mtu: 1480, gro: true, log: false, statsInterval: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) fail(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--dev': a.device = value(); break;
      case '--local': {
        const v = value();
        try {
          a.local = ipv4ToInt(v);
        } catch {
          fail(`--local ${v}: not a dotted IPv4 address`);
        }
        break;
      }
      case '--allow': {
        const v = value();
        for (const part of v.split(',')) {
          try {
            a.allow.push(ipv4ToInt(part.trim()));
          } catch {
            fail(`--allow ${v}: ${JSON.stringify(part)} is not a dotted IPv4 address`);
          }
        }
        break;
      }
      case '--bpf': {
        const v = value();
        for (const part of v.split(',')) {
          const name = part.trim();
          if (!/^[^\s/]{1,15}$/.test(name)) fail(`--bpf ${v}: ${JSON.stringify(part)} is not an interface name`);
          if (!a.bpf.includes(name)) a.bpf.push(name);
        }
        break;
      }
      case '--mtu': {
        const v = value();
        a.mtu = Number(v);
        if (!/^\d+$/.test(v) || a.mtu < 68 || a.mtu > 65535) fail(`--mtu ${v}: expected 68..65535`);
        break;
      }
      case '--no-gro': a.gro = false; break;
      case '-l': case '--log-console': a.log = true; break;
      case '--stats-interval': {
        const v = value();
        a.statsInterval = Number(v);
        if (!/^\d+$/.test(v)) fail(`--stats-interval ${v}: expected whole seconds`);
        break;
      }
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0);
      // eslint-disable-next-line no-fallthrough -- process.exit() above does not return
      case '-v': case '--version': process.stdout.write(`uvs-tun-decap ${uvsVersion()} (uvs)\n`); process.exit(0);
      // eslint-disable-next-line no-fallthrough -- process.exit() above does not return
      default: fail(`unknown option ${arg}`);
    }
  }
  return a;
}

function main(): void {
  const args = parse(process.argv.slice(2));
  const log = (line: string): void => {
    if (args.log) process.stdout.write(`uvs-tun-decap: ${line}\n`);
  };
  let agent: TunDecapAgent;
  try {
    agent = new TunDecapAgent({
      device: args.device, local: args.local, allow: args.allow, mtu: args.mtu, gro: args.gro, log: createLogger({ sink: consoleSink('uvs-tun-decap', { console: false }) }),
      // The raw socket is broken (decap.ts, MAX_ERRORS_IN_A_ROW): the agent stopped itself; say why and exit non-zero.
      onFatal: (err) => {
        process.stderr.write(`uvs-tun-decap: ${err.message}\n`);
        process.exit(1);
      },
    });
    agent.start();
  } catch (err) {
    process.stderr.write(`uvs-tun-decap: ${err instanceof DecapError ? err.message : String(err)}\n`);
    process.exit(1);
  }
  let kernel: KernelDecap | null = null;
  if (args.bpf.length > 0) {
    try {
      kernel = new KernelDecap({ devices: args.bpf, local: args.local, allow: args.allow });
    } catch (err) {
      agent.stop();
      process.stderr.write(`uvs-tun-decap: ${err instanceof DecapError ? err.message : String(err)}\n`);
      process.exit(1);
    }
  }
  const stats = (): string => JSON.stringify(kernel ? { ...agent.stats(), bpf: kernel.counters() } : agent.stats());
  log(`decapsulating IPIP into ${agent.deviceName}${kernel ? `, and in the kernel on ${kernel.devices.join(', ')} (tc ingress)` : ''}`);
  if (args.allow.length === 0) {
    process.stderr.write('uvs-tun-decap: warning: no --allow: IPIP from any source is decapsulated; name the directors\' addresses\n');
  }
  const timer = args.log && args.statsInterval > 0 ? setInterval(() => log(stats()), args.statsInterval * 1000) : null;
  // The kernel takes the program off a deleted device; a device re-created under the same name
  // gets it again (KernelDecap.refresh). A failure to attach is said once until it changes.
  let lastFailure = '';
  const follow = kernel
    ? setInterval(() => {
        for (const e of kernel.refresh()) {
          if (e.what === 'failed') {
            if (e.detail !== lastFailure) process.stderr.write(`uvs-tun-decap: --bpf ${e.device}: attaching again failed, retrying every ${REFRESH_MS / 1000} s: ${e.detail}\n`);
            lastFailure = e.detail;
          } else {
            lastFailure = '';
            log(`--bpf ${e.device}: ${e.what} (${e.detail})`);
          }
        }
      }, REFRESH_MS)
    : null;
  const stop = (signal: string): void => {
    if (timer) clearInterval(timer);
    if (follow) clearInterval(follow);
    const last = stats();
    kernel?.close();
    agent.stop();
    log(`${signal}: stopped; ${last}`);
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
