// One uvsd running in a lab namespace for a namespace test: started through `ip netns exec`,
// its console log kept, stopped (or killed) with a bounded wait; uvsadm runs in the same
// namespace and a failure carries the daemon's log. Every netns test that runs uvsd uses this.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './helpers';

export const UVSD = join(repoRoot, 'dist', 'src', 'cli', 'uvsd.js');
export const UVSADM = join(repoRoot, 'dist', 'src', 'cli', 'uvsadm.js');

export class UvsdProcess {
  /** Everything the running (or last) uvsd printed. */
  log = '';
  private child: ChildProcess | null = null;

  constructor(readonly ns: string) {}

  /** The pid of the running uvsd's process (`ip netns exec` execs it), or null. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /**
   * Starts `uvsd -n -l [--no-config] ARGS` (after killing one this object started before) and waits, at most
   * 20 s, until uvsadm gets answers and the data plane logged that it runs (`ready`).
   */
  async start(args: readonly string[], ready: RegExp = /data plane: (\d+ worker|libpcap)/): Promise<void> {
    await this.stop('SIGKILL');
    this.log = '';
    // --no-config unless the test names a file: a keepalived.conf at the default path changes nothing.
    const config = args.includes('-f') ? [] : ['--no-config'];
    // Connections are not carried from one test's uvsd to the next one's (restart.test.ts asks).
    if (!args.includes('--conn-state')) config.push('--conn-state', 'none');
    const child = spawn('ip', ['netns', 'exec', this.ns, process.execPath, UVSD, '-n', '-l', ...config, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child = child;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`uvsd exited (${child.exitCode}):\n${this.log}`);
      const r = spawnSync('ip', ['netns', 'exec', this.ns, process.execPath, UVSADM, '-L', '-n'], { encoding: 'utf8' });
      if (r.status === 0 && ready.test(this.log)) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`uvsd did not come up:\n${this.log}`);
  }

  /** Sends `signal` and waits for the exit (SIGKILL after 8 s); returns the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** A signal that does not end it (SIGHUP). */
  signal(signal: NodeJS.Signals): void {
    if (!this.child) throw new Error('uvsd is not running');
    this.child.kill(signal);
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null;
  }

  /** uvsadm ARGS in the namespace; throws with uvsd's log when it fails. */
  uvsadm(...args: string[]): string {
    const r = spawnSync('ip', ['netns', 'exec', this.ns, process.execPath, UVSADM, ...args], { encoding: 'utf8', timeout: 20_000 });
    if (r.status !== 0) throw new Error(`uvsadm ${args.join(' ')} failed (${r.status}): ${r.stderr}\nuvsd log:\n${this.log}`);
    return r.stdout;
  }
}
