import * as z from 'zod';

/** RFC 6749 §3.3 scope-token (same rule as config/schema.ts). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
/** RFC 9110 §9.1 method token, upper-cased here (Node only accepts upper-case methods). */
const METHOD = /^[A-Za-z]{1,20}$/;

const scope = z.string().regex(SCOPE_TOKEN, 'must be an RFC 6749 scope token (no spaces or quotes)');
const method = z
  .string()
  .regex(METHOD, 'must be an HTTP method name')
  .transform((m) => m.toUpperCase());

/**
 * One trigger: `{ method, pathPrefix }` (method optional: any method) or `{ tool }` (an MCP tool
 * name). `scopes` narrows what the rule asks for; default: every scope of the route's stepUp.scopes.
 */
const rule = z
  .strictObject({
    method: z
      .union([method, z.array(method).min(1)])
      .optional()
      .describe('With `pathPrefix`: the HTTP method or methods the rule applies to. Unset: any method.'),
    pathPrefix: z
      .string()
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, 'must start with / and hold only path characters')
      .optional()
      .describe('Requests whose path, as sent upstream (after `stripPrefix`), starts with this prefix.'),
    tool: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe('An MCP tool name: a `tools/call` of this tool (needs `mcp` on the route).'),
    scopes: z
      .array(scope)
      .min(1)
      .optional()
      .describe("The scopes this rule asks for, from the route's `stepUp.scopes`. Unset: all of them."),
  })
  .superRefine((r, ctx) => {
    if ((r.pathPrefix === undefined) === (r.tool === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'set exactly one of pathPrefix (with an optional method) or tool' });
    }
    if (r.tool !== undefined && r.method !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['method'], message: 'method applies to pathPrefix rules only' });
    }
  });

/** Per-route step-up (docs/step-up.md). */
export const routeStepUpSchema = z
  .strictObject({
    scopes: z
      .array(scope)
      .min(1, 'list at least one scope that may be stepped up to')
      .describe(
        "The allow-list: the only scopes this route can ever be stepped up to. None may be in the route's `scopes` or its MCP policy.",
      ),
    rules: z
      .array(rule)
      .default([])
      .describe('Requests held for approval: each rule is `{ method?, pathPrefix, scopes? }` or `{ tool, scopes? }`.'),
    onChallenge: z
      .boolean()
      .default(false)
      .describe(
        'Ask when the upstream answers 403 `insufficient_scope` naming only allow-listed scopes, then send the request once more with the elevated token.',
      ),
    mcpMode: z
      .enum(['hold', 'input-required'])
      .default('hold')
      .describe(
        'How a rule-matched MCP 2026-07-28 `tools/call` waits for approval: `hold` (the request waits) or `input-required` (answered with an MRTR InputRequiredResult carrying a URL elicitation to the approval page; the retry passes once approved). Needs `stepUp.approval.callbackBaseUrl` and an `mcp` block.',
      ),
  })
  .describe(
    'Human approval for elevated scopes on this route, for one call at a time (see [Step-up](step-up.md)); needs the top-level `stepUp` and at least one rule or `onChallenge`.',
  );

/** Top-level `stepUp`: the approval channel shared by every route. */
export const stepUpSchema = z
  .strictObject({
    approval: z
      .strictObject({
        webhookUrl: z
          .url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' })
          .optional()
          .describe('Receives each approval request as a JSON POST; it may answer with the decision itself.'),
        timeoutSeconds: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(120)
          .describe('How long a request is held for a decision; then 403 and the approval request is withdrawn.'),
        callbackSecretFile: z
          .string()
          .min(1)
          .optional()
          .describe(
            'File holding the secret (at least 32 characters) for `POST /step-up/<id>` decisions (HMAC or bearer) and the approval page login.',
          ),
        callbackBaseUrl: z
          .url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' })
          .refine((u) => !u.includes('?') && !u.includes('#'), 'must not carry a query or fragment')
          .optional()
          .describe(
            "How approvers reach this proxy's admin listener (e.g. `http://<pod IP>:9090`, the address substituted from the environment); sent as `decisionUrl`.",
          ),
      })
      .refine((a) => a.webhookUrl !== undefined || a.callbackSecretFile !== undefined, {
        message: 'set webhookUrl, callbackSecretFile or both: otherwise no decision can ever arrive',
      })
      .describe('How approvals are asked for and answered: set `webhookUrl`, `callbackSecretFile` or both.'),
  })
  .describe(
    'Human approval of elevated scopes: the approval channel every route with `stepUp` uses (see [Step-up](step-up.md)).',
  );

export type RouteStepUpConfig = z.output<typeof routeStepUpSchema>;
export type StepUpConfig = z.output<typeof stepUpSchema>;

type Issue = { code: 'custom'; path: PropertyKey[]; message: string };

/** The cross-checks between route and top-level step-up settings; each problem names its path. */
export function checkStepUpConfig(
  cfg: {
    readonly stepUp?: StepUpConfig | undefined;
    readonly routes: ReadonlyArray<{
      readonly scopes: readonly string[];
      readonly mcp?:
        | {
            readonly toolScopes: Record<string, string[]>;
            readonly methodScopes: Record<string, string[]>;
            readonly baseScopes?: string[] | undefined;
          }
        | undefined;
      readonly stepUp?: RouteStepUpConfig | undefined;
    }>;
  },
  addIssue: (issue: Issue) => void,
): void {
  cfg.routes.forEach((r, i) => {
    const s = r.stepUp;
    if (s === undefined) return;
    const at = (...path: PropertyKey[]): PropertyKey[] => ['routes', i, 'stepUp', ...path];
    if (cfg.stepUp === undefined) {
      addIssue({ code: 'custom', path: at(), message: 'requires the top-level stepUp.approval settings' });
    }
    const allowed = new Set(s.scopes);
    s.scopes.forEach((sc, k) => {
      if (r.scopes.includes(sc)) {
        addIssue({
          code: 'custom',
          path: at('scopes', k),
          message: `${sc} is already in routes[${i}].scopes: nothing to step up to`,
        });
      }
    });
    // The MCP policy asks for these scopes at step 5 without anyone's approval.
    for (const key of ['toolScopes', 'methodScopes'] as const) {
      for (const [name, list] of Object.entries(r.mcp?.[key] ?? {})) {
        list.forEach((sc, k) => {
          if (allowed.has(sc)) {
            addIssue({
              code: 'custom',
              path: ['routes', i, 'mcp', key, name, k],
              message: `${sc} is a step-up scope of this route: the MCP policy would request it without approval`,
            });
          }
        });
      }
    }
    // ...and the base scope (initialize, ping, notifications, GET stream, DELETE) likewise.
    r.mcp?.baseScopes?.forEach((sc, k) => {
      if (allowed.has(sc)) {
        addIssue({
          code: 'custom',
          path: ['routes', i, 'mcp', 'baseScopes', k],
          message: `${sc} is a step-up scope of this route: the MCP policy would request it without approval`,
        });
      }
    });
    s.rules.forEach((rule, j) => {
      rule.scopes?.forEach((sc, k) => {
        if (!allowed.has(sc)) {
          addIssue({
            code: 'custom',
            path: at('rules', j, 'scopes', k),
            message: `${sc} is not in routes[${i}].stepUp.scopes`,
          });
        }
      });
      if (rule.tool !== undefined && r.mcp === undefined) {
        addIssue({
          code: 'custom',
          path: at('rules', j, 'tool'),
          message: `tool rules need routes[${i}].mcp (MCP tool names come from its policy step)`,
        });
      }
    });
    if (s.mcpMode === 'input-required') {
      if (r.mcp === undefined)
        addIssue({ code: 'custom', path: at('mcpMode'), message: `input-required needs routes[${i}].mcp` });
      if (cfg.stepUp !== undefined && cfg.stepUp.approval.callbackBaseUrl === undefined)
        addIssue({
          code: 'custom',
          path: at('mcpMode'),
          message: 'input-required needs stepUp.approval.callbackBaseUrl (the approval page URL the agent is sent to)',
        });
    }
    if (s.rules.length === 0 && !s.onChallenge) {
      addIssue({ code: 'custom', path: at(), message: 'no rules and onChallenge is false: step-up can never trigger' });
    }
  });
}
