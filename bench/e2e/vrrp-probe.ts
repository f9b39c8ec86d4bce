// The client side of the VRRP failover case (bench/e2e/vrrp.ts), run inside the client namespace:
//   node vrrp-probe.js HOST PORT INTERVAL_MS MAX_MS
// sends one UDP datagram to HOST:PORT every INTERVAL_MS and prints one line per answer,
// "<Date.now()> <name>", where name is what rs-server.mjs on the answering director replied with.
// Unconnected socket: a director answers from its primary address, not from the VIP. Stops after
// MAX_MS, or at SIGTERM.
import dgram from 'node:dgram';

function main(): void {
  const [host, portArg, intervalArg, maxArg] = process.argv.slice(2);
  const port = Number(portArg);
  const interval = Number(intervalArg);
  const max = Number(maxArg);
  if (!host || !(port > 0 && port < 65536) || !(interval >= 1) || !(max >= interval)) {
    process.stderr.write('usage: vrrp-probe.js HOST PORT INTERVAL_MS MAX_MS\n');
    process.exit(2);
  }
  const sock = dgram.createSocket('udp4');
  const probe = Buffer.from('?');
  sock.on('message', (msg) => process.stdout.write(`${Date.now()} ${msg.toString().trim()}\n`));
  // ENETUNREACH/EHOSTUNREACH while nobody holds the VIP are expected: keep probing.
  sock.on('error', () => undefined);
  const timer = setInterval(() => sock.send(probe, port, host, () => undefined), interval);
  const stop = (): void => {
    clearInterval(timer);
    sock.close();
  };
  setTimeout(stop, max);
  process.once('SIGTERM', stop);
}

main();
