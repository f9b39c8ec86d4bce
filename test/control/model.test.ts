// The service model: refused commands change nothing; slots are stable ids; reloads diff.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DestField, DestFlag, ForwardMethod } from '../../src/tables/dest-table';
import { IpvsError, ServiceModel, TunnelType, applyChange, diffConfigs, planReload } from '../../src/service/model';
import type { DestConfig, ServiceConfig } from '../../src/service/model';
import { IPPROTO_TCP } from '../../src/packet/ipv4';

const svc = (addr: number, port: number, scheduler = 'rr'): ServiceConfig => ({
  fwmark: 0, af: 4, protocol: IPPROTO_TCP, addr, port, scheduler, flags: 0, timeout: 0, netmask: 0xffffffff, peName: '',
});
const dest = (addr: number, port: number, weight = 1): DestConfig => ({
  af: 4, addr, port, fwd: ForwardMethod.MASQ, weight, uThreshold: 0, lThreshold: 0, tunType: TunnelType.IPIP, tunPort: 0, tunFlags: 0,
});
const VIP = 0x0a000001;

function snapshot(m: ServiceModel): string {
  return JSON.stringify({ config: m.exportConfig(), cells: Array.from(m.destTable.cells) });
}

function refused(m: ServiceModel, action: () => void, errno: string): void {
  const before = snapshot(m);
  const gen = m.generation;
  assert.throws(action, (e: unknown) => e instanceof IpvsError && e.errno === errno);
  assert.equal(snapshot(m), before, 'a refused command changed the model');
  assert.equal(m.generation, gen);
}

test('refused commands leave the model and the dest table untouched', () => {
  const m = new ServiceModel({ destCapacity: 2 });
  m.addService(svc(VIP, 80));
  m.addDest(svc(VIP, 80), dest(0x0a000002, 80));
  refused(m, () => m.addService(svc(VIP, 80)), 'EEXIST');
  refused(m, () => m.addService(svc(VIP, 81, 'nosuch')), 'ENOENT');
  refused(m, () => m.editService(svc(VIP, 82)), 'ESRCH');
  refused(m, () => m.addDest(svc(VIP, 80), dest(0x0a000002, 80)), 'EEXIST');
  refused(m, () => m.addDest(svc(VIP, 81), dest(0x0a000003, 80)), 'ESRCH');
  refused(m, () => m.addDest(svc(VIP, 80), { ...dest(0x0a000003, 80), uThreshold: 5, lThreshold: 10 }), 'ERANGE');
  refused(m, () => m.addDest(svc(VIP, 80), dest(0xe0000001, 80)), 'EINVAL');
  refused(m, () => m.editDest(svc(VIP, 80), dest(0x0a000009, 80)), 'ENOENT');
  refused(m, () => m.deleteDest(svc(VIP, 80), dest(0x0a000009, 80)), 'ENOENT');
  refused(m, () => m.deleteService(svc(VIP, 81)), 'ESRCH');
  refused(m, () => m.addService({ ...svc(VIP, 90), af: 6 }), 'EOPNOTSUPP');
  m.addDest(svc(VIP, 80), dest(0x0a000003, 80));
  refused(m, () => m.addDest(svc(VIP, 80), dest(0x0a000004, 80)), 'ENOMEM'); // 2 slots, both used
});

test('a real server keeps its slot while others come and go; the slot holds its config', () => {
  const m = new ServiceModel({ destCapacity: 8 });
  m.addService(svc(VIP, 80));
  const a = m.addDest(svc(VIP, 80), dest(0x0a000002, 80, 3));
  const b = m.addDest(svc(VIP, 80), dest(0x0a000003, 80));
  m.deleteDest(svc(VIP, 80), dest(0x0a000002, 80));
  const c = m.addDest(svc(VIP, 80), dest(0x0a000004, 80));
  assert.equal(c.slot, a.slot, 'the freed slot is reused');
  const listed = m.get(svc(VIP, 80)).dests;
  assert.deepEqual(listed.map((d) => d.slot), [c.slot, b.slot], 'newest first, as the kernel lists');
  m.editDest(svc(VIP, 80), { ...dest(0x0a000003, 80, 9), fwd: ForwardMethod.DROUTE });
  const t = m.destTable;
  assert.equal(t.get(b.slot, DestField.WEIGHT), 9);
  assert.equal(t.get(b.slot, DestField.FWD), ForwardMethod.DROUTE);
  assert.equal(t.addr(b.slot), 0x0a000003);
  assert.equal(t.get(b.slot, DestField.SERVICE), m.get(svc(VIP, 80)).id);
});

test('a deleted real server with connections stays unavailable in its slot until they end', () => {
  const m = new ServiceModel({ destCapacity: 4 });
  m.addService(svc(VIP, 80));
  const d = m.addDest(svc(VIP, 80), dest(0x0a000002, 80));
  m.destTable.add(d.slot, DestField.ACTIVE, 1);
  m.deleteDest(svc(VIP, 80), dest(0x0a000002, 80));
  assert.ok(m.destTable.inUse(d.slot));
  assert.equal(m.destTable.get(d.slot, DestField.FLAGS) & DestFlag.AVAILABLE, 0);
  assert.equal(m.trashSize(), 1);
  // Added back while still in use: it gets its old slot (ip_vs_trash_get_dest).
  assert.equal(m.addDest(svc(VIP, 80), dest(0x0a000002, 80)).slot, d.slot);
  m.deleteDest(svc(VIP, 80), dest(0x0a000002, 80));
  m.destTable.add(d.slot, DestField.ACTIVE, -1);
  assert.equal(m.sweepTrash(), 1);
  assert.ok(!m.destTable.inUse(d.slot));
});

test('reload by diff keeps unchanged real servers in place and checks the whole config first', () => {
  const m = new ServiceModel({ destCapacity: 8 });
  m.addService(svc(VIP, 80));
  const kept = m.addDest(svc(VIP, 80), dest(0x0a000002, 80));
  m.addDest(svc(VIP, 80), dest(0x0a000003, 80));
  const next = m.exportConfig();
  next.services[0]!.dests = [dest(0x0a000002, 80), dest(0x0a000005, 80, 4)];
  next.services.push({ ...svc(VIP, 443, 'wlc'), dests: [] });
  const changes = diffConfigs(m.exportConfig(), next);
  assert.deepEqual(changes.map((c) => c.kind), ['delete-dest', 'add-dest', 'add-service']);
  for (const c of planReload(m, next)) applyChange(m, c);
  assert.equal(m.get(svc(VIP, 80)).dests.find((d) => d.addr === 0x0a000002)!.slot, kept.slot);
  assert.deepEqual(m.exportConfig().services.map((s) => s.port).sort(), [443, 80]);
  // A bad configuration is refused before anything changes.
  const bad = m.exportConfig();
  bad.services.push({ ...svc(VIP, 8080, 'nosuch'), dests: [] });
  const before = snapshot(m);
  assert.throws(() => planReload(m, bad), IpvsError);
  assert.equal(snapshot(m), before);
});

test('a check copy answers as the live model would, counts the caps with what the batch frees, and writes nothing shared', () => {
  const m = new ServiceModel({ destCapacity: 3, maxServices: 2 });
  m.addService(svc(VIP, 80));
  m.addDest(svc(VIP, 80), dest(0x0a000002, 80));
  const busy = m.addDest(svc(VIP, 80), dest(0x0a000003, 80));
  m.destTable.add(busy.slot, DestField.ACTIVE, 1);
  const before = snapshot(m);
  const gen = m.generation;

  const c = m.checkCopy();
  // Same refusals as the live model.
  assert.throws(() => c.apply({ kind: 'add-service', service: svc(VIP, 80) }), (e: unknown) => e instanceof IpvsError && e.errno === 'EEXIST');
  assert.throws(() => c.apply({ kind: 'add-dest', service: svc(VIP, 81), dest: dest(0x0a000004, 80) }), (e: unknown) => e instanceof IpvsError && e.errno === 'ESRCH');
  // One slot is free: the first new real server fits, the second does not.
  c.apply({ kind: 'add-service', service: svc(VIP, 81) });
  c.apply({ kind: 'add-dest', service: svc(VIP, 81), dest: dest(0x0a000004, 80) });
  assert.throws(() => c.apply({ kind: 'add-dest', service: svc(VIP, 81), dest: dest(0x0a000005, 80) }), (e: unknown) => e instanceof IpvsError && e.errno === 'ENOMEM');
  assert.throws(() => c.apply({ kind: 'add-service', service: svc(VIP, 82) }), (e: unknown) => e instanceof IpvsError && e.errno === 'ENOMEM');
  // A deleted idle real server frees its slot; one with connections goes to the trash and keeps it,
  // and comes back from there without a new slot.
  c.deleteDest(svc(VIP, 80), dest(0x0a000002, 80));
  c.apply({ kind: 'add-dest', service: svc(VIP, 81), dest: dest(0x0a000005, 80) });
  c.deleteDest(svc(VIP, 80), dest(0x0a000003, 80));
  assert.throws(() => c.apply({ kind: 'add-dest', service: svc(VIP, 81), dest: dest(0x0a000006, 80) }), (e: unknown) => e instanceof IpvsError && e.errno === 'ENOMEM');
  c.apply({ kind: 'add-dest', service: svc(VIP, 80), dest: dest(0x0a000003, 80) });
  c.apply({ kind: 'edit-dest', service: svc(VIP, 80), dest: dest(0x0a000003, 80, 9) });
  c.apply({ kind: 'edit-service', service: svc(VIP, 80, 'wlc') });
  assert.deepEqual(c.checkZero(svc(VIP, 81)), { ids: [], slots: [] });
  c.flush();

  // The live model, its slots and its listeners saw none of it.
  assert.equal(snapshot(m), before);
  assert.equal(m.generation, gen);
  assert.equal(m.size, 1);
  assert.deepEqual(m.list()[0]!.dests.map((d) => [d.addr, d.weight]), [[0x0a000003, 1], [0x0a000002, 1]]);
});

test('checkZero: every service id and real-server slot (-Z), or one service\'s; an unknown service is ESRCH', () => {
  const m = new ServiceModel({ destCapacity: 16 });
  m.addService(svc(VIP, 80));
  m.addService(svc(VIP, 81));
  m.addDest(svc(VIP, 80), dest(0x0a000002, 80));
  m.addDest(svc(VIP, 80), dest(0x0a000003, 80));
  m.addDest(svc(VIP, 81), dest(0x0a000004, 80));
  const listed = m.list();
  const all = m.checkZero(null);
  // The same sets as the listing's (order does not matter for a restart of counters).
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  assert.deepEqual(sorted(all.ids), sorted(listed.map((s) => s.id)));
  assert.deepEqual(sorted(all.slots), sorted(listed.flatMap((s) => s.dests.map((d) => d.slot))));
  assert.equal(new Set(all.slots).size, 3);
  const one = m.checkZero(svc(VIP, 81));
  assert.deepEqual(one, { ids: [listed[1]!.id], slots: [listed[1]!.dests[0]!.slot] });
  refused(m, () => m.checkZero(svc(VIP, 82)), 'ESRCH');
});
