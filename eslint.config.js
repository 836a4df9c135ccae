// Lint rules kept few and meaningful: each catches a class of real bug, none is about taste (Prettier owns
// layout). Type-aware, so a promise nobody awaits or handles is found across files.
import tseslint from 'typescript-eslint';
import comments from '@eslint-community/eslint-plugin-eslint-comments/configs';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'bench-results/', '.teechain/', '.tmp/', 'test/fixtures/', 'types/'] },
  {
    files: ['**/*.ts'],
    extends: [comments.recommended],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A dropped promise is a dropped failure: await it, return it, or mark it `void` where that is the intent.
      // node:test's test()/describe() promises are the runner's to track.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      // An async function where a void callback is expected drops its failure the same way.
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false, attributes: false } },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // `any` switches the type checker off: allowed only under a disable comment that says why.
      '@typescript-eslint/no-explicit-any': 'error',
      '@eslint-community/eslint-comments/require-description': ['error', { ignore: [] }],
    },
  },
);
