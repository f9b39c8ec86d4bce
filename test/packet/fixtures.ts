// Reads test/fixtures/packets/*.txt (written by netns-scripts/capture-fixtures.sh): per frame, the
// captured bytes and the tshark -V text that was printed beside them, plus small helpers to pull a
// field out of that text, so tests compare the decoders with what tshark says.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { viewOf } from '../../src/packet/layer';

// dist/test/packet → repository root. UVS_PACKET_FIXTURES points the tests at a freshly captured set
// (netns-scripts/capture-fixtures.sh DIR) to check that new captures pass too.
export const FIXTURE_DIR = process.env['UVS_PACKET_FIXTURES'] ?? resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'packets');

export interface FixtureFrame {
  fixture: string;
  index: number;
  bytes: Uint8Array;
  view: DataView;
  /** tshark -V lines, without the leading "# ". */
  text: string[];
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.txt'))
    .map((f) => f.slice(0, -4))
    .sort();
}

export function loadFixture(name: string): FixtureFrame[] {
  const lines = readFileSync(join(FIXTURE_DIR, `${name}.txt`), 'utf8').split('\n');
  const frames: FixtureFrame[] = [];
  let text: string[] | null = null;
  let hex = '';
  const flush = () => {
    if (text === null) return;
    if (!/^[0-9a-f]*$/.test(hex) || hex.length % 2 !== 0) throw new Error(`${name}.txt frame ${frames.length + 1}: bad hex`);
    const bytes = new Uint8Array(Buffer.from(hex, 'hex'));
    frames.push({ fixture: name, index: frames.length + 1, bytes, view: viewOf(bytes), text });
  };
  for (const line of lines) {
    if (/^# === frame \d+ ===$/.test(line)) {
      flush();
      text = [];
      hex = '';
    } else if (line.startsWith('#')) {
      if (text !== null) text.push(line.replace(/^# ?/, ''));
    } else if (text !== null) {
      hex += line.replace(/\s+/g, '');
    }
  }
  flush();
  if (frames.length === 0) throw new Error(`${name}.txt: no frames`);
  return frames;
}

export function allFrames(): FixtureFrame[] {
  return fixtureNames().flatMap(loadFixture);
}

/** The lines of the top-level (unindented) tshark section whose title starts with `title`, nth one. */
export function section(frame: FixtureFrame, title: string, nth = 0): string[] | undefined {
  return subsection(frame.text, title, 0, nth);
}

/** Lines of a section at `indent` spaces (title line + everything indented deeper after it). */
export function subsection(lines: string[], title: string, indent: number, nth = 0): string[] | undefined {
  const pad = ' '.repeat(indent);
  let seen = 0;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith(pad + title) && !l.startsWith(pad + ' ')) {
      if (seen++ < nth) continue;
      const out = [l];
      for (let j = i + 1; j < lines.length; j++) {
        const m = lines[j]!;
        if (!m.startsWith(pad + ' ')) break;
        out.push(m);
      }
      return out;
    }
  }
  return undefined;
}

/**
 * Value of field `name` among the direct children (indent + 4 spaces) of a section, also in
 * bit-field form ("0100 .... = Version: 4"). Undefined when absent.
 */
export function field(lines: string[], name: string, indent = 0): string | undefined {
  return fields(lines, name, indent)[0];
}

export function fields(lines: string[], name: string, indent = 0): string[] {
  const pad = ' '.repeat(indent + 4);
  const out: string[] = [];
  for (const l of lines) {
    if (!l.startsWith(pad) || l.startsWith(pad + ' ')) continue;
    const rest = l.slice(pad.length).replace(/^[.01 ]+ = /, '');
    if (rest.startsWith(name + ': ')) out.push(rest.slice(name.length + 2));
  }
  return out;
}

/** A number from a tshark value: the last "(n)" / "(0x..)" if there is one, else the leading number. */
export function num(value: string | undefined): number {
  if (value === undefined) throw new Error('field missing in tshark text');
  const paren = [...value.matchAll(/\((0x[0-9a-f]+|\d+)\)/gi)].pop();
  const token = paren ? paren[1]! : value.trim().split(/\s+/)[0]!;
  const n = Number(token);
  if (!Number.isFinite(n)) throw new Error(`no number in tshark value ${JSON.stringify(value)}`);
  return n;
}

/** The MAC in a tshark value like "Broadcast (ff:ff:ff:ff:ff:ff)". */
export function macOf(value: string | undefined): string {
  const m = value === undefined ? null : /\(([0-9a-f]{2}(?::[0-9a-f]{2}){5})\)/.exec(value);
  if (m === null) throw new Error(`no MAC in tshark value ${JSON.stringify(value)}`);
  return m[1]!;
}

/** Deterministic PRNG (mulberry32) so randomized tests are repeatable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
