/**
 * The metrics of the docs/operations.md "Metrics" table (prefix delegate_proxy_; docs/design.md "Metrics") plus step_up_pending (docs/step-up.md),
 * revocations_total / security_events_total (docs/revocation.md) authorization_server_* (docs/cross-domain.md) and fleet_* (docs/fleet.md):
 * the names that dashboards and alerts may rely on.
 */
export const CONTRACT_METRICS = {
  delegate_proxy_requests_total: 'counter',
  delegate_proxy_request_duration_seconds: 'histogram',
  delegate_proxy_token_exchanges_total: 'counter',
  delegate_proxy_token_exchange_duration_seconds: 'histogram',
  delegate_proxy_authorization_server_requests_total: 'counter',
  delegate_proxy_authorization_server_request_duration_seconds: 'histogram',
  delegate_proxy_token_ttl_seconds: 'histogram',
  delegate_proxy_token_remaining_ttl_seconds: 'histogram',
  delegate_proxy_token_refreshes_total: 'counter',
  delegate_proxy_token_cache_lookups_total: 'counter',
  delegate_proxy_token_cache_entries: 'gauge',
  delegate_proxy_token_exchange_queue_depth: 'gauge',
  delegate_proxy_token_exchanges_in_flight: 'gauge',
  delegate_proxy_token_ttl_capped_total: 'counter',
  delegate_proxy_mcp_requests_total: 'counter',
  delegate_proxy_step_up_total: 'counter',
  delegate_proxy_step_up_pending: 'gauge',
  delegate_proxy_build_info: 'gauge',
  delegate_proxy_revocations_total: 'counter',
  delegate_proxy_security_events_total: 'counter',
  delegate_proxy_websocket_connections: 'gauge',
  delegate_proxy_websocket_connections_total: 'counter',
  delegate_proxy_streams_closed_total: 'counter',
  delegate_proxy_fleet_connected: 'gauge',
  delegate_proxy_fleet_events_total: 'counter',
  delegate_proxy_fleet_queued_events: 'gauge',
  delegate_proxy_fleet_apply_seconds: 'histogram',
} as const;

export type ContractMetric = keyof typeof CONTRACT_METRICS;

/** Series from outside the proxy that the rules use: Prometheus itself and kube-state-metrics. */
export const EXTERNAL_METRICS = new Set([
  'up',
  'kube_pod_init_container_status_ready',
  'kube_pod_container_status_ready',
]);

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

/** Maps a series name to its metric family: `x_bucket`, `x_sum`, `x_count` of histogram x -> x. */
export function familyOf(series: string, histograms: ReadonlySet<string>): string {
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (series.endsWith(suffix)) {
      const base = series.slice(0, -suffix.length);
      if (histograms.has(base)) return base;
    }
  }
  return series;
}
