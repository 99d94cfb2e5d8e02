import { describe, expect, it } from 'vitest';
import { createLogger, resolveLogging } from '../../src/observability/logger.js';
import { createLogSink } from '../helpers/log-sink.js';

describe('resolveLogging', () => {
  const config = { level: 'info', pretty: false };

  it('takes the config when no variable is set', () => {
    expect(resolveLogging(config, {})).toEqual({ level: 'info', pretty: false, levelPinned: false });
  });

  it('lets DELEGATE_PROXY_LOG_LEVEL and DELEGATE_PROXY_LOG_PRETTY override it', () => {
    expect(resolveLogging(config, { DELEGATE_PROXY_LOG_LEVEL: ' DEBUG ', DELEGATE_PROXY_LOG_PRETTY: '1' })).toEqual({
      level: 'debug',
      pretty: true,
      levelPinned: true,
    });
    expect(
      resolveLogging(
        { level: 'warn', pretty: true },
        { DELEGATE_PROXY_LOG_PRETTY: 'false', DELEGATE_PROXY_LOG_LEVEL: '' },
      ),
    ).toEqual({
      level: 'warn',
      pretty: false,
      levelPinned: false,
    });
  });

  it('reports every bad variable', () => {
    expect(resolveLogging(config, { DELEGATE_PROXY_LOG_LEVEL: 'loud', DELEGATE_PROXY_LOG_PRETTY: 'yes' })).toEqual({
      problems: [
        'DELEGATE_PROXY_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent',
        'DELEGATE_PROXY_LOG_PRETTY: must be true, false, 1 or 0',
      ],
    });
  });
});

describe('logger redaction', () => {
  it('censors token fields and credential headers wherever code might log them', () => {
    const sink = createLogSink();
    const log = createLogger({ level: 'info', destination: sink });
    log.info(
      {
        accessToken: 'T1',
        subject_token: 'T2',
        headers: { authorization: 'Bearer T3', cookie: 'sid=T4', 'proxy-authorization': 'Basic T5', accept: 'x' },
        req: { headers: { authorization: 'Bearer T6', cookie: 'T7' } },
        res: { headers: { 'set-cookie': 'T8' } },
        exchange: { token: 'T9', access_token: 'T10', client_secret: 'T11' },
      },
      'line',
    );
    const text = sink.text();
    for (let i = 1; i <= 11; i++) expect(text).not.toMatch(new RegExp(`T${i}\\b`));
    expect(sink.lines()[0]).toMatchObject({ level: 'info', service: 'delegate-proxy', headers: { accept: 'x' } });
  });
});
