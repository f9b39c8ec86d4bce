// NetInfo for real, inside a lab director: interfaces, routes, and a neighbour the kernel did not
// know until NetInfo's own probe made it resolve.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cannotRunNetns, labSuffix, lab, inNs, repoRoot } from './helpers';
import type { InterfaceInfo, RouteInfo } from '../../src/dataplane/netinfo';

const why = cannotRunNetns();
const S = labSuffix('n');
const P = `uvs${S}`;

after(() => {
  if (!why) lab(S, 'down');
});

test('interfaces, route and neighbour resolution in a lab director', { skip: why ?? false }, () => {
  lab(S, 'up', 'dr');
  const mod = join(repoRoot, 'dist', 'src', 'dataplane', 'netinfo.js');
  const script = `
    const { NetInfo } = require(${JSON.stringify(mod)});
    (async () => {
      const n = new NetInfo();
      const ifs = await n.interfaces();
      const route = await n.route('10.77.0.22');
      const mac = await n.neighbourMac('10.77.0.22', route.ifname, 3000);
      const none = await n.neighbourMac('10.77.0.99', route.ifname, 1500);
      console.log(JSON.stringify({ ifs, route, mac, none }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  inNs(`${P}dir`, 'ip', ['neigh', 'flush', 'all']);
  const r = inNs(`${P}dir`, process.execPath, ['-e', script]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ifs: InterfaceInfo[]; route: RouteInfo; mac: string | null; none: string | null };
  const e0 = out.ifs.find((i) => i.ifname === `${P}e0`);
  assert.ok(e0, `${P}e0 is listed`);
  assert.deepEqual(e0.addrs.map((a) => a.addr).sort(), ['10.77.0.100', '10.77.0.2']);
  assert.equal(out.route.ifname, `${P}e0`);
  assert.equal(out.route.gateway, null);
  const rsMac = inNs(`${P}rs2`, 'cat', [`/sys/class/net/${P}e0/address`]).stdout.trim();
  assert.equal(out.mac, rsMac);
  assert.equal(out.none, null);
});
