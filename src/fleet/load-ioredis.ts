import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as IORedis from 'ioredis';

/**
 * ioredis, loaded on first use. The build bundles it into one minified file next to this module
 * (`scripts/bundle-ioredis.mjs`): about 7 MB less resident memory per proxy than the package's own
 * modules (docs/fleet.md "Measured"). From the sources (tests) the package itself is loaded.
 */
export async function loadIoredis(): Promise<typeof IORedis.Redis> {
  const bundled = new URL('./ioredis.cjs', import.meta.url);
  if (existsSync(fileURLToPath(bundled))) {
    const mod = (await import(bundled.href)) as {
      Redis?: typeof IORedis.Redis;
      default?: { Redis: typeof IORedis.Redis };
    };
    const Redis = mod.Redis ?? mod.default?.Redis;
    if (Redis !== undefined) return Redis;
  }
  return (await import('ioredis')).Redis;
}
