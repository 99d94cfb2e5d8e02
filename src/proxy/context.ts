import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ObtainedToken, SubjectInfo } from '../auth/token-service.js';
import type { McpRequestState } from '../mcp/state.js';
import type { Route } from '../routing/route-table.js';

/** Everything one request accumulates on its way through the pipeline. */
export interface RequestContext {
  readonly id: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** performance.now() at arrival. */
  readonly startedAt: number;
  log: Logger;
  route?: Route;
  /** Path and query to send upstream. */
  forwardPath?: string;
  subject?: SubjectInfo;
  /** The request carried the token header at all (RFC 6750 §3.1: no error code when it did not). */
  presentedCredentials: boolean;
  /** Scopes to exchange for: the route's, plus what the policy added for this call. */
  scopes: readonly string[];
  /** false when the token is for this call only (step-up). */
  cacheable: boolean;
  token?: ObtainedToken;
  /** Request body when a step had to read it (MCP policy); forwarded instead of the stream. */
  body?: Buffer;
  upstreamStatus?: number;
  /** Set by the MCP policy step on routes with an `mcp` block. */
  mcp?: McpRequestState;
  /** Extra fields for the access log line, set by steps (e.g. MCP method). */
  readonly logFields: Record<string, unknown>;
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
    // Made on first use, with reqId and route in one child (the access line needs none).
    get log(): Logger {
      log ??= logger.child(this.route ? { reqId: id, route: this.route.name } : { reqId: id });
      return log;
    },
    set log(value: Logger) {
      log = value;
    },
    presentedCredentials: false,
    scopes: [],
    cacheable: true,
    logFields: {},
  };
}
