import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import { applyEvents, type HandledEvent } from './events.js';
import type { RevocationSharing } from './fleet-sync.js';
import type { Revoker } from './revoker.js';
import { SetError } from './set-error.js';
import type { SetVerifier } from './set-verifier.js';

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

  constructor(deps: SsfReceiverDeps) {
    this.#d = deps;
  }

  /** Verifies and applies one SET; throws SetError when it is refused. Counts every outcome. */
  async receive(jwt: string, delivery: 'push' | 'poll'): Promise<HandledEvent[]> {
    try {
      const set = await this.#d.verifier.verify(jwt);
      // Synchronous from here to remember(): two deliveries of one jti cannot both be applied.
      const handled = applyEvents(set, this.#d);
      this.#d.verifier.remember(set.jti);
      this.#d.metrics.securityEvents.inc({ outcome: 'accepted' });
      this.#d.logger.info({ jti: set.jti, delivery, events: handled.map((h) => h.outcome) }, 'security event accepted');
      const { fleet } = this.#d;
      if (fleet !== undefined) {
        for (const h of handled) if (h.applied) await fleet.shared(h.applied.input, h.applied.revocation);
      }
      return handled;
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
