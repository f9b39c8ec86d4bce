// An io module for the VRRP worker in tests: adverts, VIP operations and GARPs are reported on a
// BroadcastChannel, and adverts posted to that channel by the test are delivered to the router.
// No network involved.

import { BroadcastChannel } from 'node:worker_threads';
import type { CreateVrrpIo, VrrpIo } from '../../src/vrrp/protocol';
import type { AdvertReceipt, VrrpAdvert } from '../../src/vrrp/types';

export interface FakeIoOptions {
  channel: string;
  down?: string[];
  /** Interfaces or source addresses the socket refuses to open with (a reload that needs such a
   *  socket is refused by the thread). */
  refuse?: string[];
}

export type FakeIoEvent =
  | { kind: 'sent'; vrid: number; priority: number; advertIntCs: number; destination: string; source: string | undefined }
  | { kind: 'vip'; op: 'add' | 'remove' | 'garp'; address: string }
  | { kind: 'closed' };

export type FakeIoCommand =
  | { kind: 'inject'; advert: VrrpAdvert; receipt: AdvertReceipt }
  /** Ends the VRRP thread at once (process.exit in a worker ends that thread), as a crash would. */
  | { kind: 'crash' };

export const createVrrpIo: CreateVrrpIo = (options) => {
  const opts = options as FakeIoOptions;
  const channel = new BroadcastChannel(opts.channel);
  const down = new Set(opts.down ?? []);
  const report = (event: FakeIoEvent): void => channel.postMessage(event);
  const io: VrrpIo = {
    socketFactory: (sink, endpoints) => {
      const refused = endpoints.find((e) => opts.refuse?.includes(e.interfaceName) || (e.source !== undefined && opts.refuse?.includes(e.source)));
      if (refused) throw new Error(`cannot open a VRRP socket on ${refused.interfaceName} from ${refused.source ?? '-'}: address not available`);
      channel.onmessage = (event) => {
        const command = (event as { data: FakeIoCommand }).data;
        if (command.kind === 'inject') sink.receive(command.advert, command.receipt);
        else if (command.kind === 'crash') process.exit(7);
      };
      return {
        send: (a) => report({ kind: 'sent', vrid: a.vrid, priority: a.priority, advertIntCs: a.advertIntCs, destination: a.destination, source: a.source }),
        close: () => undefined,
      };
    },
    vips: {
      add: (v) => report({ kind: 'vip', op: 'add', address: v.address }),
      remove: (v) => report({ kind: 'vip', op: 'remove', address: v.address }),
      gratuitousArp: (v) => report({ kind: 'vip', op: 'garp', address: v.address }),
    },
    interfaces: { isUp: (name) => !down.has(name) },
    close: () => {
      report({ kind: 'closed' });
      channel.close();
    },
  };
  return io;
};
