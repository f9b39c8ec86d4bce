import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceSnapshot, SvcField, SvcFlag, type CompiledService } from '../../src/service/snapshot';

function svc(slot: number, protocol: number, addr: number, port: number, extra: Partial<CompiledService> = {}): CompiledService {
  return { slot, protocol, addr, port, fwmark: 0, persistTimeout: 0, netmask: 0xffffffff, schedIndex: slot, schedFlags: 0, destCount: 2, onePacket: false, active: true, ...extra };
}

const VIP = 0x0a4d0064; // 10.77.0.100

test('lookup finds each service by protocol, address and port, and nothing else', () => {
  const snap = ServiceSnapshot.build(7, 8, [
    svc(0, 6, VIP, 80),
    svc(3, 17, VIP, 80),
    svc(5, 6, 0xc0a80001, 443, { persistTimeout: 300 }),
    svc(6, 0, 0, 0, { fwmark: 1 }),
  ]);
  assert.equal(snap.generation, 7);
  assert.equal(snap.count, 4);
  assert.equal(snap.lookup(6, VIP, 80), 0);
  assert.equal(snap.lookup(17, VIP, 80), 3);
  assert.equal(snap.lookup(6, 0xc0a80001, 443), 5);
  assert.equal(snap.lookup(6, VIP, 81), -1);
  assert.equal(snap.lookup(1, VIP, 80), -1);
  assert.equal(snap.lookup(6, VIP + 1, 80), -1);
  // Firewall-mark services are listed but never matched on the wire.
  assert.equal(snap.lookup(0, 0, 0), -1);
  assert.equal(snap.flags(6) & SvcFlag.IN_USE, SvcFlag.IN_USE);
  assert.equal(snap.flags(5) & SvcFlag.PERSISTENT, SvcFlag.PERSISTENT);
  assert.equal(snap.get(5, SvcField.PERSIST_TIMEOUT), 300);
  assert.deepEqual(snap.addresses().sort(), [VIP, 0xc0a80001].sort());
  assert.equal(snap.hasAddress(6, VIP), true);
  assert.equal(snap.hasAddress(17, VIP), true);
  assert.equal(snap.hasAddress(17, 0xc0a80001), false);
  assert.equal(snap.hasAddress(6, VIP + 1), false);
});

test('a full index with many colliding services still finds every one', () => {
  const services: CompiledService[] = [];
  for (let i = 0; i < 200; i++) services.push(svc(i, 6, VIP, 1000 + i));
  const snap = ServiceSnapshot.build(1, 200, services);
  for (let i = 0; i < 200; i++) assert.equal(snap.lookup(6, VIP, 1000 + i), i);
  assert.equal(snap.lookup(6, VIP, 999), -1);
});

test('attach in another view sees the same snapshot; bad input is refused', () => {
  const snap = ServiceSnapshot.build(2, 4, [svc(1, 6, VIP, 80)]);
  const view = ServiceSnapshot.attach(snap.buffer);
  assert.equal(view.generation, 2);
  assert.equal(view.lookup(6, VIP, 80), 1);
  assert.throws(() => ServiceSnapshot.build(1, 4, [svc(4, 6, VIP, 80)]), /slot 4 outside 0\.\.3/);
  assert.throws(() => ServiceSnapshot.build(1, 4, [svc(1, 6, VIP, 80), svc(1, 6, VIP, 81)]), /slot 1 used twice/);
  assert.throws(() => ServiceSnapshot.build(1, 4, [svc(1, 6, VIP, 80), svc(2, 6, VIP, 80)]), /two services/);
});
