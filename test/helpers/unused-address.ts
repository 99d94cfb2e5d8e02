import { createServer } from 'node:net';

/**
 * An http://host:port where nothing listens. On 127.0.0.2: a port just freed on 127.0.0.1 may be
 * handed to another server of the same test run (tests run in parallel), which would then answer.
 */
export async function unusedAddress(): Promise<{ url: string; host: string; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { url: `http://127.0.0.2:${port}`, host: '127.0.0.2', port };
}
