import { errors } from 'undici';
import { describe, expect, it } from 'vitest';
import { isRetryableReset } from '../../src/proxy/reset-retry.js';

const systemError = (code: string) => Object.assign(new Error(`read ${code}`), { code });

/** Which upstream failures before a response may be retried once, by code (undici's own error classes). */
describe('isRetryableReset', () => {
  it('retries a connection the upstream closed or reset: whatever undici says in the message', () => {
    expect(isRetryableReset(systemError('ECONNRESET'))).toBe(true);
    expect(isRetryableReset(systemError('EPIPE'))).toBe(true);
    for (const message of ['other side closed', 'closed', 'bad response', 'a future wording'])
      expect(isRetryableReset(new errors.SocketError(message))).toBe(true);
  });

  it('never retries a connect failure, a timeout or the proxy closing its own pool', () => {
    expect(isRetryableReset(systemError('ECONNREFUSED'))).toBe(false);
    expect(isRetryableReset(systemError('ENOTFOUND'))).toBe(false);
    expect(isRetryableReset(new errors.ConnectTimeoutError())).toBe(false);
    expect(isRetryableReset(new errors.HeadersTimeoutError())).toBe(false);
    expect(isRetryableReset(new errors.ClientDestroyedError())).toBe(false);
    expect(isRetryableReset(new errors.RequestAbortedError())).toBe(false);
  });
});
