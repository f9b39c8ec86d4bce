// Persistence templates (ipvsadm -p timeout, -M netmask), after IPVS ip_vs_sched_persist and
// ip_vs_check_template.
//
// A template is an entry with Meta.TEMPLATE whose key is the client's *network* (caddr masked
// with -M), client port 0, and the virtual address and port; it remembers the real server
// chosen for that client network. Every new connection of the client network while the
// template lives goes to the same real server and is "controlled" by the template (CONTROL =
// template + 1; the template counts its controlled entries). A template is re-armed to the
// persistence timeout each time it is used, and outlives its timeout while it still controls
// entries (checked again every 60 s).
//
// Key shapes, as the kernel builds them:
//   - normal persistent service:      <proto, caddr & mask, 0, vaddr, vport>  → <daddr, dport>
//   - FTP (virtual port 21):           <proto, caddr & mask, 0, vaddr, 0>      → <daddr, 0>
//   - port-zero service (any port):    <proto, caddr & mask, 0, vaddr, 0>      → <daddr, 0>
//   - firewall-mark service (later):   <IPPROTO_IP, caddr & mask, 0, fwmark, 0> → <daddr, 0>

import { DestField, DestFlag, type DestTable } from '../tables/dest-table';
import { HeaderCell, type ConnRef, type ConnTable } from './table';

export const FTP_PORT = 21;

/** The template key of a packet (filled in place). */
export class TemplateKey {
  protocol = 0;
  caddr = 0;
  vaddr = 0;
  vport = 0;
  /** Whether the template records the real server's port (normal persistent services). */
  keepsPort = false;
}

/**
 * ip_vs_sched_persist's template key: the client address masked with `netmask` (host order),
 * client port 0; the virtual port kept only when the packet's port is the service's and the
 * service is not FTP.
 */
export function templateKey(
  protocol: number,
  caddr: number,
  vaddr: number,
  vport: number,
  svcPort: number,
  netmask: number,
  out: TemplateKey,
): TemplateKey {
  out.protocol = protocol;
  out.caddr = (caddr & netmask) | 0;
  out.vaddr = vaddr | 0;
  out.keepsPort = vport === svcPort && svcPort !== FTP_PORT;
  out.vport = out.keepsPort ? vport : 0;
  return out;
}

/**
 * IPVS ip_vs_check_template: a template may be used only while its real server is still in
 * the table, AVAILABLE, and (when expire_quiescent_template is set) has a weight other than 0.
 * An unusable template is made unreachable at once (the kernel rehashes it with ports
 * 0xffff) and freed by its owner's sweep as soon as it controls no entry.
 */
export function checkTemplate(table: ConnTable, dests: DestTable, tpl: ConnRef): boolean {
  const slot = tpl.destSlot;
  let usable = slot >= 0 && slot < dests.capacity;
  if (usable) {
    const flags = Atomics.load(dests.cells, dests.base(slot) + DestField.FLAGS);
    usable = (flags & (DestFlag.IN_USE | DestFlag.AVAILABLE)) === (DestFlag.IN_USE | DestFlag.AVAILABLE);
    if (usable && table.knob(HeaderCell.EXPIRE_QUIESCENT_TEMPLATE) !== 0 && dests.get(slot, DestField.WEIGHT) === 0) {
      usable = false;
    }
  }
  if (!usable) table.invalidate(tpl.index, tpl.seq);
  return usable;
}
