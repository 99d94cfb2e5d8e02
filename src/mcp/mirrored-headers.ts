/**
 * MCP 2026-07-28 request metadata: the `_meta` envelope claim that marks a message as modern, and
 * the HTTP headers that mirror body fields (basic/transports/streamable-http "Request Metadata",
 * "Server Validation"). No imports: the guard library (`delegate-proxy/guard`) uses it as is.
 */

/** The `_meta` key that carries a modern message's protocol version (the era claim). */
export const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
/** The `_meta` key that carries the client's capabilities on every modern request. */
export const CLIENT_CAPABILITIES_META_KEY = 'io.modelcontextprotocol/clientCapabilities';
/** The first revision of the stateless (per-request metadata) era. */
export const FIRST_MODERN_VERSION = '2026-07-28';

/** JSON-RPC code for a header/body disagreement or a missing or malformed mirrored header. */
export const HEADER_MISMATCH = -32020;

/**
 * The body field `Mcp-Name` mirrors, per method: `tools/call`, `prompts/get`, `resources/read`
 * ("Standard Request Headers"), and the tasks extension's `taskId` (SEP-2663, which the SDK v2
 * sends and checks too).
 */
const NAME_SOURCE: ReadonlyMap<string, string> = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
  ['tasks/get', 'taskId'],
  ['tasks/update', 'taskId'],
  ['tasks/cancel', 'taskId'],
]);

const SENTINEL_PREFIX = '=?base64?';
const SENTINEL_SUFFIX = '?=';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 9110 §5.5 field-value characters a plain (not Base64) `Mcp-Name` may hold: visible ASCII, SP, HTAB. */
const PLAIN_VALUE = /^[\x20-\x7e\t]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** One JSON-RPC message as far as the mirrored headers go. */
export interface MirroredMessage {
  readonly kind: 'request' | 'notification' | 'response';
  readonly method?: string;
  readonly params?: unknown;
}

/** Reads one request header by its lower-case name. */
export type HeaderLookup = (name: string) => string | undefined;

/** Why the headers and the body do not agree: the JSON-RPC error to answer with (HTTP 400). */
export interface HeaderProblem {
  /** -32020 HeaderMismatch; -32600 for a batch of modern messages; -32602 for a malformed claim. */
  readonly code: number;
  readonly message: string;
  /** The header at fault, when one is. */
  readonly header?: string;
}

/** The envelope claim of a message: present when `params._meta` has the protocol version key. */
export function envelopeClaim(params: unknown): { readonly version: unknown } | undefined {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return undefined;
  const meta = (params as { _meta?: unknown })._meta;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return undefined;
  if (!Object.hasOwn(meta, PROTOCOL_VERSION_META_KEY)) return undefined;
  return { version: (meta as Record<string, unknown>)[PROTOCOL_VERSION_META_KEY] };
}

/** The message follows the 2026-07-28 rules (it carries the `_meta` claim). */
export function isModernMessage(message: MirroredMessage): boolean {
  return message.kind !== 'response' && envelopeClaim(message.params) !== undefined;
}

/** Revisions compare as their date strings (the SDK's rule too). */
function namesModernVersion(version: string): boolean {
  return version >= FIRST_MODERN_VERSION;
}

/**
 * An `Mcp-Name` (or `Mcp-Param-*`) value as the body would spell it: the `=?base64?…?=` sentinel
 * decoded (canonical Base64 of UTF-8, "Value Encoding"), a plain value as is. Undefined when the
 * sentinel's payload is not canonical Base64 of UTF-8, or a plain value holds characters a header
 * may not carry.
 */
export function decodeHeaderValue(value: string): string | undefined {
  if (value.startsWith(SENTINEL_PREFIX) && value.endsWith(SENTINEL_SUFFIX) && value.length >= 11) {
    const payload = value.slice(SENTINEL_PREFIX.length, value.length - SENTINEL_SUFFIX.length);
    if (!BASE64.test(payload)) return undefined;
    try {
      const binary = atob(payload);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      return utf8.decode(bytes);
    } catch {
      return undefined;
    }
  }
  return PLAIN_VALUE.test(value) ? value : undefined;
}

function mismatch(header: string, message: string): HeaderProblem {
  return { code: HEADER_MISMATCH, header, message: `Header mismatch: ${message}` };
}

/**
 * Checks the mirrored headers of one POST body against the body ("Server Validation"):
 *
 * - a modern request must carry `MCP-Protocol-Version` equal to its `_meta` version, `Mcp-Method`
 *   equal to `method`, and, for the methods that have one, `Mcp-Name` equal to the body's name,
 *   URI or task id (Base64 sentinel decoded). A modern notification (the revision defines no
 *   header rules for them) is held to the headers it does carry;
 * - a legacy (2025-era) message is held to any of these headers it carries, and may not claim a
 *   modern revision in `MCP-Protocol-Version` without the `_meta` claim;
 * - a batch may not hold a modern message (the revision's body is a single message) and carries
 *   no `Mcp-Method` or `Mcp-Name` (one header cannot mirror several messages).
 *
 * Returns undefined when they agree. Duplicated headers arrive joined (`a, b`) and so disagree.
 */
export function checkMirroredHeaders(
  header: HeaderLookup,
  messages: readonly MirroredMessage[],
  batch: boolean,
): HeaderProblem | undefined {
  const version = header('mcp-protocol-version');
  const method = header('mcp-method');
  const name = header('mcp-name');
  const only = messages.length === 1 ? messages[0] : undefined;
  if (batch || only === undefined || only.kind === 'response') {
    if (batch && messages.some(isModernMessage))
      return { code: -32600, message: 'A JSON-RPC batch may not carry 2026-07-28 messages' };
    if (method !== undefined) return mismatch('Mcp-Method', 'the body is not a single request or notification');
    if (name !== undefined) return mismatch('Mcp-Name', 'the body is not a single request or notification');
    if (version !== undefined && namesModernVersion(version))
      return mismatch('MCP-Protocol-Version', 'the header names a modern revision, the body carries no _meta claim');
    return undefined;
  }
  const claim = envelopeClaim(only.params);
  const isRequest = only.kind === 'request';
  if (claim === undefined) {
    if (version !== undefined && namesModernVersion(version))
      return mismatch('MCP-Protocol-Version', 'the header names a modern revision, the body carries no _meta claim');
  } else {
    if (typeof claim.version !== 'string')
      return { code: -32602, message: `Invalid params: _meta["${PROTOCOL_VERSION_META_KEY}"] is not a string` };
    if (version === undefined) {
      if (isRequest) return mismatch('MCP-Protocol-Version', 'the required MCP-Protocol-Version header is missing');
    } else if (version !== claim.version) {
      return mismatch('MCP-Protocol-Version', 'the header and _meta name different protocol versions');
    }
    if (method === undefined && isRequest) return mismatch('Mcp-Method', 'the required Mcp-Method header is missing');
  }
  if (method !== undefined && method !== only.method)
    return mismatch('Mcp-Method', 'the Mcp-Method header and the body method differ');
  return checkName(name, only, isRequest && claim !== undefined);
}

function checkName(name: string | undefined, message: MirroredMessage, required: boolean): HeaderProblem | undefined {
  const field = message.method === undefined ? undefined : NAME_SOURCE.get(message.method);
  const params = message.params;
  const raw =
    field !== undefined && params !== null && typeof params === 'object' && !Array.isArray(params)
      ? (params as Record<string, unknown>)[field]
      : undefined;
  const bodyValue = typeof raw === 'string' ? raw : undefined;
  if (name === undefined) {
    return required && bodyValue !== undefined
      ? mismatch('Mcp-Name', 'the required Mcp-Name header is missing')
      : undefined;
  }
  if (field === undefined) return mismatch('Mcp-Name', `the method mirrors no name`);
  const decoded = decodeHeaderValue(name);
  if (decoded === undefined) return mismatch('Mcp-Name', 'the Mcp-Name header is not a valid header value');
  if (decoded !== bodyValue) return mismatch('Mcp-Name', `the Mcp-Name header and params.${field} differ`);
  return undefined;
}
