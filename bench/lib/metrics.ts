/** Sums the samples of a Prometheus text exposition by metric name and an optional label filter. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const close = rest.indexOf('}');
    const labelText = rest[0] === '{' ? rest.slice(1, close) : '';
    const value = Number(
      rest
        .slice(rest[0] === '{' ? close + 1 : 0)
        .trim()
        .split(' ')[0],
    );
    const ok = Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`));
    if (ok && Number.isFinite(value)) sum += value;
  }
  return sum;
}

export interface CacheCounters {
  readonly exchanges: number;
  readonly hits: number;
  readonly misses: number;
  readonly coalesced: number;
}

export async function cacheCounters(adminUrl: string): Promise<CacheCounters> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const lookups = 'delegate_proxy_token_cache_lookups_total';
  return {
    exchanges: sumMetric(text, 'delegate_proxy_token_exchanges_total'),
    hits: sumMetric(text, lookups, { result: 'hit' }),
    misses: sumMetric(text, lookups, { result: 'miss' }),
    coalesced: sumMetric(text, lookups, { result: 'coalesced' }),
  };
}

export function diffCounters(a: CacheCounters, b: CacheCounters): CacheCounters {
  return {
    exchanges: b.exchanges - a.exchanges,
    hits: b.hits - a.hits,
    misses: b.misses - a.misses,
    coalesced: b.coalesced - a.coalesced,
  };
}
