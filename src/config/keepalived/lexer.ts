/**
 * keepalived.conf → statements.
 *
 * Two stages, both pure:
 *  1. preprocess(): reads the file and its includes through a ConfigReader and applies the
 *     line-level features of keepalived's parser, in keepalived's order (keepalived.conf(5),
 *     "ADVANCED CONFIGURATION"): comments (# and !, outside double quotes), include detection
 *     (before anything else, so an include line cannot use @ or $), conditional lines (@id, @^id),
 *     parameter definitions ($NAME=value, multi-line with trailing '\'), substitution ($NAME
 *     followed by whitespace, ${NAME} anywhere; recursive, at use time; undefined names stay as
 *     written) and ~SEQ/~SEQx sequence lines. Then each line is split into words: double quotes
 *     group words and disappear, backslash escapes inside them, '{' and '}' are words of their own.
 *     Single quotes stay in the word (keepalived 2.2.7 reads `lb_algo 'rr'` as "'rr'", measured);
 *     they only group a script's arguments, which parser.ts's splitScriptArgs handles.
 *  2. buildTree(): words → statements, a statement being `keyword args… [{ statements… }]`.
 */
import * as path from 'node:path';
import { ConfigReader, globFiles } from './reader';
import { DiagnosticSink, EXIT_NO_CONFIG, Loc } from './diagnostics';

export interface Word {
  text: string;
  /** True when any part of it was quoted, so "{" is a plain word, not a brace. */
  quoted: boolean;
}

export interface LogicalLine {
  words: Word[];
  loc: Loc;
}

export interface Statement {
  keyword: string;
  args: string[];
  /** Sub-statements when the statement opens a `{ … }` block, otherwise null. */
  block: Statement[] | null;
  loc: Loc;
}

export interface PreprocessOptions {
  reader: ConfigReader;
  sink: DiagnosticSink;
  /** keepalived's config id (-i; defaults to the host name up to the first dot) for @id lines. */
  configId: string;
  /** Source of ${_RANDOM}; injected so tests are deterministic. Returns [0, 1). */
  random?: () => number;
}

/** Nesting limit for include files and for recursive substitution, against loops. */
const MAX_INCLUDE_DEPTH = 32;
/**
 * Files read in all, includes counted each time: without a loop, includes that repeat each other
 * (every file of one glob including both of the next) still multiply; this bounds the work.
 */
const MAX_FILES_READ = 1000;
/** A line grown longer than this by $PARAM substitution is refused (definitions doubling each other). */
const MAX_SUBSTITUTED_LINE = 64 * 1024;
const MAX_SUBSTITUTION_ROUNDS = 64;
const MAX_SEQ_VALUES = 65536;

const INCLUDE_KEYWORDS = new Set(['include', 'includer', 'includem', 'includew', 'includeb', 'includea']);

type QueueItem =
  | { kind: 'line'; text: string; loc: Loc; substituted: boolean; pwd: string }
  | { kind: 'define'; name: string; value: string };

interface Definition {
  value: string;
  /** Multi-line definitions expand into several lines. */
  multiline: boolean;
}

/** Removes a trailing comment: '#' or '!' outside double quotes ends the line. */
export function stripComment(text: string): string {
  let inQuote = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '\\' && inQuote) {
      i++;
      continue;
    }
    if (c === '"') inQuote = !inQuote;
    else if (!inQuote && (c === '#' || c === '!')) return text.slice(0, i);
  }
  return text;
}

const ESCAPES: Record<string, string> = { a: '\x07', b: '\b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** Splits a line into words the way keepalived does (see the file comment). */
export function splitWords(text: string): Word[] {
  const words: Word[] = [];
  let cur = '';
  let curQuoted = false;
  let inWord = false;
  let quote = '';
  const flush = (): void => {
    if (inWord) words.push({ text: cur, quoted: curQuoted });
    cur = '';
    curQuoted = false;
    inWord = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quote) {
      if (c === quote) {
        quote = '';
      } else if (c === '\\' && i + 1 < text.length) {
        const n = text.charAt(++i);
        const escaped = ESCAPES[n];
        if (escaped !== undefined) cur += escaped;
        else if (n >= '0' && n <= '7') {
          let digits = n;
          while (digits.length < 3 && i + 1 < text.length && text.charAt(i + 1) >= '0' && text.charAt(i + 1) <= '7') digits += text.charAt(++i);
          cur += String.fromCharCode(parseInt(digits, 8));
        } else if (n === 'x' && i + 1 < text.length && /[0-9a-fA-F]/.test(text.charAt(i + 1))) {
          let digits = '';
          while (i + 1 < text.length && /[0-9a-fA-F]/.test(text.charAt(i + 1)) && digits.length < 2) digits += text.charAt(++i);
          cur += String.fromCharCode(parseInt(digits, 16));
        } else if (n === 'c' && i + 1 < text.length) {
          cur += String.fromCharCode(text.charCodeAt(++i) & 0x1f);
        } else cur += n;
      } else cur += c;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\v' || c === '\f') {
      flush();
    } else if (c === '"') {
      quote = c;
      inWord = true;
      curQuoted = true;
    } else if (c === '{' || c === '}') {
      flush();
      words.push({ text: c, quoted: false });
    } else {
      cur += c;
      inWord = true;
    }
  }
  flush();
  return words;
}

/** Replaces defined parameters in `text`; returns null when nothing was replaced. */
function substituteOnce(text: string, defs: Map<string, Definition>, pwd: string, configId: string, random: () => number): string | null {
  let changed = false;
  const lookup = (name: string, arg: string): string | null => {
    const d = defs.get(name);
    if (d) return d.value;
    switch (name) {
      case '_PWD':
        return pwd;
      case '_INSTANCE':
        return configId;
      case '_HASH':
        return '#';
      case '_BANG':
        return '!';
      case '_RANDOM': {
        const parts = arg.trim().split(/\s+/).filter((s) => s.length > 0);
        const min = parts.length > 0 ? Number(parts[0]) : 0;
        const max = parts.length > 1 ? Number(parts[1]) : 32767;
        if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min) return null;
        return String(min + Math.floor(random() * (max - min + 1)));
      }
      default:
        return null;
    }
  };
  // ${NAME} or ${_RANDOM MIN MAX} anywhere; $NAME only when followed by whitespace or the end.
  const out = text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)((?:\s+[^}]*)?)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|$)/g, (whole, braced: string | undefined, arg: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    if (bare !== undefined && bare.startsWith('_')) return whole;
    if (arg && name !== '_RANDOM') return whole;
    const v = lookup(name, arg ?? '');
    if (v === null) return whole;
    changed = true;
    return v;
  });
  return changed ? out : null;
}

function parseSeqNumber(s: string): number {
  const t = s.trim();
  if (/^-?0[xX][0-9a-fA-F]+$/.test(t)) return t.startsWith('-') ? -parseInt(t.slice(1), 16) : parseInt(t, 16);
  if (/^-?\d+$/.test(t)) return parseInt(t, 10);
  return NaN;
}

/**
 * Reads `file` and everything it includes; returns the logical lines with their file:line.
 * Problems (unreadable includes, bad ~SEQ, runaway substitution) go to opts.sink.
 */
export function preprocess(file: string, opts: PreprocessOptions): LogicalLine[] {
  const defs = new Map<string, Definition>();
  const out: LogicalLine[] = [];
  const random = opts.random ?? Math.random;
  const { sink, reader } = opts;

  let filesRead = 0;
  let tooMany = false;
  /** `chain`: the files whose includes led here, outermost first (fileName not in it yet). */
  const readInto = (fileName: string, depth: number, includeLoc: Loc | null, chain: readonly string[]): void => {
    if (++filesRead > MAX_FILES_READ) {
      if (!tooMany && includeLoc) sink.error(includeLoc, 'include-too-many', `more than ${MAX_FILES_READ} configuration files read (includes that repeat each other?); the rest is skipped`);
      tooMany = true;
      return;
    }
    const text = reader.readFile(fileName);
    if (text === null) {
      if (includeLoc) sink.error(includeLoc, 'unreadable-file', `cannot read configuration file '${fileName}'`);
      // keepalived 2.2.7 -t says "Config files missing" and exits 0 here (measured); a config test
      // that passes without a config helps nobody, so uvs stops with KEEPALIVED_EXIT_NO_CONFIG.
      else sink.push('error', { file: fileName, line: 0 }, 'unreadable-file', `cannot read configuration file '${fileName}'`, true, EXIT_NO_CONFIG, true);
      return;
    }
    const pwd = path.posix.dirname(fileName);
    const here = [...chain, fileName];
    const rawLines = text.split('\n');
    // Multi-line definition being collected.
    let pending: { name: string; lines: string[] } | null = null;
    const queue: QueueItem[] = [];
    for (let i = 0; i < rawLines.length; i++) {
      let raw = rawLines[i]!; // i < rawLines.length
      if (raw.endsWith('\r')) raw = raw.slice(0, -1);
      const loc: Loc = { file: fileName, line: i + 1 };
      if (pending) {
        const stripped = stripComment(raw).trimEnd();
        if (stripped.trim() === '') continue;
        if (stripped.endsWith('\\')) {
          pending.lines.push(stripped.slice(0, -1).trim());
          continue;
        }
        pending.lines.push(stripped.trim());
        defs.set(pending.name, { value: pending.lines.filter((l) => l.length > 0).join('\n'), multiline: true });
        pending = null;
        continue;
      }
      const body = stripComment(raw).trim();
      if (body === '') continue;
      const firstWord = body.split(/\s+/, 1)[0]!; // split with limit 1 always returns one element
      if (INCLUDE_KEYWORDS.has(firstWord)) {
        includeFiles(firstWord, body, loc, depth, pwd, here);
        continue;
      }
      const multi = /^\$([A-Za-z_][A-Za-z0-9_]*)=\s*\\$/.exec(body);
      if (multi) {
        pending = { name: multi[1]!, lines: [] }; // group 1 is not optional
        continue;
      }
      queue.push({ kind: 'line', text: body, loc, substituted: false, pwd });
      drain(queue);
    }
    if (pending) {
      sink.error({ file: fileName, line: rawLines.length }, 'unterminated-definition', `multi-line definition of $${pending.name} not terminated at end of file`);
      defs.set(pending.name, { value: pending.lines.join('\n'), multiline: true });
    }
  };

  const includeFiles = (keyword: string, body: string, loc: Loc, depth: number, pwd: string, chain: readonly string[]): void => {
    const words = splitWords(body).slice(1);
    if (words.length === 0) {
      sink.error(loc, 'include-missing-file', `'${keyword}' needs a file name`);
      return;
    }
    if (depth + 1 > MAX_INCLUDE_DEPTH) {
      sink.error(loc, 'include-too-deep', `includes nested more than ${MAX_INCLUDE_DEPTH} deep (an include loop?)`);
      return;
    }
    for (const w of words) {
      const pattern = w.text.startsWith('/') ? w.text : path.posix.join(pwd, w.text);
      const files = globFiles(reader, pattern);
      if (files.length === 0) {
        // Plain `include` never made keepalived fail on a missing file; the checking variants do.
        // keepalived 2.2.7 -t stops and exits 6 for the checking variants, before any other check
        // (measured: crafted/includea-missing.conf gives 6 even where interfaces are missing too).
        if (keyword === 'include') sink.note(loc, 'include-no-match', `no configuration file matches '${w.text}'`);
        else sink.push('warning', loc, 'include-no-match', `Config files missing '${w.text}'`, true, 6, true);
        continue;
      }
      for (const f of files) {
        if (tooMany) return;
        if (chain.includes(f)) {
          sink.error(loc, 'include-loop', `include loop: ${[...chain, f].join(' → ')}; not included again`);
          continue;
        }
        readInto(f, depth + 1, loc, chain);
      }
    }
  };

  // `queue` is a stack: the next item to process is at the end, so expansions push in reverse.
  const drain = (queue: QueueItem[]): void => {
    let budget = MAX_SEQ_VALUES * 4;
    while (queue.length > 0) {
      if (--budget < 0) {
        sink.error(null, 'expansion-too-large', 'parameter and sequence expansion produces too many lines');
        queue.length = 0;
        return;
      }
      const item = queue.pop() as QueueItem;
      if (item.kind === 'define') {
        defs.set(item.name, { value: item.value, multiline: false });
        continue;
      }
      let text = item.text.trim();
      const loc = item.loc;
      if (text === '') continue;
      // Conditional line: @id or @^id right at the start, no space after '@'.
      if (text.startsWith('@')) {
        // Always matches after startsWith('@'), and every group takes part (possibly empty).
        const m = /^@(\^?)(\S*)\s*(.*)$/.exec(text) as RegExpExecArray;
        const negate = m[1] === '^';
        const matches = m[2] === opts.configId;
        if (matches === negate) continue;
        text = m[3]!;
        if (text === '') continue;
      }
      const def = /^\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(text);
      if (def) {
        defs.set(def[1]!, { value: def[2]!.trim(), multiline: false }); // neither group is optional
        continue;
      }
      const seq = /^~SEQ(x?)\(([^)]*)\)\s*(.*)$/.exec(text);
      if (seq) {
        expandSeq(seq[1] === 'x', seq[2]!, seq[3]!, loc, item.pwd, queue); // neither group is optional
        continue;
      }
      // Substitute until stable; a multi-line value turns one line into several.
      let substituted = text;
      let rounds = 0;
      let replaced = false;
      for (;;) {
        const next = substituteOnce(substituted, defs, item.pwd, opts.configId, random);
        if (next === null) break;
        substituted = next;
        replaced = true;
        if (substituted.length > MAX_SUBSTITUTED_LINE) {
          sink.error(loc, 'substitution-too-long', `parameter substitution makes this line longer than ${MAX_SUBSTITUTED_LINE} bytes (definitions that repeat each other?); line skipped`);
          substituted = '';
          break;
        }
        if (++rounds > MAX_SUBSTITUTION_ROUNDS) {
          sink.error(loc, 'substitution-loop', `parameter substitution does not terminate (a parameter refers to itself?)`);
          break;
        }
        if (substituted.includes('\n')) break;
      }
      if (replaced) {
        // The result may itself be a conditional, a definition or several lines: process again.
        const parts = substituted.split('\n').map((t): QueueItem => ({ kind: 'line', text: t, loc, substituted: true, pwd: item.pwd }));
        for (const part of parts.reverse()) queue.push(part);
        if (rounds <= MAX_SUBSTITUTION_ROUNDS) continue;
        queue.length = 0;
        continue;
      }
      const words = splitWords(text);
      if (words.length > 0) out.push({ words, loc });
    }
  };

  const expandSeq = (hex: boolean, params: string, rest: string, loc: Loc, pwd: string, queue: QueueItem[]): void => {
    const parts = params.split(',').map((s) => s.trim());
    const name = parts[0] ?? '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || parts.length < 2 || parts.length > 4) {
      sink.error(loc, 'bad-seq', `~SEQ(${params}): expected ~SEQ(var, [start, [step,]] end)`);
      return;
    }
    const nums = parts.slice(1).map(parseSeqNumber);
    if (nums.some((n) => Number.isNaN(n))) {
      sink.error(loc, 'bad-seq', `~SEQ(${params}): start, step and end must be integers`);
      return;
    }
    // parts.length is 2 to 4 (checked above), so nums has 1 to 3 entries.
    const n0 = nums[0]!;
    const n1 = nums[1];
    const n2 = nums[2];
    let start: number;
    let step: number;
    let end: number;
    if (n1 === undefined) {
      end = n0;
      start = end >= 0 ? 1 : -1;
      step = end >= start ? 1 : -1;
    } else if (n2 === undefined) {
      start = n0;
      end = n1;
      step = end >= start ? 1 : -1;
    } else [start, step, end] = [n0, n1, n2];
    if (step === 0 || (step > 0 && end < start) || (step < 0 && end > start)) {
      sink.error(loc, 'bad-seq', `~SEQ(${params}): the sequence is empty or never ends`);
      return;
    }
    const count = Math.floor((end - start) / step) + 1;
    if (count > MAX_SEQ_VALUES) {
      sink.error(loc, 'bad-seq', `~SEQ(${params}): ${count} values, more than ${MAX_SEQ_VALUES}`);
      return;
    }
    const items: QueueItem[] = [];
    for (let k = 0; k < count; k++) {
      const v = start + k * step;
      items.push({ kind: 'define', name, value: hex ? v.toString(16) : String(v) });
      items.push({ kind: 'line', text: rest, loc, substituted: false, pwd });
    }
    for (const it of items.reverse()) queue.push(it);
  };

  readInto(file, 0, null, []);
  return out;
}

/** Groups logical lines into statements and blocks; unbalanced braces are reported with file:line. */
export function buildTree(lines: readonly LogicalLine[], sink: DiagnosticSink): Statement[] {
  const root: Statement[] = [];
  const stack: { list: Statement[]; owner: Statement | null }[] = [{ list: root, owner: null }];
  let lastStatement: Statement | null = null;
  let lastLine: LogicalLine | null = null;
  for (const line of lines) {
    let current: Statement | null = null;
    for (const w of line.words) {
      const top = stack[stack.length - 1]!; // never empty: the root entry is not popped
      if (!w.quoted && w.text === '{') {
        // A '{' alone on its line opens the block of the statement on the line before.
        const owner = current ?? (lastStatement && lastStatement.block === null && lastLine !== line ? lastStatement : null);
        if (!owner) {
          sink.error(line.loc, 'unexpected-brace', `'{' without a keyword before it`);
          continue;
        }
        owner.block = [];
        stack.push({ list: owner.block, owner });
        current = null;
        lastStatement = null;
        continue;
      }
      if (!w.quoted && w.text === '}') {
        if (stack.length === 1) sink.error(line.loc, 'unexpected-brace', `'}' without a matching '{'`);
        else stack.pop();
        current = null;
        lastStatement = null;
        continue;
      }
      if (current) current.args.push(w.text);
      else {
        current = { keyword: w.text, args: [], block: null, loc: line.loc };
        top.list.push(current);
        lastStatement = current;
      }
    }
    lastLine = line;
  }
  for (const entry of stack.slice(1).reverse()) {
    const owner = entry.owner as Statement; // only the root entry has no owner
    sink.error(owner.loc, 'missing-brace', `block '${owner.keyword}' opened here is not closed with '}'`);
  }
  return root;
}
