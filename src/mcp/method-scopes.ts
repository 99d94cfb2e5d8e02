import type { McpConfig } from '../config/schema.js';
import type { Route } from '../routing/route-table.js';

export const TOOLS_READ = 'mcp:tools:read';
export const TOOLS_WRITE = 'mcp:tools:write';
export const RESOURCES_READ = 'mcp:resources:read';
export const PROMPTS_READ = 'mcp:prompts:read';

/**
 * Scopes each MCP method needs by default on 2025-era traffic (initialize, sessions; docs/mcp.md);
 * `mcp.methodScopes` overrides per method. `completion/complete` is derived from its `ref`.
 */
export const DEFAULT_METHOD_SCOPES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  initialize: [],
  ping: [],
  'logging/setLevel': [],
  'tools/list': [TOOLS_READ],
  'tools/call': [TOOLS_WRITE],
  'resources/list': [RESOURCES_READ],
  'resources/templates/list': [RESOURCES_READ],
  'resources/read': [RESOURCES_READ],
  'resources/subscribe': [RESOURCES_READ],
  'resources/unsubscribe': [RESOURCES_READ],
  'prompts/list': [PROMPTS_READ],
  'prompts/get': [PROMPTS_READ],
  'completion/complete': [],
});

/**
 * The same for 2026-07-28 traffic (a `_meta` protocol version claim). The revision removed
 * initialize, ping, logging/setLevel and resources/(un)subscribe; it added server/discover,
 * subscriptions/listen (derived from the notifications it opts into) and the tasks extension.
 */
export const MODERN_METHOD_SCOPES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'server/discover': [],
  'tools/list': [TOOLS_READ],
  'tools/call': [TOOLS_WRITE],
  'resources/list': [RESOURCES_READ],
  'resources/templates/list': [RESOURCES_READ],
  'resources/read': [RESOURCES_READ],
  'prompts/list': [PROMPTS_READ],
  'prompts/get': [PROMPTS_READ],
  'completion/complete': [],
  'subscriptions/listen': [],
  'tasks/get': [TOOLS_READ],
  'tasks/cancel': [TOOLS_READ],
  'tasks/update': [TOOLS_WRITE],
});

/**
 * Methods whose scopes depend on their params, each from the table's own entries (so a
 * `methodScopes` override of `tools/list` also moves what `toolsListChanged` needs). Undefined:
 * the params do not say (refused, never guessed). An override of the method itself wins.
 */
type Derive = (params: unknown, scopesOf: (method: string) => readonly string[]) => readonly string[] | undefined;

const DERIVED: ReadonlyMap<string, Derive> = new Map<string, Derive>([
  [
    // The read scope of each notification type it opts into (basic/patterns/subscriptions).
    'subscriptions/listen',
    (params, scopesOf) => {
      const n = (params as { notifications?: unknown } | undefined)?.notifications;
      if (n === null || typeof n !== 'object' || Array.isArray(n)) return undefined;
      const f = n as Record<string, unknown>;
      const scopes: string[] = [];
      if (f.toolsListChanged === true) scopes.push(...scopesOf('tools/list'));
      if (f.promptsListChanged === true) scopes.push(...scopesOf('prompts/list'));
      if (f.resourcesListChanged === true) scopes.push(...scopesOf('resources/list'));
      if (Array.isArray(f.resourceSubscriptions) && f.resourceSubscriptions.length > 0)
        scopes.push(...scopesOf('resources/read'));
      return scopes;
    },
  ],
  [
    // What reading the prompt or resource it completes needs (server/utilities/completion).
    'completion/complete',
    (params, scopesOf) => {
      const type = (params as { ref?: { type?: unknown } } | undefined)?.ref?.type;
      if (type === 'ref/prompt') return scopesOf('prompts/get');
      if (type === 'ref/resource') return scopesOf('resources/read');
      return undefined;
    },
  ],
]);

/** One era's method table, compiled. */
export interface EraTable {
  /** Method -> scopes; a method absent here is denied. */
  readonly methods: ReadonlyMap<string, readonly string[]>;
  /** Per method in `methods` (tools/call: a tool without scopes of its own). */
  readonly requirements: ReadonlyMap<string, Requirement>;
  /** Methods whose requirement comes from their params (see DERIVED). */
  readonly derived: ReadonlyMap<string, Derive>;
}

/** What one method (or one tool's call) needs, computed once per policy: shared by every request. */
export interface Requirement {
  /** Sorted, de-duplicated, frozen: the same array on every request, never copied. */
  readonly scopes: readonly string[];
  /** Every scope is one the route may ask for (else the message is refused: `scope`). */
  readonly withinCeiling: boolean;
}

/** An MCP route's policy, compiled from its config. */
export interface McpPolicy {
  /** 2025-era traffic. */
  readonly legacy: EraTable;
  /** 2026-07-28 traffic (messages with the `_meta` protocol version claim). */
  readonly modern: EraTable;
  readonly toolScopes: ReadonlyMap<string, readonly string[]>;
  /** Everything the route may ever ask the AS for: its scopes plus every tool's scopes. */
  readonly ceiling: ReadonlySet<string>;
  /** In order of preference: the one scope asked for when the messages need none (see baseScopes). */
  readonly baseCandidates: readonly string[];
  readonly filterToolsList: boolean;
  readonly maxBodyBytes: number;
  /** tools/call of each tool in `toolScopes`: the method's scopes plus the tool's (both eras). */
  readonly toolRequirements: ReadonlyMap<string, Requirement>;
  /** Scope -> the narrower scopes it implies (`mcp.scopeImplies`), closed transitively. */
  readonly implies: ReadonlyMap<string, ReadonlySet<string>>;
  /** RFC 9728 Protected Resource Metadata URL for the route's challenges, when configured. */
  readonly resourceMetadata: string | undefined;
  /** The requirement of a derived scope list (memoised: keys are combinations of configured scopes). */
  requirementOf(scopes: readonly string[]): Requirement;
}

export function compilePolicy(route: Route, config: McpConfig): McpPolicy {
  const toolScopes = new Map<string, readonly string[]>(Object.entries(config.toolScopes));
  const ceiling = new Set(route.scopes);
  for (const scopes of toolScopes.values()) for (const s of scopes) ceiling.add(s);
  // Computed here, once per route (and reload), so a request only looks its message up: keyed by
  // configured names only, never by what an agent sends (bounded by the config).
  const memo = new Map<string, Requirement>();
  const requirementOf = (scopes: readonly string[]): Requirement => {
    const sorted = [...new Set(scopes)].sort();
    const key = sorted.join(' ');
    let known = memo.get(key);
    if (known === undefined) {
      known = Object.freeze({ scopes: Object.freeze(sorted), withinCeiling: sorted.every((s) => ceiling.has(s)) });
      memo.set(key, known);
    }
    return known;
  };
  const era = (defaults: Readonly<Record<string, readonly string[]>>): EraTable => {
    const methods = new Map<string, readonly string[]>(Object.entries(defaults));
    const derived = new Map<string, Derive>();
    for (const method of methods.keys()) {
      const derive = DERIVED.get(method);
      if (derive !== undefined && !Object.hasOwn(config.methodScopes, method)) derived.set(method, derive);
    }
    for (const [method, scopes] of Object.entries(config.methodScopes)) methods.set(method, scopes);
    for (const method of config.allowMethods) if (!methods.has(method)) methods.set(method, []);
    const requirements = new Map<string, Requirement>();
    for (const [method, scopes] of methods) requirements.set(method, requirementOf(scopes));
    return { methods, requirements, derived };
  };
  const legacy = era(DEFAULT_METHOD_SCOPES);
  const modern = era(MODERN_METHOD_SCOPES);
  const callScopes = legacy.methods.get('tools/call') ?? [];
  const toolRequirements = new Map<string, Requirement>();
  for (const [tool, scopes] of toolScopes) toolRequirements.set(tool, requirementOf([...callScopes, ...scopes]));
  return {
    legacy,
    modern,
    toolScopes,
    ceiling,
    baseCandidates: config.baseScopes ?? defaultBaseCandidates(route.scopes, legacy.methods),
    filterToolsList: config.filterToolsList,
    maxBodyBytes: config.maxBodyBytes,
    toolRequirements,
    implies: closeImplications(config.scopeImplies),
    resourceMetadata: config.resourceMetadata,
    requirementOf,
  };
}

/** `scopeImplies` closed transitively: a -> b and b -> c give a -> {b, c}. */
function closeImplications(direct: Readonly<Record<string, readonly string[]>>): Map<string, ReadonlySet<string>> {
  const out = new Map<string, ReadonlySet<string>>();
  for (const scope of Object.keys(direct)) {
    const seen = new Set<string>();
    const stack = [...(direct[scope] ?? [])];
    while (stack.length > 0) {
      const s = stack.pop() as string;
      if (seen.has(s) || s === scope) continue;
      seen.add(s);
      stack.push(...(direct[s] ?? []));
    }
    out.set(scope, seen);
  }
  return out;
}

/**
 * What a user's token grants once the route's scope hierarchy is applied (MCP basic/authorization
 * "Scope Challenge Handling": a broader scope implies narrower ones).
 */
export function impliedGrants(policy: McpPolicy, grants: ReadonlySet<string>): ReadonlySet<string> {
  if (policy.implies.size === 0) return grants;
  let out: Set<string> | undefined;
  for (const g of grants) {
    const implied = policy.implies.get(g);
    if (implied === undefined) continue;
    for (const s of implied) {
      if (grants.has(s)) continue;
      out ??= new Set(grants);
      out.add(s);
    }
  }
  return out ?? grants;
}

/** The requirement of a derived method's message, or undefined when its params do not say. */
export function derivedRequirement(
  policy: McpPolicy,
  table: EraTable,
  derive: Derive,
  params: unknown,
): Requirement | undefined {
  const scopes = derive(params, (m) => table.methods.get(m) ?? []);
  return scopes === undefined ? undefined : policy.requirementOf(scopes);
}

/**
 * The read scopes of the route (what tools/list, resources/list and prompts/list need, in that
 * order), else the route's scopes: the smallest grant that still lets the upstream identify the
 * user and open the session. One of them is asked for, never all.
 */
function defaultBaseCandidates(
  routeScopes: readonly string[],
  methods: ReadonlyMap<string, readonly string[]>,
): string[] {
  const reads = ['tools/list', 'resources/list', 'prompts/list']
    .map((m) => methods.get(m))
    .filter((s): s is readonly string[] => s !== undefined && s.length === 1 && routeScopes.includes(s[0]!))
    .map((s) => s[0]!);
  const candidates = [...new Set(reads)];
  return candidates.length > 0 ? candidates : [...routeScopes];
}

/** What a `tools/call` of `tool` needs: the method's scopes plus the tool's own. */
export function toolCallRequirement(policy: McpPolicy, table: EraTable, tool: string): Requirement {
  return policy.toolRequirements.get(tool) ?? table.requirements.get('tools/call') ?? NOTHING;
}

const NOTHING: Requirement = Object.freeze({ scopes: Object.freeze([]), withinCeiling: true });

/**
 * The scope for traffic that needs none (initialize, ping, notifications, responses, the GET
 * stream, DELETE): the first candidate the user holds when their token says (a decoded JWT
 * `scope` claim picks, the AS still decides), else the first candidate. No candidate at all (a
 * route with no scopes and `baseScopes: []`) asks for no scope: the AS's default (RFC 6749 §3.3).
 */
export function baseScopes(policy: McpPolicy, grants: ReadonlySet<string> | undefined): string[] {
  const candidates = policy.baseCandidates;
  const held = grants === undefined ? undefined : candidates.find((s) => grants.has(s));
  const pick = held ?? candidates[0];
  return pick === undefined ? [] : [pick];
}
