// uvsd's IPVS knobs (net.ipv4.vs.*, registry in src/conn/knobs.ts): where their values come
// from, in rising precedence, and how they reach the data plane.
//
//   1. the default (the kernel's, or uvs's where it differs: drop_entry, amemthresh);
//   2. uvsd's older options --drop-entry, --drop-packet, --secure-tcp, --amemthresh, --am-droprate
//      (aliases of the knobs of the same name);
//   3. the --sysctl-file, read at start and at every SIGHUP (a line removed from it returns the
//      knob to 1 or 2 on the next reload);
//   4. `uvsadm --sysctl NAME=VALUE` at run time. Such a value is kept across reloads, as a
//      `sysctl -w` survives a keepalived reload: the kernel keeps it until reboot, uvsd until it
//      stops. A reload that finds the file saying otherwise logs that the runtime value stays.
//
// A bad file (unknown knob, bad value) is refused whole with its file:line, at start (uvsd does
// not start) and at reload (nothing changes); a bad `uvsadm --sysctl` changes nothing.
//
// The registry is the connection table's knobs (src/conn/knobs.ts) and the sync daemon's
// (src/sync/knobs.ts), joined here because the conn layer may not import the sync layer above it.

import { readFileSync } from 'node:fs';
import { KNOBS, SYSCTL_PREFIX, knobDefault, knobName, parseKnob, type KnobContext, type KnobSpec } from '../conn/knobs';
import type { HeaderCell } from '../conn/table';
import { SYNC_KNOBS } from '../sync/knobs';
import { UvsError } from '../runtime/errors';

/** Every IPVS knob uvs knows, sorted by name as `sysctl -a` lists them. */
export const IPVS_KNOBS: readonly KnobSpec[] = [...KNOBS, ...SYNC_KNOBS].sort((a, b) => (a.name < b.name ? -1 : 1));

export function findIpvsKnob(name: string): KnobSpec | undefined {
  return IPVS_KNOBS.find((k) => k.name === name);
}

/** One knob as `uvsadm --sysctl` lists it. */
export interface SysctlValue {
  /** Full name: net.ipv4.vs.sloppy_tcp. */
  name: string;
  value: string;
}

/** A bad knob name or value (from uvsadm, an option or the file): nothing was changed. */
export class SysctlError extends UvsError {
  constructor(message: string) {
    super('UVS_ERR_SYSCTL', message);
  }
}

/** Where the data plane takes the knobs it reads (the connection table's header). */
export type KnobCellSink = (cell: HeaderCell, value: number) => void;

export class Sysctls {
  private readonly base = new Map<string, string>();
  private file = new Map<string, string>();
  private readonly runtime = new Map<string, string>();
  private sink: KnobCellSink | null = null;
  private readonly listeners: ((name: string, value: string) => void)[] = [];

  /** `aliases`: knob name → value given by uvsd's older options (checked here). */
  constructor(readonly ctx: KnobContext, aliases: Readonly<Record<string, number | undefined>> = {}) {
    for (const k of IPVS_KNOBS) this.base.set(k.name, knobDefault(k, ctx));
    for (const [name, v] of Object.entries(aliases)) {
      if (v === undefined) continue;
      const spec = this.spec(name);
      try {
        this.base.set(name, parseKnob(spec, String(v), ctx));
      } catch (err) {
        throw new SysctlError((err as Error).message);
      }
    }
  }

  /** The value in force. */
  get(name: string): string {
    const short = this.spec(knobName(name) ?? name).name;
    return this.runtime.get(short) ?? this.file.get(short) ?? this.base.get(short)!;
  }

  /** One knob by any of its spellings (net.ipv4.vs.X, net/ipv4/vs/X, X). */
  show(name: string): SysctlValue {
    const spec = this.spec(knobName(name) ?? name);
    return { name: SYSCTL_PREFIX + spec.name, value: this.get(spec.name) };
  }

  /** Every knob, sorted by name as `sysctl -a` lists them. */
  list(): SysctlValue[] {
    return IPVS_KNOBS.map((k) => ({ name: SYSCTL_PREFIX + k.name, value: this.get(k.name) }));
  }

  /** `uvsadm --sysctl NAME=VALUE`: checked, then kept over the file's value until uvsd stops. */
  set(name: string, value: string): SysctlValue {
    const short = knobName(name);
    const spec = this.spec(short ?? name);
    let v: string;
    try {
      v = parseKnob(spec, value, this.ctx, this.get(spec.name));
    } catch (err) {
      throw new SysctlError((err as Error).message);
    }
    this.runtime.set(spec.name, v);
    this.changed(spec);
    return { name: SYSCTL_PREFIX + spec.name, value: v };
  }

  /** Reads a sysctl.conf-style file (--sysctl-file) and makes it the file layer; a bad line
   *  throws SysctlError with its file:line and changes nothing. Returns notes to log. */
  loadFile(path: string): string[] {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new SysctlError(`${path}: cannot read the sysctl file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const { values, notes } = parseSysctlFile(text, path, this.ctx);
    const before = new Map(IPVS_KNOBS.map((k) => [k.name, this.get(k.name)]));
    this.file = values;
    for (const [name, v] of values) {
      const kept = this.runtime.get(name);
      if (kept !== undefined && kept !== v) {
        notes.push(`${SYSCTL_PREFIX}${name}: ${path} says ${v}, the value set at run time (uvsadm --sysctl) stays: ${kept}`);
      }
    }
    for (const k of IPVS_KNOBS) if (this.get(k.name) !== before.get(k.name)) this.changed(k);
    return notes;
  }

  /** The data plane's connection table: every knob with a cell is written now and on each change. */
  attach(sink: KnobCellSink): void {
    this.sink = sink;
    for (const k of IPVS_KNOBS) if (k.cell !== undefined) sink(k.cell, Number(this.get(k.name)));
  }

  /** Subsystems with a knob of their own (the sync daemon) hear of every change. */
  onChange(listener: (name: string, value: string) => void): void {
    this.listeners.push(listener);
  }

  private changed(spec: KnobSpec): void {
    const v = this.get(spec.name);
    if (spec.cell !== undefined && this.sink) this.sink(spec.cell, Number(v));
    for (const l of this.listeners) l(spec.name, v);
  }

  private spec(name: string): KnobSpec {
    const spec = findIpvsKnob(name);
    if (!spec) throw new SysctlError(`${name.startsWith(SYSCTL_PREFIX) ? name : SYSCTL_PREFIX + name}: no such IPVS knob (uvsadm --sysctl lists them)`);
    return spec;
  }
}

/** sysctl.conf(5) syntax: `key = value` lines, `#` and `;` comments, blank lines; a key in
 *  slashes (net/ipv4/vs/x) as sysctl accepts; a leading `-` makes an unknown key not an error
 *  (sysctl.d(5)). Keys outside net.ipv4.vs. are the kernel's: skipped with a note. */
export function parseSysctlFile(text: string, path: string, ctx: KnobContext): { values: Map<string, string>; notes: string[] } {
  const values = new Map<string, string>();
  const notes: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const where = `${path}:${i + 1}`;
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new SysctlError(`${where}: "${line}" is not "key = value"`);
    let key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const optional = key.startsWith('-');
    if (optional) key = key.slice(1).trim();
    const dotted = key.replace(/\//g, '.');
    if (!dotted.startsWith(SYSCTL_PREFIX)) {
      notes.push(`${where}: ${dotted} is not an IPVS knob; uvsd leaves it to sysctl`);
      continue;
    }
    const spec = findIpvsKnob(dotted.slice(SYSCTL_PREFIX.length));
    if (!spec) {
      if (optional) continue;
      throw new SysctlError(`${where}: ${dotted}: no such IPVS knob (uvsadm --sysctl lists them)`);
    }
    try {
      // A knob of two numbers written with one keeps the other from an earlier line, else from
      // the default (sync_threshold = 5: threshold 5, period 50).
      values.set(spec.name, parseKnob(spec, value, ctx, values.get(spec.name) ?? knobDefault(spec, ctx)));
    } catch (err) {
      throw new SysctlError(`${where}: ${(err as Error).message}`);
    }
  }
  return { values, notes };
}

/** sysctl -a's line for one knob. */
export function formatSysctl(v: SysctlValue): string {
  return `${v.name} = ${v.value}`;
}
