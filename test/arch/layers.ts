// The layer rule of src/, read from docs/architecture.md (one table, so the documentation and the
// check cannot drift apart) and checked against every import in src/, type-only imports included.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

export interface LayerRule {
  folder: string;
  layer: number;
  mayImport: string[];
}

export interface ImportEdge {
  /** File that imports, relative to the repository root. */
  file: string;
  line: number;
  from: string;
  to: string;
  spec: string;
}

const TABLE_BEGIN = '<!-- layers:begin -->';
const TABLE_END = '<!-- layers:end -->';

/** Rows `| \`folder\` | layer | \`a\`, \`b\` (or —) | ... |` between the layer markers. */
export function parseLayerTable(markdown: string): LayerRule[] {
  const begin = markdown.indexOf(TABLE_BEGIN);
  const end = markdown.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`docs/architecture.md: no ${TABLE_BEGIN} ... ${TABLE_END} table`);
  const rules: LayerRule[] = [];
  for (const row of markdown.slice(begin, end).split('\n')) {
    const cells = row.split('|').map((c) => c.trim());
    if (cells.length < 4) continue;
    const folder = /^`([a-z-]+)`$/.exec(cells[1] ?? '')?.[1];
    const layer = Number(cells[2]);
    if (folder === undefined || !Number.isInteger(layer)) continue;
    const mayImport = [...(cells[3] ?? '').matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!);
    rules.push({ folder, layer, mayImport });
  }
  return rules;
}

/** Every relative import/export-from/import()/require() in a TypeScript source, with its line. */
export function importsOf(text: string): { spec: string; line: number }[] {
  // Comments out, newlines kept (line numbers stay right): an import quoted in a comment is not one.
  const source = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"])\/\/[^\n]*/g, '$1');
  const out: { spec: string; line: number }[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/g,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of source.matchAll(re)) {
      const spec = m[1]!;
      if (!spec.startsWith('.')) continue;
      out.push({ spec, line: source.slice(0, m.index).split('\n').length });
    }
  }
  return out;
}

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (name.endsWith('.ts')) out.push(full);
  }
  return out;
}

/** The folder under src/ a path lies in ('' for src/ itself). */
function folderOf(srcDir: string, path: string): string {
  const rel = relative(srcDir, path);
  return rel.includes(sep) ? rel.split(sep)[0]! : '';
}

export function importEdges(root: string): ImportEdge[] {
  const srcDir = join(root, 'src');
  const edges: ImportEdge[] = [];
  for (const file of walk(srcDir, [])) {
    const from = folderOf(srcDir, file);
    for (const { spec, line } of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      const to = folderOf(srcDir, target);
      edges.push({ file: relative(root, file), line, from, to, spec });
    }
  }
  return edges;
}

/** Problems with the rule table itself: a folder may import only lower layers, so no cycle can pass. */
export function checkRules(rules: LayerRule[]): string[] {
  const problems: string[] = [];
  const byFolder = new Map(rules.map((r) => [r.folder, r]));
  for (const r of rules) {
    for (const dep of r.mayImport) {
      const d = byFolder.get(dep);
      if (d === undefined) problems.push(`${r.folder} may import '${dep}', which the table does not place`);
      else if (d.layer >= r.layer) problems.push(`${r.folder} (layer ${r.layer}) may import ${dep} (layer ${d.layer}): only lower layers`);
    }
  }
  return problems;
}

/** Imports against the rule: each names the file and line. */
export function checkEdges(rules: LayerRule[], edges: ImportEdge[], folders: string[]): string[] {
  const problems: string[] = [];
  const byFolder = new Map(rules.map((r) => [r.folder, r]));
  for (const f of folders) if (!byFolder.has(f)) problems.push(`src/${f}/ is not placed in the layer table of docs/architecture.md`);
  for (const e of edges) {
    if (e.from === e.to) continue;
    if (e.from === '' || e.to === '') {
      problems.push(`${e.file}:${e.line}: '${e.spec}' crosses src/ itself (every module lives in a folder)`);
      continue;
    }
    const rule = byFolder.get(e.from);
    if (rule && !rule.mayImport.includes(e.to)) {
      problems.push(`${e.file}:${e.line}: ${e.from} imports ${e.to} ('${e.spec}'), which the layer table does not allow`);
    }
  }
  return problems;
}

/** Folder cycles in the actual import graph (strongly connected components of more than one folder). */
export function folderCycles(edges: ImportEdge[]): string[][] {
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    if (e.from === e.to) continue;
    if (!graph.has(e.from)) graph.set(e.from, new Set());
    if (!graph.has(e.to)) graph.set(e.to, new Set());
    graph.get(e.from)!.add(e.to);
  }
  // Tarjan's algorithm.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) cycles.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return cycles;
}

export function srcFolders(root: string): string[] {
  const srcDir = join(root, 'src');
  return readdirSync(srcDir).filter((n) => statSync(join(srcDir, n)).isDirectory()).sort();
}
