import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { request } from 'undici';
import { closeServer } from '../../src/server/listen.js';

export const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
export const SESSION_REVOKED = `${CAEP}session-revoked`;
export const CREDENTIAL_CHANGE = `${CAEP}credential-change`;
export const TOKEN_CLAIMS_CHANGE = `${CAEP}token-claims-change`;
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

export interface SignOptions {
  readonly iss?: string;
  readonly aud?: string;
  readonly jti?: string;
  /** Epoch seconds. */
  readonly iat?: number;
  readonly typ?: string;
  /** Sign with another key under the same kid (a forgery). */
  readonly forge?: boolean;
}

export interface PollRequest {
  readonly authorization: string | undefined;
  readonly body: { maxEvents?: number; returnImmediately?: boolean; ack?: string[]; setErrs?: Record<string, unknown> };
}

/**
 * A small SSF transmitter for tests (no package exists): RS256 with a 2048-bit key as the CAEP
 * interoperability profile asks, its JWKS and SSF configuration served over HTTP on port 0, SETs
 * pushed by RFC 8935 POSTs or queued for RFC 8936 polling.
 */
export interface Transmitter {
  readonly issuer: string;
  readonly jwksUri: string;
  /** Poll endpoint (RFC 8936). */
  readonly pollUrl: string;
  /** Every poll request received, in order. */
  readonly polls: PollRequest[];
  /** SETs waiting to be polled, by jti; removed when acknowledged. */
  readonly queue: Map<string, string>;
  /** Poll requests for which this answers true get 503 (recorded, nothing acknowledged). */
  failPoll: (body: PollRequest['body']) => boolean;
  sign(payload: JWTPayload, options?: SignOptions): Promise<string>;
  /** A CAEP event SET for an RFC 9493 subject (top-level sub_id, as SSF 1.0 puts it). */
  event(
    type: string,
    subId: Record<string, unknown>,
    options?: SignOptions & { eventTimestamp?: number },
  ): Promise<string>;
  close(): Promise<void>;
}

export async function push(
  url: string,
  set: string,
  authorization: string | undefined,
  contentType = 'application/secevent+jwt',
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (authorization !== undefined) headers.authorization = authorization;
  const res = await request(`${url}/ssf/events`, { method: 'POST', headers, body: set });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

export async function startTransmitter(options: {
  audience: string;
  pollAuthorization?: string;
}): Promise<Transmitter> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const forger = await generateKeyPair('RS256', { modulusLength: 2048 });
  const kid = 'tx-key-1';
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const polls: PollRequest[] = [];
  const queue = new Map<string, string>();
  let issuer = '';
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      if (req.method === 'GET' && req.url === '/jwks') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: [jwk] }));
        return;
      }
      if (req.method === 'GET' && req.url === '/.well-known/ssf-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            issuer,
            jwks_uri: `${issuer}/jwks`,
            delivery_methods_supported: ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'],
          }),
        );
        return;
      }
      if (req.method === 'POST' && req.url === '/poll') {
        const parsed = JSON.parse(body || '{}') as PollRequest['body'];
        polls.push({ authorization: req.headers.authorization, body: parsed });
        if (tx.failPoll(parsed)) {
          res.writeHead(503);
          res.end();
          return;
        }
        if (req.headers.authorization !== options.pollAuthorization) {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end('{"err":"authentication_failed"}');
          return;
        }
        for (const jti of parsed.ack ?? []) queue.delete(jti);
        for (const jti of Object.keys(parsed.setErrs ?? {})) queue.delete(jti);
        const max = parsed.maxEvents ?? 10;
        const sets = Object.fromEntries([...queue.entries()].slice(0, max));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ sets, moreAvailable: queue.size > Object.keys(sets).length }));
        return;
      }
      res.writeHead(404);
      res.end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const sign = (payload: JWTPayload, o: SignOptions = {}): Promise<string> =>
    new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid, typ: o.typ ?? 'secevent+jwt' })
      .setIssuer(o.iss ?? issuer)
      .setAudience(o.aud ?? options.audience)
      .setIssuedAt(o.iat ?? Math.floor(Date.now() / 1000))
      .setJti(o.jti ?? randomUUID())
      .sign(o.forge ? forger.privateKey : (privateKey as Key));

  const tx: Transmitter = {
    failPoll: () => false,
    issuer,
    jwksUri: `${issuer}/jwks`,
    pollUrl: `${issuer}/poll`,
    polls,
    queue,
    sign,
    event: (type, subId, o = {}) =>
      sign(
        {
          sub_id: subId,
          events: {
            [type]: { event_timestamp: o.eventTimestamp ?? Math.floor(Date.now() / 1000), initiating_entity: 'admin' },
          },
        },
        o,
      ),
    close: () => closeServer(server),
  };
  return tx;
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
