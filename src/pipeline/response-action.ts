import type { IncomingHttpHeaders } from 'node:http';
import type { Transform } from 'node:stream';

/** The upstream's status line and headers, before anything reaches the client. */
export interface UpstreamHead {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
}

/**
 * What to do with an upstream response: pass it on (optionally through a body transform that
 * must stream), or drop it so the caller can send the request again (nothing reached the client).
 */
export type ResponseAction =
  | {
      readonly kind: 'pass';
      readonly transform?: Transform | undefined;
      /** A long-lived response: told once its head has been passed on, with the means to end it. */
      readonly stream?: StreamListener | undefined;
    }
  | { readonly kind: 'retry' };

/** A response being streamed to the client that the proxy may end before the upstream does. */
export interface EndableResponse {
  /**
   * Ends the response cleanly (a chunked body gets its last chunk, the connection is not reset) and
   * cancels the upstream request; a no-op once the response is over.
   */
  endResponse(): void;
}

export interface StreamListener {
  streamOpened(response: EndableResponse): void;
}

export const PASS: ResponseAction = Object.freeze({ kind: 'pass' });

/** Why a request is sent upstream a second time; `prepare` readies the context for it. */
export interface RetryPlan {
  /** invalidated: upstream 401 on a cached token; step_up: approved upstream insufficient_scope challenge. */
  readonly reason: 'invalidated' | 'step_up';
  prepare(): Promise<void>;
}
