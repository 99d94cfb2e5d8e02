import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createProxy } from '../../src/app.js';
import { resolveConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Timer } from '../../src/pipeline/timer.js';
import { createLogSink } from './log-sink.js';
import { CLIENT_ID, type TestAuthorizationServer } from './start-as.js';
import type { TestProxy } from './start-proxy.js';

export const CALLBACK_SECRET = 'step-up-callback-secret-0123456789abcdef';

/** A timer the test fires by hand: approval timeouts happen when the test says so. */
export function manualTimer(): Timer & { readonly pending: number; fireAll(): void } {
  const timers = new Set<() => void>();
  return {
    set(_ms, fn) {
      timers.add(fn);
      return () => timers.delete(fn);
    },
    get pending() {
      return timers.size;
    },
    fireAll() {
      const due = [...timers];
      timers.clear();
      for (const fn of due) fn();
    },
  };
}

export function secretFile(secret = CALLBACK_SECRET): string {
  const file = join(mkdtempSync(join(tmpdir(), 'dp-step-up-')), 'callback-secret');
  writeFileSync(file, `${secret}\n`);
  return file;
}

/**
 * `stepUp.approval` for a webhook at `webhookUrl`: approvals time out after 120 s, and the callback URL
 * in each event starts with the admin address an operator would publish.
 */
export function webhookApproval(webhookUrl: string): Record<string, unknown> {
  return {
    webhookUrl,
    timeoutSeconds: 120,
    callbackSecretFile: secretFile(),
    callbackBaseUrl: 'http://10.0.0.7:9090/',
  };
}

/**
 * The `billing` route the step-up tests guard: /billing (prefix stripped) needs billing:read, and by
 * default a DELETE under /invoices steps up to billing:write.
 */
export function billingRoute(
  upstream: string,
  stepUp: Record<string, unknown> = {
    scopes: ['billing:write'],
    rules: [{ method: 'DELETE', pathPrefix: '/invoices' }],
  },
): Record<string, unknown> {
  return {
    name: 'billing',
    match: { pathPrefix: '/billing' },
    upstream,
    stripPrefix: true,
    scopes: ['billing:read'],
    stepUp,
  };
}

/** Like test/helpers/start-proxy.ts, plus the step-up timer. */
export async function startStepUpProxy(options: {
  as: TestAuthorizationServer;
  config: Record<string, unknown>;
  timer: Timer;
}): Promise<TestProxy> {
  const raw: Record<string, unknown> = {
    ...options.config,
    authorizationServer: {
      tokenEndpoint: options.as.tokenEndpoint,
      clientId: CLIENT_ID,
      clientSecretFile: options.as.secretFile,
    },
  };
  const config = resolveConfig(raw, {});
  const logs = createLogSink();
  const registry = new Registry();
  const proxy = createProxy(config, {
    logger: createLogger({ level: 'debug', destination: logs }),
    registry,
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    stepUpTimer: options.timer,
  });
  const started = await proxy.start();
  return { ...started, proxy, logs, registry, close: () => proxy.close() };
}

export interface WebhookEvent {
  readonly type: string;
  readonly id: string;
  readonly [key: string]: unknown;
}

export interface ApprovalReceiver {
  readonly url: string;
  readonly events: WebhookEvent[];
  readonly headers: IncomingMessage['headers'][];
  /** Resolves with the next `step_up.requested` event (or one already received and not yet taken). */
  nextRequest(): Promise<WebhookEvent>;
  close(): Promise<void>;
}

/**
 * A real approval webhook on port 0. `answer` decides what each `step_up.requested` POST gets:
 * a decision body, 202 (decide later), or `hang` (never answers).
 */
export async function startApprovalReceiver(
  answer: (event: WebhookEvent) => { status: number; body?: unknown } | 'hang' = () => ({ status: 202 }),
): Promise<ApprovalReceiver> {
  const events: WebhookEvent[] = [];
  const headers: IncomingMessage['headers'][] = [];
  const queue: WebhookEvent[] = [];
  const waiters: Array<(e: WebhookEvent) => void> = [];
  const hung = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookEvent;
      events.push(event);
      headers.push(req.headers);
      if (event.type !== 'step_up.requested') {
        res.writeHead(204).end();
        return;
      }
      const a = answer(event);
      const waiter = waiters.shift();
      if (waiter) waiter(event);
      else queue.push(event);
      if (a === 'hang') {
        hung.add(res);
        return;
      }
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body === undefined ? '' : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/approvals`,
    events,
    headers,
    nextRequest: () => {
      const e = queue.shift();
      return e ? Promise.resolve(e) : new Promise((resolve) => waiters.push(resolve));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hung) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
