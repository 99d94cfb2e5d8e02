import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { CacheSettings } from '../auth/token-service.js';
import { type Env, formatPath, parseConfigText, type ResolvedConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { HostAllowList } from '../routing/allowed-hosts.js';
import { RouteTable } from '../routing/route-table.js';
import type { ShutdownSettings } from './shutdown.js';

/**
 * What a request reads through `runtime()`: swapped as one object on reload, so a request sees
 * either the old or the new config, never a mix.
 */
export interface ProxyRuntime {
  readonly config: ResolvedConfig;
  readonly routes: RouteTable;
  /** The host names the agent listener serves (DNS-rebinding protection, docs/security.md). */
  readonly hosts: HostAllowList;
  readonly subjectHeader: string;
  readonly subjectTokenType: string;
  readonly cache: CacheSettings;
  readonly shutdown: ShutdownSettings;
}

/**
 * Config paths a reload applies without a restart. Anything else that changes (listeners, the
 * authorization server and its secrets, actor token, subject verification, cache size and skew,
 * pretty logs) is reported as needing a restart and keeps its running value.
 */
export const LIVE_PATHS: readonly string[] = [
  'routes',
  'allowedHosts',
  'subjectToken.header',
  'subjectToken.type',
  'cache.refreshAheadSeconds',
  'cache.maxTtlSeconds',
  'cache.invalidGrantMemorySeconds',
  'logging.level',
  'shutdown',
  'stripHeaders',
  'stripCookies',
];

/** Builds the runtime from `config`; values that need a restart are taken from `running`. */
export function createRuntime(config: ResolvedConfig, running: ResolvedConfig = config): ProxyRuntime {
  const routes = new RouteTable(config.routes);
  return Object.freeze({
    config,
    routes,
    hosts: new HostAllowList(config.allowedHosts ?? [], hostsOf(routes)),
    subjectHeader: config.subjectToken.header,
    subjectTokenType: config.subjectToken.type,
    cache: Object.freeze({
      ...config.cache,
      // The LRU bound and the cache's skew are fixed when the cache is built.
      maxEntries: running.cache.maxEntries,
      clockSkewSeconds: running.cache.clockSkewSeconds,
    }),
    shutdown: config.shutdown,
  });
}

/** A host route's host is a name the listener serves. */
function hostsOf(routes: RouteTable): string[] {
  return routes.routes.flatMap((r) => (r.host === undefined ? [] : [r.host]));
}

/** Leaf paths (as `routes[0].scopes`) whose values differ; arrays compare element-wise. */
export function diffPaths(a: unknown, b: unknown, path: PropertyKey[] = [], out: string[] = []): string[] {
  if (Object.is(a, b)) return out;
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
  if (!isObj(a) || !isObj(b) || Array.isArray(a) !== Array.isArray(b)) {
    out.push(formatPath(path));
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length !== b.length && a.some((v) => !isObj(v))) {
    // A list of scalars (scopes) that grew or shrank: report the list, not each shifted index.
    out.push(formatPath(path));
    return out;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) diffPaths(a[k], b[k], [...path, Array.isArray(a) ? Number(k) : k], out);
  return out;
}

function isLive(path: string): boolean {
  return LIVE_PATHS.some((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`));
}

export type ReloadTrigger = 'SIGHUP' | 'file_change' | 'api';

export type ReloadResult =
  | {
      readonly ok: true;
      readonly trigger: ReloadTrigger;
      readonly applied: string[];
      readonly restartRequired: string[];
    }
  | { readonly ok: false; readonly trigger: ReloadTrigger; readonly problems: readonly string[] };

export interface ConfigReloaderOptions {
  readonly file: string;
  readonly env: Env;
  readonly logger: Logger;
  /** The config the process started with (listeners, AS client and cache are built from it). */
  readonly running: ResolvedConfig;
  /** Swaps the live part of the config in (the proxy's `applyConfig`). */
  readonly apply: (next: ResolvedConfig) => void;
  /** Applies `logging.level`; omit when the level is pinned (DELEGATE_PROXY_LOG_LEVEL). */
  readonly setLogLevel?: (level: string) => void;
  /** Reload when the file (or a ConfigMap's symlinked data) changes. Default true. */
  readonly watch?: boolean;
  /** Quiet time after a file event before reading it (editors and ConfigMaps write in steps). */
  readonly debounceMs?: number;
  /** Called after every reload attempt (tests wait on it). */
  readonly onResult?: (result: ReloadResult) => void;
}

export interface ConfigReloader {
  /** Reads, validates and applies the file now. Never throws: an invalid file keeps the old config. */
  reload(trigger: ReloadTrigger): ReloadResult;
  close(): void;
}

const MAX_LOGGED_PATHS = 50;

/**
 * Config reload on SIGHUP and on file change (docs/operations.md). The new file is validated in
 * full first; on any problem every problem is logged and the running config stays. Only the paths
 * in LIVE_PATHS are applied; other changes are logged as needing a restart.
 */
export function createConfigReloader(options: ConfigReloaderOptions): ConfigReloader {
  const { file, logger } = options;
  let last: ResolvedConfig = options.running;
  let lastHash = hashOf(readText(file));
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;

  const finish = (result: ReloadResult): ReloadResult => {
    options.onResult?.(result);
    return result;
  };

  const reload = (trigger: ReloadTrigger): ReloadResult => {
    const text = readText(file);
    lastHash = hashOf(text);
    let next: ResolvedConfig;
    try {
      if (text === undefined) throw new ConfigError([`cannot read config file ${file}`]);
      next = parseConfigText(text, options.env);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [String(err)];
      logger.error(
        { trigger, file, problems },
        `config reload rejected, keeping the running config: ${problems.join('; ')}`,
      );
      return finish({ ok: false, trigger, problems });
    }
    const changed = diffPaths(last, next);
    const applied = changed.filter(isLive);
    const restartRequired = diffPaths(options.running, next).filter((p) => !isLive(p));
    options.apply(next);
    if (options.setLogLevel && next.logging.level !== last.logging.level) options.setLogLevel(next.logging.level);
    last = next;
    if (applied.length === 0 && restartRequired.length === 0) {
      logger.info({ trigger, file }, 'config reloaded: no change');
    } else if (applied.length > 0) {
      logger.info(
        { trigger, file, applied: applied.slice(0, MAX_LOGGED_PATHS), routes: next.routes.map((r) => r.name) },
        'config reloaded',
      );
    }
    if (restartRequired.length > 0) {
      const listeners = restartRequired.filter((p) => p === 'listen' || p === 'admin');
      logger.warn(
        { trigger, file, restartRequired: restartRequired.slice(0, MAX_LOGGED_PATHS) },
        listeners.length > 0
          ? `listener address change (${listeners.join(', ')}) requires a restart; other live changes were applied`
          : 'some config changes require a restart to take effect; live changes were applied',
      );
    }
    return finish({ ok: true, trigger, applied, restartRequired });
  };

  if (options.watch !== false) {
    // Watch the directory, not the file: editors and Kubernetes ConfigMaps replace the file (rename
    // or `..data` symlink swap), which a watch on the old inode would never see.
    const name = basename(file);
    try {
      watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        if (changed !== null && changed !== name && !changed.startsWith('..')) return;
        clearTimeout(timer);
        timer = setTimeout(() => {
          // Rewrites with the same bytes (and unrelated events) are not reloads.
          if (hashOf(readText(file)) !== lastHash) reload('file_change');
        }, options.debounceMs ?? 200);
        timer.unref();
      });
      watcher.on('error', (err) => logger.warn({ err, file }, 'config file watch failed; reload with SIGHUP'));
    } catch (err) {
      logger.warn({ err, file }, 'cannot watch the config file; reload with SIGHUP');
    }
  }

  return {
    reload,
    close() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function hashOf(text: string | undefined): string {
  return text === undefined ? '' : createHash('sha256').update(text).digest('hex');
}
