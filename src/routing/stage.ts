import type { RequestContext } from '../pipeline/context.js';
import type { Route } from './route-table.js';

/** Stage after step 2 (route): the request matched a route. */
export interface Routed extends RequestContext {
  readonly route: Route;
  /** Path and query to send upstream. */
  readonly forwardPath: string;
  /** Scopes to exchange for: the route's, then what the MCP policy or a step-up set for this call. */
  scopes: readonly string[];
  /** false when the token is for this call only (step-up). */
  cacheable: boolean;
}
