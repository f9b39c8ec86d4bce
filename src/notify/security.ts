// keepalived's script security rules (keepalived/core/notify.c: check_script_secure,
// check_security, find_path), re-implemented over node:fs.
//
// - A bare command name is looked up in PATH; the file found must be executable by the user the
//   script runs as (script_user, default keepalived_script if that user exists, else root).
// - When the script runs with root's uid or gid (or is setuid/setgid root), every component of its
//   path, and of the path it resolves to through symlinks, is checked: a component owned by a
//   non-root user, or a regular file / non-sticky directory that is group-writable by a non-root
//   group or world-writable, makes the script insecure.
// - Insecure + enable_script_security: the script is refused ("disabled"). Insecure without it:
//   a warning only, the script runs (keepalived's behaviour).
// - A command whose first word starts with "<" followed by "/" is a file-readability test run by
//   the shell, not a file to check.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface UserId {
  uid: number;
  gid: number;
  name: string;
}

export interface SecurityVerdict {
  /** True when the script may run. */
  runnable: boolean;
  /** The path that will be executed (PATH-resolved), or null for a shell file test. */
  file: string | null;
  /** Unsafe permissions were found (whether or not that refused the script). */
  insecure: boolean;
  /** What was found, in keepalived's words where it has them. */
  messages: string[];
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_ISVTX = 0o1000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

/** Looks a user up in /etc/passwd (node has no getpwnam); null when absent. */
export function lookupUser(name: string, passwdFile = '/etc/passwd'): UserId | null {
  let text: string;
  try {
    text = fs.readFileSync(passwdFile, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 4 && f[0] === name) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  if (/^\d+$/.test(name)) return { name, uid: Number(name), gid: Number(name) };
  return null;
}

/** Looks a group up in /etc/group; null when absent. */
export function lookupGroup(name: string, groupFile = '/etc/group'): number | null {
  try {
    for (const line of fs.readFileSync(groupFile, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && f[0] === name) return Number(f[2]);
    }
  } catch {
    /* fall through */
  }
  return /^\d+$/.test(name) ? Number(name) : null;
}

/**
 * keepalived's default script user: keepalived_script when it exists, otherwise the daemon's own
 * uid/gid (root for uvsd). With enable_script_security and no such user keepalived reports a
 * config error; we return the own uid and let the caller decide.
 */
export function defaultScriptUser(): UserId {
  return (
    lookupUser('keepalived_script') ?? {
      name: 'root',
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
    }
  );
}

function isExecutable(st: fs.Stats, user: UserId): boolean {
  // keepalived's is_executable(): root needs any x bit; the owner its u+x; members of the file's
  // group g+x; everyone else o+x.
  const mode = st.mode;
  if (user.uid === 0) return (mode & 0o111) !== 0;
  if (user.uid === st.uid) return (mode & 0o100) !== 0;
  if (user.gid === st.gid) return (mode & 0o010) !== 0;
  return (mode & 0o001) !== 0;
}

/** PATH search as glibc's execvpe does, keeping the first regular file the user may execute. */
export function findInPath(command: string, user: UserId, envPath = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): string | null {
  for (const dir of envPath.split(':')) {
    const candidate = path.join(dir || '.', command);
    try {
      const st = fs.statSync(candidate);
      if ((st.mode & S_IFMT) === S_IFREG && isExecutable(st, user)) return candidate;
    } catch {
      /* next */
    }
  }
  return null;
}

/**
 * Walks every component of `file` ("/", "/etc", "/etc/keepalived", ...) without following the
 * last symlink, applying keepalived's check_security(). Returns a message for the first unsafe
 * component, or null.
 */
export function unsafeComponent(file: string): string | null {
  const parts = file.split('/').filter(Boolean);
  const prefixes = ['/'];
  for (let i = 0; i < parts.length; i++) prefixes.push('/' + parts.slice(0, i + 1).join('/'));
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i]!;
    const last = i === prefixes.length - 1;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch (err) {
      return `cannot stat ${p}: ${(err as Error).message}`;
    }
    const type = st.mode & S_IFMT;
    if (!last && type !== S_IFDIR) return `${p} in the script path is not a directory`;
    if (last && type !== S_IFREG && type !== S_IFLNK) return `${p} is not a regular file`;
    if (st.uid !== 0) return `${p} is owned by uid ${st.uid}, not root`;
    const checksWrite = (type === S_IFDIR && (st.mode & S_ISVTX) === 0) || type === S_IFREG;
    if (checksWrite && ((st.gid !== 0 && (st.mode & 0o020) !== 0) || (st.mode & 0o002) !== 0))
      return `${p} is writable by ${st.mode & 0o002 ? 'everyone' : `group ${st.gid}`}`;
  }
  return null;
}

/**
 * Decides whether `args` (a split command line) may run as `user`, following keepalived's rules.
 * `scriptSecurity` is global_defs enable_script_security.
 */
export function checkScriptSecurity(args: readonly string[], user: UserId, scriptSecurity: boolean): SecurityVerdict {
  const messages: string[] = [];
  const first = args[0] ?? '';
  // "</dev/tcp/…" style file test: executed by the shell, nothing to check.
  if (/^<\s*\//.test(first)) return { runnable: true, file: null, insecure: false, messages };

  let file = first;
  if (!first.includes('/')) {
    const found = findInPath(first, user);
    if (!found) {
      messages.push(`Cannot find script ${first} in path - disabling`);
      return { runnable: false, file: null, insecure: false, messages };
    }
    messages.push(`WARNING - script \`${first}\` resolved by path search to \`${found}\`. Please specify full path.`);
    file = found;
  }
  file = path.resolve(file);
  let real: string;
  let st: fs.Stats;
  try {
    real = fs.realpathSync(file);
    st = fs.statSync(real);
  } catch (err) {
    messages.push(`Script ${first} cannot be accessed - ${(err as Error).message}`);
    return { runnable: false, file, insecure: false, messages };
  }
  if (!isExecutable(st, user)) {
    messages.push(`WARNING - script '${first}' is not executable for uid:gid ${user.uid}:${user.gid} - disabling.`);
    return { runnable: false, file, insecure: false, messages };
  }
  const needProtection =
    user.uid === 0 ||
    user.gid === 0 ||
    (st.uid === 0 && (st.mode & 0o100) !== 0 && (st.mode & S_ISUID) !== 0) ||
    (st.gid === 0 && (st.mode & 0o010) !== 0 && (st.mode & S_ISGID) !== 0);
  let insecure = false;
  if (needProtection) {
    for (const p of real === file ? [file] : [file, real]) {
      const why = unsafeComponent(p);
      if (why) {
        insecure = true;
        messages.push(`Unsafe permissions found for script '${first}'${scriptSecurity ? ' - disabling' : ''}: ${why}`);
        break;
      }
    }
  }
  return { runnable: !(insecure && scriptSecurity), file, insecure, messages };
}
