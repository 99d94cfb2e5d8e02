import { PodMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { type Doc, isRecord, kindOf } from './deploy-files.js';

interface Validating {
  prototype: { validate(): void };
}

// Every kind that deploy/ may contain; anything else fails the test until it is added here.
const MODELS = new Map<string, Validating>([
  ['v1/ConfigMap', ConfigMap],
  ['v1/Secret', Secret],
  ['v1/Service', Service],
  ['v1/ServiceAccount', ServiceAccount],
  ['apps/v1/Deployment', Deployment],
  ['networking.k8s.io/v1/NetworkPolicy', NetworkPolicy],
  ['monitoring.coreos.com/v1/PodMonitor', PodMonitor],
  ['monitoring.coreos.com/v1/PrometheusRule', PrometheusRule],
]);

export interface SchemaReport {
  errors: string[];
  unknownFields: string[];
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params?: unknown;
}

/**
 * Validates a manifest with kubernetes-models' compiled JSON-schema validator and finds field names
 * the schema does not know. The validators ignore unknown properties, so the data is wrapped in a
 * Proxy that records which keys each object's validator looked up: a validator reads every property
 * its schema defines (present or not), so an own key it never read is not in the schema. Objects
 * whose validator read nothing (free-form maps, unknown subtrees) are not judged.
 * `partial` (strategic-merge patches) tolerates missing required fields.
 */
export function checkSchema(doc: Doc, options: { partial?: boolean } = {}): SchemaReport {
  const model = MODELS.get(kindOf(doc));
  if (!model) return { errors: [`no schema registered for ${kindOf(doc)}`], unknownFields: [] };

  const reads = new WeakMap<object, Set<string>>();
  const wrap = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object') return value;
    const seen = new Set<string>();
    reads.set(value, seen);
    return new Proxy(value, {
      get(target, key, receiver) {
        if (typeof key === 'string') seen.add(key);
        return wrap(Reflect.get(target, key, receiver));
      },
      has(target, key) {
        if (typeof key === 'string') seen.add(key);
        return Reflect.has(target, key);
      },
    });
  };

  const errors: string[] = [];
  try {
    model.prototype.validate.call(wrap(doc));
  } catch (err) {
    const list = isRecord(err) && Array.isArray(err.errors) ? (err.errors as AjvError[]) : undefined;
    if (!list) throw err;
    for (const e of list) {
      if (options.partial && e.keyword === 'required') continue;
      errors.push(`${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params ?? {})}`);
    }
  }

  const unknownFields: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(item, `${path}[${i}]`);
      return;
    }
    if (!isRecord(value)) return;
    const seen = reads.get(value);
    for (const [key, child] of Object.entries(value)) {
      if (seen && seen.size > 0 && !seen.has(key)) unknownFields.push(`${path}.${key}`);
      walk(child, `${path}.${key}`);
    }
  };
  walk(doc, '');
  return { errors, unknownFields };
}
