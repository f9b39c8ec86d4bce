// The parser and validator never throw, whatever the input: every Debian sample, mangled by a
// seeded generator (deleted, duplicated and swapped characters, stray braces, quotes, $ and @).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { memoryReader, parseKeepalivedConfig, validateKeepalivedModel } from '../../src/config/keepalived';
import type { Machine } from '../../src/config/keepalived';

const SAMPLES = path.resolve(__dirname, '../../../test/fixtures/keepalived/samples');
const MACHINE: Machine = { getInterface: (n) => (n === 'eth0' ? { name: n, loopback: false } : null), findExecutable: () => null, userExists: (u) => u === 'root' };

/** xorshift32: deterministic, so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const NOISE = ['{', '}', '"', "'", '$', '${', '@', '@^', '\\', '\n', '#', '!', '~SEQ(', '-', '/', ':', ' include x\n', '$A=${A}\n'];

function mangle(text: string, random: () => number): string {
  const chars = [...text];
  const edits = 1 + Math.floor(random() * 12);
  for (let e = 0; e < edits && chars.length > 0; e++) {
    const at = Math.floor(random() * chars.length);
    const op = Math.floor(random() * 4);
    if (op === 0) chars.splice(at, 1 + Math.floor(random() * 20));
    else if (op === 1) chars.splice(at, 0, NOISE[Math.floor(random() * NOISE.length)]!);
    else if (op === 2) chars.splice(at, 0, ...chars.slice(at, at + Math.floor(random() * 40)));
    else {
      const other = Math.floor(random() * chars.length);
      const x = chars[at]!; // at and other are below chars.length
      chars[at] = chars[other]!;
      chars[other] = x;
    }
  }
  return chars.join('');
}

test('mangled samples: parse and validate return diagnostics, never throw (2500 cases)', () => {
  const files = fs.readdirSync(SAMPLES).filter((f) => f.startsWith('keepalived.conf.'));
  assert.equal(files.length, 25);
  const random = rng(0x5eed);
  let withErrors = 0;
  for (let round = 0; round < 100; round++) {
    for (const f of files) {
      const text = mangle(fs.readFileSync(path.join(SAMPLES, f), 'utf8'), random);
      const file = '/etc/keepalived/keepalived.conf';
      let diagnostics;
      try {
        const parsed = parseKeepalivedConfig(file, memoryReader({ [file]: text }), { configId: 'x', random });
        diagnostics = [...parsed.diagnostics, ...validateKeepalivedModel(parsed.model, MACHINE)];
      } catch (e) {
        assert.fail(`round ${round}, ${f}: threw ${(e as Error).stack}\n--- input ---\n${text}`);
      }
      for (const d of diagnostics) {
        assert.ok(d.message.length > 0 && (d.line > 0 || d.file === '' || d.code === 'unreadable-file'), `${f}: diagnostic without a place: ${JSON.stringify(d)}`);
      }
      if (diagnostics.some((d) => d.severity === 'error')) withErrors++;
    }
  }
  assert.ok(withErrors > 100, `the mangling produces errors (${withErrors})`);
});

// Its speed (linear, not quadratic) is not asserted here: timings belong in benchmarks, and this
// machine is shared. The expansion itself, line by line, is.
test('a large ~SEQ (60,000 lines) expands, and every line is judged', () => {
  const file = '/k.conf';
  const { model, diagnostics } = parseKeepalivedConfig(file, memoryReader({ [file]: 'static_ipaddress {\n~SEQ(N, 1, 60000) 10.${N}.0.1/32 dev eth0\n}\n' }), { configId: 'x' });
  assert.equal(diagnostics.filter((d) => d.severity === 'error').length, 59745, 'second octets above 255 are invalid addresses');
  assert.equal(model.staticIpaddress.length, 255);
});
