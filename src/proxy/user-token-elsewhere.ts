import type { WithSubject } from '../auth/stage.js';
import { ProxyError } from '../errors.js';
import type { Building } from '../pipeline/context.js';

/**
 * The user token must reach the upstream by no other way than the header the proxy replaces
 * (docs/security.md). The proxy knows its exact value, so any other carrier an agent adds
 * (RFC 6750 §2.2 form body, §2.3 `access_token` query parameter, a cookie, an `x-access-token`
 * header, the path) is found by a plain search, as sent and percent-decoded. A token the agent
 * re-encodes on purpose (base64, split, JSON `\u` escapes) is not found; docs/security.md says so.
 */
export function refuseUserTokenElsewhere(ctx: WithSubject): undefined {
  const token = ctx.subject.token;
  if (token === undefined || token === '') return;
  const url = ctx.req.url ?? '';
  if (contains(url, token)) {
    // The access log line would carry the path: drop it before the refusal is recorded.
    delete (ctx as Partial<Building<WithSubject>>).forwardPath;
    throw refusal('the request target');
  }
  const headers = ctx.req.headers;
  for (const name in headers) {
    if (name.includes(token)) throw refusal('a header name');
    const value = headers[name];
    if (typeof value === 'string') {
      if (contains(value, token)) throw refusal(name === 'cookie' ? 'a cookie' : `the ${name} header`);
    } else if (value !== undefined) {
      for (const v of value) if (contains(v, token)) throw refusal(`the ${name} header`);
    }
  }
  (ctx as Building<WithSubject>).forwardPath = withoutAccessTokenParam(ctx.forwardPath);
}

/** The same search over a request body the proxy holds in memory (replay buffer, MCP or step-up read). */
export function refuseUserTokenInBody(ctx: WithSubject): void {
  const token = ctx.subject.token;
  const body = ctx.body;
  if (token === undefined || token === '' || body === undefined || body.length < token.length) return;
  if (body.includes(token) || (body.includes(0x25 /* % */) && contains(body.toString('latin1'), token))) {
    // MCP method and tool names from this body are in the log fields: they are agent text.
    ctx.logFields = undefined;
    throw refusal('the request body');
  }
}

function refusal(where: string): ProxyError {
  return new ProxyError('invalid_request', 'the user token may only be sent in the Authorization header', {
    detail: `the user token was also found in ${where}`,
  });
}

/** `text` holds `token` as is or once percent-decoded (also `+` as space, as forms do). */
function contains(text: string, token: string): boolean {
  if (text.includes(token)) return true;
  if (!text.includes('%') && !text.includes('+')) return false;
  return percentDecode(text).includes(token);
}

/** Percent-decodes byte by byte, leaving malformed escapes as they are (never throws). */
function percentDecode(text: string): string {
  const plus = text.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
  }
}

/**
 * Removes every `access_token` query parameter (RFC 6750 §2.3), compared decoded and without case:
 * whatever bearer token it carries was meant for this hop, never for the upstream.
 */
export function withoutAccessTokenParam(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  if (q === -1 || !/access_token/i.test(percentDecode(pathAndQuery.slice(q + 1)))) return pathAndQuery;
  const kept = pathAndQuery
    .slice(q + 1)
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=');
      return (
        percentDecode(eq === -1 ? pair : pair.slice(0, eq))
          .trim()
          .toLowerCase() !== 'access_token'
      );
    });
  return kept.length === 0 ? pathAndQuery.slice(0, q) : `${pathAndQuery.slice(0, q)}?${kept.join('&')}`;
}
