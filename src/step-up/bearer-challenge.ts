/**
 * `WWW-Authenticate` parsing (RFC 9110 §11.6.1, §5.6) and the RFC 6750 §3 insufficient_scope
 * challenge. Strict: a header that does not parse yields nothing, so a malformed or ambiguous
 * challenge never makes the proxy ask for anything.
 */

export interface Challenge {
  /** Lower-cased (auth-schemes are case-insensitive). */
  readonly scheme: string;
  readonly token68: string | undefined;
  /** Lower-cased names; values unquoted. */
  readonly params: ReadonlyMap<string, string>;
}

/** RFC 9110 §5.6.2 tchar. */
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
/** RFC 9110 §11.2 token68 characters (without the trailing '=' padding). */
const T68CHAR = /[A-Za-z0-9\-._~+/]/;
/** RFC 6749 §3.3 scope-token. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const MAX_HEADER_LENGTH = 8 * 1024;

class Cursor {
  pos = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string {
    return this.s[this.pos] ?? '';
  }
  /** OWS = *( SP / HTAB ). */
  ows(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && TCHAR.test(this.peek())) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** RFC 9110 §5.6.4 quoted-string; undefined when unterminated or holding a control character. */
  quoted(): string | undefined {
    if (this.peek() !== '"') return undefined;
    this.pos++;
    let out = '';
    while (!this.done) {
      const c = this.peek();
      this.pos++;
      if (c === '"') return out;
      if (c === '\\') {
        if (this.done) return undefined;
        const next = this.peek();
        if (!isQuotedPairChar(next)) return undefined;
        out += next;
        this.pos++;
        continue;
      }
      if (!isQdText(c)) return undefined;
      out += c;
    }
    return undefined;
  }
}

function isQdText(c: string): boolean {
  const code = c.charCodeAt(0);
  // HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
  return (
    code === 0x09 ||
    code === 0x20 ||
    code === 0x21 ||
    (code >= 0x23 && code <= 0x5b) ||
    (code >= 0x5d && code <= 0x7e) ||
    (code >= 0x80 && code <= 0xff)
  );
}

function isQuotedPairChar(c: string): boolean {
  const code = c.charCodeAt(0);
  return code === 0x09 || code === 0x20 || (code >= 0x21 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

/** At a list separator (or the end): skips `OWS "," OWS` runs (empty list elements are allowed). */
function skipSeparators(c: Cursor): boolean {
  let saw = false;
  for (;;) {
    c.ows();
    if (c.peek() !== ',') return saw || c.done;
    c.pos++;
    saw = true;
  }
}

/** True when an auth-param (`token BWS "="`, not a token68's padding) starts at the cursor. */
function paramAhead(c: Cursor): boolean {
  const save = c.pos;
  const name = c.token();
  c.ows();
  const isParam = name !== '' && c.peek() === '=';
  c.pos = save;
  return isParam;
}

/** A token68 followed by the end of this challenge (end of input or a comma). */
function readToken68(c: Cursor): string | undefined {
  const save = c.pos;
  while (!c.done && T68CHAR.test(c.peek())) c.pos++;
  if (c.pos === save) return undefined;
  while (c.peek() === '=') c.pos++;
  const value = c.s.slice(save, c.pos);
  c.ows();
  if (c.done || c.peek() === ',') return value;
  c.pos = save;
  return undefined;
}

function readParams(c: Cursor, params: Map<string, string>): boolean {
  for (;;) {
    const name = c.token().toLowerCase();
    c.ows();
    if (name === '' || c.peek() !== '=') return false;
    c.pos++;
    c.ows();
    const value = c.peek() === '"' ? c.quoted() : c.token() || undefined;
    if (value === undefined) return false;
    // RFC 9110 §11.2: each parameter name MUST only occur once per challenge.
    if (params.has(name)) return false;
    params.set(name, value);
    if (!skipSeparators(c)) return false;
    if (c.done || !paramAhead(c)) return true;
  }
}

/** Every challenge in a `WWW-Authenticate` field (or several, combined); undefined when malformed. */
export function parseChallenges(field: string | readonly string[] | undefined): Challenge[] | undefined {
  if (field === undefined) return [];
  const value = typeof field === 'string' ? field : field.join(', ');
  if (value.length > MAX_HEADER_LENGTH) return undefined;
  const c = new Cursor(value);
  const out: Challenge[] = [];
  skipSeparators(c);
  while (!c.done) {
    const scheme = c.token();
    if (scheme === '') return undefined;
    const params = new Map<string, string>();
    let token68: string | undefined;
    const afterScheme = c.pos;
    c.ows();
    if (!c.done && c.peek() !== ',') {
      // auth-scheme [ 1*SP ( token68 / #auth-param ) ]
      if (c.pos === afterScheme || value[afterScheme] !== ' ') return undefined;
      if (paramAhead(c)) {
        if (!readParams(c, params)) return undefined;
      } else {
        token68 = readToken68(c);
        if (token68 === undefined) return undefined;
        skipSeparators(c);
      }
    } else {
      skipSeparators(c);
    }
    out.push({ scheme: scheme.toLowerCase(), token68, params });
  }
  return out;
}

/**
 * The scopes an RFC 6750 §3 `Bearer error="insufficient_scope", scope="..."` challenge names;
 * undefined when there is no such challenge, it names no scope, or anything is malformed.
 */
export function insufficientScope(field: string | readonly string[] | undefined): readonly string[] | undefined {
  const challenges = parseChallenges(field);
  if (challenges === undefined) return undefined;
  const bearer = challenges.filter((ch) => ch.scheme === 'bearer' && ch.params.get('error') === 'insufficient_scope');
  // More than one would be ambiguous about what is needed: ask for nothing.
  if (bearer.length !== 1) return undefined;
  const scope = bearer[0]!.params.get('scope');
  if (scope === undefined) return undefined;
  // RFC 6750 §3: scope is a space-delimited list of RFC 6749 §3.3 scope-tokens.
  const scopes = scope.split(' ').filter((s) => s !== '');
  if (scopes.length === 0 || !scopes.every((s) => SCOPE_TOKEN.test(s))) return undefined;
  return [...new Set(scopes)];
}
