import type { McpConfig } from '../config/schema.js';
import type { Route } from '../routing/route-table.js';

export const TOOLS_READ = 'mcp:tools:read';
export const TOOLS_WRITE = 'mcp:tools:write';
export const RESOURCES_READ = 'mcp:resources:read';
export const PROMPTS_READ = 'mcp:prompts:read';

/** Scopes each MCP method needs by default (docs/mcp.md); `mcp.methodScopes` overrides per method. */
export const DEFAULT_METHOD_SCOPES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  initialize: [],
  ping: [],
  'tools/list': [TOOLS_READ],
  'tools/call': [TOOLS_WRITE],
  'resources/list': [RESOURCES_READ],
  'resources/templates/list': [RESOURCES_READ],
  'resources/read': [RESOURCES_READ],
  'resources/subscribe': [RESOURCES_READ],
  'resources/unsubscribe': [RESOURCES_READ],
  'prompts/list': [PROMPTS_READ],
  'prompts/get': [PROMPTS_READ],
});

/** What one method (or one tool's call) needs, computed once per policy: shared by every request. */
export interface Requirement {
  /** Sorted, de-duplicated, frozen: the same array on every request, never copied. */
  readonly scopes: readonly string[];
  /** Every scope is one the route may ask for (else the message is refused: `scope`). */
  readonly withinCeiling: boolean;
}

/** An MCP route's policy, compiled from its config. */
export interface McpPolicy {
  /** Method -> scopes; a method absent here is denied. */
  readonly methods: ReadonlyMap<string, readonly string[]>;
  readonly toolScopes: ReadonlyMap<string, readonly string[]>;
  /** Everything the route may ever ask the AS for: its scopes plus every tool's scopes. */
  readonly ceiling: ReadonlySet<string>;
  /** In order of preference: the one scope asked for when the messages need none (see baseScopes). */
  readonly baseCandidates: readonly string[];
  readonly filterToolsList: boolean;
  readonly maxBodyBytes: number;
  /** Per method in `methods` (tools/call: a tool without scopes of its own). */
  readonly requirements: ReadonlyMap<string, Requirement>;
  /** tools/call of each tool in `toolScopes`: the method's scopes plus the tool's. */
  readonly toolRequirements: ReadonlyMap<string, Requirement>;
}

export function compilePolicy(route: Route, config: McpConfig): McpPolicy {
  const methods = new Map<string, readonly string[]>(Object.entries(DEFAULT_METHOD_SCOPES));
  for (const [method, scopes] of Object.entries(config.methodScopes)) methods.set(method, scopes);
  for (const method of config.allowMethods) if (!methods.has(method)) methods.set(method, []);
  const toolScopes = new Map<string, readonly string[]>(Object.entries(config.toolScopes));
  const ceiling = new Set(route.scopes);
  for (const scopes of toolScopes.values()) for (const s of scopes) ceiling.add(s);
  // Computed here, once per route (and reload), so a request only looks its message up: keyed by
  // configured names only, never by what an agent sends (bounded by the config).
  const requirement = (scopes: readonly string[]): Requirement => {
    const sorted = Object.freeze([...new Set(scopes)].sort());
    return Object.freeze({ scopes: sorted, withinCeiling: sorted.every((s) => ceiling.has(s)) });
  };
  const requirements = new Map<string, Requirement>();
  for (const [method, scopes] of methods) requirements.set(method, requirement(scopes));
  const callScopes = methods.get('tools/call') ?? [];
  const toolRequirements = new Map<string, Requirement>();
  for (const [tool, scopes] of toolScopes) toolRequirements.set(tool, requirement([...callScopes, ...scopes]));
  return {
    methods,
    toolScopes,
    ceiling,
    baseCandidates: config.baseScopes ?? defaultBaseCandidates(route.scopes, methods),
    filterToolsList: config.filterToolsList,
    maxBodyBytes: config.maxBodyBytes,
    requirements,
    toolRequirements,
  };
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
export function toolCallRequirement(policy: McpPolicy, tool: string): Requirement {
  return policy.toolRequirements.get(tool) ?? policy.requirements.get('tools/call') ?? NOTHING;
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
