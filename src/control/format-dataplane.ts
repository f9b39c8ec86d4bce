// `uvsadm --dataplane` (a uvs extension; ipvsadm has no data plane of its own to show): one row
// per worker thread with the figures that explain a run — batches, frames in and out, what was
// not ours, kernel ring drops, time per frame in the pipeline and in sendmmsg, entries the flood
// defence evicted (drop_entry, by reason: see src/conn/defense.ts), how turns began (an epoll
// wake-up or a busy-poll hit) and how often the busy poll's guards paused it (native RingPoller:
// CPUs contended, a spin starved) — then one line for the
// interface watch (src/dataplane/link-watch.ts: link and address events seen, the re-evaluations
// they caused, lines not understood, monitor restarts) and the drop reasons counted, summed over
// the workers, and one line for the in-kernel fast path (src/dataplane/fast-path.ts).

import type { WorkerReport } from '../dataplane/dataplane';
import type { LinkWatchStats } from '../dataplane/link-watch';
import type { FastPathReport } from '../dataplane/fast-path';

function perFrame(ns: number, frames: number): string {
  return frames > 0 ? (ns / frames).toFixed(0) : '-';
}

/** `linkWatch`: the interface watch's counters; null when uvsd does not watch (or is too old to say). */
export function listDataplane(workers: readonly WorkerReport[], linkWatch: LinkWatchStats | null = null, fastPath: FastPathReport | null = null): string {
  if (workers.length === 0) return 'no data plane runs in this uvsd (--io none)\n';
  const header = ['Worker', 'State', 'Restarts', 'Batches', 'RxFrames', 'TxFrames', 'TxDropped', 'NotOurs', 'RingDrops', 'GSO', 'ns/frame', 'send ns/frame',
    'EvictSyn', 'EvictUdp', 'EvictNoData', 'EvictFew', 'TxShed', 'Yields', 'EpollWakes', 'SpinHits', 'SpinContended', 'SpinStarved', 'SpinRescued', 'SpinSustained', 'XdpFrames', 'XdpCsumFixed'];
  const rows = workers.map((w) => {
    const s = w.stats;
    const rx = s['rx_frames'] ?? 0;
    const tx = s['tx_frames'] ?? 0;
    return [
      String(w.id), w.alive ? 'running' : 'down', String(w.restarts), String(s['rx_batches'] ?? 0), String(rx), String(tx),
      String(s['tx_dropped'] ?? 0), String(s['not_ours'] ?? 0), String(s['ring_drops'] ?? 0), String(s['gso_frames'] ?? 0),
      perFrame(s['process_ns'] ?? 0, rx), perFrame(s['send_ns'] ?? 0, tx),
      String(s['evict_syn'] ?? 0), String(s['evict_udp'] ?? 0), String(s['evict_nodata'] ?? 0), String(s['evict_few'] ?? 0),
      String(s['tx_shed'] ?? 0), String(s['yields'] ?? 0),
      String(s['epoll_wakeups'] ?? 0), String(s['busy_poll_hits'] ?? 0), String(s['busy_poll_contended'] ?? 0), String(s['busy_poll_starved'] ?? 0),
      String(s['busy_poll_rescued'] ?? 0), String(s['busy_poll_sustained'] ?? 0),
      String(s['xdp_frames'] ?? 0), String(s['xdp_csum_completed'] ?? 0),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  let out = line(header) + '\n';
  for (const r of rows) out += line(r) + '\n';
  out += linkWatch
    ? `Interface watch: ${linkWatch.events} events, ${linkWatch.relinks} relinks, ${linkWatch.bad} bad lines, ${linkWatch.restarts} monitor restarts\n`
    : 'Interface watch: off\n';
  out += fastPath
    ? `Fast path: ${fastPath.offloads} flows offloaded, ${fastPath.offloads - fastPath.left} in the kernel now (at most ${fastPath.max}), ` +
      `${fastPath.left} taken back, ${fastPath.refused} refused (full), ${fastPath.kept} expiries put off; ${fastPath.packets} packets forwarded in the kernel\n`
    : 'Fast path: off\n';
  if (fastPath?.sched) {
    const k = fastPath.sched;
    out += `Kernel scheduling: ${k.services} services, ${k.scheduled} connections scheduled in the kernel, ${k.adopted} entered in the table, ` +
      `${k.dropped} taken back, ${k.refused} refused (key exists or map full), ${k.lost} lost (events ring full)\n`;
  }
  const drops = new Map<string, number>();
  for (const w of workers) for (const [name, n] of Object.entries(w.drops)) drops.set(name, (drops.get(name) ?? 0) + n);
  if (drops.size === 0) return out + 'Drops: none\n';
  out += 'Drops:\n';
  const width = Math.max(...[...drops.keys()].map((k) => k.length));
  for (const [name, n] of [...drops.entries()].sort((a, b) => b[1] - a[1])) out += `  ${name.padEnd(width)}  ${n}\n`;
  return out;
}
