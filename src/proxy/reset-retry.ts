/**
 * Failures of an established upstream connection before any response byte: the typical end of a
 * kept-alive socket that the upstream closed just as a request went out on it. A
 * connect failure (refused, unreachable, DNS, connect timeout) is not one: that upstream is down.
 * undici reports a peer that closed before a status line as `UND_ERR_SOCKET` "other side closed"
 * (FIN) or "closed"; a malformed answer ("bad response") is a response and is never retried.
 */
export function isRetryableReset(err: Error & { code?: string }): boolean {
  switch (err.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return true;
    case 'UND_ERR_SOCKET':
      return err.message === 'other side closed' || err.message === 'closed';
    default:
      return false;
  }
}
