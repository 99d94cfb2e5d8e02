import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));
/** The built CLI as the image runs it (`npm run build`; `npm ci` runs it through `prepare`). */
export const BUILT_BIN = fileURLToPath(new URL('../../bin/delegate-proxy.js', import.meta.url));

/** The real CLI in its own process (`node --import tsx`), listening on port 0; URLs read from its start line. */
export interface ProxyProcess {
  readonly url: string;
  readonly adminUrl: string;
  readonly pid: number;
  /** Parsed JSON log lines so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line (so far or later) that `match` accepts. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGKILL: no drain, as a crashed pod. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  close(): Promise<void>;
}

export async function startProxyProcess(
  dir: string,
  name: string,
  config: Record<string, unknown>,
  env: Record<string, string> = {},
  /** `built`: bin/delegate-proxy.js (dist/) with the image's flags, instead of the sources through tsx. */
  from: 'source' | 'built' = 'source',
): Promise<ProxyProcess> {
  const file = join(dir, `${name}.yaml`);
  // JSON is YAML.
  writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...config }));
  const args =
    from === 'built'
      ? ['--enable-source-maps', '--max-semi-space-size=16', BUILT_BIN, '--config', file]
      : ['--import', 'tsx', ENTRY, '--config', file];
  const child: ChildProcess = spawn(process.execPath, args, {
    env: { ...process.env, POD_NAME: name, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters = new Set<{
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }>();
  let buffered = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let i = buffered.indexOf('\n');
    while (i >= 0) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      i = buffered.indexOf('\n');
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      logs.push(parsed);
      for (const w of waiters) {
        if (w.match(parsed)) {
          waiters.delete(w);
          w.resolve(parsed);
        }
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waitForLog = (match: (l: Record<string, unknown>) => boolean, timeoutMs = 20_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const found = logs.find(match);
      if (found) {
        resolve(found);
        return;
      }
      const w = { match, resolve };
      waiters.add(w);
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`${name}: no such log line within ${timeoutMs} ms; stderr: ${stderr.slice(-1000)}`));
      }, timeoutMs);
      timer.unref();
      void exited.then(() => {
        if (!waiters.has(w)) return;
        waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`${name} exited (${child.exitCode}); stderr: ${stderr.slice(-1000)}`));
      });
    });
  const started = await waitForLog((l) => l.msg === 'delegate-proxy started', 30_000);
  const stop = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url: String(started.listen),
    adminUrl: String(started.admin),
    pid: child.pid!,
    logs,
    waitForLog,
    kill: () => stop('SIGKILL'),
    close: () => stop('SIGTERM'),
  };
}
