import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../deploy/deploy-files.js';
import { brokenLinks, githubSlug, headingAnchors, relativeLinks } from './markdown-links.js';

const DOCS = [
  'README.md',
  'BENCHMARKS.md',
  'CHANGELOG.md',
  'SECURITY.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

describe('relative links in the docs', () => {
  it.each(DOCS)('%s: every relative link resolves to a file and heading', (file) => {
    expect(brokenLinks(join(ROOT, file), ROOT)).toEqual([]);
  });

  it('covers the docs pages', () => {
    expect(DOCS).toContain('docs/configuration.md');
    expect(DOCS.length).toBeGreaterThan(10);
  });
});

describe('the link checker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'delegate-proxy-links-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('makes the anchors GitHub makes', () => {
    expect(githubSlug('How a request flows')).toBe('how-a-request-flows');
    expect(githubSlug('`routes[].mcp`')).toBe('routesmcp');
    expect(githubSlug('Step-up: approvals & audit (v2)')).toBe('step-up-approvals--audit-v2');
    expect(githubSlug('[Try it](x.md) now')).toBe('try-it-now');
    expect(githubSlug('Decision callback: `POST /step-up/<id>` on the <em>admin</em> listener')).toBe(
      'decision-callback-post-step-upid-on-the-admin-listener',
    );
    expect([...headingAnchors('# A\n## A\n```\n# B\n```\n')]).toEqual(['a', 'a-1']);
  });

  it('finds relative links, not URLs or code', () => {
    const text = '[a](a.md#x) [b](https://example.com) `[c](c.md)`\n```\n[d](d.md)\n```\n[e]: e.md\n';
    expect(relativeLinks(text).map((l) => l.target)).toEqual(['a.md#x', 'e.md']);
  });

  it('reports a missing file and a missing heading, with file and line', () => {
    writeFileSync(join(dir, 'target.md'), '# Target\n## Real heading\n');
    writeFileSync(
      join(dir, 'source.md'),
      '# Source\n[ok](target.md#real-heading) [self](#source)\n[gone](missing.md)\n[bad](target.md#nope)\n',
    );
    expect(brokenLinks(join(dir, 'source.md'), dir)).toEqual([
      'source.md:3: missing.md: missing.md does not exist',
      'source.md:4: target.md#nope: no heading with the anchor #nope in target.md',
    ]);
  });
});
