// keepalived.conf line handling: comments, quoting, braces, include with globs, @id conditionals,
// $PARAM substitution (keepalived.conf(5), "ADVANCED CONFIGURATION") and ~SEQ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTree, preprocess, splitWords, stripComment } from '../../src/config/keepalived/lexer';
import { DiagnosticSink } from '../../src/config/keepalived/diagnostics';
import { expandBraces, globFiles, memoryReader } from '../../src/config/keepalived/reader';

function lines(files: Record<string, string>, configId = 'main', main = '/etc/k/keepalived.conf'): { lines: string[]; sink: DiagnosticSink; locs: string[] } {
  const sink = new DiagnosticSink();
  const out = preprocess(main, { reader: memoryReader(files), sink, configId, random: () => 0.5 });
  return { lines: out.map((l) => l.words.map((w) => w.text).join(' ')), locs: out.map((l) => `${l.loc.file}:${l.loc.line}`), sink };
}

test('comments: # and ! anywhere end the line, but not inside double quotes', () => {
  assert.equal(stripComment('router_id x # note'), 'router_id x ');
  assert.equal(stripComment('! whole line'), '');
  assert.equal(stripComment('a!b'), 'a');
  assert.equal(stripComment('script "echo a#b" # c'), 'script "echo a#b" ');
  assert.equal(stripComment('script "say \\"hi#\\"" ! c'), 'script "say \\"hi#\\"" ');
});

test('words: quotes group and disappear, escapes inside quotes, braces stand alone', () => {
  const w = (s: string): string[] => splitWords(s).map((x) => x.text);
  assert.deepEqual(w('abcd" efg h jkl "mnop'), ['abcd efg h jkl mnop']);
  assert.deepEqual(w('abcd "efg h jkl" mnop'), ['abcd', 'efg h jkl', 'mnop']);
  // Single quotes are ordinary characters here (keepalived 2.2.7, crafted/single-quote-scheduler.conf);
  // only script arguments use them for grouping.
  assert.deepEqual(w("notify_master '/bin/x a b'"), ['notify_master', "'/bin/x", 'a', "b'"]);
  assert.deepEqual(w('a{b}c'), ['a', '{', 'b', '}', 'c']);
  assert.deepEqual(w('"a\\tb\\x41\\101\\\\\\""'), ['a\tbAA\\"']);
  const quotedBrace = splitWords('"{"');
  assert.equal(quotedBrace[0]!.quoted, true);
  assert.deepEqual(w('""'), ['']);
});

test('tree: blocks nest, one-line blocks, brace on the next line, file:line of each statement', () => {
  const sink = new DiagnosticSink();
  const text = 'global_defs { router_id r1 }\nvrrp_instance V\n{\n  virtual_ipaddress { 10.0.0.1/24 dev eth0 }\n}\n';
  const tree = buildTree(preprocess('/c', { reader: memoryReader({ '/c': text }), sink, configId: '' }), sink);
  assert.deepEqual(sink.list, []);
  assert.equal(tree.length, 2);
  assert.deepEqual(tree[0]!.block?.map((s) => [s.keyword, s.args]), [['router_id', ['r1']]]);
  assert.equal(tree[1]!.keyword, 'vrrp_instance');
  const vip = tree[1]!.block?.[0];
  assert.equal(vip?.keyword, 'virtual_ipaddress');
  assert.deepEqual(vip?.block?.[0], { keyword: '10.0.0.1/24', args: ['dev', 'eth0'], block: null, loc: { file: '/c', line: 4 } });
});

test('tree: unbalanced braces are errors with file:line', () => {
  const sink = new DiagnosticSink();
  buildTree(preprocess('/c', { reader: memoryReader({ '/c': 'vrrp_instance V {\n  state MASTER\n' }), sink, configId: '' }), sink);
  assert.equal(sink.list.length, 1);
  assert.equal(sink.list[0]!.code, 'missing-brace');
  assert.equal(`${sink.list[0]!.file}:${sink.list[0]!.line}`, '/c:1');
  const sink2 = new DiagnosticSink();
  buildTree(preprocess('/c', { reader: memoryReader({ '/c': 'a 1\n}\n' }), sink: sink2, configId: '' }), sink2);
  assert.equal(sink2.list[0]!.code, 'unexpected-brace');
  assert.equal(sink2.list[0]!.line, 2);
});

test('include: glob relative to the including file, sorted, nested includes relative to their own file', () => {
  const r = lines({
    '/etc/k/keepalived.conf': 'a 1\ninclude conf.d/*.conf\nz 26\n',
    '/etc/k/conf.d/20-b.conf': 'b 2\n',
    '/etc/k/conf.d/10-a.conf': 'a 10\ninclude sub/x.inc\n',
    '/etc/k/conf.d/sub/x.inc': 'x 24\n',
    '/etc/k/conf.d/skip.txt': 'never 0\n',
  });
  assert.deepEqual(r.lines, ['a 1', 'a 10', 'x 24', 'b 2', 'z 26']);
  assert.deepEqual(r.locs, ['/etc/k/keepalived.conf:1', '/etc/k/conf.d/10-a.conf:1', '/etc/k/conf.d/sub/x.inc:1', '/etc/k/conf.d/20-b.conf:1', '/etc/k/keepalived.conf:3']);
  assert.deepEqual(r.sink.list, []);
});

test('include: brace expansion and character classes', () => {
  assert.deepEqual(expandBraces('{foo/{,cat,dog},bar}'), ['foo/', 'foo/cat', 'foo/dog', 'bar']);
  const reader = memoryReader({ '/d/a1': '', '/d/a2': '', '/d/b1': '', '/d/.hidden': '' });
  assert.deepEqual(globFiles(reader, '/d/a[12]'), ['/d/a1', '/d/a2']);
  assert.deepEqual(globFiles(reader, '/d/{b,a}?'), ['/d/b1', '/d/a1', '/d/a2']);
  assert.deepEqual(globFiles(reader, '/d/*'), ['/d/a1', '/d/a2', '/d/b1']);
});

test('include: no match is only a note for include, an aborting error for includea; loops are cut', () => {
  const r = lines({ '/etc/k/keepalived.conf': 'include none/*.conf\nincludea none2.conf\n' });
  assert.deepEqual(r.sink.list.map((d) => [d.line, d.failsConfigTest, d.aborts ?? false]), [[1, false, false], [2, true, true]]);
  const loop = lines({ '/etc/k/keepalived.conf': 'include keepalived.conf\n' });
  assert.ok(loop.sink.list.some((d) => d.code === 'include-loop'), 'a file including itself is cut at once');
});

test('conditionals: @id keeps the line for that config id, @^id for every other', () => {
  const files = { '/etc/k/keepalived.conf': '@main router_id main_router\n@backup router_id backup_router\n@^main peer 1.2.3.4\n@^backup peer 1.2.3.5\n' };
  assert.deepEqual(lines(files, 'main').lines, ['router_id main_router', 'peer 1.2.3.5']);
  assert.deepEqual(lines(files, 'backup').lines, ['router_id backup_router', 'peer 1.2.3.4']);
  assert.deepEqual(lines(files, 'other').lines, ['peer 1.2.3.4', 'peer 1.2.3.5']);
});

test('parameters: $NAME before whitespace, ${NAME} anywhere, recursive at use time, undefined left alone', () => {
  const text = [
    '$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}',
    '$ADDRESS_BASE_SUB=0',
    '${ADDRESS_BASE}.100/32',
    '$ADDRESS_BASE_SUB=10',
    '${ADDRESS_BASE}.100/32',
    'script "$UNDEF ${ALSO_UNDEF} $ADDRESS_BASE_SUBx"',
    '@main $PRIORITY=240',
    '@backup $PRIORITY=200',
    'priority $PRIORITY',
    '$IF_MAIN=@main',
    '$IF_MAIN weight 5',
    '$EMPTY=',
    'x${EMPTY}y',
  ].join('\n');
  assert.deepEqual(lines({ '/etc/k/keepalived.conf': text }, 'main').lines, [
    '10.2.0.100/32',
    '10.2.10.100/32',
    'script $UNDEF ${ALSO_UNDEF} $ADDRESS_BASE_SUBx',
    'priority 240',
    'weight 5',
    'xy',
  ]);
  assert.deepEqual(lines({ '/etc/k/keepalived.conf': text }, 'backup').lines.slice(3), ['priority 200', 'xy']);
});

test('parameters: multi-line definitions, nested, with conditionals inside (the man page example)', () => {
  const text = [
    '$INSTANCE= \\',
    'vrrp_instance VI_${NUM} { \\',
    '    interface eth0.${NUM} \\',
    '    @high priority 130 \\',
    '    @low priority 120 \\',
    '',
    '    virtual_ipaddress { \\',
    '        10.0.${NUM}.254/24 \\',
    '    } \\',
    '}',
    '$NUM=0',
    '$INSTANCE',
    '$NUM=1',
    '$INSTANCE',
  ].join('\n');
  const r = lines({ '/etc/k/keepalived.conf': text }, 'high');
  assert.deepEqual(r.lines, [
    'vrrp_instance VI_0 {', 'interface eth0.0', 'priority 130', 'virtual_ipaddress {', '10.0.0.254/24', '}', '}',
    'vrrp_instance VI_1 {', 'interface eth0.1', 'priority 130', 'virtual_ipaddress {', '10.0.1.254/24', '}', '}',
  ]);
  // Every expanded line points at the line that used the parameter.
  assert.deepEqual(new Set(r.locs), new Set(['/etc/k/keepalived.conf:12', '/etc/k/keepalived.conf:14']));

  // Nested templates, as in the man page: $VS uses $RS and redefines $RS_NUM in between.
  const nested = [
    '$RS= \\',
    'real_server 192.168.${VS_NUM}.${RS_NUM} 80 { \\',
    '  weight 1 \\',
    '}',
    '$VS= \\',
    'virtual_server 10.0.${VS_NUM}.4 80 { \\',
    '  $RS_NUM=1 \\',
    '  $RS \\',
    '  $RS_NUM=2 \\',
    '  $RS \\',
    '}',
    '$VS_NUM=7',
    '$VS',
  ].join('\n');
  const n = lines({ '/etc/k/keepalived.conf': nested });
  assert.deepEqual(n.lines, ['virtual_server 10.0.7.4 80 {', 'real_server 192.168.7.1 80 {', 'weight 1', '}', 'real_server 192.168.7.2 80 {', 'weight 1', '}', '}']);
});

test('parameters: predefined _PWD, _INSTANCE, _HASH, _BANG, _RANDOM', () => {
  const r = lines({ '/etc/k/keepalived.conf': 'a ${_PWD} ${_INSTANCE}\nb "${_HASH}x${_BANG}"\nc ${_RANDOM 10 20} ${_RANDOM}\n' }, 'node1');
  assert.deepEqual(r.lines, ['a /etc/k node1', 'b #x!', 'c 15 16384']);
});

test('parameters: a self-referencing parameter is reported, not looped on forever', () => {
  const r = lines({ '/etc/k/keepalived.conf': '$A=x${A}\nv ${A}\n' });
  assert.ok(r.sink.list.some((d) => d.code === 'substitution-loop' && d.line === 2));
});

test('~SEQ and ~SEQx expand the rest of the line', () => {
  const r = lines({ '/etc/k/keepalived.conf': '~SEQ(SUBNET, 0, 3) ip_address 10.0.${SUBNET}.1\n~SEQx(S, 144, 16, 192) ip fe80::20:${S}:1\n~SEQ(N, 3) n $N\n~SEQ(M, 3, 1) m $M\n' });
  assert.deepEqual(r.lines, [
    'ip_address 10.0.0.1', 'ip_address 10.0.1.1', 'ip_address 10.0.2.1', 'ip_address 10.0.3.1',
    'ip fe80::20:90:1', 'ip fe80::20:a0:1', 'ip fe80::20:b0:1', 'ip fe80::20:c0:1',
    'n 1', 'n 2', 'n 3',
    'm 3', 'm 2', 'm 1',
  ]);
  const bad = lines({ '/etc/k/keepalived.conf': '~SEQ(X, 1, 0, 5) a\n~SEQ(9, 1) b\n' });
  assert.deepEqual(bad.sink.list.map((d) => [d.code, d.line]), [['bad-seq', 1], ['bad-seq', 2]]);
});

test('CRLF line endings and a missing main file', () => {
  assert.deepEqual(lines({ '/etc/k/keepalived.conf': 'a 1\r\nb 2\r\n' }).lines, ['a 1', 'b 2']);
  const r = lines({}, 'x', '/nope.conf');
  assert.equal(r.sink.list[0]!.code, 'unreadable-file');
  assert.equal(r.sink.list[0]!.file, '/nope.conf');
  assert.equal(r.sink.list[0]!.exitCode, 7, 'KEEPALIVED_EXIT_NO_CONFIG');
});
