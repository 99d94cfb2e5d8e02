import * as z from 'zod';

/**
 * `redis://` or `rediss://` (TLS), one endpoint: a standalone server, a managed primary endpoint or
 * a proxy in front of Sentinel/Cluster (docs/fleet.md). A password in the URL is refused: credentials
 * come from `passwordFile` only, so the URL can be logged and shown.
 */
const redisUrl = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL' });
      return;
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL' });
      return;
    }
    if (url.password !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not hold a password: use passwordFile' });
    }
    if (url.hostname === '') ctx.addIssue({ code: 'custom', message: 'must name a host' });
    if (url.search !== '' || url.hash !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not have a query or fragment' });
    }
    const db = url.pathname.replace(/^\//, '');
    if (db !== '' && !/^\d{1,2}$/.test(db)) {
      ctx.addIssue({ code: 'custom', message: 'the path may only be a database number (e.g. /0)' });
    }
  })
  .describe(
    'The Redis (or Valkey) server: redis://host:6379 or rediss://host:6380 (TLS); a user name may be given (redis://user@host), a password may not (passwordFile).',
  );

const redis = z
  .strictObject({
    url: redisUrl,
    passwordFile: z
      .string()
      .min(1)
      .optional()
      .describe('A file holding the Redis password (AUTH); read at start, never logged.'),
    tls: z
      .strictObject({
        caFile: z
          .string()
          .min(1)
          .optional()
          .describe("A PEM file of the CA that signed the server's certificate; default: the system's CAs."),
      })
      .optional()
      .describe('TLS settings; needs a rediss:// URL.'),
    keyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - only (at most 64)')
      .default('delegate-proxy:')
      .describe(
        'Prefix of every key and channel this fleet uses; proxies sharing one prefix are one fleet (one per deployment).',
      ),
  })
  .superRefine((r, ctx) => {
    if (r.tls !== undefined && !r.url.startsWith('rediss://')) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'needs a rediss:// url' });
    }
  })
  .describe('Where the fleet state lives.');

/** Top-level `fleet` (docs/fleet.md): revocations and approvals shared by every proxy through Redis. */
export const fleetSchema = z
  .strictObject({
    redis,
    syncTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(2_000)
      .describe(
        'How long a proxy waits for Redis: to store and publish a revocation before answering (else it is queued and answered), and at start for the revocation list before the first readiness check.',
      ),
  })
  .describe(
    'Fleet mode: revocations and step-up approvals reach every proxy through Redis, and survive restarts (docs/fleet.md). Without it each proxy keeps its own.',
  );

export type FleetConfig = z.output<typeof fleetSchema>;
