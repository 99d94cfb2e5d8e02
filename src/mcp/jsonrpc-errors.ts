import type { JsonRpcId } from './jsonrpc.js';

/** JSON-RPC 2.0 §5.1 codes. */
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
/**
 * The proxy's policy refused the message for lack of scope (implementation-defined server error
 * range, JSON-RPC 2.0 §5.1; not used by the MCP SDK). `data.requiredScopes` lists what it needs.
 */
export const INSUFFICIENT_SCOPE = -32003;

export interface JsonRpcErrorObject {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId | null;
  readonly error: { readonly code: number; readonly message: string; readonly data?: unknown };
}

export function jsonRpcError(id: JsonRpcId | null, code: number, message: string, data?: unknown): JsonRpcErrorObject {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}
