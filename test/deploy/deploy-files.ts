import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** Repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEPLOY = join(ROOT, 'deploy');

export type Doc = Record<string, unknown>;

export function rel(path: string): string {
  return relative(ROOT, path);
}

export function listFiles(dir: string, suffixes: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path, suffixes));
    else if (suffixes.some((s) => entry.name.endsWith(s))) out.push(path);
  }
  return out.sort();
}

/** Every YAML document of a stream; parse errors and warnings (duplicate keys...) throw. */
export function parseYamlDocs(text: string, source: string): Doc[] {
  const docs: Doc[] = [];
  for (const doc of parseAllDocuments(text, { uniqueKeys: true, strict: true })) {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) {
      throw new Error(`${source}: ${problems.map((p) => p.message).join('; ')}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${source}: document is not a mapping`);
    docs.push(value as Doc);
  }
  return docs;
}

export function loadYamlDocs(path: string): Doc[] {
  return parseYamlDocs(readFileSync(path, 'utf8'), rel(path));
}

const rendered = new Map<string, Doc[]>();

/** `kubectl kustomize DIR`: renders offline, never talks to a cluster. Memoised; callers get copies. */
export function kustomize(dir: string): Doc[] {
  let docs = rendered.get(dir);
  if (!docs) {
    docs = render(dir);
    rendered.set(dir, docs);
  }
  return structuredClone(docs);
}

function render(dir: string): Doc[] {
  const res = spawnSync('kubectl', ['kustomize', dir], {
    encoding: 'utf8',
    timeout: 15_000,
    // No kubeconfig: make sure nothing could reach a cluster (or whatever listens on localhost:8080).
    env: { ...process.env, KUBECONFIG: '/nonexistent/kubeconfig' },
  });
  if (res.status !== 0) throw new Error(`kubectl kustomize ${rel(dir)} failed: ${res.stderr || res.error?.message}`);
  return parseYamlDocs(res.stdout, `kustomize ${rel(dir)}`);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a nested value by path, failing loudly when a step is missing. */
export function at(value: unknown, ...path: (string | number)[]): unknown {
  let cur = value;
  for (const key of path) {
    if (typeof key === 'number') {
      if (!Array.isArray(cur) || key >= cur.length) throw new Error(`missing [${key}] in path ${path.join('.')}`);
      cur = cur[key];
    } else {
      if (!isRecord(cur) || !(key in cur)) throw new Error(`missing ${key} in path ${path.join('.')}`);
      cur = cur[key];
    }
  }
  return cur;
}

export function asArray(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new Error('expected an array');
  return v;
}

export function asRecord(v: unknown): Record<string, unknown> {
  if (!isRecord(v)) throw new Error('expected a mapping');
  return v;
}

export function kindOf(doc: Doc): string {
  return `${String(doc.apiVersion)}/${String(doc.kind)}`;
}

export function named(docs: readonly Doc[], kind: string, name: string): Doc {
  const found = docs.find((d) => d.kind === kind && isRecord(d.metadata) && d.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
}
