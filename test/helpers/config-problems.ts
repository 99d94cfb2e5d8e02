import { resolveConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

/** The problems a config load reports (ConfigError), or [] when it loads; any other error is thrown. */
export function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

/** The problems of a raw config (as in YAML), through the real validation. */
export function configProblems(raw: unknown, env: Record<string, string> = {}): string[] {
  return problemsOf(() => resolveConfig(raw, env));
}
