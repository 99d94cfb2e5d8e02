import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startAs, type TestAuthorizationServer } from './start-as.js';

/**
 * One authorization server for a whole test file (starting oidc-provider with a fresh RSA key costs
 * ~0.5 s; it keeps no state between exchanges but their record), started before the first test and
 * closed after the last; proxies and upstreams stay per test. `clearExchanges`: the record is emptied
 * before each test. The returned function gives the server inside a test or hook.
 */
export function useFileAs(options: { clearExchanges?: boolean } = {}): () => TestAuthorizationServer {
  let as: TestAuthorizationServer | undefined;
  beforeAll(async () => {
    as = await startAs();
  });
  afterAll(() => as?.close());
  if (options.clearExchanges === true) {
    beforeEach(() => {
      if (as !== undefined) as.exchanges.length = 0;
    });
  }
  return () => {
    if (as === undefined) throw new Error('the file authorization server is used before beforeAll started it');
    return as;
  };
}
