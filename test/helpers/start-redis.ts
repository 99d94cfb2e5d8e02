import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { freePort } from './free-port.js';
import { requireCommand } from './require-tool.js';

/**
 * A real `redis-server` (Debian package redis-server) on a free port, no persistence: a restart
 * comes back empty, as a Redis without persistence does after a crash.
 */
export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** SIGKILL: connections drop at once, nothing is saved. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty). */
  restart(): Promise<void>;
  /** Runs one redis-cli command (for assertions on what is stored). */
  cli(...args: string[]): string;
  close(): Promise<void>;
}

/** The redis-server binary, or undefined; with CI set a missing one is an error, never a skip. */
export function redisServerPath(): string | undefined {
  if (!requireCommand('redis-server', '.ci/run installs the Debian package redis-server')) return undefined;
  return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
}

function launch(bin: string, port: number, extra: readonly string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const args = ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', ...extra];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not start on ${port}: ${out.slice(-500)}`));
    }, 10_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}) on ${port}: ${out.slice(-500)}`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** `extra`: more redis-server arguments (e.g. `--requirepass`). */
export async function startRedis(bin: string, extra: readonly string[] = []): Promise<TestRedis> {
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch(bin, port, extra);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  let current: ChildProcess | undefined = child;
  const cli = (...args: string[]): string =>
    execFileSync('redis-cli', ['-p', String(port), ...args], {
      encoding: 'utf8',
      timeout: 5_000,
      env: { ...process.env, ...redisCliAuth(extra) },
    }).trim();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    cli,
    async kill() {
      if (current) await stop(current);
      current = undefined;
    },
    async restart() {
      if (current) await stop(current);
      current = await launch(bin, port, extra);
    },
    async close() {
      if (current) await stop(current);
      current = undefined;
    },
  };
}

/** redis-cli reads the password from REDISCLI_AUTH (never from argv, where ps shows it). */
function redisCliAuth(extra: readonly string[]): Record<string, string> {
  const i = extra.indexOf('--requirepass');
  return i >= 0 && extra[i + 1] !== undefined ? { REDISCLI_AUTH: extra[i + 1]! } : {};
}
