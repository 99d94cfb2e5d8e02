import type * as Prom from 'prom-client';
import CounterClass from 'prom-client/lib/counter.js';
import GaugeClass from 'prom-client/lib/gauge.js';
import HistogramClass from 'prom-client/lib/histogram.js';
import eventLoopLag from 'prom-client/lib/metrics/eventLoopLag.js';
import gc from 'prom-client/lib/metrics/gc.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap.js';
import processHandles from 'prom-client/lib/metrics/processHandles.js';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import processRequests from 'prom-client/lib/metrics/processRequests.js';
import processResources from 'prom-client/lib/metrics/processResources.js';
import processStartTime from 'prom-client/lib/metrics/processStartTime.js';
import version from 'prom-client/lib/metrics/version.js';
import RegistryClass from 'prom-client/lib/registry.js';

// prom-client's package entry also loads Summary, the Pushgateway (http, https), the cluster
// aggregator and, through its CPU collector, @opentelemetry/api for exemplars the proxy never
// records: +16 MB of idle RSS measured on Node 24, against +3 MB for these files and +8 MB with the
// default collectors below. Same files as the entry's, so a Registry made from `prom-client`
// elsewhere (tests) is of the same class. The paths are internal: package.json pins prom-client's
// minor version.

export const Registry = RegistryClass;
export const Counter = CounterClass;
export const Gauge = GaugeClass;
export const Histogram = HistogramClass;
export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Histogram<T extends string = string> = Prom.Histogram<T>;

/** prom-client's default collectors (its `collectDefaultMetrics` list), CPU excepted: see processCpu. */
const DEFAULT_COLLECTORS = [
  processStartTime,
  osMemoryHeap,
  processOpenFileDescriptors,
  processMaxFileDescriptors,
  eventLoopLag,
  processResources,
  processHandles,
  processRequests,
  heapSizeAndUsed,
  heapSpacesSizeAndUsed,
  version,
  gc,
];

/**
 * The same series as prom-client's `collectDefaultMetrics` (`process_*`, `nodejs_*`; the dashboard
 * reads process_resident_memory_bytes, process_cpu_seconds_total and nodejs_eventloop_lag_p99_seconds).
 */
export function collectDefaultMetrics(registry: Registry): void {
  const config = { eventLoopMonitoringPrecision: 10 };
  for (const collect of DEFAULT_COLLECTORS) collect(registry, config);
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
