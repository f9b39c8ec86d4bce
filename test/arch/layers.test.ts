// npm test fails on an import that breaks the layer rule of docs/architecture.md, and on any
// folder cycle in src/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkEdges, checkRules, folderCycles, importEdges, importsOf, parseLayerTable, srcFolders, type ImportEdge } from './layers';

// dist/test/arch → repository root
const ROOT = join(__dirname, '..', '..', '..');
const rules = parseLayerTable(readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8'));

test('the layer table of docs/architecture.md is consistent: every folder imports only lower layers', () => {
  assert.ok(rules.length >= 10, `only ${rules.length} rows read from the layer table`);
  assert.deepEqual(checkRules(rules), []);
});

test('every import in src/ (type-only ones too) follows the layer table, and every folder is placed', () => {
  const edges = importEdges(ROOT);
  assert.ok(edges.length > 300, `only ${edges.length} imports found: the scanner is broken`);
  assert.deepEqual(checkEdges(rules, edges, srcFolders(ROOT)), []);
});

test('src/ has no folder cycle', () => {
  assert.deepEqual(folderCycles(importEdges(ROOT)), []);
});

test('the checker itself: it finds type-only imports, forbidden edges, unplaced folders and cycles', () => {
  const src = [
    "import type { A } from '../sched/a';",
    "import { B,",
    "  C } from './b';",
    "export { D } from '../conn/d';",
    "export * from '../tables/e';",
    "const x = require('../native/addon');",
    "const y = await import('../control/z');",
    "import { readFileSync } from 'node:fs';",
    "// import { X } from '../cli/commented-out';",
    "/* export { Y } from '../cli/in-a-block'; */",
  ].join('\n');
  assert.deepEqual(importsOf(src).map((i) => `${i.line} ${i.spec}`).sort(),
    ['1 ../sched/a', '2 ./b', '4 ../conn/d', '5 ../tables/e', '6 ../native/addon', '7 ../control/z'].sort());
  const toy = parseLayerTable([
    '<!-- layers:begin -->', '| folder | layer | may import |', '| --- | --- | --- |',
    '| `low` | 0 | — |', '| `mid` | 1 | `low` |', '| `high` | 2 | `mid`, `low` |', '| `bad` | 1 | `high` |',
    '<!-- layers:end -->'].join('\n'));
  assert.deepEqual(toy.map((r) => r.folder), ['low', 'mid', 'high', 'bad']);
  assert.equal(checkRules(toy).length, 1, 'bad (layer 1) may not import high (layer 2)');
  const edge = (from: string, to: string): ImportEdge => ({ file: `src/${from}/x.ts`, line: 3, from, to, spec: `../${to}/y` });
  const problems = checkEdges(toy, [edge('mid', 'low'), edge('low', 'mid'), edge('high', 'low')], ['low', 'mid', 'high', 'bad', 'stray']);
  assert.deepEqual(problems, [
    'src/stray/ is not placed in the layer table of docs/architecture.md',
    "src/low/x.ts:3: low imports mid ('../mid/y'), which the layer table does not allow",
  ]);
  assert.deepEqual(folderCycles([edge('mid', 'low'), edge('low', 'high'), edge('high', 'mid'), edge('bad', 'low')]), [['high', 'low', 'mid']]);
});
