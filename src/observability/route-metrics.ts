import type { Counter, Histogram } from 'prom-client';
import type { Metrics } from './metrics.js';

type CounterChild = ReturnType<Counter<string>['labels']>;
type HistogramChild = ReturnType<Histogram<string>['labels']>;

/** The per-request metrics of one route, as label children made once (no label hashing per request). */
export interface RouteChildren {
  requests(code: number): CounterChild;
  readonly requestDuration: HistogramChild;
  readonly tokenRemainingTtl: HistogramChild;
  readonly cacheHits: CounterChild;
}

/**
 * Label children per route object. A reload compiles new route objects, so their children are made
 * afresh then; the old ones go with their routes (weakly held).
 */
export function createRouteMetrics(metrics: Metrics): (route: { readonly name: string }) => RouteChildren {
  const byRoute = new WeakMap<object, RouteChildren>();
  return (route) => {
    let children = byRoute.get(route);
    if (children === undefined) {
      children = childrenFor(metrics, route.name);
      byRoute.set(route, children);
    }
    return children;
  };
}

function childrenFor(metrics: Metrics, route: string): RouteChildren {
  const byCode = new Map<number, CounterChild>();
  return {
    requests(code) {
      let child = byCode.get(code);
      if (child === undefined) {
        child = metrics.requests.labels({ route, code: String(code) });
        byCode.set(code, child);
      }
      return child;
    },
    requestDuration: metrics.requestDuration.labels({ route }),
    tokenRemainingTtl: metrics.tokenRemainingTtl.labels({ route }),
    cacheHits: metrics.tokenCacheLookups.labels({ route, result: 'hit' }),
  };
}
