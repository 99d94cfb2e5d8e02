import type { useClosers } from './closers.js';
import type { TestAuthorizationServer } from './start-as.js';
import { startProxy, type TestProxy } from './start-proxy.js';

/**
 * The `tools` route at /mcp that the MCP tests put in front of an MCP server: it needs
 * mcp:tools:read and mcp:tools:write and exchanges for https://mcp.internal; `extra` is merged over it.
 */
export function mcpRoute(upstream: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'tools',
    match: { pathPrefix: '/mcp' },
    upstream,
    scopes: ['mcp:tools:read', 'mcp:tools:write'],
    audience: 'https://mcp.internal',
    mcp: {},
    ...extra,
  };
}

/**
 * The real proxy with only `mcpRoute(upstream)`, its `delete_file` tool needing files:delete unless
 * `mcp` says otherwise; closed with `closers`.
 */
export async function startMcpProxy(
  closers: ReturnType<typeof useClosers>,
  as: TestAuthorizationServer,
  upstream: string,
  options: { mcp?: Record<string, unknown>; scopes?: string[] } = {},
): Promise<TestProxy> {
  const proxy = await startProxy({
    as,
    config: {
      routes: [
        mcpRoute(upstream, {
          ...(options.scopes === undefined ? {} : { scopes: options.scopes }),
          mcp: options.mcp ?? { toolScopes: { delete_file: ['files:delete'] } },
        }),
      ],
    },
  });
  closers.push(() => proxy.close());
  return proxy;
}
