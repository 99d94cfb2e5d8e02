import { hash } from 'node:crypto';
import type { Logger } from 'pino';
import type { SubjectTarget } from '../auth/subject-index.js';
import type { SubjectInfo, TokenService } from '../auth/token-service.js';
import { ProxyError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import {
  issuerMatches,
  type Revocation,
  type RevocationEvent,
  type RevocationList,
  type RevocationSource,
  refuses,
  type TokenClaims,
} from './revocation-list.js';

export interface RevokeInput {
  readonly target: SubjectTarget;
  /** Epoch ms: user tokens issued at or before it are refused (when `refuse`). */
  readonly revokedAt: number;
  readonly source: RevocationSource;
  readonly event: RevocationEvent;
  /** false: only evict cached delegated tokens (claims or assurance changed; the user stays valid). */
  readonly refuse: boolean;
  /** The SET's jti, for the audit line. */
  readonly jti?: string | undefined;
  /** Set when another proxy of the fleet accepted it (docs/fleet.md): that pod's name. */
  readonly fromPod?: string | undefined;
}

/** The open long-lived responses (SSE streams, WebSockets) of the users they were opened for. */
export interface OpenStreamsOfUsers {
  /** Closes the streams of `target` whose user-token claims `matches` accepts; returns how many. */
  closeSubject(target: SubjectTarget, matches: (claims: TokenClaims) => boolean): number;
}

export interface RevokerDeps {
  readonly tokens: Pick<TokenService, 'cache' | 'subjectIndex'>;
  readonly list: RevocationList;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Closed by every accepted event, like the cache entries (docs/revocation.md "Open streams"). */
  readonly streams?: OpenStreamsOfUsers | undefined;
}

/**
 * Applies revocations (admin API or SSF events) and refuses revoked users' old tokens in the
 * request pipeline (docs/revocation.md).
 */
export class Revoker {
  readonly #d: RevokerDeps;

  constructor(deps: RevokerDeps) {
    this.#d = deps;
  }

  get list(): RevocationList {
    return this.#d.list;
  }

  /**
   * Records the revocation (when `refuse`), then evicts the user's cached delegated tokens and
   * closes their open long-lived responses: those opened with a user token the revocation
   * refuses, or for an evict-only event every one of the user's (they re-open with a fresh
   * exchange, as the evicted cache entries are replaced).
   */
  revoke(input: RevokeInput): { evicted: number; closedStreams: number; revocation: Revocation | undefined } {
    const { tokens, metrics, logger } = this.#d;
    // Listed first: from here on no new exchange can start for an old token of this user.
    const revocation = input.refuse
      ? this.#d.list.add(input.target, input.revokedAt, input.source, input.event)
      : undefined;
    let evicted = 0;
    for (const key of tokens.subjectIndex.keysFor(input.target)) if (tokens.cache.evict(key)) evicted++;
    let closedStreams = 0;
    const streams = this.#d.streams;
    if (streams !== undefined) {
      const { target } = input;
      const now = this.#d.clock.now();
      closedStreams = streams.closeSubject(
        target,
        revocation === undefined
          ? (claims) => issuerMatches(target, claims)
          : (claims) => refuses(revocation, claims, now),
      );
    }
    metrics.revocations.inc({ source: input.source, event: input.event });
    logger.info(
      {
        audit: 'revocation',
        source: input.source,
        event: input.event,
        ...auditSubject(input.target),
        refused: input.refuse,
        revokedAt: input.refuse ? new Date(revocation!.revokedAt).toISOString() : undefined,
        evicted,
        closedStreams,
        jti: input.jti,
        fromPod: input.fromPod,
      },
      input.refuse ? 'user revoked' : 'cached delegated tokens evicted',
    );
    return { evicted, closedStreams, revocation };
  }

  /**
   * Lifts the revocation of exactly `target` issued at or before `upTo` (epoch ms): its user tokens
   * pass again. Cached tokens are not restored; the next request exchanges afresh.
   */
  lift(target: SubjectTarget, upTo: number, fromPod?: string): boolean {
    const lifted = this.#d.list.remove(target, upTo);
    this.#d.logger.info(
      { audit: 'revocation_lifted', ...auditSubject(target), lifted, fromPod },
      lifted ? 'revocation lifted' : 'no revocation to lift',
    );
    return lifted;
  }

  /**
   * Pipeline step 3 (docs/revocation.md): a user token of a revoked user issued at or before the
   * revocation is refused with 401 invalid_token before any exchange.
   */
  check(subject: SubjectInfo): void {
    const r = this.#d.list.check(subject);
    if (r === undefined) return;
    throw new ProxyError('invalid_token', 'the user token has been revoked', {
      detail: `revocation (${r.source}/${r.event}) at ${new Date(r.revokedAt).toISOString()}`,
    });
  }
}

/** `sub` (and `iss`) as the access log shows them; an email address only as a hash. */
export function auditSubject(target: SubjectTarget): Record<string, string | undefined> {
  if (target.kind === 'email') return { subjectHash: hash('sha256', target.email.toLowerCase(), 'base64url') };
  return { sub: target.sub, iss: target.iss };
}
