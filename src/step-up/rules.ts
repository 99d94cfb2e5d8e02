import type { RouteStepUpConfig } from '../config/step-up-schema.js';

/** A route's step-up settings, compiled once per (immutable) route config. */
export interface CompiledStepUp {
  /** Sorted allow-list: the only scopes this route can ever be stepped up to. */
  readonly allowed: ReadonlySet<string>;
  readonly rules: readonly CompiledRule[];
  readonly hasToolRules: boolean;
  readonly onChallenge: boolean;
}

interface CompiledRule {
  readonly methods: ReadonlySet<string> | undefined;
  /** Normalized segments (see pathForms); undefined for tool rules. */
  readonly pathPrefix: readonly string[] | undefined;
  readonly tool: string | undefined;
  readonly scopes: readonly string[];
}

export interface RuleMatch {
  /** Union of the matching rules' scopes, sorted. */
  readonly scopes: readonly string[];
  /** MCP tools that matched (for the approval request). */
  readonly tools: readonly string[];
}

export interface RuleInput {
  readonly method: string;
  /**
   * Other methods the upstream may act on for this request (method-override headers or `_method`,
   * HEAD as GET); a method rule matching any of them applies.
   */
  readonly methodOverrides?: readonly string[] | undefined;
  /** Path and query as sent upstream (after route matching and stripPrefix). */
  readonly path: string;
  /** MCP tool names of the request's tools/call messages; undefined when not known. */
  readonly tools: readonly string[] | undefined;
}

const compiled = new WeakMap<Omit<RouteStepUpConfig, 'mcpMode'>, CompiledStepUp>();

export function compileStepUp(cfg: Omit<RouteStepUpConfig, 'mcpMode'>): CompiledStepUp {
  const hit = compiled.get(cfg);
  if (hit) return hit;
  const all = [...new Set(cfg.scopes)].sort();
  const rules: CompiledRule[] = cfg.rules.map((r) => ({
    methods: r.method === undefined ? undefined : new Set(typeof r.method === 'string' ? [r.method] : r.method),
    pathPrefix: r.pathPrefix === undefined ? undefined : normalizePrefix(r.pathPrefix),
    tool: r.tool?.toLowerCase(),
    scopes: r.scopes === undefined ? all : [...new Set(r.scopes)].sort(),
  }));
  const result: CompiledStepUp = Object.freeze({
    allowed: new Set(all),
    rules,
    hasToolRules: rules.some((r) => r.tool !== undefined),
    onChallenge: cfg.onChallenge,
  });
  compiled.set(cfg, result);
  return result;
}

/**
 * The rules that apply to a request, or undefined when none does. Matching errs towards asking:
 * the path is compared in every form an upstream might read it as (see pathForms).
 */
export function matchRules(step: CompiledStepUp, input: RuleInput): RuleMatch | undefined {
  const scopes = new Set<string>();
  const tools = new Set<string>();
  let forms: string[][] | undefined;
  const lowerTools = input.tools?.map((t) => t.toLowerCase());
  const methods = [input.method, ...(input.methodOverrides ?? [])].map((m) => m.toUpperCase());
  for (const rule of step.rules) {
    if (rule.tool !== undefined) {
      const i = lowerTools?.indexOf(rule.tool) ?? -1;
      if (i === -1) continue;
      tools.add(input.tools![i]!);
    } else {
      if (rule.methods && !methods.some((m) => rule.methods!.has(m))) continue;
      forms ??= pathForms(input.path);
      const prefix = rule.pathPrefix!;
      if (!forms.some((p) => underPrefix(p, prefix))) continue;
    }
    for (const s of rule.scopes) scopes.add(s);
  }
  if (scopes.size === 0) return undefined;
  return { scopes: [...scopes].sort(), tools: [...tools] };
}

/**
 * Segment by segment. A path segment matches the rule's when equal, or when it is the rule's
 * segment plus an extension (`invoices.json`, `invoices .xml`): frameworks that take the
 * extension as the response format route both to the same handler.
 */
function underPrefix(path: readonly string[], prefix: readonly string[]): boolean {
  if (path.length < prefix.length) return false;
  return prefix.every((seg, i) => {
    const p = path[i]!;
    return p === seg || (p.startsWith(seg) && p.slice(seg.length).trimStart().startsWith('.'));
  });
}

function normalizePrefix(prefix: string): string[] {
  return normalize(safeDecode(prefix));
}

/**
 * The forms of a request path an upstream may act on: as sent, percent-decoded, and with `;`
 * path parameters removed (servlet containers drop them). Each form is split into segments that
 * are lower-cased (some upstreams route case-insensitively) and trimmed of whitespace (some trim
 * it); empty segments are dropped (`//` collapses). A rule matching any form applies.
 */
export function pathForms(pathAndQuery: string): string[][] {
  const q = pathAndQuery.indexOf('?');
  const raw = q === -1 ? pathAndQuery : pathAndQuery.slice(0, q);
  const decoded = safeDecode(raw);
  const forms = new Map<string, string[]>();
  for (const form of [raw, decoded, stripParams(raw), stripParams(decoded)]) {
    const segments = normalize(form);
    forms.set(segments.join('/'), segments);
  }
  return [...forms.values()];
}

function normalize(path: string): string[] {
  return path
    .split('/')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

function stripParams(path: string): string {
  return path
    .split('/')
    .map((s) => s.split(';')[0])
    .join('/');
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
