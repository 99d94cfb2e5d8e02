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
declare module 'prom-client/lib/metrics/processStartTime.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/osMemoryHeap.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/processOpenFileDescriptors.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/processMaxFileDescriptors.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/eventLoopLag.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/processResources.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/processHandles.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/processRequests.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/heapSizeAndUsed.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/version.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
declare module 'prom-client/lib/metrics/gc.js' {
  const collect: (registry: import('prom-client').Registry, config: object) => void;
  export default collect;
}
