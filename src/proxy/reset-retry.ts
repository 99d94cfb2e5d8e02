/**
 * Failures of an established upstream connection before any response byte: the typical end of a
 * kept-alive socket that the upstream closed just as a request went out on it. A connect failure
 * (refused, unreachable, DNS, connect timeout) is not one: that upstream is down.
 *
 * Decided by error code, never by message text: Node's `ECONNRESET` / `EPIPE`, and undici's
 * `UND_ERR_SOCKET` (its SocketError: the peer closed the connection, with or without a FIN, or sent
 * something that is not an HTTP response). The caller retries only an idempotent request, once,
 * before any response head was passed on (RFC 9110 §9.2.2); a misbehaving upstream then gets the
 * request a second time, which idempotence allows.
 */
export function isRetryableReset(err: Error & { code?: string }): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'UND_ERR_SOCKET';
}
