import { type DestinationStream, type Logger, pino } from 'pino';

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
];

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
  if (options.pretty) return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  return pino(base);
}
