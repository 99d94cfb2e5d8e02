import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'dp-cli-'));
writeFileSync(join(dir, 'secret'), 'x');

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('delegate-proxy CLI', () => {
  it('--check-config accepts a valid file and exits 0', async () => {
    const cfg = file(
      'ok.yaml',
      `authorizationServer:\n  tokenEndpoint: https://as.example/token\n  clientId: agent\n  clientSecretFile: ${join(dir, 'secret')}\nroutes:\n  - name: docs\n    match: { pathPrefix: /docs }\n    upstream: https://docs.internal\n    scopes: [documents:read]\n`,
    );
    const r = await runCli(['--check-config', '--config', cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('configuration OK (1 route)');
  });

  it('--check-config lists every problem with its path and exits 1', async () => {
    const cfg = file(
      'bad.yaml',
      'listen: nowhere\nauthorizationServer:\n  clientId: agent\nroutes:\n  - name: BAD\n    match: {}\n    upstream: ftp://x\n',
    );
    const r = await runCli(['--check-config', '--config', cfg]);
    expect(r.code).toBe(1);
    for (const p of [
      'listen:',
      'authorizationServer.tokenEndpoint:',
      'authorizationServer.clientSecretFile:',
      'routes[0].name:',
      'routes[0].match:',
      'routes[0].upstream:',
    ]) {
      expect(r.stderr).toContain(p);
    }
  });

  it('--check-config reports malformed URLs with their paths next to the other problems', async () => {
    const cfg = file(
      'bad-urls.yaml',
      [
        'authorizationServer:',
        '  issuer: not a url',
        '  tokenEndpoint: "http://["',
        '  clientId: agent',
        `  clientSecretFile: ${join(dir, 'secret')}`,
        'subjectToken:',
        '  verify: { jwksUri: "::", issuer: x, audience: y }',
        'stepUp:',
        `  approval: { webhookUrl: nope, callbackBaseUrl: "http//x", callbackSecretFile: ${join(dir, 'secret')} }`,
        'routes:',
        '  - name: BAD',
        '    match: { pathPrefix: /docs }',
        '    upstream: not-a-url',
        '    scopse: [x]',
        '    resource: "::"',
        '',
      ].join('\n'),
    );
    const r = await runCli(['--check-config', '--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('TypeError');
    expect(r.stderr).not.toMatch(/^\s+at /m);
    for (const p of [
      'authorizationServer.issuer:',
      'authorizationServer.tokenEndpoint:',
      'subjectToken.verify.jwksUri:',
      'stepUp.approval.webhookUrl:',
      'stepUp.approval.callbackBaseUrl:',
      'routes[0].upstream:',
      'routes[0].resource:',
      'routes[0].name:',
      'routes[0]: Unrecognized key: "scopse"',
    ]) {
      expect(r.stderr).toContain(p);
    }
  });

  it('takes the config path from DELEGATE_PROXY_CONFIG', async () => {
    const r = await runCli(['--check-config'], { DELEGATE_PROXY_CONFIG: join(dir, 'missing.yaml') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read config file ${join(dir, 'missing.yaml')}`);
  });

  it('refuses to start with an invalid config', async () => {
    const cfg = file('bad2.yaml', 'routes: []\n');
    const r = await runCli(['--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('routes: at least one route is required');
  });

  it('--version, --help and unknown flags', async () => {
    const v = await runCli(['--version']);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const h = await runCli(['--help']);
    expect(h.stdout).toContain('--check-config');
    const u = await runCli(['--nope']);
    expect(u.code).toBe(2);
  });
});
