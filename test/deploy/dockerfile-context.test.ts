import { existsSync, readFileSync } from 'node:fs';
import { join, matchesGlob } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

/** `COPY` sources taken from the build context (not `--from=` another stage). */
function contextSources(dockerfile: string): string[] {
  return dockerfile
    .split('\n')
    .filter((line) => /^COPY\s/i.test(line) && !/--from=/i.test(line))
    .flatMap((line) => {
      const args = line.trim().split(/\s+/).slice(1);
      return args.filter((a) => !a.startsWith('--')).slice(0, -1);
    });
}

/**
 * Whether `.dockerignore` lets `path` into the build context: the last pattern that matches decides
 * (a `!` pattern lets it in), as Docker and podman read the file. Handles the forms the project's
 * allow-list uses: `*`, a folder (`src/`), a file, and globs.
 */
function inContext(patterns: readonly string[], path: string): boolean {
  let included = true;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    const matches =
      pattern === '*' ||
      (pattern.endsWith('/') ? `${path}/`.startsWith(pattern) : path === pattern || matchesGlob(path, pattern));
    if (matches) included = negated;
  }
  return included;
}

describe('Dockerfile build context', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const sources = contextSources(dockerfile);

  it('copies something from the context', () => {
    expect(sources).toContain('package.json');
  });

  it.each(sources)('%s exists and .dockerignore lets it in', (source) => {
    const path = source.replace(/\/$/, '');
    expect(existsSync(join(ROOT, path)), `${path} exists`).toBe(true);
    expect(inContext(patterns, path), `${path} is excluded by .dockerignore`).toBe(true);
  });

  it('reads .dockerignore as an allow-list', () => {
    const allowList = ['*', '!src/', '!scripts/bundle.mjs', 'src/**/*.test.ts'];
    expect(inContext(allowList, 'src')).toBe(true);
    expect(inContext(allowList, 'scripts/bundle.mjs')).toBe(true);
    expect(inContext(allowList, 'scripts/docs.ts')).toBe(false);
    expect(inContext(allowList, 'src/a/b.test.ts')).toBe(false);
  });
});
