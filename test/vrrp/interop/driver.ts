// Runs uvs VRRP instances on the real io module (raw sockets, iproute2) in the current network
// namespace, for keepalived-interop.sh. Prints one line per state change; SIGTERM runs the
// shutdown sequence (priority 0, VIPs removed) and exits.
// Usage: node driver.js '<VrrpInstanceInput JSON>'
import { join } from 'node:path';
import { instanceConfig, VrrpInstanceInput } from '../../../src/vrrp/config';
import { VrrpHost } from '../../../src/vrrp/host';
import { createLogger } from '../../../src/runtime/log';

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '') as VrrpInstanceInput;
  const stamp = (): string => new Date().toISOString();
  const host = await VrrpHost.start({
    config: { instances: [instanceConfig(input)], syncGroups: [] },
    io: { module: join(__dirname, '..', '..', '..', 'src', 'vrrp', 'raw-io.js') },
    logger: createLogger({ sink: (level, m) => console.log(stamp(), level === 'info' ? 'uvs' : `uvs ${level.toUpperCase()}`, m), level: 'debug' }),
    onState: (instance, state, previous, priority) => console.log(stamp(), 'STATE', instance, previous, '->', state, priority),
  });
  let stopping = false;
  const stop = (): void => {
    // `timeout` forwards SIGTERM to the child and to its process group: expect it twice.
    if (stopping) return;
    stopping = true;
    console.log(stamp(), 'stopping');
    void host.stop().then((clean) => {
      console.log(stamp(), clean ? 'stopped' : 'stopped (terminated)');
      process.exit(clean ? 0 : 1);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error('driver:', err instanceof Error ? err.message : String(err));
  process.exit(1);
});
