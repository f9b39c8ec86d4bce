// The data plane's own cost of one change on a big table (issue 12, deliverable 7: "at that size
// one change costs at most about 10 ms to apply in the data plane"): a DataPlane with two worker
// threads (no capture interfaces, so no root needed), N services × 10 real servers applied once,
// then single changes (-a of a real server whose address is already known, -A of a new service,
// -d) timed from the model change until every worker runs the new snapshot. The kernel's side
// is faked (the nft and ip commands answer at once), so the figure is uvs's work alone; the
// end-to-end rows (scale.bench.ts) include the real nft and ip processes.
import type { BenchOptions, BenchRow } from './lib';
import { DataPlane } from '../src/dataplane/dataplane';
import { KernelGuard, type CommandRunner } from '../src/dataplane/guard';
import { NetInfo } from '../src/dataplane/netinfo';
import { ServiceModel, type DestConfig, type ServiceConfig } from '../src/service/model';
import { ForwardMethod } from '../src/tables/dest-table';
import { nullLogger } from '../src/runtime/log';

const RS_MAC = '02:00:00:00:00:21';
/** Real servers per service (issue 12: 10,000 services × 10). */
const PER = 10;

function neighbours(): { dst: string; dev: string; lladdr: string; state: string[] }[] {
  const rows = [];
  for (let j = 0; j < 16; j++) rows.push({ dst: `10.77.0.${20 + j}`, dev: 'eth0', lladdr: RS_MAC, state: ['PERMANENT'] });
  return rows;
}

/** `ip` and `nft` as a quiet kernel: every route on-link via eth0, every neighbour known. */
const fakeKernel: CommandRunner = {
  run(cmd, args, input) {
    return Promise.resolve(fakeRun(cmd, args, input));
  },
};

function fakeRun(cmd: string, args: readonly string[], input?: string): { status: number; stdout: string; stderr: string } {
  if (cmd === 'nft') return { status: 0, stdout: '', stderr: '' };
  if (args.includes('-batch')) {
    const out = (input ?? '').split('\n').filter(Boolean).map((l) => l === 'neigh show'
      ? JSON.stringify(neighbours())
      : JSON.stringify([{ dst: l.split(' ')[2], dev: 'eth0', prefsrc: '10.77.0.2' }]));
    return { status: 0, stdout: out.join('\n') + '\n', stderr: '' };
  }
  if (args.includes('neigh')) return { status: 0, stdout: JSON.stringify(neighbours()), stderr: '' };
  if (args.includes('addr')) return { status: 0, stdout: '[]', stderr: '' };
  return { status: 1, stdout: '', stderr: `fake kernel: ${cmd} ${args.join(' ')}` };
}

const svc = (i: number): ServiceConfig => ({
  fwmark: 0, af: 4, protocol: 6, addr: (0x0a5a0000 + i) >>> 0, port: 80, scheduler: 'wlc', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '',
});
const dest = (j: number): DestConfig => ({
  af: 4, addr: (0x0a4d0014 + j) >>> 0, port: 80, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0,
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

export async function collect(opts: BenchOptions): Promise<BenchRow[]> {
  const services = opts.quick ? 2000 : 10_000;
  const model = new ServiceModel({ maxServices: services + 64, destCapacity: services * PER + 256 });
  const dp = new DataPlane({
    model, workers: 2, ifaces: [], connMax: 4096, log: nullLogger,
    netinfo: new NetInfo({ runner: fakeKernel, probe: () => Promise.resolve() }), guard: new KernelGuard(fakeKernel, 'uvsbench'),
  });
  await dp.start();
  try {
    const t0 = performance.now();
    model.batch(() => {
      for (let i = 0; i < services; i++) {
        model.addService(svc(i));
        for (let j = 0; j < PER; j++) model.addDest(svc(i), dest(j));
      }
    });
    const tModel = performance.now();
    await dp.apply();
    const tApply = performance.now();
    const one = async (change: () => void): Promise<number> => {
      const t = performance.now();
      change();
      await dp.apply();
      return performance.now() - t;
    };
    const adds: number[] = [];
    const newServices: number[] = [];
    const dels: number[] = [];
    const rounds = opts.quick ? 10 : 30;
    for (let r = 0; r < rounds; r++) {
      adds.push(await one(() => model.addDest(svc(r), dest(PER))));
      dels.push(await one(() => model.deleteDest(svc(r), dest(PER))));
      newServices.push(await one(() => {
        model.addService(svc(services + (r % 32)));
        model.addDest(svc(services + (r % 32)), dest(0));
      }));
      model.deleteService(svc(services + (r % 32)));
      await dp.apply();
    }
    const group = 'changes at scale';
    const note = `DataPlane with 2 workers, nft and ip faked; median of ${rounds}`;
    return [
      { group, name: `data-plane apply of ${services} services × ${PER} real servers at once`, value: tApply - tModel, unit: 'ms', note: `the model's ${services * (PER + 1)} changes took ${(tModel - t0).toFixed(0)} ms before it` },
      { group, name: `data-plane apply of one -a at ${services} services`, value: median(adds), unit: 'ms', target: services >= 10_000 ? '<= 10 ms' : undefined, met: services >= 10_000 ? median(adds) <= 10 : undefined, note },
      { group, name: `data-plane apply of one -d at ${services} services`, value: median(dels), unit: 'ms', note },
      { group, name: `data-plane apply of one new service at ${services} services`, value: median(newServices), unit: 'ms', note },
    ];
  } finally {
    await dp.stop();
  }
}
