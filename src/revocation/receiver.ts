import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import { applyEvents, type HandledEvent } from './events.js';
import type { RevocationSharing } from './fleet-sync.js';
import type { Revoker } from './revoker.js';
import { SetError } from './set-error.js';
import type { SetVerifier, VerifiedSet } from './set-verifier.js';

export interface SsfReceiverDeps {
  readonly verifier: SetVerifier;
  readonly revoker: Revoker;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Fleet mode: each applied event is stored and published before the SET is acknowledged. */
  readonly fleet?: RevocationSharing | undefined;
}

/** One Security Event Token in, from push (RFC 8935) or poll (RFC 8936) delivery. */
export class SsfReceiver {
  readonly #d: SsfReceiverDeps;
  /** jtis being applied now (fleet mode, where applying awaits Redis). */
  readonly #inFlight = new Set<string>();

  constructor(deps: SsfReceiverDeps) {
    this.#d = deps;
  }

  /** Verifies and applies one SET; throws SetError when it is refused. Counts every outcome. */
  async receive(jwt: string, delivery: 'push' | 'poll'): Promise<HandledEvent[]> {
    try {
      const set = await this.#d.verifier.verify(jwt);
      const { fleet } = this.#d;
      if (fleet === undefined) {
        // Synchronous from here to remember(): two deliveries of one jti cannot both be applied.
        const handled = this.#apply(set, delivery);
        this.#d.verifier.remember(set.jti);
        return handled;
      }
      // Fleet mode: a SET applied by another pod (a poll stream taken over, a push retried to
      // another pod) is a duplicate too. The jti is held here while the fleet is asked.
      if (this.#inFlight.has(set.jti)) throw duplicate();
      this.#inFlight.add(set.jti);
      try {
        if (await fleet.appliedElsewhere(set.jti)) {
          this.#d.verifier.remember(set.jti);
          throw duplicate();
        }
        const handled = this.#apply(set, delivery);
        this.#d.verifier.remember(set.jti);
        for (const h of handled) if (h.applied) await fleet.shared(h.applied.input, h.applied.revocation);
        await fleet.markApplied(set.jti);
        return handled;
      } finally {
        this.#inFlight.delete(set.jti);
      }
    } catch (err) {
      this.reject(err, delivery);
      if (err instanceof SetError) throw err;
      // The revocation list is full (503) or another failure: not the SET's fault, so not a 400.
      const status = err instanceof ProxyError ? err.status : 500;
      const description = err instanceof ProxyError ? err.description : 'the event could not be processed';
      throw new SetError('invalid_request', description, {
        status,
        cause: err,
        ...(err instanceof ProxyError && err.retryAfterSeconds !== undefined
          ? { retryAfterSeconds: err.retryAfterSeconds }
          : {}),
      });
    }
  }

  #apply(set: VerifiedSet, delivery: 'push' | 'poll'): HandledEvent[] {
    const handled = applyEvents(set, this.#d);
    this.#d.metrics.securityEvents.inc({ outcome: 'accepted' });
    this.#d.logger.info({ jti: set.jti, delivery, events: handled.map((h) => h.outcome) }, 'security event accepted');
    return handled;
  }

  /** Counts and logs a refused SET (also used for deliveries refused before verification). */
  reject(err: unknown, delivery: 'push' | 'poll'): void {
    this.#d.metrics.securityEvents.inc({ outcome: 'rejected' });
    const fields =
      err instanceof SetError
        ? { err: err.err, status: err.status, description: err.description, detail: err.detail }
        : { err: err instanceof Error ? err.message : String(err) };
    this.#d.logger.warn({ delivery, ...fields }, 'security event rejected');
  }
}

function duplicate(): SetError {
  return new SetError('invalid_request', 'this SET (jti) was already received', { duplicate: true });
}
