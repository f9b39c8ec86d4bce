#!/usr/bin/env node
// Runs the whole suite from the compiled tree: unit tests in parallel, then the
// network-namespace tests (test/netns/) one file at a time, since they share the
// machine's two cores and each builds its own lab.
// Usage: node test/run.mjs [substring-filter ...]
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const distTest = join(root, 'dist', 'test');
const filters = process.argv.slice(2);

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

let files;
try {
  files = walk(distTest, []).sort();
} catch {
  console.error(`test/run.mjs: ${distTest} is missing; run "npm run build" first`);
  process.exit(2);
}
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));

const netns = files.filter((f) => relative(distTest, f).startsWith('netns'));
const unit = files.filter((f) => !netns.includes(f));

function run(list, concurrency) {
  if (!list.length) return 0;
  const args = ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...list];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  return r.status ?? 1;
}

const unitStatus = run(unit, 2);
const netnsStatus = run(netns, 1);
process.exit(unitStatus || netnsStatus);
