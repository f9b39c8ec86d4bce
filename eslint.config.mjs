// ESLint for the TypeScript sources and the plain-JavaScript scripts (*.mjs), run by `npm test` (npm run lint). typescript-eslint's
// recommended rules with type information, plus the few this codebase relies on: no floating
// promises on the control plane (a lost rejection hides a failed apply), no unused code.
// tsconfig.json has noUncheckedIndexedAccess, so an indexed read is `T | undefined` and a `!` on it
// is a claim that the index is in bounds (no-unnecessary-type-assertion keeps the ones that claim nothing out).
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'bench/results/**', '**/*.js'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  // The plain-JavaScript scripts (test/run.mjs, man/render.mjs, bench/wake-trace.mjs, the lab's
  // helpers in netns-scripts/): ESLint's recommended rules, without type information.
  {
    files: ['**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(['process', 'console', 'Buffer', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'URL', 'performance'].map((g) => [g, 'readonly'])),
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    // A disable comment that no longer suppresses anything fails the lint, so none outlive their reason.
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Off: the numeric enums here (TcpState, StateFlag, ForwardMethod, DropReason, Header, ...) name
      // values packed into shared Int32Array/Uint32Array cells and bit fields. Every such value is read
      // back as a plain number (`cell & StateFlag.STATE_MASK`), so comparing a number with an enum
      // member is the design, not a mix-up; an `as TcpState` at each of those reads would assert
      // nothing the rule could check.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test()/describe()/it()/suite() return a promise that the runner itself
          // awaits and reports; a subtest inside a test (t.test) is not covered and must be awaited.
          allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }],
        },
      ],
    },
  },
);
