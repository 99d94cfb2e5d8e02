/** Where a JSON text repeats a member name: the name (decoded) and its object's nesting depth (0: top). */
export interface DuplicateKey {
  readonly key: string;
  readonly depth: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;

/**
 * Finds the first object member name that appears twice in one object, at any depth, or undefined.
 * RFC 8259 §4 leaves duplicate names to each parser: JSON.parse keeps the last, others the first
 * or fail, so a body with one could be read as a different call upstream than the one the proxy
 * authorized (docs/mcp.md). Names are compared decoded (`"\u006dethod"` is `"method"`).
 *
 * `text` must already be valid JSON (JSON.parse accepted it): the scan relies on that and only
 * tracks where member names can start.
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  // One entry per open container: the names seen so far for an object, null for an array.
  const open: Array<Set<string> | null> = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      const names = open[open.length - 1];
      if (expectKey && names) {
        const raw = text.slice(i + 1, end);
        // Only names with an escape need decoding; JSON.parse decodes them exactly as it did the body.
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (names.has(key)) return { key, depth: open.length - 1 };
        names.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === OPEN_OBJECT) {
      open.push(new Set());
      expectKey = true;
    } else if (c === OPEN_ARRAY) {
      open.push(null);
      expectKey = false;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      open.pop();
      expectKey = false;
    } else if (c === COMMA) {
      expectKey = (open[open.length - 1] ?? null) !== null;
    }
  }
  return undefined;
}

/** Index of the closing quote of the string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q === -1) return text.length - 1; // unreachable for valid JSON
    // The quote is escaped when an odd number of backslashes precede it.
    let slashes = 0;
    for (let k = q - 1; k > start && text.charCodeAt(k) === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return q;
    i = q + 1;
  }
}
