import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { z } from 'zod';
import { parseConfigText } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';

/**
 * Whatever the file holds, loading it ends in a valid config or a ConfigError that lists
 * problems with their paths; never a TypeError from inside a validator.
 */
const dir = mkdtempSync(join(tmpdir(), 'dp-config-prop-'));
const secretFile = join(dir, 'secret');
writeFileSync(secretFile, `${'k'.repeat(40)}\n`);

/** A valid config that sets every section, so each known key path exists in it. */
function base(): Record<string, unknown> {
  return {
    listen: '127.0.0.1:8080',
    admin: '127.0.0.1:9090',
    authorizationServer: {
      issuer: 'https://as.example',
      tokenEndpoint: 'https://as.example/token',
      clientId: 'agent',
      clientSecretFile: secretFile,
      retry: { maxAttempts: 3, budgetMs: 1000, backoffMs: 100 },
      circuitBreaker: { failureThreshold: 5, openSeconds: 10 },
    },
    subjectToken: {
      header: 'authorization',
      verify: { jwksUri: 'https://as.example/jwks', issuer: 'https://as.example', audience: 'proxy' },
    },
    cache: { refreshAheadSeconds: 30, maxTtlSeconds: 300 },
    stepUp: {
      approval: {
        webhookUrl: 'https://hooks.example/x',
        callbackSecretFile: secretFile,
        callbackBaseUrl: 'http://10.0.0.1:9090',
      },
    },
    routes: [
      {
        name: 'mcp',
        match: { pathPrefix: '/mcp' },
        upstream: 'https://mcp.internal',
        scopes: ['mcp:tools:read'],
        resource: 'https://mcp.internal/',
        mcp: {
          toolScopes: { echo: ['x:y'] },
          methodScopes: { 'tools/call': ['mcp:tools:read'] },
          allowMethods: ['a/b'],
          baseScopes: ['mcp:tools:read'],
        },
        stepUp: { scopes: ['billing:write'], rules: [{ method: 'DELETE', pathPrefix: '/invoices' }, { tool: 'pay' }] },
      },
    ],
  };
}

type Path = readonly (string | number)[];

/** Every key path the schema knows, from its JSON Schema (so new keys are covered without editing this test). */
function knownPaths(): Path[] {
  const out: Path[] = [];
  const walk = (node: unknown, path: Path): void => {
    if (node === null || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (path.length > 0) out.push(path);
    for (const alt of [...((n.anyOf as unknown[]) ?? []), ...((n.oneOf as unknown[]) ?? [])]) walk(alt, path);
    const props = n.properties as Record<string, unknown> | undefined;
    if (props) for (const [k, v] of Object.entries(props)) walk(v, [...path, k]);
    if (n.items && typeof n.items === 'object') walk(n.items, [...path, 0]);
    if (n.additionalProperties && typeof n.additionalProperties === 'object')
      walk(n.additionalProperties, [...path, 'echo']);
  };
  walk(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }), []);
  const seen = new Set<string>();
  return out.filter((p) => {
    const k = JSON.stringify(p);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function setAt(root: Record<string, unknown>, path: Path, value: unknown): void {
  let node: Record<string | number, unknown> = root;
  path.forEach((key, i) => {
    if (i === path.length - 1) {
      node[key] = value;
      return;
    }
    const next = node[key];
    if (next === null || typeof next !== 'object') node[key] = typeof path[i + 1] === 'number' ? [] : {};
    node = node[key] as Record<string | number, unknown>;
  });
}

/** Values a person might write by mistake, plus anything at all. */
const value = fc.oneof(
  fc.constantFrom(
    'not-a-url',
    'http://[',
    '::',
    '',
    ' ',
    'http//x',
    'ftp://x',
    'https://',
    '//x',
    `\${UNSET_VAR}`,
    '__proto__',
    'constructor',
    '0',
    'true',
  ),
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 3 }),
);

function load(text: string): 'ok' | readonly string[] {
  try {
    const cfg = parseConfigText(text, {});
    expect(Array.isArray(cfg.routes)).toBe(true);
    return 'ok';
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

function expectProblemsWithPaths(result: 'ok' | readonly string[]): void {
  if (result === 'ok') return;
  expect(result.length).toBeGreaterThan(0);
  // `path: message`, or a YAML syntax error (which names line and column).
  for (const p of result) expect(p).toMatch(/^(YAML: .+|[^\n]*?\S: .+)$/s);
}

describe('config loader property', () => {
  const paths = knownPaths();

  it('knows the URL-valued keys', () => {
    const names = paths.map((p) => p.join('.'));
    for (const k of [
      'routes.0.upstream',
      'authorizationServer.issuer',
      'authorizationServer.tokenEndpoint',
      'subjectToken.verify.jwksUri',
      'stepUp.approval.webhookUrl',
      'stepUp.approval.callbackBaseUrl',
      'routes.0.resource',
    ]) {
      expect(names).toContain(k);
    }
  });

  it('the base config is valid', () => {
    expect(load(stringify(base()))).toBe('ok');
  });

  it('arbitrary values at known key paths give a valid config or a ConfigError with paths', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...paths), value), { minLength: 1, maxLength: 4 }), (edits) => {
        const cfg = base();
        for (const [path, v] of edits) setAt(cfg, path, v);
        expectProblemsWithPaths(load(stringify(cfg)));
      }),
      { numRuns: 400 },
    );
  });

  it('every URL-valued key with a malformed URL is reported at its path', () => {
    const urlKeys: Path[] = [
      ['routes', 0, 'upstream'],
      ['routes', 0, 'resource'],
      ['authorizationServer', 'issuer'],
      ['authorizationServer', 'tokenEndpoint'],
      ['subjectToken', 'verify', 'jwksUri'],
      ['stepUp', 'approval', 'webhookUrl'],
      ['stepUp', 'approval', 'callbackBaseUrl'],
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...urlKeys),
        fc.constantFrom('not-a-url', 'http://[', '::', 'http//x', ' '),
        (path, bad) => {
          const cfg = base();
          setAt(cfg, path, bad);
          const result = load(stringify(cfg));
          expect(result).not.toBe('ok');
          const at = path
            .map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`))
            .join('')
            .replace(/^\./, '');
          expect((result as string[]).some((p) => p.startsWith(`${at}: `))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('arbitrary YAML documents give a valid config or a ConfigError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.jsonValue({ maxDepth: 4 }).map((v) => stringify(v)),
          fc
            .dictionary(fc.constantFrom(...paths.map((p) => String(p[0]))), fc.jsonValue({ maxDepth: 3 }))
            .map((v) => stringify(v)),
          fc.constantFrom(
            'a: &x [*x]',
            '!!js/function "f"',
            'routes: !!binary aGVsbG8=',
            '? [a]\n: 1',
            '<<: {a: 1}',
            'a: *nope',
            '---\na: 1\n---\nb: 2',
          ),
        ),
        (text) => expectProblemsWithPaths(load(text)),
      ),
      { numRuns: 400 },
    );
  });
});
