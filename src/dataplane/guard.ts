// The kernel guard: an nftables table that keeps the director's own kernel away from the packets
// uvs forwards.
//
// The AF_PACKET ring sees every frame before netfilter does (packet taps run in
// __netif_receive_skb_core before the ingress and prerouting hooks), so dropping a frame here does
// not hide it from uvs; it only stops the kernel from also handling it: answering a SYN to the VIP
// with a RST (the VIP is a local address and nothing listens), or forwarding a NAT reply itself
// when net.ipv4.ip_forward is on. The drops sit in the input hook (what is addressed to the
// director: the services) and the forward hook (what the kernel would route on: NAT replies and
// their ICMP errors), at priority raw, not in prerouting: with br_netfilter loaded
// (bridge-nf-call-iptables=1, as on Docker and Kubernetes hosts) the ip prerouting hooks run
// inside the bridge, on the port, before the frame reaches the bridge device, and a drop there
// hid the frame from uvs's tap on the bridge, which is where uvs captures (netinfo.ts,
// captureInterfaces). Input and forward run after the bridge has passed the frame up.
//
// What is dropped, exactly:
//   - packets to a virtual service: ip daddr . l4proto . dport in @services, or ip daddr .
//     l4proto in @services_any for a port-0 service (persistent, all ports: ip_vs_service_find's
//     second lookup with port 0);
//   - NAT replies from a real server to a client: ip saddr . l4proto . sport in @nat_replies,
//     unless the destination is one of the director's own addresses (health-check replies and
//     anything else the director itself talks to real servers about stay untouched); a NAT
//     real server of a port-0 service answers from any port: @nat_replies_any (address . l4proto);
//   - ICMP errors from a NAT real server to a client (uvs translates them, ip_vs_out_icmp), so a
//     director with ip_forward on does not also pass them on untranslated.
// Everything else — VRRP, ICMP to the VIP, management traffic, other ports — passes.
//
// The table is installed at start (after removing one a crashed daemon left) and removed on exit.
// When the services change, only the elements that changed are added to or deleted from the sets
// (update(): one nft transaction, a few lines however large the sets are), so a change costs the
// same with 10 services as with 10,000; setTuples() replaces the sets' whole contents (used to
// start over when an update failed).

import { spawn } from 'node:child_process';
import { UvsError } from '../runtime/errors';

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** How the guard runs `nft`; tests pass a fake that records the scripts. */
export interface CommandRunner {
  run(cmd: string, args: readonly string[], input?: string): Promise<CommandResult>;
}

export const execRunner: CommandRunner = {
  run(cmd, args, input) {
    return new Promise((resolve) => {
      const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', (err) => resolve({ status: -1, stdout, stderr: stderr + String(err.message) }));
      child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
      if (child.stdin) {
        // A command that exits without reading its input must not crash us with EPIPE.
        child.stdin.on('error', () => {});
        child.stdin.end(input);
      }
    });
  },
};

/** One (address, protocol, port) triple of a set. Address in dotted quad, protocol 'tcp'|'udp'. */
export interface GuardTuple {
  addr: string;
  protocol: 'tcp' | 'udp';
  port: number;
}

/** What update() changes in the sets. */
export interface GuardDelta {
  addServices: readonly GuardTuple[];
  delServices: readonly GuardTuple[];
  addNatReplies: readonly GuardTuple[];
  delNatReplies: readonly GuardTuple[];
  addNatSources: readonly string[];
  delNatSources: readonly string[];
}

export class GuardError extends UvsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UVS_ERR_GUARD', message, options);
  }
}

export const DEFAULT_GUARD_TABLE = 'uvs';

export class KernelGuard {
  private installed = false;

  constructor(
    private readonly runner: CommandRunner = execRunner,
    readonly table: string = DEFAULT_GUARD_TABLE,
  ) {
    // At most 23 characters after "uvs": the handover table adds "_keep" (nft allows 31).
    if (!/^uvs[A-Za-z0-9_]{0,23}$/.test(table)) {
      throw new GuardError(`kernel guard: table name must start with "uvs" and be a plain word of at most 26 characters, got "${table}"`);
    }
  }

  /** Removes a table left by a crashed daemon, then creates ours with empty sets. */
  async install(): Promise<void> {
    await this.removeStale();
    await this.nft(this.baseScript(), 'install');
    this.installed = true;
  }

  /** Replaces both sets' contents in one transaction: either all of it applies or none. */
  async setTuples(services: readonly GuardTuple[], natReplies: readonly GuardTuple[]): Promise<void> {
    if (!this.installed) throw new GuardError('kernel guard: setTuples() before install()');
    const t = this.table;
    const lines = ['services', 'services_any', 'nat_replies', 'nat_replies_any', 'nat_sources'].map((set) => `flush set ip ${t} ${set}`);
    const add = (set: string, items: readonly string[]): void => {
      if (items.length) lines.push(`add element ip ${t} ${set} { ${items.join(', ')} }`);
    };
    add('services', services.filter((x) => x.port !== 0).map(tupleText));
    add('services_any', services.filter((x) => x.port === 0).map(tupleText));
    add('nat_replies', natReplies.filter((x) => x.port !== 0).map(tupleText));
    add('nat_replies_any', natReplies.filter((x) => x.port === 0).map(tupleText));
    add('nat_sources', [...new Set(natReplies.map((x) => addrText(x.addr)))]);
    await this.nft(lines.join('\n') + '\n', 'update sets');
  }

  /**
   * Adds and deletes set elements in one transaction (all of it applies or none). The caller
   * keeps track of what is in the sets: deleting an element that is not there, or adding one
   * twice, fails the whole transaction (nft: "Could not process rule: No such file or directory").
   */
  async update(delta: GuardDelta): Promise<void> {
    if (!this.installed) throw new GuardError('kernel guard: update() before install()');
    const t = this.table;
    const lines: string[] = [];
    const elements = (op: 'add' | 'delete', set: string, items: readonly string[]): void => {
      if (items.length) lines.push(`${op} element ip ${t} ${set} { ${items.join(', ')} }`);
    };
    // Deletions first: a transaction that also re-adds an element must not see it twice.
    // A port-0 tuple (a service of all ports) goes to the *_any set, as address . protocol.
    const some = (items: readonly GuardTuple[], any: boolean): string[] => items.filter((x) => (x.port === 0) === any).map(tupleText);
    elements('delete', 'services', some(delta.delServices, false));
    elements('delete', 'services_any', some(delta.delServices, true));
    elements('delete', 'nat_replies', some(delta.delNatReplies, false));
    elements('delete', 'nat_replies_any', some(delta.delNatReplies, true));
    elements('delete', 'nat_sources', delta.delNatSources.map(addrText));
    elements('add', 'services', some(delta.addServices, false));
    elements('add', 'services_any', some(delta.addServices, true));
    elements('add', 'nat_replies', some(delta.addNatReplies, false));
    elements('add', 'nat_replies_any', some(delta.addNatReplies, true));
    elements('add', 'nat_sources', delta.addNatSources.map(addrText));
    if (lines.length === 0) return;
    await this.nft(lines.join('\n') + '\n', 'update sets');
  }

  /** Removes the table; harmless when it is not there. */
  async remove(): Promise<void> {
    this.installed = false;
    await this.removeStale();
  }

  /** The table that keeps guarding between a stop that saved the connections and the next
   *  start that restores them (restart without loss, src/dataplane/conn-state.ts). */
  get handoverTable(): string {
    return `${this.table}_keep`;
  }

  /**
   * Stop with connections handed to the next uvsd: our table becomes the handover table, with
   * the same elements, in one transaction, so the kernel never sees (and never resets) the
   * saved connections' packets while no uvsd runs. The next start installs its own table beside
   * it and releases it (releaseHandover) once the connections are back in a table.
   */
  async handOver(services: readonly GuardTuple[], natReplies: readonly GuardTuple[]): Promise<void> {
    this.installed = false;
    const keep = this.handoverTable;
    const lines = [`table ip ${keep} {}`, `delete table ip ${keep}`, this.baseScript(keep).trimEnd()];
    if (services.length) lines.push(`add element ip ${keep} services { ${services.map(tupleText).join(', ')} }`);
    if (natReplies.length) {
      lines.push(`add element ip ${keep} nat_replies { ${natReplies.map(tupleText).join(', ')} }`);
      lines.push(`add element ip ${keep} nat_sources { ${[...new Set(natReplies.map((t) => t.addr))].join(', ')} }`);
    }
    lines.push(`table ip ${this.table} {}`, `delete table ip ${this.table}`);
    await this.nft(lines.join('\n') + '\n', 'hand over');
  }

  /** Removes the handover table a previous uvsd left; harmless when there is none. */
  async releaseHandover(): Promise<void> {
    await this.removeStale(this.handoverTable);
  }

  private async removeStale(table = this.table): Promise<void> {
    const list = await this.runner.run('nft', ['list', 'tables', 'ip']);
    if (list.status !== 0) {
      throw new GuardError(`kernel guard: "nft list tables ip" failed (${list.status}): ${list.stderr.trim()}`);
    }
    const present = list.stdout.split('\n').some((l) => l.trim() === `table ip ${table}`);
    if (present) await this.nft(`delete table ip ${table}\n`, 'remove');
  }

  private baseScript(t = this.table): string {
    return [
      `table ip ${t} {`,
      `  set services { type ipv4_addr . inet_proto . inet_service; }`,
      `  set nat_replies { type ipv4_addr . inet_proto . inet_service; }`,
      `  set services_any { type ipv4_addr . inet_proto; }`,
      `  set nat_replies_any { type ipv4_addr . inet_proto; }`,
      `  set nat_sources { type ipv4_addr; }`,
      `  chain input {`,
      `    type filter hook input priority raw; policy accept;`,
      `    ip daddr . meta l4proto . th dport @services counter drop`,
      `    ip daddr . meta l4proto @services_any counter drop`,
      `  }`,
      `  chain forward {`,
      `    type filter hook forward priority raw; policy accept;`,
      `    ip saddr . meta l4proto . th sport @nat_replies fib daddr type != local counter drop`,
      `    ip saddr . meta l4proto @nat_replies_any fib daddr type != local counter drop`,
      `    ip saddr @nat_sources icmp type { destination-unreachable, source-quench, time-exceeded, parameter-problem } fib daddr type != local counter drop`,
      `  }`,
      `}`,
      '',
    ].join('\n');
  }

  private async nft(script: string, what: string): Promise<void> {
    const r = await this.runner.run('nft', ['-f', '-'], script);
    if (r.status !== 0) {
      throw new GuardError(`kernel guard: nft ${what} failed (exit ${r.status}): ${r.stderr.trim()}\nscript:\n${script}`);
    }
  }
}

function addrText(addr: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(addr)) throw new GuardError(`kernel guard: bad IPv4 address "${addr}"`);
  return addr;
}

/** "addr . proto . port", or "addr . proto" for port 0 (the *_any sets). */
function tupleText(t: GuardTuple): string {
  addrText(t.addr);
  if (!Number.isInteger(t.port) || t.port < 0 || t.port > 65535) throw new GuardError(`kernel guard: bad port ${t.port}`);
  return t.port === 0 ? `${t.addr} . ${t.protocol}` : `${t.addr} . ${t.protocol} . ${t.port}`;
}
