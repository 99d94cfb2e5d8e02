import {
  CLIENT_CAPABILITIES_META_KEY,
  checkMirroredHeaders,
  envelopeClaim,
  type MirroredMessage,
} from '../mcp/mirrored-headers.js';

/** Request headers as Node (`req.headers`) or the Fetch API (`Headers`) give them. */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>> | Headers;

/**
 * An MCP POST the server must refuse before handling it: answer HTTP `status` (400) with `body`,
 * a JSON-RPC error object (`-32020` HeaderMismatch, `-32600` invalid request, `-32602` invalid
 * `_meta` envelope).
 */
export class McpRequestError extends Error {
  readonly status = 400;
  /** The JSON-RPC error code. */
  readonly code: number;
  /** The header at fault, when one is. */
  readonly header: string | undefined;
  /** The JSON-RPC error response to send. */
  readonly body: {
    readonly jsonrpc: '2.0';
    readonly id: string | number | null;
    readonly error: { readonly code: number; readonly message: string; readonly data?: unknown };
  };

  constructor(code: number, message: string, id: string | number | null, header?: string) {
    super(message);
    this.name = 'McpRequestError';
    this.code = code;
    this.header = header;
    this.body = {
      jsonrpc: '2.0',
      id,
      error: header === undefined ? { code, message } : { code, message, data: { header } },
    };
  }
}

function lookup(headers: RequestHeaders): (name: string) => string | undefined {
  if (typeof (headers as Headers).get === 'function') {
    const h = headers as Headers;
    return (name) => h.get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  return (name) => {
    const v = record[name];
    return v === undefined ? undefined : typeof v === 'string' ? v : v.join(', ');
  };
}

function toMessage(value: unknown): MirroredMessage | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const m = value as Record<string, unknown>;
  if (typeof m.method !== 'string') return Object.hasOwn(m, 'id') ? { kind: 'response' } : undefined;
  return { kind: Object.hasOwn(m, 'id') ? 'request' : 'notification', method: m.method, params: m.params };
}

/**
 * Checks an MCP POST (its parsed JSON body and its headers) by the 2026-07-28 Streamable HTTP rules
 * (basic/transports/streamable-http "Request Metadata", "Server Validation"), the checks
 * delegate-proxy applies before it forwards:
 *
 * - the mirrored headers agree with the body: `MCP-Protocol-Version` with the `_meta` protocol
 *   version, `Mcp-Method` with `method`, `Mcp-Name` with `params.name`/`params.uri`/`params.taskId`
 *   (`=?base64?…?=` decoded); required ones present on a modern request;
 * - the stateless envelope: a modern request carries `_meta` with a string protocol version and a
 *   `clientCapabilities` object;
 * - a modern message is never in a batch.
 *
 * 2025-era messages (no `_meta` claim) pass, unless a mirrored header they carry disagrees.
 * Throws {@link McpRequestError}; returns whether the message is a 2026-07-28 one.
 */
export function checkMcpRequest(headers: RequestHeaders, body: unknown): { readonly modern: boolean } {
  const batch = Array.isArray(body);
  const values: unknown[] = batch ? body : [body];
  const messages: MirroredMessage[] = [];
  for (const v of values) {
    const m = toMessage(v);
    if (m === undefined) throw new McpRequestError(-32600, 'Invalid Request: not a JSON-RPC 2.0 message', null);
    messages.push(m);
  }
  const only = !batch && messages.length === 1 ? (values[0] as { id?: unknown }) : undefined;
  const id = only !== undefined && (typeof only.id === 'string' || typeof only.id === 'number') ? only.id : null;
  const problem = checkMirroredHeaders(lookup(headers), messages, batch);
  if (problem !== undefined) throw new McpRequestError(problem.code, problem.message, id, problem.header);
  const first = messages[0];
  const modern =
    !batch && first !== undefined && first.kind !== 'response' && envelopeClaim(first.params) !== undefined;
  if (modern && first.kind === 'request') {
    const meta = (first.params as { _meta: Record<string, unknown> })._meta;
    const capabilities = meta[CLIENT_CAPABILITIES_META_KEY];
    if (capabilities === null || typeof capabilities !== 'object' || Array.isArray(capabilities))
      throw new McpRequestError(-32602, `Invalid params: _meta["${CLIENT_CAPABILITIES_META_KEY}"] is missing`, id);
  }
  return { modern };
}
