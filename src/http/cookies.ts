/** One `name=value` pair of a Cookie header, as sent (RFC 6265 §4.2.1, §5.4). */
export interface CookiePair {
  readonly name: string;
  readonly value: string;
  /** The pair as it stood in the header, trimmed. */
  readonly text: string;
}

/** The pairs of a Cookie header in their order; empty pieces dropped, a piece without `=` is a name with an empty value. */
export function cookiePairs(header: string): CookiePair[] {
  const pairs: CookiePair[] = [];
  for (const piece of header.split(';')) {
    const text = piece.trim();
    if (text === '') continue;
    const eq = text.indexOf('=');
    pairs.push(
      eq === -1
        ? { name: text, value: '', text }
        : { name: text.slice(0, eq).trim(), value: text.slice(eq + 1).trim(), text },
    );
  }
  return pairs;
}

/** The value of the first cookie called `name` (not decoded), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  return cookiePairs(header).find((p) => p.name === name)?.value;
}
