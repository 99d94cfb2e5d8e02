/** One load run as both load tools report it. Latencies in milliseconds. */
export interface LoadResult {
  readonly tool: 'wrk' | 'autocannon';
  readonly requests: number;
  readonly durationS: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Connection, read, write errors and timeouts. */
  readonly errors: number;
  /** Answers that were not 2xx/3xx. */
  readonly non2xx: number;
}

export interface LoadSpec {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  /** Requests/s over all connections; unset: as fast as the target answers (closed loop). */
  readonly rate?: number;
  /** One Bearer token for every request. */
  readonly token?: string;
  /** A file with one token per line, sent in rotation (one per request). */
  readonly tokensFile?: string;
  /** Request line and body; default `GET /` without a body. */
  readonly method?: string;
  readonly path?: string;
  readonly body?: string;
  /** Extra request headers (e.g. content-type and accept for MCP POSTs). */
  readonly headers?: Readonly<Record<string, string>>;
}
