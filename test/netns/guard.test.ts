// The kernel guard against the real nft in a namespace: with it, a SYN to a virtual service gets
// no RST from the director's kernel; without it (or after removal), the kernel answers again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cannotRunNetns, labSuffix, inNs } from './helpers';
import { KernelGuard, execRunner, type CommandRunner } from '../../src/dataplane/guard';

const why = cannotRunNetns();
const S = labSuffix('g');
const client = `uvs${S}c`;
const director = `uvs${S}d`;
const VIP = '10.88.0.100';

function sh(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function nsRunner(ns: string): CommandRunner {
  return { run: (cmd, args, input) => execRunner.run('ip', ['netns', 'exec', ns, cmd, ...args], input) };
}

function outRsts(): number {
  const r = inNs(director, 'nstat', ['-a', '-z', '-j', 'TcpOutRsts']);
  return (JSON.parse(r.stdout) as { kernel: Record<string, number> }).kernel.TcpOutRsts!;
}

function curlVip(): number {
  return inNs(client, 'curl', ['-s', '-o', '/dev/null', '-m', '1', `http://${VIP}:80/`]).status;
}

before(() => {
  if (why) return;
  sh(['netns', 'add', client]);
  sh(['netns', 'add', director]);
  sh(['link', 'add', `uvs${S}a`, 'netns', client, 'type', 'veth', 'peer', 'name', `uvs${S}b`, 'netns', director]);
  inNs(client, 'ip', ['addr', 'add', '10.88.0.10/24', 'dev', `uvs${S}a`]);
  inNs(client, 'ip', ['link', 'set', `uvs${S}a`, 'up']);
  inNs(director, 'ip', ['addr', 'add', '10.88.0.2/24', 'dev', `uvs${S}b`]);
  inNs(director, 'ip', ['addr', 'add', `${VIP}/32`, 'dev', `uvs${S}b`]);
  inNs(director, 'ip', ['link', 'set', `uvs${S}b`, 'up']);
});

after(() => {
  for (const ns of [client, director]) {
    try {
      sh(['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
  }
});

test('guard drops SYNs to a service, leaves ping and other ports, and goes away on remove', { skip: why ?? false }, async () => {
  // Without the guard the director's kernel refuses the connection with a RST (curl exit 7).
  let rsts = outRsts();
  assert.equal(curlVip(), 7);
  assert.ok(outRsts() > rsts, 'kernel sent a RST without the guard');

  const guard = new KernelGuard(nsRunner(director), `uvs${S}t`);
  await guard.install();
  await guard.setTuples([{ addr: VIP, protocol: 'tcp', port: 80 }], [{ addr: '10.88.0.50', protocol: 'tcp', port: 8080 }]);
  rsts = outRsts();
  assert.equal(curlVip(), 28, 'curl timed out: nobody answered the SYN');
  assert.equal(outRsts(), rsts, 'the kernel sent no RST while guarded');
  // Another port on the VIP is still the kernel's: refused at once.
  assert.equal(inNs(client, 'curl', ['-s', '-m', '1', `http://${VIP}:81/`]).status, 7);
  assert.equal(inNs(client, 'ping', ['-c', '1', '-W', '1', VIP]).status, 0);

  // A second install (a restart after a crash) replaces the table instead of failing.
  const again = new KernelGuard(nsRunner(director), `uvs${S}t`);
  await again.install();
  await again.remove();
  const tables = inNs(director, 'nft', ['list', 'tables']).stdout;
  assert.doesNotMatch(tables, new RegExp(`uvs${S}t`));
  assert.equal(curlVip(), 7);
});

test('guard refuses bad names and bad tuples before touching nft', async () => {
  assert.throws(() => new KernelGuard(execRunner, 'other'), /must start with "uvs"/);
  const scripts: string[] = [];
  const fake: CommandRunner = {
    run: (_c, args, input) => {
      scripts.push(`${args.join(' ')}\n${input ?? ''}`);
      return Promise.resolve({ status: 0, stdout: '', stderr: '' });
    },
  };
  const g = new KernelGuard(fake, 'uvsx');
  await assert.rejects(g.setTuples([], []), /before install/);
  await g.install();
  await assert.rejects(g.setTuples([{ addr: '10.1', protocol: 'tcp', port: 80 }], []), /bad IPv4 address "10.1"/);
  await assert.rejects(g.setTuples([{ addr: '10.0.0.1', protocol: 'udp', port: 70000 }], []), /bad port 70000/);
  await g.setTuples([{ addr: '10.0.0.1', protocol: 'udp', port: 53 }], []);
  assert.match(scripts.at(-1)!, /add element ip uvsx services \{ 10\.0\.0\.1 \. udp \. 53 \}/);
});
