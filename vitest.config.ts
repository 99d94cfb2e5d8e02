import { defineConfig } from 'vitest/config';

/** Measures a process's idle memory: it runs alone, after the rest, so other tests' load does not skew it. */
const QUIET = ['test/reliability/idle-memory.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'suite', include: ['test/**/*.test.ts'], exclude: QUIET } },
      { extends: true, test: { name: 'quiet', include: QUIET, sequence: { groupOrder: 1 } } },
    ],
  },
});
