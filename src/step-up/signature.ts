import { createHmac, hash, timingSafeEqual } from 'node:crypto';

/** `sha256=<hex>`: HMAC-SHA256 over `<timestamp>.<raw body>` with the callback secret. */
export const SIGNATURE_HEADER = 'x-step-up-signature';
/** Unix seconds when the message was signed; part of the MAC, so it cannot be changed. */
export const TIMESTAMP_HEADER = 'x-step-up-timestamp';
/** Signed messages older or newer than this are refused (replay window; ids are single-use anyway). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** Compares without leaking where (or whether the lengths) differ: both sides are hashed first. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(hash('sha256', a, 'buffer'), hash('sha256', b, 'buffer'));
}

export function signBody(secret: string, timestampSeconds: number, body: Buffer | string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex');
  return `sha256=${mac}`;
}

export type SignatureCheck = 'ok' | 'missing' | 'stale' | 'bad_signature';

/** Checks the HMAC headers of a callback against its raw body (see SIGNATURE_HEADER). */
export function verifySignature(
  secret: string,
  headers: { readonly signature: string | undefined; readonly timestamp: string | undefined },
  body: Buffer,
  nowMs: number,
): SignatureCheck {
  if (headers.signature === undefined || headers.timestamp === undefined) return 'missing';
  if (!/^\d{1,12}$/.test(headers.timestamp)) return 'stale';
  const ts = Number(headers.timestamp);
  if (Math.abs(nowMs / 1000 - ts) > SIGNATURE_TOLERANCE_SECONDS) return 'stale';
  return safeEqual(headers.signature.trim().toLowerCase(), signBody(secret, ts, body)) ? 'ok' : 'bad_signature';
}

/** `Authorization: Bearer <secret>` (RFC 6750 §2.1 syntax). */
export function verifyBearer(secret: string, authorization: string | undefined): boolean {
  const m = /^Bearer +([\x21-\x7E]+) *$/i.exec(authorization ?? '');
  return m !== null && safeEqual(m[1]!, secret);
}

/**
 * Keys derived from the secret for the approval page, so that a session cookie can never serve as
 * a callback signature or a CSRF token and the other way round (domain separation).
 */
function derivedKey(secret: string, purpose: string): Buffer {
  return createHmac('sha256', secret).update(`delegate-proxy step-up ${purpose}`).digest();
}

function mac(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('base64url');
}

export interface PageSession {
  /** Name the person typed at login; recorded as the approver. */
  readonly approver: string;
  readonly issuedAt: number;
}

/** A stateless session cookie value: payload and MAC; rotating the secret ends every session. */
export function issueSession(secret: string, approver: string, nowMs: number): string {
  const payload = Buffer.from(JSON.stringify({ a: approver, t: Math.floor(nowMs / 1000) })).toString('base64url');
  return `${payload}.${mac(derivedKey(secret, 'session'), payload)}`;
}

export function readSession(
  secret: string,
  value: string | undefined,
  nowMs: number,
  maxAgeSeconds: number,
): PageSession | undefined {
  if (value === undefined) return undefined;
  const dot = value.indexOf('.');
  if (dot <= 0) return undefined;
  const payload = value.slice(0, dot);
  if (!safeEqual(value.slice(dot + 1), mac(derivedKey(secret, 'session'), payload))) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { a?: unknown; t?: unknown };
    if (typeof parsed.a !== 'string' || typeof parsed.t !== 'number') return undefined;
    const age = nowMs / 1000 - parsed.t;
    if (age < -60 || age > maxAgeSeconds) return undefined;
    return { approver: parsed.a, issuedAt: parsed.t * 1000 };
  } catch {
    return undefined;
  }
}

/** Synchronizer token for the page's forms, bound to the session (OWASP CSRF cheat sheet, HMAC variant). */
export function csrfToken(secret: string, session: string): string {
  return mac(derivedKey(secret, 'csrf'), session);
}

export function verifyCsrf(secret: string, session: string, token: string | undefined): boolean {
  return token !== undefined && safeEqual(token, csrfToken(secret, session));
}
