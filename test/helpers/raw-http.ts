import { connect } from 'node:net';

/**
 * Sends bytes exactly as given over a fresh TCP connection and returns everything the server
 * answered until it closed the connection (or `timeoutMs` passed). For framing and target cases
 * that an HTTP client library would refuse or normalise.
 */
export function rawRequest(url: string, text: string, timeoutMs = 5_000): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(text));
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(data);
    }, timeoutMs);
    socket.on('data', (d) => {
      data += d.toString('latin1');
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (data !== '') resolve(data);
      else reject(err);
    });
  });
}

/** Status code of the first response in a raw answer. */
export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(raw);
  return m ? Number(m[1]) : 0;
}

/** Waits until `check` is true (polling a condition set by an event, never a fixed sleep). */
export async function waitFor(check: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Like waitFor, for a check that needs I/O (e.g. asking /readyz). */
export async function waitForAsync(
  check: () => Promise<boolean>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
