import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repository root: bin/ and the compiled dist/ the shipped CLI runs. */
export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/delegate-proxy.js');

/**
 * True when dist/ is built (`npm ci` builds it through `prepare`). Without it a test of the shipped
 * CLI cannot run: it skips on a developer's machine and fails under CI, never skips there.
 */
export function shippedCliBuilt(): boolean {
  const built = existsSync(join(ROOT, 'dist/main.js'));
  if (!built && process.env.CI) throw new Error('dist/ is not built: run `npm run build` (CI must test what ships)');
  return built;
}

export interface ShippedCli {
  readonly pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** The process's command line as the kernel has it now (after any re-exec of the same PID). */
  cmdline(): string[];
  /** The process's environment as the kernel has it now (after any re-exec of the same PID). */
  environ(): Record<string, string>;
  /** Resident set size (VmRSS) in MiB. */
  rssMiB(): number;
  close(): Promise<void>;
}

/** A minimal config file: one route; the authorization server and upstream are `tokenEndpoint`/`upstream`. */
export function writeMinimalConfig(
  tokenEndpoint: string,
  upstream: string,
  secret = 'test-secret',
): {
  file: string;
  remove(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'delegate-proxy-cli-'));
  const secretFile = join(dir, 'client-secret');
  writeFileSync(secretFile, `${secret}\n`);
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    [
      'listen: 127.0.0.1:0',
      'admin: 127.0.0.1:0',
      'authorizationServer:',
      `  tokenEndpoint: ${tokenEndpoint}`,
      '  clientId: agent-service',
      `  clientSecretFile: ${secretFile}`,
      'routes:',
      '  - name: docs',
      '    match: { pathPrefix: / }',
      `    upstream: ${upstream}`,
      '    scopes: [docs:read]',
      '',
    ].join('\n'),
  );
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts `argv` (a command line as a user would type it: `node [flags] bin/delegate-proxy.js ...`,
 * `node` meaning this Node) and resolves once the proxy logged that it started.
 */
export async function startShippedCli(
  argv: readonly string[],
  timeoutMs = 15_000,
  env: Record<string, string> = {},
): Promise<ShippedCli> {
  const [command, ...args] = argv;
  const child: ChildProcess = spawn(command === 'node' ? process.execPath : String(command), args, {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);
  const deadline = Date.now() + timeoutMs;
  while (!text.includes('delegate-proxy started')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${argv.join(' ')} did not start:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const status = () => readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    pid,
    output: () => text,
    cmdline: () => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean),
    environ: () =>
      Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      ),
    rssMiB: () => Number(/^VmRSS:\s+(\d+) kB/m.exec(status())?.[1]) / 1024,
    async close() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The image's ENTRYPOINT (exec form), with /app/ mapped to this checkout. */
export function imageCommand(): string[] {
  const line = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '));
  if (!line) throw new Error('Dockerfile has no ENTRYPOINT');
  return (JSON.parse(line.slice('ENTRYPOINT '.length)) as string[]).map((a) => a.replace(/^\/app\//, `${ROOT}/`));
}

/** `npm start`: package.json's start script (a plain command, no shell syntax). */
export function npmStartCommand(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  return pkg.scripts.start.split(' ').map((a) => (a === 'bin/delegate-proxy.js' ? BIN : a));
}
