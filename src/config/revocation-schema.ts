import { z } from 'zod';

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' });

/** RFC 8936 poll delivery: the proxy asks the transmitter for events instead of being pushed them. */
const poll = z.strictObject({
  url: httpUrl,
  /** Pause between poll rounds while the transmitter has nothing more (errors back off from here). */
  intervalSeconds: z.number().int().min(1).max(3600).default(5),
  /** RFC 8936 §2.2 `maxEvents` asked for per round. */
  maxEvents: z.number().int().min(1).max(1000).default(100),
});

/** The Shared Signals (SSF 1.0 / CAEP 1.0) receiver (README "Revocation"). */
const ssf = z.strictObject({
  /** The transmitter's issuer: the `iss` every SET must carry. */
  issuer: httpUrl,
  /** Where the transmitter's signing keys are; default: discovered at /.well-known/ssf-configuration. */
  jwksUri: httpUrl.optional(),
  /** The `aud` every SET must carry. */
  audience: z.string().min(1),
  /** A file holding the exact `Authorization` value the transmitter sends (and that polling sends). */
  authorizationHeaderFile: z.string().min(1),
  /** SETs whose `iat` is older than this are refused (replay window; the jti cache covers it). */
  maxAgeSeconds: z.number().int().min(10).max(86_400).default(300),
  poll: poll.optional(),
});

/** Top-level `revocation` (README "Revocation"). Without it the admin endpoints answer 404. */
export const revocationSchema = z.strictObject({
  /** Bearer secret for `/revocations` on the admin listener (at least 32 characters). */
  adminTokenFile: z.string().min(1),
  /**
   * How long a revocation refuses user tokens issued before it: at least the longest lifetime of
   * a user token the authorization server issues. Default one day.
   */
  retainSeconds: z
    .number()
    .int()
    .min(60)
    .max(30 * 86_400)
    .default(86_400),
  /** Active revocations kept at most; past it new ones are refused (503), never silently dropped. */
  maxEntries: z.number().int().min(1).max(10_000_000).default(100_000),
  ssf: ssf.optional(),
});

export type RevocationConfig = z.output<typeof revocationSchema>;
export type SsfConfig = NonNullable<RevocationConfig['ssf']>;
