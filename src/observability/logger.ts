import { createRequire } from 'node:module';
import { type DestinationStream, type Logger, pino } from 'pino';
import { createBatchedDestination } from './log-destination.js';

/**
 * Every place a token or credential could sit in a log object. Configured here, never from request
 * input (pino docs/redaction.md). Code also avoids logging tokens at all; this is the second line.
 */
export const REDACT_PATHS = [
  'token',
  'accessToken',
  'access_token',
  'subjectToken',
  'subject_token',
  'actorToken',
  'actor_token',
  'client_secret',
  'clientSecret',
  'client_assertion',
  'password',
  'authorization',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  'headers["set-cookie"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  '*.token',
  '*.accessToken',
  '*.access_token',
  '*.subjectToken',
  '*.subject_token',
  '*.actorToken',
  '*.actor_token',
  '*.client_secret',
  '*.authorization',
  '*.cookie',
  'res.headers["set-cookie"]',
];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface LoggingSettings {
  readonly level: string;
  readonly pretty: boolean;
  /** True when the level comes from DELEGATE_PROXY_LOG_LEVEL: a config reload does not change it. */
  readonly levelPinned: boolean;
}

/**
 * Config `logging`, overridden by DELEGATE_PROXY_LOG_LEVEL and DELEGATE_PROXY_LOG_PRETTY (`true`/`1`
 * or `false`/`0`), so a pod can be switched to debug without editing its ConfigMap. Returns the
 * problems with the variables instead of throwing, so the CLI can report them with config problems.
 */
export function resolveLogging(
  config: { readonly level: string; readonly pretty: boolean },
  env: Readonly<Record<string, string | undefined>>,
): LoggingSettings | { problems: string[] } {
  const problems: string[] = [];
  const level = env.DELEGATE_PROXY_LOG_LEVEL?.trim().toLowerCase();
  if (level !== undefined && level !== '' && !(LOG_LEVELS as readonly string[]).includes(level)) {
    problems.push(`DELEGATE_PROXY_LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const prettyText = env.DELEGATE_PROXY_LOG_PRETTY?.trim().toLowerCase();
  let pretty = config.pretty;
  if (prettyText === 'true' || prettyText === '1') pretty = true;
  else if (prettyText === 'false' || prettyText === '0') pretty = false;
  else if (prettyText !== undefined && prettyText !== '')
    problems.push('DELEGATE_PROXY_LOG_PRETTY: must be true, false, 1 or 0');
  if (problems.length > 0) return { problems };
  const pinned = level !== undefined && level !== '';
  return { level: pinned ? level : config.level, pretty, levelPinned: pinned };
}

export interface LoggerOptions {
  readonly level: string;
  readonly pretty?: boolean;
  /** Where lines go (tests pass a sink); default stdout. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    base: { service: 'delegate-proxy' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (options.destination) return pino(base, options.destination);
  if (options.pretty) {
    if (prettyAvailable()) return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
    const logger = pino(base);
    logger.warn('logging.pretty is set but pino-pretty (a dev dependency) is not installed: logging JSON');
    return logger;
  }
  // Lines written together every FLUSH_DELAY_MS, 10 ms (log-destination.ts); what is queued at exit
  // is written before the process ends.
  const destination = createBatchedDestination({ fd: 1 });
  process.once('exit', destination.flushSync);
  return pino(base, destination);
}

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
