import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The request pipeline's dependencies point one way (docs/design.md "Layout"): the shared request
 * vocabulary (src/pipeline) is a leaf, features never reach up into the proxy or the server, and
 * config/ knows no feature. Read from the sources, so a new import that breaks a rule fails here.
 */
const SRC = resolve(import.meta.dirname, '../../src');

interface Edge {
  readonly file: string;
  readonly from: string;
  readonly to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Top-level folder (or file, e.g. `errors`, `app`) of a path under src/. */
function areaOf(path: string): string {
  const first = relative(SRC, path).split('/')[0]!;
  return first.replace(/\.(ts|js)$/, '');
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'|import\('(\.{1,2}\/[^']+)'\)/g;

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const target = resolve(dirname(file), m[1] ?? m[2]!);
      const from = areaOf(file);
      const to = areaOf(target);
      if (from !== to) out.push({ file: relative(SRC, file), from, to });
    }
  }
  return out;
}

const all = edges();
const show = (list: readonly Edge[]) => list.map((e) => `${e.file} -> ${e.to}`);

describe('layering of src/', () => {
  it('finds the imports it checks', () => {
    expect(all.some((e) => e.from === 'proxy' && e.to === 'pipeline')).toBe(true);
  });

  it('src/pipeline imports nothing from other folders except errors', () => {
    expect(show(all.filter((e) => e.from === 'pipeline' && e.to !== 'errors'))).toEqual([]);
  });

  it('features never import the proxy, the server or the app', () => {
    const features = new Set([
      'mcp',
      'step-up',
      'auth',
      'revocation',
      'fleet',
      'routing',
      'pipeline',
      'config',
      'observability',
    ]);
    const up = new Set(['proxy', 'server', 'app', 'main', 'index']);
    expect(show(all.filter((e) => features.has(e.from) && up.has(e.to)))).toEqual([]);
  });

  it('src/config imports no feature module', () => {
    expect(show(all.filter((e) => e.from === 'config' && e.to !== 'errors'))).toEqual([]);
  });

  it('src/observability imports no feature module', () => {
    expect(show(all.filter((e) => e.from === 'observability' && e.to !== 'errors' && e.to !== 'config'))).toEqual([]);
  });

  it('has no import cycle between folders', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of all) {
      if (!graph.has(e.from)) graph.set(e.from, new Set());
      graph.get(e.from)!.add(e.to);
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (node: string, path: string[]): void => {
      if (state.get(node) === 'done') return;
      if (state.get(node) === 'open') {
        cycles.push([...path.slice(path.indexOf(node)), node].join(' -> '));
        return;
      }
      state.set(node, 'open');
      for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
      state.set(node, 'done');
    };
    for (const node of [...graph.keys()].sort()) visit(node, []);
    expect(cycles).toEqual([]);
  });
});
