import { LRUCache } from 'lru-cache';
import type { SubjectInfo } from '../auth/token-service.js';
import type { McpConfig } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { Route } from '../routing/route-table.js';
import { grantsOf } from './grants.js';
import { compilePolicy, type McpPolicy } from './method-scopes.js';

type Outcome = 'allowed' | 'denied';

interface RouteEntry {
  readonly policy: McpPolicy;
  /** `mcp_requests_total` label children by method label and outcome (bounded: labels are a fixed set). */
  readonly counters: Map<string, { inc(): void }>;
}

/** Default bound of the grants memo: one entry per distinct user token (the token cache's default). */
const DEFAULT_MAX_SUBJECTS = 10_000;

/**
 * What the MCP policy step would otherwise redo on every request (so an MCP call costs about what a
 * plain POST does): each route's compiled policy and metric children, made once per
 * Route object (a reload makes new ones, so a changed config is never served from here), and each
 * user's grants, decoded once per token hash (never keyed by the raw token) and bounded.
 */
export class McpPolicies {
  readonly #metrics: Metrics;
  readonly #routes = new WeakMap<Route, RouteEntry>();
  /** Subject token hash -> the grants its `scope` claim states, or false when it states none. */
  readonly #grants: LRUCache<string, ReadonlySet<string> | false>;

  constructor(metrics: Metrics, maxSubjects = DEFAULT_MAX_SUBJECTS) {
    this.#metrics = metrics;
    this.#grants = new LRUCache({ max: maxSubjects });
  }

  policyFor(route: Route, config: McpConfig): McpPolicy {
    return this.#entry(route, config).policy;
  }

  /** grantsOf the subject token, decoded once per token (the decode is most of a warm MCP call's policy cost). */
  grantsFor(subject: SubjectInfo): ReadonlySet<string> | undefined {
    const known = this.#grants.get(subject.hash);
    if (known !== undefined) return known === false ? undefined : known;
    const grants = grantsOf(subject.token);
    this.#grants.set(subject.hash, grants ?? false);
    return grants;
  }

  /** Counts one message in `mcp_requests_total`. */
  count(route: Route, config: McpConfig, label: string, outcome: Outcome): void {
    const { counters } = this.#entry(route, config);
    const key = `${label} ${outcome}`;
    let child = counters.get(key);
    if (child === undefined) {
      child = this.#metrics.mcpRequests.labels({ route: route.name, method: label, outcome });
      counters.set(key, child);
    }
    child.inc();
  }

  #entry(route: Route, config: McpConfig): RouteEntry {
    let entry = this.#routes.get(route);
    if (entry === undefined) {
      entry = { policy: compilePolicy(route, config), counters: new Map() };
      this.#routes.set(route, entry);
    }
    return entry;
  }
}
