// Types for the prom-client files src/observability/prom.ts loads directly (the package types only its entry).
declare module 'prom-client/lib/registry.js' {
  const Registry: typeof import('prom-client').Registry;
  export default Registry;
}
declare module 'prom-client/lib/counter.js' {
  const Counter: typeof import('prom-client').Counter;
  export default Counter;
}
declare module 'prom-client/lib/gauge.js' {
  const Gauge: typeof import('prom-client').Gauge;
  export default Gauge;
}
declare module 'prom-client/lib/histogram.js' {
  const Histogram: typeof import('prom-client').Histogram;
  export default Histogram;
}
// Every default collector file exports one function of the same shape.
declare module 'prom-client/lib/metrics/*.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
