import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { SubjectTarget } from '../auth/subject-index.js';
import { ProxyError } from '../errors.js';
import { mediaTypeOf } from '../http/media-type.js';
import { sendJson } from '../http/send-json.js';
import type { Clock } from '../pipeline/clock.js';
import { readBody } from '../pipeline/request-body.js';
import { safeEqual, verifyBearer } from '../step-up/signature.js';
import type { RevocationSharing } from './fleet-sync.js';
import type { SsfReceiver } from './receiver.js';
import type { Revocation } from './revocation-list.js';
import type { RevokeInput, Revoker } from './revoker.js';
import { SetError } from './set-error.js';

export interface RevocationAdminOptions {
  /** Undefined without `revocation` in the config: the endpoints answer 404. */
  readonly revoker: Revoker | undefined;
  readonly adminToken: string | undefined;
  /** Undefined without `revocation.ssf`: `/ssf/events` answers 404. */
  readonly receiver: SsfReceiver | undefined;
  readonly ssfAuthorization: string | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Fleet mode: revocations and lifts are stored and published before the answer (docs/fleet.md). */
  readonly fleet?: RevocationSharing | undefined;
}

const MAX_ADMIN_BODY_BYTES = 16 * 1024;
/** A SET is a compact JWS; 64 KiB is far above any real one. */
const MAX_SET_BODY_BYTES = 64 * 1024;
const MAX_ID_LENGTH = 1024;

/**
 * `/revocations` and `/ssf/events` on the admin listener (docs/revocation.md). Returns false for
 * paths it does not own.
 */
export function createRevocationAdmin(
  o: RevocationAdminOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/revocations' && path !== '/ssf/events') return false;
    const run = path === '/revocations' ? revocations(req, res, o) : ssfEvents(req, res, o);
    run.catch((err: unknown) => {
      o.logger.error({ err }, 'revocation endpoint failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy();
    });
    return true;
  };
}

async function revocations(req: IncomingMessage, res: ServerResponse, o: RevocationAdminOptions): Promise<void> {
  if (o.revoker === undefined || o.adminToken === undefined) {
    sendJson(res, 404, { error: 'not_found', error_description: 'revocation is not configured' });
    return;
  }
  if (!verifyBearer(o.adminToken, req.headers.authorization)) {
    req.resume();
    sendJson(
      res,
      401,
      { error: 'invalid_token', error_description: 'the admin bearer token is missing or wrong' },
      {
        'www-authenticate': 'Bearer realm="delegate-proxy-admin"',
      },
    );
    return;
  }
  if (req.method === 'GET' || req.method === 'HEAD') {
    sendJson(res, 200, { revocations: o.revoker.list.list().map(describe) });
    return;
  }
  if (req.method !== 'POST' && req.method !== 'DELETE') {
    req.resume();
    sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'GET, POST, DELETE' });
    return;
  }
  let body: Buffer;
  try {
    body = await readBody(req, MAX_ADMIN_BODY_BYTES);
  } catch {
    sendJson(res, 413, { error: 'invalid_request', error_description: 'body too large' });
    return;
  }
  const parsed = parseRevocation(body);
  if (typeof parsed === 'string') {
    sendJson(res, 400, { error: 'invalid_request', error_description: parsed });
    return;
  }
  const target: SubjectTarget = { kind: 'sub', sub: parsed.sub, iss: parsed.iss };
  if (req.method === 'DELETE') {
    // Lifts what was revoked up to now, here and (fleet mode) on every pod (README "Revocation").
    const upTo = o.clock.now();
    const lifted = o.revoker.lift(target, upTo);
    const fleet = await o.fleet?.lifted(target, upTo);
    sendJson(res, 200, fleet === undefined ? { lifted } : { lifted, fleet });
    return;
  }
  try {
    const input: RevokeInput = { target, revokedAt: o.clock.now(), source: 'admin', event: 'admin', refuse: true };
    const { evicted, closedStreams, revocation } = o.revoker.revoke(input);
    const fleet = await o.fleet?.shared(input, revocation);
    sendJson(res, 200, fleet === undefined ? { evicted, closedStreams } : { evicted, closedStreams, fleet });
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    sendJson(
      res,
      err.status,
      { error: err.code, error_description: err.description },
      err.retryAfterSeconds ? { 'retry-after': String(err.retryAfterSeconds) } : {},
    );
  }
}

/** `{"sub": "...", "iss"?: "..."}`, nothing else; a string says what is wrong. */
function parseRevocation(body: Buffer): { sub: string; iss: string | undefined } | string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return 'the body must be JSON: {"sub": "...", "iss"?: "..."}';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'the body must be a JSON object';
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).filter((k) => k !== 'sub' && k !== 'iss');
  if (extra.length > 0) return `unknown member: ${extra[0]!.slice(0, 40)}`;
  if (typeof v.sub !== 'string' || v.sub.length === 0 || v.sub.length > MAX_ID_LENGTH)
    return 'sub must be a non-empty string';
  if (v.iss !== undefined && (typeof v.iss !== 'string' || v.iss.length === 0 || v.iss.length > MAX_ID_LENGTH)) {
    return 'iss must be a non-empty string';
  }
  return { sub: v.sub, iss: v.iss as string | undefined };
}

function describe(r: Revocation): Record<string, unknown> {
  const subject = r.target.kind === 'sub' ? { sub: r.target.sub, iss: r.target.iss } : { email: r.target.email };
  return {
    ...subject,
    revokedAt: new Date(r.revokedAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
    source: r.source,
    event: r.event,
  };
}

/** RFC 8935 §2: the SET itself is the body; 202 when accepted, else `{"err", "description"}`. */
async function ssfEvents(req: IncomingMessage, res: ServerResponse, o: RevocationAdminOptions): Promise<void> {
  const { receiver } = o;
  if (receiver === undefined || o.ssfAuthorization === undefined) {
    sendJson(res, 404, { error: 'not_found', error_description: 'the SSF receiver is not configured' });
    return;
  }
  const refuse = (err: SetError): void => {
    req.resume();
    receiver.reject(err, 'push');
    setError(res, err);
  };
  if (req.method !== 'POST') {
    req.resume();
    sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'POST' });
    return;
  }
  const authorization = req.headers.authorization;
  if (authorization === undefined || !safeEqual(authorization, o.ssfAuthorization)) {
    // RFC 8935 §2.4 authentication_failed; 401 as the HTTP-level answer to missing credentials.
    const scheme = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(o.ssfAuthorization)?.[0] ?? 'Bearer';
    refuse(
      new SetError('authentication_failed', 'the Authorization header is missing or wrong', {
        status: 401,
        headers: { 'www-authenticate': `${scheme} realm="delegate-proxy-ssf"` },
      }),
    );
    return;
  }
  if (mediaTypeOf(req.headers['content-type']) !== 'application/secevent+jwt') {
    refuse(new SetError('invalid_request', 'content-type must be application/secevent+jwt', { status: 415 }));
    return;
  }
  let body: Buffer;
  try {
    body = await readBody(req, MAX_SET_BODY_BYTES);
  } catch {
    refuse(new SetError('invalid_request', 'the SET is too large', { status: 413, headers: { connection: 'close' } }));
    return;
  }
  try {
    await receiver.receive(body.toString('utf8').trim(), 'push');
  } catch (err) {
    if (!(err instanceof SetError)) throw err;
    setError(res, err);
    return;
  }
  res.writeHead(202, { 'cache-control': 'no-store' });
  res.end();
}

function setError(res: ServerResponse, err: SetError): void {
  const headers: Record<string, string> = { ...err.headers };
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = String(err.retryAfterSeconds);
  sendJson(res, err.status, { err: err.err, description: err.description }, headers);
}
