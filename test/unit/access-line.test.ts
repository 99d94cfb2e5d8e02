import { describe, expect, it } from 'vitest';
import { type AccessFields, createAccessLog } from '../../src/observability/access-line.js';
import { createLogger } from '../../src/observability/logger.js';
import { createLogSink } from '../helpers/log-sink.js';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

const FIELDS: AccessFields = {
  reqId: 'req-1',
  route: 'docs',
  method: 'GET',
  path: '/docs/1',
  status: 200,
  upstreamStatus: 201,
  durationMs: 1.234,
  cache: 'hit',
  sub: 'alice',
  aborted: false,
  extra: undefined,
};

/** pino's own line for the same fields: what the hand-serialised access line must equal. */
function pinoObject(f: AccessFields): Record<string, unknown> {
  return {
    reqId: f.reqId,
    route: f.route,
    access: true,
    method: f.method,
    path: f.path,
    status: f.status,
    upstreamStatus: f.upstreamStatus,
    durationMs: f.durationMs,
    cache: f.cache,
    sub: f.sub,
    aborted: f.aborted || undefined,
    ...f.extra,
  };
}

async function bothLines(fields: AccessFields): Promise<{ ours: string; pinos: string }> {
  const sink = createLogSink();
  const logger = createLogger({ level: 'info', destination: sink });
  createAccessLog(logger).write(fields);
  logger.info(pinoObject(fields), 'request');
  await flush();
  expect(sink.raw).toHaveLength(2);
  // The times may differ by a millisecond; everything else must be the same text.
  const [ours, pinos] = sink.raw.map((l) => l.replace(/"time":"[^"]+"/, '"time":"T"')) as [string, string];
  return { ours, pinos };
}

describe('access line', () => {
  it('is the same line pino writes for the same fields, key for key and in order', async () => {
    const { ours, pinos } = await bothLines(FIELDS);
    expect(ours).toBe(pinos);
    expect(JSON.parse(ours)).toMatchObject({
      level: 'info',
      service: 'delegate-proxy',
      access: true,
      msg: 'request',
      status: 200,
    });
  });

  it('leaves out absent fields and escapes agent-controlled text as JSON', async () => {
    const fields: AccessFields = {
      ...FIELDS,
      route: undefined,
      path: '/a"b\\c\n\u2028\u0000é',
      method: 'G"ET',
      upstreamStatus: undefined,
      cache: undefined,
      sub: 'x"\ny',
      aborted: true,
      extra: {
        mcpMethod: ['tools/call', 'a"b'],
        mcpTool: 'del\u0007ete',
        gone: undefined,
        n: 3,
        nested: { a: [1, null] },
      },
    };
    const { ours, pinos } = await bothLines(fields);
    expect(JSON.parse(ours)).toEqual(JSON.parse(pinos));
    const parsed = JSON.parse(ours) as Record<string, unknown>;
    expect(parsed.path).toBe(fields.path);
    expect(parsed.aborted).toBe(true);
    expect('gone' in parsed).toBe(false);
    expect('route' in parsed).toBe(false);
  });

  it('follows the logger level, also when it changes after creation (reload)', async () => {
    const sink = createLogSink();
    const logger = createLogger({ level: 'warn', destination: sink });
    const access = createAccessLog(logger);
    access.write(FIELDS);
    logger.level = 'info';
    access.write({ ...FIELDS, reqId: 'second' });
    await flush();
    expect(sink.lines().map((l) => l.reqId)).toEqual(['second']);
  });

  it('writes a current ISO time', async () => {
    const sink = createLogSink();
    const before = Date.now();
    createAccessLog(createLogger({ level: 'info', destination: sink })).write(FIELDS);
    await flush();
    const time = Date.parse(String(sink.lines()[0]?.time));
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(Date.now());
  });
});
