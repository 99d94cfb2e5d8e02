import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCli, startNode } from './cli-process.js';

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

/** A proxy named `name` (its POD_NAME) with `config` written to `dir`, run as test/helpers/cli-process.ts runs the CLI. */
export async function startProxyProcess(
  dir: string,
  name: string,
  config: Record<string, unknown>,
  env: Record<string, string> = {},
  /**
   * `built`: bin/delegate-proxy.js (dist/) as the image starts it (bin applies its own Node settings),
   * instead of the sources through tsx.
   */
  from: 'source' | 'built' = 'source',
): Promise<ProxyProcess> {
  const file = join(dir, `${name}.yaml`);
  // JSON is YAML.
  writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...config }));
  const podEnv = { POD_NAME: name, ...env };
  const cli =
    from === 'built'
      ? startNode(['--enable-source-maps', BUILT_BIN, '--config', file], podEnv)
      : startCli(['--config', file], podEnv);
  const waitForLog = (match: (l: Record<string, unknown>) => boolean, timeoutMs = 20_000) =>
    cli.waitForLine(match, `${name}: a matching log line`, timeoutMs);
  const started = await waitForLog((l) => l.msg === 'delegate-proxy started', 30_000);
  const stop = async (signal: NodeJS.Signals) => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill(signal);
    await cli.exited;
  };
  return {
    url: String(started.listen),
    adminUrl: String(started.admin),
    pid: cli.child.pid!,
    logs: cli.lines,
    waitForLog,
    kill: () => stop('SIGKILL'),
    close: () => stop('SIGTERM'),
  };
}
