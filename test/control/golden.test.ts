// Golden files of uvsadm sessions (test/fixtures/ipvsadm/*.txt, derived from ipvsadm's printf
// formats by derive.py there): every command's stdout, stderr and exit status, byte for byte.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseGolden, startLab, uvsadm } from './helpers';

const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'ipvsadm');

for (const name of readdirSync(FIXTURES).filter((f) => f.endsWith('.txt')).sort()) {
  test(`golden ${name}`, async () => {
    const steps = parseGolden(readFileSync(join(FIXTURES, name), 'utf8'));
    assert.ok(steps.length > 0, `${name} has no commands`);
    const lab = await startLab();
    try {
      for (const step of steps) {
        const where = `${name}:${step.line}: uvsadm ${step.argv.join(' ')}`;
        const r = await uvsadm(lab, step.argv, step.stdin);
        assert.equal(r.stderr, step.stderr, `${where}: stderr`);
        assert.equal(r.stdout, step.stdout, `${where}: stdout`);
        assert.equal(r.status, step.status, `${where}: exit status`);
      }
    } finally {
      await lab.close();
    }
  });
}
