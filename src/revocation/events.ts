import type { Logger } from 'pino';
import type { SubjectTarget } from '../auth/subject-index.js';
import type { Clock } from '../pipeline/clock.js';
import type { Revocation, RevocationEvent } from './revocation-list.js';
import type { RevokeInput, Revoker } from './revoker.js';
import { SetError } from './set-error.js';
import type { VerifiedSet } from './set-verifier.js';
import { isProblem, mapSubject } from './subject-id.js';

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
/** SSF 1.0 §8.1.4 verification event: proves the stream works; nothing to do but accept it. */
export const SSF_VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';

/** CAEP 1.0 events this proxy acts on: revoke (refuse old user tokens) or only evict cached tokens. */
const ACTIONS: ReadonlyMap<string, { event: RevocationEvent; refuse: boolean }> = new Map([
  [`${CAEP}session-revoked`, { event: 'session_revoked', refuse: true }],
  [`${CAEP}credential-change`, { event: 'credential_change', refuse: true }],
  [`${CAEP}token-claims-change`, { event: 'token_claims_change', refuse: false }],
  [`${CAEP}assurance-level-change`, { event: 'assurance_level_change', refuse: false }],
]);

export interface HandledEvent {
  readonly type: string;
  readonly outcome: 'revoked' | 'evicted' | 'verification' | 'ignored';
  readonly evicted?: number;
  /** What was applied, for the fleet (docs/fleet.md). */
  readonly applied?: { readonly input: RevokeInput; readonly revocation: Revocation | undefined };
}

/**
 * Applies the events of one verified SET. Every event's subject is checked before any is applied,
 * so a SET refused with 400 changes nothing. Unknown event types are accepted and ignored
 * (RFC 8417 §2.2: a recipient ignores events it does not understand).
 */
export function applyEvents(
  set: VerifiedSet,
  deps: { revoker: Revoker; clock: Clock; logger: Logger },
): HandledEvent[] {
  const plan: Array<{
    type: string;
    action: { event: RevocationEvent; refuse: boolean } | undefined;
    target?: SubjectTarget;
    at?: number;
  }> = [];
  const now = deps.clock.now();
  for (const [type, body] of Object.entries(set.events)) {
    const action = ACTIONS.get(type);
    if (action === undefined) {
      plan.push({ type, action });
      continue;
    }
    // SSF 1.0 puts the subject in the top-level sub_id; older CAEP drafts in the event itself.
    const mapped = mapSubject(set.payload.sub_id ?? body.subject);
    if (isProblem(mapped)) {
      if (mapped.kind === 'malformed')
        throw new SetError('invalid_request', `event ${shortType(type)}: ${mapped.reason}`);
      deps.logger.warn(
        { jti: set.jti, event: action.event, reason: mapped.reason },
        'security event subject cannot be matched; ignored',
      );
      plan.push({ type, action: undefined });
      continue;
    }
    plan.push({ type, action, target: mapped, at: eventTime(body.event_timestamp, set.payload.iat, now) });
  }
  return plan.map(({ type, action, target, at }): HandledEvent => {
    if (type === SSF_VERIFICATION) {
      deps.logger.info({ jti: set.jti, event: 'verification' }, 'SSF verification event received');
      return { type, outcome: 'verification' };
    }
    if (action === undefined || target === undefined || at === undefined) {
      deps.logger.debug({ jti: set.jti, type: shortType(type) }, 'security event ignored');
      return { type, outcome: 'ignored' };
    }
    const input: RevokeInput = {
      target,
      revokedAt: at,
      source: 'ssf',
      event: action.event,
      refuse: action.refuse,
      jti: set.jti,
    };
    const { evicted, revocation } = deps.revoker.revoke(input);
    return { type, outcome: action.refuse ? 'revoked' : 'evicted', evicted, applied: { input, revocation } };
  });
}

/**
 * CAEP 1.0 §2 `event_timestamp` (when the event happened), else the SET's `iat`; never later than
 * now, so a transmitter clock ahead of ours cannot refuse tokens issued after the event arrived.
 */
function eventTime(eventTimestamp: unknown, iat: unknown, now: number): number {
  const seconds =
    typeof eventTimestamp === 'number' && Number.isFinite(eventTimestamp)
      ? eventTimestamp
      : typeof iat === 'number'
        ? iat
        : now / 1000;
  return Math.min(seconds * 1000, now);
}

function shortType(type: string): string {
  return type.length > 120 ? `${type.slice(0, 120)}…` : type;
}
