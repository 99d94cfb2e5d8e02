import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { configProblems } from '../helpers/config-problems.js';

const dir = mkdtempSync(join(tmpdir(), 'dp-step-up-config-'));
const clientSecretFile = join(dir, 'client-secret');
writeFileSync(clientSecretFile, 's3cret\n');
const callbackSecretFile = join(dir, 'callback-secret');
writeFileSync(callbackSecretFile, `${'k'.repeat(40)}\n`);
const shortSecretFile = join(dir, 'short-secret');
writeFileSync(shortSecretFile, 'short\n');

function config(overrides: { stepUp?: unknown; route?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    authorizationServer: { tokenEndpoint: 'https://as.example/token', clientId: 'agent', clientSecretFile },
    ...(overrides.stepUp === undefined ? {} : { stepUp: overrides.stepUp }),
    routes: [
      {
        name: 'billing',
        match: { pathPrefix: '/billing' },
        upstream: 'https://billing.internal',
        scopes: ['billing:read'],
        ...overrides.route,
      },
    ],
  };
}

const approval = { approval: { webhookUrl: 'https://approvals.example/hook', callbackSecretFile } };

describe('stepUp config', () => {
  it('applies defaults and reads the callback secret into secrets', () => {
    const c = resolveConfig(
      config({
        stepUp: approval,
        route: { stepUp: { scopes: ['billing:write'], rules: [{ method: 'delete', pathPrefix: '/invoices' }] } },
      }),
    );
    expect(c.stepUp?.approval.timeoutSeconds).toBe(120);
    expect(c.secrets.stepUpCallbackSecret).toBe('k'.repeat(40));
    expect(c.routes[0]!.stepUp).toEqual({
      scopes: ['billing:write'],
      rules: [{ method: 'DELETE', pathPrefix: '/invoices' }],
      onChallenge: false,
      mcpMode: 'hold',
    });
  });

  it('mcpMode input-required needs an mcp block and the approval page URL', () => {
    expect(
      configProblems(
        config({
          stepUp: approval,
          route: { stepUp: { scopes: ['billing:write'], onChallenge: true, mcpMode: 'input-required' } },
        }),
      ),
    ).toEqual([
      'routes[0].stepUp.mcpMode: input-required needs routes[0].mcp',
      'routes[0].stepUp.mcpMode: input-required needs stepUp.approval.callbackBaseUrl (the approval page URL the agent is sent to)',
    ]);
  });

  it('a route stepUp requires the top-level stepUp.approval', () => {
    expect(configProblems(config({ route: { stepUp: { scopes: ['billing:write'], onChallenge: true } } }))).toEqual([
      'routes[0].stepUp: requires the top-level stepUp.approval settings',
    ]);
  });

  it('reports every problem with its path', () => {
    const p = configProblems(
      config({
        stepUp: approval,
        route: {
          stepUp: {
            scopes: ['billing:write', 'billing:read'],
            rules: [
              { pathPrefix: '/a', scopes: ['billing:admin'] },
              { tool: 'transfer_funds' },
              { method: 'POST' },
              { tool: 'x', method: 'POST' },
            ],
          },
        },
      }),
    );
    expect(p).toEqual(
      expect.arrayContaining([
        'routes[0].stepUp.rules[2]: set exactly one of pathPrefix (with an optional method) or tool',
        'routes[0].stepUp.rules[3].method: method applies to pathPrefix rules only',
      ]),
    );
    // Cross-checks run once the shapes are valid.
    const cross = configProblems(
      config({
        stepUp: approval,
        route: {
          stepUp: {
            scopes: ['billing:write', 'billing:read'],
            rules: [{ pathPrefix: '/a', scopes: ['billing:admin'] }, { tool: 'transfer_funds' }],
          },
        },
      }),
    );
    expect(cross).toEqual([
      'routes[0].stepUp.scopes[1]: billing:read is already in routes[0].scopes: nothing to step up to',
      'routes[0].stepUp.rules[0].scopes[0]: billing:admin is not in routes[0].stepUp.scopes',
      'routes[0].stepUp.rules[1].tool: tool rules need routes[0].mcp (MCP tool names come from its policy step)',
    ]);
  });

  it('a step-up scope the MCP policy would request without approval is refused', () => {
    const p = configProblems(
      config({
        stepUp: approval,
        route: {
          mcp: { toolScopes: { transfer_funds: ['billing:write'] } },
          stepUp: { scopes: ['billing:write'], rules: [{ tool: 'transfer_funds' }] },
        },
      }),
    );
    expect(p).toEqual([
      'routes[0].mcp.toolScopes.transfer_funds[0]: billing:write is a step-up scope of this route: the MCP policy would request it without approval',
    ]);
  });

  it('security: a step-up scope in mcp.baseScopes (requested for initialize/GET without approval) is refused', () => {
    const p = configProblems(
      config({
        stepUp: approval,
        route: {
          mcp: { baseScopes: ['billing:write'] },
          stepUp: { scopes: ['billing:write'], rules: [{ tool: 'transfer_funds' }] },
        },
      }),
    );
    expect(p).toContain(
      'routes[0].mcp.baseScopes[0]: billing:write is a step-up scope of this route: the MCP policy would request it without approval',
    );
  });

  it('a step-up that can never trigger is refused', () => {
    expect(configProblems(config({ stepUp: approval, route: { stepUp: { scopes: ['billing:write'] } } }))).toEqual([
      'routes[0].stepUp: no rules and onChallenge is false: step-up can never trigger',
    ]);
  });

  it('the approval channel needs a webhook or a callback secret, and the secret must be long', () => {
    expect(configProblems(config({ stepUp: { approval: {} } }))).toEqual([
      'stepUp.approval: set webhookUrl, callbackSecretFile or both: otherwise no decision can ever arrive',
    ]);
    expect(configProblems(config({ stepUp: { approval: { callbackSecretFile: shortSecretFile } } }))).toEqual([
      'stepUp.approval.callbackSecretFile: must hold at least 32 characters (use random bytes)',
    ]);
    expect(configProblems(config({ stepUp: { approval: { callbackSecretFile: join(dir, 'missing') } } }))[0]).toMatch(
      /^stepUp\.approval\.callbackSecretFile: cannot read/,
    );
    expect(configProblems(config({ stepUp: { approval: { webhookUrl: 'ftp://x', timeoutSeconds: 0 } } }))).toEqual(
      expect.arrayContaining([
        'stepUp.approval.webhookUrl: must be an absolute http(s) URL',
        'stepUp.approval.timeoutSeconds: Too small: expected number to be >=1',
      ]),
    );
  });
});
