// Runs a DataPlane inside a lab director namespace for worker-restart.test.ts (not a test file):
//   prints READY once DR service VIP:80 → rs1, rs2 is live;
//   on "KILL\n" terminates every worker thread, waits until all are back, prints one JSON line;
//   on "STOP\n" stops the data plane and exits.
import { createInterface } from 'node:readline';
import { DataPlane } from '../../src/dataplane/dataplane';
import { ServiceModel, TunnelType } from '../../src/service/model';
import { IPPROTO_TCP } from '../../src/packet/ipv4';
import { ForwardMethod } from '../../src/tables/dest-table';
import { ipv4ToInt } from '../../src/packet/addr';
import type { Worker } from 'node:worker_threads';
import { createLogger } from '../../src/runtime/log';

async function main(): Promise<void> {
  const model = new ServiceModel();
  const dp = new DataPlane({ model, workers: 2, ifaces: [], connMax: 4096, log: createLogger({ sink: (level, m) => console.error(`${level}: ${m}`) }) });
  await dp.start();
  model.onChange(() => void dp.apply());
  const vip = { fwmark: 0, af: 4 as const, protocol: IPPROTO_TCP, addr: ipv4ToInt('10.77.0.100'), port: 80 };
  model.addService({ ...vip, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' });
  for (const rip of ['10.77.0.21', '10.77.0.22']) {
    model.addDest(vip, { af: 4, addr: ipv4ToInt(rip), port: 80, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: TunnelType.IPIP, tunPort: 0, tunFlags: 0 });
  }
  await dp.apply();
  console.log('READY');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line === 'KILL') {
      // The workers are private to the DataPlane; a test reaches in to kill them as a crash would.
      const handles = (dp as unknown as { handles: { worker: Worker | null }[] }).handles;
      await Promise.all(handles.map((h) => h.worker!.terminate()));
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !dp.workerReports().every((r) => r.alive && r.restarts === 1)) {
        await new Promise((r) => setTimeout(r, 50));
      }
      // Give the restarted workers their snapshot before the test sends traffic again.
      await dp.apply();
      console.log(JSON.stringify({ reports: dp.workerReports(), conns: dp.connLister.list(100) }));
    } else if (line === 'STOP') {
      await dp.stop();
      process.exit(0);
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
