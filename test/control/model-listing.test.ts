// ServiceModel.list() keeps its entries between calls (a scrape of 100,000 real servers must not
// rebuild them): after every kind of change it must still answer exactly what a listing built
// from scratch answers, counters included.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DestField, ForwardMethod } from '../../src/tables/dest-table';
import { ServiceModel, TunnelType } from '../../src/service/model';
import type { DestConfig, ServiceConfig, ServiceEntry } from '../../src/service/model';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../src/packet/ipv4';
import { StatsBook } from '../../src/service/stats';
import { ControlHandler } from '../../src/control/handler';

const svc = (addr: number, port: number, scheduler = 'rr', protocol = IPPROTO_TCP): ServiceConfig => ({
  fwmark: 0, af: 4, protocol, addr, port, scheduler, flags: 0, timeout: 0, netmask: 0xffffffff, peName: '',
});
const dest = (addr: number, port: number, weight = 1): DestConfig => ({
  af: 4, addr, port, fwd: ForwardMethod.MASQ, weight, uThreshold: 0, lThreshold: 0, tunType: TunnelType.IPIP, tunPort: 0, tunFlags: 0,
});
const VIP = 0x0a000001;
const RIP = 0xc0a80001; // above 2^31: kept exactly

/** The listing built from nothing kept: every service by id, in list order (getById builds
 *  its entry anew on each call). */
function fresh(m: ServiceModel): ServiceEntry[] {
  return m.ids().services.map((id) => m.getById(id)!);
}

function same(m: ServiceModel, what: string): void {
  assert.deepEqual(plain(m.list()), plain(fresh(m)), `list() after ${what}`);
}

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

test('list() answers as a listing built anew, after every kind of change', () => {
  const m = new ServiceModel({ destCapacity: 16, maxServices: 8 });
  same(m, 'nothing');
  m.addService(svc(VIP, 80));
  same(m, 'add-service (first listing)');
  m.addDest(svc(VIP, 80), dest(RIP, 80));
  same(m, 'add-dest');
  m.addDest(svc(VIP, 80), dest(RIP + 1, 80));
  m.addService(svc(VIP, 53, 'wlc', IPPROTO_UDP));
  m.addDest(svc(VIP, 53, 'wlc', IPPROTO_UDP), dest(RIP + 2, 53));
  same(m, 'several adds');
  m.list(); // kept from here
  m.editService({ ...svc(VIP, 80, 'wrr'), flags: 1, timeout: 300 });
  same(m, 'edit-service');
  m.editDest(svc(VIP, 80), { ...dest(RIP, 80, 7), uThreshold: 10 });
  same(m, 'edit-dest');
  m.deleteDest(svc(VIP, 80), dest(RIP + 1, 80));
  same(m, 'delete-dest');
  m.deleteService(svc(VIP, 53, 'wlc', IPPROTO_UDP));
  same(m, 'delete-service');
  m.addService(svc(VIP, 443));
  same(m, 'add-service after a delete (the id is taken again)');
  // A -R restore, in one batch; then -C.
  m.batch(() => {
    for (let i = 0; i < 3; i++) {
      m.apply({ kind: 'add-service', service: svc(VIP + 1, 1000 + i) });
      m.apply({ kind: 'add-dest', service: svc(VIP + 1, 1000 + i), dest: dest(RIP + 10 + i, 80) });
    }
  });
  same(m, 'a restore');
  m.setTimeouts({ tcp: 10, tcpFin: 0, udp: 0 });
  same(m, 'set-timeouts');
  m.flush();
  same(m, 'flush');
  assert.deepEqual(m.list(), []);
  m.addService(svc(VIP, 80));
  m.addDest(svc(VIP, 80), dest(RIP, 80));
  same(m, 'adds after a flush');
});

test('list() reads the connection counters anew on each call, with no change to the table', () => {
  const m = new ServiceModel({ destCapacity: 4 });
  m.addService(svc(VIP, 80));
  m.addDest(svc(VIP, 80), dest(RIP, 80));
  const slot = m.list()[0]!.dests[0]!.slot;
  const gen = m.generation;
  m.destTable.add(slot, DestField.ACTIVE, 3);
  m.destTable.add(slot, DestField.INACTIVE, 2);
  m.destTable.add(slot, DestField.PERSIST, 1);
  assert.equal(m.generation, gen);
  const d = m.list()[0]!.dests[0]!;
  assert.deepEqual([d.activeConns, d.inactConns, d.persistConns], [3, 2, 1]);
  same(m, 'counters changed');
  m.destTable.add(slot, DestField.ACTIVE, -3);
  assert.equal(m.list()[0]!.dests[0]!.activeConns, 0);
});

test('a real server back from the trash is listed with its slot and counters', () => {
  const m = new ServiceModel({ destCapacity: 4 });
  m.addService(svc(VIP, 80));
  m.addDest(svc(VIP, 80), dest(RIP, 80));
  const slot = m.list()[0]!.dests[0]!.slot;
  m.destTable.add(slot, DestField.ACTIVE, 1);
  m.deleteDest(svc(VIP, 80), dest(RIP, 80));
  same(m, 'a delete into the trash');
  assert.equal(m.list()[0]!.dests.length, 0);
  m.addDest(svc(VIP, 80), dest(RIP, 80, 5));
  same(m, 'the same real server added back');
  assert.equal(m.list()[0]!.dests[0]!.slot, slot);
  assert.equal(m.list()[0]!.dests[0]!.activeConns, 1);
});

test('the array list() returns is the caller\'s; a check copy leaves the kept listing alone', () => {
  const m = new ServiceModel({ destCapacity: 4 });
  m.addService(svc(VIP, 80));
  m.addService(svc(VIP, 81));
  const a = m.list();
  a.reverse();
  a.push(a[0]!);
  assert.deepEqual(m.list().map((s) => s.port), [80, 81]);
  const copy = m.checkCopy();
  copy.apply({ kind: 'delete-service', service: svc(VIP, 80) });
  assert.deepEqual(copy.list().map((s) => s.port), [81]);
  // (A check copy's new real servers have no slot to list: it is only ever checked, not listed.)
  copy.apply({ kind: 'add-dest', service: svc(VIP, 81), dest: dest(RIP, 80) });
  copy.apply({ kind: 'edit-service', service: svc(VIP, 81, 'wlc') });
  assert.deepEqual(m.list().map((s) => s.port), [80, 81]);
  same(m, 'a check copy changed');
});

test('warmListing builds the entries ahead in slices, and list() then answers the same', () => {
  const m = new ServiceModel({ destCapacity: 64, maxServices: 16 });
  for (let i = 0; i < 10; i++) {
    m.addService(svc(VIP, 1000 + i));
    for (let k = 0; k < 3; k++) m.addDest(svc(VIP, 1000 + i), dest(RIP + 3 * i + k, 80));
  }
  // 4 real servers' worth a slice: one service (3 real servers, counted with the service) each.
  let slices = 0;
  while (!m.warmListing(4)) slices++;
  assert.equal(slices, 9, 'one service a slice, the last slice finishing');
  same(m, 'warm-up');
  assert.equal(m.warmListing(4), true, 'nothing left to build');
  m.editDest(svc(VIP, 1003), dest(RIP + 9, 80, 9));
  assert.equal(m.warmListing(100), true);
  same(m, 'an edit, then a warm-up');
});

test('the listing in pieces (uvsd builds -L / -S over several turns) is byte for byte the listing at once', () => {
  const m = new ServiceModel({ destCapacity: 64, maxServices: 16 });
  const stats = new StatsBook();
  const h = new ControlHandler(m, stats, { version: 'v', connTableSize: 4096, pid: 1 });
  const pieces = (maxDests: number): string[] => {
    const out: string[] = [];
    const it = h.listedPieces(maxDests);
    for (let r = it.next(); r.done !== true; r = it.next()) out.push(r.value);
    return out;
  };
  assert.deepEqual(pieces(1), [], 'an empty table has no pieces');
  for (let i = 0; i < 6; i++) {
    m.addService({ ...svc(VIP, 1000 + i), scheduler: i % 2 ? 'wlc' : 'rr' });
    for (let k = 0; k < i; k++) m.addDest(svc(VIP, 1000 + i), dest(RIP + 8 * i + k, 80 + k));
  }
  // Asked for before the listing's entries were built (a listing right after a restore): first
  // empty pieces, each a slice of the building, then the same pieces as a warm table gives.
  const cold: string[] = [];
  const it = h.listedPieces(1);
  for (let r = it.next(); r.done !== true; r = it.next()) cold.push(r.value);
  assert.ok(cold.indexOf('') === 0 && cold.filter((p) => p === '').length >= 2, `warm-up slices first: ${cold.length} pieces`);
  assert.ok(cold.slice(cold.lastIndexOf('') + 1).every((p) => p !== ''), 'no empty piece after the warm-up');
  m.destTable.add(m.list()[3]!.dests[1]!.slot, DestField.ACTIVE, 4);
  const result = h.execute({ cmd: 'list', what: 'all', service: null, format: 0 });
  assert.equal(result.kind, 'services');
  const whole = JSON.stringify((result as { services: unknown[] }).services);
  const warmCold = cold.filter((p) => p !== '');
  for (const maxDests of [1, 3, 7, 1000]) {
    const p = pieces(maxDests);
    if (maxDests === 1) assert.equal(warmCold.length, p.length, 'as many pieces cold as warm');
    assert.equal(`[${p.join(',')}]`, whole, `pieces of ${maxDests} real servers`);
    if (maxDests === 1) assert.equal(p.length, 6, 'one service a piece');
    if (maxDests === 1000) assert.equal(p.length, 1);
  }
});
