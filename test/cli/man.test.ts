// The man pages (man/*.8) are rendered from their sources (man/*.8.md) by man/render.mjs and
// committed; this checks they are current, installed by package.json, and that uvsd(8) names
// every option of `uvsd --help`.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UVSD_USAGE } from '../../src/control/uvsd-options';

const root = join(__dirname, '..', '..', '..');

test('man pages are current with their sources', () => {
  const r = spawnSync(process.execPath, [join(root, 'man', 'render.mjs'), '--check'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
});

test('package.json installs the three pages; uvsd(8) documents every option of uvsd --help', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { man: string[]; version: string };
  assert.deepEqual(pkg.man, ['./man/uvsd.8', './man/uvsadm.8', './man/uvs-tun-decap.8']);
  const page = readFileSync(join(root, 'man', 'uvsd.8.md'), 'utf8');
  const options = [...UVSD_USAGE.matchAll(/(?:^|\s)(--[a-z_-]+)/g)].map((m) => m[1]);
  assert.ok(options.length >= 25, options.join(' '));
  for (const o of new Set(options)) assert.ok(page.includes(`\`${o}\``) || page.includes(`(\`${o}\`)`), `uvsd.8.md does not mention ${o}`);
  assert.match(readFileSync(join(root, 'man', 'uvsd.8'), 'utf8'), new RegExp(`^\\.TH UVSD 8 "" "uvs ${pkg.version.replace(/\./g, '\\.')}"`, 'm'));
});
