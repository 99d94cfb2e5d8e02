/**
 * The media type of a Content-Type header, lower-cased, without parameters (RFC 9110 §8.3.1:
 * `type/subtype` is case-insensitive; what follows `;` are parameters). '' when there is none.
 * A header Node joined from several lines, or given as an array, counts by its first value.
 */
export function mediaTypeOf(header: string | string[] | number | undefined): string {
  if (header === undefined) return '';
  const value = Array.isArray(header) ? (header[0] ?? '') : String(header);
  const end = value.indexOf(';');
  return (end === -1 ? value : value.slice(0, end)).trim().toLowerCase();
}
