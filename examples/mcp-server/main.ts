/**
 * Runs the example MCP server:
 *   ISSUER=https://auth.example.com JWKS_URI=https://auth.example.com/jwks \
 *   AUDIENCE=https://mcp.internal PORT=3000 npx tsx examples/mcp-server/main.ts
 * and put delegate-proxy in front of it (docs/mcp.md).
 */
import { createGuard } from '../../src/guard/index.js';
import { startExampleMcpServer } from './server.js';

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

const guard = createGuard({ issuer: env('ISSUER'), audience: env('AUDIENCE'), jwksUri: env('JWKS_URI') });
const server = await startExampleMcpServer({ guard, port: Number(process.env.PORT ?? 3000) });
console.log(`example MCP server on ${server.url}/mcp`);
