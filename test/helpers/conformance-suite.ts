import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** One check of one scenario, as the suite wrote it to `checks.json`. */
export interface SuiteCheck {
  readonly scenario: string;
  readonly id: string;
  readonly status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
  readonly errorMessage?: string;
}

export interface SuiteRun {
  readonly checks: SuiteCheck[];
  /** `scenario/check` of every SUCCESS, sorted. */
  readonly passed: string[];
  /** `scenario/check` of every FAILURE, sorted. */
  readonly failed: string[];
  /** `scenario/check: STATUS` of every SUCCESS, FAILURE and WARNING (INFO lines are event logs), sorted. */
  readonly verdicts: string[];
  readonly output: string;
}

// The package's `bin` (its exports map has no entry for it).
const BIN = join(
  dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/conformance/package.json')),
  'dist/index.js',
);

/**
 * Runs the official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) against
 * `url` in a child process (async: the servers under test live in this process) and reads every
 * scenario's `checks.json`. `suite`: `active` (the CLI's default) or `all` (with the pending ones).
 */
export async function runServerSuite(
  url: string,
  suite: 'active' | 'all' = 'active',
  timeoutMs = 60_000,
): Promise<SuiteRun> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-conformance-'));
  try {
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'server', '--url', url, '--suite', suite, '-o', dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        text += d.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', reject);
      // Exit 1 when any check failed: the checks say which.
      child.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    const checks: SuiteCheck[] = [];
    for (const entry of readdirSync(dir)) {
      const scenario = /^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/.exec(entry)?.[1];
      if (scenario === undefined) continue;
      const list = JSON.parse(readFileSync(join(dir, entry, 'checks.json'), 'utf8')) as Omit<SuiteCheck, 'scenario'>[];
      for (const c of list)
        checks.push({
          scenario,
          id: c.id,
          status: c.status,
          ...(c.errorMessage ? { errorMessage: c.errorMessage } : {}),
        });
    }
    const names = (status: SuiteCheck['status']) =>
      checks
        .filter((c) => c.status === status)
        .map((c) => `${c.scenario}/${c.id}`)
        .sort();
    const verdicts = checks
      .filter((c) => c.status === 'SUCCESS' || c.status === 'FAILURE' || c.status === 'WARNING')
      .map((c) => `${c.scenario}/${c.id}: ${c.status}`)
      .sort();
    return { checks, passed: names('SUCCESS'), failed: names('FAILURE'), verdicts, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
