// Hardening of keepalived.conf reading: include loops are found at once, the total number of
// files read is capped, and parameter substitution cannot grow a line without bound. Each ends
// with a file:line error, quickly (the bounded work is asserted by counting file reads, not time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { preprocess } from '../../src/config/keepalived/lexer';
import { DiagnosticSink } from '../../src/config/keepalived/diagnostics';
import { memoryReader } from '../../src/config/keepalived/reader';
import type { ConfigReader } from '../../src/config/keepalived/reader';

function run(files: Record<string, string>, main = '/etc/k/keepalived.conf'): { sink: DiagnosticSink; reads: number } {
  const sink = new DiagnosticSink();
  const base = memoryReader(files);
  let reads = 0;
  const reader: ConfigReader = { readFile: (f) => { reads++; return base.readFile(f); }, listDir: (d) => base.listDir(d) };
  preprocess(main, { reader, sink, configId: 'x', random: () => 0.5 });
  return { sink, reads };
}

test('an include loop is an error at the include line, naming the chain, and reads each file of it once', () => {
  const r = run({
    '/etc/k/keepalived.conf': 'global_defs {\n}\ninclude a.conf\n',
    '/etc/k/a.conf': '# a\ninclude b.conf\n',
    '/etc/k/b.conf': 'include a.conf\n',
  });
  const loop = r.sink.list.find((d) => d.code === 'include-loop');
  assert.ok(loop, JSON.stringify(r.sink.list));
  assert.equal(loop.file, '/etc/k/b.conf');
  assert.equal(loop.line, 1);
  assert.match(loop.message, /\/etc\/k\/keepalived\.conf → \/etc\/k\/a\.conf → \/etc\/k\/b\.conf → \/etc\/k\/a\.conf/);
  // Each file is read at most twice: a plain include name is probed by the glob, then read.
  assert.ok(r.reads <= 6, `${r.reads} file reads`);
});

test('globs that include each other (two files in each, the case that ran for minutes) end at once', () => {
  const r = run({
    '/etc/k/keepalived.conf': 'include a*.conf\n',
    '/etc/k/a1.conf': 'include b*.conf\n',
    '/etc/k/a2.conf': 'include b*.conf\n',
    '/etc/k/b1.conf': 'include a*.conf\n',
    '/etc/k/b2.conf': 'include a*.conf\n',
  });
  assert.ok(r.sink.list.some((d) => d.code === 'include-loop'));
  assert.ok(r.reads <= 64, `${r.reads} file reads`);
});

test('a DAG that includes the same files over and over stops at the total cap with a clear error', () => {
  // Twelve levels, each file including both files of the next level: 2^12 paths, no loop.
  const files: Record<string, string> = { '/etc/k/keepalived.conf': 'include l0-*.conf\n' };
  for (let level = 0; level < 12; level++) {
    for (const side of ['a', 'b']) files[`/etc/k/l${level}-${side}.conf`] = level < 11 ? `include l${level + 1}-*.conf\n` : '$X=1\n';
  }
  const r = run(files);
  const cap = r.sink.list.find((d) => d.code === 'include-too-many');
  assert.ok(cap, JSON.stringify(r.sink.list.slice(0, 3)));
  assert.match(cap.message, /more than \d+ configuration files read/);
  assert.ok(r.reads <= 2 * 1000 + 10, `${r.reads} file reads (at most the cap, each probed once)`);
});

test('$VAR definitions that double each other stop at the line-length cap at the line that uses them', () => {
  let text = '$V0=xxxxxxxxxxxxxxxx\n';
  for (let i = 1; i <= 40; i++) text += `$V${i}=\${V${i - 1}}\${V${i - 1}}\n`;
  text += 'global_defs {\n  router_id ${V40}\n}\n';
  const r = run({ '/etc/k/keepalived.conf': text });
  const long = r.sink.list.find((d) => d.code === 'substitution-too-long');
  assert.ok(long, JSON.stringify(r.sink.list.slice(0, 3)));
  assert.equal(long.line, 43);
});
