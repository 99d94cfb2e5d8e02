import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { createFilesServer, createMcpHttpHandler } from '../../examples/mcp-server/server.js';
import { startAuthorizationServer } from '../../src/dev/authorization-server.js';
import { createGuard } from '../../src/guard/index.js';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { CLIENT_ID, CLIENT_SECRET } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';

const closers = useClosers();
const RESOURCE = 'https://mcp.partner.example/mcp';
const READ = 'mcp:tools:read';
const WRITE = 'mcp:tools:write';

describe('cross-domain MCP route (SDK client -> proxy -> SDK server trusting only the resource AS)', () => {
  it('lists and calls tools with the resource AS token; the server never sees the user token or the ID-JAG', async () => {
    const clients = [
      { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, tokenEndpointAuthMethod: 'client_secret_basic' as const },
    ];
    const idp = await startAuthorizationServer({ clients, idJag: {} });
    closers.push(() => idp.close());
    const resourceAs = await startAuthorizationServer({
      clients,
      jwtBearer: { trustedIssuer: idp.issuer, jwksUri: idp.jwksUri },
    });
    closers.push(() => resourceAs.close());

    // The MCP server trusts the resource AS only (issuer, audience, its JWKS).
    const guard = createGuard({ issuer: resourceAs.issuer, audience: RESOURCE, jwksUri: resourceAs.jwksUri });
    const handle = createMcpHttpHandler({
      guard,
      enableJsonResponse: false,
      createMcpServer: () => createFilesServer(guard, new Map([['notes.txt', 'hello']])),
    });
    const seen: IncomingMessage['headers'][] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        Object.assign(req, { rawBody: Buffer.concat(chunks) });
        seen.push(req.headers);
        handle(req, res).catch(() => res.destroy());
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => closeServer(server));

    const secretFile = join(mkdtempSync(join(tmpdir(), 'dp-xaa-mcp-')), 'secret');
    writeFileSync(secretFile, CLIENT_SECRET);
    const proxy = await startProxy({
      config: {
        authorizationServer: { issuer: idp.issuer, clientId: CLIENT_ID, clientSecretFile: secretFile },
        authorizationServers: {
          partner: { issuer: resourceAs.issuer, clientId: CLIENT_ID, clientSecretFile: secretFile },
        },
        routes: [
          {
            name: 'partner-tools',
            match: { pathPrefix: '/mcp' },
            upstream: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            scopes: [READ, WRITE],
            resource: RESOURCE,
            grant: 'id-jag',
            resourceAuthorizationServer: 'partner',
            mcp: {},
          },
        ],
      },
    });
    closers.push(() => proxy.close());

    const user = await idp.issueSubjectToken({ sub: 'alice', scope: [READ, WRITE] });
    const client = new Client({ name: 'test-agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${proxy.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${user}` } },
      }),
    );
    closers.push(() => client.close());
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('read_file');
    const result = await client.callTool({ name: 'read_file', arguments: { path: 'notes.txt' } });
    expect(JSON.stringify(result.content)).toContain('hello');

    const assertions = resourceAs.exchanges.map((e) => e.params.assertion ?? '');
    expect(assertions.length).toBeGreaterThan(0);
    expect(seen.length).toBeGreaterThan(0);
    for (const headers of seen) {
      const token = String(headers.authorization ?? '').replace(/^Bearer /, '');
      expect(decodeJwt(token)).toMatchObject({ iss: resourceAs.issuer, sub: 'alice', aud: RESOURCE });
      const all = JSON.stringify(headers);
      expect(all).not.toContain(user);
      for (const a of assertions) expect(all).not.toContain(a);
    }
  });
});
