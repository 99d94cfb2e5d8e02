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

/**
 * One class for every request (a stable shape, the logger getter on the prototype): no closure per
 * request. The fields later stages add are declared here as undefined for the same reason.
 */
class Context implements RequestContext {
  readonly id: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly startedAt: number;
  presentedCredentials = false;
  body: Buffer | undefined = undefined;
  upstreamStatus: number | undefined = undefined;
  logFields: Record<string, unknown> | undefined = undefined;
  readonly #logger: Logger;
  #log: Logger | undefined = undefined;

  constructor(req: IncomingMessage, res: ServerResponse, logger: Logger, id: string) {
    this.id = id;
    this.req = req;
    this.res = res;
    this.startedAt = performance.now();
    this.#logger = logger;
  }

  /** Made on first use, with reqId and the route (once routed) in one child (the access line needs none). */
  get log(): Logger {
    if (this.#log === undefined) {
      const route = (this as { route?: { name: string } }).route;
      this.#log = this.#logger.child(route ? { reqId: this.id, route: route.name } : { reqId: this.id });
    }
    return this.#log;
  }

  set log(value: Logger) {
    this.#log = value;
  }
}

/**
 * The request's context. Its id goes back as `x-request-id` with whatever answers the request:
 * the forwarded response (src/proxy/forwarder.ts) or an error (src/proxy/error-response.ts); it is
 * not set on the response up front, so Node can take a forwarded response's headers as one list.
 */
export function createContext(req: IncomingMessage, res: ServerResponse, logger: Logger): RequestContext {
  return new Context(req, res, logger, requestIdOf(req));
}
