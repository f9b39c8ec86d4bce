// The lab harness itself: `lab.sh up dr` builds a working topology, `down` leaves nothing behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRunNetns, labSuffix, lab, inNs, namespacesWithPrefix } from './helpers';

const why = cannotRunNetns();
const S = labSuffix('l');
const P = `uvs${S}`;

after(() => {
  if (!why) lab(S, 'down');
});

test('lab.sh up dr: every real server answers with its name, VIPs are on lo', { skip: why ?? false }, () => {
  lab(S, 'up', 'dr', '--rs', '3');
  for (const i of [1, 2, 3]) {
    const r = inNs(`${P}cl`, 'curl', ['-s', '-m', '2', `http://10.77.0.${20 + i}/`]);
    assert.equal(r.stdout, `rs${i}\n`);
    const lo = inNs(`${P}rs${i}`, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'lo']);
    assert.match(lo.stdout, /10\.77\.0\.100\/32/);
  }
  // The real servers must not answer ARP for the VIP (arp_ignore=1): only the director's MAC is learnt.
  const ping = inNs(`${P}cl`, 'ping', ['-c', '1', '-W', '1', '10.77.0.100']);
  assert.equal(ping.status, 0);
  const neigh = inNs(`${P}cl`, 'ip', ['neigh', 'show', '10.77.0.100']).stdout;
  const dirMac = inNs(`${P}dir`, 'cat', [`/sys/class/net/${P}e0/address`]).stdout.trim();
  assert.ok(neigh.includes(dirMac), `client resolved the VIP to ${neigh.trim()}, expected the director's ${dirMac}`);
});

test('lab.sh down removes every namespace of the lab', { skip: why ?? false }, () => {
  lab(S, 'down');
  assert.deepEqual(namespacesWithPrefix(P), []);
  // A second down is harmless.
  lab(S, 'down');
});
