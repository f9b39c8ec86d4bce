// Our parser + validator against real `keepalived -t` verdicts recorded in
// test/fixtures/keepalived/{samples,crafted}/verdicts.json (see the README there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { configTestExitCode, formatDiagnostic, fsReader, parseKeepalivedConfig, validateKeepalivedModel } from '../../src/config/keepalived';
import type { Machine } from '../../src/config/keepalived';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/keepalived');

interface Verdict {
  exit: number;
  messages: string[];
}
interface VerdictFile {
  keepalived: string;
  command: string;
  lo: Record<string, Verdict>;
  'eth0-3': Record<string, Verdict>;
}

/** The two machines of record-verdicts.sh, with the programs and users that existed when recording. */
function fakeMachine(interfaces: string[]): Machine {
  const ifs = new Set(interfaces);
  const programs = new Set(['killall', '/bin/true']);
  return {
    getInterface: (name) => (ifs.has(name) ? { name, loopback: name === 'lo' } : null),
    findExecutable: (program) => (programs.has(program) ? program : null),
    userExists: (user) => user === 'root',
  };
}

const MACHINES: Record<'lo' | 'eth0-3', Machine> = {
  lo: fakeMachine(['lo']),
  'eth0-3': fakeMachine(['lo', 'eth0', 'eth1', 'eth2', 'eth3']),
};

for (const dir of ['samples', 'crafted']) {
  const verdicts = JSON.parse(fs.readFileSync(path.join(FIXTURES, dir, 'verdicts.json'), 'utf8')) as VerdictFile;
  for (const machineName of ['lo', 'eth0-3'] as const) {
    const files = Object.keys(verdicts[machineName]);
    test(`${dir}: same keepalived -t verdict on machine ${machineName} (${files.length} files)`, () => {
      assert.ok(files.length >= (dir === 'samples' ? 25 : 50), 'the fixture lists all files');
      const mismatches: string[] = [];
      for (const file of files) {
        const want = verdicts[machineName][file]!.exit;
        const { model, diagnostics } = parseKeepalivedConfig(path.join(FIXTURES, dir, file), fsReader, { configId: 'uvs-test' });
        const all = [...diagnostics, ...validateKeepalivedModel(model, MACHINES[machineName])];
        const got = configTestExitCode(all);
        // keepalived crashed on some inputs (exit 139); there only "non-zero" is comparable.
        const same = want > 6 ? got !== 0 : got === want;
        if (!same) {
          mismatches.push(`${file}: keepalived ${want}, uvs ${got}\n  keepalived: ${verdicts[machineName][file]!.messages.join('\n              ')}\n  uvs: ${all.map(formatDiagnostic).join('\n       ')}`);
        }
      }
      assert.deepEqual(mismatches, []);
    });
  }
}

test('samples: every Debian sample file is covered and all of them parse into a model', () => {
  const onDisk = fs.readdirSync(path.join(FIXTURES, 'samples')).filter((f) => f.startsWith('keepalived.conf.'));
  assert.equal(onDisk.length, 25);
  for (const f of onDisk) {
    const { model } = parseKeepalivedConfig(path.join(FIXTURES, 'samples', f), fsReader, { configId: 'uvs-test' });
    assert.ok(model.vrrpInstances.length + model.virtualServers.length + model.staticRoutes.length > 0, `${f} yields something`);
  }
});
