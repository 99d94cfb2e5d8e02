import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type * as z from 'zod';
import { ConfigError } from '../errors.js';
import { type Config, configSchema } from './schema.js';
import { checkCallbackSecret } from './secret-checks.js';
import { parseSigningKey } from './signing-key.js';

/** A validated config plus the secrets it names, read from their files. Frozen. */
export interface ResolvedConfig extends Config {
  readonly secrets: {
    readonly clientSecret?: string;
    /** PEM or JWK text of the private_key_jwt signing key. */
    readonly privateKey?: string;
    /** stepUp.approval.callbackSecretFile: authenticates approval callbacks and the approval page. */
    readonly stepUpCallbackSecret?: string;
    /** revocation.adminTokenFile: bearer secret for /revocations. */
    readonly revocationAdminToken?: string;
    /** revocation.ssf.authorizationHeaderFile: the exact Authorization value of the SSF transmitter. */
    readonly ssfAuthorization?: string;
    /** fleet.redis.passwordFile: the Redis AUTH password. */
    readonly fleetRedisPassword?: string;
    /** fleet.redis.tls.caFile: PEM text of the CA that signs the Redis server's certificate. */
    readonly fleetRedisCa?: string;
    /** Client secret / private key of each of authorizationServers, by name. */
    readonly servers?: Readonly<Record<string, ServerSecrets>>;
  };
}

export interface ServerSecrets {
  readonly clientSecret?: string;
  readonly privateKey?: string;
}

type ServerFileConfig = Pick<Config['authorizationServer'], 'clientAuth' | 'clientSecretFile' | 'privateKeyFile'>;

/** Reads the client secret or private key an authorization server's clientAuth needs. */
function readServerSecrets(
  as: ServerFileConfig,
  path: string,
  problems: string[],
): { clientSecret?: string; privateKey?: string } {
  const out: { clientSecret?: string; privateKey?: string } = {};
  if (as.clientSecretFile && (as.clientAuth === 'client_secret_basic' || as.clientAuth === 'client_secret_post')) {
    const s = readSecret(as.clientSecretFile, `${path}.clientSecretFile`, problems);
    if (s !== undefined) out.clientSecret = s;
  }
  if (as.privateKeyFile && as.clientAuth === 'private_key_jwt') {
    const s = readSecret(as.privateKeyFile, `${path}.privateKeyFile`, problems);
    if (s !== undefined && s !== '') {
      try {
        parseSigningKey(s);
        out.privateKey = s;
      } catch (err) {
        problems.push(`${path}.privateKeyFile: ${as.privateKeyFile}: ${(err as Error).message}`);
      }
    }
  }
  return out;
}

const PLAIN_KEY = /^[A-Za-z0-9_$-]+$/;

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Formats a path as `routes[0].match.pathPrefix`. A key that is not a plain name (a user-chosen map
 * key with spaces, dots or a colon) is quoted, `authorizationServers[" "]`, so the path cannot be
 * misread.
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (!PLAIN_KEY.test(String(p))) out += `[${JSON.stringify(String(p))}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces `${VAR}` in string values (never in keys, and after YAML parsing so a value cannot
 * inject YAML structure). Unset variables are reported with their path.
 */
function substitute(
  value: unknown,
  env: Env,
  path: PropertyKey[],
  problems: string[],
  open = new Set<object>(),
): unknown {
  if (typeof value === 'string') {
    return value.replace(VAR, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
        return '';
      }
      return v;
    });
  }
  if (value === null || typeof value !== 'object') return value;
  // A YAML alias may refer to its own ancestor (`a: &x [*x]`): a cycle, reported instead of recursing forever.
  if (open.has(value)) {
    problems.push(`${formatPath(path)}: a YAML alias refers to an enclosing node`);
    return null;
  }
  open.add(value);
  try {
    if (Array.isArray(value)) return value.map((v, i) => substitute(v, env, [...path, i], problems, open));
    // A null-prototype object, so a key named `__proto__` stays a key (then refused as unknown).
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, v] of Object.entries(value)) out[k] = substitute(v, env, [...path, k], problems, open);
    return out;
  } finally {
    open.delete(value);
  }
}

function issueMessages(error: z.ZodError): string[] {
  return error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
}

function readSecret(file: string, path: string, problems: string[]): string | undefined {
  try {
    const text = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    if (text === '') problems.push(`${path}: file ${file} is empty`);
    return text;
  } catch (err) {
    problems.push(`${path}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}

/** Validates an already-parsed config object; throws ConfigError listing every problem. */
export function resolveConfig(raw: unknown, env: Env = {}): ResolvedConfig {
  const problems: string[] = [];
  const substituted = substitute(raw ?? {}, env, [], problems);
  const parsed = configSchema.safeParse(substituted);
  if (!parsed.success) problems.push(...issueMessages(parsed.error));
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);

  const cfg = parsed.data;
  const as = cfg.authorizationServer;
  const servers: Record<string, ServerSecrets> = Object.create(null);
  for (const [name, server] of Object.entries(cfg.authorizationServers)) {
    servers[name] = readServerSecrets(server, `authorizationServers.${name}`, problems);
  }
  const secrets: {
    clientSecret?: string;
    privateKey?: string;
    stepUpCallbackSecret?: string;
    revocationAdminToken?: string;
    ssfAuthorization?: string;
    fleetRedisPassword?: string;
    fleetRedisCa?: string;
    servers: Record<string, ServerSecrets>;
  } = { ...readServerSecrets(as, 'authorizationServer', problems), servers };
  const stepUpSecretFile = cfg.stepUp?.approval.callbackSecretFile;
  if (stepUpSecretFile) {
    const s = readSecret(stepUpSecretFile, 'stepUp.approval.callbackSecretFile', problems);
    if (s !== undefined && s !== '') {
      const problem = checkCallbackSecret(s);
      if (problem) problems.push(`stepUp.approval.callbackSecretFile: ${problem}`);
      else secrets.stepUpCallbackSecret = s;
    }
  }
  if (cfg.revocation) {
    const admin = readSecret(cfg.revocation.adminTokenFile, 'revocation.adminTokenFile', problems);
    if (admin !== undefined && admin !== '') {
      const problem = checkCallbackSecret(admin);
      if (problem) problems.push(`revocation.adminTokenFile: ${problem}`);
      else secrets.revocationAdminToken = admin;
    }
    const ssfFile = cfg.revocation.ssf?.authorizationHeaderFile;
    const auth =
      ssfFile === undefined ? undefined : readSecret(ssfFile, 'revocation.ssf.authorizationHeaderFile', problems);
    if (auth !== undefined && auth !== '') secrets.ssfAuthorization = auth;
  }
  if (cfg.fleet) {
    const { passwordFile, tls } = cfg.fleet.redis;
    const password =
      passwordFile === undefined ? undefined : readSecret(passwordFile, 'fleet.redis.passwordFile', problems);
    if (password !== undefined && password !== '') secrets.fleetRedisPassword = password;
    const ca = tls?.caFile === undefined ? undefined : readSecret(tls.caFile, 'fleet.redis.tls.caFile', problems);
    if (ca !== undefined && ca !== '') {
      if (ca.includes('-----BEGIN CERTIFICATE-----')) secrets.fleetRedisCa = ca;
      else problems.push(`fleet.redis.tls.caFile: ${tls?.caFile} holds no PEM certificate`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({ ...cfg, secrets });
}

/** Reads, parses and validates a YAML config file. */
export function loadConfigFile(file: string, env: Env): ResolvedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read config file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  return parseConfigText(text, env);
}

export function parseConfigText(text: string, env: Env): ResolvedConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // e.g. excessive alias expansion (a resource-exhaustion guard of the yaml package).
    throw new ConfigError([`YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  return resolveConfig(raw, env);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
