// Splitting a script's command line the way keepalived does, and quoting it back for the one case
// where keepalived hands it to /bin/sh.
//
// keepalived.conf(5), "Quoted strings": for scripts with parameters, unquoted whitespace separates
// the parameters; a parameter that must contain spaces is put in single quotes; double quotes
// group too; backslash escapes (\a \b \E \f \n \r \t \v \nnn octal, \xXX hex, \cC control,
// \C = C) are understood. The quote characters themselves are removed, so 'abc"d e"f' is one word.

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  E: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/**
 * Splits `command` into argv. Throws with the position when a quote is left open, so a config
 * error is reported instead of running something half-parsed.
 */
export function splitCommand(command: string): string[] {
  const args: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  let quoteAt = -1;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!;
    if (ch === '\\' && i + 1 < command.length) {
      const next = command[++i]!;
      inWord = true;
      if (next in SIMPLE_ESCAPES) word += SIMPLE_ESCAPES[next];
      else if (next === 'x') {
        const m = /^[0-9a-fA-F]{1,2}/.exec(command.slice(i + 1));
        if (m) {
          word += String.fromCharCode(parseInt(m[0], 16));
          i += m[0].length;
        } else word += 'x';
      } else if (next >= '0' && next <= '7') {
        const m = /^[0-7]{1,3}/.exec(command.slice(i))!;
        word += String.fromCharCode(parseInt(m[0], 8) & 0xff);
        i += m[0].length - 1;
      } else if (next === 'c' && i + 1 < command.length) {
        word += String.fromCharCode(command.charCodeAt(++i) & 0x1f);
      } else word += next;
      continue;
    }
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      quoteAt = i;
      inWord = true;
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      if (inWord) args.push(word);
      word = '';
      inWord = false;
      continue;
    }
    word += ch;
    inWord = true;
  }
  if (quote) throw new Error(`script "${command}": unterminated ${quote} quote opened at column ${quoteAt + 1}`);
  if (inWord) args.push(word);
  if (args.length === 0) throw new Error('script: empty command line');
  return args;
}

/**
 * The /bin/sh command string for argv, as keepalived's cmd_str builds it: each word in single
 * quotes (an embedded ' written '\''), except a first word starting with < or > which is a shell
 * redirection test such as "</dev/tcp/10.0.0.1/80" and is passed as it is.
 */
export function shellCommand(args: readonly string[]): string {
  return args
    .map((arg, i) => (i === 0 && (arg.startsWith('<') || arg.startsWith('>')) ? arg : `'${arg.replace(/'/g, "'\\''")}'`))
    .join(' ');
}
