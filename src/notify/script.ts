// Running keepalived-style scripts: notify_up/notify_down, quorum_up/quorum_down, VRRP's
// notify_master/backup/fault/stop and notify, and MISC_CHECK's misc_path.
//
// As keepalived (notify.c: system_call_script) does:
// - the command line is split by keepalived's rules and executed directly (execve), without a
//   shell; only a command that is a shell file test ("</dev/tcp/…") or a file the kernel cannot
//   exec by itself (no "#!" line, not ELF) goes through /bin/sh -c with every word single-quoted;
// - the script runs as its own user (script [user [group]]) or global script_user, in its own
//   process group, with IFS, LD_PRELOAD and LD_LIBRARY_PATH removed from the environment;
// - scripts are checked once, when prepared, by the script-security rules (security.ts); a refused
//   script never runs;
// - run time is bounded: at the timeout the process group gets SIGTERM, then SIGKILL a second
//   later (keepalived's child_killed_thread).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { shellCommand, splitCommand } from './command';
import type { UserId } from './security';
import { checkScriptSecurity, defaultScriptUser, lookupGroup, lookupUser } from './security';
import { UvsError } from '../runtime/errors';

/** A script to run: a notify script, a MISC_CHECK, a vrrp_script (keepalived: `script [username [[:]groupname]]`). */
export interface ScriptSpec {
  /** The command line as written in the config (split later by keepalived's rules). */
  command: string;
  /** Already split by the config parser; when given, used instead of splitting `command`. */
  argv?: readonly string[];
  /** Run as this user / group. */
  user?: string;
  group?: string;
}

export class ScriptError extends UvsError {
  constructor(code: 'UVS_ERR_SCRIPT_REFUSED' | 'UVS_ERR_SCRIPT_USER' | 'UVS_ERR_SCRIPT_SYNTAX', message: string) {
    super(code, message);
  }
}

export interface ScriptGlobals {
  /** global_defs script_user (name, optional group); default keepalived_script or root. */
  scriptUser?: { user: string; group?: string };
  /** global_defs enable_script_security. */
  enableScriptSecurity?: boolean;
}

export interface PreparedScript {
  readonly command: string;
  readonly args: readonly string[];
  /** The file executed (PATH-resolved), or null when the shell runs a file test. */
  readonly file: string | null;
  readonly useShell: boolean;
  readonly user: UserId;
  /** Security warnings found while preparing (an insecure script without enable_script_security). */
  readonly warnings: readonly string[];
}

export interface ScriptOutcome {
  /** Exit status, or null when killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** First 4 KiB of stdout+stderr, for the message trail. */
  output: string;
  /** Set when the script could not be started at all. */
  spawnError?: string;
}

/** True when the kernel can exec `file` itself: "#!" or ELF magic in the first bytes. */
function directlyExecutable(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(4);
      const n = fs.readSync(fd, head, 0, 4, 0);
      if (n >= 2 && head[0] === 0x23 && head[1] === 0x21) return true;
      return n === 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return true; // let execve report the error
  }
}

const OUTPUT_LIMIT = 4096;
const KILL_GRACE_MS = 1000;

export class ScriptRunner {
  private readonly defaultUser: UserId | null;
  private readonly security: boolean;

  constructor(readonly globals: ScriptGlobals = {}) {
    this.security = globals.enableScriptSecurity ?? false;
    if (globals.scriptUser) this.defaultUser = this.resolveUser(globals.scriptUser.user, globals.scriptUser.group);
    else {
      // keepalived (notify.c: get_default_script_user): keepalived_script if that user exists,
      // else the daemon's own user — but with enable_script_security a missing keepalived_script
      // is a config error and scripts without their own user are not run.
      const own = defaultScriptUser();
      this.defaultUser = this.security && own.name !== 'keepalived_script' ? null : own;
    }
  }

  private resolveUser(name: string, group?: string): UserId {
    const user = lookupUser(name);
    if (!user) throw new ScriptError('UVS_ERR_SCRIPT_USER', `script user "${name}" does not exist`);
    if (group !== undefined) {
      const gid = lookupGroup(group.replace(/^:/, ''));
      if (gid === null) throw new ScriptError('UVS_ERR_SCRIPT_USER', `script group "${group}" does not exist`);
      return { ...user, gid };
    }
    return user;
  }

  /**
   * Splits and checks a script once (keepalived does this at config load). Throws ScriptError
   * SCRIPT_REFUSED with keepalived's reason when security refuses it or it cannot be found.
   */
  prepare(spec: ScriptSpec): PreparedScript {
    let args: string[];
    try {
      args = spec.argv && spec.argv.length ? [...spec.argv] : splitCommand(spec.command);
    } catch (err) {
      throw new ScriptError('UVS_ERR_SCRIPT_SYNTAX', (err as Error).message);
    }
    const user = spec.user ? this.resolveUser(spec.user, spec.group) : this.defaultUser;
    if (!user)
      throw new ScriptError(
        'UVS_ERR_SCRIPT_USER',
        `script "${spec.command}": unable to set default user keepalived_script for script (enable_script_security needs that user, or script_user, or a user on the script)`,
      );
    const verdict = checkScriptSecurity(args, user, this.security);
    if (!verdict.runnable) throw new ScriptError('UVS_ERR_SCRIPT_REFUSED', `script "${spec.command}" refused: ${verdict.messages.join('; ')}`);
    const useShell = verdict.file === null || !directlyExecutable(verdict.file);
    return { command: spec.command, args, file: verdict.file, useShell, user, warnings: verdict.insecure ? verdict.messages : [] };
  }

  /**
   * Runs a prepared script with `extraArgs` appended (VRRP's notify gets TYPE NAME STATE PRIORITY)
   * and resolves when it exits or has been killed after `timeoutMs`. Never rejects.
   */
  run(script: PreparedScript, extraArgs: readonly string[] = [], timeoutMs = 10_000, env: NodeJS.ProcessEnv = {}): Promise<ScriptOutcome> {
    const argv = [...script.args, ...extraArgs];
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete childEnv.IFS;
    delete childEnv.LD_PRELOAD;
    delete childEnv.LD_LIBRARY_PATH;
    const ownUid = process.getuid?.() ?? -1;
    const ownGid = process.getgid?.() ?? -1;
    const ids: { uid?: number; gid?: number } = {};
    if (script.user.uid !== ownUid) ids.uid = script.user.uid;
    if (script.user.gid !== ownGid) ids.gid = script.user.gid;

    return new Promise((resolve) => {
      let output = '';
      let timedOut = false;
      let settled = false;
      const [file, fileArgs] = script.useShell
        ? ['/bin/sh', ['-c', shellCommand(argv)]]
        : [script.file ?? argv[0]!, argv.slice(1)];
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(file, fileArgs, {
          argv0: script.useShell ? 'sh' : argv[0],
          env: childEnv,
          detached: true, // own process group, so a timeout kills the script's children too
          stdio: ['ignore', 'pipe', 'pipe'],
          ...ids,
        });
      } catch (err) {
        resolve({ exitCode: null, signal: null, timedOut: false, output: '', spawnError: (err as Error).message });
        return;
      }
      const collect = (chunk: Buffer): void => {
        if (output.length < OUTPUT_LIMIT) output += chunk.toString('utf8').slice(0, OUTPUT_LIMIT - output.length);
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      const killGroup = (sig: NodeJS.Signals): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, sig);
        } catch {
          /* already gone */
        }
      };
      let killTimer: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup('SIGTERM');
        killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
      }, timeoutMs);
      const done = (o: ScriptOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        resolve(o);
      };
      child.once('error', (err) => done({ exitCode: null, signal: null, timedOut, output, spawnError: err.message }));
      child.once('close', (code, signal) => done({ exitCode: code, signal, timedOut, output }));
    });
  }
}

/** VRRP notify states, as keepalived passes them to a `notify` script ($3). */
export type VrrpNotifyState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP' | 'DELETED';

export interface VrrpNotifyScripts {
  notifyMaster?: PreparedScript;
  notifyBackup?: PreparedScript;
  notifyFault?: PreparedScript;
  notifyStop?: PreparedScript;
  /** `notify`: called after the state-specific one with TYPE NAME STATE PRIORITY appended. */
  notify?: PreparedScript;
}

/**
 * Runs VRRP's notify scripts for a transition, as keepalived does (vrrp_notify.c:
 * send_instance_notifies / notify_script_exec): the state's own script (notify_master /
 * notify_backup / notify_fault / notify_stop) with no extra arguments, then the generic `notify`
 * with "INSTANCE"|"GROUP", the name, the state and the priority appended (keepalived passes the
 * effective priority for an instance and 0 for a group). keepalived forks both without waiting;
 * here they run one after the other, each bounded by `timeoutMs`.
 */
export async function notifyVrrp(
  runner: ScriptRunner,
  scripts: VrrpNotifyScripts,
  type: 'INSTANCE' | 'GROUP',
  name: string,
  state: VrrpNotifyState,
  priority: number,
  timeoutMs = 10_000,
): Promise<ScriptOutcome[]> {
  const outcomes: ScriptOutcome[] = [];
  const specific =
    state === 'MASTER' ? scripts.notifyMaster : state === 'BACKUP' ? scripts.notifyBackup : state === 'FAULT' ? scripts.notifyFault : state === 'STOP' ? scripts.notifyStop : undefined;
  if (specific) outcomes.push(await runner.run(specific, [], timeoutMs));
  if (scripts.notify) outcomes.push(await runner.run(scripts.notify, [type, name, state, String(priority)], timeoutMs));
  return outcomes;
}
