import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { closeServer } from '../../src/server/listen.js';

/** One request the fake AS received: path and the parsed form body. */
export interface FakeAsRequest {
  readonly method: string;
  readonly path: string;
  readonly form: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
}

export type FakeAsAnswer = { status: number; body: unknown; headers?: Record<string, string> };

/**
 * A small hand-written authorization server for misbehaving cases (wrong aud, later exp, 5xx, ...)
 * that a real one would not produce. `answer` decides each response; every request is recorded.
 */
export interface FakeAs {
  readonly url: string;
  readonly tokenEndpoint: string;
  readonly requests: FakeAsRequest[];
  /** Token requests (POST /token) only. */
  tokenRequests(): FakeAsRequest[];
  answer: (req: FakeAsRequest, res: ServerResponse) => FakeAsAnswer | undefined;
  close(): Promise<void>;
}

export async function startFakeAs(answer: FakeAs['answer'] = () => ({ status: 500, body: {} })): Promise<FakeAs> {
  const requests: FakeAsRequest[] = [];
  const fake = { requests, answer } as FakeAs;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: FakeAsRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
        headers: req.headers,
      };
      requests.push(r);
      // The proxy's readiness probe GETs the token endpoint; only POSTs are exchanges.
      const a = r.method === 'GET' && r.path === '/token' ? { status: 405, body: {} } : fake.answer(r, res);
      if (a === undefined) return; // the handler answers (or stalls) itself
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(fake, {
    url,
    tokenEndpoint: `${url}/token`,
    tokenRequests: () => requests.filter((r) => r.method === 'POST' && r.path === '/token'),
    close: () => closeServer(server),
  });
}

const signer = generateKeyPair('RS256');

/** A signed JWT with the given claims (the proxy decodes, it does not verify, issued tokens). */
export async function makeJwt(claims: JWTPayload): Promise<string> {
  const { privateKey } = await signer;
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt' }).sign(privateKey);
}

/** A successful RFC 8693 answer carrying `accessToken`. */
export function issued(accessToken: string, extra: Record<string, unknown> = {}): FakeAsAnswer {
  return {
    status: 200,
    body: {
      access_token: accessToken,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: 300,
      ...extra,
    },
  };
}
