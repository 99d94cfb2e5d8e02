/**
 * The MCP traffic the benches send: one definition for bench/run.ts and bench/profile.ts,
 * so the profile measures exactly the request the side-by-side run reports.
 */

/** Scopes the user token carries for the MCP route (tools/call of a tool without extra scopes: mcp:tools:write). */
export const MCP_SCOPES = ['mcp:tools:read', 'mcp:tools:write'];

/** What a Streamable HTTP client sends with every POST (the SDK answers 406 without both types). */
export const MCP_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

/** A 1 KiB MCP tools/call message (a tool without extra scopes). */
export const CALL_BODY = (() => {
  const base = {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'tool_1', arguments: { path: '/tmp/report.txt', text: '' } },
  };
  const pad = 1024 - JSON.stringify(base).length;
  base.params.arguments.text = 'x'.repeat(pad);
  return JSON.stringify(base);
})();

/**
 * The same 1 KiB tools/call as MCP 2026-07-28 sends it: the `_meta` envelope in the body and the
 * mirrored headers (MCP-Protocol-Version, Mcp-Method, Mcp-Name) the proxy checks against it.
 */
export const MODERN_CALL_BODY = (() => {
  const base = {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: {
      name: 'tool_1',
      arguments: { path: '/tmp/report.txt', text: '' },
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1.0.0' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  };
  const pad = 1024 - JSON.stringify(base).length;
  base.params.arguments.text = 'x'.repeat(pad);
  return JSON.stringify(base);
})();

export const MODERN_HEADERS: Readonly<Record<string, string>> = {
  ...MCP_HEADERS,
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': 'tools/call',
  'mcp-name': 'tool_1',
};

export const LIST_BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });

/** The `mcp:` route both benches configure (the upstream serves /mcp and /mcp/tools-list). */
export function mcpRoute(upstream: string): Record<string, unknown> {
  return {
    name: 'mcp',
    match: { pathPrefix: '/mcp' },
    upstream,
    scopes: MCP_SCOPES,
    mcp: { toolScopes: { delete_file: ['files:delete'] }, filterToolsList: true },
  };
}
