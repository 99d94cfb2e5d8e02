import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfigText, resolveConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { configProblems } from '../helpers/config-problems.js';

const dir = mkdtempSync(join(tmpdir(), 'dp-config-'));
const secretFile = join(dir, 'secret');
writeFileSync(secretFile, 's3cret\n');

const minimal = {
  authorizationServer: { tokenEndpoint: 'https://as.example/token', clientId: 'agent', clientSecretFile: secretFile },
  routes: [{ name: 'docs', match: { pathPrefix: '/docs' }, upstream: 'https://docs.internal' }],
};

describe('config', () => {
  it('applies the documented defaults (docs/configuration.md) and reads the secret from its file', () => {
    const c = resolveConfig(minimal);
    expect(c.listen).toBe('127.0.0.1:8080');
    expect(c.admin).toBe('127.0.0.1:9090');
    expect(c.authorizationServer.clientAuth).toBe('client_secret_basic');
    expect(c.authorizationServer.timeoutMs).toBe(3000);
    expect(c.subjectToken).toMatchObject({
      header: 'authorization',
      type: 'urn:ietf:params:oauth:token-type:access_token',
    });
    expect(c.cache).toMatchObject({ refreshAheadSeconds: 30, maxTtlSeconds: 300, maxEntries: 10000 });
    expect(c.routes[0]).toMatchObject({
      stripPrefix: false,
      scopes: [],
      requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      timeoutMs: 30000,
    });
    expect(c.secrets.clientSecret).toBe('s3cret');
    expect(Object.isFrozen(c.routes[0])).toBe(true);
  });

  it('lists every problem at once, each with its path', () => {
    const list = configProblems({
      listen: 'nope',
      authorizationServer: { clientId: '', clientAuth: 'magic' },
      cache: { maxTtlSeconds: 10, refreshAheadSeconds: 30, extra: 1 },
      routes: [
        { name: 'Bad Name', match: { pathPrefix: 'docs', host: 'x' }, upstream: 'ftp://x', scopes: ['has space'] },
        { name: 'ok', match: { pathPrefix: '/a' }, upstream: 'http://a', resource: 'not a uri', mystery: true },
      ],
    });
    const text = list.join('\n');
    for (const path of [
      'listen:',
      'authorizationServer.clientId:',
      'authorizationServer.clientAuth:',
      'cache:',
      'routes[0].name:',
      'routes[0].match.pathPrefix:',
      'routes[0].upstream:',
      'routes[0].scopes[0]:',
      'routes[1].resource:',
      'routes[1]:',
    ]) {
      expect(text, path).toContain(path);
    }
    expect(text).toMatch(/mystery/);
    expect(text).toMatch(/extra/);
  });

  it('requires a token endpoint unless an issuer is set, and the secret file for secret methods', () => {
    const list = configProblems({ authorizationServer: { clientId: 'a' }, routes: minimal.routes });
    expect(list).toContain('authorizationServer.tokenEndpoint: required unless issuer is set');
    expect(list).toContain('authorizationServer.clientSecretFile: required for clientAuth client_secret_basic');
  });

  it('reports an unreadable secret file by path', () => {
    const list = configProblems({
      ...minimal,
      authorizationServer: { ...minimal.authorizationServer, clientSecretFile: join(dir, 'missing') },
    });
    expect(list).toEqual([`authorizationServer.clientSecretFile: cannot read ${join(dir, 'missing')} (ENOENT)`]);
  });

  it('rejects duplicate route names and duplicate matches', () => {
    const route = minimal.routes[0]!;
    const list = configProblems({
      ...minimal,
      routes: [route, { ...route, match: { pathPrefix: '/other' } }, { ...route, name: 'x' }],
    });
    expect(list).toContain('routes[1].name: duplicate route name (also routes[0])');
    expect(list).toContain('routes[2].match: same match as routes[0]');
  });

  it('refuses mcp.baseScopes outside the route scopes', () => {
    const route = {
      ...minimal.routes[0],
      scopes: ['mcp:tools:read'],
      mcp: { baseScopes: ['mcp:tools:read', 'admin:all'] },
    };
    expect(configProblems({ ...minimal, routes: [route] })).toEqual([
      "routes[0].mcp.baseScopes: not in the route's scopes: admin:all",
    ]);
  });

  it('refuses route prefixes with dot segments', () => {
    const list = configProblems({ ...minimal, routes: [{ ...minimal.routes[0], match: { pathPrefix: '/a/../b' } }] });
    expect(list.join()).toContain('routes[0].match.pathPrefix: must not contain . or .. segments');
  });

  it('substitutes $-brace VAR references in values from the environment and names unset ones', () => {
    const yaml = `
authorizationServer:
  tokenEndpoint: \${AS_URL}/token
  clientId: \${CLIENT}
  clientSecretFile: ${secretFile}
routes:
  - name: docs
    match: { pathPrefix: /docs }
    upstream: https://docs.internal
`;
    const c = parseConfigText(yaml, { AS_URL: 'https://as.example', CLIENT: 'agent' });
    expect(c.authorizationServer.tokenEndpoint).toBe('https://as.example/token');
    expect(() => parseConfigText(yaml, { AS_URL: 'https://as.example' })).toThrow(
      /authorizationServer\.clientId: environment variable CLIENT is not set/,
    );
  });

  it('an environment value cannot inject YAML structure', () => {
    const yaml = `authorizationServer:\n  tokenEndpoint: https://as/token\n  clientId: "\${CLIENT}"\n  clientSecretFile: ${secretFile}\nroutes:\n  - { name: a, match: { pathPrefix: /a }, upstream: "http://a" }\n`;
    const c = parseConfigText(yaml, { CLIENT: 'x\nroutes: []' });
    expect(c.authorizationServer.clientId).toBe('x\nroutes: []');
    expect(c.routes).toHaveLength(1);
  });

  it('reports YAML syntax errors and duplicate keys', () => {
    expect(() => parseConfigText('routes: [', {})).toThrow(ConfigError);
    expect(() => parseConfigText('a: 1\na: 2\n', {})).toThrow(/YAML/);
  });

  it('quotes a map key that is not a plain name in a problem path (found by the loader property test)', () => {
    // Was `authorizationServers. : Invalid key ...`: a key of spaces or dots made the path unreadable.
    expect(() => parseConfigText('authorizationServers:\n  " ": []\n', {})).toThrow(/authorizationServers\[" "\]: /);
  });

  it('reports a missing config file', () => {
    expect(() => loadConfigFile(join(dir, 'nope.yaml'), {})).toThrow(/cannot read config file/);
  });
});

describe('config: routes[].websocket', () => {
  const route = (websocket: unknown) => ({ ...minimal, routes: [{ ...minimal.routes[0], websocket }] });

  it('is enabled by default with no lifetime of its own', () => {
    expect(resolveConfig(minimal).routes[0]?.websocket).toEqual({ enabled: true });
  });

  it('takes false (and true) as shorthand', () => {
    expect(resolveConfig(route(false)).routes[0]?.websocket).toEqual({ enabled: false });
    expect(resolveConfig(route(true)).routes[0]?.websocket).toEqual({ enabled: true });
  });

  it('takes maxConnectionSeconds, 0 meaning no limit', () => {
    expect(resolveConfig(route({ maxConnectionSeconds: 0 })).routes[0]?.websocket).toEqual({
      enabled: true,
      maxConnectionSeconds: 0,
    });
    expect(resolveConfig(route({ enabled: false })).routes[0]?.websocket).toEqual({ enabled: false });
  });

  it('rejects negative or fractional lifetimes and unknown keys, naming the path', () => {
    expect(configProblems(route({ maxConnectionSeconds: -1 })).join('\n')).toMatch(/routes\[0\]\.websocket/);
    expect(configProblems(route({ maxConnectionSeconds: 1.5 }))).not.toEqual([]);
    expect(configProblems(route({ enabled: true, idleSeconds: 10 }))).not.toEqual([]);
    expect(configProblems(route('yes'))).not.toEqual([]);
  });
});
