// The sync backup's real-server lookup (modelDestResolver) follows every change of the model,
// whether it updates itself per changed service or rebuilds from the listing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ForwardMethod } from '../../src/tables/dest-table';
import { ServiceModel, TunnelType } from '../../src/service/model';
import type { DestConfig, ServiceConfig } from '../../src/service/model';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../src/packet/ipv4';
import { modelDestResolver } from '../../src/control/daemon';

const svc = (addr: number, port: number, protocol = IPPROTO_TCP): ServiceConfig => ({
  fwmark: 0, af: 4, protocol, addr, port, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '',
});
const dest = (addr: number, port: number): DestConfig => ({
  af: 4, addr, port, fwd: ForwardMethod.DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: TunnelType.IPIP, tunPort: 0, tunFlags: 0,
});
const VIP = 0xc0a80a01; // above 2^31, given signed as the sync code may
const RIP = 0xc0a81401;

/** What the resolver must answer: every TCP/UDP service's real servers, from the model itself. */
function expectAll(m: ServiceModel, resolve: ReturnType<typeof modelDestResolver>, what: string): void {
  for (const s of m.list()) {
    for (const d of s.dests) {
      assert.equal(resolve(s.protocol, s.addr | 0, s.port, d.addr | 0, d.port), d.slot, `${what}: ${s.port} → ${d.addr}:${d.port}`);
    }
  }
}

test('the resolver follows adds, edits, deletes, a delete and re-add in one window, -C and a restore', () => {
  const m = new ServiceModel({ destCapacity: 1024, maxServices: 512 });
  const resolve = modelDestResolver(m);
  assert.equal(resolve(IPPROTO_TCP, VIP, 80, RIP, 80), -1, 'empty table');
  m.addService(svc(VIP, 80));
  m.addDest(svc(VIP, 80), dest(RIP, 80));
  expectAll(m, resolve, 'first lookup');
  m.addDest(svc(VIP, 80), dest(RIP + 1, 8080));
  m.addService(svc(VIP, 53, IPPROTO_UDP));
  m.addDest(svc(VIP, 53, IPPROTO_UDP), dest(RIP, 53));
  expectAll(m, resolve, 'adds');
  assert.equal(resolve(IPPROTO_TCP, VIP, 53, RIP, 53), -1, 'the protocol is part of the service');
  assert.equal(resolve(IPPROTO_TCP, VIP, 80, RIP + 1, 8080 + 65536 * 0), m.list()[0]!.dests[0]!.slot);
  assert.equal(resolve(IPPROTO_TCP, VIP, 80, RIP, 80 + 65536), -1, 'a port beyond 16 bits matches nothing');
  m.deleteDest(svc(VIP, 80), dest(RIP, 80));
  assert.equal(resolve(IPPROTO_TCP, VIP, 80, RIP, 80), -1, 'a deleted real server');
  // The same key deleted and added again (another id, or the same) between two lookups.
  m.deleteService(svc(VIP, 80));
  m.addService(svc(VIP, 81));
  m.addService(svc(VIP, 80));
  m.addDest(svc(VIP, 80), dest(RIP + 2, 80));
  expectAll(m, resolve, 'delete and re-add');
  assert.equal(resolve(IPPROTO_TCP, VIP, 80, RIP + 1, 8080), -1, 'the old service\'s real server');
  m.editService({ ...svc(VIP, 80), scheduler: 'wlc' });
  expectAll(m, resolve, 'edit');
  m.flush();
  assert.equal(resolve(IPPROTO_UDP, VIP, 53, RIP, 53), -1, 'after -C');
  // More changed services than the resolver updates one by one: it rebuilds.
  m.batch(() => {
    for (let i = 0; i < 300; i++) {
      m.apply({ kind: 'add-service', service: svc(VIP, 1000 + i) });
      m.apply({ kind: 'add-dest', service: svc(VIP, 1000 + i), dest: dest(RIP + i, 80) });
    }
  });
  expectAll(m, resolve, 'a restore of 300 services');
  m.deleteService(svc(VIP, 1000));
  assert.equal(resolve(IPPROTO_TCP, VIP, 1000, RIP, 80), -1);
  expectAll(m, resolve, 'after the restore');
});
