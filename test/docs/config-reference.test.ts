import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONFIGURATION_PAGE,
  configJsonSchema,
  configJsonSchemaText,
  configReferenceMarkdown,
  JSON_SCHEMA_FILE,
  type JsonSchema,
} from '../../scripts/config-reference.js';
import { configSchema } from '../../src/config/schema.js';
import { ROOT } from '../deploy/deploy-files.js';
import { jsonSchemaValidator } from './config-schema-validator.js';

const STALE = 'is stale: run `npm run docs` and commit the result';

/** Every property schema of the config, with its path. */
function properties(schema: JsonSchema, path = ''): { path: string; schema: JsonSchema }[] {
  const out: { path: string; schema: JsonSchema }[] = [];
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const at = path === '' ? key : `${path}.${key}`;
    out.push({ path: at, schema: prop });
    out.push(...properties(prop, at));
    for (const branch of prop.anyOf ?? []) out.push(...properties(branch, at));
    if (prop.items !== undefined) out.push(...properties(prop.items, `${at}[]`));
    if (typeof prop.additionalProperties === 'object') {
      out.push(...properties(prop.additionalProperties, `${at}.<name>`));
    }
  }
  return out;
}

describe('the generated configuration reference', () => {
  it(`${CONFIGURATION_PAGE} is what \`npm run docs\` writes`, () => {
    const committed = readFileSync(join(ROOT, CONFIGURATION_PAGE), 'utf8');
    expect(committed, `${CONFIGURATION_PAGE} ${STALE}`).toBe(configReferenceMarkdown());
  });

  it(`${JSON_SCHEMA_FILE} is what \`npm run docs\` writes`, () => {
    const committed = readFileSync(join(ROOT, JSON_SCHEMA_FILE), 'utf8');
    expect(committed, `${JSON_SCHEMA_FILE} ${STALE}`).toBe(configJsonSchemaText());
  });

  it('every config key has a description (add `.describe(...)` to the zod schema)', () => {
    const all = properties(configJsonSchema());
    expect(all.length).toBeGreaterThan(100);
    expect(all.filter((p) => !p.schema.description).map((p) => p.path)).toEqual([]);
  });

  it('documents every key with its type, default and constraints', () => {
    const page = configReferenceMarkdown();
    expect(page).toContain(
      '| `timeoutMs` | integer | `3000` | 1 to 60000 | restart | Time limit of one HTTP request to the authorization server',
    );
    expect(page).toContain('| `routes` | list of [object](#routes) | **required** | at least 1 item | live |');
    expect(page).toContain('| `authorizationServers` | map of [object](#authorizationserver) |');
    expect(page).toContain('| `websocket` | boolean or [object](#routeswebsocket) | `{ enabled: true }` |');
    for (const { path } of properties(configJsonSchema())) {
      const key = path.split('.').pop()?.replace('[]', '') ?? '';
      expect(page, path).toContain(`| \`${key}\` |`);
    }
  });

  it('the JSON Schema accepts what the zod schema accepts, and refuses what it refuses', () => {
    const validate = jsonSchemaValidator(configJsonSchema());
    const ok = {
      authorizationServer: { issuer: 'https://as.example', clientId: 'c', clientSecretFile: '/s' },
      subjectToken: { header: 'X-User-Token', type: 'URN:ietf:params:oauth:token-type:jwt' },
      routes: [
        {
          name: 'a',
          match: { host: 'Docs.Example' },
          upstream: 'http://127.0.0.1:1',
          websocket: false,
          stepUp: { scopes: ['x:write'], rules: [{ method: 'delete', pathPrefix: '/a' }] },
        },
      ],
      stepUp: { approval: { webhookUrl: 'https://hook.example/' } },
    };
    expect(configSchema.safeParse(ok).success).toBe(true);
    expect(validate(ok)).toEqual([]);

    const bad = { ...ok, listen: 'nowhere', routes: [{ ...ok.routes[0], stripPrefx: true, timeoutMs: 0 }] };
    expect(configSchema.safeParse(bad).success).toBe(false);
    expect(validate(bad)).toEqual([
      '/listen: must match pattern "^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):\\d{1,5}$"',
      '/routes/0: must NOT have additional properties',
      '/routes/0/timeoutMs: must be >= 1',
    ]);
  });
});
