import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { requireFile } from '../helpers/require-tool.js';
import { at, DEPLOY, type Doc, isRecord, loadYamlDocs, ROOT } from './deploy-files.js';

// Runs the CLI as users do (bin -> dist), so it imports nothing from src/. dist/ is built by
// `npm run build`, which `npm ci` runs through `prepare`.
const BIN = join(ROOT, 'bin/delegate-proxy.js');
const built = requireFile(join(ROOT, 'dist/main.js'), 'npm run build (npm ci runs it through prepare)');

const CONFIGS: [string, () => string][] = [
  ['kubernetes/base ConfigMap', () => fromConfigMap('kubernetes/base/configmap.yaml')],
  ['kubernetes/overlays/mcp ConfigMap', () => fromConfigMap('kubernetes/overlays/mcp/configmap.yaml')],
  ['kubernetes/overlays/fleet ConfigMap', () => fromConfigMap('kubernetes/overlays/fleet/configmap.yaml')],
  [
    'kubernetes/overlays/fleet-trial-redis ConfigMap',
    () => fromConfigMap('kubernetes/overlays/fleet-trial-redis/configmap.yaml'),
  ],
  ['docker/config.yaml', () => readFileSync(join(DEPLOY, 'docker/config.yaml'), 'utf8')],
];

function fromConfigMap(file: string): string {
  const [configMap] = loadYamlDocs(join(DEPLOY, file));
  return String(at(configMap, 'data', 'config.yaml'));
}

describe.skipIf(!built)('delegate-proxy --check-config on the shipped configs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'delegate-proxy-check-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The mounted files (client secret, actor token) exist in a pod; here they are temp files. */
  function withLocalFiles(text: string): string {
    const config = parse(text) as Doc;
    const as = at(config, 'authorizationServer');
    if (isRecord(as) && typeof as.clientSecretFile === 'string') {
      const secret = join(dir, 'client-secret');
      writeFileSync(secret, 'test-secret\n');
      as.clientSecretFile = secret;
    }
    if (isRecord(config.actorToken) && typeof config.actorToken.file === 'string') {
      const token = join(dir, 'agent-token');
      writeFileSync(token, 'header.payload.signature\n');
      config.actorToken.file = token;
    }
    // Fleet overlay: the files its revocation, stepUp and fleet blocks name.
    const file = (name: string, text: string): string => {
      const path = join(dir, name);
      writeFileSync(path, `${text}\n`);
      return path;
    };
    const revocation = config.revocation;
    if (isRecord(revocation)) {
      revocation.adminTokenFile = file('admin-token', 'a'.repeat(40));
      if (isRecord(revocation.ssf)) revocation.ssf.authorizationHeaderFile = file('ssf-authorization', 'Bearer x');
    }
    const approval = isRecord(config.stepUp) ? config.stepUp.approval : undefined;
    if (isRecord(approval)) approval.callbackSecretFile = file('step-up-secret', 's'.repeat(40));
    const redis = isRecord(config.fleet) ? config.fleet.redis : undefined;
    if (isRecord(redis) && typeof redis.passwordFile === 'string')
      redis.passwordFile = file('redis-password', 'redis-pass');
    return stringify(config);
  }

  function check(name: string, text: string): { code: number | null; output: string } {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
    writeFileSync(file, text);
    const res = spawnSync(process.execPath, [BIN, '--check-config', '--config', file], {
      encoding: 'utf8',
      timeout: 15_000,
      env: { ...process.env, DELEGATE_PROXY_CONFIG: '' },
    });
    return { code: res.status, output: `${res.stdout}${res.stderr}` };
  }

  it.each(CONFIGS)('%s passes', (name, load) => {
    const res = check(name, withLocalFiles(load()));
    expect(res.output).toContain('configuration OK');
    expect(res.code, res.output).toBe(0);
  });

  it('fails, naming the path, when the config has an unknown key (so the passes above mean something)', () => {
    const config = parse(withLocalFiles(fromConfigMap('kubernetes/base/configmap.yaml'))) as Doc;
    const [route] = at(config, 'routes') as Doc[];
    if (route) route.stripPrefx = true;
    const res = check('broken', stringify(config));
    expect(res.code).toBe(1);
    expect(res.output).toMatch(/routes\.0|routes\[0\]/);
  });
});
