import * as z from 'zod';

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' });

const poll = z
  .strictObject({
    url: httpUrl.describe("The transmitter's poll endpoint."),
    intervalSeconds: z
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(5)
      .describe('Pause between poll rounds while the transmitter has nothing more; errors back off from here.'),
    maxEvents: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(100)
      .describe('The `maxEvents` asked for per round (RFC 8936 §2.2).'),
  })
  .describe('Poll delivery (RFC 8936): the proxy asks the transmitter for events instead of being pushed them.');

const ssf = z
  .strictObject({
    issuer: httpUrl.describe("The transmitter's issuer: the `iss` every SET must carry."),
    jwksUri: httpUrl
      .optional()
      .describe(
        "Where the transmitter's signing keys are. Unset: the `jwks_uri` of its `/.well-known/ssf-configuration`.",
      ),
    audience: z.string().min(1).describe('The `aud` every SET must carry.'),
    authorizationHeaderFile: z
      .string()
      .min(1)
      .describe('File holding the exact `Authorization` value the transmitter sends (and that polling sends).'),
    maxAgeSeconds: z
      .number()
      .int()
      .min(10)
      .max(86_400)
      .default(300)
      .describe(
        'SETs whose `iat` is older than this are refused (the replay window; a repeated `jti` is refused within it).',
      ),
    poll: poll.optional(),
  })
  .describe('The OpenID Shared Signals (SSF 1.0, CAEP 1.0) receiver: push (RFC 8935) at `POST /ssf/events`, or poll.');

/** Without it the admin endpoints answer 404. */
export const revocationSchema = z
  .strictObject({
    adminTokenFile: z
      .string()
      .min(1)
      .describe('File holding the bearer secret (at least 32 characters) for `/revocations` on the admin listener.'),
    retainSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 86_400)
      .default(86_400)
      .describe(
        'How long a revocation refuses user tokens issued before it: at least the longest lifetime of a user token the authorization server issues.',
      ),
    maxEntries: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .default(100_000)
      .describe('Active revocations kept at most; past it new ones are refused (503), never silently dropped.'),
    ssf: ssf.optional(),
  })
  .describe(
    "Revocation of a user's delegated tokens by the admin API and Shared Signals events (see [Revocation](revocation.md)). Unset: the endpoints answer 404.",
  );

export type RevocationConfig = z.output<typeof revocationSchema>;
export type SsfConfig = NonNullable<RevocationConfig['ssf']>;
