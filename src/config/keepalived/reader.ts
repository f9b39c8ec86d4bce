/**
 * How the parser reaches files: through this narrow interface, so tests hand it in-memory
 * files and the parser itself stays free of side effects.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ConfigReader {
  /** The file's text, or null when it does not exist or cannot be read. */
  readFile(file: string): string | null;
  /** Names (not paths) of the entries of a directory, or null when it is not a readable directory. */
  listDir(dir: string): string[] | null;
}

/** Reads the real file system. */
export const fsReader: ConfigReader = {
  readFile(file: string): string | null {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return null;
    }
  },
  listDir(dir: string): string[] | null {
    try {
      return fs.readdirSync(dir);
    } catch {
      return null;
    }
  },
};

/** A reader over a map of absolute path → contents (directories are implied by the paths). */
export function memoryReader(files: Record<string, string>): ConfigReader {
  const byPath = new Map<string, string>();
  for (const [p, text] of Object.entries(files)) byPath.set(path.posix.normalize(p), text);
  return {
    readFile(file: string): string | null {
      return byPath.get(path.posix.normalize(file)) ?? null;
    },
    listDir(dir: string): string[] | null {
      const prefix = path.posix.normalize(dir).replace(/\/?$/, '/');
      const names = new Set<string>();
      for (const p of byPath.keys()) {
        if (!p.startsWith(prefix)) continue;
        const rest = p.slice(prefix.length);
        const slash = rest.indexOf('/');
        names.add(slash < 0 ? rest : rest.slice(0, slash));
      }
      return names.size > 0 ? [...names] : null;
    },
  };
}

/**
 * csh-style brace expansion, which keepalived gets from glob(GLOB_BRACE):
 * "a{b,c{d,e}}f" → ["abf", "acdf", "acef"]. Unbalanced braces are left as they are.
 */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  const commas: number[] = [];
  let close = -1;
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) {
        close = i;
        break;
      }
    } else if (c === ',' && depth === 1) commas.push(i);
  }
  if (close < 0) return [pattern];
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  const bounds = [open, ...commas, close];
  const out: string[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const alt = pattern.slice(bounds[k]! + 1, bounds[k + 1]); // k + 1 < bounds.length
    for (const expanded of expandBraces(head + alt + tail)) out.push(expanded);
  }
  return out;
}

function hasWildcard(segment: string): boolean {
  return /[*?[]/.test(segment);
}

/** One path segment's shell pattern as a RegExp (*, ?, [set], [!set]); a leading dot must match literally, like glob(3). */
function segmentRegExp(segment: string): RegExp {
  let re = '^';
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charAt(i);
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let set = segment.slice(i + 1, end);
      if (set.startsWith('!')) set = '^' + set.slice(1);
      re += '[' + set.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

/**
 * Expands an absolute glob pattern against the reader, sorted like glob(3).
 * A pattern without wildcards yields itself when the file exists.
 */
export function globFiles(reader: ConfigReader, absPattern: string): string[] {
  const results = new Set<string>();
  for (const pattern of expandBraces(absPattern)) {
    const segments = pattern.split('/').filter((s, i) => s.length > 0 || i === 0);
    // split() returns at least one element and the filter keeps index 0.
    const first = segments[0]!;
    let current = [first === '' ? '/' : first];
    for (const seg of segments.slice(1)) {
      const next: string[] = [];
      for (const dir of current) {
        if (!hasWildcard(seg)) {
          next.push(path.posix.join(dir, seg));
          continue;
        }
        const names = reader.listDir(dir);
        if (!names) continue;
        const re = segmentRegExp(seg);
        for (const name of names) {
          if (name.startsWith('.') && !seg.startsWith('.')) continue;
          if (re.test(name)) next.push(path.posix.join(dir, name));
        }
      }
      current = next;
    }
    // glob(GLOB_BRACE) globs each alternative in turn and sorts within it.
    for (const file of current.sort()) if (reader.readFile(file) !== null) results.add(file);
  }
  return [...results];
}
