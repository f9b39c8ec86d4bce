// The control-plane side of the client-hop table (src/tables/client-hops.ts): the fallback routes
// toward clients, resolved from the kernel's routing and neighbour tables.

import type { ClientHopTable, ClientRoute } from '../tables/client-hops';
import type { InterfaceInfo, NetInfo } from './netinfo';
import type { Logger } from '../runtime/log';
import { ipv4ToInt } from '../packet/addr';

/**
 * Control plane: resolves the fallback routes toward clients from the kernel's main routing
 * table (`ip -j -4 route show`): every route through a gateway on one of `ifaces` (the
 * interfaces the data plane captures on, in its order), with the gateway's MAC. A gateway that
 * does not answer ARP is left out (logged) and tried again at the next refresh. Returns the
 * routes stored.
 */
export async function refreshClientRoutes(
  table: ClientHopTable,
  netinfo: NetInfo,
  ifaces: readonly InterfaceInfo[],
  log: Logger,
): Promise<ClientRoute[]> {
  const routes = await netinfo.routeTable();
  const out: ClientRoute[] = [];
  for (const r of routes) {
    if (!r.gateway) continue;
    const egress = ifaces.findIndex((i) => i.ifname === r.ifname);
    if (egress < 0) continue;
    const mac = await netinfo.neighbourMac(r.gateway, r.ifname, 1000);
    if (!mac) {
      log.warn(`route ${r.dst} via ${r.gateway} on ${r.ifname}: no ARP answer from the gateway; NAT replies of synced connections to that network wait for it`);
      continue;
    }
    const [addr, len] = r.dst === 'default' ? ['0.0.0.0', '0'] : r.dst.split('/');
    const prefix = ipv4ToInt(addr!);
    out.push({ prefix, prefixLen: len === undefined ? 32 : Number(len), nextHopMac: mac, ownMac: ifaces[egress]!.mac, egress });
    if (out.length === table.capacity) break;
  }
  table.setRoutes(out);
  return out;
}
