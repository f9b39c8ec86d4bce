// Entry point of the VRRP worker thread. VRRP runs apart from the main thread so that a busy
// control plane (config reloads, health checks, a slow notify script) never delays an advert:
// a late advert is what makes a backup take over for nothing.
//
// The worker loads its I/O from workerData.io.module (the raw-socket addon in the daemon, a fake
// in tests), runs a VrrpRouter on the real clock, and posts state changes, notify requests and
// logs to the main thread, which runs the scripts and tells the data plane who is master.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { RealClock } from '../runtime/clock';
import { CreateVrrpIo, HostToWorker, VrrpIo, VrrpWorkerData, WorkerToHost } from './protocol';
import { VrrpRouter } from './router';
import { Logger } from './types';
import { createLogger } from '../runtime/log';

function post(message: WorkerToHost): void {
  parentPort?.postMessage(message);
}

// Every level is relayed; the main thread's logger decides what passes.
const logger: Logger = createLogger({ sink: (level, message) => post({ type: 'log', level, message }), level: 'debug' });

async function loadIo(data: VrrpWorkerData): Promise<VrrpIo> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the I/O module's path is known only at run time (tests hand in a fake)
  const mod = require(data.io.module) as { createVrrpIo?: CreateVrrpIo };
  if (typeof mod.createVrrpIo !== 'function') {
    throw new Error(`vrrp thread: module ${data.io.module} does not export createVrrpIo()`);
  }
  return mod.createVrrpIo(data.io.options, { logger });
}

async function main(): Promise<void> {
  if (isMainThread || parentPort === null) throw new Error('vrrp/thread.ts must run in a worker thread');
  const port = parentPort;
  const data = workerData as VrrpWorkerData;
  const io = await loadIo(data);
  const clock = new RealClock();
  const router = new VrrpRouter(data.config, {
    clock,
    socketFactory: io.socketFactory,
    vips: io.vips,
    interfaces: io.interfaces,
    logger,
    notifier: { run: (script, args) => post({ type: 'notify', script, args: [...args] }) },
    observer: {
      instanceState: (instance, state, previous, priority) => post({ type: 'state', instance, state, previous, priority }),
      groupState: (group, state) => post({ type: 'group-state', group, state }),
    },
  });
  let poller: NodeJS.Timeout | undefined;
  const onInterface = (name: string, up: boolean): void => router.setInterfaceState(name, up);
  if (io.watchInterfaces) {
    io.watchInterfaces(onInterface);
  } else if (data.interfacePollMs > 0) {
    const watched = new Set<string>();
    for (const c of data.config.instances) {
      watched.add(c.interface);
      for (const t of c.trackInterfaces) watched.add(t.name);
    }
    poller = setInterval(() => {
      for (const name of watched) onInterface(name, io.interfaces.isUp(name));
    }, data.interfacePollMs);
  }

  let stopping = false;
  port.on('message', (message: HostToWorker) => {
    switch (message.type) {
      case 'interface':
        router.setInterfaceState(message.name, message.up);
        break;
      case 'script':
        router.setScriptResult(message.name, message.ok);
        break;
      case 'primary':
        try {
          router.setPrimaryAddress(message.instance, message.address);
        } catch (err) {
          logger.error(err instanceof Error ? err.message : String(err));
        }
        break;
      case 'stats':
        post({ type: 'stats', id: message.id, stats: router.stats() });
        break;
      case 'reload':
        try {
          router.reload(message.config);
          post({ type: 'reloaded', id: message.id, error: null });
        } catch (err) {
          // The running config stays in force, as keepalived keeps running on a bad reload.
          post({ type: 'reloaded', id: message.id, error: err instanceof Error ? err.message : String(err) });
        }
        break;
      case 'stop':
        if (stopping) return;
        stopping = true;
        if (poller !== undefined) clearInterval(poller);
        router.stop();
        Promise.resolve(io.close?.())
          .catch((err: unknown) => logger.warn(`vrrp io close: ${String(err)}`))
          .finally(() => {
            post({ type: 'stopped' });
            port.close();
          });
        break;
    }
  });
  router.start();
  post({ type: 'ready' });
}

main().catch((err: unknown) => {
  post({ type: 'fatal', message: err instanceof Error ? err.message : String(err) });
  parentPort?.close();
});
