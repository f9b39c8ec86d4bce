// PING_CHECK: one ICMP echo request; up when the echo reply arrives within connect_timeout.
//
// keepalived opens an unprivileged ICMP datagram socket (IPPROTO_ICMP, widening
// net.ipv4.ping_group_range when needed). Node has neither raw nor ICMP-datagram sockets and the
// native addon does not offer one yet, so this checker runs the system's iputils `ping` as a
// subprocess, without a shell: `ping -n -c 1 -W <secs> [-I bindto] <addr>`. Exit 0 means a reply
// came back; 1 means no reply; 2 (or anything else) means ping itself failed. The process is
// killed if it outlives the deadline, so a check never hangs. When the addon grows an ICMP
// socket, only this file changes.
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import type { CheckTarget, CheckResult, Checker } from './checker';
import { Trail, connectTimeoutMs } from './checker';
import type { PingCheckOptions } from './types';

export class PingChecker implements Checker {
  readonly kind = 'PING_CHECK' as const;

  constructor(
    readonly options: PingCheckOptions,
    private readonly pingBinary = 'ping',
  ) {}

  check(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const trail = new Trail();
    const address = this.options.connectIp ?? target.address;
    const limit = connectTimeoutMs(this.options);
    const args = ['-n', '-c', '1', '-W', (Math.max(limit, 1000) / 1000).toString()];
    if (net.isIPv6(address)) args.unshift('-6');
    if (this.options.bindTo) args.push('-I', this.options.bindTo);
    args.push(address);
    trail.add(`${this.pingBinary} ${args.join(' ')}`);
    return new Promise((resolve) => {
      let output = '';
      let settled = false;
      const child = spawn(this.pingBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const collect = (b: Buffer): void => {
        if (output.length < 2048) output += b.toString('utf8');
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      const finish = (r: CheckResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(killer);
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const onAbort = (): void => {
        child.kill('SIGKILL');
        finish(trail.fail('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // ping's own -W bounds the wait; this is the backstop if ping itself stalls.
      const killer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(trail.fail(`ping still running after ${limit + 1000} ms, killed`));
      }, limit + 1000);
      child.once('error', (err) => finish(trail.fail(`cannot run ${this.pingBinary}: ${err.message}`)));
      child.once('close', (code) => {
        const summary = /(\d+) packets transmitted, (\d+) received/.exec(output);
        if (summary) trail.add(`${summary[1]} sent, ${summary[2]} received`);
        if (code === 0) finish(trail.ok('echo reply received'));
        else if (code === 1) finish(trail.fail('no echo reply'));
        else finish(trail.fail(`ping failed (exit ${code}): ${output.trim().split('\n').pop() ?? ''}`));
      });
      if (signal.aborted) onAbort();
    });
  }
}
