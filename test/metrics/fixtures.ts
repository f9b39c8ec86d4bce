// A known table for the exposition tests: what `ipvsadm -Ln` would list as
//   TCP  10.0.0.1:80 wrr  -> 10.0.1.2:80 weight 3 (5 active, 7 inactive), 10.0.1.1:8080 weight 1
//   UDP  10.0.0.1:53 rr   -> 10.0.1.3:53 weight 2 (0 active, 4 inactive)
//   FWM  26 wlc           -> 10.0.1.1:0 weight 1 (1 active)

import type { DestEntry, ServiceEntry } from '../../src/service/model';
import { ForwardMethod } from '../../src/tables/dest-table';
import type { MetricsSnapshot } from '../../src/metrics/snapshot';

function dest(addr: string, port: number, weight: number, active: number, inact: number, slot: number): DestEntry {
  const [a, b, c, d] = addr.split('.').map(Number) as [number, number, number, number];
  return {
    af: 4, addr: ((a << 24) | (b << 16) | (c << 8) | d) >>> 0, port, fwd: ForwardMethod.DROUTE, weight, uThreshold: 0, lThreshold: 0,
    tunType: 0, tunPort: 0, tunFlags: 0, slot, activeConns: active, inactConns: inact, persistConns: 0,
  };
}

function service(id: number, protocol: number, addr: number, port: number, fwmark: number, dests: DestEntry[]): ServiceEntry {
  return { id, af: 4, protocol, addr, port, fwmark, scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '', dests };
}

export const VIP = 0x0a000001;

export const KNOWN_TABLE: ServiceEntry[] = [
  service(0, 6, VIP, 80, 0, [dest('10.0.1.2', 80, 3, 5, 7, 0), dest('10.0.1.1', 8080, 1, 0, 0, 1)]),
  service(1, 17, VIP, 53, 0, [dest('10.0.1.3', 53, 2, 0, 4, 2)]),
  service(2, 6, 0, 0, 26, [dest('10.0.1.1', 0, 1, 1, 0, 3)]),
];

export function knownSnapshot(over: Partial<MetricsSnapshot> = {}): MetricsSnapshot {
  return {
    totals: { conns: 12, inpkts: 340, outpkts: 0, inbytes: 51000, outbytes: 0 },
    services: KNOWN_TABLE,
    vrrp: [],
    checks: [],
    workers: [],
    conns: null,
    ...over,
  };
}
