// Fakes for driving the VRRP state machine step by step: a clock whose time only moves when the
// test says so, a socket that records what was sent, and recorders for VIPs, GARPs, notify
// calls, logs and state changes. Every record carries the fake time it happened at.

import { VrrpInstanceInput, VrrpSyncGroupConfig, instanceConfig } from '../../src/vrrp/config';
import { InterfaceWatcher, VrrpRouter } from '../../src/vrrp/router';
import {
  AdvertReceipt,
  Clock,
  OutgoingAdvert,
  TimerId,
  VRRP_MCAST_GROUP4,
  VirtualAddress,
  VrrpAdvert,
  VrrpState,
} from '../../src/vrrp/types';
import { linesLogger } from '../../src/runtime/log';

interface PendingTimer {
  id: TimerId;
  at: number;
  seq: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  private time = 0;
  private nextId = 1;
  private seq = 0;
  private timers: PendingTimer[] = [];

  now(): number {
    return this.time;
  }

  setTimer(callback: () => void, delayMs: number): TimerId {
    const id = this.nextId++;
    this.timers.push({ id, at: this.time + Math.max(0, delayMs), seq: this.seq++, callback });
    return id;
  }

  clearTimer(id: TimerId): void {
    this.timers = this.timers.filter((t) => t.id !== id);
  }

  random(): number {
    return 0;
  }

  pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by ms, firing due timers in deadline order at their own time. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (let guard = 0; guard < 100000; guard++) {
      let next: PendingTimer | undefined;
      for (const t of this.timers) {
        if (t.at <= end && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (next === undefined) break;
      const fired = next;
      this.timers = this.timers.filter((t) => t !== fired);
      this.time = fired.at;
      fired.callback();
    }
    this.time = end;
  }

  /** Advances to an absolute time. */
  advanceTo(at: number): void {
    this.advance(at - this.time);
  }
}

export interface Sent extends OutgoingAdvert {
  at: number;
}

export interface VipEvent {
  at: number;
  op: 'add' | 'remove' | 'garp';
  address: string;
  dev: string;
  label: string | undefined;
  scope: string | undefined;
}

export interface NotifyCall {
  at: number;
  script: string;
  args: string[];
}

export interface StateEvent {
  at: number;
  name: string;
  state: VrrpState;
  previous: VrrpState;
  priority: number;
}

export class FakeInterfaces implements InterfaceWatcher {
  readonly down = new Set<string>();
  isUp(name: string): boolean {
    return !this.down.has(name);
  }
}

export interface Harness {
  clock: FakeClock;
  router: VrrpRouter;
  sent: Sent[];
  vipEvents: VipEvent[];
  notifies: NotifyCall[];
  states: StateEvent[];
  groupStates: { at: number; name: string; state: VrrpState }[];
  logs: string[];
  interfaces: FakeInterfaces;
  socketClosed: () => boolean;
  /** VIP addresses currently installed. */
  installed: () => string[];
  garps: (from?: number, to?: number) => VipEvent[];
}

export function vip(address: string, extra: Partial<VirtualAddress> = {}): VirtualAddress {
  return { address, prefixLength: 24, dev: 'eth0', ...extra };
}

export function config(overrides: Partial<VrrpInstanceInput> = {}): VrrpInstanceInput {
  return {
    name: 'VI_1',
    interface: 'eth0',
    vrid: 51,
    primaryAddress: '10.0.0.2',
    virtualAddresses: [vip('10.0.0.100')],
    ...overrides,
  };
}

export function harness(
  inputs: VrrpInstanceInput[] = [config()],
  syncGroups: VrrpSyncGroupConfig[] = [],
  setup?: (h: { interfaces: FakeInterfaces }) => void,
): Harness {
  const clock = new FakeClock();
  const sent: Sent[] = [];
  const vipEvents: VipEvent[] = [];
  const notifies: NotifyCall[] = [];
  const states: StateEvent[] = [];
  const groupStates: { at: number; name: string; state: VrrpState }[] = [];
  const logs: string[] = [];
  const interfaces = new FakeInterfaces();
  const installed = new Set<string>();
  let closed = false;
  setup?.({ interfaces });
  const vipRecord = (op: VipEvent['op'], v: VirtualAddress): void => {
    vipEvents.push({ at: clock.now(), op, address: v.address, dev: v.dev, label: v.label, scope: v.scope });
  };
  const router = new VrrpRouter(
    { instances: inputs.map(instanceConfig), syncGroups },
    {
      clock,
      socketFactory: () => ({
        send: (advert) => {
          sent.push({ ...advert, addresses: [...advert.addresses], at: clock.now() });
        },
        close: () => {
          closed = true;
        },
      }),
      vips: {
        add: (v) => {
          installed.add(v.address);
          vipRecord('add', v);
        },
        remove: (v) => {
          installed.delete(v.address);
          vipRecord('remove', v);
        },
        gratuitousArp: (v) => vipRecord('garp', v),
      },
      notifier: { run: (script, args) => notifies.push({ at: clock.now(), script, args: [...args] }) },
      logger: linesLogger(logs),
      observer: {
        instanceState: (name, state, previous, priority) => states.push({ at: clock.now(), name, state, previous, priority }),
        groupState: (name, state) => groupStates.push({ at: clock.now(), name, state }),
      },
      interfaces,
    },
  );
  return {
    clock,
    router,
    sent,
    vipEvents,
    notifies,
    states,
    groupStates,
    logs,
    interfaces,
    socketClosed: () => closed,
    installed: () => [...installed].sort(),
    garps: (from = -Infinity, to = Infinity) => vipEvents.filter((e) => e.op === 'garp' && e.at >= from && e.at <= to),
  };
}

/** An advert as a peer would send it for the default config(). */
export function advert(overrides: Partial<VrrpAdvert> = {}): VrrpAdvert {
  return {
    version: 2,
    type: 1,
    vrid: 51,
    priority: 100,
    advertIntCs: 100,
    authType: 0,
    authData: '',
    addresses: ['10.0.0.100'],
    ...overrides,
  };
}

export function receipt(overrides: Partial<AdvertReceipt> = {}): AdvertReceipt {
  return {
    source: '10.0.0.3',
    destination: VRRP_MCAST_GROUP4,
    ttl: 255,
    ifindex: 0,
    checksumOk: true,
    lengthOk: true,
    ...overrides,
  };
}
