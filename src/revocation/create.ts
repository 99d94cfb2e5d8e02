import { hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { TokenService } from '../auth/token-service.js';
import type { ResolvedConfig } from '../config/load.js';
import type { Fleet } from '../fleet/fleet.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import { realTimer, type Timer } from '../pipeline/timer.js';
import { createRevocationAdmin } from './admin-routes.js';
import { RevocationFleet } from './fleet-sync.js';
import { PollClient } from './poll-client.js';
import { SsfReceiver } from './receiver.js';
import { RevocationList } from './revocation-list.js';
import { type OpenStreamsOfUsers, Revoker } from './revoker.js';
import { createSetVerifier } from './set-verifier.js';
import { discoverSsfJwksUri } from './ssf-discovery.js';

export interface RevocationWiring {
  /** Pipeline step 3: refuses revoked users' old tokens. Undefined without `revocation`. */
  readonly revoker: Revoker | undefined;
  readonly receiver: SsfReceiver | undefined;
  readonly poller: PollClient | undefined;
  /** Fleet mode (docs/fleet.md): undefined without `fleet` or without `revocation`. */
  readonly fleet: RevocationFleet | undefined;
  /** `/revocations` and `/ssf/events` on the admin listener (404 when not configured). */
  readonly admin: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Starts polling (RFC 8936) when configured. */
  start(): void;
  close(): void;
}

export interface RevocationWiringDeps {
  readonly tokens: TokenService;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** For the transmitter's JWKS, discovery and polling (the injected undici dispatcher). */
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Schedules poll rounds (tests run them by hand). */
  readonly timer?: Timer | undefined;
  /** Open long-lived responses, closed by every accepted event (docs/revocation.md "Open streams"). */
  readonly streams?: OpenStreamsOfUsers | undefined;
  /** Fleet mode: the link to the other proxies (docs/fleet.md). */
  readonly fleet?: Fleet | undefined;
}

/** Builds revocation from the top-level `revocation` settings (fixed until restart). */
/** The part of the config revocation reads: its own block and its secrets. */
export type RevocationConfigSlice = Pick<ResolvedConfig, 'revocation'> & {
  readonly secrets: Pick<ResolvedConfig['secrets'], 'revocationAdminToken' | 'ssfAuthorization'>;
};

export function createRevocation(config: RevocationConfigSlice, deps: RevocationWiringDeps): RevocationWiring {
  const settings = config.revocation;
  const logger = deps.logger.child({ component: 'revocation' });
  const revoker =
    settings === undefined
      ? undefined
      : new Revoker({
          tokens: deps.tokens,
          list: new RevocationList({
            clock: deps.clock,
            retainMs: settings.retainSeconds * 1000,
            maxEntries: settings.maxEntries,
          }),
          metrics: deps.metrics,
          logger,
          clock: deps.clock,
          streams: deps.streams,
        });
  const fleet =
    deps.fleet === undefined || revoker === undefined || settings === undefined
      ? undefined
      : new RevocationFleet({
          fleet: deps.fleet,
          revoker,
          metrics: deps.metrics,
          clock: deps.clock,
          logger,
          retainMs: settings.retainSeconds * 1000,
          ...(settings.ssf ? { setMemoryMs: (settings.ssf.maxAgeSeconds + 60) * 1000 } : {}),
        });
  const ssf = settings?.ssf;
  let receiver: SsfReceiver | undefined;
  let poller: PollClient | undefined;
  if (ssf !== undefined && revoker !== undefined) {
    let discovered: Promise<string> | undefined;
    const jwksUri = (): Promise<string> => {
      if (ssf.jwksUri !== undefined) return Promise.resolve(ssf.jwksUri);
      // One discovery at a time; forgotten on failure so the next SET tries again.
      discovered ??= discoverSsfJwksUri(ssf.issuer, { dispatcher: deps.dispatcher, timeoutMs: deps.timeoutMs }).catch(
        (err: unknown) => {
          discovered = undefined;
          throw err;
        },
      );
      return discovered;
    };
    const verifier = createSetVerifier({
      issuer: ssf.issuer,
      audience: ssf.audience,
      jwksUri,
      maxAgeSeconds: ssf.maxAgeSeconds,
      dispatcher: deps.dispatcher,
      timeoutMs: deps.timeoutMs,
      clock: deps.clock,
    });
    receiver = new SsfReceiver({ verifier, revoker, metrics: deps.metrics, logger, clock: deps.clock, fleet });
    if (ssf.poll !== undefined && config.secrets.ssfAuthorization !== undefined) {
      poller = new PollClient({
        url: ssf.poll.url,
        authorization: config.secrets.ssfAuthorization,
        intervalMs: ssf.poll.intervalSeconds * 1000,
        maxEvents: ssf.poll.maxEvents,
        receiver,
        dispatcher: deps.dispatcher,
        timeoutMs: deps.timeoutMs,
        timer: deps.timer ?? realTimer,
        logger,
        // One pod of the fleet polls a stream (docs/fleet.md "SSF polling"). The holder renews before
        // every round, so renewals are at most an interval and a round (one timeout) apart; the TTL
        // adds an interval of margin. The others try every interval: a dead holder's stream is
        // taken over within TTL + interval = 3 intervals + one timeout, the lease period.
        lease: deps.fleet?.lease(
          `ssf-poll:${hash('sha256', ssf.poll.url, 'base64url')}`,
          2 * ssf.poll.intervalSeconds * 1000 + deps.timeoutMs,
        ),
      });
    }
  }
  const admin = createRevocationAdmin({
    revoker,
    adminToken: config.secrets.revocationAdminToken,
    receiver,
    ssfAuthorization: config.secrets.ssfAuthorization,
    clock: deps.clock,
    logger,
    fleet,
  });
  return {
    revoker,
    receiver,
    poller,
    fleet,
    admin,
    start: () => poller?.start(),
    close: () => poller?.close(),
  };
}
