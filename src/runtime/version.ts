// uvs's version: package.json's, read once at run time (from dist/src/runtime/ or src/runtime/
// the package root is three or two levels up), so a release changes it in one place.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

let cached: string | null = null;

/** package.json's "version" ("0.1.0"); "unknown" when the file is not beside the code. */
export function uvsVersion(): string {
  if (cached !== null) return cached;
  cached = 'unknown';
  for (const up of [['..', '..', '..'], ['..', '..']]) {
    const file = join(__dirname, ...up, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'uvs' && typeof pkg.version === 'string') {
      cached = pkg.version;
      break;
    }
  }
  return cached;
}
