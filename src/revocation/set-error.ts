import { ProxyError, type ProxyErrorOptions } from '../errors.js';

/** RFC 8935 §2.4 / RFC 8936 §2.4.1 error codes (IANA "Security Event Token Error Codes"). */
export type SetErrorCode =
  | 'invalid_request'
  | 'invalid_key'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'authentication_failed'
  | 'access_denied';

/**
 * A Security Event Token refused. Answers `{"err": ..., "description": ...}` (RFC 8935 §2.3) with
 * status 400 unless another applies (401 without the transmitter's Authorization, 413, 415, 503).
 */
export class SetError extends ProxyError {
  readonly err: SetErrorCode;
  /** The SET's `jti` was seen before (a poll client acknowledges it instead of reporting an error). */
  readonly duplicate: boolean;

  constructor(err: SetErrorCode, description: string, options: ProxyErrorOptions & { duplicate?: boolean } = {}) {
    super('invalid_request', description, { status: 400, ...options, body: { err, description } });
    this.name = 'SetError';
    this.err = err;
    this.duplicate = options.duplicate ?? false;
  }
}
