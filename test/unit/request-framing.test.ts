import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientErrorAnswer, hasDuplicateHost } from '../../src/server/request-framing.js';

const withRaw = (rawHeaders: string[]) => ({ rawHeaders }) as unknown as IncomingMessage;

describe('request framing', () => {
  it('finds a second Host header field in any case, and only then', () => {
    expect(hasDuplicateHost(withRaw(['Host', 'a', 'X-Host', 'b']))).toBe(false);
    expect(hasDuplicateHost(withRaw(['Host', 'a', 'HOST', 'a']))).toBe(true);
    expect(hasDuplicateHost(withRaw(['accept', '*/*', 'host', 'a', 'x', 'y', 'hOsT', 'b']))).toBe(true);
    expect(hasDuplicateHost(withRaw([]))).toBe(false);
  });

  it('maps parser errors to 408, 431 or 400', () => {
    expect(clientErrorAnswer('ERR_HTTP_REQUEST_TIMEOUT').status).toBe('408 Request Timeout');
    expect(clientErrorAnswer('HPE_HEADER_OVERFLOW').status).toBe('431 Request Header Fields Too Large');
    expect(clientErrorAnswer('HPE_INVALID_METHOD').status).toBe('400 Bad Request');
    expect(clientErrorAnswer(undefined).status).toBe('400 Bad Request');
  });
});
