import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

/**
 * The real CLI (src/main.ts) in a child process, run from source through tsx so the test needs no
 * build and always tests the current code. Its JSON log lines are parsed as they arrive.
 */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  /** Text of stdout and stderr that was not a JSON log line (for failure messages). */
  readonly other: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line (already seen or future) that matches. */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Kills the process if it still runs. */
  stop(): Promise<void>;
}

/** Calls src/main.ts with its own arguments, through tsx (see cli-entry.ts). */
const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));

export function writeConfig(config: Record<string, unknown>, dir = mkdtempSync(join(tmpdir(), 'dp-cli-'))): string {
  const file = join(dir, 'delegate-proxy.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

export function startCli(args: readonly string[], env: Record<string, string> = {}): CliProcess {
  return startNode(['--import', 'tsx', ENTRY, ...args], env);
}

/** `node` with `nodeArgs` (a script and its arguments) in a child process, its JSON log lines parsed. */
export function startNode(nodeArgs: readonly string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, nodeArgs, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const other: string[] = [];
  const waiters = new Set<() => void>();
  const onText = (buffered: { text: string }) => (chunk: Buffer) => {
    buffered.text += chunk.toString('utf8');
    const parts = buffered.text.split('\n');
    buffered.text = parts.pop() ?? '';
    for (const part of parts) {
      if (part === '') continue;
      try {
        lines.push(JSON.parse(part) as Record<string, unknown>);
      } catch {
        other.push(part);
      }
    }
    for (const wake of waiters) wake();
  };
  child.stdout?.on('data', onText({ text: '' }));
  child.stderr?.on('data', onText({ text: '' }));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      for (const wake of waiters) wake();
      resolve({ code, signal });
    });
  });

  return {
    child,
    lines,
    other,
    exited,
    waitForLine(match, what, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (found) {
            done();
            resolve(found);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(
              new Error(
                `process exited (${child.exitCode ?? child.signalCode}) before ${what}; output:\n${other.join('\n')}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}; output:\n${other.join('\n')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** Waits for the 'delegate-proxy started' line and returns the listener URLs. */
export async function started(cli: CliProcess): Promise<{ url: string; adminUrl: string }> {
  const line = await cli.waitForLine((l) => l.msg === 'delegate-proxy started', 'start-up');
  return { url: String(line.listen), adminUrl: String(line.admin) };
}
