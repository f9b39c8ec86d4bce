// Runs a DataPlane inside a lab director namespace for worker-restart.test.ts (not a test file):
//   argument "cpu": --fanout cpu (and UDP service VIP:5353 → rs1, rs2 too);
//   argument "xdp": --io xdp (worker 0 owns the AF_XDP sockets of the lab's one-queue veths);
//   prints READY once DR service VIP:80 → rs1, rs2 is live;
//   on "KILL\n" terminates every worker thread, waits until all are back, prints one JSON line;
//   on "KILL <id>\n" the same for worker <id> alone;
//   on "REPORTS\n" prints the worker reports (uvsadm --dataplane's figures) as one JSON line;
//   on "STOP\n" stops the data plane and exits.
import { createInterface } from 'node:readline';
import { DataPlane } from '../../src/dataplane/dataplane';
import { ServiceModel, TunnelType } from '../../src/service/model';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../src/packet/ipv4';
import { ForwardMethod } from '../../src/tables/dest-table';
import { ipv4ToInt } from '../../src/packet/addr';
import type { Worker } from 'node:worker_threads';
import { createLogger } from '../../src/runtime/log';

async function main(): Promise<void> {
  const model = new ServiceModel();
  const cpu = process.argv[2] === 'cpu';
  const xdp = process.argv[2] === 'xdp';
  // The fast path off: these tests count what each worker takes, and it would take a flow's
  // datagrams past the eighth.
  const dp = new DataPlane({ model, workers: 2, ifaces: [], connMax: 4096, fanout: cpu ? 'cpu' : 'hash', io: xdp ? 'xdp' : 'ring', fastPath: false, log: createLogger({ sink: (level, m) => console.error(`${level}: ${m}`) }) });
  await dp.start();
  model.onChange(() => void dp.apply());
  const vip = { fwmark: 0, af: 4 as const, protocol: IPPROTO_TCP, addr: ipv4ToInt('10.77.0.100'), port: 80 };
  model.addService({ ...vip, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' });
  for (const rip of ['10.77.0.21', '10.77.0.22']) {
    model.addDest(vip, { af: 4, addr: ipv4ToInt(rip), port: 80, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: TunnelType.IPIP, tunPort: 0, tunFlags: 0 });
  }
  if (cpu) {
    const udp = { ...vip, protocol: IPPROTO_UDP, port: 5353 };
    model.addService({ ...udp, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' });
    for (const rip of ['10.77.0.21', '10.77.0.22']) {
      model.addDest(udp, { af: 4, addr: ipv4ToInt(rip), port: 5353, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: TunnelType.IPIP, tunPort: 0, tunFlags: 0 });
    }
  }
  await dp.apply();
  console.log('READY');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line === 'KILL' || line.startsWith('KILL ')) {
      // The workers are private to the DataPlane; a test reaches in to kill them as a crash would.
      const handles = (dp as unknown as { handles: { id: number; worker: Worker | null }[] }).handles;
      const victims = line === 'KILL' ? handles : handles.filter((h) => h.id === Number(line.slice(5)));
      const restarts = dp.workerReports().map((r) => r.restarts + (victims.some((h) => h.id === r.id) ? 1 : 0));
      await Promise.all(victims.map((h) => h.worker!.terminate()));
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !dp.workerReports().every((r) => r.alive && r.restarts === restarts[r.id])) {
        await new Promise((r) => setTimeout(r, 50));
      }
      // Give the restarted workers their snapshot before the test sends traffic again.
      await dp.apply();
      console.log(JSON.stringify({ reports: dp.workerReports(), conns: dp.connLister.list(100) }));
    } else if (line === 'REPORTS') {
      console.log(JSON.stringify({ reports: dp.workerReports() }));
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
