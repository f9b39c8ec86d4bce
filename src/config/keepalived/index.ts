/**
 * keepalived.conf support.
 *
 *   const { model, diagnostics } = parseKeepalivedConfig(file, fsReader, { configId: defaultConfigId() });
 *   const all = [...diagnostics, ...validateKeepalivedModel(model, linuxMachine())];
 *   all.forEach((d) => console.error(formatDiagnostic(d)));
 *   process.exitCode = configTestExitCode(all);   // what `keepalived -t` would exit with
 *
 * Parsing is pure (files through a ConfigReader; memoryReader for tests); validation asks an
 * injected Machine about interfaces, programs and users. model.ipv6Uses lists every place the
 * configuration asks for IPv6, which uvs parses and validates but does not forward yet.
 */
export { parseKeepalivedConfig, parseStatements, splitScriptArgs, LVS_SCHEDULERS } from './parser';
export type { ParseOptions, ParseResult } from './parser';
export { validateKeepalivedModel } from './validate';
export type { Machine, MachineInterface } from './validate';
export { defaultConfigId, linuxMachine } from './machine';
export { fsReader, memoryReader } from './reader';
export type { ConfigReader } from './reader';
export { configTestExitCode, formatDiagnostic, EXIT_CONFIG_TEST, EXIT_CONFIG_TEST_SECURITY, EXIT_OK } from './diagnostics';
export type { Diagnostic, Severity, Loc } from './diagnostics';
export type * from './model';
