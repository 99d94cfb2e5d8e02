import { afterEach } from 'vitest';

/**
 * Cleanup for servers a test starts: `closers.push(() => server.close())`, closed after each test in
 * reverse order (a proxy before the upstream and AS it talks to).
 */
export function useClosers(): { push(close: () => Promise<void> | void): void } {
  const closers: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()?.();
  });
  return { push: (close) => void closers.push(close) };
}
