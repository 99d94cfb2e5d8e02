import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

// prom-client's package entry also loads Summary, the Pushgateway (http, https), the cluster
// aggregator and, through its CPU collector, @opentelemetry/api for exemplars the proxy never
// records: +16 MB of idle RSS measured on Node 24, against +3 MB for these files and +8 MB with the
// default collectors below. Same files as the entry's, so a Registry made from `prom-client`
// elsewhere (tests) is of the same class.
const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof Prom.Registry;
export const Counter = load('prom-client/lib/counter') as typeof Prom.Counter;
export const Gauge = load('prom-client/lib/gauge') as typeof Prom.Gauge;
export const Histogram = load('prom-client/lib/histogram') as typeof Prom.Histogram;
export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Histogram<T extends string = string> = Prom.Histogram<T>;

type Collector = (registry: Registry, config: object) => void;

/** prom-client's default collectors (its `collectDefaultMetrics` list), CPU excepted: see processCpu. */
const DEFAULT_COLLECTORS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
];

/**
 * The same series as prom-client's `collectDefaultMetrics` (`process_*`, `nodejs_*`; the dashboard
 * reads process_resident_memory_bytes, process_cpu_seconds_total and nodejs_eventloop_lag_p99_seconds).
 */
export function collectDefaultMetrics(registry: Registry): void {
  const config = { eventLoopMonitoringPrecision: 10 };
  for (const name of DEFAULT_COLLECTORS) (load(`prom-client/lib/metrics/${name}`) as Collector)(registry, config);
  processCpu(registry);
}

/** process_cpu_{user,system}_seconds_total and their sum, as prom-client's collector names them. */
function processCpu(registry: Registry): void {
  const registers = [registry];
  let last = process.cpuUsage();
  const user = new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    // One collect() sets all three from the same reading.
    collect() {
      const now = process.cpuUsage();
      const userSeconds = (now.user - last.user) / 1e6;
      const systemSeconds = (now.system - last.system) / 1e6;
      last = now;
      user.inc(userSeconds);
      system.inc(systemSeconds);
      total.inc(userSeconds + systemSeconds);
    },
  });
  const system = new Counter({
    name: 'process_cpu_system_seconds_total',
    help: 'Total system CPU time spent in seconds.',
    registers,
  });
  const total = new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
  });
}
