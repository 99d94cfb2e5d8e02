import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

/**
 * What every request has from arrival on (docs/design.md "Request pipeline"). Each step adds its
 * fields and returns the context as its own stage type, so a later step sees what exists by type:
 * `Routed` (src/routing/stage.ts) → `WithSubject` → `Authorized` (src/auth/stage.ts); the MCP
 * policy adds `McpAware.mcp` (src/mcp/state.ts). The object is the same all along (no copy).
 */
export interface RequestContext {
  readonly id: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** performance.now() at arrival. */
  readonly startedAt: number;
  log: Logger;
  /** The request carried the token header at all (RFC 6750 §3.1: no error code when it did not). */
  presentedCredentials: boolean;
  /** Request body when a step had to read it (MCP policy, step-up, replay); forwarded instead of the stream. */
  body?: Buffer | undefined;
  upstreamStatus?: number | undefined;
  /** Extra fields for the access log line, set by steps (e.g. MCP method); made on first use. */
  logFields?: Record<string, unknown> | undefined;
}

/** A stage type with its fields writable: for the step that produces the stage, nowhere else. */
export type Building<T> = { -readonly [K in keyof T]: T[K] };

/** Adds access-line fields (made on first use: most requests have none). */
export function addLogFields(ctx: RequestContext, fields: Record<string, unknown>): void {
  if (ctx.logFields === undefined) ctx.logFields = {};
  Object.assign(ctx.logFields, fields);
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a well-formed incoming x-request-id (so traces join up), else makes one. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

export function createContext(req: IncomingMessage, res: ServerResponse, logger: Logger): RequestContext {
  const id = requestIdOf(req);
  res.setHeader('x-request-id', id);
  let log: Logger | undefined;
  return {
    id,
    req,
    res,
    startedAt: performance.now(),
    // Made on first use, with reqId and the route (once routed) in one child (the access line needs none).
    get log(): Logger {
      const route = (this as { route?: { name: string } }).route;
      log ??= logger.child(route ? { reqId: id, route: route.name } : { reqId: id });
      return log;
    },
    set log(value: Logger) {
      log = value;
    },
    presentedCredentials: false,
    body: undefined,
    upstreamStatus: undefined,
    logFields: undefined,
  };
}
