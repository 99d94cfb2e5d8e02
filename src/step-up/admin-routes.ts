import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';
import { cookieValue } from '../http/cookies.js';
import { sendJson } from '../http/send-json.js';
import type { Clock } from '../pipeline/clock.js';
import { readBody } from '../pipeline/request-body.js';
import type { DecideResult } from './approvals.js';
import type { ApprovalInbox } from './inbox.js';
import { listPage, loginPage, PAGE_CSP } from './page.js';
import {
  csrfToken,
  issueSession,
  readSession,
  SIGNATURE_HEADER,
  safeEqual,
  TIMESTAMP_HEADER,
  verifyBearer,
  verifyCsrf,
  verifySignature,
} from './signature.js';
import { cleanApprover } from './webhook.js';

export interface StepUpAdminOptions {
  /** This pod's approvals, or (fleet mode) the fleet's. */
  readonly inbox: ApprovalInbox;
  /** Without it, the callback and the page are off (decisions only from the webhook's answers). */
  readonly secret: string | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
}

export const SESSION_COOKIE = 'dp_step_up';
const SESSION_MAX_AGE_SECONDS = 12 * 3600;
const MAX_BODY_BYTES = 16 * 1024;
const ID = /^[0-9a-f-]{36}$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
/** Signed callbacks remembered (each with the one id it was first used for); see machineDecision. */
const MAX_REMEMBERED_SIGNATURES = 10_000;
const PAGE_MESSAGES: Record<string, string> = {
  approved: 'Approved: the agent’s request continues.',
  denied: 'Denied: the agent gets 403 insufficient_scope.',
  gone: 'That request is no longer pending (decided, withdrawn or expired).',
  mismatch: 'The request changed since the page was loaded: nothing was decided.',
};

/**
 * `/step-up` on the admin listener: `POST /step-up/<id>` decisions (HMAC signature or bearer
 * secret), and the approval page (`GET /step-up`, cookie session from a login with the secret,
 * CSRF token on every form). Returns false for paths it does not own.
 */
export function createStepUpAdmin(options: StepUpAdminOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { secret } = options;
  const admin = secret === undefined ? undefined : new StepUpAdmin({ ...options, secret });
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path !== '/step-up' && !path.startsWith('/step-up/')) return false;
    if (admin === undefined) {
      json(res, 404, {
        error: 'not_found',
        error_description: 'step-up callbacks need stepUp.approval.callbackSecretFile',
      });
      return true;
    }
    admin.handle(req, res, path).catch((err: unknown) => {
      options.logger.error({ err }, 'step-up admin request failed');
      if (!res.headersSent) json(res, 500, { error: 'server_error' });
      else res.destroy();
    });
    return true;
  };
}

/** The routes under `/step-up` once a callback secret is configured. */
class StepUpAdmin {
  private readonly inbox: ApprovalInbox;
  private readonly secret: string;
  private readonly clock: Clock;
  private readonly logger: Logger;
  /** Signed callbacks without "id": each signature decides the first id it is presented for only. */
  private readonly signatureIds = new LRUCache<string, string>({ max: MAX_REMEMBERED_SIGNATURES });

  constructor(options: StepUpAdminOptions & { readonly secret: string }) {
    this.inbox = options.inbox;
    this.secret = options.secret;
    this.clock = options.clock;
    this.logger = options.logger;
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path === '/step-up' && (req.method === 'GET' || req.method === 'HEAD')) {
      await this.showPage(req, res);
      return;
    }
    if (req.method !== 'POST') {
      json(res, 405, { error: 'method_not_allowed' }, { allow: path === '/step-up' ? 'GET' : 'POST' });
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, MAX_BODY_BYTES);
    } catch (err) {
      if (!(err instanceof ProxyError)) throw err;
      json(res, 413, { error: 'invalid_request', error_description: 'body too large' });
      return;
    }
    if (path === '/step-up/login') {
      this.login(req, res, body);
      return;
    }
    if (path === '/step-up/logout') {
      this.logout(req, res, body);
      return;
    }
    const id = path.slice('/step-up/'.length);
    if (!ID.test(id)) {
      json(res, 404, { error: 'not_found' });
      return;
    }
    if (req.headers[SIGNATURE_HEADER] !== undefined || req.headers.authorization !== undefined) {
      await this.machineDecision(req, res, id, body);
      return;
    }
    await this.pageDecision(req, res, id, body);
  }

  private session(req: IncomingMessage): { value: string; approver: string } | undefined {
    const value = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const s = readSession(this.secret, value, this.clock.now(), SESSION_MAX_AGE_SECONDS);
    return s === undefined || value === undefined ? undefined : { value, approver: s.approver };
  }

  private async showPage(req: IncomingMessage, res: ServerResponse, status = 200, message?: string): Promise<void> {
    const s = this.session(req);
    if (!s) {
      html(res, 200, loginPage(undefined));
      return;
    }
    const key = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('result') ?? '';
    const text = message ?? (Object.hasOwn(PAGE_MESSAGES, key) ? PAGE_MESSAGES[key] : undefined);
    const { pending, localOnly, fleet } = await this.inbox.list();
    html(
      res,
      status,
      listPage({
        approver: s.approver,
        csrf: csrfToken(this.secret, s.value),
        pending,
        now: this.clock.now(),
        message: text,
        error: status >= 400,
        fleet: fleet ? (localOnly ? 'local-only' : 'fleet') : undefined,
      }),
    );
  }

  private login(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    if (!sameOrigin(req)) {
      json(res, 403, { error: 'forbidden', error_description: 'cross-origin form post refused' });
      return;
    }
    const form = new URLSearchParams(body.toString('utf8'));
    const approver = cleanApprover(form.get('approver'));
    const given = form.get('secret') ?? '';
    if (approver === undefined || !safeEqual(given, this.secret)) {
      this.logger.warn({ remote: req.socket.remoteAddress }, 'step-up page: failed sign-in');
      html(res, 401, loginPage(approver === undefined ? 'Enter your name.' : 'Wrong secret.'));
      return;
    }
    const value = issueSession(this.secret, approver, this.clock.now());
    res.setHeader('set-cookie', cookie(value, SESSION_MAX_AGE_SECONDS));
    this.logger.info({ approver }, 'step-up page: signed in');
    redirect(res, '/step-up');
  }

  private logout(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const s = this.session(req);
    const form = new URLSearchParams(body.toString('utf8'));
    if (!s || !sameOrigin(req) || !verifyCsrf(this.secret, s.value, form.get('csrf') ?? undefined)) {
      json(res, 403, { error: 'forbidden' });
      return;
    }
    res.setHeader('set-cookie', cookie('', 0));
    redirect(res, '/step-up');
  }

  /** Browser form post: session cookie, CSRF token bound to it, and a same-origin request. */
  private async pageDecision(req: IncomingMessage, res: ServerResponse, id: string, body: Buffer): Promise<void> {
    const s = this.session(req);
    if (!s) {
      html(res, 401, loginPage('Sign in first.'));
      return;
    }
    const form = new URLSearchParams(body.toString('utf8'));
    if (!sameOrigin(req) || !verifyCsrf(this.secret, s.value, form.get('csrf') ?? undefined)) {
      this.logger.warn({ approvalId: id }, 'step-up page: decision without a valid CSRF token refused');
      json(res, 403, { error: 'forbidden', error_description: 'missing or invalid CSRF token' });
      return;
    }
    const decision = form.get('decision');
    const digest = form.get('bodySha256') ?? '';
    if ((decision !== 'approved' && decision !== 'denied') || !SHA256_HEX.test(digest)) {
      await this.showPage(req, res, 400, 'Malformed decision.');
      return;
    }
    const result = await this.inbox.decide(id, { decision, approver: s.approver, bodySha256: digest, via: 'page' });
    this.logDecision(id, result, 'page');
    if (result === 'decided') {
      redirect(res, `/step-up?result=${decision}`);
      return;
    }
    redirect(res, `/step-up?result=${result === 'digest_mismatch' ? 'mismatch' : 'gone'}`);
  }

  /** Approval tool or chat bot: HMAC over timestamp and body, or the bearer secret; JSON in and out. */
  private async machineDecision(req: IncomingMessage, res: ServerResponse, id: string, body: Buffer): Promise<void> {
    const auth = this.authenticate(req, body);
    if (auth !== 'ok') {
      this.logger.warn({ approvalId: id, auth }, 'step-up callback refused: authentication failed');
      json(
        res,
        401,
        { error: 'invalid_token', error_description: `callback authentication failed (${auth})` },
        {
          'www-authenticate': 'Bearer realm="delegate-proxy step-up"',
        },
      );
      return;
    }
    let parsed: { decision?: unknown; approver?: unknown; bodySha256?: unknown; id?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      json(res, 400, { error: 'invalid_request', error_description: 'body must be JSON' });
      return;
    }
    // An optional "id" in the signed body binds the message to one approval; it must be this one.
    const boundId = parsed !== null && typeof parsed === 'object' ? parsed.id : undefined;
    if (boundId !== undefined && boundId !== id) {
      json(res, 400, { error: 'invalid_request', error_description: 'the body names another approval id' });
      return;
    }
    const signature = req.headers[SIGNATURE_HEADER];
    if (typeof signature === 'string' && boundId === undefined) {
      // Without "id" the MAC covers timestamp and body only: two pending requests with the same
      // body digest (every empty body) would accept the same message. It decides one id only.
      const key = signature.trim().toLowerCase();
      const first = this.signatureIds.get(key);
      if (first !== undefined && first !== id) {
        this.logger.warn(
          { approvalId: id, auth: 'replayed' },
          'step-up callback refused: signature already used for another approval id',
        );
        json(
          res,
          401,
          { error: 'invalid_token', error_description: 'callback authentication failed (replayed)' },
          {
            'www-authenticate': 'Bearer realm="delegate-proxy step-up"',
          },
        );
        return;
      }
      this.signatureIds.set(key, id);
    }
    const { decision, bodySha256 } = parsed ?? {};
    if (
      (decision !== 'approved' && decision !== 'denied') ||
      typeof bodySha256 !== 'string' ||
      !SHA256_HEX.test(bodySha256)
    ) {
      json(res, 400, {
        error: 'invalid_request',
        error_description: 'expected {"decision":"approved"|"denied","approver":"...","bodySha256":"<hex>"}',
      });
      return;
    }
    const result = await this.inbox.decide(id, {
      decision,
      approver: cleanApprover(parsed.approver),
      bodySha256,
      via: 'callback',
    });
    this.logDecision(id, result, 'callback');
    switch (result) {
      case 'decided':
        json(res, 200, { id, status: 'decided', decision });
        return;
      case 'unknown':
        json(res, 404, { error: 'not_found', error_description: 'no pending approval with this id' });
        return;
      case 'already_decided':
        json(res, 409, { error: 'already_decided', error_description: 'approval ids are single-use' });
        return;
      case 'digest_mismatch':
        json(res, 409, {
          error: 'digest_mismatch',
          error_description: 'bodySha256 does not match the pending request',
        });
        return;
    }
  }

  private authenticate(
    req: IncomingMessage,
    body: Buffer,
  ): 'ok' | 'missing' | 'stale' | 'bad_signature' | 'bad_bearer' {
    const signature = req.headers[SIGNATURE_HEADER];
    if (signature !== undefined) {
      const timestamp = req.headers[TIMESTAMP_HEADER];
      return verifySignature(
        this.secret,
        {
          signature: typeof signature === 'string' ? signature : undefined,
          timestamp: typeof timestamp === 'string' ? timestamp : undefined,
        },
        body,
        this.clock.now(),
      );
    }
    return verifyBearer(this.secret, req.headers.authorization) ? 'ok' : 'bad_bearer';
  }

  private logDecision(id: string, result: DecideResult, via: string): void {
    if (result === 'decided') return;
    this.logger.warn({ approvalId: id, via, result }, 'step-up decision refused');
  }
}

/**
 * Browsers send Origin on every POST; it must name this listener (defence in depth next to the
 * CSRF token and SameSite=Strict). `Sec-Fetch-Site`, when sent, must not be cross-site.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const host = req.headers.host;
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
}

function cookie(value: string, maxAge: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/step-up; Max-Age=${maxAge}; HttpOnly; SameSite=Strict`;
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the form posts.
  'referrer-policy': 'same-origin',
};

function html(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': PAGE_CSP,
  });
  res.end(text);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, body, { ...SECURITY_HEADERS, ...headers });
}

function redirect(res: ServerResponse, location: string): void {
  // 303: the browser follows with GET, so a reload does not re-post the decision.
  res.writeHead(303, { ...SECURITY_HEADERS, location });
  res.end();
}
