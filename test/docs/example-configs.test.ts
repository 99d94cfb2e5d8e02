import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { configJsonSchema, JSON_SCHEMA_FILE } from '../../scripts/config-reference.js';
import { configSchema } from '../../src/config/schema.js';
import { type Doc, isRecord, listFiles, parseYamlDocs, ROOT, rel } from '../deploy/deploy-files.js';
import { jsonSchemaValidator, withoutRequired } from './config-schema-validator.js';

const MODELINE = /^# yaml-language-server: \$schema=(\S+)\n/;
const validate = jsonSchemaValidator(configJsonSchema());
const validateFragment = jsonSchemaValidator(withoutRequired(configJsonSchema()));

/** A delegate-proxy config is a mapping with routes or an authorization server (a ConfigMap is not). */
function isProxyConfig(doc: Doc): boolean {
  return doc.apiVersion === undefined && ('routes' in doc || 'authorizationServer' in doc);
}

/** Every YAML file of the repository outside node_modules, dist and dot-directories. */
function yamlFiles(): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(ROOT, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules' || entry.name.startsWith('dist')) continue;
    const path = join(ROOT, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path, ['.yaml', '.yml']));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out;
}

const files = yamlFiles().map((path) => ({ path, text: readFileSync(path, 'utf8') }));
const configFiles = files.filter((f) => parseYamlDocs(f.text, rel(f.path)).some(isProxyConfig));
/** Configs embedded in Kubernetes ConfigMaps (`data["config.yaml"]`): editors cannot see them, the test can. */
const embedded = files.flatMap((f) =>
  parseYamlDocs(f.text, rel(f.path)).flatMap((doc) => {
    const text = isRecord(doc.data) ? doc.data['config.yaml'] : undefined;
    return doc.kind === 'ConfigMap' && typeof text === 'string' ? [{ name: `${rel(f.path)} config.yaml`, text }] : [];
  }),
);

function parseOne(text: string): unknown {
  const [doc, ...more] = parseAllDocuments(text, { uniqueKeys: true });
  if (doc === undefined || more.length > 0 || !('errors' in doc) || doc.errors.length > 0) {
    throw new Error('not a single YAML document');
  }
  return doc.toJS();
}

describe('example config files', () => {
  it('are found (deploy/docker and the Kubernetes ConfigMaps at least)', () => {
    expect(configFiles.map((f) => rel(f.path))).toContain('deploy/docker/config.yaml');
    expect(embedded.length).toBeGreaterThanOrEqual(2);
  });

  it.each(configFiles.map((f) => [rel(f.path), f] as const))(
    '%s names the JSON Schema on its first line',
    (_name, f) => {
      const schemaPath = MODELINE.exec(f.text)?.[1];
      expect(schemaPath, 'first line: # yaml-language-server: $schema=<relative path>').toBeDefined();
      expect(resolve(dirname(f.path), schemaPath ?? '')).toBe(join(ROOT, JSON_SCHEMA_FILE));
    },
  );

  it.each([
    ...configFiles.map((f) => [rel(f.path), f.text] as const),
    ...embedded.map((e) => [e.name, e.text] as const),
  ])('%s is valid against the JSON Schema and the proxy schema', (_name, text) => {
    const config = parseOne(text);
    expect(validate(config)).toEqual([]);
    const zod = configSchema.safeParse(config);
    expect(zod.success ? [] : zod.error.issues).toEqual([]);
  });

  it('the validator refuses an invalid config (so the passes above mean something)', () => {
    const f = configFiles[0];
    if (f === undefined) throw new Error('no config file found');
    const config = parseOne(f.text) as Doc;
    expect(validate({ ...config, listen: 8080, extra: true })).toEqual([
      '(root): must NOT have additional properties',
      '/listen: must be string',
    ]);
  });
});

/** The ```yaml blocks of the docs: fragments of a config, so only `required` is not checked. */
const DOC_PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const blocks = DOC_PAGES.flatMap((page) => {
  const text = readFileSync(join(ROOT, page), 'utf8');
  return [...text.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => {
    const line = text.slice(0, m.index).split('\n').length;
    return [`${page}:${line}`, m[1] ?? ''] as const;
  });
});

describe('config examples in the docs', () => {
  it('are found', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  it.each(blocks)('%s matches the JSON Schema', (_where, text) => {
    // ${VAR} is replaced at load; an editor sees the raw text, a URL with ${POD_IP} included.
    const config = parseOne(text.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*\}/g, 'placeholder'));
    expect(validateFragment(config)).toEqual([]);
  });
});

it('the JSON Schema file exists', () => {
  expect(existsSync(join(ROOT, JSON_SCHEMA_FILE))).toBe(true);
});
