/** keepalived.conf support: parse (pure) and validate (against an injected machine). */
export { parseKeepalivedConfig, parseStatements, splitScriptArgs } from './parser';
export type { ParseOptions, ParseResult } from './parser';
export { validateKeepalivedModel } from './validate';
export type { Machine, MachineInterface } from './validate';
export { defaultConfigId, linuxMachine } from './machine';
export { fsReader, memoryReader } from './reader';
export type { ConfigReader } from './reader';
export { configTestExitCode, formatDiagnostic, EXIT_CONFIG_TEST, EXIT_CONFIG_TEST_SECURITY, EXIT_OK } from './diagnostics';
export type { Diagnostic, Severity, Loc } from './diagnostics';
export type * from './model';
