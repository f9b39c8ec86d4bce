// Helpers for tests that run in network namespaces: root check, per-run lab suffixes, commands in
// a namespace, bounded waits. Every lab a test makes is torn down in `after`, even on failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const repoRoot = join(__dirname, '..', '..', '..');
export const labScript = join(repoRoot, 'netns-scripts', 'lab.sh');

/** Why namespace tests cannot run here, or null when they can. */
export function cannotRunNetns(): string | null {
  if (process.getuid && process.getuid() !== 0) return 'network-namespace tests need root (CI runs them as root)';
  const r = spawnSync('ip', ['netns', 'list']);
  if (r.status !== 0) return `"ip netns list" failed: ${r.stderr?.toString().trim()}`;
  return null;
}

/** A lab suffix unique to this run: 1-6 lowercase letters/digits. */
export function labSuffix(tag: string): string {
  return (tag + (process.pid % 10000).toString(36) + Math.floor(Math.random() * 36).toString(36)).slice(0, 6);
}

export function lab(suffix: string, ...args: string[]): string {
  return execFileSync('bash', [labScript, ...args], {
    env: { ...process.env, UVS_LAB: suffix },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

/** Runs a command inside a namespace; returns status and output (never throws on exit status). */
export function inNs(ns: string, cmd: string, args: string[], timeoutMs = 30_000): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function namespacesWithPrefix(prefix: string): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
}
