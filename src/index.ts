export { createProxy, type DelegateProxy, type ProxyDeps, type StartedProxy } from './app.js';
export { loadConfigFile, parseConfigText, type ResolvedConfig, resolveConfig } from './config/load.js';
export type { Config, ConfigInput, RouteConfig } from './config/schema.js';
export { ConfigError, type ErrorCode, ProxyError, TokenExchangeError } from './errors.js';
export { METRIC_NAMES } from './observability/metrics.js';
