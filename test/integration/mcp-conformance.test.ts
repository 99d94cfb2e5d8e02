import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { startConformanceServer } from '../helpers/conformance-server.js';
import { runServerSuite } from '../helpers/conformance-suite.js';
import { startAs } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { startTokenForwarder } from '../helpers/token-forwarder.js';

const closers = useClosers();

const SCOPES = ['mcp:tools:read', 'mcp:tools:write', 'mcp:resources:read', 'mcp:prompts:read'];

/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.16, server mode, every
 * scenario: `--suite all`) against a reference server (test/helpers/conformance-server.ts), once
 * directly and once through an `mcp:` route with a real token exchange: the proxy must pass exactly
 * what the server passes. The suite's client cannot be given a header, so a test-only forwarder in
 * front of the proxy adds the user token (as an agent would) and passes everything else, `Host` and
 * `Origin` included, unchanged.
 */
describe('MCP conformance suite (server mode): through the proxy as directly', () => {
  it('passes the same checks, DNS-rebinding protection included', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const server = await startConformanceServer();
    closers.push(() => server.close());
    const proxy = await startProxy({
      as,
      config: {
        routes: [
          {
            name: 'mcp',
            match: { pathPrefix: '/mcp' },
            upstream: server.url,
            scopes: SCOPES,
            audience: server.url,
            mcp: {},
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const forwarder = await startTokenForwarder(proxy.url, await as.userToken('alice', SCOPES));
    closers.push(() => forwarder.close());

    const direct = await runServerSuite(`${server.url}/mcp`, 'all');
    // The reference server passes everything (44 checks: the 40 of the active suite and the pending
    // json-schema-2020-12): a suite that ran nothing, or a broken server, fails here.
    expect(direct.failed, direct.output).toEqual([]);
    expect(direct.passed.length).toBeGreaterThanOrEqual(44);
    expect(direct.passed).toContain('dns-rebinding-protection/localhost-host-rebinding-rejected');

    const exchangesBefore = as.exchanges.length;
    const proxied = await runServerSuite(`${forwarder.url}/mcp`, 'all');
    expect(proxied.failed, proxied.output).toEqual([]);
    expect(proxied.passed).toEqual(direct.passed);
    // Warnings too (SSE polling's priming event and retry field): the proxy changes none of them.
    expect(proxied.verdicts).toEqual(direct.verdicts);
    // It went through the proxy: exchanges were made, each issued, each for the server's audience.
    const exchanges = as.exchanges.slice(exchangesBefore);
    expect(exchanges.length).toBeGreaterThan(0);
    expect(exchanges.every((e) => e.outcome === 'issued' && e.params.audience === server.url)).toBe(true);
  }, 60_000);
});
