import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * What the shipped proxy loads: the static imports reachable from its entry points. The `--dev`
 * setup (local authorization server, demo upstreams, the SDK v2 MCP server) is loaded by a dynamic
 * `import()` under `--dev` only, so its packages never cost a production process memory.
 */
const SRC = resolve(import.meta.dirname, '../../src');
const ENTRIES = ['main.ts', 'index.ts', 'guard/index.ts'].map((f) => resolve(SRC, f));

// Static `import ... from` / `export ... from` only: a dynamic import() is not followed.
const STATIC = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/g;

function reachable(): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [...ENTRIES];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (files.has(file)) continue;
    files.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(STATIC)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return { files, packages };
}

describe('production import graph', () => {
  const { files, packages } = reachable();

  it('finds the imports it checks', () => {
    expect(packages).toContain('undici');
    expect([...files].map((f) => relative(SRC, f))).toContain('proxy/handler.ts');
  });

  it('holds no --dev module and no MCP SDK or authorization-server package', () => {
    expect([...files].map((f) => relative(SRC, f)).filter((f) => f.startsWith('dev/'))).toEqual([]);
    expect([...packages].filter((p) => p.startsWith('@modelcontextprotocol/') || p === 'oidc-provider')).toEqual([]);
  });
});
